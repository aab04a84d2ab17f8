//! `verify_many` accepts exactly what `Opened::verify` accepts one by one.

use motcua_protocol::{Opened, Submission, VerifyError, verify, verify_many};

use crate::support::{chain, device_key, stranger_key};

fn opened(bytes: &[u8]) -> Opened<'_, Submission> {
    Opened::parse(bytes).expect("well-formed")
}

fn one_by_one(msgs: &[Vec<u8>]) -> Vec<Result<motcua_protocol::Verified<Submission>, VerifyError>> {
    msgs.iter()
        .map(|m| verify::<Submission>(m, &device_key().verifying_key()))
        .collect()
}

#[test]
fn a_valid_batch_verifies_like_each_message_alone() {
    let msgs: Vec<Vec<u8>> = chain(40).into_iter().map(|(b, _)| b).collect();
    let key = device_key().verifying_key();
    let many = verify_many(msgs.iter().map(|m| (opened(m), key)).collect());
    assert_eq!(many, one_by_one(&msgs));
    assert!(many.iter().all(Result::is_ok));
}

#[test]
fn a_bad_member_fails_alone_and_the_rest_still_verify() {
    let mut msgs: Vec<Vec<u8>> = chain(10).into_iter().map(|(b, _)| b).collect();
    let n = msgs[3].len();
    msgs[3][n - 1] ^= 1; // signature
    let n = msgs[7].len();
    msgs[7][n - 40] ^= 1; // signature's S half
    let key = device_key().verifying_key();
    let many = verify_many(msgs.iter().map(|m| (opened(m), key)).collect());
    assert_eq!(many, one_by_one(&msgs));
    let bad: Vec<usize> = (0..10).filter(|&i| many[i].is_err()).collect();
    assert_eq!(bad, [3, 7]);
    assert!(matches!(many[3], Err(VerifyError::BadSignature)));
}

#[test]
fn the_wrong_key_is_named_as_such() {
    let msgs: Vec<Vec<u8>> = chain(3).into_iter().map(|(b, _)| b).collect();
    let stranger = stranger_key().verifying_key();
    let key = device_key().verifying_key();
    let many = verify_many(vec![
        (opened(&msgs[0]), key),
        (opened(&msgs[1]), stranger),
        (opened(&msgs[2]), key),
    ]);
    assert!(many[0].is_ok() && many[2].is_ok());
    assert!(matches!(many[1], Err(VerifyError::KeyMismatch { .. })));
}
