//! The store's benchmark: how long a clerk waits for "received", and how
//! many durable, signed records per second the store takes.
//!
//! Run: `cargo bench -p motcua-counter --bench store`
//! (`MOTCUA_BENCH_DIR` picks the directory, default `target/bench-store`,
//! so the numbers are for the disk the repository is on; `MOTCUA_BENCH_N`
//! scales the sample counts).
//!
//! It prints, measured in one run on one disk:
//! - the raw latency of a small write followed by `fsync` (and by
//!   `fdatasync`, what SQLite uses for the WAL), the floor for any durable
//!   acknowledgement;
//! - the latency of one durable submission (validate, allocate a code,
//!   sign, insert, commit with `synchronous=FULL`), p50 and p99;
//! - throughput with 1, 8 and 32 concurrent submitters (group commit).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use motcua_counter::clock::{Clock, Reading};
use motcua_counter::domain::code::Counter;
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::store::reference::{self, Procedure, ReferenceData};
use motcua_counter::store::writer::{DEFAULT_MAX_BATCH, WriterHandle};
use motcua_counter::store::{DB_FILE, Writer, WriterConfig};
use time::OffsetDateTime;
use time::macros::datetime;

/// A clock two minutes later at every reading, so a counter never runs out
/// of its 999 codes a day however many records the benchmark makes.
struct StepClock(AtomicI64);

impl Clock for StepClock {
    fn now(&self) -> Reading {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Reading::system(
            datetime!(2026-11-26 02:30 UTC) + time::Duration::minutes(2 * n),
            true,
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn raw_sync(dir: &Path, n: usize, data_only: bool) -> Vec<Duration> {
    let path = dir.join(if data_only {
        "fdatasync.bin"
    } else {
        "fsync.bin"
    });
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("open");
    let block = [0x5au8; 512];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        // Appending, as a log does: each write extends the file.
        f.write_all_at(&block, (i * block.len()) as u64)
            .expect("write");
        if data_only {
            f.sync_data()
        } else {
            f.sync_all()
        }
        .expect("sync");
        out.push(t.elapsed());
    }
    let _ = std::fs::remove_file(path);
    out.sort();
    out
}

fn input(n: usize) -> DossierInput {
    serde_json::from_value(serde_json::json!({
        "procedure": "2.000908",
        "applicant": {
            "name": "Nguyễn Thị Thu Hà",
            "id_number": "049301000123",
            "phone": "0905123456",
            "address": format!("Số {n}, thôn Phú Thạnh, xã Tam Thăng")
        },
        "documents": [{"name": "Bản chính giấy tờ cần chứng thực", "copies": 1}]
    }))
    .expect("valid input")
}

fn fresh_store(dir: &Path, name: &str) -> (Writer, PathBuf) {
    let sub = dir.join(name);
    let _ = std::fs::remove_dir_all(&sub);
    std::fs::create_dir_all(&sub).expect("mkdir");
    let db = sub.join(DB_FILE);
    let data = ReferenceData {
        version: 1,
        procedures: vec![Procedure {
            code: "2.000908".into(),
            name: "Chứng thực bản sao từ bản chính".into(),
            working_days: 1,
            fee: Some(2000),
            documents: vec![],
        }],
        holidays: vec![],
        workdays: vec![],
    };
    let writer = Writer::start(WriterConfig {
        db,
        device: "bench-device".parse().expect("valid"),
        unit: "H49.12.3".parse().expect("valid"),
        counter: Counter::new(1).expect("valid"),
        min_free: 0,
        key: SigningKey::from_bytes(&[7; 32]),
        clock: Arc::new(StepClock(AtomicI64::new(0))),
        default_collect_at: "Bộ phận Một cửa".into(),
        office: motcua_counter::domain::calendar::OfficeDay::default(),
        max_batch: DEFAULT_MAX_BATCH,
    })
    .expect("writer");
    reference::import(
        &writer.handle(),
        data,
        &motcua_protocol::UtcTime::new(datetime!(2026-11-01 00:00 UTC)),
    )
    .expect("reference");
    (writer, sub)
}

fn throughput(dir: &Path, submitters: usize, per: usize) -> f64 {
    let (writer, sub) = fresh_store(dir, &format!("tp-{submitters}"));
    let w: WriterHandle = writer.handle();
    // Warm-up: the schema pages and statement caches.
    for i in 0..20 {
        w.create(input(i), "bench".parse().expect("valid"))
            .expect("no failure")
            .expect("stored");
    }
    let start = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|t| {
            let w = writer.handle();
            std::thread::spawn(move || {
                for i in 0..per {
                    w.create(input(t * per + i), "bench".parse().expect("valid"))
                        .expect("no failure")
                        .expect("stored");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("submitter");
    }
    let rate = (submitters * per) as f64 / start.elapsed().as_secs_f64();
    writer.shutdown();
    let _ = std::fs::remove_dir_all(sub);
    rate
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is ignored.
    let scale: usize = std::env::var("MOTCUA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = std::env::var_os("MOTCUA_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-store"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let dir = dir.canonicalize().expect("bench dir");
    println!(
        "store benchmark in {} ({})",
        dir.display(),
        OffsetDateTime::now_utc().date()
    );

    // Raw fsync and durable submissions are sampled alternately, so the
    // machine's noise falls on both alike and their ratio means something.
    let n = 300 * scale;
    let (writer, sub) = fresh_store(&dir, "latency");
    let w = writer.handle();
    for i in 0..20 {
        w.create(input(i), "bench".parse().expect("valid"))
            .expect("no failure")
            .expect("stored");
    }
    let raw_path = dir.join("fsync.bin");
    let raw = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&raw_path)
        .expect("open");
    let block = [0x5au8; 512];
    let (mut fsync, mut lat) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = Instant::now();
        raw.write_all_at(&block, (i * block.len()) as u64)
            .expect("write");
        raw.sync_all().expect("fsync");
        fsync.push(t.elapsed());
        let t = Instant::now();
        w.create(input(i), "bench".parse().expect("valid"))
            .expect("no failure")
            .expect("stored");
        lat.push(t.elapsed());
    }
    drop(raw);
    let _ = std::fs::remove_file(raw_path);
    writer.shutdown();
    let _ = std::fs::remove_dir_all(sub);
    fsync.sort();
    lat.sort();
    let fdatasync = raw_sync(&dir, n, true);
    println!(
        "raw 512-byte append + fsync      p50 {}  p99 {}  ({n} samples, alternating with the submissions below)",
        ms(percentile(&fsync, 0.5)),
        ms(percentile(&fsync, 0.99))
    );
    println!(
        "raw 512-byte append + fdatasync  p50 {}  p99 {}  (separate run, for reference)",
        ms(percentile(&fdatasync, 0.5)),
        ms(percentile(&fdatasync, 0.99))
    );
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    println!(
        "one durable submission           p50 {}  p99 {}  ({n} sequential)",
        ms(p50),
        ms(p99)
    );
    println!(
        "  p99 submission / p99 raw fsync  {:.2}x   p99 submission / p50 raw fsync  {:.2}x   p50 / p50  {:.2}x",
        p99.as_secs_f64() / percentile(&fsync, 0.99).as_secs_f64(),
        p99.as_secs_f64() / percentile(&fsync, 0.5).as_secs_f64(),
        p50.as_secs_f64() / percentile(&fsync, 0.5).as_secs_f64()
    );

    for (submitters, per) in [(1, 600 * scale), (8, 150 * scale), (32, 60 * scale)] {
        let rate = throughput(&dir, submitters, per);
        println!(
            "throughput, {submitters:>2} submitters          {rate:>8.0} durable signed records/s ({} records)",
            submitters * per
        );
    }
}
