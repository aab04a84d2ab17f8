//! The fleet at a glance: every enrolled counter with its presence, last
//! health report, chain head and alerts, and what about it needs a
//! technician. `motcua-dc fleet` prints it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use motcua_protocol::{DeviceId, Health, UtcTime};
use serde::Serialize;

use crate::store::{Result, Store};

/// When a counter is reported as needing attention.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// An online counter without a health report for this long has gone
    /// quiet (its reports are lost, or its agent hangs).
    pub silent_after: Duration,
    /// A backlog whose oldest record is older than this is lagging.
    pub lag: Duration,
    /// Less free space than this on the state directory's disk.
    pub min_disk_free: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            silent_after: Duration::from_secs(5 * 60),
            lag: Duration::from_secs(15 * 60),
            min_disk_free: 256 << 20,
        }
    }
}

/// One counter, as the fleet view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Counter {
    /// Its device id.
    pub device: String,
    /// Its unit, from its latest health report.
    pub unit: Option<String>,
    /// `online`, `offline`, `unknown` (never said) or `revoked`.
    pub state: &'static str,
    /// When the DC last heard from it (a record, its status, or a report).
    pub last_seen: Option<UtcTime>,
    /// The head of its chain at the DC.
    pub head_seq: u64,
    /// Records it has not had receipted, per its latest report.
    pub backlog: Option<u64>,
    /// Age of its oldest unreceipted record, seconds, per its latest report.
    pub lag_s: Option<u64>,
    /// When its latest health report arrived.
    pub health_at: Option<UtcTime>,
    /// That report.
    pub health: Option<Health>,
    /// Its alerts by reason (chain gaps held, conflicts, bad signatures...).
    pub alerts: BTreeMap<String, u64>,
    /// What needs a technician, most urgent first; empty when all is well.
    pub attention: Vec<&'static str>,
}

/// Every enrolled counter, those needing attention first (the most
/// reasons first), then by unit and device.
pub fn collect(store: &mut dyn Store, now: &UtcTime, t: Thresholds) -> Result<Vec<Counter>> {
    let devices = store.devices()?;
    let mut states: BTreeMap<DeviceId, _> = store
        .states()?
        .into_iter()
        .map(|s| (s.device.clone(), s))
        .collect();
    let mut alerts: BTreeMap<DeviceId, BTreeMap<String, u64>> = BTreeMap::new();
    for a in store.alert_counts()? {
        alerts
            .entry(a.device)
            .or_default()
            .insert(a.reason, a.count);
    }
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let s = states.remove(&d.device);
        let health = s
            .as_ref()
            .and_then(|s| s.health.as_deref())
            .and_then(|b| Health::parse(b, &d.device).ok());
        let health_at = s.as_ref().and_then(|s| s.health_at);
        let online = s.as_ref().and_then(|s| s.online);
        let state = match (d.revoked_at.is_some(), online) {
            (true, _) => "revoked",
            (false, Some(true)) => "online",
            (false, Some(false)) => "offline",
            (false, None) => "unknown",
        };
        let last_seen = [d.last_seen, s.as_ref().and_then(|s| s.status_at), health_at]
            .into_iter()
            .flatten()
            .max();
        let alerts = alerts.remove(&d.device).unwrap_or_default();
        let mut attention = Vec::new();
        let age =
            |at: &Option<UtcTime>| at.map(|a| (now.get() - a.get()).whole_seconds().max(0) as u64);
        match state {
            // Its envelopes are refused from now on; nothing to repair.
            "revoked" => {}
            "offline" => attention.push("offline"),
            // Records arrived but no presence: an agent older than the
            // status topic, or a status lost with the broker's store.
            "unknown" if d.last_seen.is_some() => attention.push("no status received"),
            "unknown" => attention.push("never connected"),
            _ => {
                if age(&health_at).is_none_or(|a| a > t.silent_after.as_secs()) {
                    attention.push("no health report");
                }
            }
        }
        if let Some(h) = &health {
            // An online counter reports records waiting longer than a
            // resend takes, yet nothing of it has been stored here since
            // before the oldest of them was made: its submissions do not
            // reach the receivers (a broker or ACL fault, or another
            // subscriber taking them).
            if state == "online" && not_arriving(h, age(&health_at), age(&d.last_seen), &t) {
                attention.push("submissions not arriving");
            }
            if h.oldest_unsynced_s.is_some_and(|l| l > t.lag.as_secs()) {
                attention.push("sync lagging");
            }
            if h.disk_free_bytes < t.min_disk_free {
                attention.push("disk nearly full");
            }
            // A box without NTP that took its time from this DC's
            // receipts stamps records within a known bound, but still
            // wants its NTP (or its clock battery) seen to.
            match h.clock.as_deref() {
                _ if h.clock_synced => {}
                Some("dc") => attention.push("clock derived from the DC"),
                _ => attention.push("clock not synchronised"),
            }
        }
        if !alerts.is_empty() {
            attention.push("alerts");
        }
        out.push(Counter {
            unit: health.as_ref().map(|h| h.unit.to_string()),
            state,
            last_seen,
            head_seq: d.head.seq,
            backlog: health.as_ref().map(|h| h.unsynced),
            lag_s: health.as_ref().and_then(|h| h.oldest_unsynced_s),
            health_at,
            health,
            alerts,
            attention,
            device: d.device.to_string(),
        });
    }
    out.sort_by(|a, b| {
        b.attention
            .len()
            .cmp(&a.attention.len())
            .then_with(|| a.unit.cmp(&b.unit))
            .then_with(|| a.device.cmp(&b.device))
    });
    Ok(out)
}

/// "12s", "5m", "3h", "2d": how long ago `at` was.
pub fn ago(at: Option<&UtcTime>, now: &UtcTime) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let s = (now.get() - at.get()).whole_seconds().max(0) as u64;
    duration(s)
}

/// A duration in its largest whole unit: "40s", "12m", "3h", "2d".
pub fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The fleet as a table for a terminal.
pub fn table(rows: &[Counter], now: &UtcTime) -> String {
    let mut cells: Vec<[String; 9]> = vec![
        [
            "UNIT",
            "DEVICE",
            "STATE",
            "SEEN",
            "HEAD",
            "BACKLOG",
            "LAG",
            "ALERTS",
            "ATTENTION",
        ]
        .map(String::from),
    ];
    for r in rows {
        let alerts: u64 = r.alerts.values().sum();
        cells.push([
            r.unit.clone().unwrap_or_else(|| "-".into()),
            r.device.clone(),
            r.state.into(),
            ago(r.last_seen.as_ref(), now),
            r.head_seq.to_string(),
            r.backlog.map_or("-".into(), |b| b.to_string()),
            r.lag_s.map_or("-".into(), duration),
            if alerts == 0 {
                "0".into()
            } else {
                let by: Vec<String> = r.alerts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{alerts} ({})", by.join(","))
            },
            if r.attention.is_empty() {
                "ok".into()
            } else {
                r.attention.join(", ")
            },
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An online counter's report (`report_age` seconds old) shows records
/// waiting longer than `silent_after`, and the DC has stored nothing of it
/// (`stored_age`: seconds since its last stored record) since before the
/// oldest of them was made.
fn not_arriving(
    h: &Health,
    report_age: Option<u64>,
    stored_age: Option<u64>,
    t: &Thresholds,
) -> bool {
    let quiet = t.silent_after.as_secs();
    report_age.is_some_and(|a| a <= quiet)
        && h.unsynced > 0
        && h.oldest_unsynced_s
            .is_some_and(|oldest| oldest > quiet && stored_age.is_none_or(|s| s >= oldest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_not_arriving_needs_a_fresh_report_an_old_backlog_and_nothing_stored_since() {
        let t = Thresholds::default();
        let report = |unsynced: u64, oldest: Option<u64>| {
            let mut h = Health {
                v: 1,
                device: "H49.12.3-q01".parse().expect("valid"),
                unit: "H49.12.3".parse().expect("valid"),
                at: UtcTime::parse("2026-12-04T03:00:00.000Z").expect("valid"),
                clock_synced: true,
                clock: None,
                version: "0.1.0".into(),
                uptime_s: 3600,
                agent_uptime_s: 60,
                cpu_percent: 1.0,
                load: [0.1, 0.1, 0.1],
                mem_used_bytes: 1 << 20,
                mem_total_bytes: 1 << 30,
                disk_free_bytes: 10 << 30,
                disk_total_bytes: 16 << 30,
                temperature_c: None,
                unsynced: 0,
                oldest_unsynced_s: None,
                last_receipt_at: None,
                receipted_through: 0,
                head_seq: 10,
                catalogue_version: None,
                status_seq: 0,
                updates_through: 0,
                update_conflicts: 0,
                settings_seq: 0,
                refused_down: 0,
            };
            h.unsynced = unsynced;
            h.oldest_unsynced_s = oldest;
            h
        };
        // Ten minutes of backlog, a report a minute old, nothing stored
        // for an hour: not arriving.
        assert!(not_arriving(
            &report(3, Some(600)),
            Some(60),
            Some(3600),
            &t
        ));
        // Never stored anything.
        assert!(not_arriving(&report(3, Some(600)), Some(60), None, &t));
        // Stored a record since the oldest was made: arriving, if slowly.
        assert!(!not_arriving(&report(3, Some(600)), Some(60), Some(30), &t));
        // A backlog younger than a resend cycle, or none.
        assert!(!not_arriving(&report(3, Some(200)), Some(60), None, &t));
        assert!(!not_arriving(&report(0, None), Some(60), None, &t));
        // A stale report says nothing about now.
        assert!(!not_arriving(&report(3, Some(600)), Some(900), None, &t));
        assert!(!not_arriving(&report(3, Some(600)), None, None, &t));
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m");
        assert_eq!(duration(7300), "2h");
        assert_eq!(duration(3 * 86_400 + 5), "3d");
    }
}
