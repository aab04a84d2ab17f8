//! Configuration support shared by both binaries.
//!
//! Each binary parses its TOML in two stages (the ripgrep and thin-edge
//! habit): a raw struct of plain strings and numbers with unknown keys
//! refused, then one validation pass into typed values that reports *every*
//! problem with its key, not just the first. This module holds the problem
//! list and the checked value types the validation converts into; code past
//! validation never sees a raw string.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use motcua_protocol::KeyId;
use serde::de::DeserializeOwned;

/// One configuration problem: the dotted key and a plain explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, e.g. `dc.broker`; `(file)` for problems of the whole file.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  {}: {}", p.key, p.message.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records a problem.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// Parses `raw` at `key` as a `T`, recording the error if it fails.
    pub fn parse<T>(&mut self, key: &str, raw: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match raw.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(key, e.to_string());
                None
            }
        }
    }

    /// `Ok(value())` when no problem was recorded, else every problem.
    /// `value` runs only when every field it unwraps was valid.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Problems> {
        if self.0.is_empty()
            && let Some(v) = value()
        {
            return Ok(v);
        }
        Err(self)
    }
}

/// The exit status of a command stopped by its configuration (missing,
/// unreadable or invalid): sysexits.h's `EX_CONFIG`. The units'
/// `RestartPreventExitStatus=78` keeps systemd from restarting a box that
/// would fail the same way until someone fixes its configuration.
pub const EX_CONFIG: u8 = 78;

/// The exit status for an error that stopped a command: [`EX_CONFIG`] when
/// [`Problems`] with the configuration caused it, 1 otherwise.
pub fn exit_status(e: &(dyn std::error::Error + 'static)) -> u8 {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<Problems>() {
            return EX_CONFIG;
        }
        cause = c.source();
    }
    1
}

/// What `config check FILE` does in both binaries: on success, says so on
/// standard error and prints the effective configuration (TOML, defaults
/// filled in) on standard output; otherwise prints every problem and
/// returns [`EX_CONFIG`].
pub fn check_command<T: fmt::Display>(
    path: &Path,
    load: impl FnOnce(&Path) -> Result<T, Problems>,
) -> std::process::ExitCode {
    match load(path) {
        Ok(cfg) => {
            eprintln!("{}: valid. Effective configuration:", path.display());
            crate::out!("{cfg}");
            std::process::ExitCode::SUCCESS
        }
        Err(problems) => {
            eprint!("{}: {problems}", path.display());
            std::process::ExitCode::from(EX_CONFIG)
        }
    }
}

/// Reads and parses a TOML file into its raw struct (unknown keys refused by
/// the struct's `deny_unknown_fields`).
pub fn read_toml<Raw: DeserializeOwned>(path: &Path) -> Result<Raw, Problems> {
    let mut problems = Problems::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push("(file)", format!("cannot read {}: {e}", path.display()));
            return Err(problems);
        }
    };
    toml::from_str(&text).map_err(|e| {
        let key = e
            .message()
            .split('`')
            .nth(1)
            .filter(|_| e.message().starts_with("unknown field"));
        let key = key.map_or_else(|| "(file)".to_owned(), |k| format!("(unknown key `{k}`)"));
        problems.push(&key, e.to_string().trim_end());
        problems
    })
}

/// An absolute file-system path. Services run from systemd with no useful
/// working directory, so relative paths are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsPath(PathBuf);

impl AbsPath {
    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl FromStr for AbsPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let p = PathBuf::from(s);
        if p.is_absolute() {
            Ok(AbsPath(p))
        } else {
            Err(format!(
                "{s:?} is not an absolute path (write it from /, e.g. /var/lib/motcua/device.key)"
            ))
        }
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

/// A duration written the human way: `30s`, `5m`, `1h 30m`, `7days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|_| {
                format!(
                    "{s:?} is not a duration (write e.g. \"30s\", \"5m\", \"1h 30m\", \"90days\")"
                )
            })
    }
}

/// The largest whole unit: `90days`, `5m`, `30s` (humantime's own format
/// would write 90 days as months of 30.44 days).
impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if self.0.subsec_nanos() != 0 || s == 0 {
            return humantime::format_duration(self.0).fmt(f);
        }
        for (unit, size) in [("days", 86_400), ("h", 3_600), ("m", 60)] {
            if s.is_multiple_of(size) {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

/// A byte count: `512`, `64 KiB`, `64 MiB`, `2 GiB` (also `KB`, `MB`, `GB`
/// as powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not a size (write e.g. \"64 MiB\", \"1 GiB\", \"500 MB\")");
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| err())?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(err()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(err)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{} {unit}", n / size);
            }
        }
        write!(f, "{n} B")
    }
}

/// An MQTT broker address: `mqtts://host:port` (TLS, default port 8883) or
/// `mqtt://host:port` (plain TCP, default 1883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl FromStr for BrokerUrl {
    type Err = String;
    /// A small parse of `scheme://host[:port][/]`: a broker address has no
    /// path, query, credentials or international domain name, so a general
    /// URL parser (and its Unicode tables, on every counter box) is not
    /// needed.
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "(write e.g. \"mqtts://dc.example.vn:8883\")";
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?} is not a URL: no scheme {hint}"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtts" => true,
            "mqtt" => false,
            other => {
                return Err(format!(
                    "{s:?} has scheme {other:?}; use mqtts:// (or mqtt:// for a local test) {hint}"
                ));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err(format!(
                "{s:?} carries credentials; the device authenticates with its TLS certificate"
            ));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(format!(
                "{s:?} has a path, query or fragment; a broker address is scheme, host and port {hint}"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s:?} has an unclosed '[' {hint}"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv6 address {hint}"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    format!("{s:?}: expected ':port' after the IPv6 address {hint}")
                })?),
            };
            (addr.to_ascii_lowercase(), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
                None => (authority.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s:?} has no host {hint}"));
        }
        if !host.contains(':')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!(
                "{s:?}: the host may hold only letters, digits, '-' and '.' {hint}"
            ));
        }
        let port = match port {
            None if tls => 8883,
            None => 1883,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s:?}: {p:?} is not a port (1 to 65535) {hint}"))?,
        };
        Ok(BrokerUrl { tls, host, port })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Mutual TLS material for an MQTT connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the broker's certificate: the only one trusted.
    pub ca_file: AbsPath,
    /// This client's certificate.
    pub client_cert: AbsPath,
    /// The client certificate's private key.
    pub client_key: AbsPath,
}

/// The broker keys of a configuration section, as written.
#[derive(Debug, Clone, Copy)]
pub struct RawBroker<'a> {
    /// `broker`: the URL.
    pub broker: &'a str,
    /// `allow_plaintext`.
    pub allow_plaintext: bool,
    /// `ca_file`.
    pub ca_file: Option<&'a str>,
    /// `client_cert`.
    pub client_cert: Option<&'a str>,
    /// `client_key`.
    pub client_key: Option<&'a str>,
}

/// How to reach and authenticate to an MQTT broker: TLS with a pinned CA
/// and a client certificate, or plain TCP only where the configuration
/// explicitly allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConnection {
    /// The broker's address.
    pub url: BrokerUrl,
    /// TLS files; `None` exactly when the URL is `mqtt://` and plain TCP was
    /// allowed.
    pub tls: Option<TlsFiles>,
}

impl BrokerConnection {
    /// Validates the broker keys of section `section`, recording problems.
    pub fn validate(
        p: &mut Problems,
        section: &str,
        raw: RawBroker<'_>,
    ) -> Option<BrokerConnection> {
        let key = |k: &str| format!("{section}.{k}");
        let url = p.parse::<BrokerUrl>(&key("broker"), raw.broker)?;
        let files = [
            ("ca_file", raw.ca_file),
            ("client_cert", raw.client_cert),
            ("client_key", raw.client_key),
        ];
        if !url.tls {
            if !raw.allow_plaintext {
                p.push(
                    &key("broker"),
                    format!(
                        "mqtt:// sends records unencrypted; use mqtts:// with ca_file, client_cert and client_key, \
                         or set {section}.allow_plaintext = true for a test on a trusted network"
                    ),
                );
            }
            for (k, v) in files {
                if v.is_some() {
                    p.push(
                        &key(k),
                        "is set but the broker is plain mqtt://; use mqtts:// to use TLS",
                    );
                }
            }
            return raw
                .allow_plaintext
                .then_some(BrokerConnection { url, tls: None });
        }
        let [ca_file, client_cert, client_key] = files.map(|(k, v)| match v {
            Some(s) => p.parse::<AbsPath>(&key(k), s),
            None => {
                p.push(&key(k), "is required with an mqtts:// broker (mutual TLS: the broker knows clients by certificate)");
                None
            }
        });
        Some(BrokerConnection {
            url,
            tls: Some(TlsFiles {
                ca_file: ca_file?,
                client_cert: client_cert?,
                client_key: client_key?,
            }),
        })
    }
}

/// TOML lines for the effective configuration.
impl fmt::Display for BrokerConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "broker = {:?}", self.url.to_string())?;
        match &self.tls {
            Some(t) => {
                writeln!(f, "ca_file = {:?}", t.ca_file.to_string())?;
                writeln!(f, "client_cert = {:?}", t.client_cert.to_string())?;
                writeln!(f, "client_key = {:?}", t.client_key.to_string())
            }
            None => writeln!(f, "allow_plaintext = true"),
        }
    }
}

/// A pinned Ed25519 public key written `ed25519:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(pub VerifyingKey);

impl FromStr for PublicKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "{s:?} is not an Ed25519 public key: expected \"ed25519:\" and 64 hex digits, as printed by 'motcua-dc keygen'"
            )
        };
        let hexkey = s.strip_prefix("ed25519:").ok_or_else(err)?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(hexkey, &mut raw).map_err(|_| err())?;
        VerifyingKey::from_bytes(&raw)
            .map(PublicKey)
            .map_err(|_| err())
    }
}

impl PublicKey {
    /// The key as a technician pastes it: `ed25519:<hex>`, or the whole
    /// line `motcua-dc keygen` and `motcua-dc public-key` print
    /// (`public_key = "ed25519:<hex>"  # kid <kid>`), whose kid, when
    /// present, must be the key's.
    pub fn from_line(s: &str) -> Result<PublicKey, String> {
        let t = s.trim();
        let Some(rest) = t.strip_prefix("public_key") else {
            return t.parse();
        };
        let err = |why: &str| format!("{t:?}: {why}");
        let rest = rest
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| err("expected public_key = \"ed25519:...\""))?;
        let (value, comment) = match rest.split_once('#') {
            Some((v, c)) => (v, Some(c)),
            None => (rest, None),
        };
        let key: PublicKey = value.trim().trim_matches('"').parse()?;
        if let Some(c) = comment {
            let kid = c.trim().strip_prefix("kid").map(str::trim);
            if kid.is_some_and(|k| k != KeyId::of(&key.0).to_string()) {
                return Err(err(
                    "its kid is not the key's: the line was changed or mixed with another",
                ));
            }
        }
        Ok(key)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ed25519:{} (kid {})",
            hex::encode(self.0.as_bytes()),
            KeyId::of(&self.0)
        )
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; without timestamps under journald, which adds its own.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "{s:?} is not a log format: use \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// A tracing filter directive such as `info` or `motcua=debug,rumqttc=warn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(pub String);

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        tracing_subscriber::EnvFilter::try_new(s)
            .map(|_| LogLevel(s.to_owned()))
            .map_err(|e| format!("{s:?} is not a log level or filter ({e}); use e.g. \"info\" or \"motcua=debug\""))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::section! {
    /// The validated `[log]` section; the same in both binaries.
    #[derive(Debug, Clone, PartialEq, Eq)]
    "log": RawLog => LogSection {
        keys {
            /// Text or JSON.
            format = "text" => crate::settings::Parsed<LogFormat>,
            /// Level or filter directive.
            level = "info" => crate::settings::Parsed<LogLevel>,
        }
    }
}

#[cfg(test)]
mod key_line_tests {
    use super::*;

    #[test]
    fn a_key_is_taken_alone_or_as_the_printed_line() {
        let key = VerifyingKey::from_bytes(&[
            0x03, 0x43, 0x25, 0x18, 0x0c, 0x62, 0x3c, 0xbe, 0x3f, 0xd9, 0x4a, 0x1c, 0x84, 0xc3,
            0x6c, 0xdd, 0x53, 0xc2, 0xc4, 0x7c, 0xac, 0x8d, 0x6a, 0x0f, 0xf8, 0x9b, 0x03, 0xee,
            0x16, 0xe8, 0x24, 0x7e,
        ])
        .expect("a point");
        let hex = hex::encode(key.as_bytes());
        let kid = KeyId::of(&key).to_string();
        for ok in [
            format!("ed25519:{hex}"),
            format!("public_key = \"ed25519:{hex}\""),
            format!("public_key = \"ed25519:{hex}\"  # kid {kid}\n"),
        ] {
            assert_eq!(PublicKey::from_line(&ok).map(|k| k.0), Ok(key), "{ok}");
        }
        let wrong_kid =
            format!("public_key = \"ed25519:{hex}\"  # kid 00000000000000000000000000000000");
        assert!(
            PublicKey::from_line(&wrong_kid)
                .unwrap_err()
                .contains("kid")
        );
        assert!(PublicKey::from_line("public_key = 12").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("64 MiB".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("64MiB".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("500 MB".parse(), Ok(ByteSize(500_000_000)));
        assert_eq!("512".parse(), Ok(ByteSize(512)));
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("64 mb".parse::<ByteSize>().is_err());
        assert!("99999999999 GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(64 << 20).to_string(), "64 MiB");
    }

    #[test]
    fn durations() {
        assert_eq!("30s".parse(), Ok(HumanDuration(Duration::from_secs(30))));
        assert_eq!(
            "1h 30m".parse(),
            Ok(HumanDuration(Duration::from_secs(5400)))
        );
        let e = "soon".parse::<HumanDuration>().expect_err("bad");
        assert!(e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn broker_urls() {
        let u: BrokerUrl = "mqtts://dc.example.vn".parse().expect("valid");
        assert_eq!(
            u,
            BrokerUrl {
                tls: true,
                host: "dc.example.vn".into(),
                port: 8883
            }
        );
        let u: BrokerUrl = "mqtt://127.0.0.1:18830".parse().expect("valid");
        assert_eq!((u.tls, u.port), (false, 18830));
        assert_eq!(u.to_string(), "mqtt://127.0.0.1:18830");
        let u: BrokerUrl = "MQTTS://[::1]:8884/".parse().expect("valid");
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", 8884));
        assert_eq!(u.to_string(), "mqtts://[::1]:8884");
        let u: BrokerUrl = "mqtts://MQTT.DC.example.vn".parse().expect("valid");
        assert_eq!(u.host, "mqtt.dc.example.vn");
        for bad in [
            "https://x",
            "mqtts://",
            "mqtts://u:p@x",
            "mqtts://x/path",
            "mqtts://x?q",
            "mqtts://x:0",
            "mqtts://x:99999",
            "mqtts://x:port",
            "mqtts://[::1",
            "mqtts://hôst",
            "dc.example.vn",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_keys() {
        let k = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let s = format!("ed25519:{}", hex::encode(k.as_bytes()));
        assert_eq!(s.parse(), Ok(PublicKey(k)));
        assert!(hex::encode(k.as_bytes()).parse::<PublicKey>().is_err());
        assert!("ed25519:00".parse::<PublicKey>().is_err());
    }

    #[test]
    fn paths_must_be_absolute() {
        assert!("/var/lib/motcua".parse::<AbsPath>().is_ok());
        assert!("state".parse::<AbsPath>().is_err());
    }

    #[test]
    fn problems_list_every_key() {
        let mut p = Problems::default();
        let a: Option<HumanDuration> = p.parse("dc.keep_alive", "x");
        let b: Option<ByteSize> = p.parse("store.min_free", "y");
        assert!(a.is_none() && b.is_none());
        let text = p
            .clone()
            .finish(|| Some(()))
            .expect_err("two problems")
            .to_string();
        assert!(text.starts_with("2 problems"), "{text}");
        assert!(
            text.contains("  dc.keep_alive: ") && text.contains("  store.min_free: "),
            "{text}"
        );
    }
}
