//! The DC's schema as an ordered list of forward migrations, written once
//! for both backends (types substituted by [`super::sql::Dialect::ddl`]).
//!
//! `schema_version` holds one row per applied migration. Opening a store
//! applies the missing ones in one transaction (under the schema lock, so
//! receivers starting together migrate once), and refuses a database whose
//! version is newer than [`LATEST`]: that database was written by a newer
//! build, whose tables this one cannot be trusted to keep.
//!
//! Migration 1 is the schema as it was before versions existed, with
//! `IF NOT EXISTS` throughout, so a database of that time is adopted as
//! version 1 unchanged. A later migration is appended, never edited.

use super::sql::{self, Conn, Tx, sql};
use super::{Result, StoreError};

/// One step of the schema.
struct Migration {
    /// Its version, one more than the previous one's.
    version: u32,
    /// Its DDL, with `{int}`-style type placeholders.
    ddl: &'static str,
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        ddl: V1,
    },
    Migration {
        version: 2,
        ddl: V2,
    },
];

/// The newest schema version this build knows.
pub const LATEST: u32 = 2;

const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version {int} PRIMARY KEY){strict};";

const V1: &str = "
CREATE TABLE IF NOT EXISTS devices (
    device     TEXT PRIMARY KEY,
    added_at   TEXT NOT NULL,
    revoked_at TEXT,
    head_seq   {int} NOT NULL DEFAULT 0,
    head_hash  {blob} NOT NULL,
    last_seen  TEXT
){strict};
CREATE TABLE IF NOT EXISTS keys (
    kid        {blob} PRIMARY KEY,
    device     TEXT NOT NULL REFERENCES devices (device),
    public_key {blob} NOT NULL,
    added_at   TEXT NOT NULL
){strict};
CREATE TABLE IF NOT EXISTS records (
    device      TEXT NOT NULL,
    seq         {int} NOT NULL,
    hash        {blob} NOT NULL,
    prev        {blob} NOT NULL,
    kid         {blob} NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       {bool} NOT NULL,
    kind        TEXT NOT NULL,
    bytes       {blob} NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq)
){strict};
CREATE TABLE IF NOT EXISTS held (
    device      TEXT NOT NULL,
    seq         {int} NOT NULL,
    hash        {blob} NOT NULL,
    prev        {blob} NOT NULL,
    kid         {blob} NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       {bool} NOT NULL,
    kind        TEXT NOT NULL,
    bytes       {blob} NOT NULL,
    topic       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq, hash)
){strict};
CREATE TABLE IF NOT EXISTS device_state (
    device    TEXT PRIMARY KEY REFERENCES devices (device),
    online    {bool},
    status_at TEXT,
    health    {blob},
    health_at TEXT
){strict};
CREATE TABLE IF NOT EXISTS down_messages (
    topic        TEXT PRIMARY KEY,
    number       {int} NOT NULL,
    message      {blob} NOT NULL,
    published_at TEXT NOT NULL
){strict};
CREATE TABLE IF NOT EXISTS status_updates (
    id     {serial},
    device TEXT NOT NULL REFERENCES devices (device),
    code   TEXT NOT NULL,
    status {small} NOT NULL,
    at     TEXT NOT NULL,
    by     TEXT NOT NULL,
    note   TEXT
){strict};
CREATE INDEX IF NOT EXISTS status_updates_device ON status_updates (device, id);
CREATE TABLE IF NOT EXISTS alerts (
    id     {serial},
    at     TEXT NOT NULL,
    device TEXT,
    topic  TEXT NOT NULL,
    reason TEXT NOT NULL,
    seq    {int},
    detail TEXT NOT NULL,
    bytes  {blob} NOT NULL
){strict};
";

/// Operators' accounts and the access log (crate::rights). The log's ids
/// are given under a table lock as one more than the largest, so they have
/// no gaps, and each row carries its predecessor's hash.
const V2: &str = "
CREATE TABLE operators (
    name        TEXT PRIMARY KEY,
    hash        TEXT NOT NULL,
    roles       TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    changed_at  TEXT NOT NULL,
    disabled_at TEXT
){strict};
CREATE TABLE access_log (
    id      {int} PRIMARY KEY,
    at      TEXT NOT NULL,
    who     TEXT NOT NULL,
    what    TEXT NOT NULL,
    purpose TEXT NOT NULL,
    records TEXT NOT NULL,
    count   {int} NOT NULL,
    prev    {blob} NOT NULL,
    hash    {blob} NOT NULL
){strict};
";

const CURRENT: sql::Sql = sql!("SELECT max(version) FROM schema_version");

/// The database's schema version (0 before any migration).
pub fn version(c: &mut impl Conn) -> Result<u32> {
    let v = c.row(&CURRENT, &[], |r| r.get::<Option<i64>>(0))?;
    let v = v.flatten().unwrap_or(0);
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema_version.version is {v}")))
}

/// Applies the migrations `c`'s database lacks, in one transaction.
pub fn migrate<C: Conn>(c: &mut C) -> Result<()> {
    const RECORD: sql::Sql = sql!("INSERT INTO schema_version (version) VALUES ($1)");
    let mut tx = Tx::begin(c, C::DIALECT.lock_schema)?;
    tx.batch(&C::DIALECT.ddl(VERSION_TABLE))?;
    let found = version(&mut *tx)?;
    if found > LATEST {
        return Err(StoreError::NewerSchema {
            found,
            known: LATEST,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        tx.batch(&C::DIALECT.ddl(m.ddl))?;
        tx.execute(&RECORD, &[&i64::from(m.version)])?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_one_another_up_to_latest() {
        for (n, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, n + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST));
    }

    #[test]
    fn every_placeholder_is_substituted() {
        for m in MIGRATIONS {
            for d in [sql::SQLITE, sql::POSTGRES] {
                let ddl = d.ddl(m.ddl);
                assert!(!ddl.contains('{'), "migration {}: {ddl}", m.version);
            }
        }
    }
}
