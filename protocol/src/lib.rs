//! The wire contract between a motcua counter agent and the data centre (DC).
//!
//! This crate does no I/O: no files, no sockets, no clock, no tokio. It turns
//! values into signed bytes and signed bytes back into values, and decides
//! what a received envelope means for a device's hash chain. Everything here
//! is specified byte for byte in `docs/PROTOCOL.md`, with test vectors in
//! `protocol/testdata/vectors.json`.
//!
//! # Layout
//! - [`ids`]: checked identifiers shared by both sides (device id, unit code,
//!   staff id, record kind).
//! - [`hash`]: SHA-256 digests of complete envelopes, the links of the chain.
//! - [`keys`]: Ed25519 key ids and fingerprints, the enrollment line.
//! - [`time`](mod@crate::time): the UTC timestamp format of the `at` fields.
//! - [`cose`]: COSE_Sign1 signing and strict verification, generic over a
//!   [`Message`] type so a signature made for one kind of message is never
//!   accepted as another.
//! - [`envelope`]: the submission a counter signs for every record change.
//! - [`bundle`]: several submissions in one MQTT message.
//! - [`receipt`]: the DC's signed acknowledgement.
//! - [`chain`]: pure functions classifying a verified envelope against the
//!   last accepted link of its device's chain.
//! - [`topics`]: every MQTT topic name and its QoS.
//! - [`health`]: the counter's unsigned health report and presence.
//! - [`down`]: what the DC signs and sends down: catalogue, status
//!   updates, settings.

pub mod bundle;
pub mod chain;
pub mod cose;
pub mod down;
pub mod envelope;
pub mod hash;
pub mod health;
pub mod ids;
mod json;
pub mod keys;
pub mod receipt;
pub mod time;
pub mod topics;

pub use chain::{ChainHead, Classification, ConflictKind, Link, classify};
pub use cose::{
    Message, MessageType, Opened, PayloadError, SignError, Verified, VerifyError, sign, verify,
    verify_many,
};
pub use envelope::{SUBMISSION_DC_CLOCK_VERSION, Submission};
pub use hash::Hash32;
pub use health::{Health, HealthError, Presence};
pub use ids::{DeviceId, IdError, RecordKind, StaffId, UnitCode};
pub use keys::{Enrollment, EnrollmentError, KeyId};
pub use receipt::Receipt;
pub use time::UtcTime;

/// The payload format version this crate writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Largest complete envelope or receipt, in bytes, that either side accepts.
///
/// Checked before any decoding. A dossier record carries structured fields
/// and a list of document names, never scans, so 64 KiB leaves a wide margin
/// while bounding what a hostile peer can make the receiver parse.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
