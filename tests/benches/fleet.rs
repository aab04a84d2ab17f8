//! The fleet benchmark: how long until a whole fleet's backlog is
//! receipted after an outage, with nothing lost (`motcua_e2e::fleet_sim`).
//!
//! Run: `cargo bench -p motcua-e2e --bench fleet`
//! (`MOTCUA_SIM_COUNTERS`, default 1000; `MOTCUA_SIM_RECORDS`, records
//! per counter, default 100; `MOTCUA_SIM_RECEIVERS`, default 1).
//!
//! Every counter is the agent's real store and sync loop in this process,
//! each with its own SQLite file and MQTT connection; the broker is a real
//! Mosquitto and the receivers real `motcua-dc run` processes (built with
//! the `bench` profile), on loopback without TLS.

use std::time::Duration;

use motcua_e2e::fleet_sim::{Fleet, run};
use motcua_e2e::use_profile;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    use_profile("bench");
    let f = Fleet {
        counters: env("MOTCUA_SIM_COUNTERS", 1000),
        records: env("MOTCUA_SIM_RECORDS", 100) as u64,
        receivers: env("MOTCUA_SIM_RECEIVERS", 1),
    };
    println!(
        "fleet benchmark: {} counters x {} records, {} receiver(s), SQLite at the DC ({})",
        f.counters,
        f.records,
        f.receivers,
        time::OffsetDateTime::now_utc().date()
    );
    let bar = indicatif::ProgressBar::new(f.counters as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} {bar:40} {pos}/{len} counters [{elapsed}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let r = run(f, |stage, n, _| {
        bar.set_message(stage.to_owned());
        bar.set_position(n as u64);
    });
    bar.finish_and_clear();
    let total = f.counters as u64 * f.records;
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "setup (enroll, backlogs made durable, broker and receivers up): {:.1} s",
        secs(r.prepare)
    );
    println!(
        "drain: {} records from {} counters receipted in {:.1} s = {:.0} records/s",
        total,
        f.counters,
        secs(r.drain),
        total as f64 / secs(r.drain)
    );
    println!(
        "at the DC: {} records stored (expected {total}), {} of {} chains exactly complete, {} alerts",
        r.stored, r.complete, f.counters, r.alerts
    );
    println!(
        "peak resident memory of the counters' process: {:.0} MiB",
        r.peak_rss as f64 / (1 << 20) as f64
    );
    assert_eq!(r.stored, total, "records lost or doubled");
    assert_eq!(r.complete, f.counters);
}
