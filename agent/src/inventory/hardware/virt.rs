//! Whether the host is a virtual machine, and whether the agent runs in a container. Both can be
//! true (Docker on a cloud VM). The checks, first match wins:
//!
//! Hypervisor
//! 1. DMI strings (`sys_vendor`, `product_name`, `bios_vendor`, `bios_version`, `board_name`,
//!    `chassis_asset_tag`), which name clouds as well as hypervisors: see [`from_dmi`].
//! 2. `/sys/hypervisor/type` (Xen paravirtual guests have no DMI), unless
//!    `/proc/xen/capabilities` says `control_d`: a dom0 is the Xen host itself.
//! 3. The paravirtual clock sources the kernel offers (`available_clocksource`): `kvm-clock`,
//!    `hyperv_clocksource_*`, `xen` exist only inside those guests (Firecracker has no DMI).
//! 4. The `hypervisor` CPU flag in `/proc/cpuinfo` (x86: set by every hypervisor) with none of the
//!    above: `unknown`.
//!
//! Container
//! 1. `container=` in `/proc/1/environ` (systemd-nspawn, LXC, podman set it; readable only with
//!    access to PID 1), then `/run/systemd/container` where systemd recorded the same.
//! 2. `/run/.containerenv` (podman), then `/.dockerenv` (docker).
//! 3. `/proc/1/cgroup` paths (`/docker/`, `/libpod-`, `/lxc/`, `kubepods`); with cgroup
//!    namespaces (cgroup v2 default) these read `0::/` and say nothing.
//! 4. WSL: the kernel release contains `microsoft` (checked last: a container inside WSL is
//!    reported as the container).

use steward_shared::v1::{SourceStatus, SystemInfo, Virtualization};

use super::fs::{FILE_CAP, Root};

/// Everything the checks look at, read by [`collect`], decided by [`detect`].
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub dmi: &'a SystemInfo,
    pub cpuinfo: &'a str,
    pub sys_hypervisor_type: String,
    pub xen_capabilities: String,
    pub clocksources: String,
    pub pid1_environ: Vec<u8>,
    pub systemd_container: String,
    pub containerenv: bool,
    pub dockerenv: bool,
    pub pid1_cgroup: String,
    pub kernel_release: &'a str,
}

pub fn collect(
    root: &Root,
    dmi: &SystemInfo,
    cpuinfo: &str,
    kernel_release: &str,
) -> (Virtualization, SourceStatus) {
    let text = |rel: &str| root.attr(rel).unwrap_or_default();
    let inputs = Inputs {
        dmi,
        cpuinfo,
        sys_hypervisor_type: text("sys/hypervisor/type"),
        xen_capabilities: text("proc/xen/capabilities"),
        clocksources: text("sys/devices/system/clocksource/clocksource0/available_clocksource"),
        pid1_environ: root.read("proc/1/environ", FILE_CAP).unwrap_or_default(),
        systemd_container: text("run/systemd/container"),
        containerenv: root.exists("run/.containerenv"),
        dockerenv: root.exists(".dockerenv"),
        pid1_cgroup: text("proc/1/cgroup"),
        kernel_release,
    };
    let virtualization = detect(&inputs);
    let status = SourceStatus {
        source: "virtualization".into(),
        items: 1,
        error: None,
        warnings: Vec::new(),
    };
    (virtualization, status)
}

pub fn detect(inputs: &Inputs) -> Virtualization {
    Virtualization {
        hypervisor: hypervisor(inputs),
        container: container(inputs),
    }
}

fn hypervisor(inputs: &Inputs) -> String {
    if let Some(name) = from_dmi(inputs.dmi) {
        return name.to_string();
    }
    let xen_host = inputs.xen_capabilities.contains("control_d");
    if !inputs.sys_hypervisor_type.is_empty() && !xen_host {
        return inputs.sys_hypervisor_type.clone();
    }
    let clocks = &inputs.clocksources;
    let by_clock = clocks.split_whitespace().find_map(|clock| match clock {
        "kvm-clock" => Some("kvm"),
        "xen" if !xen_host => Some("xen"),
        c if c.starts_with("hyperv_clocksource") => Some("hyperv"),
        _ => None,
    });
    if let Some(name) = by_clock {
        return name.to_string();
    }
    let flagged = super::cpu::fields(inputs.cpuinfo)
        .filter(|(key, _)| *key == "flags")
        .take(1)
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == "hypervisor"));
    if flagged && !xen_host {
        return "unknown".into();
    }
    String::new()
}

/// Azure's fixed chassis asset tag on every VM.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// The hypervisor or cloud DMI names. Clouds come first: EC2 Nitro and GCE run KVM, Azure runs
/// Hyper-V, and the cloud is what an operator wants to see.
pub fn from_dmi(dmi: &SystemInfo) -> Option<&'static str> {
    let vendor = dmi.vendor.as_str();
    let product = dmi.product.as_str();
    let any = |needle: &str| {
        [
            &dmi.vendor,
            &dmi.product,
            &dmi.bios_vendor,
            &dmi.bios_version,
            &dmi.board_product,
        ]
        .iter()
        .any(|v| v.to_ascii_lowercase().contains(needle))
    };
    Some(
        if any("amazon ec2") || dmi.bios_version.contains("amazon") {
            "amazon"
        } else if vendor == "Google" || product == "Google Compute Engine" {
            "google"
        } else if dmi.chassis_asset_tag == AZURE_ASSET_TAG {
            "azure"
        } else if vendor == "Alibaba Cloud" {
            "alibaba"
        } else if dmi.chassis_asset_tag == "OracleCloud.com" {
            "oracle"
        } else if vendor.starts_with("VMware") || product.starts_with("VMware") {
            "vmware"
        } else if vendor == "Microsoft Corporation" && product == "Virtual Machine" {
            "hyperv"
        } else if any("virtualbox") || vendor == "innotek GmbH" {
            "virtualbox"
        } else if vendor == "Xen" || dmi.bios_vendor == "Xen" {
            "xen"
        } else if vendor.starts_with("Parallels") {
            "parallels"
        } else if any("bhyve") {
            "bhyve"
        } else if vendor == "QEMU"
            || product.contains("KVM")
            || product == "OpenStack Nova"
            || vendor == "DigitalOcean"
            || (vendor == "Nutanix" && product == "AHV")
        {
            "kvm"
        } else if vendor == "Bochs" {
            "bochs"
        } else if product.starts_with("Apple Virtualization") {
            "apple"
        } else {
            return None;
        },
    )
}

fn container(inputs: &Inputs) -> String {
    let environ_value = inputs
        .pid1_environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"container="))
        .map(|value| String::from_utf8_lossy(value).trim().to_string())
        .filter(|value| !value.is_empty());
    if let Some(value) = environ_value {
        return value;
    }
    if !inputs.systemd_container.is_empty() {
        return inputs.systemd_container.clone();
    }
    if inputs.containerenv {
        return "podman".into();
    }
    if inputs.dockerenv {
        return "docker".into();
    }
    let cgroup = &inputs.pid1_cgroup;
    let by_cgroup = if cgroup.contains("/docker/") || cgroup.contains("/docker-") {
        Some("docker")
    } else if cgroup.contains("/libpod-") || cgroup.contains("/libpod_parent") {
        Some("podman")
    } else if cgroup.contains("/lxc/") || cgroup.contains("/lxc.payload") {
        Some("lxc")
    } else if cgroup.contains("kubepods") {
        Some("kubernetes")
    } else {
        None
    };
    if let Some(name) = by_cgroup {
        return name.into();
    }
    if inputs
        .kernel_release
        .to_ascii_lowercase()
        .contains("microsoft")
    {
        return "wsl".into();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs where nothing points at a VM or a container.
    fn base(dmi: &SystemInfo) -> Inputs<'_> {
        Inputs {
            dmi,
            cpuinfo: "",
            sys_hypervisor_type: String::new(),
            xen_capabilities: String::new(),
            clocksources: String::new(),
            pid1_environ: Vec::new(),
            systemd_container: String::new(),
            containerenv: false,
            dockerenv: false,
            pid1_cgroup: String::new(),
            kernel_release: "",
        }
    }

    fn dmi(vendor: &str, product: &str) -> SystemInfo {
        SystemInfo {
            vendor: vendor.into(),
            product: product.into(),
            ..SystemInfo::default()
        }
    }

    #[test]
    fn hypervisors_from_dmi() {
        let cases = [
            ("VMware, Inc.", "VMware Virtual Platform", Some("vmware")),
            ("VMware, Inc.", "VMware20,1", Some("vmware")),
            ("QEMU", "Standard PC (Q35 + ICH9, 2009)", Some("kvm")),
            ("Red Hat", "KVM", Some("kvm")),
            ("Microsoft Corporation", "Virtual Machine", Some("hyperv")),
            ("Microsoft Corporation", "Surface Laptop 4", None),
            ("innotek GmbH", "VirtualBox", Some("virtualbox")),
            ("Xen", "HVM domU", Some("xen")),
            ("Amazon EC2", "m5.large", Some("amazon")),
            ("Google", "Google Compute Engine", Some("google")),
            ("Dell Inc.", "PowerEdge R740", None),
        ];
        for (vendor, product, expected) in cases {
            assert_eq!(
                from_dmi(&dmi(vendor, product)),
                expected,
                "{vendor} {product}"
            );
        }
        let mut azure = dmi("Microsoft Corporation", "Virtual Machine");
        azure.chassis_asset_tag = AZURE_ASSET_TAG.into();
        assert_eq!(from_dmi(&azure), Some("azure"));
        let mut old_ec2 = dmi("Xen", "HVM domU");
        old_ec2.bios_version = "4.11.amazon".into();
        assert_eq!(from_dmi(&old_ec2), Some("amazon"));
    }

    #[test]
    fn firecracker_has_only_the_cpu_flag_and_kvm_clock() {
        let none = SystemInfo::default();
        let inputs = Inputs {
            cpuinfo: "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n",
            clocksources: "tsc kvm-clock ".into(),
            ..base(&none)
        };
        assert_eq!(detect(&inputs).hypervisor, "kvm");
        let inputs = Inputs {
            clocksources: "tsc".into(),
            ..inputs
        };
        assert_eq!(detect(&inputs).hypervisor, "unknown");
    }

    #[test]
    fn bare_metal_and_xen_dom0() {
        let server = dmi("Dell Inc.", "PowerEdge R740");
        let inputs = Inputs {
            cpuinfo: "flags\t\t: fpu vme ht\n",
            clocksources: "tsc hpet acpi_pm".into(),
            ..base(&server)
        };
        assert_eq!(detect(&inputs), Virtualization::default());
        let dom0 = Inputs {
            sys_hypervisor_type: "xen".into(),
            xen_capabilities: "control_d".into(),
            clocksources: "xen tsc".into(),
            ..inputs
        };
        assert_eq!(detect(&dom0).hypervisor, "");
    }

    #[test]
    fn containers_in_order() {
        let none = SystemInfo::default();
        let base = base(&none);
        let environ = Inputs {
            pid1_environ: b"PATH=/bin\0container=lxc\0HOME=/".to_vec(),
            dockerenv: true,
            ..base.clone()
        };
        assert_eq!(detect(&environ).container, "lxc");
        let podman = Inputs {
            containerenv: true,
            dockerenv: true,
            ..base.clone()
        };
        assert_eq!(detect(&podman).container, "podman");
        let cgroup = Inputs {
            pid1_cgroup: "12:pids:/docker/3f1c9a\n0::/docker/3f1c9a\n".into(),
            ..base.clone()
        };
        assert_eq!(detect(&cgroup).container, "docker");
        let k8s = Inputs {
            pid1_cgroup: "0::/kubepods/burstable/pod1234/abcd\n".into(),
            ..base.clone()
        };
        assert_eq!(detect(&k8s).container, "kubernetes");
        let wsl = Inputs {
            kernel_release: "5.15.153.1-microsoft-standard-WSL2",
            ..base.clone()
        };
        assert_eq!(detect(&wsl).container, "wsl");
        assert_eq!(detect(&base).container, "");
    }
}
