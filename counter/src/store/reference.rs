//! The cached reference data: the procedure catalogue and the calendar of
//! holidays and make-up working days.
//!
//! The DC owns this data and publishes it versioned; the counter keeps the
//! newest version it has seen and works from it offline. An import is
//! checked here first ([`validate`], no I/O), then written by the writer
//! (`store::writer`'s reference operation): it replaces the whole set in
//! one transaction, and an older or equal version never replaces a newer
//! one. This module only reads the store. The file format (`motcua reference import`) is
//! documented in `docs/DOSSIER-INPUT.md`.

use std::collections::BTreeSet;

use motcua_protocol::UtcTime;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use time::Date;

use super::writer::WriterHandle;
use super::{Answer, Refusal, Step, StoreError};
use crate::domain::calendar::{Calendar, MAX_WORKING_DAYS};
use crate::domain::dossier::ProcedureRef;
use crate::domain::text::{clean, fold};

/// A reference data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceData {
    /// Version; each publication has a higher one.
    pub version: u64,
    /// The procedures this unit handles.
    pub procedures: Vec<Procedure>,
    /// Public holidays.
    #[serde(default)]
    pub holidays: Vec<CalendarDay>,
    /// Weekend days declared working days.
    #[serde(default)]
    pub workdays: Vec<CalendarDay>,
}

pub use motcua_protocol::down::{CalendarDay, Procedure};

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The data breaks a rule; the message says which entry.
    #[error("reference data refused: {0}")]
    Invalid(String),
    /// The store already has this version or a newer one.
    #[error("reference data version {offered} refused: the store already has version {current}")]
    NotNewer {
        /// The version offered.
        offered: u64,
        /// The version stored.
        current: u64,
    },
    /// The writer refused it for another reason than its version.
    #[error(transparent)]
    Refused(Refusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

const DAY: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<Date> {
    Date::parse(s, DAY).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_day(d: Date) -> String {
    d.format(DAY).unwrap_or_default()
}

fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// Reference data that passed [`validate`]: the only form the writer
/// takes ([`WriterHandle::import_reference`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidReference(ReferenceData);

impl ValidReference {
    /// The data, as checked.
    pub fn data(&self) -> &ReferenceData {
        &self.0
    }
}

/// Checks `data` against the catalogue's rules (national procedure codes,
/// each listed once, a name and at most [`MAX_WORKING_DAYS`] working days;
/// dates that parse, each day listed once). A pure step: only
/// [`ImportError::Invalid`] comes out of it.
pub fn validate(data: ReferenceData) -> Result<ValidReference, ImportError> {
    let mut codes = BTreeSet::new();
    for p in &data.procedures {
        if !valid_code(&p.code) {
            return Err(ImportError::Invalid(format!(
                "procedure code {:?} is not a national procedure code",
                p.code
            )));
        }
        if !codes.insert(&p.code) {
            return Err(ImportError::Invalid(format!(
                "procedure {} is listed twice",
                p.code
            )));
        }
        if clean(&p.name).is_empty() || p.working_days > MAX_WORKING_DAYS {
            return Err(ImportError::Invalid(format!(
                "procedure {} needs a name and at most {MAX_WORKING_DAYS} working days",
                p.code
            )));
        }
    }
    let mut days = BTreeSet::new();
    for d in data.holidays.iter().chain(&data.workdays) {
        let Some(day) = parse_day(&d.day) else {
            return Err(ImportError::Invalid(format!(
                "{:?} is not a date (YYYY-MM-DD)",
                d.day
            )));
        };
        if !days.insert(day) {
            return Err(ImportError::Invalid(format!(
                "{} is listed twice (as a holiday and a working day, or twice in one list)",
                d.day
            )));
        }
    }
    Ok(ValidReference(data))
}

/// What became of an import, from the writer's answer.
fn imported(answer: Answer<()>) -> Result<(), ImportError> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Refusal::ReferenceNotNewer { offered, current })) => {
            Err(ImportError::NotNewer { offered, current })
        }
        Ok(Err(r)) => Err(ImportError::Refused(r)),
        Err(e) => Err(ImportError::Store(e)),
    }
}

/// Checks `data` ([`validate`]) and, if its version is newer than the
/// stored one, has the writer replace the stored catalogue and calendar
/// with it in one transaction, stamped `at`.
///
/// Blocking: not from inside an async runtime (use [`import_async`]).
pub fn import(writer: &WriterHandle, data: ReferenceData, at: &UtcTime) -> Result<(), ImportError> {
    let valid = validate(data)?;
    imported(writer.import_reference(valid, *at))
}

/// As [`import`], from async code.
pub async fn import_async(
    writer: &WriterHandle,
    data: ReferenceData,
    at: &UtcTime,
) -> Result<(), ImportError> {
    let valid = validate(data)?;
    imported(writer.import_reference_async(valid, *at).await)
}

/// The procedure `code`, if the catalogue has it.
pub fn procedure(conn: &Connection, code: &str) -> Result<Option<ProcedureRef>, StoreError> {
    conn.prepare_cached("SELECT code, name, working_days FROM procedures WHERE code = ?")
        .step("looking up a procedure")?
        .query_row([code], |r| {
            Ok(ProcedureRef {
                code: r.get(0)?,
                name: r.get(1)?,
                working_days: r.get(2)?,
            })
        })
        .optional()
        .step("looking up a procedure")
}

/// Every procedure whose code starts with, or whose folded name contains,
/// the folded `query`; all when `query` is empty.
pub fn search_procedures(conn: &Connection, query: &str) -> Result<Vec<Procedure>, StoreError> {
    let q = fold(query);
    let mut stmt = conn
        .prepare(
            "SELECT code, name, working_days, fee, documents FROM procedures
             WHERE ?1 = '' OR code LIKE ?1 || '%' OR name_folded LIKE '%' || ?1 || '%' ORDER BY code",
        )
        .step("searching procedures")?;
    let rows = stmt
        .query_map([q], |r| {
            let docs: String = r.get(4)?;
            Ok(Procedure {
                code: r.get(0)?,
                name: r.get(1)?,
                working_days: r.get(2)?,
                fee: r.get::<_, Option<i64>>(3)?.map(|f| f as u64),
                documents: serde_json::from_str(&docs).unwrap_or_default(),
            })
        })
        .and_then(Iterator::collect)
        .step("searching procedures")?;
    Ok(rows)
}

/// The calendar from `from` on (holidays and make-up days).
pub fn calendar(conn: &Connection, from: Date) -> Result<Calendar, StoreError> {
    let mut cal = Calendar::default();
    let mut stmt = conn
        .prepare_cached("SELECT day, kind FROM calendar WHERE day >= ?")
        .step("reading the calendar")?;
    let rows = stmt
        .query_map([format_day(from)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .step("reading the calendar")?;
    for row in rows {
        let (day, kind) = row.step("reading the calendar")?;
        if let Some(d) = parse_day(&day) {
            if kind == "holiday" {
                cal.holidays.insert(d);
            } else {
                cal.workdays.insert(d);
            }
        }
    }
    Ok(cal)
}

/// A receiving unit's name and place, as the DC's units message gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitName {
    /// The agency's name, e.g. "UBND xã Tam Thăng".
    pub name: String,
    /// The place name of its documents' place-and-date line.
    pub place: String,
}

/// The name and place of unit `code`, if the DC has sent them.
pub fn unit(conn: &Connection, code: &str) -> Result<Option<UnitName>, StoreError> {
    conn.prepare_cached("SELECT name, place FROM units WHERE code = ?")
        .and_then(|mut s| {
            s.query_row([code], |r| {
                Ok(UnitName {
                    name: r.get(0)?,
                    place: r.get(1)?,
                })
            })
            .optional()
        })
        .step("reading the unit's name")
}

/// The stored reference version, if any.
pub fn version(conn: &Connection) -> Result<Option<u64>, StoreError> {
    conn.query_row("SELECT version FROM reference WHERE id = 1", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|v| v.map(|v| v as u64))
    .step("reading the reference version")
}
