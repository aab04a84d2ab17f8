//! What a counter says about itself: the health report on its `health`
//! topic and its presence on its `status` topic.
//!
//! Neither is signed. The broker already authenticates every client by its
//! certificate and its ACL lets a counter write only its own topics, and
//! neither message changes a record: a forged report could only mislead
//! the fleet view. The receiver still refuses a report whose `device`
//! differs from its topic's, or that is not strict JSON (duplicate keys,
//! trailing bytes) of at most [`MAX_HEALTH_BYTES`].
//!
//! Health report, JSON, QoS 0, every `telemetry.health_interval`:
//!
//! | member               | type            | meaning |
//! |----------------------|-----------------|---------|
//! | `v`                  | integer         | format version, 1 |
//! | `device`             | string          | the reporting device (as in its topic) |
//! | `unit`               | string          | its receiving unit's code (`H49.12.3`) |
//! | `at`                 | string          | device time, RFC 3339 UTC |
//! | `clock_synced`       | bool            | whether the device clock is synchronised |
//! | `clock`              | string, optional | where its time comes from: `synced`, `dc` (derived from the DC's receipt times) or `unknown` |
//! | `version`            | string          | agent version |
//! | `uptime_s`           | integer         | seconds since the box booted |
//! | `agent_uptime_s`     | integer         | seconds since the agent started |
//! | `cpu_percent`        | number          | CPU use over the last interval, 0 to 100 |
//! | `load`               | [number; 3]     | load averages over 1, 5 and 15 minutes |
//! | `mem_used_bytes`     | integer         | memory in use |
//! | `mem_total_bytes`    | integer         | memory in all |
//! | `disk_free_bytes`    | integer         | free space of the state directory's file system |
//! | `disk_total_bytes`   | integer         | its size |
//! | `temperature_c`      | number or null  | the hottest sensor the board exposes |
//! | `unsynced`           | integer         | records not yet receipted by the DC |
//! | `oldest_unsynced_s`  | integer or null | age of the oldest of them, by its signing time |
//! | `last_receipt_at`    | string or null  | device time the last valid receipt arrived |
//! | `receipted_through`  | integer         | every seq up to this one is receipted |
//! | `head_seq`           | integer         | the last seq signed |
//! | `catalogue_version`  | integer or null | the cached catalogue's version |
//! | `status_seq`         | integer         | the last status-updates message gone through (0: none) |
//! | `updates_through`    | integer         | the highest status update id gone through |
//! | `update_conflicts`   | integer         | status updates not applied (the counter's status differed) |
//! | `settings_seq`       | integer         | the last settings message applied (0: none) |
//! | `refused_down`       | integer         | downstream messages refused since the agent started |
//!
//! A receiver ignores members it does not know, so a newer agent can add
//! some without a new version; it refuses a missing or mistyped one.
//!
//! Presence, on `status`, retained, QoS 1: the bytes `online`, published by
//! the agent after every connection, and `offline`, its MQTT last will (the
//! broker publishes it when the connection drops without a DISCONNECT) and
//! what it publishes itself before a clean shutdown.

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, UnitCode};
use crate::json::{JsonError, check_strict, parse_typed};
use crate::time::UtcTime;

/// Largest health report a receiver reads.
pub const MAX_HEALTH_BYTES: usize = 4096;

/// The health report's format version.
pub const HEALTH_VERSION: u32 = 1;

/// A counter's report about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Format version: [`HEALTH_VERSION`].
    pub v: u32,
    /// The reporting device.
    pub device: DeviceId,
    /// Its receiving unit.
    pub unit: UnitCode,
    /// Device time of the report.
    pub at: UtcTime,
    /// Whether the device clock is synchronised.
    pub clock_synced: bool,
    /// Where the device's time comes from: `synced` (its clock is
    /// synchronised), `dc` (derived from the DC's receipt times) or
    /// `unknown`. Absent from older agents' reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
    /// Agent version.
    pub version: String,
    /// Seconds since the box booted.
    pub uptime_s: u64,
    /// Seconds since the agent started.
    pub agent_uptime_s: u64,
    /// CPU use over the last interval, percent.
    pub cpu_percent: f32,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f32; 3],
    /// Memory in use, bytes.
    pub mem_used_bytes: u64,
    /// Memory in all, bytes.
    pub mem_total_bytes: u64,
    /// Free space of the state directory's file system, bytes.
    pub disk_free_bytes: u64,
    /// Size of that file system, bytes.
    pub disk_total_bytes: u64,
    /// The hottest temperature sensor, when the board has one.
    pub temperature_c: Option<f32>,
    /// Records not yet receipted.
    pub unsynced: u64,
    /// Age of the oldest of them, seconds.
    pub oldest_unsynced_s: Option<u64>,
    /// When the last valid receipt arrived, device time.
    pub last_receipt_at: Option<UtcTime>,
    /// Every seq up to this one is receipted.
    pub receipted_through: u64,
    /// The last seq signed.
    pub head_seq: u64,
    /// The cached catalogue's version.
    pub catalogue_version: Option<u64>,
    /// The last status-updates message gone through.
    pub status_seq: u64,
    /// The highest status update id gone through.
    pub updates_through: u64,
    /// Status updates not applied because the counter's status differed.
    pub update_conflicts: u64,
    /// The last settings message applied.
    pub settings_seq: u64,
    /// Downstream messages refused since the agent started.
    pub refused_down: u64,
}

/// Why a health report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// Longer than [`MAX_HEALTH_BYTES`].
    #[error("health report of {0} bytes; at most {MAX_HEALTH_BYTES}")]
    TooLarge(usize),
    /// Not strict JSON of the report's shape.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A format version this receiver does not read.
    #[error("health report version {0}; this receiver reads {HEALTH_VERSION}")]
    Version(u32),
    /// `device` differs from the topic's device.
    #[error("health report names device {named}, sent on {topic}'s topic")]
    DeviceMismatch {
        /// The device in the payload.
        named: DeviceId,
        /// The device in the topic.
        topic: DeviceId,
    },
    /// A number out of its range.
    #[error("health report member {0} is out of range")]
    Range(&'static str),
}

impl HealthError {
    /// A stable reason code, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            HealthError::TooLarge(_) => "too_large",
            HealthError::Json(_) => "bad_json",
            HealthError::Version(_) => "bad_version",
            HealthError::DeviceMismatch { .. } => "device_mismatch",
            HealthError::Range(_) => "out_of_range",
        }
    }
}

impl Health {
    /// The report's bytes as published.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a report received on `topic_device`'s health topic.
    pub fn parse(bytes: &[u8], topic_device: &DeviceId) -> Result<Health, HealthError> {
        if bytes.len() > MAX_HEALTH_BYTES {
            return Err(HealthError::TooLarge(bytes.len()));
        }
        check_strict(bytes)?;
        let h: Health = parse_typed(bytes)?;
        if h.v != HEALTH_VERSION {
            return Err(HealthError::Version(h.v));
        }
        if h.device != *topic_device {
            return Err(HealthError::DeviceMismatch {
                named: h.device,
                topic: topic_device.clone(),
            });
        }
        let finite = |x: f32| x.is_finite() && x >= 0.0;
        if !(finite(h.cpu_percent) && h.cpu_percent <= 100.5) {
            return Err(HealthError::Range("cpu_percent"));
        }
        if !h.load.iter().all(|l| finite(*l)) {
            return Err(HealthError::Range("load"));
        }
        if h.temperature_c.is_some_and(|t| !t.is_finite()) {
            return Err(HealthError::Range("temperature_c"));
        }
        if h.receipted_through > h.head_seq {
            return Err(HealthError::Range("receipted_through"));
        }
        Ok(h)
    }
}

/// A counter's presence, as its retained `status` message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Connected.
    Online,
    /// Gone: shut down cleanly, or its connection dropped (the last will).
    Offline,
}

impl Presence {
    /// The payload.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Presence::Online => b"online",
            Presence::Offline => b"offline",
        }
    }

    /// Reads a payload; `None` for anything but the two words.
    pub fn parse(bytes: &[u8]) -> Option<Presence> {
        match bytes {
            b"online" => Some(Presence::Online),
            b"offline" => Some(Presence::Offline),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> DeviceId {
        "H49.12.3-q01".parse().expect("valid")
    }

    fn sample() -> Health {
        Health {
            v: 1,
            device: dev(),
            unit: "H49.12.3".parse().expect("valid"),
            at: UtcTime::parse("2026-11-27T03:00:00.000Z").expect("valid"),
            clock_synced: true,
            clock: Some("synced".into()),
            version: "0.1.0".into(),
            uptime_s: 3600,
            agent_uptime_s: 60,
            cpu_percent: 12.5,
            load: [0.5, 0.4, 0.3],
            mem_used_bytes: 200 << 20,
            mem_total_bytes: 1 << 30,
            disk_free_bytes: 10 << 30,
            disk_total_bytes: 16 << 30,
            temperature_c: Some(51.0),
            unsynced: 3,
            oldest_unsynced_s: Some(40),
            last_receipt_at: None,
            receipted_through: 7,
            head_seq: 10,
            catalogue_version: Some(3),
            status_seq: 2,
            updates_through: 14,
            update_conflicts: 0,
            settings_seq: 0,
            refused_down: 0,
        }
    }

    #[test]
    fn a_report_round_trips_and_stays_small() {
        let h = sample();
        let bytes = h.to_bytes();
        assert!(bytes.len() < 900, "{} bytes", bytes.len());
        assert_eq!(Health::parse(&bytes, &dev()), Ok(h));
    }

    #[test]
    fn unknown_members_are_ignored_missing_ones_refused() {
        let mut v: serde_json::Value = serde_json::to_value(sample()).expect("json");
        v["fan_rpm"] = 1200.into();
        let bytes = serde_json::to_vec(&v).expect("json");
        assert!(Health::parse(&bytes, &dev()).is_ok());
        v.as_object_mut().expect("object").remove("unsynced");
        let bytes = serde_json::to_vec(&v).expect("json");
        assert_eq!(
            Health::parse(&bytes, &dev()).map_err(|e| e.reason()),
            Err("bad_json")
        );
    }

    #[test]
    fn foreign_duplicated_oversized_and_absurd_reports_are_refused() {
        let other: DeviceId = "H49.12.3-q02".parse().expect("valid");
        let reason =
            |b: &[u8], d: &DeviceId| Health::parse(b, d).map(|_| ()).map_err(|e| e.reason());
        assert_eq!(reason(&sample().to_bytes(), &other), Err("device_mismatch"));
        let text = String::from_utf8(sample().to_bytes()).expect("utf-8");
        let dup = text.replacen("{", "{\"unsynced\":0,", 1);
        assert_eq!(reason(dup.as_bytes(), &dev()), Err("bad_json"));
        assert_eq!(
            reason(&[b' '; MAX_HEALTH_BYTES + 1], &dev()),
            Err("too_large")
        );
        let mut h = sample();
        h.v = 2;
        assert_eq!(reason(&h.to_bytes(), &dev()), Err("bad_version"));
        let mut h = sample();
        h.cpu_percent = 250.0;
        assert_eq!(reason(&h.to_bytes(), &dev()), Err("out_of_range"));
        let mut h = sample();
        h.receipted_through = 11;
        assert_eq!(reason(&h.to_bytes(), &dev()), Err("out_of_range"));
    }

    #[test]
    fn presence_is_two_words() {
        for p in [Presence::Online, Presence::Offline] {
            assert_eq!(Presence::parse(p.as_bytes()), Some(p));
        }
        assert_eq!(Presence::parse(b"ONLINE"), None);
        assert_eq!(Presence::parse(b""), None);
    }
}
