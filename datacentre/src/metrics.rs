//! The receiver's Prometheus metrics, served at `/metrics` in the text
//! exposition format (0.0.4) by `motcua-dc run`.
//!
//! Counters and the store-latency histogram are kept by the processor as
//! it works; the per-device gauges are read from the database at each
//! scrape (the fleet view), so every receiver sharing one database reports
//! the same fleet. Labels are device ids and reason codes, never anything
//! from a dossier.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::fleet;

/// Everything `/metrics` shows.
pub struct Metrics {
    registry: Registry,
    /// MQTT messages handled (submissions, health, status).
    pub messages: IntCounter,
    /// Envelopes stored (including released from hold).
    pub stored: IntCounter,
    /// Envelopes already stored.
    pub duplicates: IntCounter,
    /// Envelopes held beyond a gap.
    pub held: IntCounter,
    /// Receipts signed.
    pub receipts: IntCounter,
    /// Envelopes refused, by reason (verification failures, conflicts,
    /// unknown or revoked devices).
    pub refused: IntCounterVec,
    /// Health reports stored.
    pub health: IntCounter,
    /// Health and status messages refused, by reason.
    pub telemetry_refused: IntCounterVec,
    /// Time to apply one message's envelopes in the store (one transaction).
    pub store_seconds: Histogram,
    /// Counters the broker's access list lets in, at the last time it was
    /// brought in step.
    access_counters: IntGauge,
    /// Attempts to keep the broker's access list that failed.
    access_failures: IntCounter,
    /// Counters needing attention, by reason (the fleet view's).
    attention: IntGaugeVec,
    online: IntGaugeVec,
    backlog: IntGaugeVec,
    lag: IntGaugeVec,
    head: IntGaugeVec,
    seen: IntGaugeVec,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric name");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("a valid metric name");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), &["device"]).expect("a valid metric name");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set, all zero.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let store_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "motcua_dc_store_seconds",
                "Time to apply one message's envelopes in the store (one transaction).",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14).expect("valid buckets")),
        )
        .expect("a valid metric name");
        r.register(Box::new(store_seconds.clone()))
            .expect("registered once");
        Metrics {
            messages: counter(&r, "motcua_dc_messages_total", "MQTT messages handled."),
            stored: counter(
                &r,
                "motcua_dc_records_stored_total",
                "Envelopes stored, released from hold included.",
            ),
            duplicates: counter(
                &r,
                "motcua_dc_duplicates_total",
                "Envelopes received again after they were stored.",
            ),
            held: counter(&r, "motcua_dc_held_total", "Envelopes held beyond a gap."),
            receipts: counter(&r, "motcua_dc_receipts_total", "Receipts signed."),
            refused: counter_vec(
                &r,
                "motcua_dc_refused_total",
                "Envelopes refused and kept as alerts, by reason.",
                "reason",
            ),
            health: counter(
                &r,
                "motcua_dc_health_reports_total",
                "Health reports stored.",
            ),
            telemetry_refused: counter_vec(
                &r,
                "motcua_dc_telemetry_refused_total",
                "Health and status messages refused, by reason.",
                "reason",
            ),
            store_seconds,
            access_counters: {
                let g = IntGauge::new(
                    "motcua_dc_broker_access_counters",
                    "Counters the broker's access list lets in, as last brought in step with the registry.",
                )
                .expect("a valid metric name");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            access_failures: counter(
                &r,
                "motcua_dc_broker_access_failures_total",
                "Attempts to bring the broker's access list in step with the registry that failed.",
            ),
            attention: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "motcua_dc_devices_attention",
                        "Counters needing attention, by reason (as motcua-dc fleet shows them).",
                    ),
                    &["reason"],
                )
                .expect("a valid metric name");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            online: gauge_vec(
                &r,
                "motcua_dc_device_online",
                "1 when the counter's retained status says online, 0 when offline or never said.",
            ),
            backlog: gauge_vec(
                &r,
                "motcua_dc_device_backlog",
                "Records the counter has not had receipted, per its latest health report.",
            ),
            lag: gauge_vec(
                &r,
                "motcua_dc_device_lag_seconds",
                "Age of the counter's oldest unreceipted record, per its latest health report (0: none).",
            ),
            head: gauge_vec(
                &r,
                "motcua_dc_device_head_seq",
                "The last seq of the counter's chain stored here.",
            ),
            seen: gauge_vec(
                &r,
                "motcua_dc_device_last_seen_timestamp_seconds",
                "When the DC last heard from the counter (Unix time).",
            ),
            registry: r,
        }
    }

    /// The text exposition of everything, with the per-device gauges set
    /// from `fleet` (devices no longer in it are dropped).
    pub fn render(&self, fleet: &[fleet::Counter]) -> String {
        for g in [
            &self.online,
            &self.backlog,
            &self.lag,
            &self.head,
            &self.seen,
        ] {
            g.reset();
        }
        self.attention.reset();
        for c in fleet {
            for reason in &c.attention {
                self.attention.with_label_values(&[reason]).inc();
            }
            let d = [c.device.as_str()];
            self.online
                .with_label_values(&d)
                .set(i64::from(c.state == "online"));
            self.head.with_label_values(&d).set(c.head_seq as i64);
            if let Some(b) = c.backlog {
                self.backlog.with_label_values(&d).set(b as i64);
                self.lag
                    .with_label_values(&d)
                    .set(c.lag_s.unwrap_or(0) as i64);
            }
            if let Some(t) = c.last_seen {
                self.seen
                    .with_label_values(&d)
                    .set(t.get().unix_timestamp());
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Metrics {
    /// Records one attempt to keep the broker's access list: `counters`
    /// let in when it succeeded.
    pub fn access_kept(&self, counters: u64, ok: bool) {
        if ok {
            self.access_counters.set(counters as i64);
        } else {
            self.access_failures.inc();
        }
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
