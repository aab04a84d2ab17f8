//! Named corruption cases: each damaged file gives the documented error,
//! never a panic and never a silently empty store.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use motcua_counter::store::{Reader, StoreError, Writer};

use crate::support::*;

/// A store with some records, closed cleanly (WAL folded into the file).
fn closed_store() -> TestStore {
    let mut s = TestStore::new();
    for i in 0..200 {
        s.w()
            .create(input(i), staff())
            .expect("no failure")
            .expect("stored");
    }
    s.stop();
    s
}

fn assert_damaged(s: &TestStore) {
    let err = Writer::start(s.config()).map(|_| ()).expect_err("refused");
    assert!(matches!(err, StoreError::Damaged { .. }), "writer: {err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("To recover"),
        "the error says how to recover: {msg}"
    );
    let err = Reader::open(&s.db())
        .and_then(|r| r.verify_journal().map(|_| ()))
        .expect_err("refused");
    assert!(
        matches!(err, StoreError::Damaged { .. } | StoreError::Sqlite { .. }),
        "reader: {err:?}"
    );
}

#[test]
fn a_truncated_database_is_refused() {
    let s = closed_store();
    let len = fs::metadata(s.db()).expect("exists").len();
    assert!(len > 8192, "the store spans several pages");
    OpenOptions::new()
        .write(true)
        .open(s.db())
        .expect("open")
        .set_len(len / 2)
        .expect("truncate");
    assert_damaged(&s);
}

#[test]
fn a_damaged_page_is_refused() {
    let s = closed_store();
    let len = fs::metadata(s.db()).expect("exists").len();
    let mut f = OpenOptions::new().write(true).open(s.db()).expect("open");
    // Overwrite the middle of the file (b-tree pages) with garbage.
    f.seek(SeekFrom::Start(len / 2)).expect("seek");
    f.write_all(&[0xA5; 4096]).expect("write");
    drop(f);
    assert_damaged(&s);
}

#[test]
fn a_damaged_header_is_refused() {
    let s = closed_store();
    let mut f = OpenOptions::new().write(true).open(s.db()).expect("open");
    f.write_all(b"this is not sqlite").expect("write");
    drop(f);
    assert_damaged(&s);
}

#[test]
fn an_empty_file_is_a_new_store_not_damage() {
    // A zero-length file is what a crash between creating the file and
    // SQLite's first write leaves: it holds nothing, so starting afresh
    // loses nothing.
    let mut s = TestStore::new();
    s.stop();
    fs::write(s.db(), b"").expect("truncate");
    let _ = fs::remove_file(s.db().with_extension("db-wal"));
    let _ = fs::remove_file(s.db().with_extension("db-shm"));
    let w = Writer::start(s.config()).expect("an empty file is a new store");
    drop(w);
}
