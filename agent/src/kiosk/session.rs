//! Logged-in clerks, their CSRF tokens, and the lockout after repeated
//! failed logins. In memory: a restart logs everybody out, which is what
//! a counter box that lost power should do anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use motcua_protocol::StaffId;

/// The session cookie's name.
pub const COOKIE: &str = "motcua_phien";
/// The login form's double-submit cookie (CSRF before a session exists).
pub const LOGIN_COOKIE: &str = "motcua_dangnhap";

/// A random token: 32 bytes, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // getrandom fails only when the OS has no randomness at all; the
    // kiosk cannot run safely then.
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

/// A logged-in clerk.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub staff: StaffId,
    /// Their name, for the header.
    pub name: String,
    /// The token every form and API write must carry.
    pub csrf: String,
    last: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Sessions and failure counts.
pub struct Sessions {
    idle: Duration,
    max_failures: u32,
    lockout: Duration,
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// A login refused before the password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// Time left.
    pub remaining: Duration,
}

impl Sessions {
    /// Sessions expiring after `idle` without a request; `max_failures`
    /// wrong passwords in a row lock the account for `lockout`.
    pub fn new(idle: Duration, max_failures: u32, lockout: Duration) -> Sessions {
        Sessions {
            idle,
            max_failures,
            lockout,
            live: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session; returns its cookie token.
    pub fn open(&self, staff: StaffId, name: String) -> (String, Session) {
        let t = token();
        let s = Session {
            staff,
            name,
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
    pub fn get(&self, token: &str) -> Option<Session> {
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
    pub fn failed(&self, id: &str) -> Option<Locked> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_sessions_expire_and_failures_lock() {
        let s = Sessions::new(Duration::from_millis(50), 3, Duration::from_secs(60));
        let (t, _) = s.open("a".parse().expect("id"), "A".into());
        assert!(s.get(&t).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.get(&t).is_none(), "idle session expired");

        assert!(s.failed("a").is_none());
        assert!(s.failed("a").is_none());
        assert!(s.failed("a").is_some(), "third failure locks");
        assert!(s.locked("a").is_some());
        assert!(s.locked("b").is_none(), "only that account");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
