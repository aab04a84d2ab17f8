//! Apologising for a late dossier with a new appointment (form 04 of the
//! annex of Circular 01/2018/TT-VPCP, "Phiếu xin lỗi và hẹn lại ngày trả
//! kết quả"): a signed `dossier.rescheduled` record
//! `{"code", "from", "to", "note"}` (the appointment promised until now,
//! the new one, the reason for the delay), and the dossier row's
//! `rescheduled_at`.
//!
//! The legal appointment (`appointment_at`) does not move: a dossier
//! resolved after it was late, apology or not, and stays counted as
//! overdue. What moves is the date the citizen is now promised.

use motcua_protocol::{StaffId, UtcTime};
use rusqlite::{OptionalExtension, params};
use serde_json::json;
use time::OffsetDateTime;

use super::chain::{Record, append, check_clock};
use super::engine::{Ctx, Operation, Stop};
use super::intent;
use crate::domain::VIETNAM;
use crate::domain::dossier::status_note;
use crate::domain::intent::Intent;
use crate::domain::invalid::{Invalid, InvalidInput};
use crate::domain::status::Status;
use crate::store::{Refusal, Step, StoreError, reference};

/// The idempotency kind, and the journal kind, of an apology.
pub const KIND: &str = "dossier.rescheduled";

/// An apology with a new appointment, as stored and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescheduled {
    /// The dossier.
    pub code: String,
    /// The appointment promised until now.
    pub from: UtcTime,
    /// The new appointment.
    pub to: UtcTime,
    /// Its journal seq.
    pub seq: u64,
    /// True when this answers a repeat of an earlier request with the same
    /// idempotency key: nothing new was stored.
    pub repeated: bool,
}

/// Give dossier `code` a new appointment, with the reason of its delay.
pub(super) struct Reschedule {
    /// The dossier.
    pub code: String,
    /// The new appointment.
    pub to: OffsetDateTime,
    /// Who apologises.
    pub staff: StaffId,
    /// Why the dossier is late, as typed.
    pub note: Option<String>,
    /// Its idempotency key, if it came with one.
    pub intent: Option<Intent>,
}

fn refuse(field: &'static str, code: &'static str, message: String) -> Stop {
    InvalidInput(vec![Invalid::new(field, code, message)]).into()
}

impl Operation for Reschedule {
    type Output = Rescheduled;

    fn adds_data(&self) -> bool {
        true
    }

    fn repeat(&self, cx: &Ctx<'_>) -> Result<Option<Rescheduled>, Stop> {
        let Some(first) = intent::replay(cx.conn, cx.cfg, self.intent.as_ref(), KIND)? else {
            return Ok(None);
        };
        let time = |field: &str| {
            first.detail[field]
                .as_str()
                .and_then(|t| UtcTime::parse(t).ok())
                .ok_or_else(|| StoreError::Internal(format!("a kept apology has no {field}")))
        };
        Ok(Some(Rescheduled {
            from: time("from")?,
            to: time("to")?,
            code: first.code,
            seq: first.seq,
            repeated: true,
        }))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<Rescheduled, Stop> {
        let Reschedule {
            code,
            to,
            staff,
            note,
            intent,
        } = self;
        let (conn, cfg) = (cx.conn, cx.cfg);
        let row: Option<(u8, String, Option<String>)> = conn
            .prepare_cached(
                "SELECT status, appointment_at, rescheduled_at FROM dossiers WHERE code = ?",
            )
            .and_then(|mut s| {
                s.query_row([&code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .step("reading the dossier's appointment")?;
        let (status, appointment, rescheduled) =
            row.ok_or_else(|| Refusal::NotFound(code.clone()))?;
        let status = Status::try_from(status).map_err(|e| StoreError::Internal(e.to_string()))?;
        if status.ends_deadline() {
            return Err(refuse(
                "status",
                "deadline_ended",
                format!(
                    "Hồ sơ đang ở trạng thái \"{}\": không còn hẹn trả kết quả để hẹn lại.",
                    status.name_vi()
                ),
            ));
        }
        let from = UtcTime::parse(rescheduled.as_deref().unwrap_or(&appointment))
            .map_err(|_| StoreError::Internal("a stored appointment does not parse".into()))?;
        let Some(note) = status_note(note.as_deref())? else {
            return Err(refuse(
                "note",
                "reason_required",
                "Phiếu xin lỗi cần ghi rõ lý do chậm trả kết quả.".into(),
            ));
        };
        let now = cfg.clock.now();
        check_clock(&now, cx.head)?;
        let to_local = to.to_offset(VIETNAM);
        if to <= now.at || to <= from.get() {
            return Err(refuse(
                "to",
                "appointment_not_later",
                "Ngày hẹn mới phải sau thời điểm hiện tại và sau ngày hẹn cũ.".into(),
            ));
        }
        let calendar = reference::calendar(conn, to_local.date())?;
        if !calendar.is_working(to_local.date()) {
            return Err(refuse(
                "to",
                "appointment_not_working_day",
                format!(
                    "Ngày {:02}/{:02}/{} không phải ngày làm việc: chọn một ngày làm việc.",
                    to_local.day(),
                    u8::from(to_local.month()),
                    to_local.year()
                ),
            ));
        }
        let to = UtcTime::new(to);
        let body = json!({
            "code": code,
            "from": from.to_string(),
            "to": to.to_string(),
            "note": note,
        });
        let seq = append(
            conn,
            cfg,
            cx.head,
            &now,
            Record {
                staff,
                kind: KIND,
                code: &code,
                body,
            },
        )?;
        let at = UtcTime::new(now.at).to_string();
        conn.prepare_cached(
            "UPDATE dossiers SET rescheduled_at = ?, updated_seq = ?, updated_at = ? WHERE code = ?",
        )
        .and_then(|mut s| s.execute(params![to.to_string(), seq as i64, at, code]))
        .step("storing the new appointment")?;
        tracing::info!(code = %code, seq, "dossier rescheduled with an apology");
        if let Some(i) = &intent {
            let kept = intent::Kept {
                code: code.clone(),
                seq,
                detail: json!({"from": from.to_string(), "to": to.to_string()}),
            };
            intent::keep(conn, cfg, i, KIND, &kept, &at)?;
        }
        Ok(Rescheduled {
            code,
            from,
            to,
            seq,
            repeated: false,
        })
    }
}
