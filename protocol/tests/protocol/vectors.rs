//! The published test vectors (`protocol/testdata/vectors.json`), rebuilt
//! from fixed seeds and compared byte for byte with the shipped file.
//!
//! To regenerate after a deliberate change of the format:
//! `MOTCUA_WRITE_VECTORS=1 cargo test -p motcua-protocol --test protocol vectors`
//! and say why in the commit.

use coset::cbor::value::Value;
use coset::{CoseSign1, TaggedCborSerializable};
use ed25519_dalek::SigningKey;
use motcua_protocol::cose::sign_payload;
use motcua_protocol::{Hash32, MessageType, Receipt, Submission, VerifyError, down, sign, verify};
use serde_json::{Value as Json, json};

use crate::support::*;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");

struct Vector {
    name: &'static str,
    description: &'static str,
    message_type: MessageType,
    key: SigningKey,
    bytes: Vec<u8>,
    /// `None` when valid; else the reason code our verifier gives.
    error: Option<&'static str>,
}

fn flip(bytes: &[u8], index: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[index] ^= mask;
    out
}

fn build() -> Vec<Vector> {
    let dev = device_key();
    let first = created(1, Hash32::ZERO);
    let s1 = sign(&first, &dev).expect("signs");
    let s2 = sign(&status(2, Hash32::of(&s1), "H49.12.3-261126-0101", 2), &dev).expect("signs");
    let r = sign(&receipt(2, Hash32::of(&s2)), &dc_key()).expect("signs");
    let payload_start = find(&s1, br#"{"v":1"#);

    let mut unprotected = CoseSign1::from_tagged_slice(&s1).expect("decodes");
    unprotected
        .unprotected
        .rest
        .push((coset::Label::Int(4), Value::Bytes(vec![0; 16])));

    let dup = sign_payload(
        MessageType::Submission,
        format!(
            r#"{{"v":1,"seq":1,{}"#,
            &String::from_utf8_lossy(&serde_json::to_vec(&first).expect("json"))[1..]
        )
        .into_bytes(),
        &dev,
    )
    .expect("signs");
    let mut v2 = serde_json::to_value(&first).expect("json");
    v2["v"] = 2.into();
    let v2 = sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&v2).expect("json"),
        &dev,
    )
    .expect("signs");
    let as_receipt = sign_payload(
        MessageType::Receipt,
        serde_json::to_vec(&first).expect("json"),
        &dev,
    )
    .expect("signs");

    let v = |name, description, message_type, key: &SigningKey, bytes, error| Vector {
        name,
        description,
        message_type,
        key: key.clone(),
        bytes,
        error,
    };
    let t = motcua_protocol::UtcTime::parse("2026-11-27T03:00:00.000Z").expect("valid");
    let catalogue = sign(
        &down::Catalogue {
            v: 1,
            version: 7,
            issued_at: t,
            procedures: vec![
                down::Procedure {
                    code: "1.000894".into(),
                    name: "Đăng ký khai sinh".into(),
                    working_days: 0,
                    fee: None,
                    documents: vec!["Tờ khai đăng ký khai sinh".into(), "Giấy chứng sinh".into()],
                },
                down::Procedure {
                    code: "2.000908".into(),
                    name: "Chứng thực bản sao từ bản chính giấy tờ, văn bản".into(),
                    working_days: 1,
                    fee: Some(2000),
                    documents: vec![],
                },
            ],
            holidays: vec![down::CalendarDay {
                day: "2027-01-01".into(),
                name: Some("Tết Dương lịch".into()),
            }],
            workdays: vec![],
        },
        &dc_key(),
    )
    .expect("signs");
    let updates = sign(
        &down::StatusUpdates {
            v: 1,
            device: device(),
            seq: 3,
            issued_at: t,
            updates: vec![
                down::StatusUpdate {
                    id: 41,
                    code: "H49.12.3-261126-0101".into(),
                    status: 4,
                    at: t,
                    by: "UBND huyện Phú Ninh".into(),
                    note: None,
                },
                down::StatusUpdate {
                    id: 42,
                    code: "H49.12.3-261126-0101".into(),
                    status: 9,
                    at: t,
                    by: "UBND huyện Phú Ninh".into(),
                    note: Some("Đã ký".into()),
                },
            ],
        },
        &dc_key(),
    )
    .expect("signs");
    let settings = sign(
        &down::Settings {
            v: 1,
            device: device(),
            seq: 1,
            issued_at: t,
            health_interval_s: Some(300),
        },
        &dc_key(),
    )
    .expect("signs");
    let unknown_setting = sign_payload(
        MessageType::Settings,
        br#"{"v":1,"device":"H49.12.3-q01","seq":2,"issued_at":"2026-11-27T03:00:00.000Z","kiosk_bind":"0.0.0.0:80"}"#
            .to_vec(),
        &dc_key(),
    )
    .expect("signs");
    use MessageType::{Receipt as R, Submission as S};
    vec![
        v(
            "submission-seq1",
            "A dossier.created envelope, first of its device's chain (prev is 64 zeros).",
            S,
            &dev,
            s1.clone(),
            None,
        ),
        v(
            "submission-seq2",
            "A dossier.status envelope whose prev is SHA-256 of submission-seq1's complete bytes.",
            S,
            &dev,
            s2.clone(),
            None,
        ),
        v(
            "receipt",
            "The DC's receipt for seq 2, whose hash is SHA-256 of submission-seq2's complete bytes, signed by the DC key.",
            R,
            &dc_key(),
            r.clone(),
            None,
        ),
        v(
            "flipped-signature-bit",
            "submission-seq1 with the lowest bit of the last signature byte flipped.",
            S,
            &dev,
            flip(&s1, s1.len() - 1, 0x01),
            Some("bad_signature"),
        ),
        v(
            "flipped-payload-byte",
            "submission-seq1 with one payload byte changed ('\"v\":1' becomes '\"w\":1').",
            S,
            &dev,
            flip(&s1, payload_start + 2, 0x01),
            Some("bad_signature"),
        ),
        v(
            "wrong-key",
            "submission-seq1 checked against a key that did not sign it.",
            S,
            &stranger_key(),
            s1.clone(),
            Some("key_mismatch"),
        ),
        v(
            "wrong-type-receipt-as-submission",
            "The valid receipt vector presented where a submission is expected.",
            S,
            &dc_key(),
            r.clone(),
            Some("wrong_type"),
        ),
        v(
            "wrong-type-submission-signed-as-receipt",
            "submission-seq1's payload validly signed with typ receipt, presented where a submission is expected.",
            S,
            &dev,
            as_receipt,
            Some("wrong_type"),
        ),
        v(
            "untagged",
            "submission-seq1 without its CBOR tag 18.",
            S,
            &dev,
            s1[1..].to_vec(),
            Some("not_cose"),
        ),
        v(
            "trailing-byte",
            "submission-seq1 followed by one extra byte 0x00.",
            S,
            &dev,
            [s1.as_slice(), &[0]].concat(),
            Some("not_cose"),
        ),
        v(
            "unprotected-header",
            "submission-seq1 with a kid added to the unsigned header: the signature still verifies, the message must be refused.",
            S,
            &dev,
            unprotected.to_tagged_vec().expect("encodes"),
            Some("unprotected_header"),
        ),
        v(
            "duplicate-json-key",
            "A validly signed payload carrying the keys v and seq twice.",
            S,
            &dev,
            dup,
            Some("bad_payload"),
        ),
        v(
            "unsupported-version",
            "submission-seq1's payload with v set to 2, validly signed (members in alphabetical order, which receivers accept).",
            S,
            &dev,
            v2,
            Some("unsupported_version"),
        ),
        v(
            "catalogue",
            "The DC's procedure catalogue (version 7) with one holiday, signed by the DC key (section 7.3).",
            MessageType::Catalogue,
            &dc_key(),
            catalogue,
            None,
        ),
        v(
            "status-updates",
            "Two status updates (ids 41 and 42) for one counter's dossier, seq 3, signed by the DC key (section 7.3).",
            MessageType::StatusUpdates,
            &dc_key(),
            updates.clone(),
            None,
        ),
        v(
            "settings",
            "A counter's settings, seq 1: a health interval of 300 seconds, signed by the DC key (section 7.3).",
            MessageType::Settings,
            &dc_key(),
            settings,
            None,
        ),
        v(
            "settings-unknown-member",
            "Validly signed settings carrying a member that does not exist (kiosk_bind): refused whole.",
            MessageType::Settings,
            &dc_key(),
            unknown_setting,
            Some("bad_payload"),
        ),
        v(
            "wrong-type-status-updates-as-settings",
            "The valid status-updates vector presented where settings are expected.",
            MessageType::Settings,
            &dc_key(),
            updates,
            Some("wrong_type"),
        ),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

fn decoded(v: &Vector) -> Result<Json, VerifyError> {
    let key = v.key.verifying_key();
    match v.message_type {
        MessageType::Submission => {
            verify::<Submission>(&v.bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Receipt => {
            verify::<Receipt>(&v.bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Catalogue => {
            verify::<down::Catalogue>(&v.bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::StatusUpdates => {
            verify::<down::StatusUpdates>(&v.bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Settings => {
            verify::<down::Settings>(&v.bytes, &key).map(|m| serde_json::to_value(m.message))
        }
    }
    .map(|j| j.expect("serialises"))
}

fn render(vectors: &[Vector]) -> String {
    let items: Vec<Json> = vectors
        .iter()
        .map(|v| {
            let mut item = json!({
                "name": v.name,
                "description": v.description,
                "message_type": v.message_type.to_string(),
                "typ": v.message_type.typ(),
                "public_key_hex": hex::encode(v.key.verifying_key().as_bytes()),
                "cose_hex": hex::encode(&v.bytes),
                "external_aad_hex": "",
                "valid": v.error.is_none(),
            });
            match v.error {
                None => {
                    item["payload_json"] = decoded(v).expect("valid vector verifies");
                    item["sha256_hex"] = Hash32::of(&v.bytes).to_hex().into();
                }
                Some(reason) => item["error"] = reason.into(),
            }
            item
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&items).expect("json");
    out.push('\n');
    out
}

#[test]
fn every_vector_gets_the_verdict_it_states() {
    for v in build() {
        match (decoded(&v), v.error) {
            (Ok(_), None) => {}
            (Err(e), Some(reason)) => assert_eq!(e.reason(), reason, "{}: {e}", v.name),
            (got, want) => panic!("{}: got {got:?}, want {want:?}", v.name),
        }
    }
}

#[test]
fn shipped_vectors_match_a_fresh_build_byte_for_byte() {
    let fresh = render(&build());
    if std::env::var_os("MOTCUA_WRITE_VECTORS").is_some() {
        std::fs::write(PATH, &fresh).expect("write vectors");
    }
    let shipped = std::fs::read_to_string(PATH).expect("protocol/testdata/vectors.json exists");
    assert!(
        shipped == fresh,
        "protocol/testdata/vectors.json differs from what the code produces; if the format changed on purpose, regenerate with MOTCUA_WRITE_VECTORS=1"
    );
}
