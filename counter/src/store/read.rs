//! Reading the store: dossiers, searches, the journal for the sync layer,
//! status counts and a full verification of the journal.
//!
//! A [`Reader`] has its own connection (WAL lets it read while the writer
//! commits) and never writes.
//!
//! Stored codes, times, statuses and ids are parsed here, once, where each
//! row is read, into their checked types ([`DossierCode`], [`UtcTime`],
//! [`Status`], [`DeviceId`]); a value that does not parse refuses the read
//! with [`StoreError::BadValue`] naming its column. Callers format typed
//! values and never parse what the store returns.

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use ed25519_dalek::VerifyingKey;
use motcua_protocol::{
    ChainHead, Classification, DeviceId, Hash32, KeyId, Opened, Submission, UtcTime, classify,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::writer::hash32;
use super::{Step, StoreError, schema};
use crate::domain::code::DossierCode;
use crate::domain::dossier::Dossier;
use crate::domain::status::Status;
use crate::domain::text::fold;

/// The dossier search; its overdue filter takes the statuses that end the
/// deadline from [`Status::ends_deadline`].
static SEARCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT code, data, procedure, status, received_at, appointment_at, rescheduled_at
         FROM dossiers
         WHERE (?1 IS NULL OR code LIKE ?1 || '%' ESCAPE '\\')
           AND (?2 IS NULL OR id_number = ?2)
           AND (?3 IS NULL OR name_folded LIKE '%' || ?3 || '%' ESCAPE '\\')
           AND (?4 IS NULL OR received_day = ?4)
           AND (?5 = 0 OR (appointment_at < ?6 AND status NOT IN ({})))
         ORDER BY received_at DESC, code DESC LIMIT ?7",
        Status::sql_list(Status::ends_deadline)
    )
});

/// The overdue count, by the same rule as [`SEARCH`].
static COUNT_OVERDUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT count(*) FROM dossiers WHERE appointment_at < ? AND status NOT IN ({})",
        Status::sql_list(Status::ends_deadline)
    )
});

/// A read-only view of the store.
pub struct Reader {
    conn: Connection,
}

/// What a signed change of a dossier did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A status move (`dossier.status`).
    Status {
        /// The status before.
        from: Status,
        /// The status after.
        to: Status,
    },
    /// An apology with a new appointment (`dossier.rescheduled`).
    Rescheduled {
        /// The appointment promised until then.
        from: UtcTime,
        /// The new one.
        to: UtcTime,
    },
}

/// A signed change of a dossier that a printed form rests on, as its
/// verified journal record says. `Debug` leaves the note out (it may name
/// the citizen).
#[derive(Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Its journal seq.
    pub seq: u64,
    /// When it was signed.
    pub at: UtcTime,
    /// Whether the clock was synchronised then.
    pub clock: bool,
    /// Who made it.
    pub staff: motcua_protocol::StaffId,
    /// What it did.
    pub change: Change,
    /// The reason given.
    pub note: Option<String>,
}

impl fmt::Debug for ChangeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeRecord")
            .field("seq", &self.seq)
            .field("change", &self.change)
            .finish_non_exhaustive()
    }
}

/// A dossier as stored now.
#[derive(Debug, Clone, Serialize)]
pub struct StoredDossier {
    /// The dossier as signed at creation, with `status` set to the current
    /// one; `None` once its personal data was pruned.
    pub dossier: Option<Dossier>,
    /// Code.
    pub code: DossierCode,
    /// Current status.
    pub status: Status,
    /// Time of the last change.
    pub updated_at: UtcTime,
    /// Whether every journal record of it has been receipted by the DC.
    pub synced: bool,
    /// When its personal data was pruned, if it was.
    pub pruned_at: Option<UtcTime>,
    /// The new appointment given with the last apology (form 04), if any.
    pub rescheduled_at: Option<UtcTime>,
}

/// One line of a search result. Holds the applicant's name: personal data,
/// so `Debug` hides it.
#[derive(Clone, Serialize)]
pub struct Summary {
    /// Code.
    pub code: DossierCode,
    /// Applicant's name (None once pruned).
    pub name: Option<String>,
    /// Procedure code, as the catalogue spells it (no checked type: the
    /// catalogue's codes are free text).
    pub procedure: String,
    /// The procedure's name as received (None once pruned).
    pub procedure_name: Option<String>,
    /// Status.
    pub status: Status,
    /// Received.
    pub received_at: UtcTime,
    /// Appointment, as the procedure's time limit gives it.
    pub appointment_at: UtcTime,
    /// The new appointment given with the last apology (form 04), if any.
    pub rescheduled_at: Option<UtcTime>,
    /// Whether the appointment has passed and the dossier is not finished
    /// (an apology does not change that: the dossier is late).
    pub overdue: bool,
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Summary")
            .field("code", &self.code)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What to search for; every given criterion must match. Holds personal
/// data (an ID number, a name), so `Debug` shows only which criteria are set.
#[derive(Clone, Default)]
pub struct Query {
    /// A dossier code or its beginning.
    pub code: Option<String>,
    /// A personal identification number (exact).
    pub id_number: Option<String>,
    /// Part of the applicant's name, with or without diacritics.
    pub name: Option<String>,
    /// The day received, `YYYY-MM-DD` (Vietnam time).
    pub day: Option<String>,
    /// Only overdue dossiers.
    pub overdue: bool,
    /// At most this many results (newest first).
    pub limit: usize,
}

/// Escapes LIKE's wildcards so a search term matches literally.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A time that is only shown (a status line, a health report), never
/// acted on: a damaged value is logged and shown as unknown rather than
/// stopping the sync loop that reports it.
fn shown_time(column: &'static str, raw: &str) -> Option<UtcTime> {
    match stored_time(column, raw) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "a stored time is damaged; shown as unknown");
            None
        }
    }
}

/// A stored time read back, or the refusal naming its column.
fn stored_time(column: &'static str, s: &str) -> Result<UtcTime, StoreError> {
    UtcTime::parse(s).map_err(|e| bad(column, e))
}

/// A stored dossier code read back, or the refusal naming its column.
fn stored_code(column: &'static str, s: &str) -> Result<DossierCode, StoreError> {
    s.parse().map_err(|e| bad(column, e))
}

/// A stored status number read back, or the refusal naming its column.
fn stored_status(column: &'static str, n: u8) -> Result<Status, StoreError> {
    Status::try_from(n).map_err(|e| bad(column, e))
}

/// The refusal of a stored value that is not of its column's type.
fn bad(column: &'static str, e: impl fmt::Display) -> StoreError {
    StoreError::BadValue {
        column,
        detail: e.to_string(),
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("code", &self.code)
            .field("id_number", &self.id_number.as_ref().map(|_| "<set>"))
            .field("name", &self.name.as_ref().map(|_| "<set>"))
            .field("day", &self.day)
            .field("overdue", &self.overdue)
            .field("limit", &self.limit)
            .finish()
    }
}

/// Counts for `motcua status` and the kiosk's sync indicator.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Dossiers stored.
    pub dossiers: u64,
    /// Dossiers received on `day`.
    pub today: u64,
    /// Dossiers overdue.
    pub overdue: u64,
    /// Journal seq of the last record.
    pub head_seq: u64,
    /// Records not yet receipted by the DC.
    pub unsynced: u64,
    /// When the oldest unsynced record was signed.
    pub oldest_unsynced_at: Option<UtcTime>,
    /// Highest seq the DC has receipted.
    pub synced_through: u64,
    /// When the last receipt was stored.
    pub last_receipt_at: Option<UtcTime>,
    /// Reference data version.
    pub reference_version: Option<u64>,
}

/// One unsynced envelope, for the sync layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its seq.
    pub seq: u64,
    /// Its hash.
    pub hash: Hash32,
    /// The complete envelope bytes.
    pub envelope: Vec<u8>,
}

/// The result of verifying the whole journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalReport {
    /// Records checked.
    pub records: u64,
    /// Of which signatures verified (the others were pruned: only their
    /// hash link was checked).
    pub signatures: u64,
    /// Records receipted by the DC.
    pub synced: u64,
}

/// The first place the journal is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("journal broken at seq {seq}: {reason}")]
pub struct JournalBreak {
    /// The first bad seq.
    pub seq: u64,
    /// What is wrong.
    pub reason: String,
}

impl Reader {
    /// Opens the store at `path` for reading.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: schema::open_read(path)?,
        })
    }

    /// The dossier `code`.
    pub fn dossier(&self, code: &str) -> Result<Option<StoredDossier>, StoreError> {
        type Row = (
            String,
            u8,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT code, status, updated_at, data, pruned_at, rescheduled_at
                 FROM dossiers WHERE code = ?",
                [code],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .step("reading a dossier")?;
        let Some((code, status, updated_at, data, pruned_at, rescheduled_at)) = row else {
            return Ok(None);
        };
        let rescheduled_at = rescheduled_at
            .map(|t| stored_time("dossiers.rescheduled_at", &t))
            .transpose()?;
        let status = stored_status("dossiers.status", status)?;
        let updated_at = stored_time("dossiers.updated_at", &updated_at)?;
        let pruned_at = pruned_at
            .map(|t| stored_time("dossiers.pruned_at", &t))
            .transpose()?;
        let dossier = match data {
            Some(d) => {
                let mut d: Dossier = serde_json::from_str(&d).map_err(|e| StoreError::Damaged {
                    path: "dossiers.data".into(),
                    detail: format!("dossier {code} does not decode: {:?}", e.classify()),
                })?;
                d.status = status;
                Some(d)
            }
            None => None,
        };
        let unsynced: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM journal WHERE dossier_code = ? AND synced = 0)",
                [&code],
                |r| r.get(0),
            )
            .step("reading a dossier's sync state")?;
        Ok(Some(StoredDossier {
            dossier,
            code: stored_code("dossiers.code", &code)?,
            status,
            updated_at,
            synced: !unsynced,
            pruned_at,
            rescheduled_at,
        }))
    }

    /// Dossiers matching `q`, newest first. `now` decides what is overdue.
    pub fn search(&self, q: &Query, now: &UtcTime) -> Result<Vec<Summary>, StoreError> {
        let name = q
            .name
            .as_deref()
            .map(fold)
            .filter(|n| !n.is_empty())
            .map(|n| like_escape(&n));
        let code = q.code.as_deref().map(like_escape);
        let id = q
            .id_number
            .as_deref()
            .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>());
        let limit = if q.limit == 0 { 100 } else { q.limit } as i64;
        let mut stmt = self
            .conn
            .prepare_cached(&SEARCH)
            .step("searching dossiers")?;
        let rows = stmt
            .query_map(
                params![code, id, name, q.day, q.overdue, now.to_string(), limit],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u8>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .step("searching dossiers")?;
        rows.into_iter()
            .map(
                |(code, data, procedure, status, received_at, appointment_at, rescheduled_at)| {
                    let status = stored_status("dossiers.status", status)?;
                    let appointment_at = stored_time("dossiers.appointment_at", &appointment_at)?;
                    let rescheduled_at = rescheduled_at
                        .map(|t| stored_time("dossiers.rescheduled_at", &t))
                        .transpose()?;
                    let (name, procedure_name) = data
                        .and_then(|d| serde_json::from_str::<Dossier>(&d).ok())
                        .map(|d| (d.applicant.name, d.procedure_name))
                        .unzip();
                    let overdue = appointment_at < *now && !status.ends_deadline();
                    Ok(Summary {
                        code: stored_code("dossiers.code", &code)?,
                        name,
                        procedure,
                        procedure_name,
                        status,
                        received_at: stored_time("dossiers.received_at", &received_at)?,
                        appointment_at,
                        rescheduled_at,
                        overdue,
                    })
                },
            )
            .collect()
    }

    /// Unsynced envelopes with seq above `after`, in seq order, at most
    /// `limit`: what the sync layer sends next.
    pub fn unsynced(&self, after: u64, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, hash, envelope FROM journal WHERE synced = 0 AND seq > ? ORDER BY seq LIMIT ?")
            .step("reading unsynced envelopes")?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |r| {
                Ok(Pending {
                    seq: r.get::<_, i64>(0)? as u64,
                    hash: hash32(&r.get::<_, Vec<u8>>(1)?),
                    envelope: r.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .step("reading unsynced envelopes")?;
        Ok(rows)
    }

    /// When the last record was signed, by its own stamp; `None` for an
    /// empty journal.
    pub fn last_at(&self) -> Result<Option<UtcTime>, StoreError> {
        let at: Option<String> = self
            .conn
            .query_row(
                "SELECT at FROM journal ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .step("reading the last record's time")?;
        Ok(at.and_then(|a| UtcTime::parse(&a).ok()))
    }

    /// The DC's latest receipt as kept (its bytes), if any.
    pub fn last_receipt(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT receipt FROM receipts ORDER BY seq DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .step("reading the last receipt")
    }

    /// The envelope at `seq`, if the journal holds it.
    pub fn envelope(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT envelope FROM journal WHERE seq = ?")
            .and_then(|mut s| s.query_row([seq as i64], |r| r.get(0)).optional())
            .step("reading an envelope")
    }

    /// The highest seq such that every envelope up to it is receipted by
    /// the DC: where sync resumes. Receipts are cumulative, so the synced
    /// envelopes are always a prefix of the journal.
    pub fn receipted_through(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT min(seq) FROM journal WHERE synced = 0) - 1,
                                 (SELECT max(seq) FROM journal), 0)",
                [],
                |r| r.get(0),
            )
            .step("reading the last receipted seq")?;
        Ok(n as u64)
    }

    /// Counts; `day` is today in Vietnam time (`YYYY-MM-DD`), `now` decides
    /// what is overdue.
    pub fn counts(&self, day: &str, now: &UtcTime) -> Result<Counts, StoreError> {
        let c = &self.conn;
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64, StoreError> {
            c.query_row(sql, p, |r| r.get(0)).step("counting")
        };
        let now = now.to_string();
        let oldest: Option<String> = c
            .query_row(
                "SELECT at FROM journal WHERE synced = 0 ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .step("counting")?;
        let last_receipt: Option<String> = c
            .query_row("SELECT max(stored_at) FROM receipts", [], |r| r.get(0))
            .step("counting")?;
        Ok(Counts {
            dossiers: one("SELECT count(*) FROM dossiers", &[])? as u64,
            today: one(
                "SELECT count(*) FROM dossiers WHERE received_day = ?",
                &[&day],
            )? as u64,
            overdue: one(&COUNT_OVERDUE, &[&now])? as u64,
            head_seq: one("SELECT coalesce(max(seq), 0) FROM journal", &[])? as u64,
            unsynced: one("SELECT count(*) FROM journal WHERE synced = 0", &[])? as u64,
            oldest_unsynced_at: oldest.and_then(|t| shown_time("journal.at", &t)),
            synced_through: one(
                "SELECT coalesce(max(seq), 0) FROM journal WHERE synced = 1",
                &[],
            )? as u64,
            last_receipt_at: last_receipt.and_then(|t| shown_time("receipts.stored_at", &t)),
            reference_version: super::reference::version(c)?,
        })
    }

    /// Re-verifies the whole journal: every seq from 1 with no gap, every
    /// stored hash equal to SHA-256 of its envelope, every signature valid
    /// under a key recorded for this store, every envelope's device, seq and
    /// `prev` matching, every link following the chain rules. Stops at the
    /// first break.
    pub fn verify_journal(&self) -> Result<Result<JournalReport, JournalBreak>, StoreError> {
        self.verify_journal_with(|_, _| {})
    }

    /// [`Reader::verify_journal`], calling `progress(done, total)` every
    /// 1000 records and at the end.
    pub fn verify_journal_with(
        &self,
        progress: impl FnMut(u64, u64),
    ) -> Result<Result<JournalReport, JournalBreak>, StoreError> {
        self.verify_journal_from(1, progress)
    }

    /// Like [`Reader::verify_journal_with`], but checks signatures only from
    /// seq `signatures_from` on; below it, each envelope's hash and every
    /// link are still checked. For repeated checks of a growing journal
    /// whose earlier signatures were verified before.
    pub fn verify_journal_from(
        &self,
        signatures_from: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Result<JournalReport, JournalBreak>, StoreError> {
        let total: i64 = self
            .conn
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
            .step("counting the journal")?;
        let total = total as u64;
        let device: String = self
            .conn
            .query_row("SELECT device_id FROM device WHERE id = 1", [], |r| {
                r.get(0)
            })
            .step("reading the device")?;
        let device: DeviceId = device.parse().map_err(|e| bad("device.device_id", e))?;
        let keys = self.keys()?;
        let mut stmt = self
            .conn
            .prepare("SELECT seq, hash, prev, envelope, synced FROM journal ORDER BY seq")
            .step("reading the journal")?;
        let mut rows = stmt.query([]).step("reading the journal")?;
        let mut head = ChainHead::EMPTY;
        let mut report = JournalReport {
            records: 0,
            signatures: 0,
            synced: 0,
        };
        let brk = |seq, reason: String| Ok(Err(JournalBreak { seq, reason }));
        while let Some(row) = rows.next().step("reading the journal")? {
            let seq = row.get::<_, i64>(0).step("reading the journal")? as u64;
            let hash = hash32(&row.get::<_, Vec<u8>>(1).step("reading the journal")?);
            let prev = hash32(&row.get::<_, Vec<u8>>(2).step("reading the journal")?);
            let envelope: Option<Vec<u8>> = row.get(3).step("reading the journal")?;
            let synced: bool = row.get(4).step("reading the journal")?;
            if seq != head.seq + 1 {
                return brk(
                    head.seq + 1,
                    format!("seq {} is missing (next stored is {seq})", head.seq + 1),
                );
            }
            if envelope.is_none() && !synced {
                return brk(
                    seq,
                    "a record not yet receipted by the data centre has lost its envelope".into(),
                );
            }
            if let Some(bytes) = &envelope
                && Hash32::of(bytes) != hash
            {
                return brk(seq, "the stored hash is not the envelope's hash".into());
            }
            if let Some(bytes) = envelope.as_ref().filter(|_| seq >= signatures_from) {
                let opened = match Opened::<Submission>::parse(bytes) {
                    Ok(o) => o,
                    Err(e) => return brk(seq, format!("the envelope is malformed: {e}")),
                };
                let Some(key) = keys.get(&opened.kid()) else {
                    return brk(
                        seq,
                        format!(
                            "signed by key {}, which this store does not know",
                            opened.kid()
                        ),
                    );
                };
                let v = match opened.verify(key) {
                    Ok(v) => v,
                    Err(e) => return brk(seq, format!("the envelope does not verify: {e}")),
                };
                if v.message.device != device || v.message.seq != seq || v.message.prev != prev {
                    return brk(
                        seq,
                        "the envelope's device, seq or prev differs from the journal row".into(),
                    );
                }
                report.signatures += 1;
            }
            let link = motcua_protocol::Link { seq, prev, hash };
            if classify(&head, &link) != Classification::Next {
                return brk(seq, "prev is not the hash of the record before".into());
            }
            head = ChainHead { seq, hash };
            report.records += 1;
            if report.records.is_multiple_of(1000) {
                progress(report.records, total);
            }
            report.synced += u64::from(synced);
        }
        progress(report.records, total);
        Ok(Ok(report))
    }

    /// The device's public keys by kid, as the `keys` table holds them; a
    /// row that does not parse is left out (a record it signed then fails
    /// to verify, which is where that is reported).
    fn keys(&self) -> Result<std::collections::HashMap<KeyId, VerifyingKey>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kid, public_key FROM keys")
            .step("reading keys")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .step("reading keys")?;
        let mut keys = std::collections::HashMap::new();
        for (kid, public) in rows {
            if let (Some(kid), Ok(public)) = (
                KeyId::from_slice(&kid),
                <[u8; 32]>::try_from(public.as_slice()),
            ) && let Ok(k) = VerifyingKey::from_bytes(&public)
            {
                keys.insert(kid, k);
            }
        }
        Ok(keys)
    }

    /// The signed status changes and apologies of dossier `code`, oldest
    /// first, each read from its journal envelope and verified with the
    /// key that signed it: what a printed form (02, 03, 04) rests on.
    /// Records whose envelope was pruned, or that do not verify, are left
    /// out.
    pub fn changes(&self, code: &str) -> Result<Vec<ChangeRecord>, StoreError> {
        let keys = self.keys()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, envelope FROM journal
                 WHERE dossier_code = ? AND kind IN ('dossier.status', 'dossier.rescheduled')
                   AND envelope IS NOT NULL
                 ORDER BY seq",
            )
            .step("reading a dossier's status records")?;
        let rows = stmt
            .query_map([code], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .step("reading a dossier's status records")?;
        let mut out = Vec::new();
        for (seq, bytes) in rows {
            let Ok(opened) = Opened::<Submission>::parse(&bytes) else {
                continue;
            };
            let Some(key) = keys.get(&opened.kid()) else {
                continue;
            };
            let Ok(v) = opened.verify(key) else {
                continue;
            };
            let m = v.message;
            let body = &m.body;
            let status = |k: &str| {
                body.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u8::try_from(n).ok())
                    .and_then(|n| Status::try_from(n).ok())
            };
            let time = |k: &str| {
                body.get(k)
                    .and_then(serde_json::Value::as_str)
                    .and_then(|t| UtcTime::parse(t).ok())
            };
            let change = match m.kind.as_str() {
                "dossier.status" => match (status("from"), status("to")) {
                    (Some(from), Some(to)) => Change::Status { from, to },
                    _ => continue,
                },
                _ => match (time("from"), time("to")) {
                    (Some(from), Some(to)) => Change::Rescheduled { from, to },
                    _ => continue,
                },
            };
            if body.get("code").and_then(serde_json::Value::as_str) != Some(code) {
                continue;
            }
            out.push(ChangeRecord {
                seq: seq as u64,
                at: m.at,
                clock: m.clock,
                staff: m.staff,
                change,
                note: body
                    .get("note")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            });
        }
        Ok(out)
    }

    /// The underlying connection, for the reference-data queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
