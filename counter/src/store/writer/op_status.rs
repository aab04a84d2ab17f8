//! Changing a dossier's status: the move must be one the status table
//! allows ([`Status::check_move`]) and the note pass the domain's rule
//! ([`status_note`]); then the `dossier.status` record is signed and the
//! dossier row updated.

use motcua_protocol::{StaffId, UtcTime};
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::chain::{Record, append, check_clock};
use super::engine::{Ctx, Operation, Stop};
use super::intent;
use crate::domain::dossier::status_note;
use crate::domain::intent::Intent;
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
    /// True when this answers a repeat of an earlier request with the same
    /// idempotency key: nothing new was stored.
    pub repeated: bool,
}

/// The idempotency kind of a status change.
const KIND: &str = "dossier.status";

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
    /// Its idempotency key, if it came with one.
    pub intent: Option<Intent>,
}

impl Operation for SetStatus {
    type Output = StatusChanged;

    fn adds_data(&self) -> bool {
        true
    }

    fn repeat(&self, cx: &Ctx<'_>) -> Result<Option<StatusChanged>, Stop> {
        let Some(first) = intent::replay(cx.conn, cx.cfg, self.intent.as_ref(), KIND)? else {
            return Ok(None);
        };
        let status = |field: &str| {
            first.detail[field]
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .and_then(|n| Status::try_from(n).ok())
                .ok_or_else(|| StoreError::Internal(format!("a kept move has no {field}")))
        };
        Ok(Some(StatusChanged {
            from: status("from")?,
            to: status("to")?,
            code: first.code,
            seq: first.seq,
            repeated: true,
        }))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<StatusChanged, Stop> {
        let SetStatus {
            code,
            to,
            staff,
            note,
            intent,
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
        if to.needs_reason() && note.is_none() {
            return Err(crate::domain::invalid::InvalidInput(vec![
                crate::domain::invalid::Invalid::new(
                    "note",
                    "reason_required",
                    format!("Chuyển hồ sơ sang \"{}\" cần ghi rõ lý do.", to.name_vi()),
                ),
            ])
            .into());
        }
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
        let changed = StatusChanged {
            code,
            from,
            to,
            seq,
            repeated: false,
        };
        if let Some(i) = &intent {
            let kept = intent::Kept {
                code: changed.code.clone(),
                seq,
                detail: json!({"from": from.get(), "to": to.get()}),
            };
            let at = UtcTime::new(now.at).to_string();
            intent::keep(conn, cfg, i, KIND, &kept, &at)?;
        }
        Ok(changed)
    }
}
