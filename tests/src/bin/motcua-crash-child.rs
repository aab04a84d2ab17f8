//! The child of the crash test: submits dossiers to a store as fast as it
//! can from several threads and prints `ACK <seq> <code>` for each one the
//! store acknowledged, flushing every line. The parent kills it with
//! SIGKILL at a random moment and checks that every acknowledged record
//! survived.
//!
//! Usage: motcua-crash-child STATE_DIR DAY_OFFSET THREADS
//! (DAY_OFFSET moves the clock forward whole days, so each cycle gets a
//! fresh block of dossier codes.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use motcua_counter::clock::ManualClock;
use motcua_counter::domain::code::Counter;
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{DB_FILE, Refusal, Writer, WriterConfig};
use time::macros::datetime;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, day, threads] = &args[..] else {
        eprintln!("usage: motcua-crash-child STATE_DIR DAY_OFFSET THREADS");
        std::process::exit(2);
    };
    let day: i64 = day.parse().expect("DAY_OFFSET is a number");
    let threads: u32 = threads.parse().expect("THREADS is a number");
    let db = std::path::Path::new(dir).join(DB_FILE);
    let clock = Arc::new(ManualClock::new(
        datetime!(2026-11-26 02:30 UTC) + time::Duration::days(day),
        true,
    ));
    let writer = Writer::start(WriterConfig {
        db,
        device: "crash-test-device".parse().expect("valid"),
        unit: "H49.12.3".parse().expect("valid"),
        counter: Counter::new(1).expect("valid"),
        min_free: 0,
        key: SigningKey::from_bytes(&[0x42; 32]),
        clock,
        default_collect_at: "Bộ phận Một cửa".into(),
        office: motcua_counter::domain::calendar::OfficeDay::default(),
        max_batch: DEFAULT_MAX_BATCH,
    })
    .expect("writer starts");
    motcua_e2e::import_sample_catalogue(&writer.handle());
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let w = writer.handle();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let input = serde_json::from_value(serde_json::json!({
                        "procedure": "2.000908",
                        "applicant": {
                            "name": "Trần Văn An",
                            "id_number": "048085000123",
                            "address": format!("Tổ {t}, số {i}")
                        }
                    }))
                    .expect("valid input");
                    match w.create(input, "crash.test".parse().expect("valid")) {
                        Ok(Ok(c)) => {
                            let mut o = out.lock().expect("stdout lock");
                            writeln!(o, "ACK {} {}", c.seq, c.dossier.code).expect("stdout");
                            o.flush().expect("flush");
                        }
                        Ok(Err(Refusal::CodesExhausted { .. })) => return,
                        Ok(Err(r)) => panic!("submission refused: {r}"),
                        Err(e) => panic!("submission failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
