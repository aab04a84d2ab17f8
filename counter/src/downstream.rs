//! What the DC sends down (`motcua_protocol::down`), verified against the
//! pinned DC key and applied to the store.
//!
//! Verifying (signature, device, number, content) is done here, reading
//! the store only; every write is a writer job, so the store has one
//! writer ([`WriterHandle`]).
//!
//! - The catalogue replaces the cached reference data when its version is
//!   higher (`store::reference::import_async`: checked here, replaced by
//!   the writer in one job).
//! - A status-updates message is gone through in one writer job
//!   (`WriterHandle::apply_dc_updates`): each change is a signed journal
//!   record like a clerk's (staff
//!   [`DC_STAFF`], the deciding office in the note) and reaches the DC in
//!   the chain. Which side wins: the counter's. An update is applied only
//!   when the dossier may move from its current status to the new one; if
//!   it already has that status the update counts as done; otherwise
//!   (the clerk changed it meanwhile, e.g. the citizen withdrew) it is not
//!   forced: it is kept as a conflict, logged and counted in the health
//!   report, for the DC to settle. The outcome of each update and the
//!   message's seq are recorded in the same job: all of it is stored or
//!   none.
//! - Settings override the configuration while they last (only the health
//!   interval exists), within the configuration's own bounds.
//!
//! Each kind is ordered by its number (catalogue version, status or
//! settings seq): a higher one is applied, an equal one is the retained
//! copy seen again and ignored, a lower one is a replay and refused. A
//! message that fails verification, names another device or breaks a rule
//! is refused whole, logged with its reason and counted; nothing of it is
//! applied.

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use motcua_protocol::down::{Catalogue, Settings, StatusUpdates, Units};
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{DeviceId, Message, StaffId, UtcTime, verify};
use rusqlite::{Connection, OptionalExtension};

use crate::domain::status::Status;
use crate::store::reference::{self, ImportError, ReferenceData};
use crate::store::writer::{Decision, WriterHandle, decide};
use crate::store::{Refusal, Step, StoreError, schema};

/// Why handling a DC message stopped: the store failed, or the writer
/// refused a DC status change for another reason than the move itself (no
/// space, a wrong clock, the dossier gone meanwhile).
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer refused a DC status change.
    #[error(transparent)]
    Refused(Refusal),
}

/// Bounds of the health interval, in seconds: `telemetry.health_interval`
/// in the configuration and the value the DC may push in its settings.
pub const HEALTH_INTERVAL_MIN_S: u64 = 10;
/// See [`HEALTH_INTERVAL_MIN_S`].
pub const HEALTH_INTERVAL_MAX_S: u64 = 3600;

/// The staff id status changes decided at the DC are journaled under.
pub const DC_STAFF: &str = "motcua-dc";

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new catalogue version is cached.
    Catalogue {
        /// Its version.
        version: u64,
    },
    /// A new version of the units' names and places is cached.
    Units {
        /// Its version.
        version: u64,
    },
    /// A new set of status updates was gone through.
    Updates {
        /// Its seq.
        seq: u64,
        /// Updates applied (a journal record each).
        applied: u64,
        /// Updates the dossier already reflected.
        already: u64,
        /// Updates not applied: the counter's status differs.
        conflicts: u64,
        /// Updates for dossiers this counter does not have.
        unknown: u64,
    },
    /// New settings are in force.
    Settings {
        /// Its seq.
        seq: u64,
        /// The health interval now in force.
        health_interval: Duration,
    },
    /// The message is the one already applied (a retained copy).
    Seen,
    /// Not for the agent (another broadcast name).
    Ignored,
    /// Refused whole: verification, device, order or content.
    Refused {
        /// A stable reason code.
        reason: &'static str,
        /// What was wrong, for the log; never payload content.
        detail: String,
    },
}

/// What the counter has applied, for its health report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The cached catalogue's version.
    pub catalogue: Option<u64>,
    /// The last status-updates seq gone through.
    pub status_seq: u64,
    /// The highest status update id gone through (applied or not).
    pub updates_through: u64,
    /// Updates kept as conflicts.
    pub conflicts: u64,
    /// The last settings seq applied.
    pub settings_seq: u64,
}

/// Applies downstream messages to one store.
pub struct Downstream {
    conn: Connection,
    device: DeviceId,
    dc_key: VerifyingKey,
    writer: WriterHandle,
    configured_interval: Duration,
}

fn refused(reason: &'static str, detail: impl Into<String>) -> Outcome {
    Outcome::Refused {
        reason,
        detail: detail.into(),
    }
}

impl Downstream {
    /// A read-only connection to the store at `db`, for the numbers
    /// already applied and the dossiers' statuses; every write goes
    /// through `writer`. The writer has already opened, checked and
    /// migrated the store (`schema::open_read`).
    pub fn open(
        db: &Path,
        device: DeviceId,
        dc_key: VerifyingKey,
        writer: WriterHandle,
        configured_interval: Duration,
    ) -> Result<Downstream, StoreError> {
        Ok(Downstream {
            conn: schema::open_read(db)?,
            device,
            dc_key,
            writer,
            configured_interval,
        })
    }

    /// The health interval in force: the DC's setting if it gave one, else
    /// the configuration's.
    pub fn health_interval(&self) -> Result<Duration, StoreError> {
        Ok(self
            .last::<Settings>("settings")?
            .and_then(|s| s.health_interval_s)
            .map_or(self.configured_interval, Duration::from_secs))
    }

    /// What has been applied so far.
    pub fn applied(&self) -> Result<Applied, StoreError> {
        let (through, conflicts): (i64, i64) = self
            .conn
            .query_row(
                "SELECT coalesce(max(id), 0), count(*) FILTER (WHERE outcome = 'conflict') FROM dc_updates",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .step("reading the DC's status updates")?;
        Ok(Applied {
            catalogue: reference::version(&self.conn)?,
            status_seq: self.number("status")?,
            updates_through: through as u64,
            conflicts: conflicts as u64,
            settings_seq: self.number("settings")?,
        })
    }

    fn last<M: Message>(&self, kind: &str) -> Result<Option<M>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT message FROM downstream WHERE kind = ?",
                [kind],
                |r| r.get(0),
            )
            .optional()
            .step("reading what the DC sent")?;
        // Verified again: should the pinned DC key have changed since,
        // the message no longer counts and the configuration decides.
        Ok(bytes.and_then(|b| {
            motcua_protocol::Opened::<M>::parse(&b)
                .ok()
                .and_then(|o| o.verify(&self.dc_key).ok())
                .map(|v| v.message)
        }))
    }

    fn number(&self, kind: &str) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT number FROM downstream WHERE kind = ?",
                [kind],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .step("reading what the DC sent")?
            .unwrap_or(0) as u64)
    }

    /// Verifies and applies a message received on `topic`. Only a store
    /// failure is an error; everything about the message is an [`Outcome`].
    pub async fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: &UtcTime,
    ) -> Result<Outcome, DownstreamError> {
        if let Some(name) = topics::parse_broadcast_topic(topic) {
            return match name {
                topics::CATALOGUE => self.catalogue(payload, now).await,
                topics::UNITS => self.units(payload, now).await,
                _ => Ok(Outcome::Ignored),
            };
        }
        match topics::parse_device_topic(topic) {
            Some((d, Channel::Down(name))) if d == self.device => match name.as_str() {
                topics::DOWN_STATUS => self.updates(payload, now).await,
                topics::DOWN_SETTINGS => self.settings(payload, now).await,
                _ => Ok(Outcome::Ignored),
            },
            _ => Ok(Outcome::Ignored),
        }
    }

    async fn catalogue(
        &mut self,
        payload: &[u8],
        now: &UtcTime,
    ) -> Result<Outcome, DownstreamError> {
        let c = match verify::<Catalogue>(payload, &self.dc_key) {
            Ok(v) => v.message,
            Err(e) => return Ok(refused(e.reason(), e.to_string())),
        };
        let data = ReferenceData {
            version: c.version,
            procedures: c.procedures,
            holidays: c.holidays,
            workdays: c.workdays,
        };
        match reference::import_async(&self.writer, data, now).await {
            Ok(()) => Ok(Outcome::Catalogue { version: c.version }),
            Err(ImportError::NotNewer { offered, current }) if offered == current => {
                Ok(Outcome::Seen)
            }
            Err(ImportError::NotNewer { offered, current }) => Ok(refused(
                "replay",
                format!("catalogue version {offered}, older than the cached {current}"),
            )),
            Err(ImportError::Invalid(why)) => Ok(refused("invalid_catalogue", why)),
            Err(ImportError::Refused(r)) => Err(DownstreamError::Refused(r)),
            Err(ImportError::Store(e)) => Err(e.into()),
        }
    }

    async fn units(&mut self, payload: &[u8], now: &UtcTime) -> Result<Outcome, DownstreamError> {
        let u = match verify::<Units>(payload, &self.dc_key) {
            Ok(v) => v.message,
            Err(e) => return Ok(refused(e.reason(), e.to_string())),
        };
        let last = self.number("units")?;
        if u.version == last {
            return Ok(Outcome::Seen);
        }
        if u.version < last {
            return Ok(refused(
                "replay",
                format!("units version {}, older than the cached {last}", u.version),
            ));
        }
        self.writer
            .import_units_async(u.version, u.units, payload.to_vec(), *now)
            .await
            .map_err(DownstreamError::from)?
            .map_err(DownstreamError::Refused)?;
        Ok(Outcome::Units { version: u.version })
    }

    /// Checks the device and the order of a per-device message.
    fn ordered(
        &self,
        kind: &str,
        device: &DeviceId,
        seq: u64,
    ) -> Result<Option<Outcome>, StoreError> {
        if *device != self.device {
            return Ok(Some(refused(
                "device_mismatch",
                format!("{kind} for device {device}, received by {}", self.device),
            )));
        }
        let last = self.number(kind)?;
        Ok(match seq {
            s if s == last => Some(Outcome::Seen),
            s if s < last => Some(refused(
                "replay",
                format!("{kind} seq {s}, older than the applied {last}"),
            )),
            _ => None,
        })
    }

    async fn updates(&mut self, payload: &[u8], now: &UtcTime) -> Result<Outcome, DownstreamError> {
        let u = match verify::<StatusUpdates>(payload, &self.dc_key) {
            Ok(v) => v.message,
            Err(e) => return Ok(refused(e.reason(), e.to_string())),
        };
        if let Some(o) = self.ordered("status", &u.device, u.seq)? {
            return Ok(o);
        }
        let staff: StaffId = DC_STAFF
            .parse()
            .map_err(|_| StoreError::Internal("DC staff id".into()))?;
        // Whether some update will become a journal record, as read now:
        // the writer decides again inside its transaction; this only says
        // whether the job is subject to the free-space floor.
        let through = self.applied()?.updates_through;
        let mut adds_records = false;
        for up in u.updates.iter().filter(|up| up.id > through) {
            let to =
                Status::try_from(up.status).map_err(|e| StoreError::Internal(e.to_string()))?;
            let current: Option<u8> = self
                .conn
                .query_row(
                    "SELECT status FROM dossiers WHERE code = ?",
                    [&up.code],
                    |r| r.get(0),
                )
                .optional()
                .step("reading a dossier's status")?;
            let current = current.and_then(|c| Status::try_from(c).ok());
            if matches!(decide(current, to), Decision::Apply { .. }) {
                adds_records = true;
                break;
            }
        }
        let done = self
            .writer
            .apply_dc_updates_async(
                u.seq,
                payload.to_vec(),
                u.updates,
                staff,
                *now,
                adds_records,
            )
            .await?
            .map_err(DownstreamError::Refused)?;
        Ok(Outcome::Updates {
            seq: u.seq,
            applied: done.applied,
            already: done.already,
            conflicts: done.conflicts,
            unknown: done.unknown,
        })
    }

    async fn settings(
        &mut self,
        payload: &[u8],
        now: &UtcTime,
    ) -> Result<Outcome, DownstreamError> {
        let s = match verify::<Settings>(payload, &self.dc_key) {
            Ok(v) => v.message,
            Err(e) => return Ok(refused(e.reason(), e.to_string())),
        };
        if let Some(o) = self.ordered("settings", &s.device, s.seq)? {
            return Ok(o);
        }
        if let Some(i) = s.health_interval_s
            && !(HEALTH_INTERVAL_MIN_S..=HEALTH_INTERVAL_MAX_S).contains(&i)
        {
            return Ok(refused(
                "bad_setting",
                format!(
                    "health_interval_s {i} is outside {HEALTH_INTERVAL_MIN_S} to {HEALTH_INTERVAL_MAX_S}"
                ),
            ));
        }
        self.writer
            .keep_settings_async(s.seq, payload.to_vec(), *now)
            .await?
            .map_err(DownstreamError::Refused)?;
        Ok(Outcome::Settings {
            seq: s.seq,
            health_interval: self.health_interval()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ed25519_dalek::SigningKey;
    use motcua_protocol::sign;

    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::code::Counter;
    use crate::state_dir::StateDir;
    use crate::store::writer::{CLOCK_FLOOR, DEFAULT_MAX_BATCH};
    use crate::store::{Writer, WriterConfig};

    const DEVICE: &str = "H49.12.3-q01";

    fn dc() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn settings(seq: u64, device: &str, interval: Option<u64>, key: &SigningKey) -> Vec<u8> {
        sign(
            &Settings {
                v: 1,
                device: device.parse().expect("valid"),
                seq,
                issued_at: UtcTime::new(time::OffsetDateTime::now_utc()),
                health_interval_s: interval,
            },
            key,
        )
        .expect("signs")
    }

    fn reason(o: &Outcome) -> &'static str {
        match o {
            Outcome::Refused { reason, .. } => reason,
            _ => "",
        }
    }

    #[test]
    fn settings_are_ordered_checked_and_verified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = StateDir::new(dir.path()).db();
        let writer = Writer::start(WriterConfig {
            db: db.clone(),
            device: DEVICE.parse().expect("valid"),
            unit: "H49.12.3".parse().expect("valid"),
            counter: Counter::new(1).expect("valid"),
            min_free: 0,
            key: SigningKey::from_bytes(&[1; 32]),
            clock: Arc::new(ManualClock::new(
                time::OffsetDateTime::now_utc().max(CLOCK_FLOOR),
                true,
            )),
            default_collect_at: "Bộ phận Một cửa".into(),
            office: crate::domain::calendar::OfficeDay::default(),
            max_batch: DEFAULT_MAX_BATCH,
        })
        .expect("writer");
        let configured = Duration::from_secs(60);
        let mut down = Downstream::open(
            &db,
            DEVICE.parse().expect("valid"),
            dc().verifying_key(),
            writer.handle(),
            configured,
        )
        .expect("opens");
        let topic = format!("motcua/v1/d/{DEVICE}/down/settings");
        let now = UtcTime::new(time::OffsetDateTime::now_utc());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut handle = |bytes: Vec<u8>| {
            rt.block_on(down.handle(&topic, &bytes, &now))
                .expect("store")
        };

        // Out of the counter's bounds: refused, nothing kept.
        assert_eq!(
            reason(&handle(settings(1, DEVICE, Some(5), &dc()))),
            "bad_setting"
        );
        // Another device's, or signed by another key: refused.
        assert_eq!(
            reason(&handle(settings(1, "H49.12.3-q02", Some(300), &dc()))),
            "device_mismatch"
        );
        let forged = settings(1, DEVICE, Some(300), &SigningKey::from_bytes(&[3; 32]));
        assert_eq!(reason(&handle(forged)), "key_mismatch");
        // Applied; the retained copy again is seen; an older one a replay.
        assert_eq!(
            handle(settings(2, DEVICE, Some(300), &dc())),
            Outcome::Settings {
                seq: 2,
                health_interval: Duration::from_secs(300)
            }
        );
        assert_eq!(handle(settings(2, DEVICE, Some(300), &dc())), Outcome::Seen);
        assert_eq!(
            reason(&handle(settings(1, DEVICE, Some(600), &dc()))),
            "replay"
        );
        // Cleared: the configuration decides again.
        assert_eq!(
            handle(settings(3, DEVICE, None, &dc())),
            Outcome::Settings {
                seq: 3,
                health_interval: configured
            }
        );
        assert_eq!(down.applied().expect("reads").settings_seq, 3);
        // Another kind of broadcast is not for the agent.
        let other = rt
            .block_on(down.handle("motcua/v1/all/weather", b"x", &now))
            .expect("store");
        assert_eq!(other, Outcome::Ignored);

        // The units' names: applied, seen again, an older list a replay;
        // the kiosk reads the unit's name and place.
        let units = |version: u64, name: &str| {
            sign(
                &Units {
                    v: 1,
                    version,
                    issued_at: now,
                    units: vec![motcua_protocol::down::Unit {
                        code: "H49.12.3".into(),
                        name: name.into(),
                        place: "Tam Thăng".into(),
                    }],
                },
                &dc(),
            )
            .expect("signs")
        };
        let mut broadcast = |bytes: Vec<u8>| {
            rt.block_on(down.handle("motcua/v1/all/units", &bytes, &now))
                .expect("store")
        };
        assert_eq!(
            broadcast(units(2, "UBND xã Tam Thăng")),
            Outcome::Units { version: 2 }
        );
        assert_eq!(broadcast(units(2, "UBND xã Tam Thăng")), Outcome::Seen);
        assert_eq!(reason(&broadcast(units(1, "UBND xã cũ"))), "replay");
        let read = crate::store::Reader::open(&db).expect("reader");
        let named = reference::unit(read.connection(), "H49.12.3").expect("reads");
        assert_eq!(
            named.map(|u| (u.name, u.place)),
            Some(("UBND xã Tam Thăng".to_owned(), "Tam Thăng".to_owned()))
        );
        assert_eq!(
            reference::unit(read.connection(), "H49.12.4").expect("reads"),
            None
        );
        writer.shutdown();
    }
}
