//! Key files under `keys/` (mode 0600, never in the database, never logged) and
//! the passphrase-encrypted backup of keys and vault.
//!
//! Backup format: `MDCKEYS1` ‖ salt (16) ‖ nonce (24) ‖ XChaCha20-Poly1305
//! ciphertext of a JSON document, with the key derived by Argon2id.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use mdc_deid::PseudonymKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

const MAGIC: &[u8; 8] = b"MDCKEYS1";
pub const MIN_PASSPHRASE: usize = 12;

/// Writes `bytes` to a new file with mode 0600; refuses to overwrite.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(StoreError::io(path))?;
    f.write_all(bytes).map_err(StoreError::io(path))?;
    f.sync_all().map_err(StoreError::io(path))?;
    Ok(())
}

fn read_secret<const N: usize>(path: &Path) -> Result<[u8; N]> {
    let meta = fs::metadata(path).map_err(StoreError::io(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(StoreError::Config(format!(
            "{} is readable by group or others; run `chmod 600` on it",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(StoreError::io(path))?;
    bytes
        .try_into()
        .map_err(|_| StoreError::Config(format!("{} does not hold a {N}-byte key", path.display())))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

pub fn load_pseudonym_key(path: &Path) -> Result<PseudonymKey> {
    Ok(PseudonymKey::from_bytes(read_secret::<32>(path)?))
}

pub fn load_audit_key(path: &Path) -> Result<SigningKey> {
    Ok(SigningKey::from_bytes(&read_secret::<32>(path)?))
}

/// The decrypted content of a key backup.
#[derive(Serialize, Deserialize)]
pub struct BackupContents {
    pub format: String,
    pub created_at: String,
    pub key_id: String,
    pub pseudonym_mode: String,
    /// base64 of each file under keys/.
    pub files: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for BackupContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupContents")
            .field("key_id", &self.key_id)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn derive(passphrase: &str, salt: &[u8]) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| StoreError::Config(format!("key derivation failed: {e}")))?;
    Ok(key)
}

pub fn encrypt_backup(contents: &BackupContents, passphrase: &str) -> Result<Vec<u8>> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(StoreError::invalid(
            "passphrase",
            format!("must be at least {MIN_PASSPHRASE} characters"),
        ));
    }
    let salt: [u8; 16] = random_bytes();
    let nonce: [u8; 24] = random_bytes();
    let key = derive(passphrase, &salt)?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    let plain = serde_json::to_vec(contents).map_err(|e| StoreError::Config(e.to_string()))?;
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| StoreError::Config("encryption failed".into()))?;
    let mut out = Vec::with_capacity(8 + 16 + 24 + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

pub fn decrypt_backup(bytes: &[u8], passphrase: &str) -> Result<BackupContents> {
    if bytes.len() < 8 + 16 + 24 + 16 || &bytes[..8] != MAGIC {
        return Err(StoreError::invalid("backup file", "not an mdc key backup"));
    }
    let (salt, rest) = bytes[8..].split_at(16);
    let (nonce, sealed) = rest.split_at(24);
    let key = derive(passphrase, salt)?;
    let cipher = XChaCha20Poly1305::new((&key).into());
    let plain = cipher
        .decrypt(XNonce::from_slice(nonce), sealed)
        .map_err(|_| StoreError::invalid("passphrase", "wrong passphrase or damaged backup"))?;
    serde_json::from_slice(&plain)
        .map_err(|_| StoreError::invalid("backup file", "damaged backup content"))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(field: &str, s: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| StoreError::invalid(field, "not valid base64"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn contents() -> BackupContents {
        let mut files = std::collections::BTreeMap::new();
        files.insert("pseudonym.key".to_owned(), b64(&[9u8; 32]));
        BackupContents {
            format: "mdc-key-backup/1".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            key_id: "abcd1234".into(),
            pseudonym_mode: "keyed".into(),
            files,
        }
    }

    #[test]
    fn backups_round_trip_and_reject_a_wrong_passphrase() {
        let sealed = encrypt_backup(&contents(), "correct horse battery").unwrap();
        // The key bytes must not appear in the clear.
        assert!(!sealed.windows(8).any(|w| w == [9u8; 8]));
        let back = decrypt_backup(&sealed, "correct horse battery").unwrap();
        assert_eq!(
            unb64("f", &back.files["pseudonym.key"]).unwrap(),
            vec![9u8; 32]
        );
        assert!(decrypt_backup(&sealed, "wrong horse battery").is_err());
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(decrypt_backup(&damaged, "correct horse battery").is_err());
    }

    #[test]
    fn short_passphrases_are_refused() {
        assert!(matches!(
            encrypt_backup(&contents(), "short"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn secrets_are_written_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_secret(&p, &[1; 32]).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_secret(&p, &[2; 32]).is_err());
        assert_eq!(load_pseudonym_key(&p).unwrap().as_bytes(), &[1; 32]);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load_pseudonym_key(&p).is_err(),
            "a world-readable key is refused"
        );
    }
}
