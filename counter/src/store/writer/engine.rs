//! The group-commit engine: takes the first waiting job and every job
//! already queued (up to `max_batch`), runs them in one `BEGIN IMMEDIATE`
//! transaction, each inside its own savepoint so that one refused or failed
//! job does not undo the others, commits (one `fsync` of the WAL) and only
//! then answers each caller. If SQLite rolls the group's transaction back
//! by itself, or the commit fails, no job of the group is answered as
//! stored, and the chain head is reloaded from the file.
//!
//! The engine knows no job kind: each is an [`Operation`] (one file per
//! kind beside this one), queued as a [`Job`], one box carrying the
//! operation, then its answer, and the caller's reply channel.

use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::WriterConfig;
use super::chain::{Head, load_head};
use crate::domain::invalid::InvalidInput;
use crate::store::{Refusal, StoreError, disk};

/// A job's answer: the store failed, or the operation's own answer (done,
/// or refused with nothing stored).
pub type Answer<T> = Result<Result<T, Refusal>, StoreError>;

/// Why an operation stopped: refused (its input or the counter's policy)
/// or failed (the store). Lets an operation use `?` on both kinds.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Refused: nothing stored, the store is fine.
    Refused(Refusal),
    /// The store failed.
    Failed(StoreError),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl From<InvalidInput> for Stop {
    fn from(i: InvalidInput) -> Stop {
        Stop::Refused(Refusal::Invalid(i))
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Failed(e)
    }
}

/// What an operation sees while it runs, inside the group's transaction
/// and its own savepoint.
pub(crate) struct Ctx<'a> {
    /// The writing connection.
    pub conn: &'a Connection,
    /// The writer's configuration (device, key, clock...).
    pub cfg: &'a WriterConfig,
    /// The chain head; the engine puts it back if the job does not succeed.
    pub head: &'a mut Head,
    /// Set when the job removed personal data: after the commit the WAL,
    /// which still holds the old pages, is checkpointed and truncated.
    pub scrub_wal: &'a mut bool,
}

/// One kind of writer job. Adding a kind is a new file implementing this
/// and one [`super::WriterHandle`] method; the engine does not change.
pub(crate) trait Operation: Send + 'static {
    /// What the caller gets when it succeeds.
    type Output: Send + 'static;

    /// Whether the job adds records: such jobs are refused below the
    /// free-space floor (reads, receipts and pruning go on).
    fn adds_data(&self) -> bool;

    /// The answer to an earlier request with the same idempotency key,
    /// when this one repeats it. The engine asks before [`apply`], and
    /// before the free-space floor: a repeat adds nothing, so a clerk's
    /// second click on a full disk still gets the dossier the first one
    /// stored, not "disk full".
    ///
    /// [`apply`]: Operation::apply
    fn repeat(&self, _cx: &Ctx<'_>) -> Result<Option<Self::Output>, Stop> {
        Ok(None)
    }

    /// Does the work (never for a repeat). On `Err` the engine rolls the
    /// job's savepoint back and restores the chain head.
    fn apply(self, cx: &mut Ctx<'_>) -> Result<Self::Output, Stop>;
}

/// A queued job, type-erased: the engine runs, fails and answers it
/// without knowing its kind.
pub(crate) type Job = Box<dyn Task>;

/// What the engine does with a job.
pub(crate) trait Task: Send {
    /// See [`Operation::adds_data`].
    fn adds_data(&self) -> bool;
    /// Runs the operation and keeps its answer; whether it succeeded.
    /// `floor` is the refusal for jobs that add data when free space is
    /// below the floor: such a job is answered with it unless it repeats
    /// an earlier request.
    fn apply(&mut self, cx: &mut Ctx<'_>, floor: Option<&Refusal>) -> bool;
    /// Replaces a success with a failure (its group was not stored).
    fn fail(&mut self, e: &dyn Fn() -> StoreError);
    /// Sends the answer kept (the caller may have stopped waiting).
    fn send(self: Box<Self>);
    /// Answers with a failure at once, without running the operation.
    fn fail_with(self: Box<Self>, e: StoreError);
}

/// An operation, then its answer, and where the answer goes.
struct Pending<O: Operation> {
    op: Option<O>,
    answer: Option<Answer<O::Output>>,
    reply: oneshot::Sender<Answer<O::Output>>,
}

/// A job for `op` and the receiver of its answer.
pub(crate) fn job<O: Operation>(op: O) -> (Job, oneshot::Receiver<Answer<O::Output>>) {
    let (reply, rx) = oneshot::channel();
    (
        Box::new(Pending {
            op: Some(op),
            answer: None,
            reply,
        }),
        rx,
    )
}

impl<O: Operation> Task for Pending<O> {
    fn adds_data(&self) -> bool {
        self.op.as_ref().is_some_and(O::adds_data)
    }

    fn apply(&mut self, cx: &mut Ctx<'_>, floor: Option<&Refusal>) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let done = match op.repeat(cx) {
            Ok(Some(out)) => Ok(out),
            Ok(None) => match floor {
                Some(r) if op.adds_data() => Err(Stop::Refused(r.clone())),
                _ => op.apply(cx),
            },
            Err(stop) => Err(stop),
        };
        let answer = match done {
            Ok(out) => Ok(Ok(out)),
            Err(Stop::Refused(r)) => Ok(Err(r)),
            Err(Stop::Failed(e)) => Err(e),
        };
        let ok = matches!(answer, Ok(Ok(_)));
        self.answer = Some(answer);
        ok
    }

    fn fail(&mut self, e: &dyn Fn() -> StoreError) {
        if matches!(self.answer, Some(Ok(Ok(_)))) {
            self.answer = Some(Err(e()));
        }
    }

    fn send(self: Box<Self>) {
        let answer = self
            .answer
            .unwrap_or_else(|| Err(StoreError::Internal("the job was never run".into())));
        // A caller that stopped waiting is not an error.
        let _ = self.reply.send(answer);
    }

    fn fail_with(self: Box<Self>, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// What the writer's channel carries.
pub(crate) enum Message {
    /// A job to run.
    Job(Job),
    /// Finish the jobs queued before this one, then stop.
    Shutdown,
}

/// The writer thread's state.
pub(super) struct Engine {
    pub conn: Connection,
    pub cfg: WriterConfig,
    pub head: Head,
    /// Tells the checkpointer that the WAL grew; dropped at the end.
    pub wal_grew: Option<SyncSender<()>>,
    /// The checkpointer thread, joined at the end before the last
    /// checkpoint.
    pub checkpointer: Option<JoinHandle<()>>,
    /// Pruning ran in the last group: the WAL still holds the old pages.
    pub scrub_wal: bool,
}

impl Engine {
    /// Commits groups until shut down, then refuses what is still queued
    /// and folds the WAL into the database.
    pub fn run(&mut self, mut rx: mpsc::Receiver<Message>) {
        let max = self.cfg.max_batch.max(1);
        let mut stopping = false;
        while !stopping {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            let mut batch: Vec<Job> = Vec::new();
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Message::Job(j) => batch.push(j),
                    Message::Shutdown => {
                        stopping = true;
                        break;
                    }
                }
                if batch.len() < max {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit_group(batch);
            }
        }
        // Refuse whatever is still queued; handles see WriterGone from now on.
        rx.close();
        while let Ok(late) = rx.try_recv() {
            if let Message::Job(j) = late {
                j.fail_with(StoreError::WriterGone);
            }
        }
        // Stop the checkpointer and wait until its connection is closed,
        // then fold the WAL into the database. Without the wait, its
        // PASSIVE checkpoint could make the TRUNCATE below busy, and two
        // connections closing at once each see the other still open, so
        // neither folds the WAL in on close: the file would then need its
        // WAL to be read right.
        self.wal_grew = None;
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
        // Without waiting: if readers (the kiosk, another process) are in
        // the WAL, it stays as it is, which is harmless.
        let _ = self.conn.busy_timeout(std::time::Duration::ZERO);
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn commit_group(&mut self, batch: Vec<Job>) {
        let adds_data = batch.iter().any(|j| j.adds_data());
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
                for job in batch {
                    job.fail_with(StoreError::Sqlite {
                        step: "starting a transaction",
                        source: clone_err(&source),
                    });
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
                    job.fail_with(StoreError::Internal(msg.clone()));
                }
                return;
            }
        }
        let before = self.head;
        let mut answers: Vec<Job> = Vec::with_capacity(batch.len());
        let mut jobs = batch.into_iter();
        while let Some(mut job) = jobs.next() {
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
                for mut a in answers {
                    a.fail(&gone);
                    a.send();
                }
                job.fail_with(gone());
                for late in jobs {
                    late.fail_with(gone());
                }
                drop(tx);
                self.head = load_head(&self.conn).unwrap_or(before);
                return;
            }
            let mut sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(source) => {
                    job.fail_with(StoreError::Sqlite {
                        step: "opening a savepoint",
                        source,
                    });
                    continue;
                }
            };
            let saved = self.head;
            let ok = job.apply(
                &mut Ctx {
                    conn: &sp,
                    cfg: &self.cfg,
                    head: &mut self.head,
                    scrub_wal: &mut self.scrub_wal,
                },
                space.as_ref().err(),
            );
            if ok {
                if let Err(source) = sp.commit() {
                    self.head = saved;
                    job.fail(&|| StoreError::Sqlite {
                        step: "releasing a savepoint",
                        source: clone_err(&source),
                    });
                }
            } else {
                self.head = saved;
                sp.rollback().ok();
                drop(sp);
            }
            answers.push(job);
        }
        if tx.is_autocommit() {
            // The last job's error rolled everything back: nothing of the
            // group is stored, whatever the earlier answers said.
            for mut a in answers {
                a.fail(&|| {
                    StoreError::Internal(
                        "the transaction was rolled back by an error in its group".into(),
                    )
                });
                a.send();
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
                for mut a in answers {
                    a.fail(&|| StoreError::Sqlite {
                        step: "committing",
                        source: clone_err(&source),
                    });
                    a.send();
                }
                self.head = load_head(&self.conn).unwrap_or(before);
            }
        }
    }

    /// Refuses new records when free space is below the floor.
    fn space_check(&self) -> Result<(), Refusal> {
        let dir = self.cfg.db.parent().unwrap_or(std::path::Path::new("."));
        match disk::free_bytes(dir) {
            Ok(free) if free < self.cfg.min_free => {
                tracing::warn!(
                    free,
                    floor = self.cfg.min_free,
                    "free space below the floor: refusing new records"
                );
                Err(Refusal::DiskFull {
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

fn clone_err(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::InvalidParameterName(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ed25519_dalek::SigningKey;
    use motcua_protocol::ChainHead;
    use time::macros::datetime;

    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::code::Counter;
    use crate::domain::invalid::Invalid;
    use crate::store::schema;

    /// A job kind that only the engine's tests know: adds a row, then
    /// ends as told.
    struct Put {
        n: i64,
        end: End,
        adds: bool,
    }

    #[derive(Clone, Copy)]
    enum End {
        Done,
        Refused,
        Failed,
    }

    impl Operation for Put {
        type Output = i64;
        fn adds_data(&self) -> bool {
            self.adds
        }
        fn apply(self, cx: &mut Ctx<'_>) -> Result<i64, Stop> {
            cx.conn
                .execute("INSERT INTO scratch (n) VALUES (?)", [self.n])
                .expect("insert");
            match self.end {
                End::Done => Ok(self.n),
                End::Refused => {
                    Err(InvalidInput(vec![Invalid::new("n", "refused", "Không.")]).into())
                }
                End::Failed => Err(StoreError::Internal("told to fail".into()).into()),
            }
        }
    }

    fn engine(dir: &std::path::Path, min_free: u64) -> Engine {
        let db = dir.join("motcua.db");
        let conn = schema::open(&db).expect("open");
        conn.execute_batch("CREATE TABLE scratch (n INTEGER)")
            .expect("scratch table");
        Engine {
            conn,
            cfg: WriterConfig {
                db,
                device: "H49.12.3-q01".parse().expect("device"),
                unit: "H49.12.3".parse().expect("unit"),
                counter: Counter::new(1).expect("counter"),
                min_free,
                key: SigningKey::from_bytes(&[0x11; 32]),
                clock: Arc::new(ManualClock::new(datetime!(2026-11-26 02:00 UTC), true)),
                default_collect_at: String::new(),
                office: crate::domain::calendar::OfficeDay::default(),
                max_batch: 16,
            },
            head: Head {
                chain: ChainHead::EMPTY,
                last_at: None,
            },
            wal_grew: None,
            checkpointer: None,
            scrub_wal: false,
        }
    }

    fn put(n: i64, end: End, adds: bool) -> (Job, oneshot::Receiver<Answer<i64>>) {
        job(Put { n, end, adds })
    }

    fn rows(e: &Engine) -> Vec<i64> {
        let mut s = e
            .conn
            .prepare("SELECT n FROM scratch ORDER BY n")
            .expect("prepare");
        s.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn a_refused_or_failed_job_undoes_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = engine(dir.path(), 0);
        let (jobs, mut answers): (Vec<_>, Vec<_>) = [
            put(1, End::Done, true),
            put(2, End::Refused, true),
            put(3, End::Failed, false),
            put(4, End::Done, false),
        ]
        .into_iter()
        .unzip();
        e.commit_group(jobs);
        let got: Vec<_> = answers
            .iter_mut()
            .map(|rx| rx.try_recv().expect("answered"))
            .collect();
        assert!(matches!(got[0], Ok(Ok(1))));
        assert!(matches!(&got[1], Ok(Err(Refusal::Invalid(_)))));
        assert!(matches!(got[2], Err(StoreError::Internal(_))));
        assert!(matches!(got[3], Ok(Ok(4))));
        assert_eq!(rows(&e), vec![1, 4]);
    }

    #[test]
    fn below_the_floor_only_jobs_adding_data_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = engine(dir.path(), u64::MAX);
        let (a, mut ra) = put(1, End::Done, true);
        let (b, mut rb) = put(2, End::Done, false);
        e.commit_group(vec![a, b]);
        assert!(matches!(
            ra.try_recv().expect("answered"),
            Ok(Err(Refusal::DiskFull { .. }))
        ));
        assert!(matches!(rb.try_recv().expect("answered"), Ok(Ok(2))));
        assert_eq!(rows(&e), vec![2]);
    }

    #[test]
    fn a_failed_group_turns_only_successes_into_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut e = engine(dir.path(), 0);
        // Refused below the floor: a refusal stays a refusal.
        let (mut j, mut rx) = put(1, End::Done, true);
        let floor = Refusal::DiskFull {
            path: dir.path().to_owned(),
            free: 0,
            floor: 1,
        };
        let ok = j.apply(
            &mut Ctx {
                conn: &e.conn,
                cfg: &e.cfg,
                head: &mut e.head,
                scrub_wal: &mut e.scrub_wal,
            },
            Some(&floor),
        );
        assert!(!ok);
        j.fail(&|| StoreError::WriterGone);
        j.send();
        assert!(matches!(
            rx.try_recv().expect("answered"),
            Ok(Err(Refusal::DiskFull { .. }))
        ));
        assert_eq!(rows(&e), Vec::<i64>::new(), "a refused job never ran");
        let (mut j, mut rx) = put(5, End::Done, false);
        let ok = j.apply(
            &mut Ctx {
                conn: &e.conn,
                cfg: &e.cfg,
                head: &mut e.head,
                scrub_wal: &mut e.scrub_wal,
            },
            None,
        );
        assert!(ok);
        j.fail(&|| StoreError::WriterGone);
        j.send();
        assert!(matches!(
            rx.try_recv().expect("answered"),
            Err(StoreError::WriterGone)
        ));
    }
}
