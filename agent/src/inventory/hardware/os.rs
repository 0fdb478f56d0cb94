//! The operating system: os-release (`/etc/os-release`, else `/usr/lib/os-release`), the kernel
//! release and architecture, the machine id. File locations and the os-release parser are
//! [`crate::host`]'s, shared with the host identity.
//!
//! The kernel and architecture come from `/proc/sys/kernel/osrelease` and
//! `/proc/sys/kernel/arch` under the root, so a fixture tree states its own. Only on the live root
//! do they fall back to `uname` (through sysinfo, as the host identity does) for kernels without
//! `kernel/arch`, and then to the agent's build architecture in uname spelling: a fixture tree
//! without the files gets empty values and a warning rather than the test machine's.

use steward_shared::v1::{OsInfo, SourceStatus};

use super::fs::{FILE_CAP, Root};
use crate::host::{MACHINE_ID_FILES, OS_RELEASE_FILES, os_release_pairs};

const OSRELEASE: &str = "proc/sys/kernel/osrelease";
const ARCH: &str = "proc/sys/kernel/arch";

pub fn collect(root: &Root) -> (OsInfo, SourceStatus) {
    let mut status = SourceStatus {
        source: "os".into(),
        ..SourceStatus::default()
    };
    let release = OS_RELEASE_FILES
        .iter()
        .find_map(|rel| root.read_text(rel, FILE_CAP).ok());
    let mut os = match &release {
        Some(text) => parse_os_release(text),
        None => {
            status.error = Some(format!(
                "no os-release: neither /{} nor /{} can be read",
                OS_RELEASE_FILES[0], OS_RELEASE_FILES[1]
            ));
            OsInfo::default()
        }
    };
    os.kernel = root.attr(OSRELEASE).unwrap_or_default();
    if os.kernel.is_empty() && root.is_live() {
        os.kernel = sysinfo::System::kernel_version().unwrap_or_default();
    }
    os.arch = root.attr(ARCH).unwrap_or_default();
    if os.arch.is_empty() && root.is_live() {
        os.arch = sysinfo::System::cpu_arch();
        if os.arch.is_empty() || os.arch == "unknown" {
            os.arch = uname_arch(std::env::consts::ARCH).to_string();
        }
    }
    for (value, file) in [(&os.kernel, OSRELEASE), (&os.arch, ARCH)] {
        if value.is_empty() {
            status.warnings.push(format!("/{file} cannot be read"));
        }
    }
    os.machine_id = MACHINE_ID_FILES
        .iter()
        .filter_map(|rel| root.attr(rel))
        .find(|id| !id.is_empty())
        .unwrap_or_default();
    status.items = u32::from(release.is_some());
    (os, status)
}

/// The os-release fields of [`OsInfo`]: `ID`, `ID_LIKE`, `NAME`, `VERSION_ID`, `PRETTY_NAME`.
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    for (key, value) in os_release_pairs(text) {
        let slot = match key {
            "ID" => &mut os.id,
            "ID_LIKE" => &mut os.id_like,
            "NAME" => &mut os.name,
            "VERSION_ID" => &mut os.version,
            "PRETTY_NAME" => &mut os.pretty_name,
            _ => continue,
        };
        *slot = value;
    }
    os
}

/// Rust's name for an architecture (`std::env::consts::ARCH`) as `uname -m` spells it. 32-bit ARM
/// says `arm` for every revision; `armv7l` is the common one.
pub fn uname_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields() {
        let text = "PRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nNAME=\"Rocky Linux\"\nVERSION_ID=\"9.4\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";
        let os = parse_os_release(text);
        assert_eq!(os.id, "rocky");
        assert_eq!(os.id_like, "rhel centos fedora");
        assert_eq!(os.name, "Rocky Linux");
        assert_eq!(os.version, "9.4");
        assert_eq!(os.pretty_name, "Rocky Linux 9.4 (Blue Onyx)");
    }

    #[test]
    fn arch_names() {
        assert_eq!(uname_arch("x86_64"), "x86_64");
        assert_eq!(uname_arch("aarch64"), "aarch64");
        assert_eq!(uname_arch("arm"), "armv7l");
        assert_eq!(uname_arch("x86"), "i686");
    }

    #[test]
    fn fixture_root_without_kernel_files_warns_instead_of_using_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=alpine\n").unwrap();
        let (os, status) = collect(&Root::new(dir.path()));
        assert_eq!(os.id, "alpine", "fallback to /usr/lib/os-release");
        assert_eq!((os.kernel.as_str(), os.arch.as_str()), ("", ""));
        assert_eq!(status.error, None);
        assert_eq!(status.warnings.len(), 2);
    }

    #[test]
    fn no_os_release_is_an_error_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (_, status) = collect(&Root::new(dir.path()));
        let error = status.error.unwrap();
        assert!(error.contains("/etc/os-release") && error.contains("/usr/lib/os-release"));
    }
}
