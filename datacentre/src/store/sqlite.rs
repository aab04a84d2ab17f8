//! The embedded backend: one SQLite file, WAL, `synchronous=FULL`.
//!
//! Several receiver processes on one machine may share the file: every
//! write transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's
//! write lock before the device's head is read, and a busy timeout makes
//! the others wait for it.

use std::path::Path;
use std::time::Duration;

use motcua_protocol::{ChainHead, DeviceId, Enrollment, Hash32, UtcTime};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::accept::{self, Accepted, ChainTx, Incoming};
use super::{
    Alert, AlertCount, AlertRow, Device, DeviceKey, DeviceState, EnrollError, Enrolled, ExportRow,
    PendingUpdate, Record, Result, StoreError, StoredAlert, Totals, hash_from, key_from, kid_from,
    seq_from,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    device     TEXT PRIMARY KEY,
    added_at   TEXT NOT NULL,
    revoked_at TEXT,
    head_seq   INTEGER NOT NULL DEFAULT 0,
    head_hash  BLOB NOT NULL,
    last_seen  TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS keys (
    kid        BLOB PRIMARY KEY,
    device     TEXT NOT NULL REFERENCES devices (device),
    public_key BLOB NOT NULL,
    added_at   TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS records (
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    prev        BLOB NOT NULL,
    kid         BLOB NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS held (
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    prev        BLOB NOT NULL,
    kid         BLOB NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    bytes       BLOB NOT NULL,
    topic       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq, hash)
) STRICT;
CREATE TABLE IF NOT EXISTS device_state (
    device    TEXT PRIMARY KEY REFERENCES devices (device),
    online    INTEGER,
    status_at TEXT,
    health    BLOB,
    health_at TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS down_messages (
    topic        TEXT PRIMARY KEY,
    number       INTEGER NOT NULL,
    message      BLOB NOT NULL,
    published_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS status_updates (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL REFERENCES devices (device),
    code   TEXT NOT NULL,
    status INTEGER NOT NULL,
    at     TEXT NOT NULL,
    by     TEXT NOT NULL,
    note   TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS status_updates_device ON status_updates (device, id);
CREATE TABLE IF NOT EXISTS alerts (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    device TEXT,
    topic  TEXT NOT NULL,
    reason TEXT NOT NULL,
    seq    INTEGER,
    detail TEXT NOT NULL,
    bytes  BLOB NOT NULL
) STRICT;
";

/// The SQLite backend.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens or creates the database at `path` (and its directory).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut store = SqliteStore { conn };
        let tx = store.begin()?;
        tx.execute_batch(SCHEMA)?;
        tx.commit()?;
        Ok(store)
    }

    fn begin(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

struct Tx<'a, 'c>(&'a Transaction<'c>);

fn i(v: u64) -> i64 {
    // Seqs are at most 2^53 - 1 (checked by the protocol), so they fit.
    v as i64
}

fn incoming_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<[Vec<u8>; 4]> {
    Ok([row.get(1)?, row.get(2)?, row.get(3)?, row.get(7)?])
}

impl ChainTx for Tx<'_, '_> {
    fn lock_device(&mut self, device: &DeviceId) -> Result<Option<(ChainHead, bool)>> {
        // The IMMEDIATE transaction already holds the write lock.
        let row = self
            .0
            .query_row(
                "SELECT head_seq, head_hash, revoked_at IS NOT NULL FROM devices WHERE device = ?",
                [device.as_str()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(seq, hash, revoked)| {
            Ok((
                ChainHead {
                    seq: seq_from(seq, "head_seq")?,
                    hash: hash_from(&hash, "head_hash")?,
                },
                revoked,
            ))
        })
        .transpose()
    }

    fn stored_hash(&mut self, device: &DeviceId, seq: u64) -> Result<Option<Hash32>> {
        let h: Option<Vec<u8>> = self
            .0
            .prepare_cached("SELECT hash FROM records WHERE device = ? AND seq = ?")?
            .query_row(params![device.as_str(), i(seq)], |r| r.get(0))
            .optional()?;
        h.map(|h| hash_from(&h, "hash")).transpose()
    }

    fn insert_record(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO records (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                device.as_str(),
                i(item.seq),
                &item.hash.0[..],
                &item.prev.0[..],
                &item.kid.0[..],
                item.at.to_string(),
                item.clock,
                item.kind,
                item.bytes,
                now.to_string()
            ])?;
        Ok(())
    }

    fn set_head(&mut self, device: &DeviceId, head: &ChainHead, now: &UtcTime) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET head_seq = ?, head_hash = ?, last_seen = ? WHERE device = ?",
            params![
                i(head.seq),
                &head.hash.0[..],
                now.to_string(),
                device.as_str()
            ],
        )?;
        Ok(())
    }

    fn held_count(&mut self, device: &DeviceId) -> Result<u64> {
        let n: i64 = self.0.query_row(
            "SELECT count(*) FROM held WHERE device = ?",
            [device.as_str()],
            |r| r.get(0),
        )?;
        seq_from(n, "held count")
    }

    fn hold(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO held (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, topic, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                device.as_str(),
                i(item.seq),
                &item.hash.0[..],
                &item.prev.0[..],
                &item.kid.0[..],
                item.at.to_string(),
                item.clock,
                item.kind,
                item.bytes,
                item.topic,
                now.to_string()
            ])?;
        Ok(())
    }

    fn take_held(&mut self, device: &DeviceId, through: u64) -> Result<Vec<Incoming>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT seq, hash, prev, kid, signed_at, clock, kind, bytes, topic FROM held
             WHERE device = ? AND seq <= ? ORDER BY seq",
        )?;
        let rows = stmt
            .query_map(params![device.as_str(), i(through)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    incoming_row(r)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(8)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        self.0.execute(
            "DELETE FROM held WHERE device = ? AND seq <= ?",
            params![device.as_str(), i(through)],
        )?;
        rows.into_iter()
            .map(|(seq, [hash, prev, kid, bytes], at, clock, kind, topic)| {
                Ok(Incoming {
                    seq: seq_from(seq, "held seq")?,
                    hash: hash_from(&hash, "held hash")?,
                    prev: hash_from(&prev, "held prev")?,
                    kid: kid_from(&kid)?,
                    at: UtcTime::parse(&at).map_err(|e| StoreError::Corrupt(e.0))?,
                    clock,
                    kind,
                    bytes,
                    topic,
                })
            })
            .collect()
    }

    fn alert(&mut self, a: &Alert) -> Result<()> {
        insert_alert(self.0, a)
    }
}

fn insert_alert(conn: &Connection, a: &Alert) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO alerts (at, device, topic, reason, seq, detail, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        a.at.to_string(),
        a.device,
        a.topic,
        a.reason,
        a.seq.map(i),
        a.detail,
        a.bytes
    ])?;
    Ok(())
}

fn load_keys(conn: &Connection, device: &str) -> Result<Vec<DeviceKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kid, public_key, added_at FROM keys WHERE device = ? ORDER BY added_at, kid",
    )?;
    let rows = stmt
        .query_map([device], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(kid, key, added_at)| {
            Ok(DeviceKey {
                kid: kid_from(&kid)?,
                key: key_from(&key)?,
                added_at,
            })
        })
        .collect()
}

type DeviceRow = (String, String, Option<String>, i64, Vec<u8>, Option<String>);

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_device(conn: &Connection, row: DeviceRow) -> Result<Device> {
    let (device, added_at, revoked_at, seq, hash, last_seen) = row;
    let keys = load_keys(conn, &device)?;
    Ok(Device {
        device: device
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("stored device id: {e}")))?,
        added_at,
        revoked_at,
        head: ChainHead {
            seq: seq_from(seq, "head_seq")?,
            hash: hash_from(&hash, "head_hash")?,
        },
        last_seen,
        keys,
    })
}

const DEVICE_COLUMNS: &str = "device, added_at, revoked_at, head_seq, head_hash, last_seen";

impl super::Store for SqliteStore {
    fn enroll(
        &mut self,
        e: &Enrollment,
        now: &UtcTime,
    ) -> Result<std::result::Result<Enrolled, EnrollError>> {
        let tx = self.begin()?;
        let owner: Option<String> = tx
            .query_row(
                "SELECT device FROM keys WHERE kid = ?",
                [&e.kid().0[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(owner) = owner {
            return Ok(if owner == e.device.as_str() {
                Ok(Enrolled::AlreadyEnrolled)
            } else {
                Err(EnrollError::KeyOfAnotherDevice {
                    kid: e.kid(),
                    other: owner
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("stored device id: {e}")))?,
                })
            });
        }
        let revoked: Option<bool> = tx
            .query_row(
                "SELECT revoked_at IS NOT NULL FROM devices WHERE device = ?",
                [e.device.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let outcome = match revoked {
            Some(true) => return Ok(Err(EnrollError::Revoked(e.device.clone()))),
            Some(false) => Enrolled::NewKey,
            None => {
                tx.execute(
                    "INSERT INTO devices (device, added_at, head_seq, head_hash) VALUES (?, ?, 0, ?)",
                    params![e.device.as_str(), now.to_string(), &Hash32::ZERO.0[..]],
                )?;
                Enrolled::NewDevice
            }
        };
        tx.execute(
            "INSERT INTO keys (kid, device, public_key, added_at) VALUES (?, ?, ?, ?)",
            params![
                &e.kid().0[..],
                e.device.as_str(),
                &e.key.as_bytes()[..],
                now.to_string()
            ],
        )?;
        tx.commit()?;
        Ok(Ok(outcome))
    }

    fn revoke(&mut self, device: &DeviceId, now: &UtcTime) -> Result<bool> {
        let tx = self.begin()?;
        let n = tx.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE device = ?",
            params![now.to_string(), device.as_str()],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn device(&mut self, device: &DeviceId) -> Result<Option<Device>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device = ?"),
                [device.as_str()],
                device_row,
            )
            .optional()?;
        row.map(|r| to_device(&self.conn, r)).transpose()
    }

    fn devices(&mut self) -> Result<Vec<Device>> {
        let rows = self
            .conn
            .prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device"
            ))?
            .query_map([], device_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|r| to_device(&self.conn, r)).collect()
    }

    fn accept(&mut self, device: &DeviceId, items: &[Incoming], now: &UtcTime) -> Result<Accepted> {
        let tx = self.begin()?;
        let accepted = accept::accept(&mut Tx(&tx), device, items, now)?;
        tx.commit()?;
        Ok(accepted)
    }

    fn alert(&mut self, alert: &Alert) -> Result<()> {
        insert_alert(&self.conn, alert)
    }

    fn alerts(&mut self, after: i64, limit: u32) -> Result<Vec<StoredAlert>> {
        let rows = self
            .conn
            .prepare(
                "SELECT id, at, device, topic, reason, seq, detail, bytes FROM alerts
                 WHERE id > ? ORDER BY id LIMIT ?",
            )?
            .query_map(params![after, limit], |r| {
                Ok(AlertRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    device: r.get(2)?,
                    topic: r.get(3)?,
                    reason: r.get(4)?,
                    seq: r.get(5)?,
                    detail: r.get(6)?,
                    bytes: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(AlertRow::into_stored).collect()
    }

    fn records(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<Record>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT seq, hash, prev, kid, bytes FROM records
                 WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?",
            )?
            .query_map(params![device.as_str(), i(after), limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, hash, prev, kid, bytes)| {
                Ok(Record {
                    seq: seq_from(seq, "seq")?,
                    hash: hash_from(&hash, "hash")?,
                    prev: hash_from(&prev, "prev")?,
                    kid: kid_from(&kid)?,
                    bytes,
                })
            })
            .collect()
    }

    fn set_presence(&mut self, device: &DeviceId, online: bool, now: &UtcTime) -> Result<bool> {
        let n = self.conn.prepare_cached(
            "INSERT INTO device_state (device, online, status_at)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = ?1)
             ON CONFLICT (device) DO UPDATE SET online = excluded.online, status_at = excluded.status_at",
        )?
        .execute(params![device.as_str(), online, now.to_string()])?;
        Ok(n == 1)
    }

    fn put_health(&mut self, device: &DeviceId, report: &[u8], now: &UtcTime) -> Result<bool> {
        let n = self.conn.prepare_cached(
            "INSERT INTO device_state (device, health, health_at)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = ?1)
             ON CONFLICT (device) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
        )?
        .execute(params![device.as_str(), report, now.to_string()])?;
        Ok(n == 1)
    }

    fn states(&mut self) -> Result<Vec<DeviceState>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT device, online, status_at, health, health_at FROM device_state ORDER BY device",
            )?
            .query_map([], |r| {
                Ok(DeviceState {
                    device: r.get(0)?,
                    online: r.get(1)?,
                    status_at: r.get(2)?,
                    health: r.get(3)?,
                    health_at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn alert_counts(&mut self) -> Result<Vec<AlertCount>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT device, reason, count(*) FROM alerts WHERE device IS NOT NULL
                 GROUP BY device, reason ORDER BY device, reason",
            )?
            .query_map([], |r| {
                Ok(AlertCount {
                    device: r.get(0)?,
                    reason: r.get(1)?,
                    count: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn down_last(&mut self, topic: &str) -> Result<Option<(u64, Vec<u8>)>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT number, message FROM down_messages WHERE topic = ?",
                [topic],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(n, m)| Ok((seq_from(n, "number")?, m)))
            .transpose()
    }

    fn down_put(
        &mut self,
        topic: &str,
        number: u64,
        message: &[u8],
        now: &UtcTime,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO down_messages (topic, number, message, published_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (topic) DO UPDATE SET number = ?2, message = ?3, published_at = ?4
             WHERE down_messages.number < ?2",
            params![topic, i(number), message, now.to_string()],
        )?;
        Ok(n == 1)
    }

    fn down_all(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = self
            .conn
            .prepare("SELECT topic, message FROM down_messages ORDER BY topic")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn add_update(&mut self, device: &DeviceId, u: &PendingUpdate) -> Result<u64> {
        self.conn.execute(
            "INSERT INTO status_updates (device, code, status, at, by, note) VALUES (?, ?, ?, ?, ?, ?)",
            params![device.as_str(), u.code, u.status, u.at, u.by, u.note],
        )?;
        seq_from(self.conn.last_insert_rowid(), "update id")
    }

    fn updates(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<PendingUpdate>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT id, code, status, at, by, note FROM status_updates
                 WHERE device = ? AND id > ? ORDER BY id LIMIT ?",
            )?
            .query_map(params![device.as_str(), i(after), limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    PendingUpdate {
                        id: 0,
                        code: r.get(1)?,
                        status: r.get(2)?,
                        at: r.get(3)?,
                        by: r.get(4)?,
                        note: r.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, u)| {
                Ok(PendingUpdate {
                    id: seq_from(id, "update id")?,
                    ..u
                })
            })
            .collect()
    }

    fn daily_dossiers(&mut self, since: &UtcTime) -> Result<Vec<(String, String, u64)>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT device, date(signed_at, '+7 hours') AS day, count(*) FROM records
                 WHERE kind = 'dossier.created' AND signed_at >= ?
                 GROUP BY device, day ORDER BY day, device",
            )?
            .query_map([since.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn daily_lag(&mut self, since: &UtcTime) -> Result<Vec<(String, f64, f64)>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT day, avg(lag), max(lag) FROM (
                    SELECT date(signed_at, '+7 hours') AS day,
                           (julianday(received_at) - julianday(signed_at)) * 86400.0 AS lag
                    FROM records WHERE clock = 1 AND signed_at >= ?)
                 GROUP BY day ORDER BY day",
            )?
            .query_map([since.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn export(
        &mut self,
        from: &UtcTime,
        to: &UtcTime,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<ExportRow>> {
        let (d, s) = after.map_or(("", 0), |(d, s)| (d, i(s)));
        let rows = self
            .conn
            .prepare_cached(
                "SELECT device, seq, kind, signed_at, clock, received_at, bytes FROM records
                 WHERE signed_at >= ?1 AND signed_at < ?2 AND (device > ?3 OR (device = ?3 AND seq > ?4))
                 ORDER BY device, seq LIMIT ?5",
            )?
            .query_map(
                params![from.to_string(), to.to_string(), d, s, limit],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Vec<u8>>(6)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(device, seq, kind, signed_at, clock, received_at, bytes)| {
                    Ok(ExportRow {
                        device,
                        seq: seq_from(seq, "seq")?,
                        kind,
                        signed_at,
                        clock,
                        received_at,
                        bytes,
                    })
                },
            )
            .collect()
    }

    fn totals(&mut self) -> Result<Totals> {
        let count = |table: &str| -> Result<u64> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            seq_from(n, "count")
        };
        Ok(Totals {
            devices: count("devices")?,
            records: count("records")?,
            held: count("held")?,
            alerts: count("alerts")?,
        })
    }
}
