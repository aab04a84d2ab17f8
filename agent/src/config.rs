//! The agent's configuration: `/etc/motcua/agent.toml` by default.
//!
//! Read in two stages: [`RawConfig`] mirrors the file (unknown keys are
//! refused), then [`AgentConfig::from_raw`] validates every value once and
//! reports every problem with its key.
//!
//! Each key is declared once, in its section's [`section!`] below: its doc,
//! default and kind (the checked type, bounds included) give the raw field,
//! the validation, the typed field, the line `config check` prints and the
//! entry the template test compares with `firmware-config/agent.toml`,
//! which documents each key with its meaning, default and an example.
//! Keys only valid together (`dc.broker` and its TLS files, the kiosk's
//! address, certificate and staff file) are a section's parts, validated
//! together here.

use std::fmt;
use std::path::Path;

use motcua_common::config::{
    AbsPath, BrokerConnection, ByteSize, LogSection, Problems, PublicKey, RawBroker, RawLog,
    read_toml,
};
use motcua_common::section;
use motcua_common::settings::{Count, KeyDoc, Kind, Maybe, Parsed, Seconds};
use motcua_counter::state_dir::StateDir;
use motcua_protocol::{DeviceId, UnitCode};
use serde::Deserialize;

/// Where the agent looks for its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/motcua/agent.toml";

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    device: RawDevice,
    #[serde(default)]
    store: RawStore,
    dc: RawDc,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    kiosk: RawKiosk,
    #[serde(default)]
    telemetry: RawTelemetry,
    #[serde(default)]
    office: RawOffice,
}

/// Every section and its declared keys, as the template documents them.
pub const SECTIONS: &[(&str, &[KeyDoc])] = &[
    ("device", RawDevice::KEYS),
    ("store", RawStore::KEYS),
    ("dc", RawDc::KEYS),
    ("log", RawLog::KEYS),
    ("kiosk", RawKiosk::KEYS),
    ("telemetry", RawTelemetry::KEYS),
    ("office", RawOffice::KEYS),
];

pub use motcua_counter::downstream::{HEALTH_INTERVAL_MAX_S, HEALTH_INTERVAL_MIN_S};

section! {
    /// `[device]`.
    #[derive(Debug, Clone)]
    "device": RawDevice => DeviceSection {
        keys {
            /// The device id, in every payload and topic.
            id => Parsed<DeviceId>,
            /// The receiving unit's QCVN 102 code, the first part of dossier codes.
            unit => Parsed<UnitCode>,
            /// This counter's number within the unit, 1 to 9: the first digit of
            /// the daily dossier sequence it hands out, so counters of one unit never
            /// collide while offline.
            counter => CounterNumber,
            /// The device's Ed25519 signing key (PKCS#8 PEM, mode 0600).
            key_file = "/var/lib/motcua/device.key" => Parsed<AbsPath>,
            /// Where results are collected, printed on receipts unless the clerk
            /// says otherwise.
            collect_at = "Bộ phận tiếp nhận và trả kết quả" => PlaceName,
            /// A file whose existence means the clock is synchronised (besides
            /// systemd-timesyncd's own marker).
            clock_marker = None => Maybe<Parsed<AbsPath>>,
        }
    }
}

section! {
    /// `[store]`.
    #[derive(Debug, Clone)]
    "store": RawStore => StoreSection {
        keys {
            /// Directory of the database and journal.
            state_dir = "/var/lib/motcua" => Directory,
            /// Below this much free space, new records are refused.
            min_free = "64 MiB" => Parsed<ByteSize>,
            /// How long synced records and finished dossiers' personal data are
            /// kept before pruning.
            retention = "90days" => Seconds<86_400, { 20 * 366 * 86_400 }>,
        }
    }
}

section! {
    /// `[dc]`.
    #[derive(Debug, Clone)]
    "dc": RawDc => DcSection {
        parts {
            /// The broker's URL.
            broker: String,
            /// Allow a plain `mqtt://` broker.
            allow_plaintext: bool = false,
            /// The broker's CA.
            ca_file: Option<String> = None,
            /// This device's TLS client certificate.
            client_cert: Option<String> = None,
            /// Its private key.
            client_key: Option<String> = None,
        } => {
            /// The DC's MQTT broker and how to authenticate to it.
            broker: BrokerConnection,
        } shown by show_broker;
        keys {
            /// The DC's receipt-signing key: receipts that do not verify against it
            /// are ignored.
            public_key => Pinned,
            /// MQTT keep-alive interval.
            keep_alive = "30s" => Seconds<5, 1200>,
            /// Longest wait between reconnection attempts.
            reconnect_max = "5m" => Seconds<1, 3600>,
            /// Most envelopes sent and not yet receipted.
            window = 2048 => Count<usize, 1, 100_000>,
            /// Most envelopes per MQTT message.
            batch = 64 => Count<usize, 1, { motcua_protocol::bundle::MAX_BUNDLE_MESSAGES as i64 }>,
            /// Without a new receipt for this long while envelopes are out, send
            /// again from the last receipt.
            resend_after = "30s" => Seconds<2, 3600>,
        }
    }
}

section! {
    /// `[kiosk]`.
    #[derive(Debug, Clone)]
    "kiosk": RawKiosk => KioskSection {
        parts {
            /// Serve the kiosk from `motcua run`.
            enabled: bool = true,
            /// Listen address.
            bind: String = "127.0.0.1:8080",
            /// Certificate chain (PEM) for HTTPS.
            tls_cert: Option<String> = None,
            /// Its private key (PEM).
            tls_key: Option<String> = None,
            /// Staff accounts.
            staff_file: Option<String> = None,
        } => {
            /// Serve the kiosk from `motcua run`.
            enabled: bool,
            /// Listen address; beyond loopback only with TLS.
            bind: std::net::SocketAddr,
            /// Certificate chain and key (PEM) for HTTPS.
            tls: Option<(AbsPath, AbsPath)>,
            /// Staff accounts [default: `<state_dir>/staff.toml`].
            staff_file: std::path::PathBuf,
        } shown by show_listener;
        keys {
            /// A session ends after this long without a request.
            idle_timeout = "15m" => Seconds<60, { 12 * 3600 }>,
            /// Failed logins in a row that lock an account.
            max_failures = 5 => Count<u32, 1, 100>,
            /// How long the lock lasts.
            lockout = "5m" => Seconds<10, { 24 * 3600 }>,
        }
    }
}

section! {
    /// `[telemetry]`.
    #[derive(Debug, Clone)]
    "telemetry": RawTelemetry => TelemetrySection {
        keys {
            /// How often a health report is published while connected.
            health_interval = "60s" => Seconds<{ HEALTH_INTERVAL_MIN_S }, { HEALTH_INTERVAL_MAX_S }>,
        }
    }
}

section! {
    /// `[office]`: the counter's working day and its receipt.
    #[derive(Debug, Clone)]
    "office": RawOffice => OfficeSection {
        keys {
            /// When the counter closes: a procedure resolved within the day is
            /// due at this time (HH:MM, Vietnam time).
            closes = "17:00" => ClockTime,
            /// A same-day procedure received at or after this time is due at the
            /// close of the next working day ("off": only after closing time).
            /// The province's rule: see docs/DEPLOY.md.
            same_day_cutoff = "15:00" => Cutoff,
            /// The citizen's lookup page, `{code}` standing for the dossier code:
            /// the receipt's QR code opens it (unset: the QR holds the code).
            lookup_url = None => Maybe<Parsed<LookupUrl>>,
        }
    }
}

impl OfficeSection {
    /// The rule the appointment follows.
    pub fn day(&self) -> motcua_counter::domain::calendar::OfficeDay {
        motcua_counter::domain::calendar::OfficeDay {
            closes: self.closes,
            same_day_cutoff: self.same_day_cutoff,
        }
    }
}

fn hh_mm(raw: &str) -> Option<time::Time> {
    let (h, m) = raw.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

fn show_hh_mm(t: &time::Time) -> String {
    format!("\"{:02}:{:02}\"", t.hour(), t.minute())
}

/// A time of day, `HH:MM`.
pub struct ClockTime;

impl Kind for ClockTime {
    type Raw = String;
    type Value = time::Time;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<time::Time> {
        let t = hh_mm(raw);
        if t.is_none() {
            p.push(
                key,
                format!("{raw:?} is not a time of day: write HH:MM, e.g. \"17:00\""),
            );
        }
        t
    }
    fn show(value: &time::Time) -> Option<String> {
        Some(show_hh_mm(value))
    }
}

/// A cut-off time `HH:MM`, or `off`.
pub struct Cutoff;

impl Kind for Cutoff {
    type Raw = String;
    type Value = Option<time::Time>;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<Option<time::Time>> {
        if raw.trim() == "off" {
            return Some(None);
        }
        let t = hh_mm(raw);
        if t.is_none() {
            p.push(
                key,
                format!("{raw:?} is not a cut-off: write HH:MM, e.g. \"15:00\", or \"off\""),
            );
        }
        t.map(Some)
    }
    fn show(value: &Option<time::Time>) -> Option<String> {
        Some(
            value
                .as_ref()
                .map_or_else(|| "\"off\"".to_owned(), show_hh_mm),
        )
    }
}

/// A lookup URL template: `https://` (or `http://`), holding `{code}` once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupUrl(String);

impl LookupUrl {
    /// The URL for dossier `code`.
    pub fn for_code(&self, code: &str) -> String {
        self.0.replace("{code}", code)
    }
}

impl std::str::FromStr for LookupUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<LookupUrl, String> {
        let s = s.trim();
        let scheme_ok = s.starts_with("https://") || s.starts_with("http://");
        if !scheme_ok
            || s.matches("{code}").count() != 1
            || s.len() > 300
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "{s:?} is not a lookup URL: an http(s) address holding {{code}} once, \
                 e.g. \"https://dichvucong.example.gov.vn/tra-cuu?ma={{code}}\""
            ));
        }
        Ok(LookupUrl(s.to_owned()))
    }
}

impl fmt::Display for LookupUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `device.counter`: 1 to 9.
pub struct CounterNumber;

impl Kind for CounterNumber {
    type Raw = i64;
    type Value = u8;
    fn check(p: &mut Problems, key: &str, raw: &i64) -> Option<u8> {
        match u8::try_from(*raw) {
            Ok(c @ 1..=9) => Some(c),
            _ => {
                p.push(key, format!("{raw} is not a counter number: use 1 to 9"));
                None
            }
        }
    }
    fn show(value: &u8) -> Option<String> {
        Some(value.to_string())
    }
}

/// A place name as printed on receipts: cleaned, 1 to 200 characters.
pub struct PlaceName;

impl Kind for PlaceName {
    type Raw = String;
    type Value = String;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<String> {
        let place = motcua_counter::domain::text::clean(raw);
        if place.is_empty()
            || place.chars().count() > motcua_counter::domain::dossier::MAX_SHORT_TEXT
        {
            p.push(key, "must be a place name of 1 to 200 characters");
            return None;
        }
        Some(place)
    }
    fn show(value: &String) -> Option<String> {
        Some(format!("{value:?}"))
    }
}

/// The state directory: an absolute path, held as a [`StateDir`].
pub struct Directory;

impl Kind for Directory {
    type Raw = String;
    type Value = StateDir;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<StateDir> {
        p.parse::<AbsPath>(key, raw)
            .map(|d| StateDir::new(d.as_path()))
    }
    fn show(value: &StateDir) -> Option<String> {
        Some(format!("{:?}", value.path().display().to_string()))
    }
}

/// The DC's pinned public key, shown with its key id.
pub struct Pinned;

impl Kind for Pinned {
    type Raw = String;
    type Value = PublicKey;
    fn check(p: &mut Problems, key: &str, raw: &String) -> Option<PublicKey> {
        p.parse::<PublicKey>(key, raw)
    }
    fn show(value: &PublicKey) -> Option<String> {
        Some(format!(
            "\"ed25519:{}\"  # kid {}",
            hex::encode(value.0.as_bytes()),
            motcua_protocol::KeyId::of(&value.0)
        ))
    }
}

fn show_broker(f: &mut fmt::Formatter<'_>, dc: &DcSection) -> fmt::Result {
    write!(f, "{}", dc.broker)
}

fn show_listener(f: &mut fmt::Formatter<'_>, k: &KioskSection) -> fmt::Result {
    writeln!(f, "enabled = {}", k.enabled)?;
    writeln!(f, "bind = \"{}\"", k.bind)?;
    if let Some((c, key)) = &k.tls {
        writeln!(f, "tls_cert = {:?}", c.to_string())?;
        writeln!(f, "tls_key = {:?}", key.to_string())?;
    }
    writeln!(f, "staff_file = {:?}", k.staff_file.display().to_string())
}

/// The validated configuration. Every value is checked; nothing downstream
/// parses strings.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Who this counter is.
    pub device: DeviceSection,
    /// Where and how records are kept.
    pub store: StoreSection,
    /// How to reach and trust the data centre.
    pub dc: DcSection,
    /// Log output.
    pub log: LogSection,
    /// The clerks' kiosk.
    pub kiosk: KioskSection,
    /// What the agent reports about itself.
    pub telemetry: TelemetrySection,
    /// The counter's working day and its receipt.
    pub office: OfficeSection,
}

impl AgentConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, Problems> {
        if !path.exists() {
            let mut p = Problems::default();
            p.push(
                "(file)",
                format!(
                    "{} does not exist: a new box is set up with 'motcua provision' \
                     (see 'motcua provision --help'), which writes it",
                    path.display()
                ),
            );
            return Err(p);
        }
        AgentConfig::from_raw(read_toml(path)?)
    }

    /// Validates a raw configuration, collecting every problem.
    pub fn from_raw(raw: RawConfig) -> Result<AgentConfig, Problems> {
        let mut p = Problems::default();
        let device = raw.device.validate(&mut p);
        let store = raw.store.validate(&mut p);
        let dc = &raw.dc;
        let broker = BrokerConnection::validate(
            &mut p,
            "dc",
            RawBroker {
                broker: &dc.broker(),
                allow_plaintext: dc.allow_plaintext(),
                ca_file: dc.ca_file().as_deref(),
                client_cert: dc.client_cert().as_deref(),
                client_key: dc.client_key().as_deref(),
            },
        );
        let dc = dc.validate(&mut p, broker.map(|b| (b,)));
        let log = raw.log.validate(&mut p);
        let state_dir = store.as_ref().map(|s| &s.state_dir);
        let listener = validate_listener(&mut p, &raw.kiosk, state_dir);
        let kiosk = raw.kiosk.validate(&mut p, listener);
        let telemetry = raw.telemetry.validate(&mut p);
        let office = raw.office.validate(&mut p);
        p.finish(|| {
            Some(AgentConfig {
                device: device?,
                store: store?,
                dc: dc?,
                log: log?,
                kiosk: kiosk?,
                telemetry: telemetry?,
                office: office?,
            })
        })
    }
}

/// `kiosk.enabled`, `bind`, `tls_cert`, `tls_key` and `staff_file`, which
/// are only valid together: beyond loopback only with TLS, and the staff
/// file in the state directory unless given.
#[allow(clippy::type_complexity)]
fn validate_listener(
    p: &mut Problems,
    k: &RawKiosk,
    state_dir: Option<&StateDir>,
) -> Option<(
    bool,
    std::net::SocketAddr,
    Option<(AbsPath, AbsPath)>,
    std::path::PathBuf,
)> {
    let raw_bind = k.bind();
    let bind = match raw_bind.parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(
                "kiosk.bind",
                format!("{raw_bind:?} is not an address:port, e.g. 127.0.0.1:8080"),
            );
            None
        }
    };
    let cert = k
        .tls_cert()
        .map(|c| p.parse::<AbsPath>("kiosk.tls_cert", &c));
    let key = k.tls_key().map(|c| p.parse::<AbsPath>("kiosk.tls_key", &c));
    let tls = match (cert, key) {
        (None, None) => Some(None),
        (Some(c), Some(k)) => Some(Some((c?, k?))),
        _ => {
            p.push(
                "kiosk.tls_cert",
                "tls_cert and tls_key go together: give both or neither",
            );
            None
        }
    };
    if let (Some(b), Some(None)) = (bind, &tls)
        && !b.ip().is_loopback()
    {
        p.push(
            "kiosk.bind",
            format!(
                "{b} is reachable from the network: set tls_cert and tls_key, or bind to 127.0.0.1"
            ),
        );
    }
    let staff_file = match &k.staff_file() {
        Some(f) => p
            .parse::<AbsPath>("kiosk.staff_file", f)
            .map(|a| a.as_path().to_path_buf()),
        None => state_dir.map(StateDir::staff),
    };
    Some((k.enabled(), bind?, tls?, staff_file?))
}

/// The effective configuration as TOML, defaults filled in: what `config
/// check` prints.
impl fmt::Display for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.device)?;
        write!(f, "\n{}", self.store)?;
        write!(f, "\n{}", self.dc)?;
        write!(f, "\n{}", self.log)?;
        write!(f, "\n{}", self.kiosk)?;
        write!(f, "\n{}", self.telemetry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn health_reports_go_every_minute_unless_told_otherwise() {
        let c = with_kiosk("").expect("defaults");
        assert_eq!(c.telemetry.health_interval, Duration::from_secs(60));
        let text = include_str!("../../firmware-config/agent.toml")
            .replace("health_interval = \"60s\"", "health_interval = \"2s\"");
        let e = AgentConfig::from_raw(toml::from_str(&text).expect("TOML")).expect_err("2s");
        assert!(e.to_string().contains("telemetry.health_interval"), "{e}");
        let full = AgentConfig::from_raw(
            toml::from_str(include_str!("../../firmware-config/agent.toml")).expect("TOML"),
        )
        .expect("the template");
        assert!(
            full.to_string()
                .contains("[telemetry]\nhealth_interval = \"1m\""),
            "{full}"
        );
    }

    #[test]
    fn every_declared_key_is_documented_in_the_template_with_its_default() {
        let wrong = motcua_common::settings::check_template(
            include_str!("../../firmware-config/agent.toml"),
            SECTIONS,
        );
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    fn with_kiosk(kiosk: &str) -> Result<AgentConfig, Problems> {
        let text = format!(
            "{}\n[kiosk]\n{kiosk}\n",
            include_str!("../../firmware-config/agent.toml")
                .split("\n[kiosk]")
                .next()
                .unwrap_or_default()
        );
        AgentConfig::from_raw(toml::from_str(&text).expect("TOML"))
    }

    #[test]
    fn the_kiosk_is_on_loopback_by_default_and_beyond_it_only_with_tls() {
        let c = with_kiosk("").expect("defaults");
        assert!(c.kiosk.enabled);
        assert_eq!(c.kiosk.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.kiosk.staff_file,
            std::path::Path::new("/var/lib/motcua/staff.toml")
        );
        let open = with_kiosk("bind = \"0.0.0.0:8443\"").expect_err("no TLS");
        assert!(open.to_string().contains("kiosk.bind"), "{open}");
        let half = with_kiosk("tls_cert = \"/etc/motcua/kiosk.crt\"").expect_err("half");
        assert!(half.to_string().contains("kiosk.tls_cert"), "{half}");
        let tls = with_kiosk(
            "bind = \"0.0.0.0:8443\"\ntls_cert = \"/etc/motcua/kiosk.crt\"\ntls_key = \"/var/lib/motcua/kiosk.key\"",
        )
        .expect("with TLS");
        assert!(tls.kiosk.tls.is_some());
        let bad = with_kiosk("idle_timeout = \"5s\"\nmax_failures = 0").expect_err("ranges");
        let text = bad.to_string();
        assert!(
            text.contains("kiosk.idle_timeout") && text.contains("kiosk.max_failures"),
            "{text}"
        );
    }
}
