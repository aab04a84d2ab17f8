//! Signing and strict verification of envelopes and receipts.

use coset::cbor::value::Value;
use coset::{CoseSign1, TaggedCborSerializable};
use motcua_protocol::cose::{Opened, PayloadError, sign_payload};
use motcua_protocol::{
    Hash32, KeyId, MAX_MESSAGE_BYTES, MessageType, Receipt, Submission, VerifyError, sign, verify,
};
use proptest::prelude::*;

use crate::support::*;

fn verify_submission(bytes: &[u8]) -> Result<Submission, VerifyError> {
    verify::<Submission>(bytes, &device_key().verifying_key()).map(|v| v.message)
}

#[test]
fn a_signed_submission_verifies_and_reads_back() {
    let msg = created(1, Hash32::ZERO);
    let bytes = sign(&msg, &device_key()).expect("signs");
    let v = verify::<Submission>(&bytes, &device_key().verifying_key()).expect("verifies");
    assert_eq!(v.message, msg);
    assert_eq!(v.hash, Hash32::of(&bytes));
    assert_eq!(v.kid, KeyId::of(&device_key().verifying_key()));
    assert_eq!(v.bytes, bytes);
}

#[test]
fn signing_is_deterministic() {
    let msg = created(1, Hash32::ZERO);
    assert_eq!(sign(&msg, &device_key()), sign(&msg, &device_key()));
}

#[test]
fn a_receipt_verifies_with_the_dc_key_only() {
    let bytes = sign(&receipt(2, Hash32::of(b"x")), &dc_key()).expect("signs");
    assert!(verify::<Receipt>(&bytes, &dc_key().verifying_key()).is_ok());
    assert!(matches!(
        verify::<Receipt>(&bytes, &device_key().verifying_key()),
        Err(VerifyError::KeyMismatch { .. })
    ));
}

#[test]
fn a_receipt_is_never_accepted_as_a_submission_nor_the_reverse() {
    let r = sign(&receipt(1, Hash32::of(b"x")), &device_key()).expect("signs");
    assert!(matches!(
        verify_submission(&r),
        Err(VerifyError::WrongType {
            expected: MessageType::Submission,
            ..
        })
    ));
    let s = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    assert!(matches!(
        verify::<Receipt>(&s, &device_key().verifying_key()),
        Err(VerifyError::WrongType {
            expected: MessageType::Receipt,
            ..
        })
    ));
    // Same payload bytes, re-signed under the receipt type: still refused.
    let payload = serde_json::to_vec(&created(1, Hash32::ZERO)).expect("json");
    let forged = sign_payload(MessageType::Receipt, payload, &device_key()).expect("signs");
    assert!(matches!(
        verify_submission(&forged),
        Err(VerifyError::WrongType { .. })
    ));
}

#[test]
fn a_key_that_signed_nothing_is_refused_even_with_a_matching_kid_claim() {
    let bytes = sign(&created(1, Hash32::ZERO), &stranger_key()).expect("signs");
    assert!(matches!(
        verify_submission(&bytes),
        Err(VerifyError::KeyMismatch { .. })
    ));
}

/// Every single flipped bit of a real envelope is refused. Exhaustive: each
/// bit of the whole message, not a sample.
#[test]
fn every_single_bit_flip_is_refused() {
    let bytes = sign(&created(7, Hash32::of(b"prev")), &device_key()).expect("signs");
    for i in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(
            verify_submission(&bad).is_err(),
            "flipping bit {i} was accepted"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For arbitrary payload content and any one bit, the flip is refused.
    #[test]
    fn any_flipped_bit_of_any_envelope_is_refused(
        seq in 2u64..1_000_000,
        code in "[A-Z][0-9]{2}-[0-9]{6}-[0-9]{4}",
        name in "\\PC{0,40}",
        bit in any::<prop::sample::Index>(),
    ) {
        let mut msg = created(seq, Hash32::of(&seq.to_be_bytes()));
        msg.body = serde_json::json!({"code": code, "applicant": {"name": name}});
        let bytes = sign(&msg, &device_key()).expect("signs");
        prop_assert_eq!(verify_submission(&bytes).expect("valid"), msg);
        let i = bit.index(bytes.len() * 8);
        let mut bad = bytes.clone();
        bad[i / 8] ^= 1 << (i % 8);
        prop_assert!(verify_submission(&bad).is_err(), "bit {} accepted", i);
    }
}

#[test]
fn duplicate_keys_in_a_validly_signed_payload_are_refused() {
    let payload = br#"{"v":1,"seq":1,"seq":2}"#.to_vec();
    let bytes = sign_payload(MessageType::Submission, payload, &device_key()).expect("signs");
    let err = verify_submission(&bytes).expect_err("refused");
    assert_eq!(err.reason(), "bad_payload");
    assert!(err.to_string().contains("\"seq\" twice"), "{err}");
}

#[test]
fn trailing_bytes_in_a_validly_signed_payload_are_refused() {
    let mut payload = serde_json::to_vec(&created(1, Hash32::ZERO)).expect("json");
    payload.extend_from_slice(b" {}");
    let bytes = sign_payload(MessageType::Submission, payload, &device_key()).expect("signs");
    assert!(matches!(
        verify_submission(&bytes),
        Err(VerifyError::Payload(PayloadError::Json(_)))
    ));
}

#[test]
fn trailing_bytes_after_the_cose_structure_are_refused() {
    let mut bytes = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    bytes.push(0);
    assert!(matches!(
        verify_submission(&bytes),
        Err(VerifyError::NotCose(_))
    ));
}

#[test]
fn an_untagged_message_is_refused() {
    let bytes = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    assert_eq!(bytes[0], 0xd2, "tag 18");
    assert!(matches!(
        verify_submission(&bytes[1..]),
        Err(VerifyError::NotCose(_))
    ));
}

#[test]
fn an_oversized_message_is_refused_before_decoding() {
    let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        verify_submission(&bytes),
        Err(VerifyError::TooLarge {
            len: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        })
    );
    let mut big = created(1, Hash32::ZERO);
    big.body = serde_json::json!({ "note": "x".repeat(MAX_MESSAGE_BYTES) });
    assert!(matches!(
        sign(&big, &device_key()),
        Err(motcua_protocol::SignError::TooLarge { .. })
    ));
}

#[test]
fn a_non_canonical_length_is_refused_though_the_signature_holds() {
    let bytes = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    // Re-encode the 64-byte signature bstr with a two-byte length (0x59 0x00
    // 0x40) instead of one (0x58 0x40): same value, other bytes.
    let n = bytes.len();
    assert_eq!(&bytes[n - 66..n - 64], &[0x58, 0x40]);
    let mut bad = bytes[..n - 66].to_vec();
    bad.extend_from_slice(&[0x59, 0x00, 0x40]);
    bad.extend_from_slice(&bytes[n - 64..]);
    assert_eq!(verify_submission(&bad), Err(VerifyError::NotCanonical));
}

#[test]
fn an_unprotected_header_is_refused_though_the_signature_holds() {
    let bytes = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    let mut sign1 = CoseSign1::from_tagged_slice(&bytes).expect("decodes");
    sign1
        .unprotected
        .rest
        .push((coset::Label::Int(99), Value::Null));
    let bad = sign1.to_tagged_vec().expect("encodes");
    assert_eq!(verify_submission(&bad), Err(VerifyError::UnprotectedHeader));
}

#[test]
fn opened_reports_the_kid_before_any_key_is_needed() {
    let bytes = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    let opened = Opened::<Submission>::parse(&bytes).expect("well-formed");
    assert_eq!(opened.kid(), KeyId::of(&device_key().verifying_key()));
}

#[test]
fn payload_rules_hold_on_both_sides() {
    // seq 1 must link to the zero hash, and only seq 1 may.
    assert!(sign(&created(1, Hash32::of(b"x")), &device_key()).is_err());
    assert!(sign(&created(2, Hash32::ZERO), &device_key()).is_err());
    assert!(sign(&created(0, Hash32::ZERO), &device_key()).is_err());
    // Refused on receipt too, even when validly signed.
    let payload = serde_json::to_vec(&created(2, Hash32::ZERO)).expect("json");
    let bytes = sign_payload(MessageType::Submission, payload, &device_key()).expect("signs");
    assert!(matches!(
        verify_submission(&bytes),
        Err(VerifyError::Payload(PayloadError::Field {
            field: "seq",
            ..
        }))
    ));
}

#[test]
fn a_newer_format_version_is_reported_as_such() {
    let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
    value["v"] = 3.into();
    value["new_field"] = true.into();
    let bytes = sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&value).expect("json"),
        &device_key(),
    )
    .expect("signs");
    let err = verify_submission(&bytes).expect_err("refused");
    assert_eq!(err.reason(), "unsupported_version");
}

/// `created(1)` with `v` and members changed, signed as they are.
fn with_members(v: u64, members: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
    value["v"] = v.into();
    for (k, m) in members {
        value[*k] = m.clone();
    }
    sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&value).expect("json"),
        &device_key(),
    )
    .expect("signs")
}

#[test]
fn version_2_carries_a_dc_derived_time_and_only_it_does() {
    // Signed by the library: a time derived from the DC is version 2.
    let sub = Submission {
        v: motcua_protocol::SUBMISSION_DC_CLOCK_VERSION,
        clock: false,
        clock_dc: Some(1_250),
        ..created(1, Hash32::ZERO)
    };
    let bytes = sign(&sub, &device_key()).expect("signs");
    let v = verify_submission(&bytes).expect("verifies");
    assert_eq!(v.clock_dc, Some(1_250));
    assert!(String::from_utf8_lossy(&bytes).contains(r#""clock":false,"clock_dc":1250,"#));
    // Version 1 stays byte for byte what it was: no clock_dc member.
    let one = sign(&created(1, Hash32::ZERO), &device_key()).expect("signs");
    assert!(!String::from_utf8_lossy(&one).contains("clock_dc"));
    // The library does not sign the broken combinations.
    for bad in [
        Submission {
            clock_dc: Some(5),
            ..created(1, Hash32::ZERO)
        },
        Submission {
            v: 2,
            clock: false,
            clock_dc: None,
            ..created(1, Hash32::ZERO)
        },
        Submission {
            v: 2,
            clock: true,
            clock_dc: Some(5),
            ..created(1, Hash32::ZERO)
        },
    ] {
        assert!(sign(&bad, &device_key()).is_err(), "{bad:?}");
    }
    // And refuses them from the wire.
    for (v, members) in [
        (1, vec![("clock", false.into()), ("clock_dc", 5.into())]),
        (2, vec![("clock", false.into())]),
        (2, vec![("clock", true.into()), ("clock_dc", 5.into())]),
        (
            2,
            vec![
                ("clock", false.into()),
                ("clock_dc", serde_json::Value::Null),
            ],
        ),
        (2, vec![("clock", false.into()), ("clock_dc", (-1).into())]),
        (2, vec![("clock", false.into()), ("clock_dc", 1.5.into())]),
        (
            2,
            vec![("clock", false.into()), ("clock_dc", (1u64 << 53).into())],
        ),
    ] {
        let err = verify_submission(&with_members(v, &members)).expect_err("refused");
        assert_eq!(err.reason(), "bad_payload", "v {v} {members:?}");
    }
}

#[test]
fn unknown_fields_in_a_current_version_payload_are_refused() {
    let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
    value["extra"] = 1.into();
    let bytes = sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&value).expect("json"),
        &device_key(),
    )
    .expect("signs");
    assert_eq!(
        verify_submission(&bytes).expect_err("refused").reason(),
        "bad_payload"
    );
}

#[test]
fn errors_on_payload_shape_never_echo_the_record_body() {
    // A body that is not an object: the error names the field, not its content.
    let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
    value["body"] = "Nguyễn Thị Thu Hà 049301000123".into();
    let bytes = sign_payload(
        MessageType::Submission,
        serde_json::to_vec(&value).expect("json"),
        &device_key(),
    )
    .expect("signs");
    let err = verify_submission(&bytes).expect_err("refused").to_string();
    assert!(
        !err.contains("049301000123") && !err.contains("Nguyễn"),
        "{err}"
    );
}

#[test]
fn receipt_acknowledges_exactly_its_link() {
    let h = Hash32::of(b"e2");
    let r = receipt(2, h);
    assert!(r.acknowledges(&device(), 2, &h));
    assert!(!r.acknowledges(&device(), 1, &h));
    assert!(!r.acknowledges(&device(), 2, &Hash32::of(b"other")));
    // Seq 0 (nothing stored yet) goes with the zero hash.
    assert!(sign(&receipt(0, Hash32::ZERO), &dc_key()).is_ok());
    assert!(sign(&receipt(0, h), &dc_key()).is_err());
}

/// Builds a tagged COSE_Sign1 by hand from raw protected bytes, validly
/// signed by the device key, to reach checks coset's builder cannot.
fn raw_sign1(protected: Vec<u8>, payload: Option<Vec<u8>>) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let to_sign = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.clone().unwrap_or_default()),
    ]);
    let mut tbs = Vec::new();
    coset::cbor::ser::into_writer(&to_sign, &mut tbs).expect("encodes");
    let sig = device_key().sign(&tbs).to_bytes().to_vec();
    let msg = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            payload.map_or(Value::Null, Value::Bytes),
            Value::Bytes(sig),
        ])),
    );
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&msg, &mut out).expect("encodes");
    out
}

fn protected(entries: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&Value::Map(entries), &mut out).expect("encodes");
    out
}

fn good_header() -> Vec<(Value, Value)> {
    let kid = KeyId::of(&device_key().verifying_key()).0.to_vec();
    vec![
        (Value::Integer(1.into()), Value::Integer((-8).into())),
        (
            Value::Integer(3.into()),
            Value::Text("application/json".into()),
        ),
        (Value::Integer(4.into()), Value::Bytes(kid)),
        (
            Value::Integer(16.into()),
            Value::Text(MessageType::Submission.typ().into()),
        ),
    ]
}

fn good_payload() -> Vec<u8> {
    serde_json::to_vec(&created(1, Hash32::ZERO)).expect("json")
}

#[test]
fn a_hand_built_message_matching_the_spec_verifies() {
    // Guards the helpers below: the same construction with nothing wrong passes.
    let bytes = raw_sign1(protected(good_header()), Some(good_payload()));
    assert_eq!(
        bytes,
        sign(&created(1, Hash32::ZERO), &device_key()).expect("signs")
    );
    assert!(verify_submission(&bytes).is_ok());
}

#[test]
fn a_protected_header_with_a_label_twice_is_not_cose() {
    let mut h = good_header();
    h.push((Value::Integer(1.into()), Value::Integer((-8).into())));
    let err =
        verify_submission(&raw_sign1(protected(h), Some(good_payload()))).expect_err("refused");
    assert_eq!(err.reason(), "not_cose", "{err}");
}

#[test]
fn bytes_after_the_protected_map_are_not_cose() {
    let mut p = protected(good_header());
    p.push(0xa0);
    let err = verify_submission(&raw_sign1(p, Some(good_payload()))).expect_err("refused");
    assert_eq!(err.reason(), "not_cose", "{err}");
}

#[test]
fn an_extra_protected_label_is_a_bad_header() {
    let mut h = good_header();
    h.push((Value::Integer(99.into()), Value::Null));
    let err =
        verify_submission(&raw_sign1(protected(h), Some(good_payload()))).expect_err("refused");
    assert_eq!(err.reason(), "bad_header", "{err}");
}

#[test]
fn a_detached_payload_is_refused_as_such() {
    let err = verify_submission(&raw_sign1(protected(good_header()), None)).expect_err("refused");
    assert_eq!(err.reason(), "detached_payload", "{err}");
}

#[test]
fn a_lone_surrogate_in_a_signed_payload_is_refused() {
    let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
    value["body"] = serde_json::json!({"note": "SURROGATE"});
    let text = serde_json::to_string(&value)
        .expect("json")
        .replace("SURROGATE", "\\ud800");
    let bytes =
        sign_payload(MessageType::Submission, text.into_bytes(), &device_key()).expect("signs");
    assert_eq!(
        verify_submission(&bytes).expect_err("refused").reason(),
        "bad_payload"
    );
}

#[test]
fn a_version_that_is_not_a_plain_integer_is_a_bad_payload() {
    for v in [
        serde_json::json!(1.0),
        serde_json::json!("1"),
        serde_json::json!(true),
        serde_json::json!(-1),
    ] {
        let mut value = serde_json::to_value(created(1, Hash32::ZERO)).expect("json");
        value["v"] = v.clone();
        let bytes = sign_payload(
            MessageType::Submission,
            serde_json::to_vec(&value).expect("json"),
            &device_key(),
        )
        .expect("signs");
        assert_eq!(
            verify_submission(&bytes).expect_err("refused").reason(),
            "bad_payload",
            "v = {v}"
        );
    }
}
