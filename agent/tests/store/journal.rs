//! The journal across restarts, and its verification.

use motcua_agent::store::schema;
use motcua_protocol::{Hash32, Submission, verify};

use crate::support::*;

#[test]
fn the_chain_continues_across_restarts() {
    let mut s = TestStore::new();
    s.w().create(input(1), staff()).expect("stored");
    s.w().create(input(2), staff()).expect("stored");
    s.reopen();
    let c = s.w().create(input(3), staff()).expect("stored");
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

#[test]
fn verify_reports_the_first_break() {
    let mut s = TestStore::new();
    for i in 0..4 {
        s.w().create(input(i), staff()).expect("stored");
    }
    s.stop();
    let conn = schema::open(&s.db()).expect("open");
    // Tampering: replace envelope 3 with envelope 2's bytes.
    conn.execute(
        "UPDATE journal SET envelope = (SELECT envelope FROM journal WHERE seq = 2) WHERE seq = 3",
        [],
    )
    .expect("tamper");
    drop(conn);
    let brk = s
        .reader()
        .verify_journal()
        .expect("reads")
        .expect_err("broken");
    assert_eq!(brk.seq, 3);
    assert!(brk.reason.contains("hash"), "{}", brk.reason);
}

#[test]
fn verify_reports_a_missing_seq() {
    let mut s = TestStore::new();
    for i in 0..3 {
        s.w().create(input(i), staff()).expect("stored");
    }
    s.stop();
    let conn = schema::open(&s.db()).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM journal WHERE seq = 2;")
        .expect("tamper");
    drop(conn);
    let brk = s
        .reader()
        .verify_journal()
        .expect("reads")
        .expect_err("broken");
    assert_eq!(brk.seq, 2);
    assert!(brk.reason.contains("missing"), "{}", brk.reason);
}

#[test]
fn verify_reports_a_rewritten_link() {
    let mut s = TestStore::new();
    for i in 0..3 {
        s.w().create(input(i), staff()).expect("stored");
    }
    s.stop();
    let conn = schema::open(&s.db()).expect("open");
    conn.execute(
        "UPDATE journal SET envelope = NULL, synced = 1, hash = ? WHERE seq = 2",
        [Hash32::of(b"forged").0.to_vec()],
    )
    .expect("tamper");
    drop(conn);
    let brk = s
        .reader()
        .verify_journal()
        .expect("reads")
        .expect_err("broken");
    assert_eq!(brk.seq, 3, "seq 3's prev no longer matches seq 2's hash");
}

#[test]
fn verify_reports_an_unsynced_record_without_its_envelope() {
    let mut s = TestStore::new();
    for i in 0..3 {
        s.w().create(input(i), staff()).expect("stored");
    }
    s.stop();
    let conn = schema::open(&s.db()).expect("open");
    conn.execute("UPDATE journal SET envelope = NULL WHERE seq = 2", []).expect("tamper");
    drop(conn);
    let brk = s.reader().verify_journal().expect("reads").expect_err("broken");
    assert_eq!(brk.seq, 2);
    assert!(brk.reason.contains("lost its envelope"), "{}", brk.reason);
}
