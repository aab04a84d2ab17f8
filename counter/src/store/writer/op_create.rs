//! Receiving a dossier: validates the clerk's input against the cached
//! catalogue, allocates the day's next code of this counter's block,
//! computes the appointment, signs the `dossier.created` record and stores
//! the dossier row.

use motcua_protocol::{StaffId, UtcTime};
use rusqlite::{OptionalExtension, params};

use super::chain::{Record, append, check_clock};
use super::engine::{Ctx, Operation, Stop};
use super::intent;
use crate::domain::VIETNAM;
use crate::domain::code::DossierCode;
use crate::domain::dossier::{Dossier, DossierInput, appointment, validate};
use crate::domain::intent::Intent;
use crate::domain::status::Status;
use crate::domain::text::fold;
use crate::store::reference::{self, format_day};
use crate::store::{Refusal, Step, StoreError};

/// A created dossier, as stored and signed.
#[derive(Debug, Clone)]
pub struct Created {
    /// The dossier.
    pub dossier: Dossier,
    /// Its journal seq.
    pub seq: u64,
    /// True when this answers a repeat of an earlier request with the same
    /// idempotency key: nothing new was stored, and `dossier` is the first
    /// request's dossier as it is now (its status may have moved on).
    pub repeated: bool,
}

/// The idempotency kind of a reception.
const KIND: &str = "dossier.created";

/// Receive a dossier.
pub(super) struct Create {
    /// What the clerk entered.
    pub input: DossierInput,
    /// The clerk.
    pub staff: StaffId,
    /// Its idempotency key, if it came with one.
    pub intent: Option<Intent>,
}

impl Operation for Create {
    type Output = Created;

    fn adds_data(&self) -> bool {
        true
    }

    fn repeat(&self, cx: &Ctx<'_>) -> Result<Option<Created>, Stop> {
        let Some(first) = intent::replay(cx.conn, cx.cfg, self.intent.as_ref(), KIND)? else {
            return Ok(None);
        };
        Ok(Some(Created {
            dossier: as_now(cx.conn, &first.code)?,
            seq: first.seq,
            repeated: true,
        }))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<Created, Stop> {
        let Create {
            input,
            staff,
            intent,
        } = self;
        let (conn, cfg) = (cx.conn, cx.cfg);
        let now = cfg.clock.now();
        let local = now.at.to_offset(VIETNAM);
        // The clock first: validation itself depends on the year (birth years).
        check_clock(&now, cx.head)?;
        let mut lookup_err = None;
        let valid = validate(
            &input,
            |code| {
                reference::procedure(conn, code)
                    .map_err(|e| lookup_err = Some(e))
                    .ok()
                    .flatten()
            },
            local.year(),
        );
        if let Some(e) = lookup_err {
            return Err(e.into());
        }
        let valid = valid?;

        let day = local.date();
        let day_text = format_day(day);
        let last: Option<i64> = conn
            .prepare_cached(
                "SELECT last FROM code_blocks WHERE unit = ? AND counter = ? AND day = ?",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![cfg.unit.as_str(), cfg.counter.get(), day_text],
                    |r| r.get(0),
                )
                .optional()
            })
            .step("reading the day's last dossier code")?;
        let seq_in_day = cfg
            .counter
            .next(last.and_then(|l| u16::try_from(l).ok()))
            .ok_or_else(|| Refusal::CodesExhausted {
                counter: cfg.counter.get(),
                day: day_text.clone(),
            })?;
        conn.prepare_cached(
            "INSERT INTO code_blocks (unit, counter, day, last) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (unit, counter, day) DO UPDATE SET last = ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                cfg.unit.as_str(),
                cfg.counter.get(),
                day_text,
                seq_in_day
            ])
        })
        .step("recording the dossier code")?;
        let code = DossierCode {
            unit: cfg.unit.clone(),
            date: day,
            seq: seq_in_day,
        }
        .to_string();

        let calendar = reference::calendar(conn, day)?;
        let appointment = appointment(&calendar, local, valid.procedure.working_days, &cfg.office)?;
        let dossier = Dossier {
            code: code.clone(),
            unit: cfg.unit.clone(),
            procedure: valid.procedure.code.clone(),
            procedure_name: valid.procedure.name.clone(),
            applicant: valid.applicant,
            documents: valid.documents,
            sets: valid.sets,
            received_at: UtcTime::new(now.at),
            clock_synced: now.synced(),
            clock_dc: match now.quality {
                crate::clock::Quality::Dc { bound_ms } => Some(bound_ms),
                _ => None,
            },
            working_days: valid.procedure.working_days,
            appointment_at: UtcTime::new(appointment),
            collect_at: valid
                .collect_at
                .unwrap_or_else(|| cfg.default_collect_at.clone()),
            staff: staff.clone(),
            status: Status::ACCEPTED,
            note: valid.note,
        };
        let body =
            serde_json::to_value(&dossier).map_err(|e| StoreError::Internal(e.to_string()))?;
        let seq = append(
            conn,
            cfg,
            cx.head,
            &now,
            Record {
                staff,
                kind: "dossier.created",
                code: &code,
                body,
            },
        )?;
        let data =
            serde_json::to_string(&dossier).map_err(|e| StoreError::Internal(e.to_string()))?;
        conn.prepare_cached(
            "INSERT INTO dossiers (code, received_at, received_day, appointment_at, procedure, status, staff,
                                   name_folded, id_number, data, created_seq, updated_seq, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?2)",
        )
        .and_then(|mut s| {
            s.execute(params![
                code,
                dossier.received_at.to_string(),
                day_text,
                dossier.appointment_at.to_string(),
                dossier.procedure,
                dossier.status.get(),
                dossier.staff.as_str(),
                fold(&dossier.applicant.name),
                dossier.applicant.id_number,
                data,
                seq as i64,
            ])
        })
        .step("storing the dossier")?;
        tracing::info!(code = %code, seq, "dossier received");
        let created = Created {
            dossier,
            seq,
            repeated: false,
        };
        if let Some(i) = &intent {
            let kept = intent::Kept {
                code,
                seq,
                detail: serde_json::json!({}),
            };
            let at = created.dossier.received_at.to_string();
            intent::keep(conn, cfg, i, KIND, &kept, &at)?;
        }
        Ok(created)
    }
}

/// Dossier `code` as it is now, for the answer to a repeated reception;
/// refused when its personal data has since been pruned.
fn as_now(conn: &rusqlite::Connection, code: &str) -> Result<Dossier, Stop> {
    let row: Option<(Option<String>, u8)> = conn
        .prepare_cached("SELECT data, status FROM dossiers WHERE code = ?")
        .and_then(|mut s| {
            s.query_row([code], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .step("reading the dossier a repeated request made")?;
    let Some((Some(data), status)) = row else {
        return Err(Intent::expired(code).into());
    };
    let mut dossier: Dossier = serde_json::from_str(&data)
        .map_err(|e| StoreError::Internal(format!("dossier {code} does not read back: {e}")))?;
    dossier.status = Status::try_from(status).map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(dossier)
}
