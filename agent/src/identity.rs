//! The device's identity: its Ed25519 key and the enrollment line.
//!
//! `motcua keygen` creates the key (mode 0600, atomically, never replacing an
//! existing one without `--force`) and prints the enrollment line the DC
//! operator pastes into `motcua-dc device add`. `motcua identity` prints the
//! same line again from the existing key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use motcua_common::atomic::Overwrite;
use motcua_common::keyfile::{self, KeyFileError};
use motcua_protocol::{DeviceId, Enrollment};

use crate::config::AgentConfig;

/// Where the key is and whose it is, resolved from flags and configuration.
#[derive(Debug, Clone)]
pub struct IdentityTarget {
    /// The key file.
    pub key_file: PathBuf,
    /// The device id.
    pub device: DeviceId,
}

impl IdentityTarget {
    /// Flags win; what they leave open comes from the configuration file,
    /// which then must be readable and valid.
    pub fn resolve(
        config: &Path,
        key_file: Option<PathBuf>,
        device: Option<DeviceId>,
    ) -> Result<IdentityTarget> {
        if let (Some(key_file), Some(device)) = (&key_file, &device) {
            return Ok(IdentityTarget {
                key_file: key_file.clone(),
                device: device.clone(),
            });
        }
        let cfg = AgentConfig::load(config).map_err(anyhow::Error::new).with_context(|| {
            format!(
                "--key-file and --device were not both given, so they are read from {}; fix it or pass both flags",
                config.display()
            )
        })?;
        Ok(IdentityTarget {
            key_file: key_file.unwrap_or_else(|| cfg.device.key_file.as_path().to_owned()),
            device: device.unwrap_or(cfg.device.id),
        })
    }
}

/// Creates the device key and returns its enrollment line.
pub fn keygen(target: &IdentityTarget, force: bool) -> Result<Enrollment> {
    let overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    match keyfile::create(&target.key_file, overwrite) {
        Err(KeyFileError::Exists(path)) => bail!(
            "{} already exists: it is this device's identity. Pass --force only to replace it on purpose \
             (the DC operator must then enroll the new key)",
            path.display()
        ),
        other => Ok(enrollment(&target.device, &other?)),
    }
}

/// Loads the existing key (refusing loose permissions) and returns its
/// enrollment line.
pub fn show(target: &IdentityTarget) -> Result<Enrollment> {
    let key = keyfile::load(&target.key_file)?;
    Ok(enrollment(&target.device, &key))
}

fn enrollment(device: &DeviceId, key: &SigningKey) -> Enrollment {
    Enrollment {
        device: device.clone(),
        key: key.verifying_key(),
    }
}
