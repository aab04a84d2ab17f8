//! Arbitrary orders of arrival of one device's envelopes (with
//! redeliveries, forks and gaps) through the DC's chain rules and a real
//! SQLite store. Invariants after every batch: the stored records are
//! exactly seq 1..=head, each linking to the one before; a forked envelope
//! is never stored; and once every honest envelope has arrived, the head is
//! the end of the honest chain.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use motcua_dc::store::{Incoming, Store, sqlite::SqliteStore};
use motcua_protocol::{Enrollment, Hash32, KeyId, UtcTime};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Each step delivers a batch of envelope indexes: 0..16 honest, 16..
    /// a fork of the same seq.
    batches: Vec<Vec<u8>>,
}

const N: u64 = 16;

fn envelope(seq: u64, fork: bool, prev: Hash32) -> Incoming {
    let bytes = format!("{seq}:{fork}:{prev}").into_bytes();
    Incoming {
        seq,
        prev,
        hash: Hash32::of(&bytes),
        kid: KeyId([1; 16]),
        at: UtcTime::from_unix_millis(1_795_000_000_000).expect("valid"),
        clock: true,
        kind: "dossier.created".parse().expect("a valid kind"),
        bytes,
        topic: "motcua/v1/d/fuzz-device/up".into(),
    }
}

fuzz_target!(|input: Input| {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(&dir.path().join("dc.db")).expect("store");
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
    let device = "fuzz-device".parse().expect("valid");
    let now = UtcTime::from_unix_millis(1_795_000_000_000).expect("valid");
    store
        .enroll(&Enrollment { device: "fuzz-device".parse().expect("valid"), key: key.verifying_key() }, &now)
        .expect("enrolls")
        .expect("new");
    // The honest chain, and one fork per seq (linked to the honest prev).
    let mut honest = Vec::new();
    let mut prev = Hash32::ZERO;
    for seq in 1..=N {
        let e = envelope(seq, false, prev);
        prev = e.hash;
        honest.push(e);
    }
    let forks: Vec<Incoming> = honest
        .iter()
        .map(|h| envelope(h.seq, true, h.prev))
        .collect();
    for batch in input.batches.iter().take(64) {
        let items: Vec<Incoming> = batch
            .iter()
            .take(32)
            .map(|&i| {
                let i = u64::from(i) % (2 * N);
                if i < N { honest[i as usize].clone() } else { forks[(i - N) as usize].clone() }
            })
            .collect();
        store.accept(&device, &items, &now).expect("accepts");
        let records = store.records(&device, 0, 1000).expect("reads");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1, "no gap");
            let h = &honest[i];
            // The first envelope stored at a seq decides; a fork can only be
            // stored if it came first, and then the honest one is refused.
            assert!(r.hash == h.hash || r.hash == forks[i].hash);
            if i > 0 {
                assert_eq!(r.prev, records[i - 1].hash, "links");
            }
        }
        let head = store.device(&device).expect("reads").expect("enrolled").head;
        assert_eq!(head.seq, records.len() as u64);
    }
    // Deliver the whole honest chain in order: if no fork was ever stored,
    // the head reaches the end.
    store.accept(&device, &honest, &now).expect("accepts");
    let records = store.records(&device, 0, 1000).expect("reads");
    if records.iter().zip(&honest).all(|(r, h)| r.hash == h.hash) {
        assert_eq!(records.len() as u64, N, "every honest envelope stored once");
    }
});
