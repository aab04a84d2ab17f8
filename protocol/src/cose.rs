//! COSE_Sign1 (RFC 9052) with EdDSA over Ed25519: how every message between
//! a counter and the DC is signed and verified.
//!
//! # What is signed
//! ```text
//! COSE_Sign1 = #6.18([              ; always tagged
//!     protected:   bstr .cbor {
//!         1  (alg):          -8                  ; EdDSA
//!         3  (content type): "application/json"
//!         4  (kid):          bstr, 16 bytes      ; see keys::KeyId
//!         16 (typ):          "application/vnd.motcua.<type>+cose"
//!     },
//!     unprotected: {},                           ; must be empty
//!     payload:     bstr,                         ; JSON, never detached
//!     signature:   bstr, 64 bytes                ; Ed25519 over Sig_structure
//! ])
//! Sig_structure = ["Signature1", protected, h'' (external_aad), payload]
//! ```
//!
//! # Verification order
//! [`Opened::parse`] checks, before any cryptography and in this order: the
//! size limit, the COSE structure, that the bytes are the one canonical
//! encoding of what they decode to (so nobody but the signer can make two
//! byte strings, and so two chain hashes, for one signature), an empty
//! unprotected header, the exact set of protected parameters, and the `typ`
//! of the expected [`MessageType`]. The caller then looks up the key named by
//! [`Opened::kid`] and calls [`Opened::verify`], which checks the signature
//! over the received bytes (nothing is re-serialised before verifying), then
//! reads the payload strictly: no duplicate keys, no trailing bytes, known
//! format version, no unknown fields.

use std::fmt;
use std::marker::PhantomData;

use coset::cbor::value::Value;
use coset::iana;
use coset::{
    CoseSign1, CoseSign1Builder, HeaderBuilder, Label, RegisteredLabelWithPrivate,
    TaggedCborSerializable,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hash::Hash32;
use crate::json::{self, JsonError};
use crate::keys::{KEY_ID_LEN, KeyId};
use crate::{FORMAT_VERSION, MAX_MESSAGE_BYTES};

/// The COSE header label of `typ` (RFC 9596).
pub const TYP_LABEL: i64 = 16;
/// The content type of every payload.
pub const CONTENT_TYPE: &str = "application/json";
/// The external additional authenticated data: always empty.
pub const EXTERNAL_AAD: &[u8] = b"";

/// What a signed message is. Carried in the protected `typ` header so that a
/// signature made for one type can never be accepted as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A counter's signed record change ([`crate::Submission`]).
    Submission,
    /// The DC's signed acknowledgement ([`crate::Receipt`]).
    Receipt,
    /// The DC's procedure catalogue and calendar ([`crate::down::Catalogue`]).
    Catalogue,
    /// Status changes decided elsewhere, for one counter
    /// ([`crate::down::StatusUpdates`]).
    StatusUpdates,
    /// Settings the DC overrides on one counter ([`crate::down::Settings`]).
    Settings,
    /// The receiving units' names and places ([`crate::down::Units`]).
    Units,
}

impl MessageType {
    /// Every message type, for tables and tests.
    pub const ALL: [MessageType; 6] = [
        MessageType::Submission,
        MessageType::Receipt,
        MessageType::Catalogue,
        MessageType::StatusUpdates,
        MessageType::Settings,
        MessageType::Units,
    ];

    /// The `typ` header value.
    pub fn typ(self) -> &'static str {
        match self {
            MessageType::Submission => "application/vnd.motcua.submission+cose",
            MessageType::Receipt => "application/vnd.motcua.receipt+cose",
            MessageType::Catalogue => "application/vnd.motcua.catalogue+cose",
            MessageType::StatusUpdates => "application/vnd.motcua.status-updates+cose",
            MessageType::Settings => "application/vnd.motcua.settings+cose",
            MessageType::Units => "application/vnd.motcua.units+cose",
        }
    }

    /// The largest complete message of this type either side accepts:
    /// [`MAX_MESSAGE_BYTES`], or [`crate::down::MAX_CATALOGUE_BYTES`] for
    /// the catalogue and the units.
    pub fn max_bytes(self) -> usize {
        match self {
            MessageType::Catalogue | MessageType::Units => crate::down::MAX_CATALOGUE_BYTES,
            _ => MAX_MESSAGE_BYTES,
        }
    }

    /// The message type whose `typ` header value is `typ`.
    pub fn from_typ(typ: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.typ() == typ)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessageType::Submission => "submission",
            MessageType::Receipt => "receipt",
            MessageType::Catalogue => "catalogue",
            MessageType::StatusUpdates => "status updates",
            MessageType::Settings => "settings",
            MessageType::Units => "units",
        })
    }
}

/// A payload type that can be signed as a COSE_Sign1 message.
pub trait Message: Serialize + DeserializeOwned {
    /// The type carried in the `typ` header.
    const TYPE: MessageType;

    /// The payload's format version (`v`).
    fn version(&self) -> u32;

    /// Whether this build reads (and signs) version `v` of the type.
    fn reads(v: u64) -> bool {
        v == u64::from(FORMAT_VERSION)
    }

    /// Rules the type system cannot express (e.g. seq 1 links to the zero
    /// hash). Checked before signing and after verifying.
    fn check(&self) -> Result<(), PayloadError>;
}

/// Why a payload is not acceptable, though its signature may be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Duplicate keys, trailing bytes, not JSON, or the wrong shape.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A format version this build does not read.
    #[error("payload format version {found} is not supported by this build")]
    UnsupportedVersion {
        /// The `v` the payload carried.
        found: u64,
    },
    /// A field breaks a rule of the protocol.
    #[error("payload field {field}: {reason}")]
    Field {
        /// The offending field.
        field: &'static str,
        /// What rule it breaks.
        reason: String,
    },
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The payload breaks a protocol rule.
    #[error("refusing to sign: {0}")]
    Payload(#[from] PayloadError),
    /// The signed message would exceed [`MAX_MESSAGE_BYTES`].
    #[error("refusing to sign: the message would be {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The size the message would have had.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// CBOR encoding failed (not expected for well-formed inputs).
    #[error("CBOR encoding failed: {0}")]
    Encode(String),
}

/// Why received bytes were refused. Every variant names the step that failed;
/// [`VerifyError::reason`] gives a stable short code for counters and alerts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// More bytes than [`MAX_MESSAGE_BYTES`]; nothing was decoded.
    #[error("message is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The received length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a tagged COSE_Sign1 structure, or bytes after it.
    #[error("not a tagged COSE_Sign1 message: {0}")]
    NotCose(String),
    /// Decodes, but is not the canonical encoding of what it decodes to.
    #[error("COSE_Sign1 is not canonically encoded (indefinite or over-long lengths, or padding)")]
    NotCanonical,
    /// The unprotected header is not empty.
    #[error("the unprotected header must be empty")]
    UnprotectedHeader,
    /// A protected header parameter is missing, has a wrong value, or is not
    /// one the protocol defines.
    #[error("protected header: {0}")]
    Header(String),
    /// The `typ` is a known type, but not the one expected here.
    #[error("message type is {found}, expected {expected}")]
    WrongType {
        /// The type this caller accepts.
        expected: MessageType,
        /// The type the message declares.
        found: String,
    },
    /// The payload is detached (nil).
    #[error("the payload is detached; motcua messages always carry it")]
    DetachedPayload,
    /// The key handed to [`Opened::verify`] is not the one the `kid` names.
    #[error("the message names key {kid}, but the key supplied is {supplied}")]
    KeyMismatch {
        /// The key id in the message.
        kid: KeyId,
        /// The key id of the key supplied.
        supplied: KeyId,
    },
    /// The Ed25519 signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The signature is valid but the payload is not acceptable.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl VerifyError {
    /// A stable, short code for metrics labels and alert records.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "too_large",
            VerifyError::NotCose(_) => "not_cose",
            VerifyError::NotCanonical => "not_canonical",
            VerifyError::UnprotectedHeader => "unprotected_header",
            VerifyError::Header(_) => "bad_header",
            VerifyError::WrongType { .. } => "wrong_type",
            VerifyError::DetachedPayload => "detached_payload",
            VerifyError::KeyMismatch { .. } => "key_mismatch",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Payload(PayloadError::UnsupportedVersion { .. }) => "unsupported_version",
            VerifyError::Payload(_) => "bad_payload",
        }
    }
}

/// Signs `msg` with `key`: the complete, tagged COSE_Sign1 bytes.
///
/// Deterministic: Ed25519 signatures are, and the payload is serialised in
/// field declaration order, so the same inputs always give the same bytes.
pub fn sign<M: Message>(msg: &M, key: &SigningKey) -> Result<Vec<u8>, SignError> {
    if !M::reads(msg.version().into()) {
        return Err(PayloadError::UnsupportedVersion {
            found: msg.version().into(),
        }
        .into());
    }
    msg.check()?;
    let payload = serde_json::to_vec(msg).map_err(|e| SignError::Encode(e.to_string()))?;
    sign_payload(M::TYPE, payload, key)
}

/// Signs raw payload bytes as a message of type `typ`. Public so tests and
/// the vector generator can sign payloads that [`sign`] would refuse.
pub fn sign_payload(
    typ: MessageType,
    payload: Vec<u8>,
    key: &SigningKey,
) -> Result<Vec<u8>, SignError> {
    let kid = KeyId::of(&key.verifying_key());
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_type(CONTENT_TYPE.to_owned())
        .key_id(kid.0.to_vec())
        .value(TYP_LABEL, Value::Text(typ.typ().to_owned()))
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(EXTERNAL_AAD, |data| key.sign(data).to_bytes().to_vec())
        .build();
    let bytes = sign1
        .to_tagged_vec()
        .map_err(|e| SignError::Encode(e.to_string()))?;
    if bytes.len() > typ.max_bytes() {
        return Err(SignError::TooLarge {
            len: bytes.len(),
            max: typ.max_bytes(),
        });
    }
    Ok(bytes)
}

/// A message whose structure and headers passed every check that needs no
/// key. Its signature is not verified yet: use [`Opened::verify`]. `Debug`
/// shows the key id only (the payload may hold personal data).
pub struct Opened<'a, M> {
    bytes: &'a [u8],
    kid: KeyId,
    sign1: CoseSign1,
    _type: PhantomData<M>,
}

/// A message whose signature verified and whose payload passed every check.
/// `Debug` shows the message's own `Debug`, the hash and the key id, never
/// the raw bytes.
#[derive(Clone, PartialEq)]
pub struct Verified<M> {
    /// The payload.
    pub message: M,
    /// The complete received bytes, exactly as verified.
    pub bytes: Vec<u8>,
    /// SHA-256 of [`Verified::bytes`]: this message's link in a chain.
    pub hash: Hash32,
    /// The key that signed it.
    pub kid: KeyId,
}

impl<M> fmt::Debug for Opened<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("kid", &self.kid)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl<M: fmt::Debug> fmt::Debug for Verified<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("message", &self.message)
            .field("hash", &self.hash)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn header_err(what: impl Into<String>) -> VerifyError {
    VerifyError::Header(what.into())
}

impl<'a, M: Message> Opened<'a, M> {
    /// Checks everything about `bytes` that needs no key, for a message of
    /// type `M`. See the module doc for the order of checks.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, VerifyError> {
        if bytes.len() > M::TYPE.max_bytes() {
            return Err(VerifyError::TooLarge {
                len: bytes.len(),
                max: M::TYPE.max_bytes(),
            });
        }
        let sign1 =
            CoseSign1::from_tagged_slice(bytes).map_err(|e| VerifyError::NotCose(e.to_string()))?;
        let again = sign1
            .clone()
            .to_tagged_vec()
            .map_err(|_| VerifyError::NotCanonical)?;
        if again != bytes {
            return Err(VerifyError::NotCanonical);
        }
        if !sign1.unprotected.is_empty() {
            return Err(VerifyError::UnprotectedHeader);
        }
        let h = &sign1.protected.header;
        if h.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) {
            return Err(header_err("alg must be EdDSA (-8)"));
        }
        if h.content_type != Some(coset::ContentType::Text(CONTENT_TYPE.to_owned())) {
            return Err(header_err("content type must be \"application/json\""));
        }
        let kid = KeyId::from_slice(&h.key_id).ok_or_else(|| {
            header_err(format!(
                "kid must be {KEY_ID_LEN} bytes, got {}",
                h.key_id.len()
            ))
        })?;
        if !h.crit.is_empty()
            || !h.iv.is_empty()
            || !h.partial_iv.is_empty()
            || !h.counter_signatures.is_empty()
        {
            return Err(header_err(
                "only alg, content type, kid and typ are allowed",
            ));
        }
        let typ = match &h.rest[..] {
            [(Label::Int(TYP_LABEL), Value::Text(t))] => t.as_str(),
            _ => {
                return Err(header_err(
                    "exactly one typ (16) text parameter is required beside alg, content type and kid",
                ));
            }
        };
        if typ != M::TYPE.typ() {
            return Err(VerifyError::WrongType {
                expected: M::TYPE,
                found: typ.chars().take(80).collect(),
            });
        }
        if sign1.payload.is_none() {
            return Err(VerifyError::DetachedPayload);
        }
        Ok(Opened {
            bytes,
            kid,
            sign1,
            _type: PhantomData,
        })
    }

    /// The complete bytes of the message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The key id the message names: which key to look up for [`Opened::verify`].
    pub fn kid(&self) -> KeyId {
        self.kid
    }

    /// Verifies the signature with `key`, then reads the payload strictly.
    pub fn verify(self, key: &VerifyingKey) -> Result<Verified<M>, VerifyError> {
        let supplied = KeyId::of(key);
        if supplied != self.kid {
            return Err(VerifyError::KeyMismatch {
                kid: self.kid,
                supplied,
            });
        }
        self.sign1.verify_signature(EXTERNAL_AAD, |sig, data| {
            let sig = Signature::from_slice(sig).map_err(|_| VerifyError::BadSignature)?;
            // verify_strict refuses non-canonical S and small-order keys,
            // so a valid signature cannot be altered into another one.
            key.verify_strict(data, &sig)
                .map_err(|_| VerifyError::BadSignature)
        })?;
        self.accept_verified()
    }
}

impl<'a, M: Message> Opened<'a, M> {
    /// The Sig_structure bytes and the signature, for batch verification.
    fn signed_parts(&self) -> (Vec<u8>, Option<Signature>) {
        (
            self.sign1.tbs_data(EXTERNAL_AAD),
            Signature::from_slice(&self.sign1.signature).ok(),
        )
    }
}

/// Verifies many opened messages, each with its key, accepting exactly
/// what [`Opened::verify`] accepts one by one, faster: the signatures are
/// checked together with one Ed25519 batch verification.
///
/// A batch equation does not make `verify_strict`'s checks, so they are
/// made here first: a message whose key or whose `R` is of small order, or
/// whose `R` is not a point, is verified alone (and refused there). `S`
/// must be canonical in both paths (ed25519-dalek without legacy
/// compatibility). When the batch fails, every message is verified alone,
/// so each gets its own result. Results are in input order.
pub fn verify_many<M: Message>(
    items: Vec<(Opened<'_, M>, VerifyingKey)>,
) -> Vec<Result<Verified<M>, VerifyError>> {
    let mut batch_ok = false;
    let mut parts = Vec::with_capacity(items.len());
    let mut eligible = true;
    for (opened, key) in &items {
        let (tbs, sig) = opened.signed_parts();
        let strict_safe = KeyId::of(key) == opened.kid
            && !key.is_weak()
            && sig.as_ref().is_some_and(|s| {
                curve25519_dalek::edwards::CompressedEdwardsY(s.r_bytes().to_owned())
                    .decompress()
                    .is_some_and(|r| !r.is_small_order())
            });
        eligible &= strict_safe;
        parts.push((tbs, sig));
    }
    if eligible && items.len() > 1 {
        let msgs: Vec<&[u8]> = parts.iter().map(|(t, _)| t.as_slice()).collect();
        let sigs: Vec<Signature> = parts.iter().filter_map(|(_, s)| *s).collect();
        let keys: Vec<VerifyingKey> = items.iter().map(|(_, k)| *k).collect();
        batch_ok =
            sigs.len() == msgs.len() && ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok();
    }
    items
        .into_iter()
        .map(|(opened, key)| {
            if batch_ok {
                opened.accept_verified()
            } else {
                opened.verify(&key)
            }
        })
        .collect()
}

impl<M: Message> Opened<'_, M> {
    /// The rest of [`Opened::verify`] once the signature is known good.
    fn accept_verified(self) -> Result<Verified<M>, VerifyError> {
        let payload = self
            .sign1
            .payload
            .as_deref()
            .ok_or(VerifyError::DetachedPayload)?;
        let message = read_payload::<M>(payload)?;
        Ok(Verified {
            message,
            bytes: self.bytes.to_vec(),
            hash: Hash32::of(self.bytes),
            kid: self.kid,
        })
    }
}

#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u64,
}

/// Reads a verified payload: strict JSON, then the version, then the type.
fn read_payload<M: Message>(payload: &[u8]) -> Result<M, PayloadError> {
    json::check_strict(payload)?;
    // The version is read alone first, so a newer payload is reported as
    // "unsupported version", not as "unknown field".
    let VersionOnly { v } = json::parse_typed(payload)?;
    // Section 4's integer bound holds for `v` too: past it, the payload
    // is malformed, not of an unknown version.
    if v > crate::envelope::MAX_SEQ {
        return Err(PayloadError::Field {
            field: "v",
            reason: format!("must be at most 2^53 - 1, got {v}"),
        });
    }
    if !M::reads(v) {
        return Err(PayloadError::UnsupportedVersion { found: v });
    }
    let message: M = json::parse_typed(payload)?;
    message.check()?;
    Ok(message)
}

/// Opens and verifies `bytes` as an `M` in one step, with a known key.
pub fn verify<M: Message>(bytes: &[u8], key: &VerifyingKey) -> Result<Verified<M>, VerifyError> {
    Opened::<M>::parse(bytes)?.verify(key)
}
