//! The single writer: one thread owns the only writing connection and
//! commits callers' changes in groups.
//!
//! Callers (kiosk handlers, the CLI, the sync task) send jobs over a bounded
//! channel and wait for the answer. The thread takes the first waiting job,
//! then every job already queued (up to `max_batch`), applies them in one
//! `BEGIN IMMEDIATE` transaction, each inside its own savepoint so that one
//! refused job does not undo the others, commits (one `fsync` of the WAL,
//! see the durability contract in [`crate::store`]) and only then answers
//! each caller. If the commit fails, every job of the group is answered with
//! the error and the in-memory chain head is reloaded from the file.
//!
//! Each record-changing job signs its journal envelope inside the same
//! transaction as the dossier row, with the next seq and the previous hash,
//! so the journal and the dossiers can never disagree.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use ed25519_dalek::{SigningKey, VerifyingKey};
use motcua_protocol::{
    ChainHead, DeviceId, Hash32, KeyId, Receipt, RecordKind, StaffId, Submission, UnitCode,
    UtcTime, sign, verify,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::{mpsc, oneshot};

use super::reference::{self, format_day};
use super::{Step, StoreError, disk, schema};
use crate::clock::{Clock, Reading};
use crate::domain::VIETNAM;
use crate::domain::code::{Counter, DossierCode};
use crate::domain::dossier::{Dossier, DossierInput, validate};
use crate::domain::invalid::{Invalid, InvalidInput};
use crate::domain::status::Status;
use crate::domain::text::fold;

/// No record may be stamped before this: the software did not exist. A box
/// whose clock reads earlier lost its time in a power cut.
pub const CLOCK_FLOOR: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// How far behind the last record an unsynchronised clock may read before
/// it is considered wrong (a small backwards step is normal).
pub const CLOCK_SLACK: Duration = Duration::days(1);

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
    /// Largest group committed together.
    pub max_batch: usize,
}

/// A created dossier, as stored and signed.
#[derive(Debug, Clone)]
pub struct Created {
    /// The dossier.
    pub dossier: Dossier,
    /// Its journal seq.
    pub seq: u64,
}

/// A status change, as stored and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChanged {
    /// The dossier.
    pub code: String,
    /// Before.
    pub from: Status,
    /// After.
    pub to: Status,
    /// Its journal seq.
    pub seq: u64,
}

/// The effect of a DC receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Every seq up to this one is now synced.
    pub through: u64,
    /// How many envelopes this receipt marked synced.
    pub newly: u64,
}

/// The effect of pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Envelopes whose bytes were removed.
    pub envelopes: u64,
    /// Dossiers whose personal data was removed.
    pub dossiers: u64,
}

enum Job {
    Create {
        input: Box<DossierInput>,
        staff: StaffId,
        reply: oneshot::Sender<Result<Created, StoreError>>,
    },
    SetStatus {
        code: String,
        to: Status,
        staff: StaffId,
        note: Option<String>,
        reply: oneshot::Sender<Result<StatusChanged, StoreError>>,
    },
    MarkSynced {
        receipt: Vec<u8>,
        dc_key: VerifyingKey,
        reply: oneshot::Sender<Result<Synced, StoreError>>,
    },
    Prune {
        retention: Duration,
        reply: oneshot::Sender<Result<Pruned, StoreError>>,
    },
    /// Finish the jobs queued before this one, then stop.
    Shutdown,
}

/// The running writer. Dropping it (or [`Writer::shutdown`]) lets the
/// thread finish the queued jobs and close the database.
pub struct Writer {
    handle: WriterHandle,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

/// A cheap, cloneable way to send jobs to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

/// The chain head as the writer tracks it.
#[derive(Debug, Clone, Copy)]
struct Head {
    chain: ChainHead,
    last_at: Option<OffsetDateTime>,
}

struct State {
    conn: Connection,
    cfg: WriterConfig,
    head: Head,
    /// Tells the checkpointer that the WAL grew; dropped at the end.
    wal_grew: Option<std::sync::mpsc::SyncSender<()>>,
    /// Pruning ran in the last group: the WAL still holds the old pages.
    scrub_wal: bool,
}

/// How long the checkpointer lets a burst of commits run before copying the
/// WAL into the database (and so how large the WAL gets between resets).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies committed WAL frames into the database file from its own
/// connection, so no submission waits for a checkpoint: the writer's
/// connection has automatic checkpoints turned off. PASSIVE checkpoints
/// never block the writer or readers. Stops when the writer drops its end.
fn checkpointer(conn: Connection, wal_grew: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    while wal_grew.recv().is_ok() {
        // Let a burst of commits finish, then copy them in one go; leave at
        // once if the writer stops meanwhile (it checkpoints on its way out).
        let deadline = std::time::Instant::now() + CHECKPOINT_EVERY;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match wal_grew.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}

impl Writer {
    /// Opens (creating if needed) the database, checks it belongs to this
    /// device, records the signing key, and starts the writer thread.
    pub fn start(cfg: WriterConfig) -> Result<Writer, StoreError> {
        let conn = schema::open(&cfg.db)?;
        bind_device(&conn, &cfg.device, &cfg.clock.now())?;
        let head = load_head(&conn)?;
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
            .spawn(move || checkpointer(ckpt_conn, grew_rx))
            .map_err(|source| StoreError::Io {
                path: "checkpoint thread".into(),
                source,
            })?;
        let (tx, rx) = mpsc::channel(1024);
        let mut state = State {
            conn,
            cfg,
            head,
            wal_grew: Some(grew_tx),
            scrub_wal: false,
        };
        let thread = std::thread::Builder::new()
            .name("motcua-store-writer".into())
            .spawn(move || state.run(rx))
            .map_err(|source| StoreError::Io {
                path: "writer thread".into(),
                source,
            })?;
        Ok(Writer {
            handle: WriterHandle { tx },
            thread: Some(thread),
            checkpointer: Some(checkpointer),
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
            let _ = self.handle.tx.blocking_send(Job::Shutdown);
            let _ = t.join();
        }
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Inside async code blocking would panic: ask the thread to
            // stop and let it finish on its own.
            if let Some(t) = self.thread.take() {
                let _ = self.handle.tx.try_send(Job::Shutdown);
                drop(t);
            }
            return;
        }
        self.join();
    }
}

macro_rules! ask {
    ($name:ident, $name_async:ident, $out:ty, |$($arg:ident : $ty:ty),*| $job:expr) => {
        /// Sends the job and waits for its durable answer (blocking; not
        /// from inside an async runtime: use the `_async` form there).
        pub fn $name(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
            let (reply, rx) = oneshot::channel();
            self.tx.blocking_send($job(reply)).map_err(|_| StoreError::WriterGone)?;
            rx.blocking_recv().map_err(|_| StoreError::WriterGone)?
        }

        /// Sends the job and awaits its durable answer.
        pub async fn $name_async(&self, $($arg: $ty),*) -> Result<$out, StoreError> {
            let (reply, rx) = oneshot::channel();
            self.tx.send($job(reply)).await.map_err(|_| StoreError::WriterGone)?;
            rx.await.map_err(|_| StoreError::WriterGone)?
        }
    };
}

impl WriterHandle {
    ask!(
        create,
        create_async,
        Created,
        |input: DossierInput, staff: StaffId| {
            |reply| Job::Create {
                input: Box::new(input),
                staff,
                reply,
            }
        }
    );
    ask!(
        set_status,
        set_status_async,
        StatusChanged,
        |code: &str, to: Status, staff: StaffId, note: Option<String>| {
            |reply| Job::SetStatus {
                code: code.to_owned(),
                to,
                staff,
                note,
                reply,
            }
        }
    );
    ask!(
        mark_synced,
        mark_synced_async,
        Synced,
        |receipt: Vec<u8>, dc_key: VerifyingKey| {
            |reply| Job::MarkSynced {
                receipt,
                dc_key,
                reply,
            }
        }
    );
    ask!(prune, prune_async, Pruned, |retention: Duration| {
        |reply| Job::Prune { retention, reply }
    });
}

fn bind_device(conn: &Connection, device: &DeviceId, now: &Reading) -> Result<(), StoreError> {
    let found: Option<String> = conn
        .query_row("SELECT device_id FROM device WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .step("reading the device")?;
    match found {
        Some(found) if found != device.as_str() => Err(StoreError::WrongDevice {
            expected: device.to_string(),
            found,
        }),
        Some(_) => Ok(()),
        None => {
            conn.execute(
                "INSERT INTO device (id, device_id, created_at) VALUES (1, ?, ?)",
                params![device.as_str(), UtcTime::new(now.at).to_string()],
            )
            .step("recording the device")?;
            Ok(())
        }
    }
}

fn load_head(conn: &Connection) -> Result<Head, StoreError> {
    let row: Option<(i64, Vec<u8>, String)> = conn
        .query_row(
            "SELECT seq, hash, at FROM journal ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .step("reading the chain head")?;
    Ok(match row {
        None => Head {
            chain: ChainHead::EMPTY,
            last_at: None,
        },
        Some((seq, hash, at)) => Head {
            chain: ChainHead {
                seq: seq as u64,
                hash: hash32(&hash),
            },
            last_at: UtcTime::parse(&at).ok().map(|t| t.get()),
        },
    })
}

pub(crate) fn hash32(bytes: &[u8]) -> Hash32 {
    let mut h = [0u8; 32];
    if bytes.len() == 32 {
        h.copy_from_slice(bytes);
    }
    Hash32(h)
}

/// A job's answer, held until the group's commit. Short-lived (one per job
/// of a group), so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Create(
        oneshot::Sender<Result<Created, StoreError>>,
        Result<Created, StoreError>,
    ),
    Status(
        oneshot::Sender<Result<StatusChanged, StoreError>>,
        Result<StatusChanged, StoreError>,
    ),
    Synced(
        oneshot::Sender<Result<Synced, StoreError>>,
        Result<Synced, StoreError>,
    ),
    Pruned(
        oneshot::Sender<Result<Pruned, StoreError>>,
        Result<Pruned, StoreError>,
    ),
}

impl Answer {
    fn is_ok(&self) -> bool {
        match self {
            Answer::Create(_, r) => r.is_ok(),
            Answer::Status(_, r) => r.is_ok(),
            Answer::Synced(_, r) => r.is_ok(),
            Answer::Pruned(_, r) => r.is_ok(),
        }
    }

    /// Replaces a success with `err` (the commit failed).
    fn fail(self, err: impl Fn() -> StoreError) -> Answer {
        match self {
            Answer::Create(tx, Ok(_)) => Answer::Create(tx, Err(err())),
            Answer::Status(tx, Ok(_)) => Answer::Status(tx, Err(err())),
            Answer::Synced(tx, Ok(_)) => Answer::Synced(tx, Err(err())),
            Answer::Pruned(tx, Ok(_)) => Answer::Pruned(tx, Err(err())),
            failed => failed,
        }
    }

    fn send(self) {
        // A caller that stopped waiting is not an error.
        let _ = match self {
            Answer::Create(tx, r) => tx.send(r).map_err(drop),
            Answer::Status(tx, r) => tx.send(r).map_err(drop),
            Answer::Synced(tx, r) => tx.send(r).map_err(drop),
            Answer::Pruned(tx, r) => tx.send(r).map_err(drop),
        };
    }
}

impl State {
    fn run(&mut self, mut rx: mpsc::Receiver<Job>) {
        let mut stopping = false;
        while !stopping {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < self.cfg.max_batch.max(1) {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if let Some(i) = batch.iter().position(|j| matches!(j, Job::Shutdown)) {
                stopping = true;
                for late in batch.drain(i..) {
                    answer_err(late, StoreError::WriterGone);
                }
            }
            if !batch.is_empty() {
                self.commit_group(batch);
            }
        }
        // Refuse whatever is still queued; handles see WriterGone from now on.
        rx.close();
        while let Ok(late) = rx.try_recv() {
            answer_err(late, StoreError::WriterGone);
        }
        // Stop the checkpointer, then fold the WAL into the database.
        self.wal_grew = None;
        // Without waiting: if readers (the kiosk, another process) are in
        // the WAL, it stays as it is, which is harmless.
        let _ = self.conn.busy_timeout(std::time::Duration::ZERO);
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_group(&mut self, batch: Vec<Job>) {
        let adds_data = batch
            .iter()
            .any(|j| matches!(j, Job::Create { .. } | Job::SetStatus { .. }));
        let space = if adds_data {
            self.space_check()
        } else {
            Ok(())
        };
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(source) => {
                let e = || StoreError::Sqlite {
                    step: "starting a transaction",
                    source: clone_err(&source),
                };
                for job in batch {
                    answer_err(job, e());
                }
                return;
            }
        };
        // Another process (the CLI beside the running agent) may have
        // appended since our last group: the head is read again under the
        // write lock, so two writers can never sign the same seq.
        match load_head(&tx) {
            Ok(h) => self.head = h,
            Err(e) => {
                let msg = e.to_string();
                for job in batch {
                    answer_err(job, StoreError::Internal(msg.clone()));
                }
                return;
            }
        }
        let before = self.head;
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let mut jobs = batch.into_iter();
        while let Some(job) = jobs.next() {
            // SQLite rolls the whole transaction back by itself on some
            // errors (disk full, I/O error, out of memory). A savepoint
            // opened now would start a fresh transaction and commit on its
            // own, after a hole in the chain: the whole group fails instead.
            if tx.is_autocommit() {
                let gone = || {
                    StoreError::Internal(
                        "the transaction was rolled back by an earlier error in its group".into(),
                    )
                };
                tracing::error!(
                    "a storage error rolled back the whole group; none of its records were stored"
                );
                for a in answers {
                    a.fail(gone).send();
                }
                answer_err(job, gone());
                for late in jobs {
                    answer_err(late, gone());
                }
                drop(tx);
                self.head = load_head(&self.conn).unwrap_or(before);
                return;
            }
            let mut sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(source) => {
                    answer_err(
                        job,
                        StoreError::Sqlite {
                            step: "opening a savepoint",
                            source,
                        },
                    );
                    continue;
                }
            };
            let saved = self.head;
            let answer = match job {
                Job::Create {
                    input,
                    staff,
                    reply,
                } => {
                    let r = match &space {
                        Err(e) => Err(e.clone_refusal()),
                        Ok(()) => create(&sp, &self.cfg, &mut self.head, &input, staff),
                    };
                    Answer::Create(reply, r)
                }
                Job::SetStatus {
                    code,
                    to,
                    staff,
                    note,
                    reply,
                } => {
                    let r = match &space {
                        Err(e) => Err(e.clone_refusal()),
                        Ok(()) => {
                            set_status(&sp, &self.cfg, &mut self.head, &code, to, staff, note)
                        }
                    };
                    Answer::Status(reply, r)
                }
                Job::MarkSynced {
                    receipt,
                    dc_key,
                    reply,
                } => Answer::Synced(
                    reply,
                    mark_synced(&sp, &self.cfg, &self.head, &receipt, &dc_key),
                ),
                // Never in a group: run() takes it out.
                Job::Shutdown => continue,
                Job::Prune { retention, reply } => {
                    let r = prune(&sp, &self.cfg, &self.head, retention);
                    if r.as_ref().is_ok_and(|p| p.envelopes + p.dossiers > 0) {
                        self.scrub_wal = true;
                    }
                    Answer::Pruned(reply, r)
                }
            };
            if answer.is_ok() {
                if let Err(source) = sp.commit() {
                    self.head = saved;
                    answers.push(answer.fail(|| StoreError::Sqlite {
                        step: "releasing a savepoint",
                        source: clone_err(&source),
                    }));
                    continue;
                }
            } else {
                self.head = saved;
                sp.rollback().ok();
                drop(sp);
            }
            answers.push(answer);
        }
        if tx.is_autocommit() {
            // The last job's error rolled everything back: nothing of the
            // group is stored, whatever the earlier answers said.
            for a in answers {
                a.fail(|| {
                    StoreError::Internal(
                        "the transaction was rolled back by an error in its group".into(),
                    )
                })
                .send();
            }
            drop(tx);
            self.head = load_head(&self.conn).unwrap_or(before);
            return;
        }
        match tx.commit() {
            Ok(()) => {
                for a in answers {
                    a.send();
                }
                if let Some(g) = &self.wal_grew {
                    // Full means a checkpoint is already due: fine.
                    let _ = g.try_send(());
                }
                if std::mem::take(&mut self.scrub_wal) {
                    // Copy the pruned pages into the database (where secure
                    // delete zeroed the old values) and empty the WAL, which
                    // still holds them, unless a reader is in it right now.
                    let _ = self
                        .conn
                        .busy_timeout(std::time::Duration::from_millis(200));
                    let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                    let _ = self.conn.busy_timeout(std::time::Duration::from_secs(10));
                }
            }
            Err(source) => {
                tracing::error!(error = %source, "commit failed; the group's records were not stored");
                for a in answers {
                    a.fail(|| StoreError::Sqlite {
                        step: "committing",
                        source: clone_err(&source),
                    })
                    .send();
                }
                self.head = load_head(&self.conn).unwrap_or(before);
            }
        }
    }

    fn space_check(&self) -> Result<(), StoreError> {
        let dir = self.cfg.db.parent().unwrap_or(std::path::Path::new("."));
        match disk::free_bytes(dir) {
            Ok(free) if free < self.cfg.min_free => {
                tracing::warn!(
                    free,
                    floor = self.cfg.min_free,
                    "free space below the floor: refusing new records"
                );
                Err(StoreError::DiskFull {
                    path: dir.to_owned(),
                    free,
                    floor: self.cfg.min_free,
                })
            }
            Ok(_) => Ok(()),
            // statvfs failing is not a reason to refuse: SQLite will say if
            // the disk is really full.
            Err(_) => Ok(()),
        }
    }
}

impl StoreError {
    /// A copy of a refusal that applies to every job of a group.
    fn clone_refusal(&self) -> StoreError {
        match self {
            StoreError::DiskFull { path, free, floor } => StoreError::DiskFull {
                path: path.clone(),
                free: *free,
                floor: *floor,
            },
            other => StoreError::Internal(other.to_string()),
        }
    }
}

fn clone_err(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::InvalidParameterName(other.to_string()),
    }
}

fn answer_err(job: Job, e: StoreError) {
    match job {
        Job::Create { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::SetStatus { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::MarkSynced { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Prune { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Shutdown => {}
    }
}

fn check_clock(now: &Reading, head: &Head) -> Result<(), StoreError> {
    let floor = match head.last_at {
        Some(last) if !now.synced => (last - CLOCK_SLACK).max(CLOCK_FLOOR),
        _ => CLOCK_FLOOR,
    };
    if now.at < floor {
        return Err(StoreError::ClockWrong {
            now: UtcTime::new(now.at).to_string(),
            floor: UtcTime::new(floor).to_string(),
        });
    }
    Ok(())
}

/// What one journal record says.
struct Record<'a> {
    staff: StaffId,
    kind: &'static str,
    code: &'a str,
    body: serde_json::Value,
}

/// Signs the next envelope of the chain and appends it to the journal.
fn append(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &mut Head,
    now: &Reading,
    rec: Record<'_>,
) -> Result<u64, StoreError> {
    let Record {
        staff,
        kind,
        code,
        body,
    } = rec;
    let (seq, prev) = motcua_protocol::chain::next_after(&head.chain);
    let at = UtcTime::new(now.at);
    let msg = Submission {
        v: motcua_protocol::FORMAT_VERSION,
        device: cfg.device.clone(),
        seq,
        prev,
        at,
        clock: now.synced,
        staff,
        kind: kind
            .parse::<RecordKind>()
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        body,
    };
    let bytes = sign(&msg, &cfg.key)?;
    let hash = Hash32::of(&bytes);
    conn.prepare_cached(
        "INSERT INTO journal (seq, hash, prev, kind, dossier_code, at, envelope, synced) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
    )
    .and_then(|mut s| s.execute(params![seq as i64, hash.0.to_vec(), prev.0.to_vec(), kind, code, at.to_string(), bytes]))
    .step("appending to the journal")?;
    head.chain = ChainHead { seq, hash };
    head.last_at = Some(now.at);
    Ok(seq)
}

fn create(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &mut Head,
    input: &DossierInput,
    staff: StaffId,
) -> Result<Created, StoreError> {
    let now = cfg.clock.now();
    let local = now.at.to_offset(VIETNAM);
    // The clock first: validation itself depends on the year (birth years).
    check_clock(&now, head)?;
    let mut lookup_err = None;
    let valid = validate(
        input,
        |code| {
            reference::procedure(conn, code)
                .map_err(|e| lookup_err = Some(e))
                .ok()
                .flatten()
        },
        local.year(),
    );
    if let Some(e) = lookup_err {
        return Err(e);
    }
    let valid = valid?;

    let day = local.date();
    let day_text = format_day(day);
    let last: Option<i64> = conn
        .prepare_cached("SELECT last FROM code_blocks WHERE unit = ? AND counter = ? AND day = ?")
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
        .ok_or_else(|| StoreError::CodesExhausted {
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
    let appointment =
        crate::domain::dossier::appointment(&calendar, local, valid.procedure.working_days)?;
    let dossier = Dossier {
        code: code.clone(),
        unit: cfg.unit.clone(),
        procedure: valid.procedure.code.clone(),
        procedure_name: valid.procedure.name.clone(),
        applicant: valid.applicant,
        documents: valid.documents,
        sets: valid.sets,
        received_at: UtcTime::new(now.at),
        clock_synced: now.synced,
        working_days: valid.procedure.working_days,
        appointment_at: UtcTime::new(appointment),
        collect_at: valid
            .collect_at
            .unwrap_or_else(|| cfg.default_collect_at.clone()),
        staff: staff.clone(),
        status: Status::ACCEPTED,
        note: valid.note,
    };
    let body = serde_json::to_value(&dossier).map_err(|e| StoreError::Internal(e.to_string()))?;
    let seq = append(
        conn,
        cfg,
        head,
        &now,
        Record {
            staff,
            kind: "dossier.created",
            code: &code,
            body,
        },
    )?;
    let data = serde_json::to_string(&dossier).map_err(|e| StoreError::Internal(e.to_string()))?;
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
    Ok(Created { dossier, seq })
}

fn set_status(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &mut Head,
    code: &str,
    to: Status,
    staff: StaffId,
    note: Option<String>,
) -> Result<StatusChanged, StoreError> {
    let from: u8 = conn
        .prepare_cached("SELECT status FROM dossiers WHERE code = ?")
        .and_then(|mut s| s.query_row([code], |r| r.get(0)).optional())
        .step("reading the dossier's status")?
        .ok_or_else(|| StoreError::NotFound(code.to_owned()))?;
    let from = Status::try_from(from).map_err(|e| StoreError::Internal(e.to_string()))?;
    from.check_move(to)?;
    let note = crate::domain::dossier::status_note(note.as_deref())?;
    let now = cfg.clock.now();
    check_clock(&now, head)?;
    let body = json!({"code": code, "from": from.get(), "to": to.get(), "note": note});
    let seq = append(
        conn,
        cfg,
        head,
        &now,
        Record {
            staff,
            kind: "dossier.status",
            code,
            body,
        },
    )?;
    conn.prepare_cached(
        "UPDATE dossiers SET status = ?, updated_seq = ?, updated_at = ? WHERE code = ?",
    )
    .and_then(|mut s| {
        s.execute(params![
            to.get(),
            seq as i64,
            UtcTime::new(now.at).to_string(),
            code
        ])
    })
    .step("updating the dossier's status")?;
    tracing::info!(code = %code, seq, from = from.get(), to = to.get(), "dossier status changed");
    Ok(StatusChanged {
        code: code.to_owned(),
        from,
        to,
        seq,
    })
}

fn mark_synced(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &Head,
    bytes: &[u8],
    dc_key: &VerifyingKey,
) -> Result<Synced, StoreError> {
    let v = verify::<Receipt>(bytes, dc_key).map_err(|e| StoreError::Receipt(e.to_string()))?;
    let r = v.message;
    if r.device != cfg.device {
        return Err(StoreError::Receipt(format!(
            "it is for device {}, not {}",
            r.device, cfg.device
        )));
    }
    if r.seq > head.chain.seq {
        return Err(StoreError::Receipt(format!(
            "it acknowledges seq {}, beyond this counter's last seq {}",
            r.seq, head.chain.seq
        )));
    }
    // Kept as proof, and as the time of the DC's last word (a repeated
    // receipt for the same seq refreshes it).
    conn.execute(
        "INSERT INTO receipts (seq, receipt, stored_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (seq) DO UPDATE SET receipt = ?2, stored_at = ?3",
        params![
            r.seq as i64,
            bytes,
            UtcTime::new(cfg.clock.now().at).to_string()
        ],
    )
    .step("keeping the receipt")?;
    if r.seq == 0 {
        return Ok(Synced {
            through: 0,
            newly: 0,
        });
    }
    let ours: Vec<u8> = conn
        .query_row(
            "SELECT hash FROM journal WHERE seq = ?",
            [r.seq as i64],
            |row| row.get(0),
        )
        .step("reading the acknowledged envelope")?;
    let ours = hash32(&ours);
    if ours != r.hash {
        return Err(StoreError::Fork {
            seq: r.seq,
            theirs: r.hash,
            ours,
        });
    }
    let newly = conn
        .execute(
            "UPDATE journal SET synced = 1 WHERE seq <= ? AND synced = 0",
            [r.seq as i64],
        )
        .step("marking envelopes synced")?;
    if newly > 0 {
        tracing::info!(
            through = r.seq,
            newly,
            "records acknowledged by the data centre"
        );
    }
    Ok(Synced {
        through: r.seq,
        newly: newly as u64,
    })
}

fn prune(
    conn: &Connection,
    cfg: &WriterConfig,
    head: &Head,
    retention: Duration,
) -> Result<Pruned, StoreError> {
    // Pruning compares times: a clock known to be wrong refuses it too.
    let reading = cfg.clock.now();
    check_clock(&reading, head)?;
    let now = reading.at;
    let cutoff = UtcTime::new(now - retention).to_string();
    let stamp = UtcTime::new(now).to_string();
    // A dossier's personal data goes when it is finished, its last change
    // is older than the cutoff, and the DC has every record of it.
    let dossiers = conn
        .execute(
            "UPDATE dossiers SET data = NULL, name_folded = NULL, id_number = NULL, pruned_at = ?2
             WHERE pruned_at IS NULL AND updated_at < ?1 AND status IN (3, 7, 8, 10)
               AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.dossier_code = dossiers.code AND j.synced = 0)",
            params![cutoff, stamp],
        )
        .step("pruning dossiers")?;
    // Envelopes go when synced and old, whatever their dossier: the DC holds
    // them and the receipt proves it. Unsynced envelopes are never touched.
    let envelopes = conn
        .execute(
            "UPDATE journal SET envelope = NULL WHERE synced = 1 AND envelope IS NOT NULL AND at < ?",
            [cutoff],
        )
        .step("pruning envelopes")?;
    if envelopes + dossiers > 0 {
        tracing::info!(envelopes, dossiers, "pruned old synced records");
    }
    Ok(Pruned {
        envelopes: envelopes as u64,
        dossiers: dossiers as u64,
    })
}
