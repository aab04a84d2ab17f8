//! Logins shared by the counter's kiosk and the data centre's dashboard:
//! Argon2id password hashes, random tokens, sessions that each carry their
//! CSRF token, and the lockout after repeated failed logins.
//!
//! Sessions live in memory: a restart logs everybody out.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};

/// A random token: 32 bytes, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // getrandom fails only when the OS has no randomness at all; no login
    // can be safe then.
    getrandom::fill(&mut b).expect("the operating system's random source");
    hex::encode(b)
}

/// Compares two tokens in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from a request's `Cookie` headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: the whole site, not for scripts, never sent from
/// another site; `Secure` when served over TLS; `max_age` in seconds
/// (`Some(0)` deletes it), else until the browser closes.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    secure: bool,
) -> axum::http::HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    ))
    .unwrap_or_else(|_| axum::http::HeaderValue::from_static(""))
}

/// Hashes a secret with a fresh salt: an Argon2id PHC string with the
/// `argon2` crate's defaults (19 MiB, 2 passes).
pub fn hash(secret: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

/// Checks a secret against a PHC hash.
pub fn matches(secret: &str, phc: &str) -> bool {
    matches_in(secret, phc, &mut Vec::new())
}

/// The memory one Argon2 check computes in (see [`matches_in`]).
pub type Memory = Vec<argon2::Block>;

/// Checks a secret against a PHC hash, computing in `memory`: grown to
/// the hash's memory cost the first time, then reused. A server keeps one
/// such buffer per concurrent check, so its password checks take no new
/// memory however many logins come (with the allocator's per-thread
/// arenas, 19 MiB allocated and freed on each pool thread stayed held: a
/// flood of 100 logins took the agent from 48 to 400 MB in the box lab).
pub fn matches_in(secret: &str, phc: &str, memory: &mut Memory) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&h) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        secret.as_bytes(),
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    // Output compares in constant time.
    computed.is_ok() && argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
}

/// Reads a new secret for a command that sets one: `$env` when set, else
/// one line from a pipe, else twice without echo from a terminal, asking
/// with `prompt` and `again`.
pub fn read_secret(env: &str, prompt: &str, again: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Ok(s) = std::env::var(env) {
        return Ok(s);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let fd = std::io::stdin();
        let old = rustix::termios::tcgetattr(&fd)?;
        let mut quiet = old.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &quiet)?;
        let mut line = String::new();
        let read = fd.lock().read_line(&mut line);
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &old)?;
        eprintln!();
        read?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let a = ask(prompt)?;
    let b = ask(again)?;
    if a != b {
        bail!("the two entries differ; nothing was changed");
    }
    Ok(a)
}

/// A logged-in person: who (`T`, what the server needs of them), and the
/// token every form and API write must carry. Derefs to `T`.
#[derive(Debug, Clone)]
pub struct Session<T> {
    /// Who.
    pub who: T,
    /// The token every form and API write must carry.
    pub csrf: String,
    last: Instant,
}

impl<T> Deref for Session<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.who
    }
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Most names whose failed logins are counted at once.
pub const MAX_TRACKED: usize = 10_000;

/// A login refused before the password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Time left.
    pub remaining: Duration,
}

/// Sessions and failure counts.
pub struct Sessions<T> {
    idle: Duration,
    max_failures: u32,
    lockout: Duration,
    live: Mutex<HashMap<String, Session<T>>>,
    failures: Mutex<HashMap<String, Failures>>,
}

impl<T: Clone> Sessions<T> {
    /// Sessions expiring after `idle` without a request; `max_failures`
    /// wrong passwords in a row lock the account for `lockout`.
    pub fn new(idle: Duration, max_failures: u32, lockout: Duration) -> Sessions<T> {
        Sessions {
            idle,
            max_failures,
            lockout,
            live: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session; returns its cookie token.
    pub fn open(&self, who: T) -> (String, Session<T>) {
        let t = token();
        let s = Session {
            who,
            csrf: token(),
            last: Instant::now(),
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, s| now.duration_since(s.last) < self.idle);
        live.insert(t.clone(), s.clone());
        (t, s)
    }

    /// The session of `token`, if it has not been idle too long; touching
    /// it restarts the idle clock.
    pub fn get(&self, token: &str) -> Option<Session<T>> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match live.get_mut(token) {
            Some(s) if now.duration_since(s.last) < self.idle => {
                s.last = now;
                Some(s.clone())
            }
            Some(_) => {
                live.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn close(&self, token: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Whether `id` is locked out now.
    pub fn locked(&self, id: &str) -> Option<Locked> {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let until = f.get(id)?.locked_until?;
        let now = Instant::now();
        (until > now).then(|| Locked {
            remaining: until - now,
        })
    }

    /// Counts a failed login; returns the lock if this one triggered it.
    /// At most [`MAX_TRACKED`] names are tracked: past that, counts of
    /// names not locked now are forgotten, so a flood of made-up names
    /// cannot fill the memory (each costs a password check, so forgetting
    /// lets a guesser at most a few more tries per such flood).
    pub fn failed(&self, id: &str) -> Option<Locked> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() >= MAX_TRACKED && !f.contains_key(id) {
            let now = Instant::now();
            f.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
        }
        let e = f.entry(id.to_owned()).or_default();
        e.count += 1;
        if e.count >= self.max_failures {
            e.count = 0;
            e.locked_until = Some(Instant::now() + self.lockout);
            return Some(Locked {
                remaining: self.lockout,
            });
        }
        None
    }

    /// A successful login clears the count.
    pub fn succeeded(&self, id: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// At most this many Argon2id checks run at once. Each takes 19 MiB for
/// its time ([`hash`]): a flood of logins on a LAN-bound kiosk must not
/// exhaust a 1 GiB box, and a counter has a few clerks, not a crowd (nor
/// a data centre's dashboard more than a few operators at once).
pub const LOGIN_CHECKS: usize = 2;

/// Logins waiting for a check beyond this are answered "busy" at once
/// instead of queueing without end behind a flood.
pub const LOGIN_QUEUE: usize = 16;

/// Bounds the password checks: [`LOGIN_CHECKS`] at once, [`LOGIN_QUEUE`]
/// waiting.
pub struct LoginGate {
    checks: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    /// The checks' working memory, one buffer per check at most, reused
    /// ([`matches_in`]).
    memory: Mutex<Vec<Memory>>,
}

impl Default for LoginGate {
    fn default() -> Self {
        LoginGate {
            checks: Arc::new(tokio::sync::Semaphore::new(LOGIN_CHECKS)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            memory: Mutex::new(Vec::new()),
        }
    }
}

impl LoginGate {
    /// A permit for one check, or `None` when too many already wait.
    pub async fn enter(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering::SeqCst;
        /// Leaves the queue when dropped: also when the request is dropped
        /// while it waits (the client went away), which would otherwise
        /// leave its place taken for good.
        struct InQueue<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InQueue<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, SeqCst);
            }
        }
        let queued = InQueue(&self.waiting);
        if self.waiting.fetch_add(1, SeqCst) >= LOGIN_QUEUE {
            return None;
        }
        let permit = self.checks.clone().acquire_owned().await.ok();
        drop(queued);
        permit
    }

    /// A check's working memory: a kept buffer, or a new one.
    pub fn memory(&self) -> Memory {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Keeps a check's working memory for the next one.
    pub fn keep(&self, m: Memory) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(m);
    }

    /// Logins waiting for a check now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Buffers kept for the next checks.
    pub fn kept(&self) -> usize {
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Takes every check slot, as logins in progress would (for tests).
    pub async fn hold_every_check(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.checks
            .clone()
            .acquire_many_owned(LOGIN_CHECKS as u32)
            .await
            .ok()
    }

    /// Checks running now (for tests and the lab's figures).
    pub fn running(&self) -> usize {
        LOGIN_CHECKS - self.checks.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sessions_expire_and_failures_lock() {
        let s = Sessions::new(Duration::from_millis(50), 3, Duration::from_secs(60));
        let (t, open) = s.open("a".to_owned());
        assert_eq!(open.len(), 1, "derefs to who");
        assert!(s.get(&t).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&t).is_none(), "idle session expired");

        assert!(s.failed("a").is_none());
        assert!(s.failed("a").is_none());
        assert!(s.failed("a").is_some(), "third failure locks");
        assert!(s.locked("a").is_some());
        assert!(s.locked("b").is_none(), "only that account");
        // A flood of names is forgotten, a lock is not.
        for n in 0..MAX_TRACKED + 10 {
            let _ = s.failed(&format!("x{n}"));
        }
        assert!(s.failures.lock().expect("lock").len() <= MAX_TRACKED);
        assert!(s.locked("a").is_some(), "the lock stays");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn cookies_are_found_by_name_and_set_strictly() {
        let mut headers = axum::http::HeaderMap::new();
        for v in ["a=1; motcua_phien=xyz", "b=2"] {
            headers.append(axum::http::header::COOKIE, v.parse().expect("a value"));
        }
        assert_eq!(cookie(&headers, "motcua_phien").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "phien"), None);
        assert_eq!(
            set_cookie("s", "t", Some(0), true),
            "s=t; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"
        );
        assert_eq!(
            set_cookie("s", "t", None, false),
            "s=t; Path=/; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn a_check_in_kept_memory_agrees_with_the_crates_own_and_reuses_it() {
        let phc = hash("mat-khau-123").expect("hashes");
        let mut memory = Memory::new();
        assert!(matches_in("mat-khau-123", &phc, &mut memory));
        let grown = (memory.len(), memory.as_ptr());
        assert_eq!(grown.0, 19 * 1024, "19 MiB of 1 KiB blocks");
        assert!(!matches_in("mat-khau-124", &phc, &mut memory));
        assert_eq!(
            (memory.len(), memory.as_ptr()),
            grown,
            "the same memory again"
        );
        // The crate's own verification says the same.
        let parsed = argon2::PasswordHash::new(&phc).expect("PHC");
        use argon2::PasswordVerifier;
        assert!(
            argon2::Argon2::default()
                .verify_password(b"mat-khau-123", &parsed)
                .is_ok()
        );
        assert!(!matches_in("mat-khau-123", "not a hash", &mut memory));
        assert!(matches("mat-khau-123", &phc));
    }
}
