//! What the DC sends down, written: the last message applied of each kind
//! (`downstream`) and, for status updates, the changes themselves with
//! what became of each (`dc_updates`).
//!
//! A status-updates message is gone through in one job: every update not
//! gone through before is decided ([`decide`]) against the dossier's
//! status read inside the transaction; a move the counter allows is made
//! by the same code as a clerk's ([`SetStatus`]: one signed
//! `dossier.status` record each), the others are recorded as already
//! done, unknown, or a conflict (the counter's status wins, nothing is
//! forced); then the message's seq is kept. Either all of it is stored or
//! none: a refusal other than the move's (no space, a wrong clock) undoes
//! the whole job, and the message is gone through again when it comes back.
//!
//! Checking what the DC sent (signature, device, number) is not done
//! here: `crate::downstream` does it before asking for the write.

use motcua_protocol::down::StatusUpdate;
use motcua_protocol::{StaffId, UtcTime};
use rusqlite::{OptionalExtension, params};

use super::engine::{Ctx, Operation, Stop};
use super::op_status::SetStatus;
use crate::domain::status::Status;
use crate::store::{Refusal, Step, StoreError};

/// What to do with one DC status update, given the dossier's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This counter has no such dossier.
    Unknown,
    /// The dossier already has that status.
    Already,
    /// The move from the dossier's status is allowed: it becomes a
    /// journal record.
    Apply {
        /// The dossier's status.
        from: Status,
    },
    /// The dossier's status differs and may not move there: the counter's
    /// wins.
    Conflict {
        /// The dossier's status.
        current: Status,
    },
}

/// Decides a DC status update to `to` for a dossier whose status is
/// `current` (`None`: no such dossier).
pub fn decide(current: Option<Status>, to: Status) -> Decision {
    match current {
        None => Decision::Unknown,
        Some(c) if c == to => Decision::Already,
        Some(from) if from.may_become(to) => Decision::Apply { from },
        Some(current) => Decision::Conflict { current },
    }
}

/// How many updates of a message ended which way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdatesApplied {
    /// Applied (a journal record each).
    pub applied: u64,
    /// The dossier already reflected them.
    pub already: u64,
    /// Not applied: the counter's status differs.
    pub conflicts: u64,
    /// For dossiers this counter does not have.
    pub unknown: u64,
}

/// Replace the units' names and places with a verified units message's,
/// and keep the message (kind `units`, numbered by its version).
pub(super) struct ImportUnits {
    /// The list's version.
    pub version: u64,
    /// The units.
    pub units: Vec<motcua_protocol::down::Unit>,
    /// The signed message as received.
    pub message: Vec<u8>,
    /// When it was applied.
    pub at: UtcTime,
}

impl Operation for ImportUnits {
    type Output = ();

    fn adds_data(&self) -> bool {
        false
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<(), Stop> {
        cx.conn
            .execute("DELETE FROM units", [])
            .step("replacing the units")?;
        for u in &self.units {
            cx.conn
                .prepare_cached("INSERT INTO units (code, name, place) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![u.code, u.name.trim(), u.place.trim()]))
                .step("replacing the units")?;
        }
        keep(cx, "units", self.version, &self.message, &self.at)?;
        Ok(())
    }
}

/// Keep `message` as the last one applied of `kind`.
pub(super) struct KeepDown {
    /// `status` or `settings`.
    pub kind: &'static str,
    /// Its number (seq).
    pub number: u64,
    /// The signed message as received.
    pub message: Vec<u8>,
    /// When it was applied.
    pub at: UtcTime,
}

impl Operation for KeepDown {
    type Output = ();

    fn adds_data(&self) -> bool {
        false
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<(), Stop> {
        keep(cx, self.kind, self.number, &self.message, &self.at)?;
        Ok(())
    }
}

fn keep(
    cx: &Ctx<'_>,
    kind: &str,
    number: u64,
    message: &[u8],
    at: &UtcTime,
) -> Result<(), StoreError> {
    cx.conn
        .execute(
            "INSERT INTO downstream (kind, number, message, applied_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind) DO UPDATE SET number = ?2, message = ?3, applied_at = ?4",
            params![kind, number as i64, message, at.to_string()],
        )
        .step("keeping what the DC sent")?;
    Ok(())
}

/// Go through a verified status-updates message.
pub(super) struct ApplyUpdates {
    /// Its seq.
    pub seq: u64,
    /// The signed message as received.
    pub message: Vec<u8>,
    /// Its updates, in the DC's order.
    pub updates: Vec<StatusUpdate>,
    /// The staff id the changes are journaled under.
    pub staff: StaffId,
    /// When it was applied.
    pub at: UtcTime,
    /// Whether some update is expected to become a journal record (as
    /// read before the job): only then is the job refused below the
    /// free-space floor.
    pub adds_records: bool,
}

impl Operation for ApplyUpdates {
    type Output = UpdatesApplied;

    fn adds_data(&self) -> bool {
        self.adds_records
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<UpdatesApplied, Stop> {
        let through: i64 = cx
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM dc_updates", [], |r| {
                r.get(0)
            })
            .step("reading the DC's status updates")?;
        let mut n = UpdatesApplied::default();
        for up in self.updates.iter().filter(|up| up.id > through as u64) {
            let to =
                Status::try_from(up.status).map_err(|e| StoreError::Internal(e.to_string()))?;
            let current: Option<u8> = cx
                .conn
                .prepare_cached("SELECT status FROM dossiers WHERE code = ?")
                .and_then(|mut s| s.query_row([&up.code], |r| r.get(0)).optional())
                .step("reading a dossier's status")?;
            let current = current.and_then(|c| Status::try_from(c).ok());
            let (outcome, seq) = match decide(current, to) {
                Decision::Unknown => {
                    n.unknown += 1;
                    tracing::warn!(code = %up.code, id = up.id, "DC status update for a dossier this counter does not have");
                    ("unknown", None)
                }
                Decision::Already => {
                    n.already += 1;
                    ("already", None)
                }
                Decision::Apply { from } => match set_status(cx, up, to, &self.staff)? {
                    Some(seq) => {
                        n.applied += 1;
                        tracing::info!(code = %up.code, id = up.id, seq, from = from.get(), to = to.get(), "DC status update applied");
                        ("applied", Some(seq))
                    }
                    None => {
                        n.conflicts += 1;
                        ("conflict", None)
                    }
                },
                Decision::Conflict { current } => {
                    n.conflicts += 1;
                    tracing::warn!(code = %up.code, id = up.id, current = current.get(), to = to.get(), "DC status update not applied: the counter's status differs (the counter's wins)");
                    ("conflict", None)
                }
            };
            cx.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO dc_updates (id, code, status, outcome, seq, at) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        up.id as i64,
                        up.code,
                        up.status,
                        outcome,
                        seq.map(|s| s as i64),
                        self.at.to_string()
                    ])
                })
                .step("recording a DC status update")?;
        }
        keep(cx, "status", self.seq, &self.message, &self.at)?;
        Ok(n)
    }
}

/// Makes one allowed DC status change as a clerk's would be made (one
/// signed record), under a savepoint of its own: the seq, or `None` when
/// the change is refused as input (the note, the move), which counts as a
/// conflict and leaves nothing behind. Other refusals stop the whole job.
fn set_status(
    cx: &mut Ctx<'_>,
    up: &StatusUpdate,
    to: Status,
    staff: &StaffId,
) -> Result<Option<u64>, Stop> {
    let note = match &up.note {
        Some(n) => format!("{}: {n}", up.by),
        None => up.by.clone(),
    };
    cx.conn
        .execute_batch("SAVEPOINT dc_update")
        .step("opening a savepoint")?;
    let head = *cx.head;
    let change = SetStatus {
        code: up.code.clone(),
        to,
        staff: staff.clone(),
        note: Some(note),
        intent: None,
    };
    match change.apply(cx) {
        Ok(changed) => {
            cx.conn
                .execute_batch("RELEASE dc_update")
                .step("releasing a savepoint")?;
            Ok(Some(changed.seq))
        }
        Err(Stop::Refused(Refusal::Invalid(_))) => {
            *cx.head = head;
            cx.conn
                .execute_batch("ROLLBACK TO dc_update; RELEASE dc_update")
                .step("rolling a savepoint back")?;
            Ok(None)
        }
        // The engine undoes the whole job.
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_status_wins_a_conflict() {
        let s = |n| Status::try_from(n).expect("a status");
        assert_eq!(decide(None, s(2)), Decision::Unknown);
        assert_eq!(decide(Some(s(2)), s(2)), Decision::Already);
        let from = s(1);
        for n in 1..=10 {
            let to = s(n);
            let want = if from == to {
                Decision::Already
            } else if from.may_become(to) {
                Decision::Apply { from }
            } else {
                Decision::Conflict { current: from }
            };
            assert_eq!(decide(Some(from), to), want, "1 → {n}");
        }
    }
}
