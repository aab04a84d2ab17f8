//! The counter's durable record store: one SQLite file, `motcua.db`, in the
//! state directory.
//!
//! # Durability contract
//! When [`Writer`] answers a submission with `Ok`, the dossier row and its
//! signed journal envelope are in the database file's write-ahead log and
//! the log has been `fsync`ed: the record survives a killed process and a
//! power cut. The connection runs with `journal_mode=WAL` and
//! `synchronous=FULL`, so *every* commit syncs the log before returning;
//! answers are sent only after the commit returns. Nothing is acknowledged
//! from memory. Group commit (several callers' records in one transaction)
//! keeps that promise while sharing one `fsync`. If SQLite rolls a group's
//! transaction back by itself (disk full, I/O error), every job of the group
//! is answered with an error: none is reported stored. Checkpoints (copying
//! the WAL into the database) run on a separate connection and thread, off
//! every submission's path.
//!
//! Pruned personal data does not linger: `secure_delete` zeroes freed
//! space, and after pruning the WAL, which still holds the old pages, is
//! checkpointed and truncated.
//!
//! A record reaches the DC exactly once because the journal, not MQTT, is
//! the source of truth: envelopes carry consecutive seqs in one hash chain,
//! the DC recognises duplicates by seq and hash, and a record is marked
//! synced only by a verified DC receipt, kept as proof.
//!
//! # One writer
//! Once the store is open, only [`writer`] writes it: every change is an
//! operation (`writer::op_*`) run as a job on the writer's connection,
//! inside its group's transaction: dossiers and the journal, receipts,
//! pruning, the reference data ([`reference::import`] checks the data,
//! then asks the writer), and the `downstream` and `dc_updates`
//! bookkeeping of what the DC sent (`crate::downstream` verifies, then
//! asks the writer). Every other connection only reads: [`Reader`]'s and
//! `Downstream`'s are `query_only`, the checkpointer's only copies the WAL
//! into the file. The
//! exceptions are [`schema::open`], which creates and migrates the file,
//! and [`Writer::start`], which binds the device and records its signing
//! key, both before the writer takes jobs.
//!
//! # Refusals
//! - Below `min_free` free bytes on the state directory's file system, new
//!   records are refused ([`Refusal::DiskFull`]); reads, receipts and
//!   pruning go on. A disk that fills anyway makes SQLite fail the commit,
//!   which rolls back whole: nothing stored is harmed.
//! - At start-up, `PRAGMA quick_check` must say `ok`; a damaged file is
//!   refused ([`StoreError::Damaged`]) with the way to recover, never
//!   silently replaced by an empty store.
//!
//! # Tables (schema version 4, `PRAGMA user_version`)
//! ```text
//! device      (id=1, device_id, created_at)           whose journal this is
//! keys        (kid PK, public_key, first_seq)         every key that signed here
//! journal     (seq PK, hash, prev, kind, dossier_code, at, envelope, synced)
//!             envelope: complete COSE bytes, NULL once pruned (seq and hash
//!             stay, so the chain head and links survive pruning)
//! receipts    (seq PK, receipt, stored_at)            verified DC receipts
//! dossiers    (code PK, received_at, received_day, appointment_at,
//!              procedure, status, staff, name_folded, id_number, data,
//!              created_seq → journal, updated_seq → journal, updated_at,
//!              pruned_at, rescheduled_at)
//!             data: the dossier JSON as signed at creation (personal
//!             data), NULL once pruned; status is the current one;
//!             rescheduled_at: the new appointment of the last apology
//!             (form 04, version 4), appointment_at staying the legal one
//! code_blocks (unit, counter, day, last)              daily code sequence
//! procedures  (code PK, name, name_folded, working_days, fee, documents)
//! calendar    (day PK, kind 'holiday'|'workday', name)
//! reference   (id=1, version, imported_at)            catalogue version
//! downstream  (kind PK 'status'|'settings', number, message, applied_at)
//!             the last signed message of each kind applied (version 2)
//! dc_updates  (id PK, code, status, outcome, seq, at)  each DC status update
//!             and what became of it: applied (seq → journal), already,
//!             conflict, unknown (version 2)
//! intents     (key PK, kind, fingerprint, code, seq → journal, result, at)
//!             each idempotency key, the code and seq it made, a status
//!             move's from/to in result, and a fingerprint of the request
//!             keyed with the device key; no personal data (version 3,
//!             emptied by version 4); pruned with the retention
//! units       (code PK, name, place)                  the DC's unit list (version 3;
//!             its message kept in downstream as kind 'units')
//! ```
//!
//! # Layout
//! - [`schema`]: opening, pragmas, integrity check, migrations.
//! - [`writer`]: the single writer thread: the group-commit engine
//!   ([`writer::engine`]), the checkpointer, and one file per operation.
//! - [`read`]: queries for the CLI, the kiosk and the sync layer.
//! - [`reference`]: the procedure catalogue and calendar cache.
//! - [`disk`]: free space of the state directory.

pub mod disk;
pub mod read;
pub mod reference;
pub mod schema;
pub mod writer;

use std::path::PathBuf;

use motcua_protocol::Hash32;

pub use read::Reader;
pub use writer::{Answer, Writer, WriterConfig};

use crate::domain::invalid::{Invalid, InvalidInput};

/// The database file's name inside the state directory.
pub const DB_FILE: &str = "motcua.db";

/// Why the writer refused a job: the clerk's input or the counter's
/// policy said no (bad input, a move the status table forbids, no space,
/// a wrong clock, no codes left, no such dossier, a receipt that does not
/// match). Nothing was stored; the store itself is fine. The clerk-facing
/// ones carry a Vietnamese message through [`Refusal::for_clerk`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// The input is not acceptable; nothing was stored.
    #[error("{0}")]
    Invalid(#[from] InvalidInput),
    /// Free space is below the floor; nothing was stored.
    #[error(
        "free space on {path} is {free} bytes, below the floor of {floor} bytes: new records are refused until space is freed"
    )]
    DiskFull {
        /// The state directory.
        path: PathBuf,
        /// Free bytes.
        free: u64,
        /// The configured floor.
        floor: u64,
    },
    /// The clock reads a time before the last record or before the
    /// software was built: codes and times would be wrong.
    #[error(
        "the system clock reads {now}, before {floor}: it is wrong (a box without a real-time clock after a power cut?); \
         new records are refused until it is set"
    )]
    ClockWrong {
        /// What the clock reads.
        now: String,
        /// The earliest acceptable time.
        floor: String,
    },
    /// This counter has handed out every code of its block for the day.
    #[error("counter {counter} has used all its dossier codes for {day}")]
    CodesExhausted {
        /// The counter number.
        counter: u8,
        /// The day.
        day: String,
    },
    /// No dossier has this code.
    #[error("no dossier {0}")]
    NotFound(String),
    /// A DC receipt did not verify or does not match the journal.
    #[error("DC receipt refused: {0}")]
    Receipt(String),
    /// A DC receipt acknowledges a different envelope at its seq than the
    /// one this counter stored: the histories have forked.
    #[error(
        "DC receipt for seq {seq} names hash {theirs}, but this counter's envelope {seq} hashes to {ours}: the histories forked"
    )]
    Fork {
        /// The seq.
        seq: u64,
        /// The hash in the receipt.
        theirs: Hash32,
        /// The stored hash.
        ours: Hash32,
    },
    /// Reference data (catalogue and calendar) whose version is not newer
    /// than the one stored: an older or equal version never replaces it.
    #[error("reference data version {offered} refused: the store already has version {current}")]
    ReferenceNotNewer {
        /// The version offered.
        offered: u64,
        /// The version stored.
        current: u64,
    },
}

impl Refusal {
    /// The refusal as a clerk sees it: Vietnamese messages with stable
    /// codes. Refusals no clerk can act on (receipts) read like a failure.
    pub fn for_clerk(&self) -> InvalidInput {
        match self {
            Refusal::Invalid(i) => i.clone(),
            Refusal::DiskFull { .. } => one(
                "disk_full",
                "Bộ nhớ của máy gần đầy nên chưa thể nhận hồ sơ mới. Các hồ sơ đã lưu vẫn an toàn. Vui lòng báo kỹ thuật viên.",
            ),
            Refusal::ClockWrong { .. } => one(
                "clock_wrong",
                "Đồng hồ của máy đang sai nên chưa thể nhận hồ sơ mới. Vui lòng kiểm tra kết nối mạng để máy tự chỉnh giờ, hoặc báo kỹ thuật viên.",
            ),
            Refusal::CodesExhausted { .. } => one(
                "codes_exhausted",
                "Quầy này đã dùng hết số hồ sơ trong ngày. Vui lòng tiếp nhận ở quầy khác hoặc báo kỹ thuật viên.",
            ),
            Refusal::NotFound(_) => one("not_found", "Không tìm thấy hồ sơ có mã này."),
            Refusal::Receipt(_) | Refusal::Fork { .. } | Refusal::ReferenceNotNewer { .. } => {
                internal()
            }
        }
    }
}

/// One form-level line for the clerk.
fn one(code: &'static str, msg: &str) -> InvalidInput {
    InvalidInput(vec![Invalid::new("(form)", code, msg)])
}

/// The clerk's line for anything technical.
fn internal() -> InvalidInput {
    one(
        "internal",
        "Máy gặp lỗi khi lưu hồ sơ. Hồ sơ chưa được lưu. Vui lòng báo kỹ thuật viên.",
    )
}

/// Why a store operation failed: the store could not do its work (SQLite,
/// a damaged or foreign file, a stopped writer). A [`Refusal`] is not a
/// failure: the writer's jobs answer `Ok(Err(refusal))` for those.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file failed its integrity check.
    #[error(
        "the database {path} is damaged ({detail}). The agent will not run on it. To recover: stop the agent, move the \
         file and its -wal and -shm files aside (keep them: the records not yet at the data centre are in them), and \
         restore the latest backup, then run 'motcua journal verify'. Do not start an empty store under the same \
         device id and counter: its chain would restart at seq 1, which the data centre refuses as a fork, and it \
         would hand out again dossier codes already given today; provision the box as a new device with another \
         counter number instead"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the check reported.
        detail: String,
    },
    /// The database was written by a newer version of motcua.
    #[error(
        "the database {path} has schema version {found}, newer than this motcua ({supported}): upgrade motcua"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The database belongs to another device.
    #[error(
        "the database belongs to device {found}, not {expected}: wrong state directory or configuration"
    )]
    WrongDevice {
        /// The device id the configuration names.
        expected: String,
        /// The device id stored in the database.
        found: String,
    },
    /// Creating the state directory or the database file failed.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// SQLite failed at the named step.
    #[error("database error while {step}: {source}")]
    Sqlite {
        /// What was being done.
        step: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Signing failed (a record over the size limit).
    #[error("cannot sign the record: {0}")]
    Sign(#[from] motcua_protocol::SignError),
    /// A stored value does not read back as its column's type (a damaged
    /// or hand-edited file): refused, never shown as it is. Only columns
    /// without personal data (codes, times, statuses, ids) are parsed so.
    #[error("the database holds a bad value in {column}: {detail}")]
    BadValue {
        /// The table and column, e.g. `dossiers.updated_at`.
        column: &'static str,
        /// What is wrong, quoting the value.
        detail: String,
    },
    /// A value in the database or a serialisation broke an invariant the
    /// code relies on (a bug or a hand-edited file).
    #[error("internal error: {0}")]
    Internal(String),
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    WriterGone,
}

impl StoreError {
    /// The failure as a clerk sees it: one "contact the technician" line
    /// (the cause goes to the log).
    pub fn for_clerk(&self) -> InvalidInput {
        internal()
    }
}

/// Attaches the step name to a SQLite error.
pub(crate) trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, StoreError>;
}

impl<T> Step<T> for Result<T, rusqlite::Error> {
    fn step(self, step: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { step, source })
    }
}
