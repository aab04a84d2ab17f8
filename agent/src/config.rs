//! The agent's configuration: `/etc/motcua/agent.toml` by default.
//!
//! Read in two stages: [`RawConfig`] mirrors the file (unknown keys are
//! refused), then [`AgentConfig::from_raw`] validates every value once and
//! reports every problem with its key. The shipped template
//! `firmware-config/agent.toml` documents each key with its meaning, default
//! and an example; keep the two in step.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use motcua_common::config::{
    AbsPath, BrokerConnection, ByteSize, HumanDuration, LogSection, Problems, PublicKey, RawBroker,
    RawLog, read_toml,
};
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    #[serde(default = "default_health_interval")]
    health_interval: String,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry {
            health_interval: default_health_interval(),
        }
    }
}

fn default_health_interval() -> String {
    "60s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKiosk {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_kiosk_bind")]
    bind: String,
    #[serde(default)]
    tls_cert: Option<String>,
    #[serde(default)]
    tls_key: Option<String>,
    #[serde(default)]
    staff_file: Option<String>,
    #[serde(default = "default_idle_timeout")]
    idle_timeout: String,
    #[serde(default = "default_max_failures")]
    max_failures: i64,
    #[serde(default = "default_lockout")]
    lockout: String,
}

impl Default for RawKiosk {
    fn default() -> Self {
        RawKiosk {
            enabled: true,
            bind: default_kiosk_bind(),
            tls_cert: None,
            tls_key: None,
            staff_file: None,
            idle_timeout: default_idle_timeout(),
            max_failures: default_max_failures(),
            lockout: default_lockout(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_kiosk_bind() -> String {
    "127.0.0.1:8080".into()
}
fn default_idle_timeout() -> String {
    "15m".into()
}
fn default_max_failures() -> i64 {
    5
}
fn default_lockout() -> String {
    "5m".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: String,
    unit: String,
    counter: i64,
    #[serde(default = "default_key_file")]
    key_file: String,
    #[serde(default = "default_collect_at")]
    collect_at: String,
    #[serde(default)]
    clock_marker: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(default = "default_state_dir")]
    state_dir: String,
    #[serde(default = "default_min_free")]
    min_free: String,
    #[serde(default = "default_retention")]
    retention: String,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            state_dir: default_state_dir(),
            min_free: default_min_free(),
            retention: default_retention(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDc {
    broker: String,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    public_key: String,
    #[serde(default = "default_keep_alive")]
    keep_alive: String,
    #[serde(default = "default_reconnect_max")]
    reconnect_max: String,
    #[serde(default = "default_window")]
    window: i64,
    #[serde(default = "default_batch")]
    batch: i64,
    #[serde(default = "default_resend_after")]
    resend_after: String,
}

fn default_key_file() -> String {
    "/var/lib/motcua/device.key".into()
}
fn default_collect_at() -> String {
    "Bộ phận tiếp nhận và trả kết quả".into()
}
fn default_retention() -> String {
    "90days".into()
}
fn default_state_dir() -> String {
    "/var/lib/motcua".into()
}
fn default_min_free() -> String {
    "64 MiB".into()
}
fn default_keep_alive() -> String {
    "30s".into()
}
fn default_reconnect_max() -> String {
    "5m".into()
}
fn default_window() -> i64 {
    2048
}
fn default_batch() -> i64 {
    64
}
fn default_resend_after() -> String {
    "30s".into()
}
pub use motcua_counter::downstream::{HEALTH_INTERVAL_MAX_S, HEALTH_INTERVAL_MIN_S};

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
}

/// `[telemetry]`.
#[derive(Debug, Clone)]
pub struct TelemetrySection {
    /// How often a health report is published while connected.
    pub health_interval: Duration,
}

/// `[kiosk]`.
#[derive(Debug, Clone)]
pub struct KioskSection {
    /// Serve the kiosk from `motcua run`.
    pub enabled: bool,
    /// Listen address; beyond loopback only with TLS.
    pub bind: std::net::SocketAddr,
    /// Certificate chain and key (PEM) for HTTPS.
    pub tls: Option<(AbsPath, AbsPath)>,
    /// Staff accounts [default: `<state_dir>/staff.toml`].
    pub staff_file: std::path::PathBuf,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// Failed logins in a row that lock an account.
    pub max_failures: u32,
    /// How long the lock lasts.
    pub lockout: Duration,
}

/// `[device]`.
#[derive(Debug, Clone)]
pub struct DeviceSection {
    /// The device id, in every payload and topic.
    pub id: DeviceId,
    /// The receiving unit's QCVN 102 code, the first part of dossier codes.
    pub unit: UnitCode,
    /// This counter's number within the unit, 1 to 9: the first digit of
    /// the daily dossier sequence it hands out, so counters of one unit never
    /// collide while offline.
    pub counter: u8,
    /// The device's Ed25519 signing key (PKCS#8 PEM, mode 0600).
    pub key_file: AbsPath,
    /// Where results are collected, printed on receipts unless the clerk
    /// says otherwise.
    pub collect_at: String,
    /// A file whose existence means the clock is synchronised (besides
    /// systemd-timesyncd's own marker).
    pub clock_marker: Option<AbsPath>,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreSection {
    /// Directory of the database and journal.
    pub state_dir: StateDir,
    /// Below this much free space, new records are refused.
    pub min_free: ByteSize,
    /// How long synced records and finished dossiers' personal data are
    /// kept before pruning.
    pub retention: Duration,
}

/// `[dc]`.
#[derive(Debug, Clone)]
pub struct DcSection {
    /// The DC's MQTT broker and how to authenticate to it.
    pub broker: BrokerConnection,
    /// The DC's receipt-signing key: receipts that do not verify against it
    /// are ignored.
    pub public_key: PublicKey,
    /// MQTT keep-alive interval.
    pub keep_alive: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// Most envelopes sent and not yet receipted.
    pub window: usize,
    /// Most envelopes per MQTT message.
    pub batch: usize,
    /// Without a new receipt for this long while envelopes are out, send
    /// again from the last receipt.
    pub resend_after: Duration,
}

impl AgentConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, Problems> {
        AgentConfig::from_raw(read_toml(path)?)
    }

    /// Validates a raw configuration, collecting every problem.
    pub fn from_raw(raw: RawConfig) -> Result<AgentConfig, Problems> {
        let mut p = Problems::default();
        let id = p.parse::<DeviceId>("device.id", &raw.device.id);
        let unit = p.parse::<UnitCode>("device.unit", &raw.device.unit);
        let counter = match u8::try_from(raw.device.counter) {
            Ok(c @ 1..=9) => Some(c),
            _ => {
                p.push(
                    "device.counter",
                    format!("{} is not a counter number: use 1 to 9", raw.device.counter),
                );
                None
            }
        };
        let key_file = p.parse::<AbsPath>("device.key_file", &raw.device.key_file);
        let collect_at = motcua_counter::domain::text::clean(&raw.device.collect_at);
        if collect_at.is_empty()
            || collect_at.chars().count() > motcua_counter::domain::dossier::MAX_SHORT_TEXT
        {
            p.push(
                "device.collect_at",
                "must be a place name of 1 to 200 characters",
            );
        }
        let clock_marker = match &raw.device.clock_marker {
            Some(m) => p.parse::<AbsPath>("device.clock_marker", m).map(Some),
            None => Some(None),
        };
        let state_dir = p
            .parse::<AbsPath>("store.state_dir", &raw.store.state_dir)
            .map(|d| StateDir::new(d.as_path()));
        let min_free = p.parse::<ByteSize>("store.min_free", &raw.store.min_free);
        let retention = bounded(
            &mut p,
            "store.retention",
            &raw.store.retention,
            86_400,
            20 * 366 * 86_400,
        );

        let conn = BrokerConnection::validate(
            &mut p,
            "dc",
            RawBroker {
                broker: &raw.dc.broker,
                allow_plaintext: raw.dc.allow_plaintext,
                ca_file: raw.dc.ca_file.as_deref(),
                client_cert: raw.dc.client_cert.as_deref(),
                client_key: raw.dc.client_key.as_deref(),
            },
        );
        let public_key = p.parse::<PublicKey>("dc.public_key", &raw.dc.public_key);
        let keep_alive = bounded(&mut p, "dc.keep_alive", &raw.dc.keep_alive, 5, 1200);
        let reconnect_max = bounded(&mut p, "dc.reconnect_max", &raw.dc.reconnect_max, 1, 3600);
        let window = range(&mut p, "dc.window", raw.dc.window, 1, 100_000);
        let batch = range(
            &mut p,
            "dc.batch",
            raw.dc.batch,
            1,
            motcua_protocol::bundle::MAX_BUNDLE_MESSAGES as i64,
        );
        let resend_after = bounded(&mut p, "dc.resend_after", &raw.dc.resend_after, 2, 3600);
        let log = raw.log.validate(&mut p);
        let kiosk = validate_kiosk(&mut p, &raw.kiosk, state_dir.as_ref());
        let health_interval = bounded(
            &mut p,
            "telemetry.health_interval",
            &raw.telemetry.health_interval,
            HEALTH_INTERVAL_MIN_S,
            HEALTH_INTERVAL_MAX_S,
        );

        p.finish(|| {
            Some(AgentConfig {
                device: DeviceSection {
                    id: id?,
                    unit: unit?,
                    counter: counter?,
                    key_file: key_file?,
                    collect_at,
                    clock_marker: clock_marker?,
                },
                store: StoreSection {
                    state_dir: state_dir?,
                    min_free: min_free?,
                    retention: retention?,
                },
                dc: DcSection {
                    broker: conn?,
                    public_key: public_key?,
                    keep_alive: keep_alive?,
                    reconnect_max: reconnect_max?,
                    window: window?,
                    batch: batch?,
                    resend_after: resend_after?,
                },
                log: log?,
                kiosk: kiosk?,
                telemetry: TelemetrySection {
                    health_interval: health_interval?,
                },
            })
        })
    }
}

fn validate_kiosk(
    p: &mut Problems,
    k: &RawKiosk,
    state_dir: Option<&StateDir>,
) -> Option<KioskSection> {
    let bind = match k.bind.parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.push(
                "kiosk.bind",
                format!("{:?} is not an address:port, e.g. 127.0.0.1:8080", k.bind),
            );
            None
        }
    };
    let cert = k
        .tls_cert
        .as_ref()
        .map(|c| p.parse::<AbsPath>("kiosk.tls_cert", c));
    let key = k
        .tls_key
        .as_ref()
        .map(|c| p.parse::<AbsPath>("kiosk.tls_key", c));
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
    let staff_file = match &k.staff_file {
        Some(f) => p
            .parse::<AbsPath>("kiosk.staff_file", f)
            .map(|a| a.as_path().to_path_buf()),
        None => state_dir.map(StateDir::staff),
    };
    let idle_timeout = bounded(p, "kiosk.idle_timeout", &k.idle_timeout, 60, 12 * 3600);
    let max_failures = range(p, "kiosk.max_failures", k.max_failures, 1, 100);
    let lockout = bounded(p, "kiosk.lockout", &k.lockout, 10, 24 * 3600);
    Some(KioskSection {
        enabled: k.enabled,
        bind: bind?,
        tls: tls?,
        staff_file: staff_file?,
        idle_timeout: idle_timeout?,
        max_failures: u32::try_from(max_failures?).ok()?,
        lockout: lockout?,
    })
}

fn range(p: &mut Problems, key: &str, v: i64, min: i64, max: i64) -> Option<usize> {
    if (min..=max).contains(&v) {
        usize::try_from(v).ok()
    } else {
        p.push(key, format!("{v} is out of range: use {min} to {max}"));
        None
    }
}

fn bounded(p: &mut Problems, key: &str, raw: &str, min_s: u64, max_s: u64) -> Option<Duration> {
    let d = p.parse::<HumanDuration>(key, raw)?.0;
    if d < Duration::from_secs(min_s) || d > Duration::from_secs(max_s) {
        p.push(
            key,
            format!(
                "{raw:?} is out of range: use from {} to {}",
                HumanDuration(Duration::from_secs(min_s)),
                HumanDuration(Duration::from_secs(max_s))
            ),
        );
        return None;
    }
    Some(d)
}

/// The effective configuration as TOML, defaults filled in: what `config
/// check` prints.
impl fmt::Display for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.device;
        writeln!(f, "[device]")?;
        writeln!(f, "id = {:?}", d.id.as_str())?;
        writeln!(f, "unit = {:?}", d.unit.as_str())?;
        writeln!(f, "counter = {}", d.counter)?;
        writeln!(f, "key_file = {:?}", d.key_file.to_string())?;
        writeln!(f, "collect_at = {:?}", d.collect_at)?;
        if let Some(m) = &d.clock_marker {
            writeln!(f, "clock_marker = {:?}", m.to_string())?;
        }
        writeln!(f, "\n[store]")?;
        writeln!(
            f,
            "state_dir = {:?}",
            self.store.state_dir.path().display().to_string()
        )?;
        writeln!(f, "min_free = {:?}", self.store.min_free.to_string())?;
        writeln!(
            f,
            "retention = {:?}",
            HumanDuration(self.store.retention).to_string()
        )?;
        let dc = &self.dc;
        writeln!(f, "\n[dc]")?;
        write!(f, "{}", dc.broker)?;
        writeln!(
            f,
            "public_key = \"ed25519:{}\"  # kid {}",
            hex::encode(dc.public_key.0.as_bytes()),
            motcua_protocol::KeyId::of(&dc.public_key.0)
        )?;
        writeln!(
            f,
            "keep_alive = {:?}",
            HumanDuration(dc.keep_alive).to_string()
        )?;
        writeln!(
            f,
            "reconnect_max = {:?}",
            HumanDuration(dc.reconnect_max).to_string()
        )?;
        writeln!(f, "window = {}", dc.window)?;
        writeln!(f, "batch = {}", dc.batch)?;
        writeln!(
            f,
            "resend_after = {:?}",
            HumanDuration(dc.resend_after).to_string()
        )?;
        write!(f, "\n{}", self.log)?;
        let k = &self.kiosk;
        writeln!(f, "\n[kiosk]")?;
        writeln!(f, "enabled = {}", k.enabled)?;
        writeln!(f, "bind = \"{}\"", k.bind)?;
        if let Some((c, key)) = &k.tls {
            writeln!(f, "tls_cert = {:?}", c.to_string())?;
            writeln!(f, "tls_key = {:?}", key.to_string())?;
        }
        writeln!(f, "staff_file = {:?}", k.staff_file.display().to_string())?;
        writeln!(
            f,
            "idle_timeout = {:?}",
            HumanDuration(k.idle_timeout).to_string()
        )?;
        writeln!(f, "max_failures = {}", k.max_failures)?;
        writeln!(f, "lockout = {:?}", HumanDuration(k.lockout).to_string())?;
        writeln!(f, "\n[telemetry]")?;
        writeln!(
            f,
            "health_interval = {:?}",
            HumanDuration(self.telemetry.health_interval).to_string()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
