//! The DC's receipt: the only thing that makes a record count as delivered.
//!
//! A receipt says "for `device`, I hold every envelope from seq 1 through
//! `seq`, and the one at `seq` hashes to `hash`". It is cumulative, so one
//! receipt acknowledges a whole window, and a lost receipt is repaired by the
//! next. An MQTT PUBACK means only that the broker took the message.
//!
//! | member   | type    | meaning |
//! |----------|---------|---------|
//! | `v`      | integer | format version, 1 |
//! | `device` | string  | the device whose chain is acknowledged |
//! | `seq`    | integer | highest contiguous seq stored; 0 when none is |
//! | `hash`   | string  | SHA-256 (hex) of the envelope at `seq`; 64 zeros when `seq` is 0 |
//! | `at`     | string  | DC time at signing, RFC 3339 UTC |

use serde::{Deserialize, Serialize};

use crate::cose::{Message, MessageType, PayloadError};
use crate::envelope::check_seq_link;
use crate::hash::Hash32;
use crate::ids::DeviceId;
use crate::time::UtcTime;

/// The DC's signed acknowledgement of a device's contiguous prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Format version: [`crate::FORMAT_VERSION`].
    pub v: u32,
    /// The device whose chain is acknowledged.
    pub device: DeviceId,
    /// Highest seq such that 1..=seq are all stored; 0 if none is.
    pub seq: u64,
    /// Hash of the stored envelope at `seq`.
    pub hash: Hash32,
    /// DC time at signing.
    pub at: UtcTime,
}

impl Message for Receipt {
    const TYPE: MessageType = MessageType::Receipt;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), PayloadError> {
        check_seq_link("seq", self.seq, &self.hash, 0)
    }
}

impl Receipt {
    /// Whether this receipt acknowledges the envelope at `seq` with `hash`,
    /// for `device`: the agent marks records synced only when it does.
    pub fn acknowledges(&self, device: &DeviceId, seq: u64, hash: &Hash32) -> bool {
        self.device == *device && self.seq == seq && self.hash == *hash
    }
}
