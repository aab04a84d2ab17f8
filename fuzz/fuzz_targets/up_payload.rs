//! Arbitrary bytes as an MQTT payload on a device's `up` topic, through the
//! receiver's whole path: bundle framing, COSE parsing, key lookup,
//! signature, payload checks, chain rules against a real SQLite store,
//! alerts. The receiver must never panic, and every message must end up
//! either stored, recognised as a duplicate, held, or recorded as an alert.

#![no_main]

use std::sync::Mutex;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use motcua_dc::receiver::Processor;
use motcua_dc::store::{Store, sqlite::SqliteStore};
use motcua_protocol::{Enrollment, UtcTime};

const TOPIC: &str = "motcua/v1/d/fuzz-device/up";

struct Harness {
    _dir: tempfile::TempDir,
    processor: Processor,
}

fn harness() -> &'static Mutex<Harness> {
    static H: OnceLock<Mutex<Harness>> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = SqliteStore::open(&dir.path().join("dc.db")).expect("store");
        // The device key is fixed (seed 0x42), so inputs built from the
        // protocol's test vectors and the seed corpus carry valid signatures.
        let device = SigningKey::from_bytes(&[0x42; 32]);
        let e = Enrollment {
            device: "fuzz-device".parse().expect("valid"),
            key: device.verifying_key(),
        };
        let now = UtcTime::from_unix_millis(1_795_000_000_000).expect("valid");
        store.enroll(&e, &now).expect("enrolls").expect("new");
        let processor = Processor::new(Box::new(store), SigningKey::from_bytes(&[7; 32]));
        Mutex::new(Harness {
            _dir: dir,
            processor,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let mut h = harness().lock().expect("not poisoned");
    let before = h.processor.stats();
    let now = UtcTime::from_unix_millis(1_795_000_000_000).expect("valid");
    h.processor
        .handle(TOPIC, data, now)
        .expect("storage does not fail on input");
    let after = h.processor.stats();
    assert_eq!(after.messages, before.messages + 1);
    // Something was recorded for every input: an alert, or envelopes that
    // reached the chain rules.
    assert!(after.alerts > before.alerts || after.verified > before.verified);
});
