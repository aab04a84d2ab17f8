//! Who may read what at the data centre: operators' accounts and roles,
//! and the access log of every read of citizens' personal data.
//!
//! **Roles.** An account holds one or more of:
//! - `fleet`: the dashboard, `/api/v1/fleet`, `/metrics`: health, presence
//!   and counts, never a personal field;
//! - `records`: `/api/v1/records` (the signed records with citizens'
//!   personal data), each request stating its purpose;
//! - `admin`: devices, accounts, publishing (today those are `motcua-dc`
//!   commands on the server, run with access to the database).
//!
//! **The access log.** Every read of personal data (an API page, an
//! export) appends one entry before the data leaves: when, who, what was
//! asked (route or command), the stated purpose, and which records (device
//! and seq ranges). Entries are numbered 1, 2, 3... without gaps and
//! hash-chained ([`entry_hash`]): an entry edited or deleted in the middle
//! breaks the chain at the next one; `motcua-dc access-log verify`
//! recomputes it and prints the head (number and hash), which, noted
//! elsewhere, also shows entries cut from the end (`--expect-head`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use motcua_protocol::{DeviceId, UtcTime};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Health, presence, metrics: no personal data.
    Fleet,
    /// Citizens' personal data, each request with its purpose.
    Records,
    /// Devices, accounts, publishing.
    Admin,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 3] = [Role::Fleet, Role::Records, Role::Admin];

    /// Its name, as written in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Fleet => "fleet",
            Role::Records => "records",
            Role::Admin => "admin",
        }
    }
}

impl Role {
    /// For clap's value parser.
    pub fn from_str_arg(s: &str) -> Result<Role, String> {
        s.parse()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("no role {s:?}: the roles are fleet, records and admin"))
    }
}

/// A set of roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// The set of `roles`.
    pub fn of(roles: impl IntoIterator<Item = Role>) -> Roles {
        Roles(roles.into_iter().collect())
    }

    /// Whether `role` is in the set.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Roles {
    /// Space-separated, in order: as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|r| r.as_str()).collect();
        f.pad(&names.join(" "))
    }
}

impl FromStr for Roles {
    type Err = String;
    /// Space- or comma-separated role names.
    fn from_str(s: &str) -> Result<Roles, String> {
        s.split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(Role::from_str)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Roles)
    }
}

/// An operator's account name: 1 to 64 of `a-z 0-9 . _ -`, starting with
/// a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OperatorName(String);

impl OperatorName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for OperatorName {
    type Err = String;
    fn from_str(s: &str) -> Result<OperatorName, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(OperatorName(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not an account name: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            ))
        }
    }
}

/// An operator's account.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    /// The login.
    pub name: OperatorName,
    /// Argon2id PHC string (never shown).
    #[serde(skip)]
    pub hash: String,
    /// What the account may do.
    pub roles: Roles,
    /// When it was created.
    pub added_at: UtcTime,
    /// When its password or roles last changed.
    pub changed_at: UtcTime,
    /// When it was disabled, if it was: it can no longer log in, and its
    /// open sessions end at their next request.
    pub disabled_at: Option<UtcTime>,
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// Shortest operator password: operators hold the keys to every
/// citizen's record in the province.
pub const MIN_PASSWORD: usize = 12;

/// Why a new operator password is refused, or None.
pub fn weak(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        Some(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        ))
    } else if n > 128 {
        Some("the password must have at most 128 characters".into())
    } else {
        None
    }
}

/// Most characters of a stated purpose.
pub const MAX_PURPOSE: usize = 200;

/// Characters that change how text around them is shown without being
/// seen (bidirectional overrides and isolates, zero-width marks): a purpose
/// must read as what it says.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// A stated purpose, checked: 3 to [`MAX_PURPOSE`] characters, trimmed; no
/// control or invisible formatting characters; not starting with `=`,
/// `+`, `-` or `@` (a spreadsheet opening the access log would run it as
/// a formula).
pub fn purpose(text: &str) -> Result<String, String> {
    let t = text.trim();
    let n = t.chars().count();
    if n < 3 {
        Err("state the purpose of this read (purpose, 3 to 200 characters)".into())
    } else if n > MAX_PURPOSE {
        Err(format!(
            "the purpose has {n} characters; at most {MAX_PURPOSE}"
        ))
    } else if t.chars().any(|c| c.is_control() || invisible(c)) {
        Err("the purpose must not hold control or invisible formatting characters".into())
    } else if t.starts_with(['=', '+', '-', '@']) {
        Err("the purpose must not start with =, +, - or @".into())
    } else {
        Ok(t.to_owned())
    }
}

/// Which records one read returned: per device, seq ranges, written
/// `device:1-5,9;device2:3` (devices in order, ranges ascending).
pub fn records_text(records: &[(DeviceId, u64)]) -> String {
    let mut sorted: Vec<(&str, u64)> = records.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let device = sorted[i].0;
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(device);
        out.push(':');
        let mut first = true;
        while i < sorted.len() && sorted[i].0 == device {
            let start = sorted[i].1;
            let mut end = start;
            while i + 1 < sorted.len() && sorted[i + 1].0 == device && sorted[i + 1].1 == end + 1 {
                i += 1;
                end += 1;
            }
            if !first {
                out.push(',');
            }
            first = false;
            if start == end {
                out.push_str(&start.to_string());
            } else {
                out.push_str(&format!("{start}-{end}"));
            }
            i += 1;
        }
    }
    out
}

/// An access-log entry about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccess {
    /// Who: `operator:<name>` (a login), `command:<user>` (a command run
    /// on the server).
    pub who: String,
    /// What was asked: `GET /api/v1/records?...` or `export ...`.
    pub what: String,
    /// The stated purpose.
    pub purpose: String,
    /// The records read ([`records_text`]).
    pub records: String,
    /// How many.
    pub count: u64,
}

/// An access-log entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEntry {
    /// 1, 2, 3...
    pub id: u64,
    /// When.
    pub at: UtcTime,
    /// Who.
    pub who: String,
    /// What was asked.
    pub what: String,
    /// The stated purpose.
    pub purpose: String,
    /// Which records.
    pub records: String,
    /// How many.
    pub count: u64,
    /// The previous entry's hash (zeros before the first).
    #[serde(serialize_with = "hex32")]
    pub prev: [u8; 32],
    /// This entry's hash ([`entry_hash`]).
    #[serde(serialize_with = "hex32")]
    pub hash: [u8; 32],
}

fn hex32<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// An entry's hash: SHA-256 of the domain `motcua-dc access-log 1` and a
/// zero byte, the previous hash (32 bytes), the id (8 bytes big-endian),
/// then `at`, `who`, `what`, `purpose`, `records` each as a 4-byte
/// big-endian length and its UTF-8 bytes, then the count (8 bytes
/// big-endian). docs/DC-HTTP.md "The access log".
pub fn entry_hash(prev: &[u8; 32], id: u64, at: &UtcTime, e: &NewAccess) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"motcua-dc access-log 1\0");
    h.update(prev);
    h.update(id.to_be_bytes());
    for field in [
        at.to_string().as_str(),
        &e.who,
        &e.what,
        &e.purpose,
        &e.records,
    ] {
        // Fields are bounded far below 4 GiB (purpose 200 characters, a
        // page at most 5000 records).
        h.update((field.len() as u32).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update(e.count.to_be_bytes());
    h.finalize().into()
}

impl AccessEntry {
    /// What was appended.
    pub fn content(&self) -> NewAccess {
        NewAccess {
            who: self.who.clone(),
            what: self.what.clone(),
            purpose: self.purpose.clone(),
            records: self.records.clone(),
            count: self.count,
        }
    }
}

/// Where the chain broke, if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The entry (or the id expected there).
    pub id: u64,
    /// What is wrong.
    pub problem: String,
}

/// Walks the chain entry by entry.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_id: u64,
    prev: [u8; 32],
    /// The first break met.
    pub broken: Option<Break>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            next_id: 1,
            prev: GENESIS,
            broken: None,
        }
    }
}

impl Verifier {
    /// Checks the next entry; false (and `broken` set) at the first break.
    pub fn step(&mut self, e: &AccessEntry) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let problem = if e.id != self.next_id {
            Some(format!(
                "entry {} follows {}: entries are missing",
                e.id,
                self.next_id - 1
            ))
        } else if e.prev != self.prev {
            Some("its link does not match the entry before: that one was edited or removed".into())
        } else if entry_hash(&e.prev, e.id, &e.at, &e.content()) != e.hash {
            Some("its content does not match its hash: it was edited".into())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.broken = Some(Break {
                id: self.next_id.min(e.id),
                problem,
            });
            return false;
        }
        self.next_id = e.id + 1;
        self.prev = e.hash;
        true
    }

    /// The head so far: the last good entry's id and hash.
    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.next_id - 1, self.prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DeviceId {
        s.parse().expect("device")
    }

    #[test]
    fn records_are_written_as_ranges_per_device() {
        let a = d("H49.12.3-q01");
        let b = d("H49.12.3-q02");
        let list = [
            (b.clone(), 3),
            (a.clone(), 2),
            (a.clone(), 1),
            (a.clone(), 3),
            (a.clone(), 9),
            (a.clone(), 9),
            (b.clone(), 7),
        ];
        assert_eq!(records_text(&list), "H49.12.3-q01:1-3,9;H49.12.3-q02:3,7");
        assert_eq!(records_text(&[]), "");
    }

    #[test]
    fn roles_and_names_parse_strictly() {
        let r: Roles = "records, fleet".parse().expect("roles");
        assert_eq!(r.to_string(), "fleet records");
        assert_eq!(format!("{r:<15}|"), "fleet records  |", "a table column");
        let n: OperatorName = "an".parse().expect("name");
        assert_eq!(format!("{n:<4}|"), "an  |");
        assert!(r.has(Role::Fleet) && !r.has(Role::Admin));
        assert!("reader".parse::<Roles>().is_err());
        assert!("ops.lan".parse::<OperatorName>().is_ok());
        for bad in ["", "Ops", "-x", "a b", "ä", &"a".repeat(65)] {
            assert!(bad.parse::<OperatorName>().is_err(), "{bad:?}");
        }
        assert!(purpose("  ").is_err());
        assert!(purpose("tra cứu\u{7}").is_err());
        assert!(purpose("tra cứu \u{202E}ueiD").is_err(), "a bidi override");
        assert!(purpose("=HYPERLINK(\"x\")").is_err(), "a formula");
        assert_eq!(purpose(" đối soát ").as_deref(), Ok("đối soát"));
        assert!(weak("short").is_some() && weak("long enough pass").is_none());
    }

    fn chain(n: u64) -> Vec<AccessEntry> {
        let mut prev = GENESIS;
        let at = UtcTime::parse("2026-12-07T01:00:00Z").expect("time");
        (1..=n)
            .map(|id| {
                let e = NewAccess {
                    who: "operator:an".into(),
                    what: "GET /api/v1/records".into(),
                    purpose: "đối soát".into(),
                    records: format!("H49.12.3-q01:{id}"),
                    count: 1,
                };
                let hash = entry_hash(&prev, id, &at, &e);
                let entry = AccessEntry {
                    id,
                    at,
                    who: e.who,
                    what: e.what,
                    purpose: e.purpose,
                    records: e.records,
                    count: e.count,
                    prev,
                    hash,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn verify(entries: &[AccessEntry]) -> Verifier {
        let mut v = Verifier::default();
        for e in entries {
            if !v.step(e) {
                break;
            }
        }
        v
    }

    #[test]
    fn an_edit_a_removal_and_a_forged_rehash_each_break_the_chain() {
        let good = chain(5);
        let v = verify(&good);
        assert!(v.broken.is_none());
        assert_eq!(v.head(), (5, good[4].hash));

        let mut edited = good.clone();
        edited[2].purpose = "khác".into();
        assert_eq!(verify(&edited).broken.map(|b| b.id), Some(3));

        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).broken.map(|b| b.id), Some(2));

        // Rehashing the edited entry does not help: the next one's link
        // still names the old hash.
        let mut rehashed = good.clone();
        rehashed[2].records = "H49.12.3-q01:99".into();
        rehashed[2].hash = entry_hash(
            &rehashed[2].prev,
            3,
            &rehashed[2].at,
            &rehashed[2].content(),
        );
        assert_eq!(verify(&rehashed).broken.map(|b| b.id), Some(4));

        // Renumbered after a removal: the link shows it.
        let mut renumbered = removed.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.id = i as u64 + 1;
        }
        assert_eq!(verify(&renumbered).broken.map(|b| b.id), Some(2));
    }
}
