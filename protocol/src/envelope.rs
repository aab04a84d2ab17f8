//! The submission envelope: what a counter signs for every record change.
//!
//! The payload is a JSON object with exactly these members (see
//! `docs/PROTOCOL.md` for the byte-level rules):
//!
//! | member   | type    | meaning |
//! |----------|---------|---------|
//! | `v`      | integer | format version: 1, or 2 when `clock_dc` is present |
//! | `device` | string  | the signing device's id |
//! | `seq`    | integer | 1, 2, 3... per device, no gaps, at most 2^53 - 1 |
//! | `prev`   | string  | SHA-256 (hex) of the previous envelope's complete bytes; 64 zeros for seq 1 |
//! | `at`     | string  | wall-clock time of signing, RFC 3339 UTC |
//! | `clock`  | boolean | whether the clock was known synchronised when `at` was read |
//! | `clock_dc` | integer | version 2 only: `at` was derived from the DC's receipt times, within this many milliseconds |
//! | `staff`  | string  | the staff account that performed the action |
//! | `kind`   | string  | what changed, e.g. `dossier.created`, `dossier.status` |
//! | `body`   | object  | the record itself; its schema belongs to `kind` |

use serde::{Deserialize, Serialize};

use crate::chain::Link;
use crate::cose::{Message, MessageType, PayloadError, Verified};
use crate::hash::Hash32;
use crate::ids::{DeviceId, RecordKind, StaffId};
use crate::time::UtcTime;

/// The submission version that adds `clock_dc`: a counter signs version 1
/// unless its time was derived from the DC's receipts.
pub const SUBMISSION_DC_CLOCK_VERSION: u32 = 2;

/// Largest `seq` (and receipt `seq`): 2^53 - 1, the largest integer every
/// JSON implementation (JavaScript's included) reads exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// A counter's signed record change. `Debug` leaves out `body`, which
/// holds citizens' personal data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Format version: [`crate::FORMAT_VERSION`].
    pub v: u32,
    /// The signing device.
    pub device: DeviceId,
    /// Position in the device's chain, from 1.
    pub seq: u64,
    /// Hash of the previous envelope's complete bytes; [`Hash32::ZERO`] for seq 1.
    pub prev: Hash32,
    /// Wall-clock time at signing. Trust it only as far as `clock` says.
    pub at: UtcTime,
    /// Whether the device's clock was known synchronised when `at` was read
    /// (a box without a real-time clock can read 1970 after a power cut).
    pub clock: bool,
    /// Version 2 only: `at` was not read from a synchronised clock but
    /// derived from the DC's signed receipt times; this many milliseconds
    /// bound how far it may be from the DC's clock. `clock` is then false.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_u64"
    )]
    pub clock_dc: Option<u64>,
    /// The staff account that performed the action.
    pub staff: StaffId,
    /// What changed.
    pub kind: RecordKind,
    /// The record; a JSON object whose schema belongs to `kind`.
    pub body: serde_json::Value,
}

/// An optional member that, when present, is an integer (`null` is refused).
fn present_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(d).map(Some)
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("v", &self.v)
            .field("device", &self.device)
            .field("seq", &self.seq)
            .field("prev", &self.prev)
            .field("at", &self.at)
            .field("clock", &self.clock)
            .field("clock_dc", &self.clock_dc)
            .field("staff", &self.staff)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Message for Submission {
    const TYPE: MessageType = MessageType::Submission;

    fn version(&self) -> u32 {
        self.v
    }

    fn reads(v: u64) -> bool {
        v == u64::from(crate::FORMAT_VERSION) || v == u64::from(SUBMISSION_DC_CLOCK_VERSION)
    }

    fn check(&self) -> Result<(), PayloadError> {
        check_seq_link("seq", self.seq, &self.prev, 1)?;
        let field = |reason: &str| PayloadError::Field {
            field: "clock_dc",
            reason: reason.into(),
        };
        match (self.v, self.clock_dc) {
            (1, None) => {}
            (1, Some(_)) => return Err(field("only in version 2")),
            (_, None) => return Err(field("version 2 carries it")),
            (_, Some(_)) if self.clock => {
                return Err(field(
                    "goes with clock false (the clock was not synchronised)",
                ));
            }
            (_, Some(ms)) if ms > MAX_SEQ => {
                return Err(field(&format!("must be at most 2^53 - 1, got {ms}")));
            }
            (_, Some(_)) => {}
        }
        if !self.body.is_object() {
            return Err(PayloadError::Field {
                field: "body",
                reason: "must be a JSON object".into(),
            });
        }
        Ok(())
    }
}

/// The seq range and the zero-hash rule shared by submissions and receipts:
/// the zero hash stands for "nothing before", so it goes with the lowest seq
/// and only with it.
pub(crate) fn check_seq_link(
    field: &'static str,
    seq: u64,
    hash: &Hash32,
    lowest: u64,
) -> Result<(), PayloadError> {
    if !(lowest..=MAX_SEQ).contains(&seq) {
        return Err(PayloadError::Field {
            field,
            reason: format!("must be from {lowest} to {MAX_SEQ}, got {seq}"),
        });
    }
    if (seq == lowest) != (*hash == Hash32::ZERO) {
        return Err(PayloadError::Field {
            field,
            reason: format!("the zero hash goes with seq {lowest} and only with it (seq is {seq})"),
        });
    }
    Ok(())
}

impl Verified<Submission> {
    /// This envelope as a link of its device's chain.
    pub fn link(&self) -> Link {
        Link {
            seq: self.message.seq,
            prev: self.message.prev,
            hash: self.hash,
        }
    }
}
