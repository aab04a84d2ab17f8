//! The kiosk benchmark: how long a clerk waits for the reception page and
//! for a submission through the JSON API, beside what the store alone
//! takes for the same durable write, in one run on one disk.
//!
//! Run: `cargo bench -p motcua-e2e --bench kiosk`
//! (`MOTCUA_BENCH_N` sets the number of samples of each kind, default 300,
//! at most 900: a counter hands out 999 dossier codes a day).
//!
//! The real `motcua run` (built with the `bench` profile) serves its kiosk
//! on loopback, offline (no broker: the counter's usual worst case is
//! also its quickest, since nothing else competes for the store). One
//! logged-in client then takes, in turn, one sample of each:
//! 1. `GET /tiep-nhan?thu_tuc=…`: the reception form for a procedure, with
//!    its checklist, fee and appointment date from the cached catalogue,
//!    and the sync indicator;
//! 2. `POST /api/v1/dossiers`: validate, allocate a code, sign, insert and
//!    commit (`synchronous=FULL`), answered 201 with the stored dossier;
//! 3. the same submission straight into a [`Writer`] in this process, on a
//!    second store in the same directory tree: the floor under (2).
//!
//! Taking the three in turn puts the machine's noise on all of them alike,
//! so the difference between (2) and (3), the cost of HTTP, the session
//! and CSRF checks and the JSON on both sides, means something.

use std::sync::Arc;
use std::time::{Duration, Instant};

use motcua_counter::clock::ManualClock;
use motcua_counter::domain::code::Counter as CodeCounter;
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::store::reference::{self, ReferenceData};
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{DB_FILE, Writer, WriterConfig};
use motcua_e2e::kiosk::{Counter, STAFF};
use motcua_e2e::{use_profile, workspace};
use serde_json::json;

const PROCEDURE: &str = "1.000894";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn dossier(i: usize) -> serde_json::Value {
    json!({
        "procedure": PROCEDURE,
        "applicant": {
            "name": "Nguyễn Thị Thu Hà",
            "id_number": "001190012345",
            "phone": "0912345678",
            "address": format!("Số {i}, thôn 1, xã Hòa Bắc")
        },
        "documents": [{ "name": "Giấy chứng sinh" }]
    })
}

/// A store beside the agent's, with the same catalogue, written to by a
/// [`Writer`] in this process.
fn in_process_store(dir: &std::path::Path) -> Writer {
    std::fs::create_dir_all(dir).expect("mkdir");
    let db = dir.join(DB_FILE);
    let text = std::fs::read_to_string(workspace().join("docs/examples/reference.json"))
        .expect("reads the example catalogue");
    let data: ReferenceData = serde_json::from_str(&text).expect("the example catalogue parses");
    let writer = Writer::start(WriterConfig {
        db,
        device: "bench-kiosk".parse().expect("valid"),
        unit: "H49.12.3".parse().expect("valid"),
        counter: CodeCounter::new(2).expect("valid"),
        min_free: 0,
        key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        clock: Arc::new(ManualClock::new(time::OffsetDateTime::now_utc(), true)),
        default_collect_at: "Bộ phận Một cửa".into(),
        office: motcua_counter::domain::calendar::OfficeDay::default(),
        max_batch: DEFAULT_MAX_BATCH,
    })
    .expect("the writer starts");
    let at = motcua_protocol::UtcTime::new(time::macros::datetime!(2026-11-01 00:00 UTC));
    reference::import(&writer.handle(), data, &at).expect("imports");
    writer
}

fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = percentile(&samples, 0.5);
    println!(
        "{name:<44} median {:>10}  p99 {:>10}  max {:>10}  ({} samples)",
        ms(median),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().expect("samples")),
        samples.len()
    );
    median
}

fn main() {
    use_profile("bench");
    let n: usize = std::env::var("MOTCUA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
        .clamp(10, 900);
    let counter = Counter::start(false);
    println!(
        "kiosk benchmark: {n} samples of each, in {} ({})",
        counter.agent.state.display(),
        time::OffsetDateTime::now_utc().date()
    );
    let http = counter.http();
    let csrf = http.login_api();
    let writer = in_process_store(&counter.agent.state.with_file_name("in-process"));
    let w = writer.handle();

    // Warm-up: connections, statement caches, the catalogue's pages.
    for i in 0..10 {
        assert_eq!(
            http.get(&format!("/tiep-nhan?thu_tuc={PROCEDURE}")).status,
            200
        );
        let a = http.post_json("/api/v1/dossiers", &dossier(i), Some(&csrf));
        assert_eq!(a.status, 201, "{}", a.body);
        let input: DossierInput = serde_json::from_value(dossier(i)).expect("valid");
        w.create(input, STAFF.parse().expect("valid"))
            .expect("no failure")
            .expect("stored");
    }

    let (mut page, mut api, mut store) = (Vec::new(), Vec::new(), Vec::new());
    let path = format!("/tiep-nhan?thu_tuc={PROCEDURE}");
    for i in 0..n {
        let t = Instant::now();
        let a = http.get(&path);
        page.push(t.elapsed());
        assert_eq!(a.status, 200);
        assert!(a.body.contains("id=\"tiep-nhan\""), "the reception form");

        let body = dossier(100 + i);
        let t = Instant::now();
        let a = http.post_json("/api/v1/dossiers", &body, Some(&csrf));
        api.push(t.elapsed());
        assert_eq!(a.status, 201, "{}", a.body);

        let input: DossierInput = serde_json::from_value(body).expect("valid");
        let t = Instant::now();
        w.create(input, STAFF.parse().expect("valid"))
            .expect("no failure")
            .expect("stored");
        store.push(t.elapsed());
    }
    writer.shutdown();

    report("GET reception page (/tiep-nhan?thu_tuc=…)", page);
    let api = report("POST /api/v1/dossiers (201, durable)", api);
    let store = report("store alone (Writer::create, in-process)", store);
    println!(
        "API submission / store alone (medians): {:.2}x, HTTP and checks add {}",
        api.as_secs_f64() / store.as_secs_f64(),
        ms(api.saturating_sub(store))
    );
}
