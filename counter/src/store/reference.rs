//! The cached reference data: the procedure catalogue and the calendar of
//! holidays and make-up working days.
//!
//! The DC owns this data and publishes it versioned; the counter keeps the
//! newest version it has seen and works from it offline. An import replaces
//! the whole set in one transaction, and an older or equal version never
//! replaces a newer one. The file format (`motcua reference import`) is
//! documented in `docs/DOSSIER-INPUT.md`.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use time::Date;

use super::{Step, StoreError};
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

/// Checks `data` and, if its version is newer than the stored one,
/// replaces the stored catalogue and calendar with it in one transaction.
pub fn import(conn: &mut Connection, data: &ReferenceData, now: &str) -> Result<(), ImportError> {
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
    let tx = conn.transaction().map_err(|source| StoreError::Sqlite {
        step: "starting the import",
        source,
    })?;
    let current: Option<i64> = tx
        .query_row("SELECT version FROM reference WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .step("reading the version")?;
    if let Some(current) = current {
        let current = current as u64;
        if data.version <= current {
            return Err(ImportError::NotNewer {
                offered: data.version,
                current,
            });
        }
    }
    tx.execute_batch("DELETE FROM procedures; DELETE FROM calendar;")
        .step("clearing reference data")?;
    {
        let mut ins = tx
            .prepare("INSERT INTO procedures (code, name, name_folded, working_days, fee, documents) VALUES (?, ?, ?, ?, ?, ?)")
            .step("preparing the import")?;
        for p in &data.procedures {
            let name = clean(&p.name);
            let docs: Vec<String> = p.documents.iter().map(|d| clean(d)).collect();
            let docs = serde_json::to_string(&docs).unwrap_or_else(|_| "[]".into());
            ins.execute(params![
                p.code,
                name,
                fold(&name),
                p.working_days,
                p.fee.map(|f| f as i64),
                docs
            ])
            .step("importing procedures")?;
        }
        let mut cal = tx
            .prepare("INSERT OR REPLACE INTO calendar (day, kind, name) VALUES (?, ?, ?)")
            .step("preparing the import")?;
        for (kind, days) in [("holiday", &data.holidays), ("workday", &data.workdays)] {
            for d in days {
                cal.execute(params![d.day, kind, d.name.as_deref().map(clean)])
                    .step("importing the calendar")?;
            }
        }
    }
    tx.execute(
        "INSERT INTO reference (id, version, imported_at) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET version = ?1, imported_at = ?2",
        params![data.version as i64, now],
    )
    .step("recording the version")?;
    tx.commit().step("committing the import")?;
    Ok(())
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

/// The stored reference version, if any.
pub fn version(conn: &Connection) -> Result<Option<u64>, StoreError> {
    conn.query_row("SELECT version FROM reference WHERE id = 1", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|v| v.map(|v| v as u64))
    .step("reading the reference version")
}
