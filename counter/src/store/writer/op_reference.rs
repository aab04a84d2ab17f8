//! Replacing the cached reference data (the procedure catalogue and the
//! calendar) with a checked newer version: `motcua reference import` and
//! the DC's catalogue. The whole set is replaced inside the job's
//! savepoint; a version older than or equal to the stored one is refused
//! ([`Refusal::ReferenceNotNewer`]) with nothing changed. No journal
//! record: the DC owns this data.

use motcua_protocol::UtcTime;
use rusqlite::{OptionalExtension, params};

use super::engine::{Ctx, Operation, Stop};
use crate::domain::text::{clean, fold};
use crate::store::reference::ValidReference;
use crate::store::{Refusal, Step};

/// Replace the catalogue and the calendar.
pub(super) struct ImportReference {
    /// The data, checked by [`crate::store::reference::validate`].
    pub data: ValidReference,
    /// When, as recorded beside the version.
    pub at: UtcTime,
}

impl Operation for ImportReference {
    type Output = ();

    /// Reference data replaces what is cached; it is not refused below
    /// the free-space floor.
    fn adds_data(&self) -> bool {
        false
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<(), Stop> {
        let conn = cx.conn;
        let data = self.data.data();
        let current: Option<i64> = conn
            .query_row("SELECT version FROM reference WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .step("reading the version")?;
        if let Some(current) = current {
            let current = current as u64;
            if data.version <= current {
                return Err(Refusal::ReferenceNotNewer {
                    offered: data.version,
                    current,
                }
                .into());
            }
        }
        conn.execute_batch("DELETE FROM procedures; DELETE FROM calendar;")
            .step("clearing reference data")?;
        let mut ins = conn
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
        let mut cal = conn
            .prepare("INSERT OR REPLACE INTO calendar (day, kind, name) VALUES (?, ?, ?)")
            .step("preparing the import")?;
        for (kind, days) in [("holiday", &data.holidays), ("workday", &data.workdays)] {
            for d in days {
                cal.execute(params![d.day, kind, d.name.as_deref().map(clean)])
                    .step("importing the calendar")?;
            }
        }
        conn.execute(
            "INSERT INTO reference (id, version, imported_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET version = ?1, imported_at = ?2",
            params![data.version as i64, self.at.to_string()],
        )
        .step("recording the version")?;
        Ok(())
    }
}
