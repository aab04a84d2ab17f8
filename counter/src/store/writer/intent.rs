//! The writer's side of idempotency keys: a job that carries an
//! [`Intent`] first looks its key up; a key already used for the same
//! request gives back what that request made, for another request a
//! refusal. A new key is kept in the same savepoint as the record it made,
//! so the two are stored together or not at all.
//!
//! What is kept holds no personal data: the key, the kind of job, the
//! dossier code and journal seq it made, and a fingerprint of the request
//! keyed with the device's secret key. The request itself (a citizen's
//! name, ID number) has little entropy; an unkeyed digest of it could be
//! guessed back from a copied database, a keyed one cannot without the
//! device key. A repeat reads the dossier as it is now from `dossiers`.

use motcua_protocol::Hash32;
use rusqlite::{OptionalExtension, params};

use super::WriterConfig;
use super::engine::Stop;
use crate::domain::intent::Intent;
use crate::store::{Step, StoreError};

/// What a kept key made: the dossier and the journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Kept {
    /// The dossier code.
    pub code: String,
    /// The journal seq of the record the first request wrote.
    pub seq: u64,
    /// What else the answer needs, never personal data (a status move's
    /// `from` and `to`); `{}` for a reception.
    pub detail: serde_json::Value,
}

/// The fingerprint kept for `intent`: SHA-256 over a domain-separation
/// label, the device's secret key and the request's digest.
fn keyed(cfg: &WriterConfig, intent: &Intent) -> Hash32 {
    let mut bytes = Vec::with_capacity(96);
    bytes.extend_from_slice(b"motcua idempotency v1\0");
    bytes.extend_from_slice(&cfg.key.to_bytes());
    bytes.extend_from_slice(&intent.fingerprint().0);
    Hash32::of(&bytes)
}

/// What the first request with `intent`'s key made, for a job of `kind`,
/// if any; refused when the key was used for another request or kind.
pub(super) fn replay(
    conn: &rusqlite::Connection,
    cfg: &WriterConfig,
    intent: Option<&Intent>,
    kind: &'static str,
) -> Result<Option<Kept>, Stop> {
    let Some(intent) = intent else {
        return Ok(None);
    };
    let row: Option<(String, Vec<u8>, String, i64, String)> = conn
        .prepare_cached("SELECT kind, fingerprint, code, seq, result FROM intents WHERE key = ?")
        .and_then(|mut s| {
            s.query_row([intent.key()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()
        })
        .step("reading an idempotency key")?;
    let Some((was_kind, fingerprint, code, seq, detail)) = row else {
        return Ok(None);
    };
    if was_kind != kind || fingerprint != keyed(cfg, intent).0 {
        return Err(Intent::reused(&code, kind).into());
    }
    let seq = u64::try_from(seq)
        .map_err(|_| StoreError::Internal(format!("a kept seq is negative: {seq}")))?;
    let detail = serde_json::from_str(&detail)
        .map_err(|e| StoreError::Internal(format!("a kept answer does not read back: {e}")))?;
    tracing::info!(code = %code, seq, kind, "repeated request answered with what it first made");
    Ok(Some(Kept { code, seq, detail }))
}

/// Keeps `intent`'s key for a job of `kind` that wrote record `kept.seq`
/// of dossier `kept.code` at `at`.
pub(super) fn keep(
    conn: &rusqlite::Connection,
    cfg: &WriterConfig,
    intent: &Intent,
    kind: &'static str,
    kept: &Kept,
    at: &str,
) -> Result<(), Stop> {
    conn.prepare_cached(
        "INSERT INTO intents (key, kind, fingerprint, code, seq, result, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            intent.key(),
            kind,
            keyed(cfg, intent).0.as_slice(),
            kept.code,
            kept.seq as i64,
            kept.detail.to_string(),
            at
        ])
    })
    .step("keeping an idempotency key")?;
    Ok(())
}
