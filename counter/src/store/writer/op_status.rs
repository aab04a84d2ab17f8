//! Changing a dossier's status: the move must be one the status table
//! allows ([`Status::check_move`]) and the note pass the domain's rule
//! ([`status_note`]); then the `dossier.status` record is signed and the
//! dossier row updated.

use motcua_protocol::{StaffId, UtcTime};
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::chain::{Record, append, check_clock};
use super::engine::{Ctx, Operation, Stop};
use crate::domain::dossier::status_note;
use crate::domain::status::Status;
use crate::store::{Refusal, Step, StoreError};

/// A status change, as stored and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChanged {
    /// The dossier.
    pub code: String,
    /// Before.
    pub from: Status,
    /// After.
    pub to: Status,
    /// Its journal seq.
    pub seq: u64,
}

/// Move a dossier to another status.
pub(super) struct SetStatus {
    /// The dossier.
    pub code: String,
    /// The new status.
    pub to: Status,
    /// Who moves it.
    pub staff: StaffId,
    /// Why, as typed.
    pub note: Option<String>,
}

impl Operation for SetStatus {
    type Output = StatusChanged;

    fn adds_data(&self) -> bool {
        true
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<StatusChanged, Stop> {
        let SetStatus {
            code,
            to,
            staff,
            note,
        } = self;
        let (conn, cfg) = (cx.conn, cx.cfg);
        let from: u8 = conn
            .prepare_cached("SELECT status FROM dossiers WHERE code = ?")
            .and_then(|mut s| s.query_row([&code], |r| r.get(0)).optional())
            .step("reading the dossier's status")?
            .ok_or_else(|| Refusal::NotFound(code.clone()))?;
        let from = Status::try_from(from).map_err(|e| StoreError::Internal(e.to_string()))?;
        from.check_move(to)?;
        let note = status_note(note.as_deref())?;
        let now = cfg.clock.now();
        check_clock(&now, cx.head)?;
        let body = json!({"code": code, "from": from.get(), "to": to.get(), "note": note});
        let seq = append(
            conn,
            cfg,
            cx.head,
            &now,
            Record {
                staff,
                kind: "dossier.status",
                code: &code,
                body,
            },
        )?;
        conn.prepare_cached(
            "UPDATE dossiers SET status = ?, updated_seq = ?, updated_at = ? WHERE code = ?",
        )
        .and_then(|mut s| {
            s.execute(params![
                to.get(),
                seq as i64,
                UtcTime::new(now.at).to_string(),
                code
            ])
        })
        .step("updating the dossier's status")?;
        tracing::info!(code = %code, seq, from = from.get(), to = to.get(), "dossier status changed");
        Ok(StatusChanged {
            code,
            from,
            to,
            seq,
        })
    }
}
