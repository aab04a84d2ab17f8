//! Chain rules: what a verified envelope means for its device's history.
//!
//! Each device signs envelopes with seq 1, 2, 3... and each envelope carries
//! `prev`, the hash of the complete bytes of the one before (zero for seq 1).
//! The DC keeps, per device, the last accepted link (its seq and hash) and
//! classifies every verified envelope against it with [`classify`]:
//!
//! | received seq      | condition                 | class                   |
//! |-------------------|---------------------------|-------------------------|
//! | last + 1          | `prev` = last hash        | [`Classification::Next`] |
//! | last + 1          | `prev` ≠ last hash        | [`Classification::Conflict`] (broken link: a fork or rewrite) |
//! | last              | same hash                 | [`Classification::Duplicate`] |
//! | last              | other hash                | [`Classification::Conflict`] (rewrite) |
//! | > last + 1        |                           | [`Classification::Gap`] |
//! | < last            |                           | [`Classification::Stale`] |
//!
//! With no history, "last" is seq 0 with the zero hash. A stale envelope is
//! compared with the stored copy of its seq using [`compare_stored`], which
//! gives Duplicate or Conflict. Nothing here has side effects.

use crate::hash::Hash32;

/// The last accepted link of a device's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Its seq.
    pub seq: u64,
    /// The hash of its complete envelope bytes.
    pub hash: Hash32,
}

impl ChainHead {
    /// The head of a device with no accepted envelope.
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        hash: Hash32::ZERO,
    };
}

/// What chain classification needs to know about a verified envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The envelope's seq.
    pub seq: u64,
    /// The `prev` it carries.
    pub prev: Hash32,
    /// The hash of its complete bytes.
    pub hash: Hash32,
}

/// Why an envelope conflicts with the accepted history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Same seq as an accepted envelope, other bytes.
    Rewrite,
    /// The next seq, but `prev` is not the hash of the accepted envelope
    /// before it: the device's history forked.
    BrokenLink,
}

/// The class of a verified envelope relative to its device's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classification {
    /// Extends the chain: store it and advance the head.
    Next,
    /// Exactly an accepted envelope again: store nothing, receipt again.
    Duplicate,
    /// Contradicts the accepted history: never store it as valid; keep it
    /// as evidence.
    Conflict(ConflictKind),
    /// Beyond the next seq: hold it until the missing ones arrive.
    Gap {
        /// The seq the chain needs next.
        expected: u64,
    },
    /// Older than the head: compare with the stored copy of its seq.
    Stale,
}

/// Classifies `link` against the device's last accepted link.
pub fn classify(head: &ChainHead, link: &Link) -> Classification {
    let next = head.seq.saturating_add(1);
    if link.seq == next {
        if link.prev == head.hash {
            Classification::Next
        } else {
            Classification::Conflict(ConflictKind::BrokenLink)
        }
    } else if link.seq == head.seq {
        compare_stored(&head.hash, &link.hash)
    } else if link.seq > next {
        Classification::Gap { expected: next }
    } else {
        Classification::Stale
    }
}

/// For an envelope whose seq is already stored: Duplicate when the bytes are
/// the same, a Rewrite conflict otherwise.
pub fn compare_stored(stored: &Hash32, received: &Hash32) -> Classification {
    if stored == received {
        Classification::Duplicate
    } else {
        Classification::Conflict(ConflictKind::Rewrite)
    }
}

/// The seq and `prev` of the envelope that follows `head`: what the agent
/// writes into its next envelope.
pub fn next_after(head: &ChainHead) -> (u64, Hash32) {
    (head.seq + 1, head.hash)
}
