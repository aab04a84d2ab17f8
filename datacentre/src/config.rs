//! The receiver's configuration: `/etc/motcua/dc.toml` by default.
//!
//! Same two stages as the agent's: [`RawConfig`] mirrors the file with
//! unknown keys refused, [`DcConfig::from_raw`] validates every value once
//! and reports every problem with its key. The template
//! `firmware-config/dc.toml` documents each key; keep the two in step.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use motcua_common::config::{
    AbsPath, BrokerConnection, LogSection, Problems, RawBroker, RawLog, read_toml,
};
use serde::Deserialize;

/// Where the receiver looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/motcua/dc.toml";

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    dc: RawDc,
    #[serde(default)]
    database: RawDatabase,
    broker: RawBrokerSection,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    http: RawHttp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default = "default_http_bind")]
    bind: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            bind: default_http_bind(),
        }
    }
}

fn default_http_bind() -> String {
    "127.0.0.1:9480".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDc {
    #[serde(default = "default_key_file")]
    key_file: String,
    #[serde(default)]
    verify_threads: i64,
}

impl Default for RawDc {
    fn default() -> Self {
        RawDc {
            key_file: default_key_file(),
            verify_threads: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    #[serde(default = "default_database_url")]
    url: String,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: default_database_url(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrokerSection {
    broker: String,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    #[serde(default = "default_share_group")]
    share_group: String,
}

fn default_key_file() -> String {
    "/var/lib/motcua-dc/dc.key".into()
}
fn default_database_url() -> String {
    "sqlite:///var/lib/motcua-dc/motcua-dc.db".into()
}
fn default_share_group() -> String {
    "motcua-dc".into()
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct DcConfig {
    /// The receipt-signing key file.
    pub key_file: AbsPath,
    /// Threads verifying signatures beside the one that writes; 0: one per
    /// CPU core.
    pub verify_threads: usize,
    /// Where records are stored.
    pub database: DatabaseUrl,
    /// The broker and how to authenticate to it.
    pub broker: BrokerConnection,
    /// The shared-subscription group all receivers of this DC join.
    pub share_group: ShareGroup,
    /// Log output.
    pub log: LogSection,
    /// Where `motcua-dc run` serves its dashboard, JSON API and metrics;
    /// `None`: not served.
    pub http: Option<std::net::SocketAddr>,
}

impl DcConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<DcConfig, Problems> {
        DcConfig::from_raw(read_toml(path)?)
    }

    /// Validates a raw configuration, collecting every problem.
    pub fn from_raw(raw: RawConfig) -> Result<DcConfig, Problems> {
        let mut p = Problems::default();
        let key_file = p.parse::<AbsPath>("dc.key_file", &raw.dc.key_file);
        let verify_threads = match usize::try_from(raw.dc.verify_threads) {
            Ok(n) if n <= 64 => Some(n),
            _ => {
                p.push(
                    "dc.verify_threads",
                    format!(
                        "{} is out of range: use 0 (one per CPU core) to 64",
                        raw.dc.verify_threads
                    ),
                );
                None
            }
        };
        let database = p.parse::<DatabaseUrl>("database.url", &raw.database.url);
        let b = &raw.broker;
        let broker = BrokerConnection::validate(
            &mut p,
            "broker",
            RawBroker {
                broker: &b.broker,
                allow_plaintext: b.allow_plaintext,
                ca_file: b.ca_file.as_deref(),
                client_cert: b.client_cert.as_deref(),
                client_key: b.client_key.as_deref(),
            },
        );
        let share_group = p.parse::<ShareGroup>("broker.share_group", &b.share_group);
        let log = raw.log.validate(&mut p);
        let http = match raw.http.bind.as_str() {
            "" | "off" => Some(None),
            b => match b.parse::<std::net::SocketAddr>() {
                Ok(a) => Some(Some(a)),
                Err(_) => {
                    p.push(
                        "http.bind",
                        format!("{b:?} is not an address:port (e.g. 127.0.0.1:9480), nor \"off\""),
                    );
                    None
                }
            },
        };
        p.finish(|| {
            Some(DcConfig {
                key_file: key_file?,
                verify_threads: verify_threads?,
                database: database?,
                broker: broker?,
                share_group: share_group?,
                log: log?,
                http: http?,
            })
        })
    }
}

/// The record store: an embedded SQLite file, or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:///absolute/path.db`.
    Sqlite(AbsPath),
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    Postgres(url::Url),
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "write \"sqlite:///var/lib/motcua-dc/motcua-dc.db\" or \"postgres://motcua@db.example.vn/motcua\"";
        let u = url::Url::parse(s)
            .map_err(|e| format!("{} is not a URL ({e}): {hint}", redact_str(s)))?;
        match u.scheme() {
            "sqlite" => {
                if u.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(format!(
                        "{s:?}: a SQLite URL has three slashes and an absolute path: {hint}"
                    ));
                }
                u.path().parse().map(DatabaseUrl::Sqlite)
            }
            "postgres" | "postgresql" => {
                if u.host_str().is_none_or(str::is_empty) || u.path().len() <= 1 {
                    return Err(format!(
                        "{} needs a host and a database name: {hint}",
                        redact(&u)
                    ));
                }
                Ok(DatabaseUrl::Postgres(u))
            }
            other => Err(format!(
                "database scheme {other:?} is not supported: {hint}"
            )),
        }
    }
}

fn redact(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

fn redact_str(s: &str) -> String {
    url::Url::parse(s)
        .map(|u| redact(&u))
        .unwrap_or_else(|_| "the value".to_owned())
}

/// Never shows a password: these strings end up in logs and terminals.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{p}"),
            DatabaseUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// An MQTT shared-subscription group name: 1 to 64 of `A-Z a-z 0-9 _ -`
/// (it becomes a topic level of `$share/{group}/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroup(pub String);

impl FromStr for ShareGroup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(ShareGroup(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a group name: use 1 to 64 characters from A-Z a-z 0-9 _ -"
            ))
        }
    }
}

/// The effective configuration as TOML, defaults filled in.
impl fmt::Display for DcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[dc]")?;
        writeln!(f, "key_file = {:?}", self.key_file.to_string())?;
        writeln!(f, "verify_threads = {}", self.verify_threads)?;
        writeln!(f, "\n[database]")?;
        writeln!(f, "url = {:?}", self.database.to_string())?;
        writeln!(f, "\n[broker]")?;
        write!(f, "{}", self.broker)?;
        writeln!(f, "share_group = {:?}", self.share_group.0)?;
        write!(f, "\n{}", self.log)?;
        writeln!(f, "\n[http]")?;
        match self.http {
            Some(a) => writeln!(f, "bind = \"{a}\""),
            None => writeln!(f, "bind = \"off\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            "sqlite:///var/lib/motcua-dc/x.db"
                .parse::<DatabaseUrl>()
                .map(|d| d.to_string()),
            Ok("sqlite:///var/lib/motcua-dc/x.db".into())
        );
        let pg: DatabaseUrl = "postgres://motcua:secret@127.0.0.1:5432/motcua"
            .parse()
            .expect("valid");
        assert_eq!(
            pg.to_string(),
            "postgres://motcua:***@127.0.0.1:5432/motcua"
        );
        assert!(!format!("{pg:?}").contains("secret"));
        for bad in [
            "sqlite://relative.db",
            "postgres://host",
            "mysql://x/y",
            "x",
        ] {
            assert!(bad.parse::<DatabaseUrl>().is_err(), "{bad}");
        }
        let e = "postgres://u:secret@/"
            .parse::<DatabaseUrl>()
            .expect_err("no host");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn share_groups() {
        assert!("motcua-dc".parse::<ShareGroup>().is_ok());
        assert!("a/b".parse::<ShareGroup>().is_err());
        assert!("a+".parse::<ShareGroup>().is_err());
    }

    fn with_threads(n: i64) -> Result<DcConfig, Problems> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dc.toml");
        std::fs::write(
            &path,
            format!(
                "[dc]\nverify_threads = {n}\n[broker]\nbroker = \"mqtt://127.0.0.1\"\nallow_plaintext = true\n"
            ),
        )
        .expect("writes");
        DcConfig::load(&path)
    }

    #[test]
    fn verify_threads_are_bounded() {
        assert_eq!(with_threads(0).map(|c| c.verify_threads).ok(), Some(0));
        assert_eq!(with_threads(4).map(|c| c.verify_threads).ok(), Some(4));
        for bad in [-1, 65] {
            let e = with_threads(bad).expect_err("out of range").to_string();
            assert!(e.contains("dc.verify_threads"), "{e}");
        }
    }
}
