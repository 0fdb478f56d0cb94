//! Bounded reads under an inventory root. Every hardware source reads through [`Root`], so no
//! file is read whole whatever its size, and a symbolic link in a fixture tree (or in a host tree
//! mounted at `/host`) cannot lead outside the root: links are resolved component by component
//! with chroot semantics (an absolute target starts again at the root, `..` stops at it). On the
//! live root ("/") the kernel resolves paths itself and the extra `lstat`s are skipped.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The cap for one sysfs or procfs attribute, or a small file under `/etc`.
pub const FILE_CAP: u64 = 1 << 20;

/// Symbolic links followed while resolving one path, as the kernel's `MAXSYMLINKS`.
const MAX_LINK_HOPS: u32 = 40;

/// The outcome of reading one file, with the cases sources treat differently kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    Bytes(Vec<u8>),
    Missing,
    /// Permission denied: root-only files such as DMI serials and the SMBIOS table.
    Denied,
    /// Any other error, already formatted.
    Failed(String),
}

impl FileRead {
    pub fn from_result(result: io::Result<Vec<u8>>) -> FileRead {
        match result {
            Ok(bytes) => FileRead::Bytes(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileRead::Missing,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => FileRead::Denied,
            Err(e) => FileRead::Failed(e.to_string()),
        }
    }
}

/// The tree inventory sources read: `/` on a real host.
#[derive(Debug, Clone, Copy)]
pub struct Root<'a> {
    path: &'a Path,
    live: bool,
}

impl<'a> Root<'a> {
    pub fn new(path: &'a Path) -> Root<'a> {
        Root {
            path,
            live: path == Path::new("/"),
        }
    }

    /// Whether this is the running system's own root, where live-only fallbacks (uname) apply.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Where `rel` (a path inside the root, without a leading `/`) is on disk; an error for a
    /// chain of links too long to follow.
    pub fn path(&self, rel: &str) -> io::Result<PathBuf> {
        if self.live {
            Ok(self.path.join(rel))
        } else {
            Ok(self.path.join(self.resolve(rel)?))
        }
    }

    /// Reads at most `cap` bytes; a larger file is an error rather than a truncated value.
    pub fn read(&self, rel: &str, cap: u64) -> io::Result<Vec<u8>> {
        read_capped(&self.path(rel)?, cap)
    }

    /// [`Root::read`] as UTF-8, invalid sequences replaced (sysfs and DMI strings are bytes).
    pub fn read_text(&self, rel: &str, cap: u64) -> io::Result<String> {
        self.read(rel, cap)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// One attribute, trimmed; `None` if it cannot be read for any reason.
    pub fn attr(&self, rel: &str) -> Option<String> {
        self.read_text(rel, FILE_CAP)
            .ok()
            .map(|text| text.trim().to_string())
    }

    /// Whether a file, directory or link (even a dangling one) is at `rel`.
    pub fn exists(&self, rel: &str) -> bool {
        self.resolve_parent(rel)
            .is_ok_and(|path| std::fs::symlink_metadata(self.path.join(path)).is_ok())
    }

    /// The names in a directory, sorted so that output does not depend on directory order.
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.path(rel)?)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Where the symbolic link `rel` points, as a path inside the root with a leading `/`
    /// (`/sys/devices/pci0000:00/.../block/sda`); `None` if `rel` is not a link.
    pub fn link_target(&self, rel: &str) -> Option<String> {
        if self.live {
            // One readlink: sysfs directories themselves are not links, so joining the target to
            // the link's directory lexically is exact (and cheap with a thousand veths).
            let target = std::fs::read_link(self.path.join(rel)).ok()?;
            let mut done = Vec::new();
            let mut pending = Vec::new();
            push_components(&mut pending, &Path::new(rel).parent()?.join(target));
            while let Some(component) = pending.pop() {
                if component == ".." {
                    done.pop();
                } else {
                    done.push(component);
                }
            }
            let path: PathBuf = done.iter().collect();
            return Some(format!("/{}", path.to_string_lossy()));
        }
        let on_disk = self.path.join(self.resolve_parent(rel).ok()?);
        if !std::fs::symlink_metadata(&on_disk)
            .ok()?
            .file_type()
            .is_symlink()
        {
            return None;
        }
        let resolved = self.resolve(rel).ok()?;
        Some(format!("/{}", resolved.to_string_lossy()))
    }

    /// The last component of a symbolic link's target: a driver's name from `device/driver`.
    pub fn link_name(&self, rel: &str) -> Option<String> {
        let target = std::fs::read_link(self.path.join(self.resolve_parent(rel).ok()?)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// `rel` with every directory component resolved but the last left as it is (so the last
    /// one can be inspected as a link).
    fn resolve_parent(&self, rel: &str) -> io::Result<PathBuf> {
        if self.live {
            return Ok(PathBuf::from(rel));
        }
        let rel = Path::new(rel);
        match (rel.parent(), rel.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                let mut path = self.resolve(&parent.to_string_lossy())?;
                path.push(name);
                Ok(path)
            }
            _ => Ok(rel.to_path_buf()),
        }
    }

    /// Resolves `rel` inside the root: each existing component that is a link is replaced by its
    /// target, an absolute target restarting at the root. Returns a root-relative path; a missing
    /// component ends resolution (the read that follows fails with "not found"). Too many links
    /// is an error: handing the rest to the kernel would follow them outside the root.
    fn resolve(&self, rel: &str) -> io::Result<PathBuf> {
        let mut done: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, Path::new(rel));
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                done.pop();
                continue;
            }
            done.push(component);
            let on_disk: PathBuf = std::iter::once(self.path.as_os_str())
                .chain(done.iter().map(|c| c.as_os_str()))
                .collect();
            match std::fs::symlink_metadata(&on_disk) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(io::Error::other(format!(
                            "more than {MAX_LINK_HOPS} symbolic links in /{rel}"
                        )));
                    }
                    let target = std::fs::read_link(&on_disk)?;
                    done.pop();
                    if target.is_absolute() {
                        done.clear();
                    }
                    push_components(&mut pending, &target);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Whatever was not resolved (after a missing component) is appended as written.
        done.extend(pending.into_iter().rev());
        Ok(done.iter().collect())
    }
}

/// Pushes `path`'s components onto a stack so that the first component is popped first.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let mut parts: Vec<OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_os_string()),
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    stack.extend(parts.into_iter().rev());
}

/// Reads at most `cap` bytes of `path`; a file with more is an `InvalidData` error.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {cap} bytes"),
        ));
    }
    Ok(bytes)
}

/// Bytes as text: invalid UTF-8 replaced, trailing NULs (device tree strings) and surrounding
/// whitespace removed.
pub fn clean_string(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches('\0').trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    // The link tests build trees with Unix symbolic links, as sysfs has them.
    #[cfg(unix)]
    use std::os::unix::fs::symlink;

    #[test]
    fn reads_over_the_cap_fail_instead_of_truncating() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 100]).unwrap();
        assert_eq!(
            read_capped(&dir.path().join("big"), 100).unwrap().len(),
            100
        );
        let error = read_capped(&dir.path().join("big"), 99).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[cfg(unix)]
    #[test]
    fn absolute_links_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sys/firmware/devicetree/base")).unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(root.join("sys/firmware/devicetree/base/model"), "Pi\0").unwrap();
        // As on a real host: /proc/device-tree -> /sys/firmware/devicetree/base (absolute).
        symlink(
            "/sys/firmware/devicetree/base",
            root.join("proc/device-tree"),
        )
        .unwrap();
        let root = Root::new(&root);
        assert_eq!(root.read("proc/device-tree/model", 10).unwrap(), b"Pi\0");
    }

    #[cfg(unix)]
    #[test]
    fn dot_dot_stops_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(dir.path().join("secret"), "outside").unwrap();
        std::fs::write(root.join("secret"), "inside").unwrap();
        symlink("../../../../secret", root.join("etc/link")).unwrap();
        let root = Root::new(&root);
        assert_eq!(root.read_text("etc/link", 100).unwrap(), "inside");
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let root = Root::new(dir.path());
        let error = root.read("a", 10).unwrap_err();
        assert!(
            error.to_string().contains("more than 40 symbolic links"),
            "{error}"
        );
    }

    /// Regression guard: links left unresolved after the hop limit would be followed by the
    /// kernel, absolute ones outside the root.
    #[cfg(unix)]
    #[test]
    fn long_link_chains_are_refused_not_handed_to_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("target"), "inside").unwrap();
        for n in 0..45 {
            symlink(format!("l{}", n + 1), dir.path().join(format!("l{n}"))).unwrap();
        }
        symlink("/target", dir.path().join("l45")).unwrap();
        let root = Root::new(dir.path());
        assert_eq!(root.read_text("l40", 100).unwrap(), "inside");
        assert!(root.read_text("l0", 100).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn link_target_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sys/devices/pci0000:00/0000:00:1f.2/block/sda"))
            .unwrap();
        std::fs::create_dir_all(root.join("sys/block")).unwrap();
        symlink(
            "../devices/pci0000:00/0000:00:1f.2/block/sda",
            root.join("sys/block/sda"),
        )
        .unwrap();
        symlink(
            "../../../bus/pci/drivers/ahci",
            root.join("sys/devices/pci0000:00/0000:00:1f.2/driver"),
        )
        .unwrap();
        let root = Root::new(root);
        assert_eq!(
            root.link_target("sys/block/sda").as_deref(),
            Some("/sys/devices/pci0000:00/0000:00:1f.2/block/sda")
        );
        assert_eq!(
            root.link_name("sys/block/sda/../../driver").as_deref(),
            Some("ahci")
        );
        assert_eq!(root.link_target("sys/devices"), None);
    }

    #[test]
    fn live_link_target_is_lexical() {
        // /sys/block/<disk> on the machine running the tests, where there is one.
        let root = Root::new(Path::new("/"));
        if let Some(name) = root
            .list("sys/block")
            .ok()
            .and_then(|n| n.into_iter().next())
        {
            let target = root.link_target(&format!("sys/block/{name}")).unwrap();
            assert!(target.starts_with("/sys/devices/"), "{target}");
            assert!(target.ends_with(&name), "{target}");
        }
        assert_eq!(root.link_target("etc"), None);
    }

    #[test]
    fn clean_string_is_lossy_and_trimmed() {
        assert_eq!(clean_string(b"  Dell Inc. \n"), "Dell Inc.");
        assert_eq!(clean_string(b"Raspberry Pi 4\0"), "Raspberry Pi 4");
        assert_eq!(clean_string(b"Bad\xffName"), "Bad\u{fffd}Name");
    }
}
