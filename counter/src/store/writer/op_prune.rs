//! Pruning: removes the bytes of old synced envelopes and the personal
//! data of old finished dossiers the DC holds every record of. The
//! statuses that let personal data go come from
//! [`Status::releases_personal_data`].

use std::sync::LazyLock;

use motcua_protocol::UtcTime;
use rusqlite::params;
use time::Duration;

use super::chain::check_clock;
use super::engine::{Ctx, Operation, Stop};
use crate::domain::status::Status;
use crate::store::Step;

/// The effect of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Envelopes whose bytes were removed.
    pub envelopes: u64,
    /// Dossiers whose personal data was removed.
    pub dossiers: u64,
}

/// A dossier's personal data goes when it is finished, its last change is
/// older than the cutoff (?1), and the DC has every record of it.
static PRUNE_DOSSIERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE dossiers SET data = NULL, name_folded = NULL, id_number = NULL, pruned_at = ?2
         WHERE pruned_at IS NULL AND updated_at < ?1 AND status IN ({})
           AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.dossier_code = dossiers.code AND j.synced = 0)",
        Status::sql_list(Status::releases_personal_data)
    )
});

/// Prune what is older than the retention.
pub(super) struct Prune {
    /// How long records are kept.
    pub retention: Duration,
}

impl Operation for Prune {
    type Output = Pruned;

    fn adds_data(&self) -> bool {
        false
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Result<Pruned, Stop> {
        let conn = cx.conn;
        // Pruning compares times: a clock known to be wrong refuses it too.
        let reading = cx.cfg.clock.now();
        check_clock(&reading, cx.head)?;
        let now = reading.at;
        let cutoff = UtcTime::new(now - self.retention).to_string();
        let stamp = UtcTime::new(now).to_string();
        let dossiers = conn
            .execute(&PRUNE_DOSSIERS, params![cutoff, stamp])
            .step("pruning dossiers")?;
        // Envelopes go when synced and old, whatever their dossier: the DC
        // holds them and the receipt proves it. Unsynced envelopes are
        // never touched.
        let envelopes = conn
            .execute(
                "UPDATE journal SET envelope = NULL WHERE synced = 1 AND envelope IS NOT NULL AND at < ?",
                [&cutoff],
            )
            .step("pruning envelopes")?;
        // Idempotency keys answer retries of the same day, not of months:
        // they go with the records they answered.
        conn.execute("DELETE FROM intents WHERE at < ?", [&cutoff])
            .step("pruning idempotency keys")?;
        if envelopes + dossiers > 0 {
            tracing::info!(envelopes, dossiers, "pruned old synced records");
            *cx.scrub_wal = true;
        }
        Ok(Pruned {
            envelopes: envelopes as u64,
            dossiers: dossiers as u64,
        })
    }
}
