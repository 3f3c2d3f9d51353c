//! The device's Ed25519 key: made on first start, kept in a file only the agent's user can read.
//!
//! The file holds the 32-byte secret seed as hex. It is created with mode 0600 before the secret is written
//! (never world-readable, not even for a moment) and a key file readable by others is refused. The public key
//! is what the central service registers for the device.

use central_protocol::{SigningKey, VerifyingKey};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("device key {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("device key {path} is readable by group or others (mode {mode:o}); run `chmod 600` on it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("device key {path} is not 64 hex characters")]
    Malformed { path: PathBuf },
    #[error("no randomness for a new device key: {0}")]
    Random(String),
}

/// The device's signing key and where it lives.
pub struct DeviceKey {
    key: SigningKey,
    pub path: PathBuf,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("DeviceKey").field("path", &self.path).field("public", &self.public_hex()).finish()
    }
}

impl DeviceKey {
    /// Loads the key at `path`, or creates it (and its folder) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.to_path_buf(), source };
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
                }
                let text = std::fs::read_to_string(path).map_err(io)?;
                let seed: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| KeyError::Malformed { path: path.to_path_buf() })?;
                Ok(Self { key: SigningKey::from_bytes(&seed), path: path.to_path_buf() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                // Written beside and renamed, so a crash never leaves a half-written key.
                let tmp = path.with_extension("partial");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(io)?;
                file.write_all(hex::encode(seed).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                tracing::info!(path = %path.display(), "new device key created");
                Ok(Self { key: SigningKey::from_bytes(&seed), path: path.to_path_buf() })
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as hex, for registration with the central service.
    /// Where the key is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_with_0600_and_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/device.key");
        let first = DeviceKey::load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = DeviceKey::load_or_create(&path).expect("load");
        assert_eq!(first.public_hex(), again.public_hex());
        assert!(!format!("{again:?}").contains(&std::fs::read_to_string(&path).expect("read")));
    }

    #[test]
    fn a_key_readable_by_others_or_malformed_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.key");
        std::fs::write(&path, "00").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(DeviceKey::load_or_create(&path), Err(KeyError::Permissions { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(DeviceKey::load_or_create(&path), Err(KeyError::Malformed { .. })));
    }
}
