//! A DC receipt: verified with the DC's key, checked against this device
//! and its journal, kept as proof, and every envelope up to its seq marked
//! synced. A receipt naming another hash at its seq is a fork.

use ed25519_dalek::VerifyingKey;
use motcua_protocol::{Receipt, UtcTime, verify};
use rusqlite::params;

use super::chain::hash32;
use super::engine::{Ctx, Operation, Stop};
use crate::store::{Refusal, Step};

/// The effect of a DC receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Every seq up to this one is now synced.
    pub through: u64,
    /// How many envelopes this receipt marked synced.
    pub newly: u64,
    /// The DC's time when it signed the receipt.
    pub dc_at: UtcTime,
}

/// Accept a DC receipt.
pub(super) struct AcceptReceipt {
    /// The signed receipt as received.
    pub receipt: Vec<u8>,
    /// The DC's key.
    pub dc_key: VerifyingKey,
}

impl Operation for AcceptReceipt {
    type Output = Synced;

    fn adds_data(&self) -> bool {
        false
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<Synced, Stop> {
        let (conn, cfg) = (cx.conn, cx.cfg);
        let bytes = &self.receipt;
        let v =
            verify::<Receipt>(bytes, &self.dc_key).map_err(|e| Refusal::Receipt(e.to_string()))?;
        let r = v.message;
        if r.device != cfg.device {
            return Err(Refusal::Receipt(format!(
                "it is for device {}, not {}",
                r.device, cfg.device
            ))
            .into());
        }
        if r.seq > cx.head.chain.seq {
            return Err(Refusal::Receipt(format!(
                "it acknowledges seq {}, beyond this counter's last seq {}",
                r.seq, cx.head.chain.seq
            ))
            .into());
        }
        // Kept as proof, and as the time of the DC's last word (a repeated
        // receipt for the same seq refreshes it).
        conn.execute(
            "INSERT INTO receipts (seq, receipt, stored_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (seq) DO UPDATE SET receipt = ?2, stored_at = ?3",
            params![
                r.seq as i64,
                bytes,
                UtcTime::new(cfg.clock.now().at).to_string()
            ],
        )
        .step("keeping the receipt")?;
        if r.seq == 0 {
            return Ok(Synced {
                through: 0,
                newly: 0,
                dc_at: r.at,
            });
        }
        let ours: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM journal WHERE seq = ?",
                [r.seq as i64],
                |row| row.get(0),
            )
            .step("reading the acknowledged envelope")?;
        let ours = hash32(&ours);
        if ours != r.hash {
            return Err(Refusal::Fork {
                seq: r.seq,
                theirs: r.hash,
                ours,
            }
            .into());
        }
        let newly = conn
            .execute(
                "UPDATE journal SET synced = 1 WHERE seq <= ? AND synced = 0",
                [r.seq as i64],
            )
            .step("marking envelopes synced")?;
        if newly > 0 {
            tracing::info!(
                through = r.seq,
                newly,
                "records acknowledged by the data centre"
            );
        }
        Ok(Synced {
            through: r.seq,
            newly: newly as u64,
            dc_at: r.at,
        })
    }
}
