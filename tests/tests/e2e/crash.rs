//! The crash test: a child process submits dossiers as fast as it can and
//! is killed with SIGKILL at a random moment, again and again on the same
//! store. After every kill: each acknowledged record is present, the chain
//! verifies end to end with no gap (every hash and link from seq 1; the
//! signatures of records new since the last cycle; and at the end every
//! signature again), and `PRAGMA integrity_check` is ok.
//!
//! 200 cycles by default; set MOTCUA_CRASH_CYCLES for more.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use motcua_counter::store::{DB_FILE, Reader};
use rand::Rng;

#[test]
fn acknowledged_records_survive_sigkill_at_random_moments() {
    let cycles: u32 = std::env::var("MOTCUA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::rng();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut killed_mid_write = 0;
    let mut signatures_from = 1;
    for cycle in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_motcua-crash-child"))
            .arg(dir.path())
            .arg(cycle.to_string())
            .arg("3")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("piped");
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.is_empty() {
                    let _ = first_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        // Kill while the child is writing: a random moment after its first
        // acknowledgement (whatever the machine's load, so every cycle
        // tests something).
        first_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child acknowledges a record within 30 s");
        std::thread::sleep(Duration::from_micros(rng.random_range(0..40_000)));
        let still_running = child.try_wait().expect("wait").is_none();
        child.kill().ok(); // SIGKILL
        let status = child.wait().expect("reaped");
        if still_running {
            killed_mid_write += 1;
        } else {
            assert!(
                status.success(),
                "cycle {cycle}: the child failed on its own: {status:?}"
            );
        }
        for line in reader.join().expect("reader") {
            let mut parts = line.split(' ');
            assert_eq!(parts.next(), Some("ACK"), "cycle {cycle}: {line}");
            let seq: u64 = parts.next().and_then(|s| s.parse().ok()).expect("seq");
            let code = parts.next().expect("code").to_owned();
            assert!(
                acked.insert(seq, code).is_none(),
                "cycle {cycle}: seq {seq} acknowledged twice"
            );
        }

        let db = dir.path().join(DB_FILE);
        if !db.exists() {
            continue; // killed before the store was created
        }
        let r = Reader::open(&db).expect("the store opens after a kill");
        let stored: std::collections::HashSet<String> = r
            .connection()
            .prepare("SELECT code FROM dossiers")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("codes");
        for (seq, code) in &acked {
            assert!(
                stored.contains(code),
                "cycle {cycle}: acknowledged {code} (seq {seq}) lost"
            );
        }
        let report = r
            .verify_journal_from(signatures_from, |_, _| {})
            .expect("reads")
            .unwrap_or_else(|b| panic!("cycle {cycle}: the journal is broken: {b}"));
        let last_acked = acked.keys().next_back().copied().unwrap_or(0);
        assert!(
            report.records >= last_acked,
            "cycle {cycle}: {} records, but seq {last_acked} was acknowledged",
            report.records
        );
        let check: String = r
            .connection()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("check");
        assert_eq!(check, "ok", "cycle {cycle}");
        signatures_from = report.records + 1;
    }
    let r = Reader::open(&dir.path().join(DB_FILE)).expect("opens");
    let report = r
        .verify_journal()
        .expect("reads")
        .expect("every signature verifies at the end");
    assert!(report.records >= acked.len() as u64);
    assert!(
        killed_mid_write > cycles / 2,
        "most kills should land while the child is writing ({killed_mid_write})"
    );
    assert!(
        acked.len() > cycles as usize,
        "the child acknowledged records ({})",
        acked.len()
    );
    eprintln!(
        "{cycles} cycles, {killed_mid_write} killed mid-write, {} acknowledged records all intact",
        acked.len()
    );
}
