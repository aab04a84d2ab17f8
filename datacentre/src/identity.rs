//! The DC's receipt-signing key.
//!
//! Created and loaded exactly like a device key (PKCS#8 PEM, mode 0600,
//! atomic write, loose permissions refused). Its public half is what every
//! agent pins in `dc.public_key`; `motcua-dc keygen` prints that line.

use std::path::Path;

use anyhow::{Result, bail};
use ed25519_dalek::VerifyingKey;
use motcua_common::atomic::Overwrite;
use motcua_common::keyfile::{self, KeyFileError};
use motcua_protocol::KeyId;

/// Creates the DC key at `path` and returns its public key.
pub fn keygen(path: &Path, force: bool) -> Result<VerifyingKey> {
    let overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    match keyfile::create(path, overwrite) {
        Err(KeyFileError::Exists(path)) => bail!(
            "{} already exists: every counter trusts receipts signed by it. Pass --force only to replace it \
             on purpose, after provisioning the new public key to every counter",
            path.display()
        ),
        other => Ok(other?.verifying_key()),
    }
}

/// Loads the DC key at `path` (refusing loose permissions) and returns its
/// public key.
pub fn public_key(path: &Path) -> Result<VerifyingKey> {
    Ok(keyfile::load(path)?.verifying_key())
}

/// The line an agent's `[dc]` section takes, with the kid as a comment.
pub fn agent_config_line(key: &VerifyingKey) -> String {
    format!(
        "public_key = \"ed25519:{}\"  # kid {}",
        hex::encode(key.as_bytes()),
        KeyId::of(key)
    )
}
