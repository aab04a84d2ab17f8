//! Every [`Store`] operation, written once over the [`Conn`] seam: the
//! statements, their parameters, and how rows become values. The backends
//! only supply a connection ([`super::sqlite`], [`super::postgres`]).

use motcua_protocol::{ChainHead, DeviceId, Enrollment, Hash32, RecordKind, UtcTime};

use super::accept::{self, Accepted, ChainTx, Incoming};
use super::sql::{self, Conn, Param, Row, Tx, sql};
use super::{
    Alert, AlertCount, Device, DeviceKey, DeviceState, EnrollError, Enrolled, ExportRow,
    PendingUpdate, Record, Result, Store, StoreError, StoredAlert, Totals, hash_from, key_from,
    kid_from, schema, seq_from,
};
use crate::rights::{self, AccessEntry, NewAccess, Operator, OperatorName};

/// The store over one connection of either backend.
pub struct SqlStore<C: Conn> {
    conn: C,
}

impl<C: Conn> SqlStore<C> {
    /// Wraps `conn`, bringing its schema up to date first.
    pub(crate) fn new(mut conn: C) -> Result<SqlStore<C>> {
        schema::migrate(&mut conn)?;
        Ok(SqlStore { conn })
    }
}

fn i(v: u64) -> i64 {
    // Seqs are at most 2^53 - 1 (checked by the protocol), so they fit.
    v as i64
}

// Typed columns: text parsed once here, a `Corrupt` naming the column
// when it is not what this build writes.

fn parsed<T, E: std::fmt::Display>(
    r: &Row<'_>,
    i: usize,
    column: &str,
    parse: impl FnOnce(String) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    r.get::<Option<String>>(i)?
        .map(|s| parse(s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))))
        .transpose()
}

fn required<T>(v: Option<T>, column: &str) -> Result<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

fn opt_time(r: &Row<'_>, i: usize, column: &str) -> Result<Option<UtcTime>> {
    parsed(r, i, column, |s| UtcTime::parse(&s))
}

fn time(r: &Row<'_>, i: usize, column: &str) -> Result<UtcTime> {
    required(opt_time(r, i, column)?, column)
}

fn opt_device(r: &Row<'_>, i: usize, column: &str) -> Result<Option<DeviceId>> {
    parsed(r, i, column, DeviceId::try_from)
}

fn device(r: &Row<'_>, i: usize, column: &str) -> Result<DeviceId> {
    required(opt_device(r, i, column)?, column)
}

fn kind(r: &Row<'_>, i: usize, column: &str) -> Result<RecordKind> {
    required(parsed(r, i, column, RecordKind::try_from)?, column)
}

const INSERT_ALERT: sql::Sql = sql!(
    "INSERT INTO alerts (at, device, topic, reason, seq, detail, bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7)"
);

fn insert_alert(c: &mut impl Conn, a: &Alert) -> Result<()> {
    c.execute(
        &INSERT_ALERT,
        &[
            &a.at.to_string(),
            &a.device.as_ref().map(DeviceId::as_str),
            &a.topic,
            &a.reason,
            &a.seq.map(i),
            &a.detail,
            &a.bytes,
        ],
    )?;
    Ok(())
}

/// Runs `sql`, an insert of an envelope into `records` (ten parameters)
/// or `held` (the same and its topic).
fn put_envelope(
    c: &mut impl Conn,
    sql: &sql::Sql,
    device: &DeviceId,
    item: &Incoming,
    now: &UtcTime,
    with_topic: bool,
) -> Result<()> {
    let params: [&dyn Param; 11] = [
        &device.as_str(),
        &i(item.seq),
        &&item.hash.0[..],
        &&item.prev.0[..],
        &&item.kid.0[..],
        &item.at.to_string(),
        &item.clock,
        &item.kind.as_str(),
        &item.bytes,
        &now.to_string(),
        &item.topic,
    ];
    c.execute(sql, if with_topic { &params } else { &params[..10] })?;
    Ok(())
}

impl<C: Conn> ChainTx for Tx<'_, C> {
    fn lock_device(&mut self, device: &DeviceId) -> Result<Option<(ChainHead, bool)>> {
        self.row(&sql::LOCK_DEVICE, &[&device.as_str()], |r| {
            Ok((
                ChainHead {
                    seq: seq_from(r.get(0)?, "devices.head_seq")?,
                    hash: hash_from(&r.get::<Vec<u8>>(1)?, "devices.head_hash")?,
                },
                r.get(2)?,
            ))
        })
    }

    fn stored_hash(&mut self, device: &DeviceId, seq: u64) -> Result<Option<Hash32>> {
        const S: sql::Sql = sql!("SELECT hash FROM records WHERE device = $1 AND seq = $2");
        self.row(&S, &[&device.as_str(), &i(seq)], |r| {
            hash_from(&r.get::<Vec<u8>>(0)?, "records.hash")
        })
    }

    fn insert_record(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        const S: sql::Sql = sql!(
            "INSERT INTO records (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        put_envelope(&mut **self, &S, device, item, now, false)
    }

    fn set_head(&mut self, device: &DeviceId, head: &ChainHead, now: &UtcTime) -> Result<()> {
        const S: sql::Sql = sql!(
            "UPDATE devices SET head_seq = $1, head_hash = $2, last_seen = $3 WHERE device = $4"
        );
        self.execute(
            &S,
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
        const S: sql::Sql = sql!("SELECT count(*) FROM held WHERE device = $1");
        let n = self.row(&S, &[&device.as_str()], |r| r.get::<i64>(0))?;
        seq_from(n.unwrap_or(0), "held count")
    }

    fn hold(&mut self, device: &DeviceId, item: &Incoming, now: &UtcTime) -> Result<()> {
        const S: sql::Sql = sql!(
            "INSERT INTO held (device, seq, hash, prev, kid, signed_at, clock, kind, bytes, received_at, topic)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING"
        );
        put_envelope(&mut **self, &S, device, item, now, true)
    }

    fn take_held(&mut self, device: &DeviceId, through: u64) -> Result<Vec<Incoming>> {
        const S: sql::Sql = sql!(
            "DELETE FROM held WHERE device = $1 AND seq <= $2
             RETURNING seq, hash, prev, kid, signed_at, clock, kind, bytes, topic"
        );
        let mut out = self.rows(&S, &[&device.as_str(), &i(through)], |r| {
            Ok(Incoming {
                seq: seq_from(r.get(0)?, "held.seq")?,
                hash: hash_from(&r.get::<Vec<u8>>(1)?, "held.hash")?,
                prev: hash_from(&r.get::<Vec<u8>>(2)?, "held.prev")?,
                kid: kid_from(&r.get::<Vec<u8>>(3)?)?,
                at: time(r, 4, "held.signed_at")?,
                clock: r.get(5)?,
                kind: kind(r, 6, "held.kind")?,
                bytes: r.get(7)?,
                topic: r.get(8)?,
            })
        })?;
        // RETURNING promises no order.
        out.sort_by_key(|x| x.seq);
        Ok(out)
    }

    fn alert(&mut self, a: &Alert) -> Result<()> {
        insert_alert(&mut **self, a)
    }
}

const DEVICE: sql::Sql = sql!(
    "SELECT device, added_at, revoked_at, head_seq, head_hash, last_seen FROM devices WHERE device = $1"
);
const DEVICES: sql::Sql = sql!(
    "SELECT device, added_at, revoked_at, head_seq, head_hash, last_seen FROM devices ORDER BY device"
);

/// A device row, before its keys are read.
fn device_row(r: &Row<'_>) -> Result<Device> {
    Ok(Device {
        device: device(r, 0, "devices.device")?,
        added_at: time(r, 1, "devices.added_at")?,
        revoked_at: opt_time(r, 2, "devices.revoked_at")?,
        head: ChainHead {
            seq: seq_from(r.get(3)?, "head_seq")?,
            hash: hash_from(&r.get::<Vec<u8>>(4)?, "head_hash")?,
        },
        last_seen: opt_time(r, 5, "devices.last_seen")?,
        keys: Vec::new(),
    })
}

fn with_keys(c: &mut impl Conn, mut d: Device) -> Result<Device> {
    const S: sql::Sql =
        sql!("SELECT kid, public_key, added_at FROM keys WHERE device = $1 ORDER BY added_at, kid");
    d.keys = c.rows(&S, &[&d.device.as_str()], |r| {
        Ok(DeviceKey {
            kid: kid_from(&r.get::<Vec<u8>>(0)?)?,
            key: key_from(&r.get::<Vec<u8>>(1)?)?,
            added_at: time(r, 2, "keys.added_at")?,
        })
    })?;
    Ok(d)
}

impl<C: Conn> Store for SqlStore<C> {
    fn enroll(
        &mut self,
        e: &Enrollment,
        now: &UtcTime,
    ) -> Result<std::result::Result<Enrolled, EnrollError>> {
        const OWNER: sql::Sql = sql!("SELECT device FROM keys WHERE kid = $1");
        const REVOKED: sql::Sql =
            sql!("SELECT revoked_at IS NOT NULL FROM devices WHERE device = $1");
        const NEW_DEVICE: sql::Sql = sql!(
            "INSERT INTO devices (device, added_at, head_seq, head_hash) VALUES ($1, $2, 0, $3)"
        );
        const NEW_KEY: sql::Sql =
            sql!("INSERT INTO keys (kid, device, public_key, added_at) VALUES ($1, $2, $3, $4)");
        let mut tx = Tx::begin(&mut self.conn, C::DIALECT.lock_registry)?;
        let kid = &e.kid().0[..];
        if let Some(owner) = tx.row(&OWNER, &[&kid], |r| device(r, 0, "keys.device"))? {
            return Ok(if owner == e.device {
                Ok(Enrolled::AlreadyEnrolled)
            } else {
                Err(EnrollError::KeyOfAnotherDevice {
                    kid: e.kid(),
                    other: owner,
                })
            });
        }
        let revoked = tx.row(&REVOKED, &[&e.device.as_str()], |r| r.get::<bool>(0))?;
        let outcome = match revoked {
            Some(true) => return Ok(Err(EnrollError::Revoked(e.device.clone()))),
            Some(false) => Enrolled::NewKey,
            None => {
                tx.execute(
                    &NEW_DEVICE,
                    &[&e.device.as_str(), &now.to_string(), &&Hash32::ZERO.0[..]],
                )?;
                Enrolled::NewDevice
            }
        };
        tx.execute(
            &NEW_KEY,
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
        const S: sql::Sql =
            sql!("UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE device = $2");
        let n = self
            .conn
            .execute(&S, &[&now.to_string(), &device.as_str()])?;
        Ok(n == 1)
    }

    fn device(&mut self, device: &DeviceId) -> Result<Option<Device>> {
        let row = self.conn.row(&DEVICE, &[&device.as_str()], device_row)?;
        row.map(|d| with_keys(&mut self.conn, d)).transpose()
    }

    fn devices(&mut self) -> Result<Vec<Device>> {
        let rows = self.conn.rows(&DEVICES, &[], device_row)?;
        rows.into_iter()
            .map(|d| with_keys(&mut self.conn, d))
            .collect()
    }

    fn accept(&mut self, device: &DeviceId, items: &[Incoming], now: &UtcTime) -> Result<Accepted> {
        let mut tx = Tx::begin(&mut self.conn, "")?;
        let accepted = accept::accept(&mut tx, device, items, now)?;
        tx.commit()?;
        Ok(accepted)
    }

    fn alert(&mut self, alert: &Alert) -> Result<()> {
        insert_alert(&mut self.conn, alert)
    }

    fn alerts(&mut self, after: i64, limit: u32) -> Result<Vec<StoredAlert>> {
        const S: sql::Sql = sql!(
            "SELECT id, at, device, topic, reason, seq, detail, bytes FROM alerts
             WHERE id > $1 ORDER BY id LIMIT $2"
        );
        self.conn.rows(&S, &[&after, &i64::from(limit)], |r| {
            Ok(StoredAlert {
                id: r.get(0)?,
                alert: Alert {
                    at: time(r, 1, "alerts.at")?,
                    device: opt_device(r, 2, "alerts.device")?,
                    topic: r.get(3)?,
                    reason: r.get(4)?,
                    seq: r
                        .get::<Option<i64>>(5)?
                        .map(|s| seq_from(s, "alert seq"))
                        .transpose()?,
                    detail: r.get(6)?,
                    bytes: r.get(7)?,
                },
            })
        })
    }

    fn records(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<Record>> {
        const S: sql::Sql = sql!(
            "SELECT seq, hash, prev, kid, bytes FROM records
             WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        self.conn
            .rows(&S, &[&device.as_str(), &i(after), &i64::from(limit)], |r| {
                Ok(Record {
                    seq: seq_from(r.get(0)?, "seq")?,
                    hash: hash_from(&r.get::<Vec<u8>>(1)?, "hash")?,
                    prev: hash_from(&r.get::<Vec<u8>>(2)?, "prev")?,
                    kid: kid_from(&r.get::<Vec<u8>>(3)?)?,
                    bytes: r.get(4)?,
                })
            })
    }

    fn totals(&mut self) -> Result<Totals> {
        const S: sql::Sql = sql!(
            "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM records),
                    (SELECT count(*) FROM held), (SELECT count(*) FROM alerts)"
        );
        let t = self.conn.row(&S, &[], |r| {
            Ok(Totals {
                devices: seq_from(r.get(0)?, "count")?,
                records: seq_from(r.get(1)?, "count")?,
                held: seq_from(r.get(2)?, "count")?,
                alerts: seq_from(r.get(3)?, "count")?,
            })
        })?;
        Ok(t.unwrap_or_default())
    }

    fn set_presence(&mut self, device: &DeviceId, online: bool, now: &UtcTime) -> Result<bool> {
        const S: sql::Sql = sql!(
            "INSERT INTO device_state (device, online, status_at)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = $1)
             ON CONFLICT (device) DO UPDATE SET online = excluded.online, status_at = excluded.status_at"
        );
        let n = self
            .conn
            .execute(&S, &[&device.as_str(), &online, &now.to_string()])?;
        Ok(n == 1)
    }

    fn put_health(&mut self, device: &DeviceId, report: &[u8], now: &UtcTime) -> Result<bool> {
        const S: sql::Sql = sql!(
            "INSERT INTO device_state (device, health, health_at)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices WHERE device = $1)
             ON CONFLICT (device) DO UPDATE SET health = excluded.health, health_at = excluded.health_at"
        );
        let n = self
            .conn
            .execute(&S, &[&device.as_str(), &report, &now.to_string()])?;
        Ok(n == 1)
    }

    fn states(&mut self) -> Result<Vec<DeviceState>> {
        const S: sql::Sql = sql!(
            "SELECT device, online, status_at, health, health_at FROM device_state ORDER BY device"
        );
        self.conn.rows(&S, &[], |r| {
            Ok(DeviceState {
                device: device(r, 0, "device_state.device")?,
                online: r.get(1)?,
                status_at: opt_time(r, 2, "device_state.status_at")?,
                health: r.get(3)?,
                health_at: opt_time(r, 4, "device_state.health_at")?,
            })
        })
    }

    fn alert_counts(&mut self) -> Result<Vec<AlertCount>> {
        const S: sql::Sql = sql!(
            "SELECT device, reason, count(*) FROM alerts WHERE device IS NOT NULL
             GROUP BY device, reason ORDER BY device, reason"
        );
        self.conn.rows(&S, &[], |r| {
            Ok(AlertCount {
                device: device(r, 0, "alerts.device")?,
                reason: r.get(1)?,
                count: seq_from(r.get(2)?, "count")?,
            })
        })
    }

    fn down_last(&mut self, topic: &str) -> Result<Option<(u64, Vec<u8>)>> {
        const S: sql::Sql = sql!("SELECT number, message FROM down_messages WHERE topic = $1");
        self.conn.row(&S, &[&topic], |r| {
            Ok((seq_from(r.get(0)?, "number")?, r.get(1)?))
        })
    }

    fn down_put(
        &mut self,
        topic: &str,
        number: u64,
        message: &[u8],
        now: &UtcTime,
    ) -> Result<bool> {
        const S: sql::Sql = sql!(
            "INSERT INTO down_messages (topic, number, message, published_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (topic) DO UPDATE SET number = $2, message = $3, published_at = $4
             WHERE down_messages.number < $2"
        );
        let n = self
            .conn
            .execute(&S, &[&topic, &i(number), &message, &now.to_string()])?;
        Ok(n == 1)
    }

    fn down_all(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        const S: sql::Sql = sql!("SELECT topic, message FROM down_messages ORDER BY topic");
        self.conn.rows(&S, &[], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn add_update(&mut self, device: &DeviceId, u: &PendingUpdate) -> Result<u64> {
        const S: sql::Sql = sql!(
            "INSERT INTO status_updates (device, code, status, at, by, note)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        );
        let id = self.conn.row(
            &S,
            &[
                &device.as_str(),
                &u.code,
                &i16::from(u.status),
                &u.at.to_string(),
                &u.by,
                &u.note,
            ],
            |r| r.get::<i64>(0),
        )?;
        let id = id.ok_or_else(|| StoreError::Corrupt("no id for a queued update".into()))?;
        seq_from(id, "update id")
    }

    fn updates(&mut self, device: &DeviceId, after: u64, limit: u32) -> Result<Vec<PendingUpdate>> {
        const S: sql::Sql = sql!(
            "SELECT id, code, status, at, by, note FROM status_updates
             WHERE device = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        self.conn
            .rows(&S, &[&device.as_str(), &i(after), &i64::from(limit)], |r| {
                Ok(PendingUpdate {
                    id: seq_from(r.get(0)?, "update id")?,
                    code: r.get(1)?,
                    status: u8::try_from(r.get::<i16>(2)?)
                        .map_err(|_| StoreError::Corrupt("a status out of range".into()))?,
                    at: time(r, 3, "status_updates.at")?,
                    by: r.get(4)?,
                    note: r.get(5)?,
                })
            })
    }

    fn daily_dossiers(&mut self, since: &UtcTime) -> Result<Vec<(DeviceId, String, u64)>> {
        self.conn
            .rows(&sql::DAILY_DOSSIERS, &[&since.to_string()], |r| {
                Ok((
                    device(r, 0, "records.device")?,
                    r.get(1)?,
                    seq_from(r.get(2)?, "count")?,
                ))
            })
    }

    fn daily_lag(&mut self, since: &UtcTime) -> Result<Vec<(String, f64, f64)>> {
        self.conn.rows(&sql::DAILY_LAG, &[&since.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    }

    fn export(
        &mut self,
        from: &UtcTime,
        to: &UtcTime,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<ExportRow>> {
        const S: sql::Sql = sql!(
            "SELECT device, seq, kind, signed_at, clock, received_at, bytes FROM records
             WHERE signed_at >= $1 AND signed_at < $2 AND (device > $3 OR (device = $3 AND seq > $4))
             ORDER BY device, seq LIMIT $5"
        );
        let (d, s) = after.map_or(("", 0), |(d, s)| (d, i(s)));
        self.conn.rows(
            &S,
            &[
                &from.to_string(),
                &to.to_string(),
                &d,
                &s,
                &i64::from(limit),
            ],
            |r| {
                Ok(ExportRow {
                    device: device(r, 0, "records.device")?,
                    seq: seq_from(r.get(1)?, "seq")?,
                    kind: kind(r, 2, "records.kind")?,
                    signed_at: time(r, 3, "records.signed_at")?,
                    clock: r.get(4)?,
                    received_at: time(r, 5, "records.received_at")?,
                    bytes: r.get(6)?,
                })
            },
        )
    }

    fn schema_version(&mut self) -> Result<u32> {
        schema::version(&mut self.conn)
    }

    fn operator_put(&mut self, o: &Operator, replace: bool) -> Result<bool> {
        const INSERT: sql::Sql = sql!(
            "INSERT INTO operators (name, hash, roles, added_at, changed_at, disabled_at)
             VALUES ($1, $2, $3, $4, $4, NULL) ON CONFLICT (name) DO NOTHING"
        );
        const REPLACE: sql::Sql = sql!(
            "UPDATE operators SET hash = $2, roles = $3, changed_at = $4, disabled_at = NULL
             WHERE name = $1"
        );
        let roles = o.roles.to_string();
        let args: [&dyn Param; 4] = [
            &o.name.as_str(),
            &o.hash.as_str(),
            &roles.as_str(),
            &o.changed_at.to_string(),
        ];
        if self.conn.execute(&INSERT, &args)? == 1 {
            return Ok(true);
        }
        Ok(replace && self.conn.execute(&REPLACE, &args)? == 1)
    }

    fn operator(&mut self, name: &OperatorName) -> Result<Option<Operator>> {
        const S: sql::Sql = sql!(
            "SELECT name, hash, roles, added_at, changed_at, disabled_at FROM operators WHERE name = $1"
        );
        self.conn.row(&S, &[&name.as_str()], operator_row)
    }

    fn operators(&mut self) -> Result<Vec<Operator>> {
        const S: sql::Sql = sql!(
            "SELECT name, hash, roles, added_at, changed_at, disabled_at FROM operators ORDER BY name"
        );
        self.conn.rows(&S, &[], operator_row)
    }

    fn operator_disable(&mut self, name: &OperatorName, now: &UtcTime) -> Result<bool> {
        const S: sql::Sql =
            sql!("UPDATE operators SET disabled_at = COALESCE(disabled_at, $2) WHERE name = $1");
        Ok(self.conn.execute(&S, &[&name.as_str(), &now.to_string()])? == 1)
    }

    fn access_append(&mut self, e: &NewAccess, now: &UtcTime) -> Result<AccessEntry> {
        const LAST: sql::Sql = sql!("SELECT id, hash FROM access_log ORDER BY id DESC LIMIT 1");
        const INSERT: sql::Sql = sql!(
            "INSERT INTO access_log (id, at, who, what, purpose, records, count, prev, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let mut tx = Tx::begin(&mut self.conn, C::DIALECT.lock_access_log)?;
        let last = tx.row(&LAST, &[], |r| {
            Ok((seq_from(r.get(0)?, "access_log.id")?, r.get::<Vec<u8>>(1)?))
        })?;
        let (id, prev) = match last {
            Some((id, hash)) => (id + 1, hash32(&hash, "access_log.hash")?),
            None => (1, rights::GENESIS),
        };
        let hash = rights::entry_hash(&prev, id, now, e);
        tx.execute(
            &INSERT,
            &[
                &i(id),
                &now.to_string(),
                &e.who,
                &e.what,
                &e.purpose,
                &e.records,
                &i(e.count),
                &prev.as_slice(),
                &hash.as_slice(),
            ],
        )?;
        tx.commit()?;
        Ok(AccessEntry {
            id,
            at: *now,
            who: e.who.clone(),
            what: e.what.clone(),
            purpose: e.purpose.clone(),
            records: e.records.clone(),
            count: e.count,
            prev,
            hash,
        })
    }

    fn access_entries(&mut self, after: u64, limit: u32) -> Result<Vec<AccessEntry>> {
        const S: sql::Sql = sql!(
            "SELECT id, at, who, what, purpose, records, count, prev, hash FROM access_log
             WHERE id > $1 ORDER BY id LIMIT $2"
        );
        self.conn.rows(&S, &[&i(after), &i64::from(limit)], |r| {
            Ok(AccessEntry {
                id: seq_from(r.get(0)?, "access_log.id")?,
                at: time(r, 1, "access_log.at")?,
                who: r.get(2)?,
                what: r.get(3)?,
                purpose: r.get(4)?,
                records: r.get(5)?,
                count: seq_from(r.get(6)?, "access_log.count")?,
                prev: hash32(&r.get::<Vec<u8>>(7)?, "access_log.prev")?,
                hash: hash32(&r.get::<Vec<u8>>(8)?, "access_log.hash")?,
            })
        })
    }
}

fn hash32(bytes: &[u8], column: &str) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{column} is not 32 bytes")))
}

fn operator_row(r: &Row<'_>) -> Result<Operator> {
    Ok(Operator {
        name: required(
            parsed(r, 0, "operators.name", |s| s.parse())?,
            "operators.name",
        )?,
        hash: r.get(1)?,
        roles: required(
            parsed(r, 2, "operators.roles", |s| s.parse())?,
            "operators.roles",
        )?,
        added_at: time(r, 3, "operators.added_at")?,
        changed_at: time(r, 4, "operators.changed_at")?,
        disabled_at: opt_time(r, 5, "operators.disabled_at")?,
    })
}
