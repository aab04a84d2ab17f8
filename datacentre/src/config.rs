//! The receiver's configuration: `/etc/motcua/dc.toml` by default.
//!
//! Same two stages as the agent's: [`RawConfig`] mirrors the file with
//! unknown keys refused, [`DcConfig::from_raw`] validates every value once
//! and reports every problem with its key. Each key is declared once in its
//! section's `section!` (see `motcua_common::settings`); a test holds the
//! template `firmware-config/dc.toml` to the declared keys and defaults.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use motcua_common::config::{
    AbsPath, BrokerConnection, LogSection, Problems, RawBroker, RawLog, read_toml,
};
use motcua_common::section;
use motcua_common::settings::{Count, KeyDoc, Kind, Maybe, Parsed, Seconds};
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

/// Every section and its declared keys, as the template documents them.
pub const SECTIONS: &[(&str, &[KeyDoc])] = &[
    ("dc", RawDc::KEYS),
    ("database", RawDatabase::KEYS),
    ("broker", RawBrokerSection::KEYS),
    ("log", RawLog::KEYS),
    ("http", RawHttp::KEYS),
];

section! {
    /// `[dc]`.
    #[derive(Debug, Clone)]
    "dc": RawDc => DcSection {
        keys {
            /// The receipt-signing key file.
            key_file = "/var/lib/motcua-dc/dc.key" => Parsed<AbsPath>,
            /// Threads verifying signatures beside the one that writes; 0: one per
            /// CPU core.
            verify_threads = 0 => VerifyThreads,
        }
    }
}

section! {
    /// `[database]`.
    #[derive(Debug, Clone)]
    "database": RawDatabase => DatabaseSection {
        keys {
            /// Where records are stored.
            url = "sqlite:///var/lib/motcua-dc/motcua-dc.db" => Parsed<DatabaseUrl>,
        }
    }
}

section! {
    /// `[broker]`.
    #[derive(Debug, Clone)]
    "broker": RawBrokerSection => BrokerSection {
        parts {
            /// The broker's URL.
            broker: String,
            /// Allow a plain `mqtt://` broker.
            allow_plaintext: bool = false,
            /// The broker's CA.
            ca_file: Option<String> = None,
            /// The receiver's TLS client certificate.
            client_cert: Option<String> = None,
            /// Its private key.
            client_key: Option<String> = None,
        } => {
            /// The broker and how to authenticate to it.
            broker: BrokerConnection,
        } shown by show_broker;
        keys {
            /// The shared-subscription group all receivers of this DC join.
            share_group = "motcua-dc" => Parsed<ShareGroup>,
            /// Keep the broker's access list in step with the registry: "off", or
            /// "mosquitto-dynsec" (Mosquitto's dynamic-security plugin).
            access = "mosquitto-dynsec" => Parsed<BrokerAccess>,
            /// Every receiver's certificate name, comma-separated; each starts with
            /// motcua-dc.
            receivers = "motcua-dc" => Parsed<ReceiverNames>,
            /// How often the registry is compared with the broker's access list.
            access_every = "10s" => Seconds<1, 3600>,
        }
    }
}

section! {
    /// `[http]`.
    #[derive(Debug, Clone)]
    "http": RawHttp => HttpSection {
        keys {
            /// Where `motcua-dc run` serves its dashboard, JSON API and metrics;
            /// `None`: not served.
            bind = "127.0.0.1:9480" => HttpBind,
            /// Certificate chain (PEM) for HTTPS; with `tls_key`. Required
            /// when `bind` is beyond loopback.
            tls_cert = None => Maybe<Parsed<AbsPath>>,
            /// Its private key (PEM).
            tls_key = None => Maybe<Parsed<AbsPath>>,
            /// An operator's session ends after this long without a request.
            idle_timeout = "30m" => Seconds<60, { 12 * 3600 }>,
            /// Failed logins in a row that lock an account (per receiver).
            max_failures = 5 => Count<u32, 1, 100>,
            /// How long the lock lasts.
            lockout = "15m" => Seconds<10, { 24 * 3600 }>,
        }
    }
}

impl HttpSection {
    /// The certificate and key for HTTPS, when both are given.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        }
    }

    /// Whether the TLS keys go together and a bind beyond loopback has
    /// them (recording the problems in `p`).
    fn tls_checked(&self, p: &mut Problems) -> bool {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            p.push(
                "http.tls_cert",
                "tls_cert and tls_key go together: give both or neither",
            );
            return false;
        }
        if let Some(addr) = self.bind
            && !addr.ip().is_loopback()
            && self.tls().is_none()
        {
            p.push(
                "http.bind",
                format!(
                    "{addr} is reachable from the network, and operators' passwords and citizens' records would cross it in clear: set tls_cert and tls_key, or bind to 127.0.0.1"
                ),
            );
            return false;
        }
        true
    }
}

/// `dc.dc.verify_threads`: 0 (one per CPU core) to 64.
pub struct VerifyThreads;

impl Kind for VerifyThreads {
    type Raw = i64;
    type Value = usize;
    fn check(p: &mut Problems, key: &str, raw: &i64) -> Option<usize> {
        match usize::try_from(*raw) {
            Ok(n) if n <= 64 => Some(n),
            _ => {
                p.push(
                    key,
                    format!("{raw} is out of range: use 0 (one per CPU core) to 64"),
                );
                None
            }
        }
    }
    fn show(value: &usize) -> Option<String> {
        Some(value.to_string())
    }
}

/// `http.bind`: an address and port, or `"off"` (or empty) for none.
pub struct HttpBind;

impl Kind for HttpBind {
    type Raw = String;
    type Value = Option<std::net::SocketAddr>;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<Self::Value> {
        match raw.as_str() {
            "" | "off" => Some(None),
            b => match b.parse::<std::net::SocketAddr>() {
                Ok(a) => Some(Some(a)),
                Err(_) => {
                    p.push(
                        key,
                        format!("{b:?} is not an address:port (e.g. 127.0.0.1:9480), nor \"off\""),
                    );
                    None
                }
            },
        }
    }
    fn show(value: &Self::Value) -> Option<String> {
        Some(match value {
            Some(a) => format!("\"{a}\""),
            None => "\"off\"".to_owned(),
        })
    }
}

fn show_broker(f: &mut fmt::Formatter<'_>, b: &BrokerSection) -> fmt::Result {
    write!(f, "{}", b.broker)
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct DcConfig {
    /// The receipt key and the verifier threads.
    pub dc: DcSection,
    /// Where records are stored.
    pub database: DatabaseSection,
    /// The broker and the shared-subscription group.
    pub broker: BrokerSection,
    /// Log output.
    pub log: LogSection,
    /// The dashboard, JSON API and metrics.
    pub http: HttpSection,
}

impl DcConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<DcConfig, Problems> {
        DcConfig::from_raw(read_toml(path)?)
    }

    /// Validates a raw configuration, collecting every problem.
    pub fn from_raw(raw: RawConfig) -> Result<DcConfig, Problems> {
        let mut p = Problems::default();
        let dc = raw.dc.validate(&mut p);
        let database = raw.database.validate(&mut p);
        let b = &raw.broker;
        let connection = BrokerConnection::validate(
            &mut p,
            "broker",
            RawBroker {
                broker: &b.broker(),
                allow_plaintext: b.allow_plaintext(),
                ca_file: b.ca_file().as_deref(),
                client_cert: b.client_cert().as_deref(),
                client_key: b.client_key().as_deref(),
            },
        );
        let broker = b.validate(&mut p, connection.map(|c| (c,)));
        let log = raw.log.validate(&mut p);
        let http = raw.http.validate(&mut p).filter(|h| h.tls_checked(&mut p));
        p.finish(|| {
            Some(DcConfig {
                dc: dc?,
                database: database?,
                broker: broker?,
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

impl fmt::Display for ShareGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether and how `motcua-dc run` keeps the broker's access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerAccess {
    /// Not at all (the embedded broker, EMQX, or a list kept by hand).
    Off,
    /// Through Mosquitto's dynamic-security plugin (`$CONTROL`).
    MosquittoDynsec,
}

impl FromStr for BrokerAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(BrokerAccess::Off),
            "mosquitto-dynsec" => Ok(BrokerAccess::MosquittoDynsec),
            other => Err(format!(
                "{other:?} is not a way to keep the broker's access list: use \"off\" or \"mosquitto-dynsec\""
            )),
        }
    }
}

impl fmt::Display for BrokerAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerAccess::Off => "off",
            BrokerAccess::MosquittoDynsec => "mosquitto-dynsec",
        })
    }
}

/// The receivers' certificate names: one or more, comma-separated, each a
/// valid MQTT user name for the access list (`A-Z a-z 0-9 . _ -`, at most
/// 64) starting with `motcua-dc`, so that no device id can be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverNames(pub Vec<String>);

impl FromStr for ReceiverNames {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err("name at least one receiver, e.g. \"motcua-dc\"".into());
        }
        for n in &names {
            let ok = n.len() <= 64
                && crate::is_receiver_name(n)
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(format!(
                    "{n:?} is not a receiver name: use up to 64 characters from A-Z a-z 0-9 . _ -, starting with {:?}",
                    crate::RECEIVER_IDENTITY
                ));
            }
        }
        Ok(ReceiverNames(names))
    }
}

impl fmt::Display for ReceiverNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// The effective configuration as TOML, defaults filled in.
impl fmt::Display for DcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dc)?;
        write!(f, "\n{}", self.database)?;
        write!(f, "\n{}", self.broker)?;
        write!(f, "\n{}", self.log)?;
        write!(f, "\n{}", self.http)
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
    fn the_dashboard_is_on_loopback_by_default_and_beyond_it_only_with_tls() {
        let with_http = |http: &str| {
            let text = format!(
                "[dc]\nkey_file = \"/var/lib/motcua-dc/dc.key\"\n[broker]\nbroker = \"mqtt://127.0.0.1:1883\"\nallow_plaintext = true\naccess = \"off\"\n[http]\n{http}\n"
            );
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("dc.toml");
            std::fs::write(&path, text).expect("writes");
            DcConfig::load(&path)
        };
        let plain = with_http("").expect("loopback without TLS");
        assert!(plain.http.tls().is_none());
        let open = with_http("bind = \"0.0.0.0:9480\"").expect_err("beyond loopback in clear");
        assert!(open.to_string().contains("http.bind"), "{open}");
        let half = with_http("tls_cert = \"/etc/motcua/dashboard.crt\"").expect_err("half");
        assert!(half.to_string().contains("http.tls_cert"), "{half}");
        let tls = with_http(
            "bind = \"10.20.0.5:9480\"\ntls_cert = \"/etc/motcua/d.crt\"\ntls_key = \"/var/lib/motcua-dc/d.key\"",
        )
        .expect("beyond loopback with TLS");
        assert!(tls.http.tls().is_some());
    }

    #[test]
    fn every_declared_key_is_documented_in_the_template_with_its_default() {
        let wrong = motcua_common::settings::check_template(
            include_str!("../../firmware-config/dc.toml"),
            SECTIONS,
        );
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn receiver_names_and_access() {
        assert_eq!(
            "motcua-dc, motcua-dc-2".parse::<ReceiverNames>(),
            Ok(ReceiverNames(vec![
                "motcua-dc".into(),
                "motcua-dc-2".into()
            ]))
        );
        for bad in ["", "H49.1-q01", "motcua-dc,x", "motcua-dc/1"] {
            assert!(bad.parse::<ReceiverNames>().is_err(), "{bad}");
        }
        assert_eq!(
            "mosquitto-dynsec".parse::<BrokerAccess>(),
            Ok(BrokerAccess::MosquittoDynsec)
        );
        let e = "acl".parse::<BrokerAccess>().expect_err("unknown");
        assert!(e.contains("mosquitto-dynsec"), "{e}");
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
        assert_eq!(with_threads(0).map(|c| c.dc.verify_threads).ok(), Some(0));
        assert_eq!(with_threads(4).map(|c| c.dc.verify_threads).ok(), Some(4));
        for bad in [-1, 65] {
            let e = with_threads(bad).expect_err("out of range").to_string();
            assert!(e.contains("dc.verify_threads"), "{e}");
        }
    }
}
