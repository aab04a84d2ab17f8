//! Ed25519 signing keys on disk.
//!
//! Format: PKCS#8 (RFC 8410 for Ed25519) in PEM, as `openssl genpkey
//! -algorithm ed25519` writes it, so operators can inspect a key with
//! standard tools. A key file is created with mode 0600 through an atomic
//! write, and, like ssh, loading refuses a key that the group or others may
//! read: a box at a counter can be stolen or shared, and a readable key lets
//! anyone sign as the counter.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};

use zeroize::Zeroizing;

use crate::atomic::{self, AtomicWriteError, Overwrite};

/// Why a key could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The operating system's random source failed.
    #[error("cannot read the system random source to generate a key: {0}")]
    Random(String),
    /// A key file is already there; keys are identities and are replaced
    /// only when the caller says so.
    #[error("{0} already exists; refusing to replace a key")]
    Exists(PathBuf),
    /// Writing the key file failed.
    #[error("cannot write key file: {0}")]
    Write(#[from] AtomicWriteError),
    /// The key file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Group or others may read or write the key file.
    #[error(
        "key file {path} has mode {mode:04o}: group or others can access it, so the key may be known to others; \
         run 'chmod 600 {path}' (and rotate the key if the file was ever exposed)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a PKCS#8 PEM Ed25519 private key.
    #[error(
        "key file {path} is not an Ed25519 private key in PKCS#8 PEM ('-----BEGIN PRIVATE KEY-----')"
    )]
    Format {
        /// The key file.
        path: PathBuf,
    },
}

/// A fresh key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(key)
}

/// Generates a key and writes it to `path` (mode 0600, atomically):
/// `keygen` for the device and the DC alike. An existing file is refused
/// with [`KeyFileError::Exists`] unless `overwrite` allows replacing it.
pub fn create(path: &Path, overwrite: Overwrite) -> Result<SigningKey, KeyFileError> {
    let key = generate()?;
    save(path, &key, overwrite)?;
    Ok(key)
}

/// Writes `key` to `path` (mode 0600, atomically). Refuses to replace an
/// existing file unless `overwrite` allows it.
pub fn save(path: &Path, key: &SigningKey, overwrite: Overwrite) -> Result<(), KeyFileError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyFileError::Format {
            path: path.to_owned(),
        })?;
    atomic::write(path, pem.as_bytes(), 0o600, overwrite).map_err(|e| match e {
        AtomicWriteError::Exists(p) => KeyFileError::Exists(p),
        other => KeyFileError::Write(other),
    })?;
    Ok(())
}

/// Loads the key at `path`, refusing it when its permissions are too open.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let read_err = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    // Wiped from memory when dropped.
    let pem = Zeroizing::new(fs::read_to_string(path).map_err(read_err)?);
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyFileError::Format {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_key_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("device.key");
        let key = generate().expect("random");
        save(&p, &key, Overwrite::Refuse).expect("save");
        assert_eq!(load(&p).expect("load").to_bytes(), key.to_bytes());
        let text = fs::read_to_string(&p).expect("read");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
    }

    #[test]
    fn a_key_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("device.key");
        save(&p, &generate().expect("random"), Overwrite::Refuse).expect("save");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = load(&p).expect_err("refused");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(load(&p).is_ok());
    }

    #[test]
    fn garbage_is_a_format_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("device.key");
        atomic::write(&p, b"not a key", 0o600, Overwrite::Refuse).expect("write");
        assert!(matches!(load(&p), Err(KeyFileError::Format { .. })));
    }
}
