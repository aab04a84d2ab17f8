//! The chain decisions of the DC, written once for both backends.
//!
//! A backend opens a transaction, locks the device's row and hands
//! [`accept`] a [`ChainTx`]: a handful of plain reads and writes. All
//! deciding is done here, with `motcua_protocol::chain::classify`:
//!
//! - next: store it, advance the head, then release envelopes held for the
//!   seqs that now follow;
//! - duplicate (also a stale seq whose stored bytes are the same): nothing;
//! - conflict (rewrite, broken link, or a stale seq with other bytes):
//!   never stored as a record; kept as an alert with its bytes;
//! - gap: held (up to [`super::MAX_HELD_PER_DEVICE`]), stored later when
//!   the missing seqs arrive;
//! - device revoked: every envelope refused and kept as an alert.

use motcua_protocol::chain::{Classification, compare_stored};
use motcua_protocol::{
    ChainHead, ConflictKind, DeviceId, Hash32, KeyId, Link, RecordKind, Submission, UtcTime,
    Verified, classify,
};

use super::{Alert, MAX_HELD_PER_DEVICE, Result, StoreError, conflict_reason};

/// A verified envelope, ready for the chain rules.
#[derive(Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Its seq.
    pub seq: u64,
    /// Its `prev`.
    pub prev: Hash32,
    /// SHA-256 of `bytes`.
    pub hash: Hash32,
    /// The key that signed it.
    pub kid: KeyId,
    /// The device's `at`, as signed.
    pub at: UtcTime,
    /// The device's clock flag.
    pub clock: bool,
    /// The record kind.
    pub kind: RecordKind,
    /// The complete signed bytes.
    pub bytes: Vec<u8>,
    /// The topic it came on (for alerts).
    pub topic: String,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("seq", &self.seq)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// A verified submission that arrived on `topic`.
    pub fn from_verified(v: Verified<Submission>, topic: &str) -> Incoming {
        Incoming {
            seq: v.message.seq,
            prev: v.message.prev,
            hash: v.hash,
            kid: v.kid,
            at: v.message.at,
            clock: v.message.clock,
            kind: v.message.kind,
            bytes: v.bytes,
            topic: topic.to_owned(),
        }
    }

    fn link(&self) -> Link {
        Link {
            seq: self.seq,
            prev: self.prev,
            hash: self.hash,
        }
    }
}

/// What happened to one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored as the next record.
    Stored,
    /// Already stored with the same bytes.
    Duplicate,
    /// Beyond a gap; held.
    Held,
    /// Beyond a gap, and the device already has the most held envelopes
    /// allowed: not kept; the counter sends it again after the next receipt.
    NotHeld,
    /// Contradicts the accepted history; kept as an alert.
    Conflict(ConflictKind),
    /// The device is revoked (or was never enrolled); kept as an alert.
    Refused,
}

/// The result of one [`accept`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The device's head after the call: what the receipt acknowledges.
    /// `None` when the device is unknown or revoked (no receipt is sent).
    pub head: Option<ChainHead>,
    /// One outcome per input envelope, in order.
    pub outcomes: Vec<Outcome>,
    /// Held envelopes stored because their gap closed.
    pub released: u64,
}

/// What [`accept`] needs from a backend's open transaction.
pub trait ChainTx {
    /// Locks the device's row and returns its head, or `None` when it is
    /// not enrolled; `Some((head, true))` when it is revoked.
    fn lock_device(&mut self, device: &DeviceId) -> Result<Option<(ChainHead, bool)>>;
    /// The stored hash at `seq`.
    fn stored_hash(&mut self, device: &DeviceId, seq: u64) -> Result<Option<Hash32>>;
    /// Inserts an accepted record.
    fn insert_record(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()>;
    /// Sets the device's head and last-seen time.
    fn set_head(&mut self, device: &DeviceId, head: &ChainHead, now: &UtcTime) -> Result<()>;
    /// How many envelopes the device has held.
    fn held_count(&mut self, device: &DeviceId) -> Result<u64>;
    /// Holds an envelope (ignoring an identical one already held).
    fn hold(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()>;
    /// Removes and returns held envelopes with seq up to `through`, in seq
    /// order.
    fn take_held(&mut self, device: &DeviceId, through: u64) -> Result<Vec<Incoming>>;
    /// Records an alert.
    fn alert(&mut self, alert: &Alert) -> Result<()>;
}

/// Applies the chain rules to `items`, in order, inside the caller's
/// transaction.
pub fn accept(
    tx: &mut impl ChainTx,
    device: &DeviceId,
    items: &[Incoming],
    now: &UtcTime,
) -> Result<Accepted> {
    let refused = |tx: &mut dyn FnMut(&Alert) -> Result<()>, reason: &str| -> Result<Accepted> {
        for item in items {
            tx(&alert_for(device, item, reason, now))?;
        }
        Ok(Accepted {
            head: None,
            outcomes: vec![Outcome::Refused; items.len()],
            released: 0,
        })
    };
    let (start, revoked) = match tx.lock_device(device)? {
        None => return refused(&mut |a| tx.alert(a), "unknown_device"),
        Some(s) => s,
    };
    if revoked {
        return refused(&mut |a| tx.alert(a), "revoked");
    }
    let mut head = start;
    let mut held = None;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut released = 0;
    for item in items {
        let outcome = match decide(tx, device, &head, item)? {
            Classification::Next => {
                tx.insert_record(device, item, now)?;
                head = ChainHead {
                    seq: item.seq,
                    hash: item.hash,
                };
                released += release(tx, device, &mut head, now)?;
                Outcome::Stored
            }
            Classification::Duplicate => Outcome::Duplicate,
            Classification::Conflict(kind) => {
                tx.alert(&alert_for(device, item, conflict_reason(kind), now))?;
                Outcome::Conflict(kind)
            }
            Classification::Gap { .. } => {
                let count = match held {
                    Some(n) => n,
                    None => tx.held_count(device)?,
                };
                if count < MAX_HELD_PER_DEVICE {
                    tx.hold(device, item, now)?;
                    held = Some(count + 1);
                    Outcome::Held
                } else {
                    held = Some(count);
                    Outcome::NotHeld
                }
            }
            Classification::Stale => {
                return Err(StoreError::Corrupt("stale after comparison".into()));
            }
        };
        outcomes.push(outcome);
    }
    tx.set_head(device, &head, now)?;
    Ok(Accepted {
        head: Some(head),
        outcomes,
        released,
    })
}

/// Classifies, resolving a stale seq against the stored copy.
fn decide(
    tx: &mut impl ChainTx,
    device: &DeviceId,
    head: &ChainHead,
    item: &Incoming,
) -> Result<Classification> {
    Ok(match classify(head, &item.link()) {
        Classification::Stale => match tx.stored_hash(device, item.seq)? {
            Some(stored) => compare_stored(&stored, &item.hash),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "device {device}: no stored record at seq {} below the head {}",
                    item.seq, head.seq
                )));
            }
        },
        c => c,
    })
}

/// Stores held envelopes that now follow the head, as far as they reach.
/// Held envelopes at or below the head are settled on the way: duplicates
/// dropped, contradictions kept as alerts.
fn release(
    tx: &mut impl ChainTx,
    device: &DeviceId,
    head: &mut ChainHead,
    now: &UtcTime,
) -> Result<u64> {
    let mut stored = 0;
    loop {
        let candidates = tx.take_held(device, head.seq + 1)?;
        if candidates.is_empty() {
            return Ok(stored);
        }
        let mut advanced = false;
        for item in &candidates {
            match decide(tx, device, head, item)? {
                Classification::Next => {
                    tx.insert_record(device, item, now)?;
                    *head = ChainHead {
                        seq: item.seq,
                        hash: item.hash,
                    };
                    stored += 1;
                    advanced = true;
                }
                Classification::Duplicate => {}
                Classification::Conflict(kind) => {
                    tx.alert(&alert_for(device, item, conflict_reason(kind), now))?;
                }
                Classification::Gap { .. } | Classification::Stale => {
                    return Err(StoreError::Corrupt(format!(
                        "held seq {} not settled at head {}",
                        item.seq, head.seq
                    )));
                }
            }
        }
        if !advanced {
            return Ok(stored);
        }
    }
}

fn alert_for(device: &DeviceId, item: &Incoming, reason: &str, now: &UtcTime) -> Alert {
    Alert {
        at: *now,
        device: Some(device.clone()),
        topic: item.topic.clone(),
        reason: reason.to_owned(),
        seq: Some(item.seq),
        detail: format!("seq {} hash {} kid {}", item.seq, item.hash, item.kid),
        bytes: item.bytes.clone(),
    }
}
