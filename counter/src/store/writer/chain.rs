//! The device's hash chain as the writer extends it: the head it tracks,
//! the device binding, the clock check every new record passes, and the
//! signing and appending of the next journal envelope.

use motcua_protocol::{
    ChainHead, DeviceId, Hash32, RecordKind, StaffId, Submission, UtcTime, sign,
};
use rusqlite::{Connection, OptionalExtension, params};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::WriterConfig;
use crate::clock::{Quality, Reading};
use crate::store::{Refusal, Step, StoreError};

/// No record may be stamped before this: the software did not exist. A box
/// whose clock reads earlier lost its time in a power cut.
pub const CLOCK_FLOOR: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// How far behind the last record an unsynchronised clock may read before
/// it is considered wrong (a small backwards step is normal).
pub const CLOCK_SLACK: Duration = Duration::days(1);

/// The chain head as the writer tracks it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// The last seq and hash.
    pub chain: ChainHead,
    /// The last record's time, if any.
    pub last_at: Option<OffsetDateTime>,
}

/// Records the device a new database belongs to, or checks it.
pub(super) fn bind_device(
    conn: &Connection,
    device: &DeviceId,
    now: &Reading,
) -> Result<(), StoreError> {
    let found: Option<String> = conn
        .query_row("SELECT device_id FROM device WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .step("reading the device")?;
    match found {
        Some(found) if found != device.as_str() => Err(StoreError::WrongDevice {
            expected: device.to_string(),
            found,
        }),
        Some(_) => Ok(()),
        None => {
            conn.execute(
                "INSERT INTO device (id, device_id, created_at) VALUES (1, ?, ?)",
                params![device.as_str(), UtcTime::new(now.at).to_string()],
            )
            .step("recording the device")?;
            Ok(())
        }
    }
}

/// The chain head stored in the journal.
pub(super) fn load_head(conn: &Connection) -> Result<Head, StoreError> {
    let row: Option<(i64, Vec<u8>, String)> = conn
        .query_row(
            "SELECT seq, hash, at FROM journal ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .step("reading the chain head")?;
    Ok(match row {
        None => Head {
            chain: ChainHead::EMPTY,
            last_at: None,
        },
        Some((seq, hash, at)) => Head {
            chain: ChainHead {
                seq: seq as u64,
                hash: hash32(&hash),
            },
            last_at: UtcTime::parse(&at).ok().map(|t| t.get()),
        },
    })
}

/// A stored hash as a [`Hash32`] (zeros if it is not 32 bytes long).
pub(crate) fn hash32(bytes: &[u8]) -> Hash32 {
    let mut h = [0u8; 32];
    if bytes.len() == 32 {
        h.copy_from_slice(bytes);
    }
    Hash32(h)
}

/// Refuses a clock before the software existed or, not known right, more
/// than [`CLOCK_SLACK`] behind the last record. A time derived from the
/// DC is as trusted as a synchronised clock.
pub(super) fn check_clock(now: &Reading, head: &Head) -> Result<(), Refusal> {
    let floor = match head.last_at {
        Some(last) if !now.trusted() => (last - CLOCK_SLACK).max(CLOCK_FLOOR),
        _ => CLOCK_FLOOR,
    };
    if now.at < floor {
        return Err(Refusal::ClockWrong {
            now: UtcTime::new(now.at).to_string(),
            floor: UtcTime::new(floor).to_string(),
        });
    }
    Ok(())
}

/// What one journal record says.
pub(super) struct Record<'a> {
    /// Who did it.
    pub staff: StaffId,
    /// The record kind (`dossier.created`, ...).
    pub kind: &'static str,
    /// The dossier it is about.
    pub code: &'a str,
    /// The signed body.
    pub body: serde_json::Value,
}

/// Signs the next envelope of the chain and appends it to the journal.
pub(super) fn append(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &mut Head,
    now: &Reading,
    rec: Record<'_>,
) -> Result<u64, StoreError> {
    let Record {
        staff,
        kind,
        code,
        body,
    } = rec;
    let (seq, prev) = motcua_protocol::chain::next_after(&head.chain);
    let at = UtcTime::new(now.at);
    let clock_dc = match now.quality {
        Quality::Dc { bound_ms } => Some(bound_ms),
        Quality::Synced | Quality::Unknown => None,
    };
    let msg = Submission {
        v: if clock_dc.is_some() {
            motcua_protocol::SUBMISSION_DC_CLOCK_VERSION
        } else {
            motcua_protocol::FORMAT_VERSION
        },
        device: cfg.device.clone(),
        seq,
        prev,
        at,
        clock: now.synced(),
        clock_dc,
        staff,
        kind: kind
            .parse::<RecordKind>()
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        body,
    };
    let bytes = sign(&msg, &cfg.key)?;
    let hash = Hash32::of(&bytes);
    conn.prepare_cached(
        "INSERT INTO journal (seq, hash, prev, kind, dossier_code, at, envelope, synced) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
    )
    .and_then(|mut s| s.execute(params![seq as i64, hash.0.to_vec(), prev.0.to_vec(), kind, code, at.to_string(), bytes]))
    .step("appending to the journal")?;
    head.chain = ChainHead { seq, hash };
    head.last_at = Some(now.at);
    Ok(seq)
}
