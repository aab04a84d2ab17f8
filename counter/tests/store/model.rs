//! Model-based test: random sequences of actions run against the real
//! store and a simple in-memory model; after each action they must agree.

use motcua_counter::domain::status::Status;
use motcua_counter::store::Refusal;
use motcua_protocol::UtcTime;
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use crate::support::*;

#[derive(Debug, Clone)]
enum Action {
    Create,
    SetStatus { dossier: usize, to: u8 },
    Receipt { upto: usize },
    Advance { days: i64 },
    Prune { days: i64 },
    Reopen,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Create),
        3 => (any::<usize>(), 1u8..=10).prop_map(|(dossier, to)| Action::SetStatus { dossier, to }),
        2 => any::<usize>().prop_map(|upto| Action::Receipt { upto }),
        1 => (1i64..100).prop_map(|days| Action::Advance { days }),
        1 => (0i64..60).prop_map(|days| Action::Prune { days }),
        1 => Just(Action::Reopen),
    ]
}

/// One journal record, as the model sees it.
#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    at: OffsetDateTime,
    synced: bool,
    pruned: bool,
}

#[derive(Default)]
struct Model {
    records: Vec<Rec>,
    dossiers: Vec<(String, Status)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_journal_agrees_with_a_simple_model(actions in prop::collection::vec(action(), 1..40)) {
        let mut s = TestStore::new();
        let mut m = Model::default();
        for a in actions {
            let now = s.clock.now_at();
            match a {
                Action::Create => {
                    let c = s.w().create(input(m.records.len() as u32), staff()).expect("no failure").expect("stored");
                    prop_assert_eq!(c.seq, m.records.len() as u64 + 1);
                    m.records.push(Rec { seq: c.seq, at: now, synced: false, pruned: false });
                    m.dossiers.push((c.dossier.code, Status::ACCEPTED));
                }
                Action::SetStatus { dossier, to } => {
                    if m.dossiers.is_empty() { continue; }
                    let i = dossier % m.dossiers.len();
                    let to = Status::try_from(to).expect("1..=10");
                    let (code, from) = m.dossiers[i].clone();
                    let note = to.needs_reason().then(|| "Lý do".to_owned());
                    let r = s.w().set_status(&code, to, staff(), note);
                    if from.may_become(to) {
                        let ch = r.expect("no failure").expect("allowed");
                        prop_assert_eq!(ch.seq, m.records.len() as u64 + 1);
                        m.records.push(Rec { seq: ch.seq, at: now, synced: false, pruned: false });
                        m.dossiers[i].1 = to;
                    } else {
                        prop_assert!(matches!(r, Ok(Err(Refusal::Invalid(_)))), "{:?}", r);
                    }
                }
                Action::Receipt { upto } => {
                    if m.records.is_empty() { continue; }
                    let seq = (upto % m.records.len()) as u64 + 1;
                    let hash = s.reader().connection()
                        .query_row("SELECT hash FROM journal WHERE seq = ?", [seq as i64], |r| r.get::<_, Vec<u8>>(0))
                        .expect("hash");
                    let hash = motcua_protocol::Hash32(hash.try_into().expect("32 bytes"));
                    s.w().accept_receipt(s.receipt(seq, hash), dc_key().verifying_key()).expect("no failure").expect("accepted");
                    for r in m.records.iter_mut().filter(|r| r.seq <= seq) { r.synced = true; }
                }
                Action::Advance { days } => s.clock.advance(Duration::days(days)),
                Action::Prune { days } => {
                    let p = s.w().prune(Duration::days(days)).expect("no failure").expect("pruned");
                    let cutoff = now - Duration::days(days);
                    let mut expected = 0;
                    for r in m.records.iter_mut().filter(|r| r.synced && !r.pruned && UtcTime::new(r.at) < UtcTime::new(cutoff)) {
                        r.pruned = true;
                        expected += 1;
                    }
                    prop_assert_eq!(p.envelopes, expected);
                }
                Action::Reopen => s.reopen(),
            }
            // After every action: the same unsynced list, the same head,
            // an intact chain, and every unsynced envelope still present.
            let r = s.reader();
            let pending = r.unsynced(0, usize::MAX >> 1).expect("pending");
            let expected: Vec<u64> = m.records.iter().filter(|r| !r.synced).map(|r| r.seq).collect();
            prop_assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), expected);
            let report = r.verify_journal().expect("reads").expect("intact");
            prop_assert_eq!(report.records, m.records.len() as u64);
            prop_assert_eq!(report.signatures, m.records.iter().filter(|r| !r.pruned).count() as u64);
            prop_assert_eq!(report.synced, m.records.iter().filter(|r| r.synced).count() as u64);
        }
    }
}
