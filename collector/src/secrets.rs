//! Credentials at rest (SNMP communities and v3 passphrases, later ITSM passwords) are sealed
//! with ChaCha20-Poly1305 under a key kept outside the database, in `secrets.key` beside it
//! (0600). A stolen or backed-up database alone reveals no credential; the key and the
//! database are needed together. Each sealed value is bound to what it belongs to (the
//! associated data, e.g. `snmp-target:10.0.0.1:161`), so a value copied onto another row does
//! not open.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The key file in the data directory.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

/// The sealing key. `Debug` shows nothing of it.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Loads `DATA_DIR/secrets.key`, creating it (32 random bytes, hex, mode 0600) if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretBox> {
        let path = data_dir.join(SECRETS_KEY_FILE);
        let bytes = match std::fs::read_to_string(&path) {
            Ok(text) => hex::decode(text.trim())
                .with_context(|| format!("{} is not a hex key", path.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = crate::random_bytes::<32>()?;
                steward_agent::state::write_atomic(
                    &path,
                    format!("{}\n", hex::encode(key)).as_bytes(),
                    true,
                )?;
                key.to_vec()
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        SecretBox::from_key(&bytes).with_context(|| format!("bad key in {}", path.display()))
    }

    pub fn from_key(bytes: &[u8]) -> Result<SecretBox> {
        if bytes.len() != 32 {
            bail!("the key must be 32 bytes, found {}", bytes.len());
        }
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow::anyhow!("the key was refused"))?;
        Ok(SecretBox {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `plaintext` bound to `context`: a random nonce, then ciphertext and tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes = crate::random_bytes::<NONCE_LEN>()?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`seal`](Self::seal) made for the same `context`; any change to the bytes,
    /// the context or the key is an error.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            bail!("sealed value for {context} is truncated");
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("bad nonce for {context}"))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| {
                anyhow::anyhow!(
                    "the credentials of {context} do not open with this key (was {SECRETS_KEY_FILE} replaced?)"
                )
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load_or_create(dir.path()).unwrap();
        let sealed = secrets
            .seal("snmp-target:r1:161", b"s3cret-community")
            .unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        // The same key file again opens it.
        let again = SecretBox::load_or_create(dir.path()).unwrap();
        assert_eq!(
            again.open("snmp-target:r1:161", &sealed).unwrap(),
            b"s3cret-community"
        );
        assert!(again.open("snmp-target:r2:161", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(again.open("snmp-target:r1:161", &tampered).is_err());
        let other = SecretBox::from_key(&[7u8; 32]).unwrap();
        assert!(other.open("snmp-target:r1:161", &sealed).is_err());
        assert!(again.open("snmp-target:r1:161", &sealed[..5]).is_err());
        assert_eq!(format!("{again:?}"), "SecretBox(..)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRETS_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
