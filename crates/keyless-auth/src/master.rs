//! The master key: 32 random bytes kept in `<data-dir>/master.key` (mode 0600).
//!
//! Every other server key is derived from it with HMAC-SHA256 over a fixed
//! label, so one file is all that must be protected and backed up.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;

pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

/// Failure to open sealed data.
#[derive(Debug, thiserror::Error)]
#[error("sealed data is invalid or was sealed with another master key")]
pub struct UnsealError;

impl MasterKey {
    /// Loads the key file, creating it with fresh random bytes if it does not
    /// exist. Rejects a file that others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, MasterKeyError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(MasterKeyError::Invalid(format!(
                        "master key file {} has mode {:o}: expected no access for group and others (chmod 600)",
                        path.display(),
                        mode & 0o777
                    )));
                }
                let bytes: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    MasterKeyError::Invalid(format!("master key file {} has {} bytes: expected {KEY_LEN}", path.display(), bytes.len()))
                })?;
                Ok(MasterKey { bytes: Zeroizing::new(bytes) })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| MasterKeyError::Invalid("system random source failed".into()))?;
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
                file.write_all(bytes.as_ref())?;
                file.sync_all()?;
                Ok(MasterKey { bytes })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// A key for testing only; never use it for a real data directory.
    pub fn insecure_fixed_for_tests(byte: u8) -> Self {
        MasterKey { bytes: Zeroizing::new([byte; KEY_LEN]) }
    }

    /// Derives a 32-byte subkey for one purpose.
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_ref());
        let tag = hmac::sign(&key, format!("keyless/v1/{label}").as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// AES-256-GCM with a random nonce, the nonce stored before the ciphertext.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256-GCM.
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!("AES-256-GCM takes 32-byte keys"));
        Sealer { key: LessSafeKey::new(unbound) }
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The OS random source does not fail on Linux once booted; if it ever
        // did, sealing with a zero nonce would be unsafe, so stop the process.
        aws_lc_rs::rand::fill(&mut nonce).unwrap_or_else(|_| panic!("system random source failed"));
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .unwrap_or_else(|_| unreachable!("sealing a buffer in memory cannot fail"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, UnsealError> {
        if sealed.len() < NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError)?;
        let mut buf = ciphertext.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| UnsealError)?;
        Ok(plain.to_vec())
    }
}

/// Failure to load or create the master key file.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_roundtrip_and_aad_binding() {
        let master = MasterKey::insecure_fixed_for_tests(7);
        let sealer = Sealer::new(&master.derive("test"));
        let sealed = sealer.seal(b"secret", b"key-1");
        assert_eq!(sealer.open(&sealed, b"key-1").unwrap(), b"secret");
        assert!(sealer.open(&sealed, b"key-2").is_err());
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let master = MasterKey::insecure_fixed_for_tests(7);
        let sealer = Sealer::new(&master.derive("test"));
        let mut sealed = sealer.seal(b"secret", b"");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(sealer.open(&sealed, b"").is_err());
    }

    #[test]
    fn derived_keys_differ_by_label() {
        let master = MasterKey::insecure_fixed_for_tests(1);
        assert_ne!(*master.derive("a"), *master.derive("b"));
    }
}
