//! The counter's state directory (`store.state_dir`, `/var/lib/motcua` by
//! default) and the name of every file it holds.
//!
//! [`StateDir`] is made once from the configuration and passed whole;
//! nothing else joins these file names, and nothing derives the directory
//! back from a file's path.

use std::path::{Path, PathBuf};

use crate::store::DB_FILE;

/// The staff accounts' file name (kiosk logins, Argon2id hashes).
pub const STAFF_FILE: &str = "staff.toml";
/// The device's Ed25519 signing key's file name, as `motcua provision`
/// writes it.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// The TLS client key's file name, as `motcua provision` writes it.
pub const TLS_KEY_FILE: &str = "tls.key";
/// The TLS certificate request's file name, as `motcua provision` writes
/// it.
pub const CSR_FILE: &str = "device.csr";

/// The file `motcua run` holds locked while it runs.
pub const RUN_LOCK_FILE: &str = "run.lock";

/// `motcua run`'s hold on the state directory: an exclusive advisory lock
/// on [`RUN_LOCK_FILE`], released when dropped or when the process ends,
/// however it ends.
#[derive(Debug)]
pub struct RunLock(#[allow(dead_code)] std::fs::File);

/// The directory of the database, the staff file and, as provisioned, the
/// device's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    /// The state directory at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir(dir.into())
    }

    /// The directory itself (free space is measured here).
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Takes the run lock: `Ok(None)` when another process holds it (an
    /// agent already runs on this directory).
    pub fn lock_run(&self) -> std::io::Result<Option<RunLock>> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.0.join(RUN_LOCK_FILE))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(RunLock(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether an agent runs on this directory now (holds the run lock).
    /// A directory that cannot be read counts as not running.
    pub fn agent_running(&self) -> bool {
        let Ok(f) = std::fs::File::open(self.0.join(RUN_LOCK_FILE)) else {
            return false;
        };
        matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// The SQLite database: dossiers and the signed journal.
    pub fn db(&self) -> PathBuf {
        self.0.join(DB_FILE)
    }

    /// The kiosk's staff accounts, unless `kiosk.staff_file` says otherwise.
    pub fn staff(&self) -> PathBuf {
        self.0.join(STAFF_FILE)
    }

    /// The device's signing key as provisioned (the configuration's
    /// `device.key_file` names the one in use).
    pub fn device_key(&self) -> PathBuf {
        self.0.join(DEVICE_KEY_FILE)
    }

    /// The TLS client key as provisioned.
    pub fn tls_key(&self) -> PathBuf {
        self.0.join(TLS_KEY_FILE)
    }

    /// What the running agent last learnt of the DC's time
    /// ([`crate::clock::SavedLesson`]), for `doctor` and for the agent
    /// restarted in the same boot.
    pub fn clock_lesson(&self) -> PathBuf {
        self.0.join("clock-dc.json")
    }

    /// The TLS certificate request as provisioned.
    pub fn csr(&self) -> PathBuf {
        self.0.join(CSR_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_in_the_directory() {
        let d = StateDir::new("/var/lib/motcua");
        assert_eq!(d.path(), Path::new("/var/lib/motcua"));
        assert_eq!(d.db(), Path::new("/var/lib/motcua/motcua.db"));
        assert_eq!(d.staff(), Path::new("/var/lib/motcua/staff.toml"));
        assert_eq!(d.device_key(), Path::new("/var/lib/motcua/device.key"));
        assert_eq!(d.tls_key(), Path::new("/var/lib/motcua/tls.key"));
        assert_eq!(d.csr(), Path::new("/var/lib/motcua/device.csr"));
    }
}
