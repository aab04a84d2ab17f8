//! The writer's side of idempotency keys: a job that carries an
//! [`Intent`] first looks its key up; a key already used for the same
//! request gives back the first answer, for another request a refusal.
//! A new answer is kept under its key in the same savepoint as the record
//! it made, so the two are stored together or not at all.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::engine::Stop;
use crate::domain::intent::Intent;
use crate::store::{Step, StoreError};

/// The first answer given to `intent` for a job of `kind`, if any.
pub(super) fn replay<T: DeserializeOwned>(
    conn: &rusqlite::Connection,
    intent: &Intent,
    kind: &str,
) -> Result<Option<T>, Stop> {
    let row: Option<(String, Vec<u8>, String, String)> = conn
        .prepare_cached("SELECT kind, fingerprint, code, result FROM intents WHERE key = ?")
        .and_then(|mut s| {
            s.query_row([intent.key()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .step("reading an idempotency key")?;
    let Some((was_kind, fingerprint, code, result)) = row else {
        return Ok(None);
    };
    if was_kind != kind || fingerprint != intent.fingerprint().0 {
        return Err(Intent::reused(&code).into());
    }
    tracing::info!(code = %code, kind, "repeated request answered with its first result");
    serde_json::from_str(&result)
        .map(Some)
        .map_err(|e| StoreError::Internal(format!("a kept answer does not read back: {e}")).into())
}

/// Keeps `result`, the answer of a job of `kind` that wrote record `seq`
/// of dossier `code`, under `intent`'s key.
pub(super) fn keep<T: Serialize>(
    conn: &rusqlite::Connection,
    intent: &Intent,
    kind: &str,
    code: &str,
    seq: u64,
    at: &str,
    result: &T,
) -> Result<(), Stop> {
    let result = serde_json::to_string(result).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO intents (key, kind, fingerprint, code, seq, result, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            intent.key(),
            kind,
            intent.fingerprint().0.as_slice(),
            code,
            seq as i64,
            result,
            at
        ])
    })
    .step("keeping an idempotency key")?;
    Ok(())
}
