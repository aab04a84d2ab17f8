//! Named corruption cases: each damaged file gives the documented error,
//! never a panic and never a silently empty store.

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};

use motcua_counter::store::read::Query;
use motcua_counter::store::{Reader, StoreError, Writer};
use motcua_protocol::UtcTime;

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
    // What the damage below does depends on it: a page still in the WAL
    // would be read from there, not from the damaged file.
    let wal = s.db().with_extension("db-wal");
    let wal_len = fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "a clean stop folds the WAL into the file");
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
    // A reader that reads everything (the journal, then every dossier)
    // meets the damage wherever it lies.
    let everything = Query {
        limit: 100_000,
        ..Query::default()
    };
    let err = Reader::open(&s.db())
        .and_then(|r| {
            r.verify_journal().map(|_| ())?;
            r.search(&everything, &now()).map(|_| ())
        })
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

/// Sets `column` of the one dossier to `value`, as a hand edit would.
fn edit_dossier(s: &TestStore, column: &str, value: &str) {
    rusqlite::Connection::open(s.db())
        .expect("open")
        .execute(&format!("UPDATE dossiers SET {column} = ?"), [value])
        .expect("edit");
}

fn assert_bad_value(err: StoreError, expected: &str) {
    match &err {
        StoreError::BadValue { column, detail } => {
            assert_eq!(*column, expected, "{err}");
            assert!(!detail.is_empty(), "{err}");
        }
        other => panic!("expected a bad value in {expected}, got {other:?}"),
    }
}

#[test]
fn a_stored_time_that_does_not_parse_is_refused_naming_its_column() {
    let s = TestStore::new();
    let c = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let code = c.dossier.code;
    edit_dossier(&s, "updated_at", "26/11/2026 09:30");
    let err = s.reader().dossier(&code).expect_err("refused");
    assert!(err.to_string().contains("26/11/2026 09:30"), "{err}");
    assert_bad_value(err, "dossiers.updated_at");
    edit_dossier(&s, "received_at", "2026-11-26");
    let q = Query {
        code: Some(code),
        ..Query::default()
    };
    let err = s
        .reader()
        .search(&q, &UtcTime::new(T0))
        .expect_err("refused");
    assert_bad_value(err, "dossiers.received_at");
}

#[test]
fn a_stored_code_that_does_not_parse_is_refused_naming_its_column() {
    let s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    edit_dossier(&s, "code", "H49.12.3-261126-1");
    let err = s
        .reader()
        .dossier("H49.12.3-261126-1")
        .expect_err("refused");
    assert_bad_value(err, "dossiers.code");
    let err = s
        .reader()
        .search(&Query::default(), &UtcTime::new(T0))
        .expect_err("refused");
    assert_bad_value(err, "dossiers.code");
}
