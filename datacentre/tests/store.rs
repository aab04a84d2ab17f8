//! One suite, run against both storage backends: the embedded SQLite file
//! and a PostgreSQL database that each test creates on 127.0.0.1:5432 and
//! drops afterwards (`MOTCUA_TEST_PG` overrides the server URL).

use std::sync::atomic::{AtomicU32, Ordering};

use ed25519_dalek::SigningKey;
use motcua_dc::rights::{self, NewAccess, Operator, Verifier};
use motcua_dc::store::{
    EnrollError, Enrolled, Incoming, Outcome, Store, StoreError, postgres::PgStore, schema,
    sqlite::SqliteStore,
};
use motcua_protocol::{
    ChainHead, ConflictKind, DeviceId, Enrollment, Hash32, RecordKind, StaffId, Submission,
    UtcTime, sign, verify,
};

fn now() -> UtcTime {
    UtcTime::from_unix_millis(1_795_000_000_000).expect("valid")
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn dev(name: &str) -> DeviceId {
    name.parse().expect("valid id")
}

fn enrollment(name: &str, k: &SigningKey) -> Enrollment {
    Enrollment {
        device: dev(name),
        key: k.verifying_key(),
    }
}

/// A signed envelope for `device` at `seq` after `prev`; `salt` changes the
/// body so two envelopes for one seq differ.
fn envelope(device: &str, k: &SigningKey, seq: u64, prev: Hash32, salt: u32) -> Incoming {
    let sub = Submission {
        v: 1,
        device: dev(device),
        seq,
        prev,
        at: now(),
        clock: true,
        clock_dc: None,
        staff: "canbo01".parse::<StaffId>().expect("valid"),
        kind: "dossier.created".parse::<RecordKind>().expect("valid"),
        body: serde_json::json!({ "code": format!("X-{seq}"), "salt": salt }),
    };
    let bytes = sign(&sub, k).expect("signs");
    let v = verify::<Submission>(&bytes, &k.verifying_key()).expect("verifies");
    Incoming::from_verified(v, &format!("motcua/v1/d/{device}/up"))
}

/// A valid chain of `n` envelopes.
fn chain(device: &str, k: &SigningKey, n: u64) -> Vec<Incoming> {
    let mut prev = Hash32::ZERO;
    (1..=n)
        .map(|seq| {
            let e = envelope(device, k, seq, prev, 0);
            prev = e.hash;
            e
        })
        .collect()
}

fn head_of(items: &[Incoming]) -> ChainHead {
    items.last().map_or(ChainHead::EMPTY, |e| ChainHead {
        seq: e.seq,
        hash: e.hash,
    })
}

/// Checks the stored chain of `device` is exactly `expected`, seq 1 up,
/// every link intact.
fn assert_stored(store: &mut dyn Store, device: &str, expected: &[Incoming]) {
    let records = store.records(&dev(device), 0, 1_000_000).expect("reads");
    assert_eq!(records.len(), expected.len(), "record count of {device}");
    let mut prev = Hash32::ZERO;
    for (i, (r, e)) in records.iter().zip(expected).enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.hash, Hash32::of(&r.bytes));
        assert_eq!(r.prev, prev, "link at seq {}", r.seq);
        assert_eq!(r.bytes, e.bytes, "bytes at seq {}", r.seq);
        prev = r.hash;
    }
    let d = store
        .device(&dev(device))
        .expect("reads")
        .expect("enrolled");
    assert_eq!(d.head, head_of(expected));
}

// --- Backends -------------------------------------------------------------

trait Backend {
    fn try_open(&self) -> Result<Box<dyn Store>, StoreError>;
    fn open(&self) -> Box<dyn Store> {
        self.try_open().expect("opens")
    }
    /// Runs `sql` on the database directly, beside the store.
    fn raw(&self, sql: &str);
    /// The frozen database from before schema versions (`tests/fixtures`).
    fn v0(&self) -> &'static str;
}

struct Sqlite(tempfile::TempDir);

impl Sqlite {
    fn path(&self) -> std::path::PathBuf {
        self.0.path().join("dc.db")
    }
}

impl Backend for Sqlite {
    fn try_open(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(SqliteStore::open(&self.path())?))
    }
    fn raw(&self, sql: &str) {
        rusqlite::Connection::open(self.path())
            .expect("opens the file")
            .execute_batch(sql)
            .expect("runs");
    }
    fn v0(&self) -> &'static str {
        include_str!("fixtures/schema-v0-sqlite.sql")
    }
}

fn sqlite() -> Sqlite {
    Sqlite(tempfile::tempdir().expect("tempdir"))
}

/// A database of its own on the local PostgreSQL server, dropped at the end.
struct Pg {
    admin: String,
    url: String,
    name: String,
}

fn server() -> String {
    std::env::var("MOTCUA_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn pg() -> Pg {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "motcua_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("{}/postgres", server());
    let mut c = postgres::Client::connect(&admin, postgres::NoTls)
        .expect("PostgreSQL must run on 127.0.0.1:5432 (or set MOTCUA_TEST_PG)");
    c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .expect("creates the test database");
    Pg {
        url: format!("{}/{name}", server()),
        admin,
        name,
    }
}

impl Backend for Pg {
    fn try_open(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(Box::new(PgStore::connect(&self.url)?))
    }
    fn raw(&self, sql: &str) {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .expect("connects")
            .batch_execute(sql)
            .expect("runs");
    }
    fn v0(&self) -> &'static str {
        include_str!("fixtures/schema-v0-postgres.sql")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name));
        }
    }
}

/// Declares each check once and runs it on both backends.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[test] fn $name() { super::$name(&super::sqlite()) } )* }
        mod on_postgres { $( #[test] fn $name() { super::$name(&super::pg()) } )* }
    };
}

both!(
    enrollment_rules,
    in_order_envelopes_are_stored_once,
    gaps_are_held_and_released,
    conflicts_are_evidence_never_records,
    revoked_and_unknown_devices_are_refused,
    two_writers_out_of_order,
    alerts_keep_their_fields,
    presence_and_health_are_kept_per_enrolled_device,
    downstream_numbers_only_grow_and_updates_queue_per_device,
    charts_and_export_read_records_by_day,
    a_database_from_before_versions_is_migrated_and_usable,
    a_newer_schema_is_refused,
    damaged_columns_are_named,
    operators_are_kept_replaced_and_disabled,
    two_receivers_append_one_gapless_access_log_and_tampering_shows,
);

// --- Checks ---------------------------------------------------------------

fn enrollment_rules(b: &dyn Backend) {
    let mut s = b.open();
    let (k1, k2) = (key(1), key(2));
    assert_eq!(
        s.enroll(&enrollment("dev-a", &k1), &now()).expect("ok"),
        Ok(Enrolled::NewDevice)
    );
    assert_eq!(
        s.enroll(&enrollment("dev-a", &k1), &now()).expect("ok"),
        Ok(Enrolled::AlreadyEnrolled)
    );
    assert_eq!(
        s.enroll(&enrollment("dev-a", &k2), &now()).expect("ok"),
        Ok(Enrolled::NewKey)
    );
    assert!(matches!(
        s.enroll(&enrollment("dev-b", &k1), &now()).expect("ok"),
        Err(EnrollError::KeyOfAnotherDevice { .. })
    ));
    let d = s.device(&dev("dev-a")).expect("reads").expect("exists");
    assert_eq!(d.keys.len(), 2);
    assert_eq!(d.head, ChainHead::EMPTY);
    assert!(s.revoke(&dev("dev-a"), &now()).expect("ok"));
    assert!(!s.revoke(&dev("nobody"), &now()).expect("ok"));
    assert_eq!(
        s.enroll(&enrollment("dev-a", &key(3)), &now()).expect("ok"),
        Err(EnrollError::Revoked(dev("dev-a")))
    );
    let all = s.devices().expect("lists");
    assert_eq!(all.len(), 1);
    assert!(all[0].revoked_at.is_some());
    // A second connection sees the same registry.
    assert_eq!(b.open().devices().expect("lists"), all);
}

fn in_order_envelopes_are_stored_once(b: &dyn Backend) {
    let mut s = b.open();
    let k = key(1);
    s.enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let c = chain("dev-a", &k, 50);
    let a = s.accept(&dev("dev-a"), &c[..30], &now()).expect("accepts");
    assert_eq!(a.outcomes, vec![Outcome::Stored; 30]);
    assert_eq!(a.head, Some(head_of(&c[..30])));
    // Redelivery of an old stretch together with new ones.
    let a = s.accept(&dev("dev-a"), &c[20..], &now()).expect("accepts");
    assert_eq!(&a.outcomes[..10], &[Outcome::Duplicate; 10]);
    assert_eq!(&a.outcomes[10..], &[Outcome::Stored; 20]);
    let a = s.accept(&dev("dev-a"), &c[49..], &now()).expect("accepts");
    assert_eq!(a.outcomes, vec![Outcome::Duplicate]);
    assert_stored(&mut *s, "dev-a", &c);
    let t = s.totals().expect("totals");
    assert_eq!((t.records, t.held, t.alerts), (50, 0, 0));
}

fn gaps_are_held_and_released(b: &dyn Backend) {
    let mut s = b.open();
    let k = key(1);
    s.enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let c = chain("dev-a", &k, 10);
    let a = s.accept(&dev("dev-a"), &c[5..8], &now()).expect("accepts");
    assert_eq!(a.outcomes, vec![Outcome::Held; 3]);
    assert_eq!(
        a.head,
        Some(ChainHead::EMPTY),
        "receipts only the contiguous prefix"
    );
    // Held twice is held once.
    s.accept(&dev("dev-a"), &c[6..7], &now()).expect("accepts");
    assert_eq!(s.totals().expect("totals").held, 3);
    let a = s.accept(&dev("dev-a"), &c[..3], &now()).expect("accepts");
    assert_eq!(a.head, Some(head_of(&c[..3])));
    let a = s.accept(&dev("dev-a"), &c[3..5], &now()).expect("accepts");
    assert_eq!(a.released, 3);
    assert_eq!(a.head, Some(head_of(&c[..8])));
    let a = s.accept(&dev("dev-a"), &c[8..], &now()).expect("accepts");
    assert_eq!(a.head, Some(head_of(&c)));
    assert_stored(&mut *s, "dev-a", &c);
    assert_eq!(s.totals().expect("totals").held, 0);
}

fn conflicts_are_evidence_never_records(b: &dyn Backend) {
    let mut s = b.open();
    let k = key(1);
    s.enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let c = chain("dev-a", &k, 5);
    s.accept(&dev("dev-a"), &c[..4], &now()).expect("accepts");
    // Same seq as the head, other bytes; an older seq rewritten; the next
    // seq linked to the wrong hash.
    let rewrite_head = envelope("dev-a", &k, 4, c[2].hash, 1);
    let rewrite_old = envelope("dev-a", &k, 2, c[0].hash, 1);
    let broken = envelope("dev-a", &k, 5, c[0].hash, 0);
    let a = s
        .accept(
            &dev("dev-a"),
            &[rewrite_head.clone(), rewrite_old.clone(), broken.clone()],
            &now(),
        )
        .expect("accepts");
    assert_eq!(
        a.outcomes,
        vec![
            Outcome::Conflict(ConflictKind::Rewrite),
            Outcome::Conflict(ConflictKind::Rewrite),
            Outcome::Conflict(ConflictKind::BrokenLink),
        ]
    );
    // A held envelope that turns out to be a fork is evidence too.
    let held_fork = envelope("dev-a", &k, 6, Hash32([7; 32]), 0);
    assert_eq!(
        s.accept(&dev("dev-a"), std::slice::from_ref(&held_fork), &now())
            .expect("ok")
            .outcomes,
        vec![Outcome::Held]
    );
    s.accept(&dev("dev-a"), &c[4..], &now()).expect("accepts");
    assert_stored(&mut *s, "dev-a", &c);
    let alerts = s.alerts(0, 100).expect("reads");
    let reasons: Vec<_> = alerts.iter().map(|a| a.alert.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "conflict_rewrite",
            "conflict_rewrite",
            "conflict_broken_link",
            "conflict_broken_link"
        ]
    );
    assert_eq!(alerts[0].alert.bytes, rewrite_head.bytes);
    assert_eq!(alerts[2].alert.bytes, broken.bytes);
    assert_eq!(alerts[3].alert.bytes, held_fork.bytes);
    assert_eq!(alerts[3].alert.seq, Some(6));
}

fn revoked_and_unknown_devices_are_refused(b: &dyn Backend) {
    let mut s = b.open();
    let k = key(1);
    s.enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let c = chain("dev-a", &k, 3);
    s.accept(&dev("dev-a"), &c[..1], &now()).expect("accepts");
    s.revoke(&dev("dev-a"), &now()).expect("revokes");
    let a = s.accept(&dev("dev-a"), &c[1..], &now()).expect("accepts");
    assert_eq!(a.outcomes, vec![Outcome::Refused; 2]);
    assert_eq!(a.head, None);
    let x = chain("dev-x", &key(9), 1);
    let a = s.accept(&dev("dev-x"), &x, &now()).expect("accepts");
    assert_eq!(a.outcomes, vec![Outcome::Refused]);
    assert_stored(&mut *s, "dev-a", &c[..1]);
    let reasons: Vec<_> = s
        .alerts(0, 100)
        .expect("reads")
        .into_iter()
        .map(|a| a.alert.reason)
        .collect();
    assert_eq!(reasons, ["revoked", "revoked", "unknown_device"]);
}

/// Two receivers, each with its own connection, get one device's envelopes
/// in different orders with redeliveries: every seq is stored once.
fn two_writers_out_of_order(b: &dyn Backend) {
    let k = key(1);
    b.open()
        .enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let c = chain("dev-a", &k, 120);
    // Receiver 1 gets the even seqs backwards then the odd; receiver 2 the
    // odd seqs then everything again, in small batches.
    let mut first: Vec<Incoming> = c.iter().filter(|e| e.seq % 2 == 0).rev().cloned().collect();
    first.extend(c.iter().filter(|e| e.seq % 2 == 1).cloned());
    let mut second: Vec<Incoming> = c.iter().filter(|e| e.seq % 2 == 1).cloned().collect();
    second.extend(c.iter().cloned());
    std::thread::scope(|scope| {
        for part in [first, second] {
            let mut s = b.open();
            scope.spawn(move || {
                for batch in part.chunks(7) {
                    s.accept(&dev("dev-a"), batch, &now()).expect("accepts");
                }
            });
        }
    });
    let mut s = b.open();
    assert_stored(&mut *s, "dev-a", &c);
    let t = s.totals().expect("totals");
    assert_eq!((t.records, t.held, t.alerts), (120, 0, 0));
}

fn alerts_keep_their_fields(b: &dyn Backend) {
    let mut s = b.open();
    let a = motcua_dc::store::Alert {
        at: now(),
        device: None,
        topic: "motcua/v1/d/???/up".into(),
        reason: "not_cose".into(),
        seq: None,
        detail: "first byte 0x00".into(),
        bytes: vec![0, 1, 2],
    };
    s.alert(&a).expect("records");
    let stored = s.alerts(0, 10).expect("reads");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].alert, a);
    assert!(s.alerts(stored[0].id, 10).expect("reads").is_empty());
}

fn presence_and_health_are_kept_per_enrolled_device(b: &dyn Backend) {
    let mut s = b.open();
    for (name, k) in [("dev-a", 1), ("dev-b", 2)] {
        assert_eq!(
            s.enroll(&enrollment(name, &key(k)), &now()).expect("ok"),
            Ok(Enrolled::NewDevice)
        );
    }
    // Nobody said anything yet.
    assert!(s.states().expect("reads").is_empty());
    // A device that is not enrolled leaves no trace.
    assert!(!s.set_presence(&dev("nobody"), true, &now()).expect("ok"));
    assert!(!s.put_health(&dev("nobody"), b"{}", &now()).expect("ok"));
    assert!(s.states().expect("reads").is_empty());

    assert!(s.set_presence(&dev("dev-a"), true, &now()).expect("ok"));
    assert!(
        s.put_health(&dev("dev-a"), b"{\"v\":1}", &now())
            .expect("ok")
    );
    assert!(
        s.put_health(&dev("dev-b"), b"{\"v\":1,\"x\":2}", &now())
            .expect("ok")
    );
    // The latest wins; presence and health are kept apart.
    assert!(s.set_presence(&dev("dev-a"), false, &now()).expect("ok"));
    assert!(
        s.put_health(&dev("dev-a"), b"{\"v\":1,\"n\":2}", &now())
            .expect("ok")
    );
    let states = b.open().states().expect("reads");
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].device.as_str(), "dev-a");
    assert_eq!(states[0].online, Some(false));
    assert!(states[0].status_at.is_some());
    assert_eq!(states[0].health.as_deref(), Some(&b"{\"v\":1,\"n\":2}"[..]));
    assert_eq!(states[1].device.as_str(), "dev-b");
    assert_eq!(states[1].online, None, "dev-b never said");
    assert!(states[1].health_at.is_some());

    // Alerts counted per device and reason; those naming no device left out.
    for (device, reason) in [
        (Some("dev-a"), "bad_signature"),
        (Some("dev-a"), "bad_signature"),
        (Some("dev-a"), "conflict_rewrite"),
        (None, "not_cose"),
    ] {
        s.alert(&motcua_dc::store::Alert {
            at: now(),
            device: device.map(dev),
            topic: "motcua/v1/d/dev-a/up".into(),
            reason: reason.into(),
            seq: None,
            detail: String::new(),
            bytes: vec![],
        })
        .expect("records");
    }
    let counts: Vec<(String, String, u64)> = s
        .alert_counts()
        .expect("reads")
        .into_iter()
        .map(|c| (c.device.to_string(), c.reason, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("dev-a".into(), "bad_signature".into(), 2),
            ("dev-a".into(), "conflict_rewrite".into(), 1)
        ]
    );
}

fn downstream_numbers_only_grow_and_updates_queue_per_device(b: &dyn Backend) {
    let mut s = b.open();
    let t = "motcua/v1/all/catalogue";
    assert_eq!(s.down_last(t).expect("reads"), None);
    assert!(s.down_put(t, 5, b"five", &now()).expect("ok"));
    assert!(
        !s.down_put(t, 5, b"five again", &now()).expect("ok"),
        "not higher"
    );
    assert!(!s.down_put(t, 4, b"four", &now()).expect("ok"), "lower");
    assert!(s.down_put(t, 6, b"six", &now()).expect("ok"));
    assert_eq!(
        b.open().down_last(t).expect("reads"),
        Some((6, b"six".to_vec()))
    );
    assert_eq!(
        s.down_all().expect("reads"),
        [(t.to_owned(), b"six".to_vec())]
    );

    for (name, k) in [("dev-a", 1), ("dev-b", 2)] {
        s.enroll(&enrollment(name, &key(k)), &now())
            .expect("ok")
            .expect("enrolled");
    }
    let up = |code: &str, status: u8| motcua_dc::store::PendingUpdate {
        id: 0,
        code: code.into(),
        status,
        at: now(),
        by: "UBND huyện".into(),
        note: None,
    };
    let a1 = s.add_update(&dev("dev-a"), &up("X-1", 4)).expect("queued");
    let b1 = s.add_update(&dev("dev-b"), &up("Y-1", 4)).expect("queued");
    let a2 = s.add_update(&dev("dev-a"), &up("X-1", 9)).expect("queued");
    assert!(a1 < b1 && b1 < a2, "ids increase over all devices");
    let a = s.updates(&dev("dev-a"), 0, 10).expect("reads");
    assert_eq!(
        a.iter().map(|u| (u.id, u.status)).collect::<Vec<_>>(),
        [(a1, 4), (a2, 9)]
    );
    assert_eq!(s.updates(&dev("dev-a"), a1, 10).expect("reads").len(), 1);
    assert_eq!(
        s.updates(&dev("dev-b"), 0, 10).expect("reads")[0].code,
        "Y-1"
    );
}

fn charts_and_export_read_records_by_day(b: &dyn Backend) {
    let mut s = b.open();
    let k = key(1);
    s.enroll(&enrollment("dev-a", &k), &now())
        .expect("ok")
        .expect("enrolled");
    let items = chain("dev-a", &k, 5);
    s.accept(&dev("dev-a"), &items, &now()).expect("stored");
    let long_ago = UtcTime::parse("2000-01-01T00:00:00.000Z").expect("valid");
    let later = UtcTime::parse("2100-01-01T00:00:00.000Z").expect("valid");

    // The records were signed and stored at the same instant: one day.
    let counts = s.daily_dossiers(&long_ago).expect("reads");
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].0.as_str(), counts[0].2), ("dev-a", 5));
    let vn_today = now()
        .get()
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).expect("valid"))
        .date()
        .to_string();
    assert_eq!(counts[0].1, vn_today, "the day in Vietnam (UTC+7)");
    assert!(s.daily_dossiers(&later).expect("reads").is_empty());
    let lag = s.daily_lag(&long_ago).expect("reads");
    assert_eq!(lag.len(), 1);
    assert!(lag[0].1 >= 0.0 && lag[0].2 >= lag[0].1, "{lag:?}");

    // Export pages in (device, seq) order after a cursor.
    let first = s.export(&long_ago, &later, None, 3).expect("reads");
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let rest = s
        .export(&long_ago, &later, Some(("dev-a", 3)), 3)
        .expect("reads");
    assert_eq!(rest.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(rest[1].bytes, items[4].bytes);
    assert_eq!(rest[1].kind.as_str(), "dossier.created");
    assert!(s.export(&later, &later, None, 3).expect("reads").is_empty());
}

/// A database as the DC wrote it before its schema had a version (frozen
/// in `tests/fixtures`) opens as version 1 with every row intact, and its
/// chain continues.
fn a_database_from_before_versions_is_migrated_and_usable(b: &dyn Backend) {
    b.raw(b.v0());
    let mut s = b.open();
    assert_eq!(s.schema_version().expect("reads"), schema::LATEST);
    let k = key(1);
    let c = chain("dev-a", &k, 5);
    assert_stored(&mut *s, "dev-a", &c[..3]);
    let d = s.device(&dev("dev-a")).expect("reads").expect("enrolled");
    assert_eq!(d.keys.len(), 1);
    assert_eq!(d.keys[0].key, k.verifying_key());
    assert!(d.revoked_at.is_none());
    let t = s.totals().expect("totals");
    assert_eq!((t.devices, t.records, t.held, t.alerts), (1, 3, 1, 1));
    let states = s.states().expect("reads");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].online, Some(true));
    assert_eq!(states[0].health.as_deref(), Some(&b"{\"v\":1}"[..]));
    let alerts = s.alerts(0, 10).expect("reads");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.reason, "bad_signature");
    assert_eq!(alerts[0].alert.seq, Some(9));
    assert_eq!(alerts[0].alert.bytes, [1, 2, 3]);
    assert_eq!(
        s.down_last("motcua/v1/all/catalogue").expect("reads"),
        Some((5, b"five".to_vec()))
    );
    let updates = s.updates(&dev("dev-a"), 0, 10).expect("reads");
    assert_eq!(
        updates
            .iter()
            .map(|u| (u.id, u.code.as_str(), u.status))
            .collect::<Vec<_>>(),
        [(1, "X-1", 4)]
    );

    // Seq 4 closes the gap to the held seq 5.
    let a = s.accept(&dev("dev-a"), &c[3..4], &now()).expect("accepts");
    assert_eq!(a.outcomes, [Outcome::Stored]);
    assert_eq!(a.released, 1);
    assert_eq!(a.head, Some(head_of(&c)));
    assert_stored(&mut *s, "dev-a", &c);
    // Ids continue after the old rows'.
    let id = s.add_update(&dev("dev-a"), &updates[0]).expect("queued");
    assert_eq!(id, 2);
    drop(s);
    // Opening again migrates nothing more.
    assert_eq!(b.open().schema_version().expect("reads"), schema::LATEST);
}

/// A database a newer build has migrated is refused, not written to.
fn a_newer_schema_is_refused(b: &dyn Backend) {
    b.open();
    b.raw(&format!(
        "INSERT INTO schema_version (version) VALUES ({})",
        schema::LATEST + 1
    ));
    match b.try_open() {
        Ok(_) => panic!("a newer schema was opened"),
        Err(e) => {
            assert!(
                matches!(
                    e,
                    StoreError::NewerSchema { found, known }
                        if found == schema::LATEST + 1 && known == schema::LATEST
                ),
                "{e}"
            );
            assert!(e.to_string().contains("newer motcua-dc"), "{e}");
        }
    }
}

/// Text that is not what this build writes is refused where it is read,
/// naming the column.
fn damaged_columns_are_named(b: &dyn Backend) {
    let mut s = b.open();
    s.enroll(&enrollment("dev-a", &key(1)), &now())
        .expect("ok")
        .expect("enrolled");
    b.raw("UPDATE devices SET added_at = 'yesterday'");
    match s.device(&dev("dev-a")) {
        Err(e @ StoreError::Corrupt(_)) => {
            assert!(e.to_string().contains("devices.added_at"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    b.raw("UPDATE devices SET added_at = '2026-11-18T11:06:40.000Z'");
    s.alert(&motcua_dc::store::Alert {
        at: now(),
        device: Some(dev("dev-a")),
        topic: "motcua/v1/d/dev-a/up".into(),
        reason: "bad_signature".into(),
        seq: None,
        detail: String::new(),
        bytes: vec![],
    })
    .expect("records");
    b.raw("UPDATE alerts SET device = 'a b'");
    match s.alerts(0, 10) {
        Err(e @ StoreError::Corrupt(_)) => {
            assert!(e.to_string().contains("alerts.device"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

fn operator(name: &str, roles: &str, hash: &str) -> Operator {
    Operator {
        name: name.parse().expect("name"),
        hash: hash.into(),
        roles: roles.parse().expect("roles"),
        added_at: now(),
        changed_at: now(),
        disabled_at: None,
    }
}

fn operators_are_kept_replaced_and_disabled(b: &dyn Backend) {
    let mut s = b.open();
    let an = "an.nguyen".parse().expect("name");
    assert!(s.operator(&an).expect("reads").is_none());
    assert!(
        s.operator_put(&operator("an.nguyen", "fleet", "h1"), false)
            .expect("puts")
    );
    assert!(
        !s.operator_put(&operator("an.nguyen", "records", "h2"), false)
            .expect("puts"),
        "no silent replace"
    );
    assert_eq!(
        s.operator(&an).expect("reads").map(|o| o.hash),
        Some("h1".into())
    );
    assert!(s.operator_disable(&an, &now()).expect("disables"));
    let later = UtcTime::from_unix_millis(1_795_000_100_000).expect("valid");
    assert!(s.operator_disable(&an, &later).expect("disables"));
    let o = s.operator(&an).expect("reads").expect("kept");
    assert_eq!(o.disabled_at, Some(now()), "the first time stays");
    assert!(
        !s.operator_disable(&"nobody".parse().expect("name"), &now())
            .expect("runs")
    );
    // Replacing sets the hash and roles and enables the account again.
    assert!(
        s.operator_put(&operator("an.nguyen", "fleet records", "h2"), true)
            .expect("puts")
    );
    let o = s.operator(&an).expect("reads").expect("kept");
    assert_eq!(
        (o.hash.as_str(), o.roles.to_string(), o.disabled_at),
        ("h2", "fleet records".into(), None)
    );
    s.operator_put(&operator("binh", "admin", "h3"), false)
        .expect("puts");
    let names: Vec<String> = s
        .operators()
        .expect("lists")
        .iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, ["an.nguyen", "binh"]);
    b.raw("UPDATE operators SET roles = 'reader' WHERE name = 'binh'");
    match s.operators() {
        Err(e @ StoreError::Corrupt(_)) => {
            assert!(e.to_string().contains("operators.roles"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

fn access(n: u32) -> NewAccess {
    NewAccess {
        who: format!("operator:ops{}", n % 3),
        what: "GET /api/v1/records from=2026-12-01 to=2026-12-01 limit=500".into(),
        purpose: "đối soát với hệ thống một cửa tỉnh".into(),
        records: format!("dev-a:{n}"),
        count: 1,
    }
}

fn verify_log(s: &mut dyn Store) -> Verifier {
    let mut v = Verifier::default();
    let mut after = 0;
    loop {
        let page = s.access_entries(after, 50).expect("reads");
        for e in &page {
            if !v.step(e) {
                return v;
            }
            after = e.id;
        }
        if page.len() < 50 {
            return v;
        }
    }
}

fn two_receivers_append_one_gapless_access_log_and_tampering_shows(b: &dyn Backend) {
    std::thread::scope(|scope| {
        for part in 0..2u32 {
            let mut s = b.open();
            scope.spawn(move || {
                for n in 0..60 {
                    s.access_append(&access(part * 100 + n), &now())
                        .expect("appends");
                }
            });
        }
    });
    let mut s = b.open();
    let v = verify_log(&mut *s);
    assert!(v.broken.is_none(), "{:?}", v.broken);
    assert_eq!(v.head().0, 120, "every append, ids 1 to 120");
    let all = s.access_entries(0, 1000).expect("reads");
    assert_eq!(all.len(), 120);
    assert_eq!(all[0].prev, rights::GENESIS);

    // An edited purpose shows at that entry.
    b.raw("UPDATE access_log SET purpose = 'khác' WHERE id = 40");
    let v = verify_log(&mut *s);
    assert_eq!(v.broken.as_ref().map(|b| b.id), Some(40), "{:?}", v.broken);
    assert_eq!(v.head().0, 39);
    b.raw("UPDATE access_log SET purpose = 'đối soát với hệ thống một cửa tỉnh' WHERE id = 40");
    assert!(verify_log(&mut *s).broken.is_none(), "restored");
    // A removed entry shows at the gap.
    b.raw("DELETE FROM access_log WHERE id = 77");
    let v = verify_log(&mut *s);
    assert_eq!(v.broken.as_ref().map(|b| b.id), Some(77), "{:?}", v.broken);
    // The next append follows the last entry, not the gap.
    let e = s.access_append(&access(999), &now()).expect("appends");
    assert_eq!(e.id, 121);
    assert_eq!(e.prev, all[119].hash);
}
