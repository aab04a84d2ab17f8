//! A full disk, on a real small file system: a tmpfs mounted for the test
//! (needs root, as CI runs; set MOTCUA_SKIP_ROOT_TESTS=1 to skip, as the
//! ARM runs under qemu do, where the tests run natively as well).

use std::path::{Path, PathBuf};
use std::process::Command;

use motcua_counter::store::{Reader, Refusal, StoreError};

use crate::support::*;

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        if std::env::var_os("MOTCUA_SKIP_ROOT_TESTS").is_some() {
            eprintln!("skipped: MOTCUA_SKIP_ROOT_TESTS is set (this test mounts a tmpfs)");
            None
        } else if rustix::process::geteuid().is_root() {
            let dir = tempfile::tempdir().expect("tempdir");
            let ok = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0700"),
                    "tmpfs",
                ])
                .arg(dir.path())
                .status()
                .expect("mount runs")
                .success();
            assert!(ok, "mounting a tmpfs failed");
            Some(Tmpfs { dir })
        } else {
            panic!(
                "this test mounts a tmpfs and needs root; run as root (CI does) or set MOTCUA_SKIP_ROOT_TESTS=1"
            );
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A store whose database lives on `fs`.
fn store_on(fs: &Tmpfs, min_free: u64) -> (TestStore, PathBuf) {
    let mut s = TestStore::new();
    s.stop();
    let db = fs.path().join("motcua.db");
    s.min_free = min_free;
    (s, db)
}

fn start_on(s: &mut TestStore, db: &Path) {
    let mut cfg = s.config();
    cfg.db = db.to_owned();
    s.writer = Some(motcua_counter::store::Writer::start(cfg).expect("starts"));
    let _ = motcua_counter::store::reference::import(&s.w(), reference_data(1), &now());
}

fn check_intact(db: &Path, acked: &[String]) {
    let r = Reader::open(db).expect("reader");
    for code in acked {
        assert!(
            r.dossier(code).expect("reads").is_some(),
            "acknowledged dossier {code} is present"
        );
    }
    let report = r.verify_journal().expect("reads").expect("intact");
    assert_eq!(
        report.records,
        acked.len() as u64,
        "no record beyond those acknowledged"
    );
    let ok: String = r
        .connection()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

#[test]
fn the_free_space_floor_refuses_before_the_disk_fills() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let (mut s, db) = store_on(&fs, 2 << 20);
    start_on(&mut s, &db);
    let mut acked = Vec::new();
    let err = loop {
        match s
            .w()
            .create(input(acked.len() as u32), staff())
            .expect("no failure")
        {
            Ok(c) => acked.push(c.dossier.code),
            Err(e) => break e,
        }
        assert!(acked.len() < 100_000, "the floor never triggered");
    };
    assert!(matches!(err, Refusal::DiskFull { .. }), "{err:?}");
    assert!(!acked.is_empty());
    // Reads go on, and everything acknowledged is intact.
    check_intact(&db, &acked);
}

#[test]
fn a_really_full_disk_loses_nothing_and_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("2m") else { return };
    // Ballast that the technician will delete to free space.
    let ballast = fs.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 512 * 1024]).expect("ballast");
    let (mut s, db) = store_on(&fs, 0);
    start_on(&mut s, &db);
    // Four submitters, so the disk fills in the middle of groups of several
    // jobs: SQLite then rolls back the whole transaction by itself, and no
    // job of the group may be reported stored.
    let acked = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..4 {
            let w = s.w();
            let acked = &acked;
            scope.spawn(move || {
                let mut failures = 0;
                let mut i = 0;
                while failures < 10 {
                    i += 1;
                    match w.create(input(t * 100_000 + i), staff()) {
                        Ok(Ok(c)) => acked.lock().expect("lock").push(c.dossier.code),
                        Ok(Err(refused)) => panic!("unexpected refusal: {refused:?}"),
                        Err(
                            StoreError::Sqlite { .. }
                            | StoreError::Io { .. }
                            | StoreError::Internal(_),
                        ) => failures += 1,
                        Err(other) => panic!("unexpected refusal: {other:?}"),
                    }
                    assert!(i < 100_000, "the disk never filled");
                }
            });
        }
    });
    let mut acked = acked.into_inner().expect("lock");
    s.stop();
    check_intact(&db, &acked);
    // Space comes back: the same store takes records again, chain intact.
    std::fs::remove_file(&ballast).expect("free space");
    start_on(&mut s, &db);
    let c = s
        .w()
        .create(input(0), staff())
        .expect("stored once space is back")
        .expect("not refused once space is back");
    assert_eq!(c.seq, acked.len() as u64 + 1);
    acked.push(c.dossier.code);
    s.stop();
    check_intact(&db, &acked);
}
