//! Creating dossiers, changing status, receipts, refusals.

use std::thread;

use motcua_counter::clock::{Quality, Reading};
use motcua_counter::domain::status::Status;
use motcua_counter::store::read::Query;
use motcua_counter::store::{Refusal, StoreError, Writer};
use motcua_protocol::{Hash32, Submission, UtcTime, verify};
use time::Duration;

use crate::support::*;

#[test]
fn a_dossier_gets_a_code_an_appointment_and_a_signed_journal_entry() {
    let s = TestStore::new();
    let c = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    assert_eq!(c.dossier.code, "H49.12.3-261126-1001");
    assert_eq!(c.seq, 1);
    // 3 working days from Thursday 26/11, with Friday 27/11 a holiday: Mon, Tue, Wed.
    assert_eq!(
        c.dossier.appointment_at.to_string(),
        "2026-12-02T02:30:00.000Z"
    );
    assert_eq!(c.dossier.status, Status::ACCEPTED);
    assert_eq!(c.dossier.collect_at, "Bộ phận Một cửa UBND xã Tam Thăng");
    let r = s.reader();
    let stored = r.dossier(&c.dossier.code).expect("read").expect("present");
    assert_eq!(stored.dossier.as_ref(), Some(&c.dossier));
    assert!(!stored.synced);
    let pending = r.unsynced(0, 10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].hash, Hash32::of(&pending[0].envelope));
    let report = r.verify_journal().expect("reads").expect("intact");
    assert_eq!((report.records, report.signatures), (1, 1));
}

#[test]
fn codes_follow_the_counter_block_and_the_day() {
    let s = TestStore::with_counter(3);
    let a = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let b = s
        .w()
        .create(input(2), staff())
        .expect("no failure")
        .expect("stored");
    assert_eq!(a.dossier.code, "H49.12.3-261126-3001");
    assert_eq!(b.dossier.code, "H49.12.3-261126-3002");
    // 17:30 UTC is 00:30 the next day in Vietnam: a new day, a new sequence.
    s.clock.set(T0 + Duration::hours(15), true);
    let c = s
        .w()
        .create(input(3), staff())
        .expect("no failure")
        .expect("stored");
    assert_eq!(c.dossier.code, "H49.12.3-261127-3001");
}

#[test]
fn invalid_input_stores_nothing_and_consumes_no_seq() {
    let s = TestStore::new();
    let mut bad = input(1);
    bad.applicant.id_number = "123".into();
    bad.procedure = "9.999999".into();
    let err = s
        .w()
        .create(bad, staff())
        .expect("no failure")
        .expect_err("refused");
    let Refusal::Invalid(i) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(i.codes(), vec!["procedure_unknown", "id_number_format"]);
    assert_eq!(err.for_clerk().0.len(), 2);
    let ok = s
        .w()
        .create(input(2), staff())
        .expect("no failure")
        .expect("stored");
    assert_eq!(
        (ok.seq, ok.dossier.code.as_str()),
        (1, "H49.12.3-261126-1001")
    );
}

#[test]
fn concurrent_submitters_share_commits_without_gaps_or_duplicates() {
    let s = TestStore::new();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let w = s.w();
            thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        w.create(input(t * 100 + i), staff())
                            .expect("no failure")
                            .expect("stored")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort_by_key(|c| c.seq);
    assert_eq!(
        all.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (1..=320).collect::<Vec<_>>()
    );
    let mut codes: Vec<_> = all.iter().map(|c| c.dossier.code.clone()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 320);
    assert_eq!(
        s.reader()
            .verify_journal()
            .expect("reads")
            .expect("intact")
            .records,
        320
    );
}

#[test]
fn status_changes_follow_the_lifecycle_and_are_journaled() {
    let s = TestStore::new();
    let code = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let ch = s
        .w()
        .set_status(
            &code,
            Status::IN_PROCESS,
            staff(),
            Some("Chuyển phòng Tư pháp".into()),
        )
        .expect("no failure")
        .expect("allowed");
    assert_eq!(
        (ch.from, ch.to, ch.seq),
        (Status::ACCEPTED, Status::IN_PROCESS, 2)
    );
    let err = s
        .w()
        .set_status(&code, Status::RETURNED, staff(), None)
        .expect("no failure")
        .expect_err("not allowed");
    let Refusal::Invalid(i) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(i.codes(), vec!["status_transition"]);
    assert!(i.0[0].message.contains("Đang xử lý"), "{}", i.0[0].message);
    assert!(matches!(
        s.w()
            .set_status("H49.12.3-261126-9999", Status::IN_PROCESS, staff(), None),
        Ok(Err(Refusal::NotFound(_)))
    ));
    let r = s.reader();
    assert_eq!(
        r.dossier(&code).expect("read").expect("present").status,
        Status::IN_PROCESS
    );
    assert_eq!(r.unsynced(0, 10).expect("pending").len(), 2);
    assert_eq!(
        r.verify_journal().expect("reads").expect("intact").records,
        2
    );
}

#[test]
fn only_a_matching_dc_receipt_marks_records_synced() {
    let s = TestStore::new();
    for i in 0..5 {
        s.w()
            .create(input(i), staff())
            .expect("no failure")
            .expect("stored");
    }
    let r = s.reader();
    let pending = r.unsynced(0, 10).expect("pending");
    // A receipt by another key is refused.
    let forged = {
        let rc = motcua_protocol::Receipt {
            v: 1,
            device: device(),
            seq: 3,
            hash: pending[2].hash,
            at: UtcTime::new(T0),
        };
        motcua_protocol::sign(&rc, &device_key()).expect("signs")
    };
    assert!(matches!(
        s.w().accept_receipt(forged, dc_key().verifying_key()),
        Ok(Err(Refusal::Receipt(_)))
    ));
    // A receipt naming another envelope at seq 3 is a fork.
    let fork = s.receipt(3, Hash32::of(b"other"));
    assert!(matches!(
        s.w().accept_receipt(fork, dc_key().verifying_key()),
        Ok(Err(Refusal::Fork { seq: 3, .. }))
    ));
    // Beyond our head: refused.
    let beyond = s.receipt(9, Hash32::of(b"x"));
    assert!(matches!(
        s.w().accept_receipt(beyond, dc_key().verifying_key()),
        Ok(Err(Refusal::Receipt(_)))
    ));
    assert_eq!(
        r.counts("2026-11-26", &UtcTime::new(T0))
            .expect("counts")
            .unsynced,
        5
    );
    // The right one marks 1..=3.
    let good = s.receipt(3, pending[2].hash);
    let synced = s
        .w()
        .accept_receipt(good.clone(), dc_key().verifying_key())
        .expect("no failure")
        .expect("accepted");
    assert_eq!((synced.through, synced.newly), (3, 3));
    let again = s
        .w()
        .accept_receipt(good, dc_key().verifying_key())
        .expect("no failure")
        .expect("idempotent");
    assert_eq!(again.newly, 0);
    let counts = r.counts("2026-11-26", &UtcTime::new(T0)).expect("counts");
    assert_eq!(
        (counts.unsynced, counts.synced_through, counts.head_seq),
        (2, 3, 5)
    );
    assert!(counts.last_receipt_at.is_some());
    assert_eq!(
        r.unsynced(0, 10)
            .expect("pending")
            .iter()
            .map(|p| p.seq)
            .collect::<Vec<_>>(),
        vec![4, 5]
    );
}

#[test]
fn pruning_removes_old_synced_personal_data_and_never_unsynced_records() {
    let s = TestStore::new();
    let a = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let b = s
        .w()
        .create(input(2), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    s.w()
        .set_status(
            &a,
            Status::REFUSED,
            staff(),
            Some("Hồ sơ không thuộc thẩm quyền".into()),
        )
        .expect("no failure")
        .expect("allowed");
    s.w()
        .set_status(
            &b,
            Status::REFUSED,
            staff(),
            Some("Hồ sơ không thuộc thẩm quyền".into()),
        )
        .expect("no failure")
        .expect("allowed");
    let pending = s.reader().unsynced(0, 10).expect("pending");
    // The DC has 1..=3 (a's two records and b's creation), not b's status change.
    s.w()
        .accept_receipt(s.receipt(3, pending[2].hash), dc_key().verifying_key())
        .expect("no failure")
        .expect("accepted");
    s.clock.advance(Duration::days(400));
    let p = s
        .w()
        .prune(Duration::days(365))
        .expect("no failure")
        .expect("pruned");
    assert_eq!(p.envelopes, 3, "synced envelopes go");
    assert_eq!(
        p.dossiers, 1,
        "only the dossier whose every record is synced"
    );
    let r = s.reader();
    let da = r.dossier(&a).expect("read").expect("row stays");
    assert!(da.dossier.is_none() && da.pruned_at.is_some());
    assert!(
        r.dossier(&b)
            .expect("read")
            .expect("present")
            .dossier
            .is_some()
    );
    assert_eq!(
        r.unsynced(0, 10).expect("pending").len(),
        1,
        "the unsynced envelope is untouched"
    );
    assert!(
        r.search(
            &Query {
                id_number: Some("049301000123".into()),
                ..Query::default()
            },
            &UtcTime::new(T0)
        )
        .expect("search")
        .iter()
        .all(|x| x.code.to_string() == b)
    );
    // The chain still verifies: pruned records keep their hash links.
    let report = r.verify_journal().expect("reads").expect("intact");
    assert_eq!((report.records, report.signatures), (4, 1));
    // And the next record continues the chain after a restart.
    drop(r);
    let mut s = s;
    s.reopen();
    assert_eq!(
        s.w()
            .create(input(3), staff())
            .expect("no failure")
            .expect("stored")
            .seq,
        5
    );
    assert!(s.reader().verify_journal().expect("reads").is_ok());
}

#[test]
fn below_the_free_space_floor_new_records_are_refused_and_reads_go_on() {
    let mut s = TestStore::new();
    let code = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    s.min_free = u64::MAX;
    s.reopen();
    let err = s
        .w()
        .create(input(2), staff())
        .expect("no failure")
        .expect_err("refused");
    assert!(matches!(err, Refusal::DiskFull { .. }), "{err:?}");
    assert_eq!(err.for_clerk().codes(), vec!["disk_full"]);
    assert!(matches!(
        s.w().set_status(&code, Status::IN_PROCESS, staff(), None),
        Ok(Err(Refusal::DiskFull { .. }))
    ));
    // Receipts still apply: they free the way for pruning.
    let pending = s.reader().unsynced(0, 10).expect("pending");
    s.w()
        .accept_receipt(s.receipt(1, pending[0].hash), dc_key().verifying_key())
        .expect("no failure")
        .expect("receipts go on");
    assert!(s.reader().dossier(&code).expect("reads go on").is_some());
}

#[test]
fn a_repeat_below_the_free_space_floor_gets_what_the_first_request_stored() {
    use motcua_counter::domain::intent::Intent;
    let mut s = TestStore::new();
    let intent =
        |n: u32| Intent::new("form-0123456789abcdef", &input(n).canonical()).expect("valid key");
    let first = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("stored");
    let move_key = Intent::new("move-0123456789abcdef", b"4").expect("valid key");
    let moved = s
        .w()
        .set_status_once(
            &first.dossier.code,
            Status::IN_PROCESS,
            staff(),
            None,
            move_key.clone(),
        )
        .expect("no failure")
        .expect("moved");
    // The disk fills between the first click and the second.
    s.min_free = u64::MAX;
    s.reopen();
    let again = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("the first dossier, not disk full");
    assert!(again.repeated);
    assert_eq!(again.dossier.code, first.dossier.code);
    let twice = s
        .w()
        .set_status_once(
            &first.dossier.code,
            Status::IN_PROCESS,
            staff(),
            None,
            move_key,
        )
        .expect("no failure")
        .expect("the first move, not disk full");
    assert!(twice.repeated);
    assert_eq!(twice.seq, moved.seq);
    // Anything new is still refused.
    let other = Intent::new("form-fedcba9876543210", &input(2).canonical()).expect("valid key");
    let err = s
        .w()
        .create_once(input(2), staff(), other)
        .expect("no failure")
        .expect_err("refused");
    assert!(matches!(err, Refusal::DiskFull { .. }), "{err:?}");
    assert_eq!(s.reader().unsynced(0, 10).expect("journal").len(), 2);
}

#[test]
fn a_clock_that_lost_its_time_refuses_new_records() {
    let s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    // After a power cut without RTC: 1970, not synced.
    s.clock.set(time::OffsetDateTime::UNIX_EPOCH, false);
    let err = s
        .w()
        .create(input(2), staff())
        .expect("no failure")
        .expect_err("refused");
    assert_eq!(err.for_clerk().codes(), vec!["clock_wrong"]);
    // Two days behind the last record, unsynced: still wrong.
    s.clock.set(T0 - Duration::days(2), false);
    assert!(matches!(
        s.w().create(input(3), staff()),
        Ok(Err(Refusal::ClockWrong { .. }))
    ));
    // A small step back is normal, and an NTP-synchronised clock is trusted.
    s.clock.set(T0 - Duration::minutes(5), false);
    s.w()
        .create(input(4), staff())
        .expect("no failure")
        .expect("small step back is fine");
    s.clock.set(T0 - Duration::days(2), true);
    s.w()
        .create(input(5), staff())
        .expect("no failure")
        .expect("synced clock is trusted");
}

#[test]
fn a_time_derived_from_the_dc_is_signed_as_such() {
    let s = TestStore::new();
    // No battery, no NTP: the clock reads 2000 and the agent has learnt
    // the DC's time from a receipt (within 400 ms).
    s.clock.set_reading(Reading {
        at: T0,
        quality: Quality::Dc { bound_ms: 400 },
    });
    let created = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let pending = s.reader().unsynced(0, 10).expect("journal");
    let env = verify::<Submission>(&pending[0].envelope, &s.config().key.verifying_key())
        .expect("verifies")
        .message;
    assert_eq!((env.v, env.clock, env.clock_dc), (2, false, Some(400)));
    assert_eq!(env.at, UtcTime::new(T0));
    let stored = s
        .reader()
        .dossier(&created.dossier.code)
        .expect("read")
        .expect("found")
        .dossier
        .expect("personal data kept");
    assert_eq!((stored.clock_synced, stored.clock_dc), (false, Some(400)));
    // Synchronised again: version 1, as before.
    s.clock.set(T0 + Duration::minutes(1), true);
    s.w()
        .create(input(2), staff())
        .expect("no failure")
        .expect("stored");
    let pending = s.reader().unsynced(0, 10).expect("journal");
    let env = verify::<Submission>(&pending[1].envelope, &s.config().key.verifying_key())
        .expect("verifies")
        .message;
    assert_eq!((env.v, env.clock, env.clock_dc), (1, true, None));
    // A derived time is trusted like a synchronised one: two days behind
    // the last record (stamped by a clock running ahead) is accepted.
    s.clock.set_reading(Reading {
        at: T0 - Duration::days(2),
        quality: Quality::Dc { bound_ms: 900 },
    });
    s.w()
        .create(input(3), staff())
        .expect("no failure")
        .expect("a DC-derived time is trusted");
}

#[test]
fn a_store_belongs_to_one_device() {
    let mut s = TestStore::new();
    let mut cfg = s.config();
    cfg.device = "another-device".parse().expect("valid");
    s.stop();
    assert!(matches!(
        Writer::start(cfg).map(|_| ()),
        Err(StoreError::WrongDevice { .. })
    ));
}

#[test]
fn search_finds_by_code_id_name_without_diacritics_day_and_overdue() {
    let s = TestStore::new();
    let a = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let mut other = input(2);
    other.applicant.name = "Trần Văn Đức".into();
    other.applicant.id_number = "048085000123".into();
    let b = s
        .w()
        .create(other, staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let r = s.reader();
    let now = UtcTime::new(T0);
    let find = |q: Query| {
        r.search(&q, &now)
            .expect("search")
            .into_iter()
            .map(|x| x.code.to_string())
            .collect::<Vec<_>>()
    };
    let by_name = |n: &str| {
        find(Query {
            name: Some(n.into()),
            ..Query::default()
        })
    };
    assert_eq!(by_name("tran van duc"), vec![b.clone()]);
    assert_eq!(by_name("ĐỨC"), vec![b.clone()]);
    assert_eq!(by_name("thu ha"), vec![a.clone()]);
    assert_eq!(
        find(Query {
            id_number: Some("049 301 000 123".into()),
            ..Query::default()
        }),
        vec![a.clone()]
    );
    assert_eq!(
        find(Query {
            code: Some("H49.12.3-261126-100".into()),
            ..Query::default()
        }),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        find(Query {
            day: Some("2026-11-26".into()),
            ..Query::default()
        })
        .len(),
        2
    );
    assert!(
        find(Query {
            day: Some("2026-11-25".into()),
            ..Query::default()
        })
        .is_empty()
    );
    let later = UtcTime::new(T0 + Duration::days(30));
    let overdue = r
        .search(
            &Query {
                overdue: true,
                ..Query::default()
            },
            &later,
        )
        .expect("search");
    assert_eq!(overdue.len(), 2);
    assert!(overdue.iter().all(|x| x.overdue));
    assert_eq!(r.counts("2026-11-26", &later).expect("counts").overdue, 2);
}

#[test]
fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let mode = std::fs::metadata(s.db())
        .expect("exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn an_older_reference_version_never_replaces_a_newer_one() {
    let s = TestStore::new();
    let old = motcua_counter::store::reference::import(&s.w(), reference_data(1), &now());
    assert!(matches!(
        old,
        Err(motcua_counter::store::reference::ImportError::NotNewer {
            offered: 1,
            current: 1
        })
    ));
    motcua_counter::store::reference::import(&s.w(), reference_data(2), &now()).expect("newer");
}

#[test]
fn shutdown_does_not_wait_for_handles_held_elsewhere() {
    let mut s = TestStore::new();
    let kept = s.w();
    kept.create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    s.stop(); // must return although `kept` is alive
    assert!(matches!(
        kept.create(input(2), staff()),
        Err(StoreError::WriterGone)
    ));
    s.start();
    assert_eq!(
        s.w()
            .create(input(3), staff())
            .expect("no failure")
            .expect("stored")
            .seq,
        2
    );
}

#[test]
fn search_terms_are_literal_not_wildcards() {
    let s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let r = s.reader();
    let now = UtcTime::new(T0);
    for term in ["%", "_", "thu%ha"] {
        let q = Query {
            name: Some(term.into()),
            ..Query::default()
        };
        assert!(r.search(&q, &now).expect("search").is_empty(), "{term}");
    }
    let q = Query {
        code: Some("H49.12.3-261126-1_01".into()),
        ..Query::default()
    };
    assert!(r.search(&q, &now).expect("search").is_empty());
}

#[test]
fn a_status_note_with_control_characters_is_refused() {
    let s = TestStore::new();
    let code = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let err = s
        .w()
        .set_status(
            &code,
            Status::IN_PROCESS,
            staff(),
            Some("a\u{0007}b".into()),
        )
        .expect("no failure")
        .expect_err("refused");
    let Refusal::Invalid(i) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(i.codes(), vec!["control_characters"]);
}

#[test]
fn a_day_both_holiday_and_working_day_is_refused() {
    let s = TestStore::new();
    let mut data = reference_data(5);
    data.workdays
        .push(motcua_counter::store::reference::CalendarDay {
            day: "2026-11-27".into(),
            name: None,
        });
    let err = motcua_counter::store::reference::import(&s.w(), data, &now()).expect_err("refused");
    assert!(err.to_string().contains("2026-11-27"), "{err}");
}

#[test]
fn the_last_receipt_time_follows_the_latest_receipt_even_for_the_same_seq() {
    let s = TestStore::new();
    s.w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored");
    let hash = s.reader().unsynced(0, 1).expect("pending")[0].hash;
    s.w()
        .accept_receipt(s.receipt(1, hash), dc_key().verifying_key())
        .expect("no failure")
        .expect("accepted");
    let first = s
        .reader()
        .counts("2026-11-26", &UtcTime::new(T0))
        .expect("counts")
        .last_receipt_at;
    s.clock.advance(Duration::hours(1));
    s.w()
        .accept_receipt(s.receipt(1, hash), dc_key().verifying_key())
        .expect("no failure")
        .expect("accepted again");
    let second = s
        .reader()
        .counts("2026-11-26", &UtcTime::new(T0))
        .expect("counts")
        .last_receipt_at;
    assert!(second > first, "{first:?} then {second:?}");
}

#[test]
fn one_intent_gives_one_dossier_even_after_a_restart() {
    use motcua_counter::domain::intent::Intent;
    let mut s = TestStore::new();
    let key = "form-0123456789abcdef";
    let intent = |n: u32| Intent::new(key, &input(n).canonical()).expect("valid key");
    let first = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("stored");
    assert!(!first.repeated);
    // A double-click: the same request with the same key.
    let again = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("answered");
    assert!(again.repeated);
    assert_eq!(again.dossier.code, first.dossier.code);
    assert_eq!(again.seq, first.seq);
    // The same key with another request is refused, nothing stored.
    let other = s
        .w()
        .create_once(input(2), staff(), intent(2))
        .expect("no failure");
    assert!(
        matches!(&other, Err(Refusal::Invalid(i)) if i.codes() == ["idempotency_key_reused"]),
        "{other:?}"
    );
    // Across a restart.
    s.reopen();
    let after = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("answered");
    assert!(after.repeated);
    assert_eq!(after.dossier.code, first.dossier.code);
    assert_eq!(s.reader().unsynced(0, 10).expect("journal").len(), 1);

    // A status change repeated with its key is made once.
    let move_key = Intent::new("move-0123456789abcdef", b"4").expect("valid key");
    let moved = s
        .w()
        .set_status_once(
            &first.dossier.code,
            Status::IN_PROCESS,
            staff(),
            None,
            move_key.clone(),
        )
        .expect("no failure")
        .expect("moved");
    let twice = s
        .w()
        .set_status_once(
            &first.dossier.code,
            Status::IN_PROCESS,
            staff(),
            None,
            move_key,
        )
        .expect("no failure")
        .expect("answered");
    assert!(!moved.repeated && twice.repeated);
    assert_eq!(twice.seq, moved.seq);
    assert_eq!(
        (twice.from, twice.to),
        (Status::ACCEPTED, Status::IN_PROCESS)
    );
    assert_eq!(s.reader().unsynced(0, 10).expect("journal").len(), 2);

    // The reception's key used for a status move is refused, and so is
    // the move's key with another move.
    let wrong_kind = s
        .w()
        .set_status_once(
            &first.dossier.code,
            Status::PAYMENT,
            staff(),
            None,
            Intent::new(key, b"6").expect("valid key"),
        )
        .expect("no failure");
    assert!(
        matches!(&wrong_kind, Err(Refusal::Invalid(i)) if i.codes() == ["idempotency_key_reused"]),
        "{wrong_kind:?}"
    );

    // A repeat of the reception now answers with the dossier as it is.
    let now = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure")
        .expect("answered");
    assert_eq!(now.dossier.status, Status::IN_PROCESS);

    // What the store keeps with a key holds no personal data: not in any
    // column, and the fingerprint is not the request's plain digest.
    let conn = rusqlite::Connection::open(s.db()).expect("opens");
    let rows: Vec<(String, Vec<u8>, String)> = conn
        .prepare(
            "SELECT key || kind || code || seq || result || at, fingerprint, result FROM intents",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("reads intents");
    assert_eq!(rows.len(), 2);
    let plain = motcua_protocol::Hash32::of(&input(1).canonical());
    for (text, fingerprint, _) in &rows {
        for personal in ["Nguyễn", "049301000123", "0905123456", "Phú Thạnh"] {
            assert!(
                !text.contains(personal),
                "{personal} kept with a key: {text}"
            );
        }
        assert_ne!(fingerprint.as_slice(), plain.0.as_slice());
    }

    // Once the dossier's personal data is pruned, a repeat has nothing to
    // answer with and makes no second dossier.
    conn.execute(
        "UPDATE dossiers SET data = NULL, name_folded = NULL, id_number = NULL WHERE code = ?",
        [&first.dossier.code],
    )
    .expect("prunes");
    drop(conn);
    let expired = s
        .w()
        .create_once(input(1), staff(), intent(1))
        .expect("no failure");
    assert!(
        matches!(&expired, Err(Refusal::Invalid(i)) if i.codes() == ["idempotency_key_expired"]),
        "{expired:?}"
    );
    assert_eq!(s.reader().unsynced(0, 10).expect("journal").len(), 2);
}

#[test]
fn ending_a_dossier_needs_a_reason() {
    let s = TestStore::new();
    let code = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let in_process = s
        .w()
        .set_status(&code, Status::IN_PROCESS, staff(), None)
        .expect("no failure")
        .expect("a move that needs no reason");
    assert_eq!(in_process.to, Status::IN_PROCESS);
    // A request to supplement needs its list (form 02 prints it), and the
    // moves that end the dossier need their reason.
    for to in [Status::SUPPLEMENT, Status::STOPPED, Status::WITHDRAWN] {
        let r = s
            .w()
            .set_status(&code, to, staff(), Some("  ".into()))
            .expect("no failure");
        assert!(
            matches!(&r, Err(Refusal::Invalid(i)) if i.codes() == ["reason_required"]),
            "{r:?}"
        );
    }
    s.w()
        .set_status(
            &code,
            Status::WITHDRAWN,
            staff(),
            Some("Công dân xin rút".into()),
        )
        .expect("no failure")
        .expect("withdrawn with a reason");
}

#[test]
fn an_apology_gives_a_late_dossier_a_new_appointment_and_it_stays_late() {
    use motcua_counter::clock::Clock;
    use motcua_counter::domain::intent::Intent;
    use motcua_counter::store::read::Change;
    use time::macros::datetime;
    let s = TestStore::new();
    let code = s
        .w()
        .create(input(1), staff())
        .expect("no failure")
        .expect("stored")
        .dossier
        .code;
    let local = |d: time::OffsetDateTime| d.to_offset(time::macros::offset!(+7));
    let key = |n: u8| Intent::new(&format!("apology-0123456789-{n}"), &[n]).expect("valid key");
    let refusal =
        |r: &motcua_counter::store::Answer<motcua_counter::store::writer::Rescheduled>| match r {
            Ok(Err(Refusal::Invalid(i))) => i.codes().join(","),
            other => panic!("expected a refusal, got {other:?}"),
        };
    // Received Thursday 26/11 09:30, three working days with Friday 27/11
    // a holiday: due Wednesday 02/12 09:30. It is now Thursday 03/12: late.
    s.clock.advance(Duration::days(7));
    let friday = local(datetime!(2026-12-04 17:00 +7));
    let no_reason = s
        .w()
        .reschedule_once(&code, friday, staff(), Some(" ".into()), key(1));
    assert_eq!(refusal(&no_reason), "reason_required");
    let earlier = s.w().reschedule_once(
        &code,
        local(datetime!(2026-12-01 17:00 +7)),
        staff(),
        Some("Chờ xác minh".into()),
        key(2),
    );
    assert_eq!(refusal(&earlier), "appointment_not_later");
    let saturday = s.w().reschedule_once(
        &code,
        local(datetime!(2026-12-05 10:00 +7)),
        staff(),
        Some("Chờ xác minh".into()),
        key(3),
    );
    assert_eq!(refusal(&saturday), "appointment_not_working_day");
    assert_eq!(
        s.reader().unsynced(0, 10).expect("journal").len(),
        1,
        "nothing signed"
    );

    let done = s
        .w()
        .reschedule_once(&code, friday, staff(), Some("Chờ xác minh".into()), key(4))
        .expect("no failure")
        .expect("rescheduled");
    assert!(!done.repeated);
    assert_eq!(done.to, UtcTime::new(friday));
    let again = s
        .w()
        .reschedule_once(&code, friday, staff(), Some("Chờ xác minh".into()), key(4))
        .expect("no failure")
        .expect("answered");
    assert!(again.repeated);
    assert_eq!(
        (again.seq, again.from, again.to),
        (done.seq, done.from, done.to)
    );
    assert_eq!(
        s.reader().unsynced(0, 10).expect("journal").len(),
        2,
        "one record"
    );

    // The signed record a printed form 04 rests on.
    let changes = s.reader().changes(&code).expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].seq, done.seq);
    assert_eq!(
        changes[0].change,
        Change::Rescheduled {
            from: done.from,
            to: done.to
        }
    );
    assert_eq!(changes[0].note.as_deref(), Some("Chờ xác minh"));
    // The new appointment is kept; the legal one is not moved, so the
    // dossier is still late.
    let stored = s.reader().dossier(&code).expect("reads").expect("exists");
    assert_eq!(stored.rescheduled_at, Some(done.to));
    let now = UtcTime::new(s.clock.now().at);
    let found = s
        .reader()
        .search(
            &Query {
                code: Some(code.clone()),
                ..Query::default()
            },
            &now,
        )
        .expect("search");
    assert!(found[0].overdue);
    assert_eq!(found[0].rescheduled_at, Some(done.to));

    // A dossier whose deadline ended has nothing to reschedule.
    s.w()
        .set_status(
            &code,
            Status::WITHDRAWN,
            staff(),
            Some("Công dân xin rút".into()),
        )
        .expect("no failure")
        .expect("withdrawn");
    let ended = s.w().reschedule_once(
        &code,
        local(datetime!(2026-12-07 17:00 +7)),
        staff(),
        Some("Chờ xác minh".into()),
        key(5),
    );
    assert_eq!(refusal(&ended), "deadline_ended");
}
