//! Mounted filesystems from `/proc/self/mounts` with sizes and inodes from `statvfs`.
//!
//! Pseudo filesystems are excluded by type, container and snap mounts by path, and a device
//! mounted several times (bind mounts) is reported once, at its shortest mount point. A
//! `statvfs` on a network filesystem runs on a helper thread with a timeout, so a hung NFS server
//! cannot stall the agent; a mount whose call is still stuck is skipped until it returns.
//!
//! On Windows the mounts are the volumes sysinfo lists (fixed and removable drives, at a drive
//! letter or a folder; network drives are not listed, so no call waits on a server) with sizes
//! from `GetDiskFreeSpaceExW`. The device is the volume serial number as `vol` prints it
//! (`1A2B-3C4D`), so a volume mounted at a letter and a folder is reported once, like a bind
//! mount. Windows filesystems have no inode counts: those are 0.

use std::collections::HashMap;
#[cfg(unix)]
use std::collections::HashSet;
#[cfg(unix)]
use std::sync::mpsc;
#[cfg(unix)]
use std::time::Duration;

use steward_shared::v1::Filesystem;

use crate::config::{MetricsConfig, matches_any};

/// Filesystem types served over the network; their `statvfs` may hang.
#[cfg(unix)]
const NETWORK_FS_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "9p",
    "afs",
    "lustre",
];

/// One line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: String,
    pub mount: String,
    pub fs_type: String,
    pub read_only: bool,
}

/// Parses mounts text (the `fstab` format, with octal escapes such as `\040` for a space).
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = unescape(fields.next()?);
            let mount = unescape(fields.next()?);
            let fs_type = fields.next()?.to_string();
            let read_only = fields.next()?.split(',').any(|option| option == "ro");
            Some(MountEntry {
                device,
                mount,
                fs_type,
                read_only,
            })
        })
        .collect()
}

fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts worth reporting: real filesystems, not excluded, one per device.
pub fn select(entries: Vec<MountEntry>, config: &MetricsConfig) -> Vec<MountEntry> {
    let mut by_device: HashMap<String, MountEntry> = HashMap::new();
    let mut order = Vec::new();
    for entry in entries {
        if config.exclude_fs_types.contains(&entry.fs_type)
            || matches_any(&config.exclude_mounts, &entry.mount)
        {
            continue;
        }
        match by_device.get_mut(&entry.device) {
            Some(kept) if entry.mount.len() < kept.mount.len() => *kept = entry,
            Some(_) => {}
            None => {
                order.push(entry.device.clone());
                by_device.insert(entry.device.clone(), entry);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|device| by_device.remove(&device))
        .collect()
}

#[cfg(unix)]
#[derive(Debug)]
pub(super) struct FilesystemSampler {
    network_timeout: Duration,
    /// Network mounts whose `statvfs` has not returned yet.
    stuck: HashSet<String>,
    stuck_tx: mpsc::Sender<String>,
    stuck_rx: mpsc::Receiver<String>,
}

#[cfg(unix)]
impl FilesystemSampler {
    pub(super) fn new(network_timeout_secs: u32) -> FilesystemSampler {
        let (stuck_tx, stuck_rx) = mpsc::channel();
        FilesystemSampler {
            network_timeout: Duration::from_secs(u64::from(network_timeout_secs.max(1))),
            stuck: HashSet::new(),
            stuck_tx,
            stuck_rx,
        }
    }

    pub(super) fn sample(&mut self, config: &MetricsConfig) -> Vec<Filesystem> {
        while let Ok(recovered) = self.stuck_rx.try_recv() {
            self.stuck.remove(&recovered);
        }
        let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
            return Vec::new();
        };
        select(parse_mounts(&text), config)
            .into_iter()
            .filter_map(|entry| {
                let stat = if NETWORK_FS_TYPES.contains(&entry.fs_type.as_str()) {
                    self.statvfs_with_timeout(&entry.mount)?
                } else {
                    rustix::fs::statvfs(entry.mount.as_str()).ok()?
                };
                Some(to_filesystem(entry, &stat))
            })
            .collect()
    }

    fn statvfs_with_timeout(&mut self, mount: &str) -> Option<rustix::fs::StatVfs> {
        if self.stuck.contains(mount) {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let path = mount.to_string();
        let recovered = self.stuck_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("statvfs".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let result = rustix::fs::statvfs(path.as_str()).ok();
                if tx.send(result).is_err() {
                    // The sampler gave up on this call: tell it the mount answers again.
                    let _ = recovered.send(path);
                }
            });
        if spawned.is_err() {
            return None;
        }
        match rx.recv_timeout(self.network_timeout) {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    mount,
                    "statvfs on network filesystem timed out; skipping it until it answers"
                );
                self.stuck.insert(mount.to_string());
                None
            }
        }
    }
}

#[cfg(unix)]
fn to_filesystem(entry: MountEntry, stat: &rustix::fs::StatVfs) -> Filesystem {
    let block = if stat.f_frsize > 0 {
        stat.f_frsize
    } else {
        stat.f_bsize
    };
    let total = stat.f_blocks.saturating_mul(block);
    let free = stat.f_bfree.saturating_mul(block);
    Filesystem {
        mount: entry.mount,
        device: entry.device,
        fs_type: entry.fs_type,
        total_bytes: total,
        used_bytes: total.saturating_sub(free),
        available_bytes: stat.f_bavail.saturating_mul(block),
        inodes_total: stat.f_files,
        inodes_used: stat.f_files.saturating_sub(stat.f_ffree),
        inodes_free: stat.f_ffree,
        read_only: entry.read_only,
    }
}

#[cfg(windows)]
#[derive(Debug)]
pub(super) struct FilesystemSampler {
    /// Created on first use, then refreshed (volumes and sizes only) each cycle.
    disks: Option<sysinfo::Disks>,
}

#[cfg(windows)]
impl FilesystemSampler {
    /// The timeout is for network filesystems, which are not listed on Windows.
    pub(super) fn new(_network_timeout_secs: u32) -> FilesystemSampler {
        FilesystemSampler { disks: None }
    }

    pub(super) fn sample(&mut self, config: &MetricsConfig) -> Vec<Filesystem> {
        use sysinfo::{DiskRefreshKind, Disks};
        let sizes_only = DiskRefreshKind::nothing().with_storage();
        let disks = match &mut self.disks {
            Some(disks) => {
                disks.refresh_specifics(true, sizes_only);
                disks
            }
            None => match Disks::new_with_refreshed_list_specifics(sizes_only) {
                Ok(disks) => self.disks.insert(disks),
                Err(_) => return Vec::new(),
            },
        };
        let mut sizes: HashMap<String, (u64, u64)> = HashMap::new();
        let entries = disks
            .iter()
            .map(|disk| {
                let mount = disk.mount_point().to_string_lossy().into_owned();
                sizes.insert(mount.clone(), (disk.total_space(), disk.available_space()));
                MountEntry {
                    device: disk.id().map_or_else(|| mount.clone(), volume_serial),
                    fs_type: disk.file_system().to_string_lossy().into_owned(),
                    read_only: disk.is_read_only(),
                    mount,
                }
            })
            .collect();
        select(entries, config)
            .into_iter()
            .map(|entry| {
                let (total, available) = sizes.get(&entry.mount).copied().unwrap_or_default();
                Filesystem {
                    mount: entry.mount,
                    device: entry.device,
                    fs_type: entry.fs_type,
                    total_bytes: total,
                    used_bytes: total.saturating_sub(available),
                    available_bytes: available,
                    inodes_total: 0,
                    inodes_used: 0,
                    inodes_free: 0,
                    read_only: entry.read_only,
                }
            })
            .collect()
    }
}

/// A volume serial number as `vol` and `dir` print it: `1A2B-3C4D`.
#[cfg(windows)]
fn volume_serial(serial: u64) -> String {
    format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MOUNTS: &str = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/mapper/vg-root / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1632280k,mode=755 0 0
/dev/sda1 /boot ext2 rw,relatime 0 0
/dev/sdb1 /srv/My\\040Data xfs ro,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw,relatime 0 0
/dev/mapper/vg-root /var/lib/docker/containers/x/hosts ext4 rw,relatime 0 0
/dev/loop3 /snap/core22/1380 squashfs ro,nodev,relatime 0 0
nas:/export /mnt/nas nfs4 rw,relatime,vers=4.2 0 0
";

    #[test]
    fn parses_escapes_and_read_only() {
        let entries = parse_mounts(MOUNTS);
        let data = entries.iter().find(|e| e.device == "/dev/sdb1").unwrap();
        assert_eq!(data.mount, "/srv/My Data");
        assert!(data.read_only);
        assert_eq!(entries.len(), 10);
    }

    #[test]
    fn pseudo_container_and_duplicate_mounts_are_left_out() {
        let selected = select(parse_mounts(MOUNTS), &MetricsConfig::default());
        let mounts: Vec<&str> = selected.iter().map(|e| e.mount.as_str()).collect();
        assert_eq!(mounts, vec!["/", "/boot", "/srv/My Data", "/mnt/nas"]);
    }

    #[test]
    fn exclusions_are_configurable() {
        let config = MetricsConfig {
            exclude_fs_types: vec![],
            exclude_mounts: vec!["/boot".into()],
            ..Default::default()
        };
        let selected = select(parse_mounts(MOUNTS), &config);
        assert!(selected.iter().any(|e| e.fs_type == "tmpfs"));
        assert!(!selected.iter().any(|e| e.mount == "/boot"));
    }

    #[cfg(unix)]
    #[test]
    fn the_live_root_filesystem_has_sizes() {
        let mut sampler = FilesystemSampler::new(2);
        let config = MetricsConfig {
            exclude_fs_types: vec![],
            exclude_mounts: vec![],
            ..Default::default()
        };
        let all = sampler.sample(&config);
        let root = all.iter().find(|f| f.mount == "/").unwrap();
        assert!(root.total_bytes > 0 && root.used_bytes <= root.total_bytes);
    }
}
