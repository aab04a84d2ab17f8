//! The journal across restarts, and its verification.

use motcua_counter::store::schema;
use motcua_protocol::{Submission, verify};

use crate::support::*;

#[test]
fn the_chain_continues_across_restarts() {
    let mut s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    s.w()
        .create(input(2), staff())
        .expect("no failure")
        .expect("stored");
    s.reopen();
    let c = s
        .w()
        .create(input(3), staff())
        .expect("no failure")
        .expect("stored");
    assert_eq!(c.seq, 3);
    assert_eq!(
        c.dossier.code, "H49.12.3-261126-1003",
        "the day's code sequence survives too"
    );
    let pending = s.reader().unsynced(0, 10).expect("pending");
    let third =
        verify::<Submission>(&pending[2].envelope, &device_key().verifying_key()).expect("valid");
    assert_eq!(third.message.prev, pending[1].hash);
    assert_eq!(
        s.reader()
            .verify_journal()
            .expect("reads")
            .expect("intact")
            .records,
        3
    );
}

/// Stores `n` records, applies `tamper` (SQL) to the closed file, and checks
/// that the journal check reports its first break at `seq`, saying `reason`.
fn check_break(n: u32, tamper: &str, seq: u64, reason: &str) {
    let mut s = TestStore::new();
    for i in 0..n {
        s.w()
            .create(input(i), staff())
            .expect("no failure")
            .expect("stored");
    }
    s.stop();
    let conn = schema::open(&s.db()).expect("open");
    conn.execute_batch(tamper).expect("tamper");
    drop(conn);
    let brk = s
        .reader()
        .verify_journal()
        .expect("reads")
        .expect_err("broken");
    assert_eq!(brk.seq, seq, "{}", brk.reason);
    assert!(brk.reason.contains(reason), "{}", brk.reason);
}

#[test]
fn verify_reports_the_first_break() {
    // Envelope 3 replaced by envelope 2's bytes.
    check_break(
        4,
        "UPDATE journal SET envelope = (SELECT envelope FROM journal WHERE seq = 2) WHERE seq = 3",
        3,
        "hash",
    );
}

#[test]
fn verify_reports_a_missing_seq() {
    check_break(
        3,
        "PRAGMA foreign_keys = OFF; DELETE FROM journal WHERE seq = 2;",
        2,
        "missing",
    );
}

#[test]
fn verify_reports_a_rewritten_link() {
    // Record 2, receipted and pruned, given another hash: seq 3's prev no
    // longer matches it.
    check_break(
        3,
        "UPDATE journal SET envelope = NULL, synced = 1, hash = zeroblob(32) WHERE seq = 2",
        3,
        "prev is not the hash",
    );
}

#[test]
fn verify_reports_an_unsynced_record_without_its_envelope() {
    check_break(
        3,
        "UPDATE journal SET envelope = NULL WHERE seq = 2",
        2,
        "lost its envelope",
    );
}
