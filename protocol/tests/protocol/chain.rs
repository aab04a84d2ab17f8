//! Chain classification: a table of cases, and a delivery model.

use std::collections::BTreeMap;

use motcua_protocol::chain::{compare_stored, next_after};
use motcua_protocol::{
    ChainHead, Classification, ConflictKind, Hash32, Link, Submission, classify, sign, verify,
};
use proptest::prelude::*;

use crate::support::*;

fn h(n: u8) -> Hash32 {
    if n == 0 {
        Hash32::ZERO
    } else {
        Hash32([n; 32])
    }
}

/// One row: head (seq, hash byte), link (seq, prev byte, hash byte), class.
fn check(head: (u64, u8), link: (u64, u8, u8), expected: Classification) {
    let head = ChainHead {
        seq: head.0,
        hash: h(head.1),
    };
    let link = Link {
        seq: link.0,
        prev: h(link.1),
        hash: h(link.2),
    };
    assert_eq!(
        classify(&head, &link),
        expected,
        "head {head:?}, link {link:?}"
    );
}

#[test]
fn classification_table() {
    use Classification::*;
    // empty chain
    check((0, 0), (1, 0, 1), Next);
    check((0, 0), (1, 9, 1), Conflict(ConflictKind::BrokenLink));
    check((0, 0), (2, 1, 2), Gap { expected: 1 });
    // chain at 5, hash 5
    check((5, 5), (6, 5, 6), Next);
    check((5, 5), (6, 4, 6), Conflict(ConflictKind::BrokenLink));
    check((5, 5), (5, 4, 5), Duplicate);
    check((5, 5), (5, 4, 7), Conflict(ConflictKind::Rewrite));
    check((5, 5), (7, 6, 7), Gap { expected: 6 });
    check((5, 5), (1_000, 9, 9), Gap { expected: 6 });
    check((5, 5), (4, 3, 4), Stale);
    check((5, 5), (1, 0, 1), Stale);
    // stale ones are settled against the stored copy
    assert_eq!(compare_stored(&h(4), &h(4)), Duplicate);
    assert_eq!(
        compare_stored(&h(4), &h(8)),
        Conflict(ConflictKind::Rewrite)
    );
    assert_eq!(next_after(&ChainHead { seq: 5, hash: h(5) }), (6, h(5)));
    assert_eq!(next_after(&ChainHead::EMPTY), (1, Hash32::ZERO));
}

/// A minimal receiver built only from the chain rules: what the DC will do.
#[derive(Default)]
struct Receiver {
    head: Option<ChainHead>,
    stored: Vec<Hash32>,
    held: BTreeMap<u64, Link>,
    conflicts: usize,
}

impl Receiver {
    fn receive(&mut self, link: Link) {
        let head = self.head.unwrap_or(ChainHead::EMPTY);
        match classify(&head, &link) {
            Classification::Next => {
                self.stored.push(link.hash);
                self.head = Some(ChainHead {
                    seq: link.seq,
                    hash: link.hash,
                });
                if let Some(next) = self.held.remove(&(link.seq + 1)) {
                    self.receive(next);
                }
            }
            Classification::Gap { .. } => {
                self.held.insert(link.seq, link);
            }
            Classification::Stale => {
                let stored = self.stored[(link.seq - 1) as usize];
                if compare_stored(&stored, &link.hash) != Classification::Duplicate {
                    self.conflicts += 1;
                }
            }
            Classification::Duplicate => {}
            Classification::Conflict(_) => self.conflicts += 1,
        }
    }
}

fn links(n: u64) -> Vec<Link> {
    chain(n)
        .into_iter()
        .map(|(bytes, _)| {
            verify::<Submission>(&bytes, &device_key().verifying_key())
                .expect("valid")
                .link()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the delivery order and however often each envelope arrives
    /// (MQTT QoS 1, two receivers, reconnects), the receiver ends with the
    /// exact chain, in order, and sees no conflict.
    #[test]
    fn any_order_with_duplicates_yields_the_exact_chain(
        order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0..12usize, 0..12),
    ) {
        let all = links(12);
        let mut r = Receiver::default();
        for i in order.iter().chain(dups.iter()) {
            r.receive(all[*i]);
        }
        prop_assert_eq!(r.conflicts, 0);
        prop_assert_eq!(r.stored, all.iter().map(|l| l.hash).collect::<Vec<_>>());
    }

    /// A second, validly signed envelope for any seq (a fork: a restored
    /// backup, a cloned SD card, a tampering device), delivered at any point,
    /// is always detected as a conflict, and what is stored stays one
    /// unbroken chain. Which of the two came first decides which is stored;
    /// the other is evidence.
    #[test]
    fn a_fork_is_always_detected(at in 0..8usize, when in 0..9usize) {
        let all = links(8);
        let mut forged = created(all[at].seq, all[at].prev);
        forged.staff = "someone.else".parse().expect("valid");
        let bytes = sign(&forged, &device_key()).expect("signs");
        let forged = verify::<Submission>(&bytes, &device_key().verifying_key()).expect("valid").link();
        let mut r = Receiver::default();
        for (i, link) in all.iter().enumerate() {
            if i == when { r.receive(forged); }
            r.receive(*link);
        }
        if when == all.len() { r.receive(forged); }
        prop_assert!(r.conflicts >= 1);
        let stored_links: Vec<Link> = r
            .stored
            .iter()
            .map(|h| *all.iter().chain(std::iter::once(&forged)).find(|l| l.hash == *h).expect("known"))
            .collect();
        let mut head = ChainHead::EMPTY;
        for l in stored_links {
            prop_assert_eq!(classify(&head, &l), Classification::Next);
            head = ChainHead { seq: l.seq, hash: l.hash };
        }
    }
}
