//! Fixed keys and sample messages shared by the tests and the vectors.

use ed25519_dalek::SigningKey;
use motcua_protocol::{ChainHead, DeviceId, Hash32, Receipt, Submission, UtcTime, sign};
use serde_json::json;

/// The sample counter's key, from a fixed seed.
pub fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

/// The sample data centre's key, from a fixed seed.
pub fn dc_key() -> SigningKey {
    SigningKey::from_bytes(&[0xdc; 32])
}

/// Another key, enrolled nowhere.
pub fn stranger_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

pub fn device() -> DeviceId {
    "H49.12.3-q01".parse().expect("valid device id")
}

pub fn at(ms: i64) -> UtcTime {
    UtcTime::from_unix_millis(ms).expect("in range")
}

/// A sample `dossier.created` record: invented applicant, invented numbers.
pub fn created(seq: u64, prev: Hash32) -> Submission {
    Submission {
        v: 1,
        device: device(),
        seq,
        prev,
        at: at(1_795_680_000_000 + seq as i64 * 60_000),
        clock: true,
        clock_dc: None,
        staff: "canbo.an".parse().expect("valid staff id"),
        kind: "dossier.created".parse().expect("valid kind"),
        body: json!({
            "code": format!("H49.12.3-261126-{:04}", 100 + seq),
            "procedure": "1.000948",
            "applicant": {
                "name": "Nguyễn Thị Thu Hà",
                "id_number": "049301000123",
                "phone": "0905123456",
                "address": "Thôn Phú Thạnh, xã Tam Thăng"
            },
            "documents": [{"name": "Tờ khai", "sets": 1}],
            "status": 1
        }),
    }
}

/// A sample `dossier.status` record.
pub fn status(seq: u64, prev: Hash32, code: &str, status: u8) -> Submission {
    Submission {
        kind: "dossier.status".parse().expect("valid kind"),
        body: json!({"code": code, "status": status}),
        ..created(seq, prev)
    }
}

/// A chain of `n` signed `dossier.created` envelopes: (bytes, hash) each.
pub fn chain(n: u64) -> Vec<(Vec<u8>, Hash32)> {
    let mut head = ChainHead::EMPTY;
    let mut out = Vec::new();
    for seq in 1..=n {
        let bytes = sign(&created(seq, head.hash), &device_key()).expect("signs");
        head = ChainHead {
            seq,
            hash: Hash32::of(&bytes),
        };
        out.push((bytes, head.hash));
    }
    out
}

pub fn receipt(seq: u64, hash: Hash32) -> Receipt {
    Receipt {
        v: 1,
        device: device(),
        seq,
        hash,
        at: at(1_795_680_900_000),
    }
}
