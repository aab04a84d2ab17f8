//! A fleet in one process: many counters, each with the agent's real store
//! (its own SQLite file and writer) and real sync loop
//! (`motcua_agent::sync::run`, its own MQTT connection), against one real
//! Mosquitto and real `motcua-dc run` receivers.
//!
//! The scenario is the SD-WAN coming back after an outage: every counter
//! has a backlog, the broker and the receivers are up, and all counters
//! connect at once. The clock runs from the moment the first counter's
//! sync starts until the last counter holds a DC receipt for its last
//! record; then the DC's database is checked record by record: every
//! device's chain holds exactly its backlog, nothing lost, nothing twice.
//!
//! Plain MQTT on loopback: 1 000 TLS handshakes on two cores would measure
//! the handshakes. `cargo bench -p motcua-e2e --bench fleet` runs it at
//! scale; the e2e suite runs a small fleet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use motcua_agent::sync::{SyncConfig, SyncState};
use motcua_common::config::{BrokerConnection, BrokerUrl};
use motcua_counter::clock::{DcClock, ManualClock};
use motcua_counter::domain::code::Counter;
use motcua_counter::state_dir::StateDir;
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{DB_FILE, Writer, WriterConfig};
use motcua_protocol::{DeviceId, Enrollment};
use tokio::sync::watch;

use crate::site::{Site, wait_until};

/// The fleet to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    /// Counters.
    pub counters: usize,
    /// Records each has waiting when the link comes back.
    pub records: u64,
    /// Receivers sharing the subscription (and the SQLite database).
    pub receivers: usize,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Setting up: enrolling, and every counter's backlog made durable.
    pub prepare: Duration,
    /// From the first counter's connection to the last receipt.
    pub drain: Duration,
    /// Records the DC holds.
    pub stored: u64,
    /// Counters whose chain at the DC is exactly their backlog.
    pub complete: usize,
    /// Alerts at the DC (expected: none).
    pub alerts: u64,
    /// This process's peak resident memory, bytes (the counters' side).
    pub peak_rss: u64,
}

fn device(i: usize) -> DeviceId {
    format!("H49.12.3-s{i:04}").parse().expect("valid")
}

fn key(i: usize) -> ed25519_dalek::SigningKey {
    let mut seed = [0x5a_u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Raises this process's open-file limit to its hard limit: every counter
/// holds a socket and SQLite files, and Mosquitto, started from here,
/// inherits the limit.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
}

/// Runs the scenario; `progress` is told how many counters are done, now
/// and then.
pub fn run(f: Fleet, mut progress: impl FnMut(&str, usize, usize)) -> Report {
    raise_file_limit();
    // Builds the binaries first when needed: not part of the setup time.
    let mut site = Site::new(false);
    let started = Instant::now();
    let url = BrokerConnection {
        url: BrokerUrl {
            tls: false,
            host: site.broker.host.clone(),
            port: site.broker.port,
        },
        tls: None,
    };
    let dc_key = {
        let line = site.dc_line.split('#').next().unwrap_or_default().trim();
        let hex = line
            .trim_start_matches("public_key = ")
            .trim_matches('"')
            .trim_start_matches("ed25519:");
        let bytes: [u8; 32] = hex::decode(hex).expect("hex").try_into().expect("32 bytes");
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("a public key")
    };

    // Enrolled at the DC, in one connection.
    {
        let mut dc = site.store();
        let now = motcua_dc::receiver::now();
        for i in 0..f.counters {
            let e = Enrollment {
                device: device(i),
                key: key(i).verifying_key(),
            };
            dc.enroll(&e, &now).expect("enrolls").expect("a new device");
        }
    }

    // Each counter's backlog, made while the link was down (an hour ago),
    // by a few threads at once; the writers stay up for sync.
    let root = site.dir.path().join("fleet");
    let made = std::sync::atomic::AtomicUsize::new(0);
    let writers: Vec<(usize, Writer)> = std::thread::scope(|s| {
        let threads = 4.min(f.counters.max(1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let root = &root;
                let made = &made;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (t..f.counters).step_by(threads) {
                        let dir = root.join(device(i).as_str());
                        std::fs::create_dir_all(&dir).expect("mkdir");
                        let db = dir.join(DB_FILE);
                        let at = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
                        let w = Writer::start(WriterConfig {
                            db,
                            device: device(i),
                            unit: "H49.12.3".parse().expect("valid"),
                            counter: Counter::new(1).expect("valid"),
                            min_free: 0,
                            key: key(i),
                            clock: Arc::new(ManualClock::new(at, true)),
                            default_collect_at: "Bộ phận Một cửa".into(),
                            office: motcua_counter::domain::calendar::OfficeDay::default(),
                            max_batch: DEFAULT_MAX_BATCH,
                        })
                        .expect("writer starts");
                        let h = w.handle();
                        crate::import_sample_catalogue(&h);
                        for n in 0..f.records {
                            let input = serde_json::from_value(serde_json::json!({
                                "procedure": "2.000908",
                                "applicant": {
                                    "name": "Trần Văn An",
                                    "id_number": "048085000123",
                                    "address": format!("Số {n}, tổ 3")
                                }
                            }))
                            .expect("valid input");
                            h.create(input, "canbo01".parse().expect("valid"))
                                .expect("no failure")
                                .expect("stored");
                        }
                        mine.push((i, w));
                        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::new();
        while handles.iter().any(|h| !h.is_finished()) {
            progress(
                "backlogs",
                made.load(std::sync::atomic::Ordering::Relaxed),
                f.counters,
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for h in handles {
            all.extend(h.join().expect("a backlog thread"));
        }
        all
    });

    site.broker.start();
    let receivers: Vec<_> = (0..f.receivers.max(1)).map(|_| site.receiver()).collect();
    for r in &receivers {
        wait_until("a receiver subscribed", Duration::from_secs(60), || {
            r.log().contains("subscribed; receiving")
        });
    }
    let prepare = started.elapsed();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (stop_tx, stop_rx) = watch::channel(false);
    let t0 = Instant::now();
    let states: Vec<watch::Receiver<SyncState>> = writers
        .iter()
        .map(|(i, w)| {
            let (tx, rx) = watch::channel(SyncState::default());
            let cfg = SyncConfig {
                device: device(*i),
                unit: "H49.12.3".parse().expect("valid"),
                state_dir: StateDir::new(root.join(device(*i).as_str())),
                broker: url.clone(),
                dc_key,
                keep_alive: Duration::from_secs(30),
                reconnect_max: Duration::from_secs(5),
                window: 2048,
                batch: 64,
                resend_after: Duration::from_secs(30),
                watchdog: false,
                clock: DcClock::default(),
                health_interval: Duration::from_secs(60),
            };
            let writer = w.handle();
            let mut stop = stop_rx.clone();
            rt.spawn(async move {
                let r = motcua_agent::sync::run(cfg, writer, tx, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = r {
                    panic!("a counter's sync failed: {e:#}");
                }
            });
            rx
        })
        .collect();
    let target = f.records;
    let done = || {
        states
            .iter()
            .filter(|s| s.borrow().through >= target)
            .count()
    };
    loop {
        let n = done();
        progress("receipted", n, f.counters);
        if n == f.counters {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1800),
            "the fleet did not drain in 30 minutes: {n} of {} counters",
            f.counters
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let drain = t0.elapsed();
    let _ = stop_tx.send(true);
    rt.shutdown_timeout(Duration::from_secs(10));
    for r in receivers {
        let log = r.stop();
        assert!(!log.contains("panicked"), "{log}");
    }
    let peak = peak_rss();
    for (_, w) in writers {
        w.shutdown();
    }

    let mut dc = site.store();
    let totals = dc.totals().expect("totals");
    let complete = dc
        .devices()
        .expect("devices")
        .iter()
        .filter(|d| {
            d.head.seq == target
                && dc
                    .records(&d.device, 0, (target + 1) as u32)
                    .expect("records")
                    .iter()
                    .map(|r| r.seq)
                    .eq(1..=target)
        })
        .count();
    Report {
        prepare,
        drain,
        stored: totals.records,
        complete,
        alerts: totals.alerts,
        peak_rss: peak,
    }
}
