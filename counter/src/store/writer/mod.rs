//! The single writer: one thread owns the only writing connection and
//! commits callers' changes in groups.
//!
//! Callers (kiosk handlers, the CLI, the sync task) send jobs through a
//! [`WriterHandle`] and wait for the durable answer. The writer is an
//! engine plus operations:
//! - [`engine`]: group commit, one savepoint per job, the rolled-back-group
//!   handling and the free-space refusal; it knows no job kind.
//! - [`checkpoint`]: the checkpointer thread.
//! - `chain`: the chain head, the device binding, the clock check and the
//!   signing of the next journal envelope.
//! - one `op_*` file per job kind (receive a dossier, change its status,
//!   accept a DC receipt, prune, replace the reference data, keep what the
//!   DC sent down and go through its status updates), each an
//!   [`engine::Operation`].
//!
//! Each record-changing job signs its journal envelope inside the same
//! transaction as the dossier row, with the next seq and the previous hash,
//! so the journal and the dossiers can never disagree.
//!
//! Every job answers [`Answer`]: `Err` when the store failed, `Ok(Err)`
//! when the input or the counter's policy refused it ([`Refusal`]),
//! `Ok(Ok)` when it is stored.

mod chain;
pub mod checkpoint;
pub mod engine;
mod intent;
mod op_create;
mod op_downstream;
mod op_prune;
mod op_receipt;
mod op_reference;
mod op_reschedule;
mod op_status;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use ed25519_dalek::{SigningKey, VerifyingKey};
use motcua_protocol::down::StatusUpdate;
use motcua_protocol::{DeviceId, KeyId, StaffId, UnitCode, UtcTime};
use rusqlite::params;
use time::Duration;
use tokio::sync::mpsc;

use self::engine::{Engine, Message, Operation};
use super::{Step, StoreError, schema};
use crate::clock::Clock;
use crate::domain::code::Counter;
use crate::domain::dossier::DossierInput;
use crate::domain::intent::Intent;
use crate::domain::status::Status;
use crate::store::reference::ValidReference;

pub(crate) use chain::hash32;
pub use chain::{CLOCK_FLOOR, CLOCK_SLACK};
pub use engine::Answer;
pub use op_create::Created;
pub use op_downstream::{Decision, UpdatesApplied, decide};
pub use op_prune::Pruned;
pub use op_receipt::Synced;
pub use op_reschedule::Rescheduled;
pub use op_status::StatusChanged;

/// Default largest group of jobs committed together.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// What the writer needs.
pub struct WriterConfig {
    /// The database file.
    pub db: PathBuf,
    /// This device.
    pub device: DeviceId,
    /// The receiving unit.
    pub unit: UnitCode,
    /// This counter's number within the unit.
    pub counter: Counter,
    /// Free-space floor of the database's file system, in bytes.
    pub min_free: u64,
    /// The device's signing key.
    pub key: SigningKey,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// "Where to collect" when the clerk does not say.
    pub default_collect_at: String,
    /// The office's closing time and same-day cut-off: when a procedure
    /// resolved within the day is due.
    pub office: crate::domain::calendar::OfficeDay,
    /// Largest group committed together.
    pub max_batch: usize,
}

/// The running writer. Dropping it (or [`Writer::shutdown`]) lets the
/// thread finish the queued jobs and close the database.
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, cloneable way to send jobs to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

impl Writer {
    /// Opens (creating if needed) the database, checks it belongs to this
    /// device, records the signing key, and starts the writer thread.
    pub fn start(cfg: WriterConfig) -> Result<Writer, StoreError> {
        let conn = schema::open(&cfg.db)?;
        chain::bind_device(&conn, &cfg.device, &cfg.clock.now())?;
        let head = chain::load_head(&conn)?;
        let public = cfg.key.verifying_key();
        conn.execute(
            "INSERT OR IGNORE INTO keys (kid, public_key, first_seq) VALUES (?, ?, ?)",
            params![
                KeyId::of(&public).0.to_vec(),
                public.as_bytes().to_vec(),
                head.chain.seq as i64 + 1
            ],
        )
        .step("recording the signing key")?;
        // Checkpoints happen on the checkpointer's connection, off the
        // path of any submission.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .step("turning off automatic checkpoints")?;
        let ckpt_conn = schema::open_more(&cfg.db)?;
        let (grew_tx, grew_rx) = std::sync::mpsc::sync_channel(1);
        let checkpointer = std::thread::Builder::new()
            .name("motcua-store-checkpoint".into())
            .spawn(move || checkpoint::run(ckpt_conn, grew_rx))
            .map_err(|source| StoreError::Io {
                path: "checkpoint thread".into(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(1024);
        let mut engine = Engine {
            conn,
            cfg,
            head,
            wal_grew: Some(grew_tx),
            checkpointer: Some(checkpointer),
            scrub_wal: false,
        };
        let thread = std::thread::Builder::new()
            .name("motcua-store-writer".into())
            .spawn(move || engine.run(rx))
            .map_err(|source| StoreError::Io {
                path: "writer thread".into(),
                source,
            })?;
        Ok(Writer {
            handle: WriterHandle { tx },
            thread: Some(thread),
        })
    }

    /// A handle for sending jobs.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Lets the jobs already queued finish, then stops the thread and
    /// closes the database (folding the WAL into it). Handles still held
    /// elsewhere get [`StoreError::WriterGone`] from then on. Blocking: call
    /// it from a plain thread (or `spawn_blocking`), not from async code.
    pub fn shutdown(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            // A send error means the thread already ended.
            let _ = self.handle.tx.blocking_send(Message::Shutdown);
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside async code blocking would panic: ask the thread to
            // stop and let it finish on its own.
            if let Some(t) = self.thread.take() {
                let _ = self.handle.tx.try_send(Message::Shutdown);
                drop(t);
            }
            return;
        }
        self.join();
    }
}

/// One job kind's pair of [`WriterHandle`] methods: blocking and async.
macro_rules! ask {
    ($(#[$doc:meta])* $name:ident, $name_async:ident, |$($arg:ident : $ty:ty),*| -> $out:ty { $op:expr }) => {
        $(#[$doc])*
        ///
        /// Blocking: not from inside an async runtime (use the `_async`
        /// form there).
        pub fn $name(&self, $($arg: $ty),*) -> Answer<$out> {
            self.ask($op)
        }

        $(#[$doc])*
        pub async fn $name_async(&self, $($arg: $ty),*) -> Answer<$out> {
            self.ask_async($op).await
        }
    };
}

impl WriterHandle {
    /// Sends `op` and waits for its durable answer (blocking).
    fn ask<O: Operation>(&self, op: O) -> Answer<O::Output> {
        let (job, rx) = engine::job(op);
        self.tx
            .blocking_send(Message::Job(job))
            .map_err(|_| StoreError::WriterGone)?;
        rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Sends `op` and awaits its durable answer.
    async fn ask_async<O: Operation>(&self, op: O) -> Answer<O::Output> {
        let (job, rx) = engine::job(op);
        self.tx
            .send(Message::Job(job))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    ask!(
        /// Receives a dossier: validated, given the day's next code, signed
        /// and stored.
        create, create_async, |input: DossierInput, staff: StaffId| -> Created {
            op_create::Create { input, staff, intent: None }
        }
    );
    ask!(
        /// Receives a dossier once per `intent`: a repeat of the same
        /// request with the same key gets the first dossier back
        /// (`repeated`), the same key with another request a refusal.
        create_once, create_once_async, |input: DossierInput, staff: StaffId, intent: Intent| -> Created {
            op_create::Create { input, staff, intent: Some(intent) }
        }
    );
    ask!(
        /// Moves a dossier to another status, with an optional note.
        set_status, set_status_async,
        |code: &str, to: Status, staff: StaffId, note: Option<String>| -> StatusChanged {
            op_status::SetStatus { code: code.to_owned(), to, staff, note, intent: None }
        }
    );
    ask!(
        /// Moves a dossier once per `intent` (see [`WriterHandle::create_once`]).
        set_status_once, set_status_once_async,
        |code: &str, to: Status, staff: StaffId, note: Option<String>, intent: Intent| -> StatusChanged {
            op_status::SetStatus { code: code.to_owned(), to, staff, note, intent: Some(intent) }
        }
    );
    ask!(
        /// Apologises for a late dossier with a new appointment `to` and
        /// the reason of the delay (form 04), once per `intent`.
        reschedule_once, reschedule_once_async,
        |code: &str, to: time::OffsetDateTime, staff: StaffId, note: Option<String>, intent: Intent| -> Rescheduled {
            op_reschedule::Reschedule { code: code.to_owned(), to, staff, note, intent: Some(intent) }
        }
    );
    ask!(
        /// Accepts a DC receipt: every envelope up to its seq is synced.
        accept_receipt, accept_receipt_async,
        |receipt: Vec<u8>, dc_key: VerifyingKey| -> Synced {
            op_receipt::AcceptReceipt { receipt, dc_key }
        }
    );
    ask!(
        /// Prunes what is older than `retention` and safe at the DC.
        prune, prune_async, |retention: Duration| -> Pruned {
            op_prune::Prune { retention }
        }
    );
    ask!(
        /// Replaces the catalogue and the calendar with checked reference
        /// data, unless the stored version is the same or newer.
        import_reference, import_reference_async, |data: ValidReference, at: UtcTime| -> () {
            op_reference::ImportReference { data, at }
        }
    );
    ask!(
        /// Replaces the units' names and places with a verified units
        /// message's, keeping the message.
        import_units, import_units_async,
        |version: u64, units: Vec<motcua_protocol::down::Unit>, message: Vec<u8>, at: UtcTime| -> () {
            op_downstream::ImportUnits { version, units, message, at }
        }
    );
    ask!(
        /// Keeps a verified DC settings message as the last one applied.
        keep_settings, keep_settings_async, |seq: u64, message: Vec<u8>, at: UtcTime| -> () {
            op_downstream::KeepDown { kind: "settings", number: seq, message, at }
        }
    );
    ask!(
        /// Goes through a verified DC status-updates message in one job:
        /// each allowed change a journal record under `staff`, each update's
        /// outcome recorded, then its seq kept. `adds_records`: whether
        /// some change is expected to be made (refused below the
        /// free-space floor only then).
        apply_dc_updates, apply_dc_updates_async,
        |seq: u64, message: Vec<u8>, updates: Vec<StatusUpdate>, staff: StaffId, at: UtcTime, adds_records: bool| -> UpdatesApplied {
            op_downstream::ApplyUpdates { seq, message, updates, staff, at, adds_records }
        }
    );
}
