//! The production backend: PostgreSQL.
//!
//! Same tables and behaviour as the SQLite backend. Receivers on several
//! machines share one database: the device's row is locked with `SELECT
//! ... FOR UPDATE` before its head is read, so one device's envelopes are
//! decided one transaction at a time while different devices proceed in
//! parallel.
//!
//! Uses the synchronous `postgres` client: the receiver calls its store
//! from one dedicated thread, never from inside the async runtime.

use motcua_protocol::{ChainHead, DeviceId, Enrollment, Hash32, UtcTime};
use postgres::{Client, NoTls, Row, Transaction};

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
    head_seq   BIGINT NOT NULL DEFAULT 0,
    head_hash  BYTEA NOT NULL,
    last_seen  TEXT
);
CREATE TABLE IF NOT EXISTS keys (
    kid        BYTEA PRIMARY KEY,
    device     TEXT NOT NULL REFERENCES devices (device),
    public_key BYTEA NOT NULL,
    added_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    device      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    prev        BYTEA NOT NULL,
    kid         BYTEA NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       BOOLEAN NOT NULL,
    kind        TEXT NOT NULL,
    bytes       BYTEA NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE IF NOT EXISTS held (
    device      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    prev        BYTEA NOT NULL,
    kid         BYTEA NOT NULL,
    signed_at   TEXT NOT NULL,
    clock       BOOLEAN NOT NULL,
    kind        TEXT NOT NULL,
    bytes       BYTEA NOT NULL,
    topic       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device, seq, hash)
);
CREATE TABLE IF NOT EXISTS device_state (
    device    TEXT PRIMARY KEY REFERENCES devices (device),
    online    BOOLEAN,
    status_at TEXT,
    health    BYTEA,
    health_at TEXT
);
CREATE TABLE IF NOT EXISTS down_messages (
    topic        TEXT PRIMARY KEY,
    number       BIGINT NOT NULL,
    message      BYTEA NOT NULL,
    published_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS status_updates (
    id     BIGSERIAL PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (device),
    code   TEXT NOT NULL,
    status SMALLINT NOT NULL,
    at     TEXT NOT NULL,
    by     TEXT NOT NULL,
    note   TEXT
);
CREATE INDEX IF NOT EXISTS status_updates_device ON status_updates (device, id);
CREATE TABLE IF NOT EXISTS alerts (
    id     BIGSERIAL PRIMARY KEY,
    at     TEXT NOT NULL,
    device TEXT,
    topic  TEXT NOT NULL,
    reason TEXT NOT NULL,
    seq    BIGINT,
    detail TEXT NOT NULL,
    bytes  BYTEA NOT NULL
);
";

/// The PostgreSQL backend.
pub struct PgStore {
    client: Client,
}

impl PgStore {
    /// Connects to `url` and creates the tables when missing.
    pub fn connect(url: &str) -> Result<PgStore> {
        let mut client = Client::connect(url, NoTls)?;
        // Serialise concurrent first starts of several receivers.
        let mut tx = client.transaction()?;
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7346519)",
        )?;
        tx.batch_execute(SCHEMA)?;
        tx.commit()?;
        Ok(PgStore { client })
    }
}

struct Tx<'a, 'c>(&'a mut Transaction<'c>);

fn i(v: u64) -> i64 {
    // Seqs are at most 2^53 - 1 (checked by the protocol), so they fit.
    v as i64
}

impl ChainTx for Tx<'_, '_> {
    fn lock_device(&mut self, device: &DeviceId) -> Result<Option<(ChainHead, bool)>> {
        let row = self.0.query_opt(
            "SELECT head_seq, head_hash, revoked_at IS NOT NULL FROM devices WHERE device = $1 FOR UPDATE",
            &[&device.as_str()],
        )?;
        row.map(|r| {
            Ok((
                ChainHead {
                    seq: seq_from(r.get(0), "head_seq")?,
                    hash: hash_from(r.get(1), "head_hash")?,
                },
                r.get(2),
            ))
        })
        .transpose()
    }

    fn stored_hash(&mut self, device: &DeviceId, seq: u64) -> Result<Option<Hash32>> {
        let row = self.0.query_opt(
            "SELECT hash FROM records WHERE device = $1 AND seq = $2",
            &[&device.as_str(), &i(seq)],
        )?;
        row.map(|r| hash_from(r.get(0), "hash")).transpose()
    }

    fn insert_record(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        self.0.execute(
            "INSERT INTO records (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &device.as_str(),
                &i(item.seq),
                &&item.hash.0[..],
                &&item.prev.0[..],
                &&item.kid.0[..],
                &item.at.to_string(),
                &item.clock,
                &item.kind,
                &item.bytes,
                &now.to_string(),
            ],
        )?;
        Ok(())
    }

    fn set_head(&mut self, device: &DeviceId, head: &ChainHead, now: &UtcTime) -> Result<()> {
        self.0.execute(
            "UPDATE devices SET head_seq = $1, head_hash = $2, last_seen = $3 WHERE device = $4",
            &[
                &i(head.seq),
                &&head.hash.0[..],
                &now.to_string(),
                &device.as_str(),
            ],
        )?;
        Ok(())
    }

    fn held_count(&mut self, device: &DeviceId) -> Result<u64> {
        let r = self.0.query_one(
            "SELECT count(*) FROM held WHERE device = $1",
            &[&device.as_str()],
        )?;
        seq_from(r.get(0), "held count")
    }

    fn hold(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        self.0.execute(
            "INSERT INTO held (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, topic, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING",
            &[
                &device.as_str(),
                &i(item.seq),
                &&item.hash.0[..],
                &&item.prev.0[..],
                &&item.kid.0[..],
                &item.at.to_string(),
                &item.clock,
                &item.kind,
                &item.bytes,
                &item.topic,
                &now.to_string(),
            ],
        )?;
        Ok(())
    }

    fn take_held(&mut self, device: &DeviceId, through: u64) -> Result<Vec<Incoming>> {
        let rows = self.0.query(
            "DELETE FROM held WHERE device = $1 AND seq <= $2
             RETURNING seq, hash, prev, kid, signed_at, clock, kind, bytes, topic",
            &[&device.as_str(), &i(through)],
        )?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Incoming {
                    seq: seq_from(r.get(0), "held seq")?,
                    hash: hash_from(r.get(1), "held hash")?,
                    prev: hash_from(r.get(2), "held prev")?,
                    kid: kid_from(r.get(3))?,
                    at: UtcTime::parse(r.get(4)).map_err(|e| StoreError::Corrupt(e.0))?,
                    clock: r.get(5),
                    kind: r.get(6),
                    bytes: r.get(7),
                    topic: r.get(8),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|x| x.seq);
        Ok(out)
    }

    fn alert(&mut self, a: &Alert) -> Result<()> {
        self.0.execute(INSERT_ALERT, &alert_params(a).as_params())?;
        Ok(())
    }
}

const INSERT_ALERT: &str = "INSERT INTO alerts (at, device, topic, reason, seq, detail, bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

struct AlertParams<'a> {
    at: String,
    seq: Option<i64>,
    a: &'a Alert,
}

fn alert_params(a: &Alert) -> AlertParams<'_> {
    AlertParams {
        at: a.at.to_string(),
        seq: a.seq.map(i),
        a,
    }
}

impl AlertParams<'_> {
    fn as_params(&self) -> [&(dyn postgres::types::ToSql + Sync); 7] {
        [
            &self.at,
            &self.a.device,
            &self.a.topic,
            &self.a.reason,
            &self.seq,
            &self.a.detail,
            &self.a.bytes,
        ]
    }
}

const DEVICE_COLUMNS: &str = "device, added_at, revoked_at, head_seq, head_hash, last_seen";

fn to_device(client: &mut Client, r: &Row) -> Result<Device> {
    let device: String = r.get(0);
    let keys = client
        .query(
            "SELECT kid, public_key, added_at FROM keys WHERE device = $1 ORDER BY added_at, kid",
            &[&device],
        )?
        .iter()
        .map(|k| {
            Ok(DeviceKey {
                kid: kid_from(k.get(0))?,
                key: key_from(k.get(1))?,
                added_at: k.get(2),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Device {
        device: device
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("stored device id: {e}")))?,
        added_at: r.get(1),
        revoked_at: r.get(2),
        head: ChainHead {
            seq: seq_from(r.get(3), "head_seq")?,
            hash: hash_from(r.get(4), "head_hash")?,
        },
        last_seen: r.get(5),
        keys,
    })
}

impl super::Store for PgStore {
    fn enroll(
        &mut self,
        e: &Enrollment,
        now: &UtcTime,
    ) -> Result<std::result::Result<Enrolled, EnrollError>> {
        let mut tx = self.client.transaction()?;
        // Two operators enrolling at once must not both insert the device.
        tx.batch_execute("LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE")?;
        let kid = &e.kid().0[..];
        if let Some(r) = tx.query_opt("SELECT device FROM keys WHERE kid = $1", &[&kid])? {
            let owner: String = r.get(0);
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
        let revoked = tx.query_opt(
            "SELECT revoked_at IS NOT NULL FROM devices WHERE device = $1",
            &[&e.device.as_str()],
        )?;
        let outcome = match revoked.map(|r| r.get::<_, bool>(0)) {
            Some(true) => return Ok(Err(EnrollError::Revoked(e.device.clone()))),
            Some(false) => Enrolled::NewKey,
            None => {
                tx.execute(
                    "INSERT INTO devices (device, added_at, head_seq, head_hash) VALUES ($1, $2, 0, $3)",
                    &[&e.device.as_str(), &now.to_string(), &&Hash32::ZERO.0[..]],
                )?;
                Enrolled::NewDevice
            }
        };
        tx.execute(
            "INSERT INTO keys (kid, device, public_key, added_at) VALUES ($1, $2, $3, $4)",
            &[
                &kid,
                &e.device.as_str(),
                &&e.key.as_bytes()[..],
                &now.to_string(),
            ],
        )?;
        tx.commit()?;
        Ok(Ok(outcome))
    }

    fn revoke(&mut self, device: &DeviceId, now: &UtcTime) -> Result<bool> {
        let n = self.client.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE device = $2",
            &[&now.to_string(), &device.as_str()],
        )?;
        Ok(n == 1)
    }

    fn device(&mut self, device: &DeviceId) -> Result<Option<Device>> {
        let row = self.client.query_opt(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device = $1"),
            &[&device.as_str()],
        )?;
        row.map(|r| to_device(&mut self.client, &r)).transpose()
    }

    fn devices(&mut self) -> Result<Vec<Device>> {
        let rows = self.client.query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device"),
            &[],
        )?;
        rows.iter()
            .map(|r| to_device(&mut self.client, r))
            .collect()
    }

    fn accept(&mut self, device: &DeviceId, items: &[Incoming], now: &UtcTime) -> Result<Accepted> {
        let mut tx = self.client.transaction()?;
        let accepted = accept::accept(&mut Tx(&mut tx), device, items, now)?;
        tx.commit()?;
        Ok(accepted)
    }

    fn alert(&mut self, alert: &Alert) -> Result<()> {
        self.client
            .execute(INSERT_ALERT, &alert_params(alert).as_params())?;
        Ok(())
    }

    fn alerts(&mut self, after: i64, limit: u32) -> Result<Vec<StoredAlert>> {
        self.client
            .query(
                "SELECT id, at, device, topic, reason, seq, detail, bytes FROM alerts
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                AlertRow {
                    id: r.get(0),
                    at: r.get(1),
                    device: r.get(2),
                    topic: r.get(3),
                    reason: r.get(4),
                    seq: r.get(5),
                    detail: r.get(6),
                    bytes: r.get(7),
                }
                .into_stored()
            })
            .collect()
    }

    fn records(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<Record>> {
        self.client
            .query(
                "SELECT seq, hash, prev, kid, bytes FROM records
                 WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&device.as_str(), &i(after), &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(Record {
                    seq: seq_from(r.get(0), "seq")?,
                    hash: hash_from(r.get(1), "hash")?,
                    prev: hash_from(r.get(2), "prev")?,
                    kid: kid_from(r.get(3))?,
                    bytes: r.get(4),
                })
            })
            .collect()
    }

    fn set_presence(&mut self, device: &DeviceId, online: bool, now: &UtcTime) -> Result<bool> {
        let n = self.client.execute(
            "INSERT INTO device_state (device, online, status_at)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = $1)
             ON CONFLICT (device) DO UPDATE SET online = excluded.online, status_at = excluded.status_at",
            &[&device.as_str(), &online, &now.to_string()],
        )?;
        Ok(n == 1)
    }

    fn put_health(&mut self, device: &DeviceId, report: &[u8], now: &UtcTime) -> Result<bool> {
        let n = self.client.execute(
            "INSERT INTO device_state (device, health, health_at)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = $1)
             ON CONFLICT (device) DO UPDATE SET health = excluded.health, health_at = excluded.health_at",
            &[&device.as_str(), &report, &now.to_string()],
        )?;
        Ok(n == 1)
    }

    fn states(&mut self) -> Result<Vec<DeviceState>> {
        let rows = self.client.query(
            "SELECT device, online, status_at, health, health_at FROM device_state ORDER BY device",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeviceState {
                device: r.get(0),
                online: r.get(1),
                status_at: r.get(2),
                health: r.get(3),
                health_at: r.get(4),
            })
            .collect())
    }

    fn alert_counts(&mut self) -> Result<Vec<AlertCount>> {
        let rows = self.client.query(
            "SELECT device, reason, count(*) FROM alerts WHERE device IS NOT NULL
             GROUP BY device, reason ORDER BY device, reason",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AlertCount {
                    device: r.get(0),
                    reason: r.get(1),
                    count: seq_from(r.get(2), "count")?,
                })
            })
            .collect()
    }

    fn down_last(&mut self, topic: &str) -> Result<Option<(u64, Vec<u8>)>> {
        let row = self.client.query_opt(
            "SELECT number, message FROM down_messages WHERE topic = $1",
            &[&topic],
        )?;
        row.map(|r| Ok((seq_from(r.get(0), "number")?, r.get(1))))
            .transpose()
    }

    fn down_put(
        &mut self,
        topic: &str,
        number: u64,
        message: &[u8],
        now: &UtcTime,
    ) -> Result<bool> {
        let n = self.client.execute(
            "INSERT INTO down_messages (topic, number, message, published_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (topic) DO UPDATE SET number = $2, message = $3, published_at = $4
             WHERE down_messages.number < $2",
            &[&topic, &i(number), &message, &now.to_string()],
        )?;
        Ok(n == 1)
    }

    fn down_all(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .client
            .query(
                "SELECT topic, message FROM down_messages ORDER BY topic",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn add_update(&mut self, device: &DeviceId, u: &PendingUpdate) -> Result<u64> {
        let r = self.client.query_one(
            "INSERT INTO status_updates (device, code, status, at, by, note)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &device.as_str(),
                &u.code,
                &i16::from(u.status),
                &u.at,
                &u.by,
                &u.note,
            ],
        )?;
        seq_from(r.get(0), "update id")
    }

    fn updates(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<PendingUpdate>> {
        self.client
            .query(
                "SELECT id, code, status, at, by, note FROM status_updates
                 WHERE device = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&device.as_str(), &i(after), &i64::from(limit)],
            )?
            .iter()
            .map(|r| {
                Ok(PendingUpdate {
                    id: seq_from(r.get(0), "update id")?,
                    code: r.get(1),
                    status: u8::try_from(r.get::<_, i16>(2))
                        .map_err(|_| StoreError::Corrupt("a status out of range".into()))?,
                    at: r.get(3),
                    by: r.get(4),
                    note: r.get(5),
                })
            })
            .collect()
    }

    fn daily_dossiers(&mut self, since: &UtcTime) -> Result<Vec<(String, String, u64)>> {
        self.client
            .query(
                "SELECT device, to_char(signed_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD') AS day,
                        count(*)
                 FROM records WHERE kind = 'dossier.created' AND signed_at >= $1
                 GROUP BY device, day ORDER BY day, device",
                &[&since.to_string()],
            )?
            .iter()
            .map(|r| Ok((r.get(0), r.get(1), seq_from(r.get(2), "count")?)))
            .collect()
    }

    fn daily_lag(&mut self, since: &UtcTime) -> Result<Vec<(String, f64, f64)>> {
        Ok(self
            .client
            .query(
                "SELECT day, avg(lag)::float8, max(lag)::float8 FROM (
                    SELECT to_char(signed_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD') AS day,
                           extract(epoch FROM received_at::timestamptz - signed_at::timestamptz) AS lag
                    FROM records WHERE clock AND signed_at >= $1) l
                 GROUP BY day ORDER BY day",
                &[&since.to_string()],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn export(
        &mut self,
        from: &UtcTime,
        to: &UtcTime,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<ExportRow>> {
        let (d, s) = after.map_or(("", 0), |(d, s)| (d, i(s)));
        self.client
            .query(
                "SELECT device, seq, kind, signed_at, clock, received_at, bytes FROM records
                 WHERE signed_at >= $1 AND signed_at < $2 AND (device > $3 OR (device = $3 AND seq > $4))
                 ORDER BY device, seq LIMIT $5",
                &[
                    &from.to_string(),
                    &to.to_string(),
                    &d,
                    &s,
                    &i64::from(limit),
                ],
            )?
            .iter()
            .map(|r| {
                Ok(ExportRow {
                    device: r.get(0),
                    seq: seq_from(r.get(1), "seq")?,
                    kind: r.get(2),
                    signed_at: r.get(3),
                    clock: r.get(4),
                    received_at: r.get(5),
                    bytes: r.get(6),
                })
            })
            .collect()
    }

    fn totals(&mut self) -> Result<Totals> {
        let r = self.client.query_one(
            "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM records),
                    (SELECT count(*) FROM held), (SELECT count(*) FROM alerts)",
            &[],
        )?;
        Ok(Totals {
            devices: seq_from(r.get(0), "count")?,
            records: seq_from(r.get(1), "count")?,
            held: seq_from(r.get(2), "count")?,
            alerts: seq_from(r.get(3), "count")?,
        })
    }
}
