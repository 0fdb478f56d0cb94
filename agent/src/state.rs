//! The agent's state directory: its private key, its certificate, the pinned collector CA, who
//! it is and where its collector is, and the sequence counter. Files holding secrets are 0600.
//!
//! On Windows there are no mode bits to set: who may read the state directory is its ACL.
//! `steward-agent install` restricts it to SYSTEM and Administrators, inherited by everything in
//! it (in place of what %ProgramData% grants Users). The agent does not change ACLs itself, so
//! files there inherit the directory's: a directory `enroll` creates before `install` has the ACL
//! it inherits (readable by Users) until `install` restricts it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

const IDENTITY_FILE: &str = "agent.json";
const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.crt";
const CA_FILE: &str = "collector-ca.crt";
const SEQ_FILE: &str = "seq";
/// A renewed key and certificate, written in full before either replaces the current pair.
const RENEWED_KEY_FILE: &str = "renewed.key";
const RENEWED_CERT_FILE: &str = "renewed.crt";
/// Content hash of the last inventory the collector acknowledged in full.
const INVENTORY_HASH_FILE: &str = "inventory.sha256";
/// Sequence numbers are reserved on disk in blocks, so a restart never reuses one and the agent
/// writes the counter once per block instead of once per report.
const SEQ_BLOCK: u64 = 1000;

/// What enrollment gave this agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    /// Base URL of the collector, e.g. `https://collector.example.org:8443`.
    pub collector_url: String,
    /// `sha256:<hex>` of the collector CA pinned at enrollment.
    pub ca_fingerprint: String,
    pub enrolled_at_ms: i64,
    /// When the current certificate was received and when it expires (Unix ms). Unknown for
    /// an agent enrolled before renewal existed: it renews once to learn them.
    #[serde(default)]
    pub cert_issued_ms: Option<i64>,
    #[serde(default)]
    pub cert_not_after_ms: Option<i64>,
}

/// The loaded identity with its key material, ready to build a client.
#[derive(Debug)]
pub struct Enrolled {
    pub identity: Identity,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_enrolled(&self) -> bool {
        self.path.join(IDENTITY_FILE).exists()
    }

    /// Writes the new private key (0600) into a private state directory, creating it: done
    /// before enrollment spends its token, so an unwritable directory fails first.
    pub fn save_key(&self, key_pem: &str) -> Result<()> {
        create_private_dir(&self.path)?;
        write_atomic(&self.path.join(KEY_FILE), key_pem.as_bytes(), true)
    }

    /// Stores a fresh enrollment, replacing any previous one.
    pub fn save(&self, enrolled: &Enrolled) -> Result<()> {
        create_private_dir(&self.path)?;
        write_atomic(&self.path.join(KEY_FILE), enrolled.key_pem.as_bytes(), true)?;
        write_atomic(
            &self.path.join(CERT_FILE),
            enrolled.cert_pem.as_bytes(),
            false,
        )?;
        write_atomic(&self.path.join(CA_FILE), enrolled.ca_pem.as_bytes(), false)?;
        let json = serde_json::to_vec_pretty(&enrolled.identity)?;
        // The identity file goes last: its presence means the enrollment is complete.
        write_atomic(&self.path.join(IDENTITY_FILE), &json, false)?;
        Ok(())
    }

    /// Replaces the key and certificate with renewed ones, and records the new certificate's
    /// dates. Both new files are written (and synced) before either is renamed into place, so
    /// a crash leaves the old pair or the new one; [`load`](Self::load) finishes a swap a crash
    /// interrupted.
    pub fn save_renewal(
        &self,
        key_pem: &str,
        cert_pem: &str,
        issued_ms: i64,
        not_after_ms: i64,
    ) -> Result<Identity> {
        write_atomic(&self.path.join(RENEWED_KEY_FILE), key_pem.as_bytes(), true)?;
        write_atomic(
            &self.path.join(RENEWED_CERT_FILE),
            cert_pem.as_bytes(),
            false,
        )?;
        self.finish_renewal()?;
        let identity_path = self.path.join(IDENTITY_FILE);
        let text = std::fs::read_to_string(&identity_path)
            .with_context(|| format!("cannot read {}", identity_path.display()))?;
        let mut identity: Identity = serde_json::from_str(&text)
            .with_context(|| format!("invalid {}", identity_path.display()))?;
        identity.cert_issued_ms = Some(issued_ms);
        identity.cert_not_after_ms = Some(not_after_ms);
        write_atomic(
            &identity_path,
            &serde_json::to_vec_pretty(&identity)?,
            false,
        )?;
        Ok(identity)
    }

    /// Finishes a renewal a crash interrupted; the running agent calls it once at start (never
    /// `status`, which may run beside a renewal in progress).
    pub fn finish_interrupted_renewal(&self) -> Result<()> {
        self.finish_renewal()
    }

    /// Moves a renewed pair into place: the key, then the certificate, syncing the directory
    /// after each rename so they survive a power cut in that order. The certificate is written
    /// after the key, so a renewed certificate alone means the key already moved; a renewed
    /// key alone means the certificate never arrived, and the old pair stays.
    fn finish_renewal(&self) -> Result<()> {
        let key = self.path.join(RENEWED_KEY_FILE);
        let cert = self.path.join(RENEWED_CERT_FILE);
        let rename = |from: &Path, to: &str| -> Result<()> {
            std::fs::rename(from, self.path.join(to))
                .with_context(|| format!("cannot move {} into place", from.display()))?;
            #[cfg(unix)]
            std::fs::File::open(&self.path)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync {}", self.path.display()))?;
            Ok(())
        };
        match (key.exists(), cert.exists()) {
            (true, true) => {
                rename(&key, KEY_FILE)?;
                rename(&cert, CERT_FILE)?;
            }
            (false, true) => rename(&cert, CERT_FILE)?,
            (true, false) => std::fs::remove_file(&key)
                .with_context(|| format!("cannot remove {}", key.display()))?,
            (false, false) => {}
        }
        Ok(())
    }

    pub fn load(&self) -> Result<Enrolled> {
        let identity_path = self.path.join(IDENTITY_FILE);
        if !identity_path.exists() {
            bail!(
                "this agent is not enrolled: no {} (run `steward-agent enroll` first)",
                identity_path.display()
            );
        }
        let read = |name: &str| -> Result<String> {
            let path = self.path.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))
        };
        let identity: Identity = serde_json::from_str(&read(IDENTITY_FILE)?)
            .with_context(|| format!("invalid {}", identity_path.display()))?;
        // The stored CA must still be the one certificate pinned at enrollment.
        let ca_pem = crate::enroll::pinned_ca(&read(CA_FILE)?, &identity.ca_fingerprint)
            .with_context(|| {
                format!(
                    "{} is not the CA pinned at enrollment",
                    self.path.join(CA_FILE).display()
                )
            })?;
        Ok(Enrolled {
            identity,
            key_pem: read(KEY_FILE)?,
            cert_pem: read(CERT_FILE)?,
            ca_pem,
        })
    }

    /// The content hash of the last inventory the collector acknowledged, if any.
    pub fn inventory_hash(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path.join(INVENTORY_HASH_FILE)).ok()?;
        let hash = text.trim();
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_string())
    }

    /// Records (or with `None` forgets) the last acknowledged inventory's hash.
    pub fn set_inventory_hash(&self, hash: Option<&str>) -> Result<()> {
        let path = self.path.join(INVENTORY_HASH_FILE);
        match hash {
            Some(hash) => write_atomic(&path, format!("{hash}\n").as_bytes(), false),
            None => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => {
                    Err(error).with_context(|| format!("cannot remove {}", path.display()))
                }
            },
        }
    }

    /// Reserves the next block of sequence numbers. A block starts no lower than the current
    /// Unix time in milliseconds, so a state directory restored from a snapshot or backup (a
    /// rewound counter) still never reuses a number the collector has seen.
    pub fn reserve_seq_block(&self) -> Result<SeqBlock> {
        let path = self.path.join(SEQ_FILE);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .with_context(|| format!("corrupt {}", path.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 1,
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let now = u64::try_from(crate::metrics::unix_ms(std::time::SystemTime::now())).unwrap_or(0);
        let start = start.max(now);
        let end = start.saturating_add(SEQ_BLOCK);
        write_atomic(&path, format!("{end}\n").as_bytes(), false)?;
        Ok(SeqBlock { next: start, end })
    }
}

/// A reserved run of sequence numbers `[next, end)`.
#[derive(Debug)]
pub struct SeqBlock {
    next: u64,
    end: u64,
}

/// Hands out strictly increasing sequence numbers, reserving blocks on disk as needed.
#[derive(Debug)]
pub struct Sequencer {
    state: StateDir,
    block: SeqBlock,
}

impl Sequencer {
    pub fn new(state: StateDir) -> Result<Sequencer> {
        let block = state.reserve_seq_block()?;
        Ok(Sequencer { state, block })
    }

    pub fn next_seq(&mut self) -> Result<u64> {
        if self.block.next >= self.block.end {
            self.block = self.state.reserve_seq_block()?;
        }
        let seq = self.block.next;
        self.block.next += 1;
        Ok(seq)
    }
}

/// Creates the state directory; on Unix it is made 0700. On Windows its ACL is the service
/// install's (see the module documentation).
fn create_private_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new content,
/// never half of one; the directory is synced so the rename itself survives a power cut. Each
/// file has its own temporary name, created fresh, so it always gets the mode asked for.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot remove stale {}", tmp.display()));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    // Windows: the file inherits the state directory's ACL (see the module documentation).
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    #[cfg(unix)]
    give_to_directory_owner(&tmp)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    // Windows: std cannot open a directory to sync it, so the rename is as durable as NTFS's
    // metadata journal makes it.
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

/// When root writes into a directory a service user owns (`enroll` or `steward-collector init`
/// run with sudo after the package created the directory), the file goes to that user, or the
/// service could not read its own identity. Anyone else's files are theirs already.
#[cfg(unix)]
pub fn give_to_directory_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let owner = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if owner.uid() == 0 {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(owner.uid()), Some(owner.gid()))
        .with_context(|| format!("cannot give {} to uid {}", path.display(), owner.uid()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn root_writes_into_a_service_users_directory_as_that_user() {
        use std::os::unix::fs::MetadataExt;
        if !rustix::process::geteuid().is_root() {
            return; // only root can give files away; the suite runs as root in CI
        }
        let dir = tempfile::tempdir().unwrap();
        let service = dir.path().join("service");
        std::fs::create_dir(&service).unwrap();
        std::os::unix::fs::chown(&service, Some(4242), Some(4343)).unwrap();
        write_atomic(&service.join("agent.key"), b"k", true).unwrap();
        let meta = std::fs::metadata(service.join("agent.key")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (4242, 4343, 0o600)
        );
        // A root-owned directory keeps root's files.
        write_atomic(&dir.path().join("mine"), b"m", false).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("mine")).unwrap().uid(), 0);
    }

    #[test]
    fn a_renewal_interrupted_by_a_crash_leaves_a_matching_pair() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        write(KEY_FILE, "old key");
        write(CERT_FILE, "old cert");
        // Crashed while writing the certificate: the old pair stays.
        write(RENEWED_KEY_FILE, "new key");
        state.finish_renewal().unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("old key".into(), "old cert".into())
        );
        // Crashed before the renames: both move.
        write(RENEWED_KEY_FILE, "new key");
        write(RENEWED_CERT_FILE, "new cert");
        state.finish_renewal().unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("new key".into(), "new cert".into())
        );
        // Crashed between the renames: the certificate follows its key.
        write(KEY_FILE, "newer key");
        write(RENEWED_CERT_FILE, "newer cert");
        state.finish_renewal().unwrap();
        assert_eq!(
            (read(KEY_FILE), read(CERT_FILE)),
            ("newer key".into(), "newer cert".into())
        );
        assert!(!dir.path().join(RENEWED_KEY_FILE).exists());
        assert!(!dir.path().join(RENEWED_CERT_FILE).exists());
    }

    #[test]
    fn sequence_numbers_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut first = Sequencer::new(state.clone()).unwrap();
        let a: Vec<u64> = (0..3).map(|_| first.next_seq().unwrap()).collect();
        drop(first);
        let mut second = Sequencer::new(state.clone()).unwrap();
        let b = second.next_seq().unwrap();
        assert_eq!(a[1], a[0] + 1);
        assert_eq!(a[2], a[0] + 2);
        assert!(b > a[2], "restarted agent reused a sequence number: {b}");
        for _ in 0..SEQ_BLOCK + 5 {
            second.next_seq().unwrap();
        }
        let c = second.next_seq().unwrap();
        assert!(c > b + SEQ_BLOCK);
    }

    #[test]
    fn regression_a_rewound_sequence_file_does_not_reuse_numbers() {
        // A VM snapshot restored the seq file to an old value; the collector then took every
        // new report for a duplicate and dropped it.
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let first = Sequencer::new(state.clone()).unwrap().next_seq().unwrap();
        std::fs::write(dir.path().join(SEQ_FILE), "1\n").unwrap();
        let after_rewind = Sequencer::new(state).unwrap().next_seq().unwrap();
        assert!(after_rewind >= first, "{after_rewind} < {first}");
        assert!(
            after_rewind > 1_700_000_000_000,
            "blocks start at the current time in ms"
        );
    }

    #[cfg(unix)]
    #[test]
    fn regression_a_stale_temporary_file_cannot_give_the_key_a_wider_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".agent.key.tmp");
        std::fs::write(&stale, "old").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&dir.path().join(KEY_FILE), b"KEY", true).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&ca_key)
            .unwrap();
        state
            .save(&Enrolled {
                identity: Identity {
                    agent_id: "a-1".into(),
                    collector_url: "https://127.0.0.1:1".into(),
                    ca_fingerprint: crate::fingerprint(ca.der()),
                    enrolled_at_ms: 0,
                    cert_issued_ms: None,
                    cert_not_after_ms: None,
                },
                key_pem: "KEY".into(),
                cert_pem: "CERT".into(),
                ca_pem: ca.pem(),
            })
            .unwrap();
        let mode = std::fs::metadata(dir.path().join("state").join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = state.load().unwrap();
        assert_eq!(loaded.identity.agent_id, "a-1");
        assert_eq!(loaded.key_pem, "KEY");
    }

    #[test]
    fn not_enrolled_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let error = StateDir::new(dir.path()).load().unwrap_err().to_string();
        assert!(error.contains("not enrolled"), "{error}");
    }
}
