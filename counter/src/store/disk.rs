//! Free space of the file system that holds the state directory.

use std::path::Path;

/// Bytes available to an unprivileged writer on the file system of `path`
/// (`statvfs` `f_bavail * f_frsize`: the root reserve is not counted, since
/// the agent runs as its own user).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(path)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Free bytes (as [`free_bytes`]) and the size of the file system of
/// `path`.
pub fn space(path: &Path) -> std::io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(path)?;
    Ok((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_temp_dir_has_some_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(super::free_bytes(dir.path()).expect("statvfs") > 0);
    }
}
