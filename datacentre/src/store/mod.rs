//! Where the DC keeps what arrived: the device registry, every accepted
//! record exactly once, envelopes held for a gap, and alerts with their
//! evidence.
//!
//! One trait, [`Store`], two backends with the same behaviour and the same
//! test suite (`datacentre/tests/store.rs`): [`sqlite::SqliteStore`] (the
//! embedded default, zero set-up) and [`postgres::PgStore`] (production).
//! Each operation is written once, in [`ops`], over the narrow SQL seam of
//! [`sql`] (one statement in, typed columns out, transactions); the dialect
//! differences (placeholders, column types, ids, locking, date arithmetic)
//! are all in [`sql`], and a backend only supplies a connection. Rows carry
//! typed values (`DeviceId`, `UtcTime`, `RecordKind`), parsed once where
//! read; content this build cannot have written is [`StoreError::Corrupt`]
//! naming the column.
//!
//! The chain decisions of [`accept`] run inside one transaction that first
//! locks the device's row (`BEGIN IMMEDIATE` in SQLite, `SELECT ... FOR
//! UPDATE` in PostgreSQL), so two receivers handed one device's messages
//! out of order still store each seq once and never skip one.
//!
//! The schema is versioned ([`schema`]): an ordered list of forward
//! migrations, applied in one transaction when a store opens; a database
//! newer than this build is refused ([`StoreError::NewerSchema`]).
//!
//! Tables (same names and meaning in both backends):
//!
//! | table     | one row per | holds |
//! |-----------|-------------|-------|
//! | `devices` | enrolled device | head of its chain (seq, hash), enrolled and revoked times, last seen |
//! | `keys`    | public key  | kid, device, the key, enrolled time; never deleted (old records stay verifiable) |
//! | `records` | accepted envelope | device, seq, hash, prev, kid, the device's `at` and clock flag, kind, the complete signed bytes |
//! | `held`    | envelope beyond a gap | as `records`; removed when the gap closes |
//! | `alerts`  | refused message | time, device (if known), topic, reason code, seq, a detail without personal data, the raw bytes as evidence (at most the first 64 KiB) |
//! | `device_state` | enrolled device that reported | its presence (online, when) and latest health report (bytes, when) |
//! | `down_messages` | downstream topic | the last signed message published there and its number |
//! | `status_updates` | status change decided at the DC | id (increasing), device, dossier code, status, time, office, note |
//! | `operators` | operator's account | name, Argon2id hash, roles, created, changed and disabled times |
//! | `access_log` | read of personal data | id (1, 2, 3...), time, who, what, purpose, which records, count, previous and own hash |
//! | `schema_version` | applied migration | its version; the database's version is the largest |

pub mod accept;
pub mod ops;
pub mod postgres;
pub mod schema;
pub mod sql;
pub mod sqlite;

use std::fmt;

use ed25519_dalek::VerifyingKey;
use motcua_protocol::{
    ChainHead, ConflictKind, DeviceId, Enrollment, Hash32, KeyId, RecordKind, UtcTime,
};

use crate::config::DatabaseUrl;
use crate::rights::{AccessEntry, NewAccess, Operator, OperatorName};

pub use accept::{Accepted, Incoming, Outcome};

/// Most envelopes held beyond a gap per device. Past it, further
/// out-of-order envelopes are not held (the counter resends them after the
/// next receipt), so a confused or hostile device cannot fill the disk.
pub const MAX_HELD_PER_DEVICE: u64 = 10_000;

/// A storage failure. Input problems are never errors here: they are
/// outcomes or alerts.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or the connection broke.
    #[error("PostgreSQL: {}", pg_detail(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The database holds something this build cannot have written; the
    /// text names the column.
    #[error("database content is damaged: {0}")]
    Corrupt(String),
    /// The database's schema is newer than this build knows: a newer
    /// motcua-dc migrated it, and this one cannot be trusted to keep it.
    #[error(
        "the database is at schema version {found}, this build knows up to {known}: run the newer motcua-dc that migrated it"
    )]
    NewerSchema {
        /// The database's version.
        found: u32,
        /// The newest version this build knows.
        known: u32,
    },
    /// Anything else on the way to the database (directory, file).
    #[error("{0}")]
    Other(String),
}

/// The server's own message and SQLSTATE when there is one: the client's
/// `Display` says only "db error".
fn pg_detail(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, StoreError>;

/// What `device add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// A new device with its first key.
    NewDevice,
    /// A known device got a new key (rotation).
    NewKey,
    /// This exact key was already enrolled for this device.
    AlreadyEnrolled,
}

/// Why an enrollment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// The key is enrolled for another device.
    #[error("this key (kid {kid}) is already enrolled for device {other}")]
    KeyOfAnotherDevice {
        /// The key id.
        kid: KeyId,
        /// The device it belongs to.
        other: DeviceId,
    },
    /// The device was revoked; a revoked id is never reused.
    #[error("device {0} was revoked; enroll the replacement box under a new device id")]
    Revoked(DeviceId),
}

/// One enrolled key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    /// Its key id.
    pub kid: KeyId,
    /// The key.
    pub key: VerifyingKey,
    /// When it was enrolled.
    pub added_at: UtcTime,
}

/// A device as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its id.
    pub device: DeviceId,
    /// When it was enrolled.
    pub added_at: UtcTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UtcTime>,
    /// The last accepted link of its chain.
    pub head: ChainHead,
    /// When a message from it was last processed.
    pub last_seen: Option<UtcTime>,
    /// Every key it has had.
    pub keys: Vec<DeviceKey>,
}

/// A refused message, kept as evidence.
#[derive(Clone, PartialEq, Eq)]
pub struct Alert {
    /// When it was refused.
    pub at: UtcTime,
    /// The device the topic or payload named, if it is a valid id.
    pub device: Option<DeviceId>,
    /// The MQTT topic it arrived on.
    pub topic: String,
    /// A stable reason code (`bad_signature`, `conflict_rewrite`, ...).
    pub reason: String,
    /// The seq, when the envelope could be read.
    pub seq: Option<u64>,
    /// What was wrong, for the operator; never payload content.
    pub detail: String,
    /// The raw bytes as received: the refused message, or the payload
    /// refused whole; at most the first [`motcua_protocol::MAX_MESSAGE_BYTES`].
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alert")
            .field("at", &self.at)
            .field("device", &self.device)
            .field("reason", &self.reason)
            .field("seq", &self.seq)
            .field("detail", &self.detail)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// An alert as stored, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    /// Its id, increasing.
    pub id: i64,
    /// The alert.
    pub alert: Alert,
}

/// An accepted record.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Its seq.
    pub seq: u64,
    /// SHA-256 of `bytes`.
    pub hash: Hash32,
    /// The `prev` it carries.
    pub prev: Hash32,
    /// The key that signed it.
    pub kid: KeyId,
    /// The complete signed envelope.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("seq", &self.seq)
            .field("hash", &self.hash)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Totals for status displays and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Enrolled devices, revoked ones included.
    pub devices: u64,
    /// Accepted records.
    pub records: u64,
    /// Envelopes held beyond a gap.
    pub held: u64,
    /// Alerts.
    pub alerts: u64,
}

/// What a device last said about itself: its presence (retained `status`
/// message) and its latest health report, kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    /// The device.
    pub device: DeviceId,
    /// Online or offline, as its status topic last said; `None` before it
    /// ever said.
    pub online: Option<bool>,
    /// When the DC received that status.
    pub status_at: Option<UtcTime>,
    /// The latest health report's JSON bytes, as received.
    pub health: Option<Vec<u8>>,
    /// When the DC received it.
    pub health_at: Option<UtcTime>,
}

/// A status change decided at the DC, waiting for its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpdate {
    /// Increasing over all devices (so per device too).
    pub id: u64,
    /// The dossier code.
    pub code: String,
    /// The new status value.
    pub status: u8,
    /// When it was decided.
    pub at: UtcTime,
    /// The deciding office.
    pub by: String,
    /// A note for the clerk.
    pub note: Option<String>,
}

/// How many alerts one device has of one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCount {
    /// The device.
    pub device: DeviceId,
    /// The reason code.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// The DC's storage. Every method is one transaction.
pub trait Store: Send {
    /// Enrolls `e` (a new device, or a new key of a known one).
    fn enroll(
        &mut self,
        e: &Enrollment,
        now: &UtcTime,
    ) -> Result<std::result::Result<Enrolled, EnrollError>>;

    /// Revokes a device: from now on its envelopes are refused and recorded.
    /// `false` when no such device is enrolled; revoking twice keeps the
    /// first time.
    fn revoke(&mut self, device: &DeviceId, now: &UtcTime) -> Result<bool>;

    /// One device, with its keys.
    fn device(&mut self, device: &DeviceId) -> Result<Option<Device>>;

    /// Every device, with its keys, ordered by id.
    fn devices(&mut self) -> Result<Vec<Device>>;

    /// Applies the chain rules to verified envelopes of one device, in
    /// order, in one transaction (see [`accept::accept`]).
    fn accept(&mut self, device: &DeviceId, items: &[Incoming], now: &UtcTime) -> Result<Accepted>;

    /// Records a refused message.
    fn alert(&mut self, alert: &Alert) -> Result<()>;

    /// Alerts with an id above `after`, oldest first, at most `limit`.
    fn alerts(&mut self, after: i64, limit: u32) -> Result<Vec<StoredAlert>>;

    /// Accepted records of `device` with seq above `after`, in seq order, at
    /// most `limit`.
    fn records(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<Record>>;

    /// Totals.
    fn totals(&mut self) -> Result<Totals>;

    /// Records a device's presence as received on its status topic.
    /// `false` (nothing written) when the device is not enrolled.
    fn set_presence(&mut self, device: &DeviceId, online: bool, now: &UtcTime) -> Result<bool>;

    /// Keeps a device's latest health report (its bytes, already checked).
    /// `false` (nothing written) when the device is not enrolled.
    fn put_health(&mut self, device: &DeviceId, report: &[u8], now: &UtcTime) -> Result<bool>;

    /// Every device's presence and latest report, ordered by device.
    fn states(&mut self) -> Result<Vec<DeviceState>>;

    /// Alerts per device and reason (alerts naming no device left out).
    fn alert_counts(&mut self) -> Result<Vec<AlertCount>>;

    /// The last signed message published on `topic` and its number
    /// (catalogue version or seq).
    fn down_last(&mut self, topic: &str) -> Result<Option<(u64, Vec<u8>)>>;

    /// Keeps `message` as the one published on `topic`, if `number` is
    /// higher than the kept one's; `false` (nothing written) otherwise.
    fn down_put(&mut self, topic: &str, number: u64, message: &[u8], now: &UtcTime)
    -> Result<bool>;

    /// Every kept downstream message, by topic.
    fn down_all(&mut self) -> Result<Vec<(String, Vec<u8>)>>;

    /// Queues a status change for `device`'s dossier `code`; its id.
    fn add_update(&mut self, device: &DeviceId, update: &PendingUpdate) -> Result<u64>;

    /// `device`'s queued status changes with an id above `after`, oldest
    /// first, at most `limit`.
    fn updates(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<PendingUpdate>>;

    /// Dossiers received (`dossier.created` records) per device and day in
    /// Vietnam (`YYYY-MM-DD`), of records signed at or after `since`.
    fn daily_dossiers(&mut self, since: &UtcTime) -> Result<Vec<(DeviceId, String, u64)>>;

    /// Per day in Vietnam, the average and the largest time in seconds
    /// from signing at the counter to storing here, of records signed at or
    /// after `since` by a synchronised clock.
    fn daily_lag(&mut self, since: &UtcTime) -> Result<Vec<(String, f64, f64)>>;

    /// Stored records signed in `[from, to)`, in (device, seq) order after
    /// the cursor `after`, at most `limit`: for export.
    fn export(
        &mut self,
        from: &UtcTime,
        to: &UtcTime,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<ExportRow>>;

    /// The database's schema version (see [`schema`]).
    fn schema_version(&mut self) -> Result<u32>;

    /// Creates the account `o`; with `replace`, an existing one of that
    /// name gets `o`'s password hash and roles and is enabled again.
    /// `false` when it exists and `replace` is not set.
    fn operator_put(&mut self, o: &Operator, replace: bool) -> Result<bool>;

    /// One account.
    fn operator(&mut self, name: &OperatorName) -> Result<Option<Operator>>;

    /// Every account, by name.
    fn operators(&mut self) -> Result<Vec<Operator>>;

    /// Disables an account; `false` when there is none of that name.
    /// Disabling twice keeps the first time.
    fn operator_disable(&mut self, name: &OperatorName, now: &UtcTime) -> Result<bool>;

    /// Appends `e` to the access log at `now`, after the last entry, under
    /// the log's lock (crate::rights).
    fn access_append(&mut self, e: &NewAccess, now: &UtcTime) -> Result<AccessEntry>;

    /// Access-log entries with ids above `after`, in order, at most `limit`.
    fn access_entries(&mut self, after: u64, limit: u32) -> Result<Vec<AccessEntry>>;
}

/// A stored record as exported: its metadata and the signed envelope.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The device.
    pub device: DeviceId,
    /// Its seq.
    pub seq: u64,
    /// The record kind.
    pub kind: RecordKind,
    /// When the counter signed it.
    pub signed_at: UtcTime,
    /// Whether the counter's clock was synchronised.
    pub clock: bool,
    /// When the DC stored it.
    pub received_at: UtcTime,
    /// The complete signed envelope.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for ExportRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportRow")
            .field("device", &self.device)
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Opens (creating when needed) the store `url` names.
pub fn open(url: &DatabaseUrl) -> Result<Box<dyn Store>> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Box::new(sqlite::SqliteStore::open(path.as_path())?),
        DatabaseUrl::Postgres(u) => Box::new(postgres::PgStore::connect(u.as_str())?),
    })
}

/// The reason code of a conflict, for alerts and metrics.
pub fn conflict_reason(kind: ConflictKind) -> &'static str {
    match kind {
        ConflictKind::Rewrite => "conflict_rewrite",
        ConflictKind::BrokenLink => "conflict_broken_link",
    }
}

pub(crate) fn hash_from(bytes: &[u8], what: &str) -> Result<Hash32> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash32)
        .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

pub(crate) fn kid_from(bytes: &[u8]) -> Result<KeyId> {
    KeyId::from_slice(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("a kid is {} bytes, not 16", bytes.len())))
}

pub(crate) fn key_from(bytes: &[u8]) -> Result<VerifyingKey> {
    <[u8; 32]>::try_from(bytes)
        .ok()
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| StoreError::Corrupt("a stored public key is not a valid Ed25519 key".into()))
}

pub(crate) fn seq_from(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative")))
}
