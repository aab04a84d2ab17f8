//! The published test vectors (`protocol/testdata/vectors.json`), rebuilt
//! from fixed seeds and compared byte for byte with the shipped file.
//!
//! To regenerate after a deliberate change of the format:
//! `MOTCUA_WRITE_VECTORS=1 cargo test -p motcua-protocol --test protocol vectors`
//! and say why in the commit.

use coset::cbor::value::Value;
use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use ed25519_dalek::{Signer, SigningKey};
use motcua_protocol::bundle::{self, MAX_BUNDLE_BYTES};
use motcua_protocol::cose::{CONTENT_TYPE, EXTERNAL_AAD, TYP_LABEL, sign_payload};
use motcua_protocol::down::MAX_CATALOGUE_BYTES;
use motcua_protocol::{
    Hash32, KeyId, MAX_MESSAGE_BYTES, MessageType, Receipt, Submission, down, sign, verify,
};
use serde_json::{Value as Json, json};

use crate::support::*;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors.json");

/// What a vector's bytes are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// One message, verified as in section 3.
    Message,
    /// The payload of an MQTT message on a device's `up` topic: framed as in
    /// section 7.1, then each message verified as in section 3.
    Up,
}

struct Vector {
    name: &'static str,
    description: &'static str,
    message_type: MessageType,
    input: Input,
    key: SigningKey,
    /// The bytes as published in `cose_hex`.
    bytes: Vec<u8>,
    /// When set, the input is `bytes` followed by zero bytes up to this
    /// length (keeps the size-limit vectors small in the file).
    padded_to: Option<usize>,
    /// `None` when valid; else the reason code our verifier gives.
    error: Option<&'static str>,
}

impl Vector {
    /// The complete input.
    fn input(&self) -> Vec<u8> {
        let mut out = self.bytes.clone();
        if let Some(len) = self.padded_to {
            assert!(len > out.len(), "{}: padded_to beyond the bytes", self.name);
            out.resize(len, 0);
        }
        out
    }
}

/// Every reason code of sections 3 and 7.1: each one has a vector.
const REASONS: [&str; 13] = [
    "too_large",
    "not_cose",
    "not_canonical",
    "unprotected_header",
    "bad_header",
    "wrong_type",
    "detached_payload",
    "key_mismatch",
    "bad_signature",
    "bad_payload",
    "unsupported_version",
    "empty",
    "bad_bundle",
];

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
    let mut v3 = serde_json::to_value(&first).expect("json");
    v3["v"] = 3.into();
    let v3 = sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&v3).expect("json"),
        &dev,
    )
    .expect("signs");
    // Version 2: a time derived from the DC's receipts (section 4.1).
    let dc_clock = sign(
        &motcua_protocol::Submission {
            v: 2,
            clock: false,
            clock_dc: Some(1250),
            ..first.clone()
        },
        &dev,
    )
    .expect("signs");
    let with_clock = |v: u64, clock: bool, clock_dc: Option<serde_json::Value>| {
        let mut p = serde_json::to_value(&first).expect("json");
        p["v"] = v.into();
        p["clock"] = clock.into();
        if let Some(c) = clock_dc {
            p["clock_dc"] = c;
        }
        sign_payload(
            MessageType::Submission,
            serde_json::to_vec(&p).expect("json"),
            &dev,
        )
        .expect("signs")
    };
    let dc_clock_in_v1 = with_clock(1, false, Some(1250.into()));
    let v2_without_dc_clock = with_clock(2, false, None);
    let dc_clock_synced = with_clock(2, true, Some(1250.into()));
    let dc_clock_null = with_clock(2, false, Some(serde_json::Value::Null));
    // A version that is not an integer of section 4 (negative, or past
    // 2^53 - 1) is a bad payload, not an unknown version.
    let with_v = |v: serde_json::Value| {
        let mut p = serde_json::to_value(&first).expect("json");
        p["v"] = v;
        sign_payload(
            MessageType::Submission,
            serde_json::to_vec(&p).expect("json"),
            &dev,
        )
        .expect("signs")
    };
    let v_negative = with_v((-1).into());
    let v_too_large = with_v((1u64 << 53).into());
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
        input: Input::Message,
        key: key.clone(),
        bytes,
        padded_to: None,
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
    let units = sign(
        &down::Units {
            v: 1,
            version: 1,
            issued_at: t,
            units: vec![down::Unit {
                code: "H49.12.3".into(),
                name: "UBND xã Tam Thăng".into(),
                place: "Tam Thăng".into(),
            }],
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
    let refusals = refusals(&dev, &s1, &s2, &catalogue);
    use MessageType::{Receipt as R, Submission as S};
    let mut out = vec![
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
            "submission-seq1's payload with v set to 3, validly signed (members in alphabetical order, which receivers accept).",
            S,
            &dev,
            v3,
            Some("unsupported_version"),
        ),
        v(
            "submission-dc-clock",
            "submission-seq1 as version 2: clock false, clock_dc 1250 (its time derived from the DC's receipts, within 1.25 s).",
            S,
            &dev,
            dc_clock,
            None,
        ),
        v(
            "dc-clock-in-version-1",
            "submission-seq1's payload with clock false and clock_dc 1250 but v 1, validly signed: clock_dc is a version 2 member.",
            S,
            &dev,
            dc_clock_in_v1,
            Some("bad_payload"),
        ),
        v(
            "version-2-without-dc-clock",
            "submission-seq1's payload with v 2, clock false and no clock_dc, validly signed: version 2 carries clock_dc.",
            S,
            &dev,
            v2_without_dc_clock,
            Some("bad_payload"),
        ),
        v(
            "dc-clock-with-synchronised-clock",
            "submission-seq1's payload with v 2, clock true and clock_dc 1250, validly signed: a DC-derived time goes with clock false.",
            S,
            &dev,
            dc_clock_synced,
            Some("bad_payload"),
        ),
        v(
            "dc-clock-null",
            "submission-seq1's payload with v 2, clock false and clock_dc null, validly signed: clock_dc is an integer.",
            S,
            &dev,
            dc_clock_null,
            Some("bad_payload"),
        ),
        v(
            "version-negative",
            "submission-seq1's payload with v set to -1, validly signed: not an integer of section 4's range.",
            S,
            &dev,
            v_negative,
            Some("bad_payload"),
        ),
        v(
            "version-too-large",
            "submission-seq1's payload with v set to 2^53 (9007199254740992), validly signed: past section 4's integer bound.",
            S,
            &dev,
            v_too_large,
            Some("bad_payload"),
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
            "units",
            "The receiving units' names and places, version 1: one unit, signed by the DC key (section 7.3).",
            MessageType::Units,
            &dc_key(),
            units,
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
    ];
    out.extend(refusals);
    out
}

/// A message signed by `key` with exactly the protected header given:
/// `alg`, content type, kid and typ.
fn sign_with_alg(
    alg: iana::Algorithm,
    typ: MessageType,
    payload: &[u8],
    key: &SigningKey,
) -> Vec<u8> {
    let protected = HeaderBuilder::new()
        .algorithm(alg)
        .content_type(CONTENT_TYPE.to_owned())
        .key_id(KeyId::of(&key.verifying_key()).0.to_vec())
        .value(TYP_LABEL, Value::Text(typ.typ().to_owned()))
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload.to_vec())
        .create_signature(EXTERNAL_AAD, |data| key.sign(data).to_bytes().to_vec())
        .build()
        .to_tagged_vec()
        .expect("encodes")
}

/// The CBOR head of a byte string of `len` bytes, in its shortest form.
fn bstr_head(len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![0x40 | len as u8],
        24..=0xff => vec![0x58, len as u8],
        0x100..=0xffff => [&[0x59][..], &(len as u16).to_be_bytes()].concat(),
        _ => [&[0x5a][..], &(len as u32).to_be_bytes()].concat(),
    }
}

/// The refusal vectors: the remaining reason codes of section 3, the size
/// limits, and the framing of `up` payloads (section 7.1).
fn refusals(dev: &SigningKey, s1: &[u8], s2: &[u8], catalogue: &[u8]) -> Vec<Vector> {
    use MessageType::Submission as S;
    let msg = |name, description, message_type, key: &SigningKey, bytes, padded_to, error| Vector {
        name,
        description,
        message_type,
        input: Input::Message,
        key: key.clone(),
        bytes,
        padded_to,
        error: Some(error),
    };
    let up = |name, description, bytes, padded_to, error| Vector {
        name,
        description,
        message_type: S,
        input: Input::Up,
        key: dev.clone(),
        bytes,
        padded_to,
        error,
    };

    let payload = CoseSign1::from_tagged_slice(s1)
        .expect("decodes")
        .payload
        .expect("attached");
    // The protected header's bstr length, 80, in two bytes instead of one.
    assert_eq!(s1[2], 0x58, "a protected header of 24 to 255 bytes");
    let long_length = [&s1[..2], &[0x59, 0x00, s1[3]], &s1[4..]].concat();
    let mut detached = CoseSign1::from_tagged_slice(s1).expect("decodes");
    detached.payload = None;
    let pair = bundle::join(&[s1, s2]);
    let items = |head: &[u8], tail: &[u8]| {
        [
            head,
            &bstr_head(s1.len()),
            s1,
            &bstr_head(s2.len()),
            s2,
            tail,
        ]
        .concat()
    };
    let mut many = vec![0x99, 0x01, 0x01];
    many.extend(std::iter::repeat_n([0x41, 0xd2], 257).flatten());
    assert!((0x100..=0xffff).contains(&s1.len()), "a two-byte length");
    let oversized_item = [&[0x81][..], &bstr_head(MAX_MESSAGE_BYTES + 1), s1].concat();
    let as_text = [&[0x81, 0x79][..], &(s1.len() as u16).to_be_bytes(), s1].concat();

    vec![
        msg(
            "empty-message",
            "No bytes at all, where a submission is expected.",
            S,
            dev,
            Vec::new(),
            None,
            "not_cose",
        ),
        msg(
            "json-not-cose",
            "submission-seq1's JSON payload sent bare, without its COSE_Sign1.",
            S,
            dev,
            payload.clone(),
            None,
            "not_cose",
        ),
        msg(
            "over-long-length",
            "submission-seq1 with the length of its protected header written in two bytes (59 00 50) instead of one (58 50); the signature still verifies.",
            S,
            dev,
            long_length,
            None,
            "not_canonical",
        ),
        msg(
            "wrong-alg",
            "submission-seq1's payload signed with Ed25519 under a protected header naming alg -7 (ES256).",
            S,
            dev,
            sign_with_alg(iana::Algorithm::ES256, S, &payload, dev),
            None,
            "bad_header",
        ),
        msg(
            "detached-payload",
            "submission-seq1 with its payload replaced by nil.",
            S,
            dev,
            detached.to_tagged_vec().expect("encodes"),
            None,
            "detached_payload",
        ),
        msg(
            "at-size-limit",
            "submission-seq1 followed by zero bytes up to 65 536 bytes, the limit: not too large, but bytes after the COSE_Sign1.",
            S,
            dev,
            s1.to_vec(),
            Some(MAX_MESSAGE_BYTES),
            "not_cose",
        ),
        msg(
            "too-large",
            "submission-seq1 followed by zero bytes up to 65 537 bytes, one over the limit; refused before decoding.",
            S,
            dev,
            s1.to_vec(),
            Some(MAX_MESSAGE_BYTES + 1),
            "too_large",
        ),
        msg(
            "catalogue-too-large",
            "The catalogue vector followed by zero bytes up to 1 048 577 bytes, one over a catalogue's limit.",
            MessageType::Catalogue,
            &dc_key(),
            catalogue.to_vec(),
            Some(MAX_CATALOGUE_BYTES + 1),
            "too_large",
        ),
        up(
            "up-single",
            "An up payload holding submission-seq1 alone: a single message.",
            s1.to_vec(),
            None,
            None,
        ),
        up(
            "up-bundle",
            "An up payload bundling submission-seq1 and submission-seq2.",
            pair.clone(),
            None,
            None,
        ),
        up(
            "up-empty",
            "An empty up payload.",
            Vec::new(),
            None,
            Some("empty"),
        ),
        up(
            "up-json",
            "submission-seq1's JSON payload sent bare on the up topic (first byte 0x7b).",
            payload,
            None,
            Some("not_cose"),
        ),
        up(
            "up-map",
            "An up payload that is a CBOR map (first byte 0xa1).",
            vec![0xa1, 0x00, 0x00],
            None,
            Some("not_cose"),
        ),
        up(
            "up-single-too-large",
            "submission-seq1 followed by zero bytes up to 65 537 bytes: within the bundle limit, a single message over the message limit.",
            s1.to_vec(),
            Some(MAX_MESSAGE_BYTES + 1),
            Some("too_large"),
        ),
        up(
            "up-bundle-at-size-limit",
            "up-bundle followed by zero bytes up to 1 048 576 bytes, the limit: bytes after the array.",
            pair.clone(),
            Some(MAX_BUNDLE_BYTES),
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-too-large",
            "up-bundle followed by zero bytes up to 1 048 577 bytes, one over the bundle limit; refused before framing.",
            pair.clone(),
            Some(MAX_BUNDLE_BYTES + 1),
            Some("too_large"),
        ),
        up(
            "up-bundle-no-items",
            "An empty array (0x80).",
            vec![0x80],
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-257-items",
            "An array of 257 one-byte items (41 d2), one over the most a bundle holds.",
            many,
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-indefinite",
            "up-bundle's two items in an indefinite-length array (0x9f ... 0xff).",
            items(&[0x9f], &[0xff]),
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-long-count",
            "up-bundle with its item count written in a one-byte argument (98 02) instead of 82.",
            items(&[0x98, 0x02], &[]),
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-text-item",
            "A one-item array whose item holds submission-seq1 as a text string instead of a byte string.",
            as_text,
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-item-too-large",
            "A one-item array whose byte string is 65 537 bytes (submission-seq1 and zero bytes), over the message limit.",
            oversized_item,
            Some(1 + 5 + MAX_MESSAGE_BYTES + 1),
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-truncated",
            "up-bundle without its last byte.",
            pair[..pair.len() - 1].to_vec(),
            None,
            Some("bad_bundle"),
        ),
        up(
            "up-bundle-trailing-byte",
            "up-bundle followed by one byte 0x00.",
            [&pair[..], &[0]].concat(),
            None,
            Some("bad_bundle"),
        ),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// One message verified as `message_type`: its payload, or the reason code.
fn verified(
    message_type: MessageType,
    bytes: &[u8],
    key: &SigningKey,
) -> Result<Json, &'static str> {
    let key = key.verifying_key();
    match message_type {
        MessageType::Submission => {
            verify::<Submission>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Receipt => {
            verify::<Receipt>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Catalogue => {
            verify::<down::Catalogue>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::StatusUpdates => {
            verify::<down::StatusUpdates>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Settings => {
            verify::<down::Settings>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
        MessageType::Units => {
            verify::<down::Units>(bytes, &key).map(|m| serde_json::to_value(m.message))
        }
    }
    .map(|j| j.expect("serialises"))
    .map_err(|e| e.reason())
}

/// The messages of a vector's input: itself, or what an `up` payload frames.
fn messages(v: &Vector, input: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    match v.input {
        Input::Message => Ok(vec![input.to_vec()]),
        Input::Up => bundle::split(input)
            .map(|parts| parts.into_iter().map(<[u8]>::to_vec).collect())
            .map_err(|e| e.reason()),
    }
}

/// A vector's verdict: the decoded payload (an array of them for an `up`
/// payload) and the hash (an array of them), or the first reason code.
fn decoded(v: &Vector) -> Result<(Json, Json), &'static str> {
    let input = v.input();
    let parts = messages(v, &input)?;
    let mut payloads = Vec::new();
    let mut hashes = Vec::new();
    for part in &parts {
        payloads.push(verified(v.message_type, part, &v.key)?);
        hashes.push(Json::from(Hash32::of(part).to_hex()));
    }
    Ok(match v.input {
        Input::Message => (payloads.remove(0), hashes.remove(0)),
        Input::Up => (payloads.into(), hashes.into()),
    })
}

fn render(vectors: &[Vector]) -> String {
    let items: Vec<Json> = vectors
        .iter()
        .map(|v| {
            let mut item = json!({
                "name": v.name,
                "description": v.description,
                "input": match v.input {
                    Input::Message => "message",
                    Input::Up => "up",
                },
                "message_type": v.message_type.to_string(),
                "typ": v.message_type.typ(),
                "public_key_hex": hex::encode(v.key.verifying_key().as_bytes()),
                "cose_hex": hex::encode(&v.bytes),
                "external_aad_hex": "",
                "valid": v.error.is_none(),
            });
            if let Some(len) = v.padded_to {
                item["padded_to"] = len.into();
            }
            match v.error {
                None => {
                    let (payload, hash) = decoded(v).expect("valid vector verifies");
                    item["payload_json"] = payload;
                    item["sha256_hex"] = hash;
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
            (Err(got), Some(reason)) => assert_eq!(got, reason, "{}", v.name),
            (got, want) => panic!("{}: got {got:?}, want {want:?}", v.name),
        }
    }
}

#[test]
fn every_reason_code_has_a_vector() {
    let vectors = build();
    for reason in REASONS {
        assert!(
            vectors.iter().any(|v| v.error == Some(reason)),
            "no vector refused with {reason}"
        );
    }
    for v in &vectors {
        if let Some(reason) = v.error {
            assert!(
                REASONS.contains(&reason),
                "{}: {reason} is not listed",
                v.name
            );
        }
    }
    let mut names: Vec<_> = vectors.iter().map(|v| v.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), vectors.len(), "vector names are unique");
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
