//! The receiver's processor without MQTT: what it stores, what it refuses
//! (with which reason), and the receipt it signs.

use ed25519_dalek::SigningKey;
use motcua_dc::receiver::Processor;
use motcua_dc::store::{Store, sqlite::SqliteStore};
use motcua_protocol::bundle::{self, MAX_BUNDLE_BYTES};
use motcua_protocol::{
    Enrollment, Hash32, Receipt, RecordKind, StaffId, Submission, UtcTime, sign, verify,
};

const DEVICE: &str = "H49.12.3-q01";
const UP: &str = "motcua/v1/d/H49.12.3-q01/up";

fn now() -> UtcTime {
    UtcTime::from_unix_millis(1_795_000_000_000).expect("valid")
}

fn envelope(key: &SigningKey, seq: u64, prev: Hash32) -> Vec<u8> {
    sign(
        &Submission {
            v: 1,
            device: DEVICE.parse().expect("valid"),
            seq,
            prev,
            at: now(),
            clock: true,
            clock_dc: None,
            staff: "canbo01".parse::<StaffId>().expect("valid"),
            kind: "dossier.created".parse::<RecordKind>().expect("valid"),
            body: serde_json::json!({ "code": format!("X-{seq}") }),
        },
        key,
    )
    .expect("signs")
}

fn chain(key: &SigningKey, from: u64, prev: Hash32, n: u64) -> Vec<Vec<u8>> {
    let mut prev = prev;
    (from..from + n)
        .map(|seq| {
            let e = envelope(key, seq, prev);
            prev = Hash32::of(&e);
            e
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    device_key: SigningKey,
    dc_key: SigningKey,
    processor: Processor,
}

fn fixture(enroll: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dc.db");
    let device_key = SigningKey::from_bytes(&[1; 32]);
    let dc_key = SigningKey::from_bytes(&[9; 32]);
    let mut store = SqliteStore::open(&path).expect("opens");
    if enroll {
        store
            .enroll(
                &Enrollment {
                    device: DEVICE.parse().expect("valid"),
                    key: device_key.verifying_key(),
                },
                &now(),
            )
            .expect("ok")
            .expect("new");
    }
    let processor = Processor::new(Box::new(store), dc_key.clone());
    Fixture {
        _dir: dir,
        path,
        device_key,
        dc_key,
        processor,
    }
}

impl Fixture {
    fn reasons(&self) -> Vec<String> {
        SqliteStore::open(&self.path)
            .expect("opens")
            .alerts(0, 100)
            .expect("reads")
            .into_iter()
            .map(|a| a.alert.reason)
            .collect()
    }
}

#[test]
fn a_bundle_is_stored_and_receipted_and_its_bad_member_recorded() {
    let mut f = fixture(true);
    let mut msgs = chain(&f.device_key, 1, Hash32::ZERO, 3);
    let mut forged = msgs[2].clone();
    let n = forged.len();
    forged[n - 3] ^= 0x40;
    msgs.insert(1, forged);
    let out = f
        .processor
        .handle(UP, &bundle::join(&msgs), now())
        .expect("handles")
        .expect("a receipt");
    assert_eq!(out.topic, "motcua/v1/d/H49.12.3-q01/receipt");
    let r = verify::<Receipt>(&out.payload, &f.dc_key.verifying_key()).expect("DC-signed");
    assert_eq!(r.message.seq, 3);
    assert_eq!(r.message.hash, Hash32::of(&msgs[3]));
    let s = f.processor.stats();
    assert_eq!((s.verified, s.stored, s.alerts, s.receipts), (3, 3, 1, 1));
    assert_eq!(f.reasons(), ["bad_signature"]);
}

#[test]
fn framing_topic_and_registry_refusals_have_their_reasons() {
    let mut f = fixture(true);
    let good = chain(&f.device_key, 1, Hash32::ZERO, 1);
    let stranger = SigningKey::from_bytes(&[5; 32]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("motcua/v1/d/H49.12.3-q01/receipt", good[0].clone()),
        ("not/a/motcua/topic", good[0].clone()),
        (UP, Vec::new()),
        (UP, vec![0x80; MAX_BUNDLE_BYTES + 1]),
        (UP, vec![0x82, 0x41, 0xd2]),
        (UP, chain(&stranger, 1, Hash32::ZERO, 1).remove(0)),
        ("motcua/v1/d/H49.12.3-q99/up", good[0].clone()),
    ];
    for (topic, payload) in &cases {
        let receipt = f.processor.handle(topic, payload, now()).expect("handles");
        assert!(
            receipt.is_none(),
            "{topic}: no receipt for a refused message"
        );
    }
    assert_eq!(
        f.reasons(),
        [
            "bad_topic",
            "bad_topic",
            "empty",
            "too_large",
            "bad_bundle",
            "unknown_key",
            "unknown_device"
        ]
    );
    assert_eq!(f.processor.stats().stored, 0);
    // An envelope on the health topic is a malformed health report:
    // refused and counted, not an alert (those keep evidence about records).
    f.processor
        .handle("motcua/v1/d/H49.12.3-q01/health", &good[0], now())
        .expect("handles");
    assert_eq!(f.processor.stats().telemetry_refused, 1);
    assert_eq!(f.reasons().len(), 7, "no new alert");
}

#[test]
fn a_rotated_key_continues_the_chain_and_old_records_stay_verifiable() {
    let mut f = fixture(true);
    let first = chain(&f.device_key, 1, Hash32::ZERO, 2);
    for m in &first {
        f.processor.handle(UP, m, now()).expect("handles");
    }
    let new_key = SigningKey::from_bytes(&[2; 32]);
    let mut store = SqliteStore::open(&f.path).expect("opens");
    store
        .enroll(
            &Enrollment {
                device: DEVICE.parse().expect("valid"),
                key: new_key.verifying_key(),
            },
            &now(),
        )
        .expect("ok")
        .expect("new key");
    let next = chain(&new_key, 3, Hash32::of(&first[1]), 2);
    f.processor
        .handle(UP, &bundle::join(&next), now())
        .expect("handles");
    assert_eq!(f.processor.stats().stored, 4);
    let reports = motcua_dc::verify::chains(&mut store, None).expect("verifies");
    assert_eq!(reports[0].records, 4);
    assert_eq!(reports[0].problem, None);
}

#[test]
fn nothing_of_an_unenrolled_fleet_is_stored() {
    let mut f = fixture(false);
    let msgs = chain(&f.device_key, 1, Hash32::ZERO, 2);
    assert!(
        f.processor
            .handle(UP, &bundle::join(&msgs), now())
            .expect("handles")
            .is_none()
    );
    assert_eq!(f.reasons(), ["unknown_device", "unknown_device"]);
}
