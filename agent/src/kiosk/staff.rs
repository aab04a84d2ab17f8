//! Staff accounts of the kiosk: a TOML file in the state directory
//! (`staff.toml`, mode 0600), written only by `motcua staff` and read by
//! the kiosk, which reloads it when it changes.
//!
//! A password or PIN is never stored: only its Argon2id hash (PHC string,
//! the `argon2` crate's defaults: 19 MiB, 2 passes). A login for an
//! unknown account costs the same hash as a known one, so timing does not
//! tell which accounts exist.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use motcua_common::atomic::{self, Overwrite};
use motcua_protocol::StaffId;
use serde::{Deserialize, Serialize};

pub use motcua_counter::state_dir::STAFF_FILE;

/// Shortest accepted password or PIN.
pub const MIN_SECRET: usize = 6;

/// One account.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Login, also what the journal records as the staff member.
    pub id: StaffId,
    /// Full name, shown in the kiosk's header and on receipts.
    pub name: String,
    /// Argon2id PHC string.
    pub hash: String,
    /// A disabled account cannot log in; its history stays.
    #[serde(default)]
    pub disabled: bool,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    #[serde(default)]
    staff: Vec<Account>,
}

/// Reads the accounts; a missing file is no accounts.
pub fn load(path: &Path) -> Result<Vec<Account>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let body: FileBody =
        toml::from_str(&text).with_context(|| format!("{} is not a staff file", path.display()))?;
    Ok(body.staff)
}

fn save(path: &Path, accounts: Vec<Account>) -> Result<()> {
    let mut text = String::from(
        "# motcua kiosk staff accounts: written by `motcua staff`, do not edit.\n\
         # Each hash is Argon2id; the passwords themselves are not stored.\n\n",
    );
    text.push_str(&toml::to_string(&FileBody { staff: accounts })?);
    atomic::write(path, text.as_bytes(), 0o600, Overwrite::Allow)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub use motcua_common::login::{hash, matches, matches_in};

/// Why a secret is refused, in Vietnamese, or None.
pub fn weak(secret: &str) -> Option<String> {
    if secret.chars().count() < MIN_SECRET {
        Some(format!(
            "Mật khẩu hoặc mã PIN phải có ít nhất {MIN_SECRET} ký tự."
        ))
    } else if secret.chars().count() > 128 {
        Some("Mật khẩu dài quá 128 ký tự.".into())
    } else {
        None
    }
}

/// Adds an account, or with `replace` sets a new name and secret for an
/// existing one (and enables it).
pub fn add(path: &Path, id: StaffId, name: &str, secret: &str, replace: bool) -> Result<()> {
    if let Some(w) = weak(secret) {
        bail!("{w}");
    }
    let name = motcua_counter::domain::text::clean(name);
    if name.is_empty() || name.chars().count() > 100 {
        bail!("the name must have 1 to 100 characters");
    }
    let mut accounts = load(path)?;
    let hash = hash(secret)?;
    match accounts.iter_mut().find(|a| a.id == id) {
        Some(_) if !replace => bail!("{id} exists; --replace sets a new password"),
        Some(a) => {
            a.name = name;
            a.hash = hash;
            a.disabled = false;
        }
        None => accounts.push(Account {
            id,
            name,
            hash,
            disabled: false,
        }),
    }
    save(path, accounts)
}

/// Disables an account (it stays, so its name still shows on old records).
pub fn disable(path: &Path, id: &StaffId) -> Result<()> {
    let mut accounts = load(path)?;
    let Some(a) = accounts.iter_mut().find(|a| &a.id == id) else {
        bail!("no account {id}");
    };
    a.disabled = true;
    save(path, accounts)
}

/// The accounts as the kiosk sees them: reloaded when the file changes.
pub struct Book {
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, Vec<Account>)>,
    dummy: String,
}

impl Book {
    /// A book over `path`.
    pub fn new(path: PathBuf) -> Result<Book> {
        Ok(Book {
            path,
            cached: Mutex::new((None, Vec::new())),
            dummy: hash("motcua-no-such-account")?,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current accounts (re-read when the file's mtime moved).
    pub fn accounts(&self) -> Vec<Account> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 != mtime || mtime.is_none() {
            match load(&self.path) {
                Ok(a) => *c = (mtime, a),
                Err(e) => {
                    tracing::error!(error = %e, "staff file unreadable; keeping the last good one")
                }
            }
        }
        c.1.clone()
    }

    /// The enabled account `id` if `secret` is its password. Costs one
    /// Argon2 verification whether or not the account exists.
    pub fn check(&self, id: &str, secret: &str) -> Option<Account> {
        self.check_in(id, secret, &mut Vec::new())
    }

    /// As [`Book::check`], computing in `memory` (see [`matches_in`]).
    pub fn check_in(
        &self,
        id: &str,
        secret: &str,
        memory: &mut motcua_common::login::Memory,
    ) -> Option<Account> {
        let found = self
            .accounts()
            .into_iter()
            .find(|a| a.id.as_str() == id && !a.disabled);
        match found {
            Some(a) if matches_in(secret, &a.hash, memory) => Some(a),
            Some(_) => None,
            None => {
                let _ = matches_in(secret, &self.dummy, memory);
                None
            }
        }
    }

    /// The display name of `id`, if it has an account.
    pub fn name_of(&self, id: &str) -> Option<String> {
        self.accounts()
            .into_iter()
            .find(|a| a.id.as_str() == id)
            .map(|a| a.name)
    }
}

/// Reads the secret for `motcua staff add`: twice without echo from a
/// terminal, once from a pipe, or from `$MOTCUA_STAFF_SECRET`.
pub fn read_secret() -> Result<String> {
    motcua_common::login::read_secret(
        "MOTCUA_STAFF_SECRET",
        "Mật khẩu hoặc mã PIN (ít nhất 6 ký tự): ",
        "Nhập lại: ",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_check_replace_disable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STAFF_FILE);
        let id: StaffId = "canbo.an".parse().expect("id");
        add(&path, id.clone(), "Nguyễn Văn An", "123456", false).expect("add");
        assert!(
            add(&path, id.clone(), "X", "654321", false).is_err(),
            "no silent replace"
        );
        assert!(
            add(&path, "b".parse().expect("id"), "B", "12345", false).is_err(),
            "short PIN"
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("123456"), "the secret is not stored");
        let mode = std::fs::metadata(&path).expect("meta");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );

        let book = Book::new(path.clone()).expect("book");
        assert_eq!(
            book.check("canbo.an", "123456").map(|a| a.name),
            Some("Nguyễn Văn An".into())
        );
        assert!(book.check("canbo.an", "000000").is_none());
        assert!(book.check("nobody", "123456").is_none());

        add(&path, id.clone(), "Nguyễn Văn An", "abcdef", true).expect("replace");
        // A new mtime may equal the old one within the file system's
        // resolution; force the reload.
        let fresh = Book::new(path.clone()).expect("book");
        assert!(fresh.check("canbo.an", "123456").is_none());
        assert!(fresh.check("canbo.an", "abcdef").is_some());
        disable(&path, &id).expect("disable");
        let fresh = Book::new(path).expect("book");
        assert!(fresh.check("canbo.an", "abcdef").is_none(), "disabled");
        assert_eq!(fresh.name_of("canbo.an").as_deref(), Some("Nguyễn Văn An"));
    }
}
