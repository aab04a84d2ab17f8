//! Atomic, durable file creation and replacement.
//!
//! The boxes at the counters lose power without warning. A file written in
//! place can be left half-written; this module writes a temporary file in the
//! same directory, flushes it to the device (`fsync`), renames it over the
//! target (atomic on POSIX file systems) and flushes the directory so the
//! rename itself survives. A reader sees the old file or the new one, never
//! a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Whether an existing file at the target may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`AtomicWriteError::Exists`] when the target exists.
    Refuse,
    /// Replace it.
    Allow,
}

/// Why a file could not be written. Each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// The target exists and overwriting was refused.
    #[error("{0} already exists; refusing to replace it")]
    Exists(PathBuf),
    /// The target has no parent directory or file name.
    #[error("{0} is not a file path")]
    NotAFilePath(PathBuf),
    /// Creating the temporary file failed.
    #[error("cannot create temporary file {path}: {source}")]
    Create {
        /// The temporary file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Writing or flushing the temporary file failed (e.g. disk full).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Renaming into place or flushing the directory failed.
    #[error("cannot move {from} into place as {to}: {source}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Writes `contents` to `path` atomically and durably; the file is created
/// with permission bits `mode` (before any byte is written, so a secret is
/// never readable by others, even briefly).
pub fn write(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), AtomicWriteError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(AtomicWriteError::NotAFilePath(path.to_owned()));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
        return Err(AtomicWriteError::Exists(path.to_owned()));
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A leftover from a crash of this same pid number is garbage: replace it.
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|source| AtomicWriteError::Create {
            path: tmp.clone(),
            source,
        })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(AtomicWriteError::Write { path: tmp, source });
    }
    let renamed = if overwrite == Overwrite::Refuse {
        // hard_link fails if the target appeared meanwhile: no race replaces
        // a key another process just wrote.
        fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
    } else {
        fs::rename(&tmp, path)
    };
    let synced = renamed.and_then(|()| File::open(dir)?.sync_all());
    synced.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        if source.kind() == io::ErrorKind::AlreadyExists {
            AtomicWriteError::Exists(path.to_owned())
        } else {
            AtomicWriteError::Rename {
                from: tmp.clone(),
                to: path.to_owned(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_with_mode_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k");
        write(&p, b"one", 0o600, Overwrite::Refuse).expect("first write");
        assert_eq!(fs::read(&p).expect("read"), b"one");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write(&p, b"two", 0o600, Overwrite::Refuse),
            Err(AtomicWriteError::Exists(_))
        ));
        assert_eq!(fs::read(&p).expect("read"), b"one");
        write(&p, b"two", 0o600, Overwrite::Allow).expect("replace");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn a_missing_directory_names_the_step() {
        let err = write(
            Path::new("/nonexistent-motcua/x"),
            b"",
            0o600,
            Overwrite::Refuse,
        )
        .expect_err("fails");
        assert!(matches!(err, AtomicWriteError::Create { .. }), "{err}");
    }
}
