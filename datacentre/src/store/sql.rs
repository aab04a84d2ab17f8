//! The narrow SQL seam every store operation is written over, and the one
//! place where SQLite and PostgreSQL differ.
//!
//! Operations ([`super::ops`]) and migrations ([`super::schema`]) see only
//! a [`Conn`]: run one statement with parameters, read rows with typed
//! columns, begin and end a transaction. A backend (`sqlite.rs`,
//! `postgres.rs`) implements [`Conn`] and nothing else: opening, pragmas,
//! statement caching.
//!
//! The real differences between the two dialects, all here:
//!
//! - placeholders: statements are written with `$1`, `$2`... once; the
//!   [`sql!`] macro derives the SQLite text (`?1`, `?2`...) at compile
//!   time, so the hot path neither allocates nor rewrites;
//! - column types in DDL (`BLOB`/`BYTEA`, `INTEGER`/`BIGINT`, `BOOLEAN`,
//!   `SMALLINT`, `STRICT` tables), substituted by [`Dialect::ddl`];
//! - ids: `INTEGER PRIMARY KEY AUTOINCREMENT` against `BIGSERIAL` (both
//!   read back with `RETURNING id`);
//! - locking: SQLite's `BEGIN IMMEDIATE` takes the one write lock before
//!   anything is read; PostgreSQL locks the device's row (`FOR UPDATE`),
//!   the registry table for an enrollment, and an advisory lock for a
//!   migration;
//! - date arithmetic of the chart queries ([`DAILY_DOSSIERS`],
//!   [`DAILY_LAG`]).

use super::Result;

/// One statement in both dialects' texts.
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    /// PostgreSQL's text (`$n` placeholders).
    pub pg: &'static str,
    /// SQLite's text (`?n` placeholders).
    pub sqlite: &'static str,
}

/// The SQLite form of a statement written with `$n` placeholders: every
/// `$` becomes `?` (`?NNN` binds exactly parameter NNN). Statements here
/// use `$` for nothing else.
pub const fn to_sqlite<const N: usize>(pg: &str) -> [u8; N] {
    let bytes = pg.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if bytes[i] == b'$' { b'?' } else { bytes[i] };
        i += 1;
    }
    out
}

/// A statement written once with `$n` placeholders, as a [`Sql`] with both
/// texts made at compile time.
macro_rules! sql {
    ($text:expr) => {{
        const PG: &str = $text;
        const BYTES: [u8; PG.len()] = $crate::store::sql::to_sqlite::<{ PG.len() }>(PG);
        const SQLITE: &str = match ::std::str::from_utf8(&BYTES) {
            Ok(s) => s,
            // Replacing one ASCII byte by another keeps UTF-8 valid.
            Err(_) => panic!("statement text is not UTF-8"),
        };
        $crate::store::sql::Sql {
            pg: PG,
            sqlite: SQLITE,
        }
    }};
}
pub(crate) use sql;

/// What differs between the dialects beyond statement texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// Starts a writing transaction.
    pub begin: &'static str,
    /// Run after `begin` by an enrollment, so two operators enrolling at
    /// once cannot both insert one device (empty when `begin` already
    /// holds the write lock).
    pub lock_registry: &'static str,
    /// Run after `begin` by the migration, so several receivers starting
    /// at once migrate one at a time (empty likewise).
    pub lock_schema: &'static str,
    /// Run after `begin` by an access-log append, so two receivers
    /// appending at once take consecutive ids on one chain (empty
    /// likewise).
    pub lock_access_log: &'static str,
    types: [(&'static str, &'static str); 6],
}

/// SQLite: one writer at a time, taken by `BEGIN IMMEDIATE`.
pub const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock_registry: "",
    lock_schema: "",
    lock_access_log: "",
    types: [
        ("{int}", "INTEGER"),
        ("{small}", "INTEGER"),
        ("{bool}", "INTEGER"),
        ("{blob}", "BLOB"),
        ("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        ("{strict}", " STRICT"),
    ],
};

/// PostgreSQL: row and table locks inside ordinary transactions.
pub const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    lock_registry: "LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE",
    lock_schema: "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7346519)",
    lock_access_log: "LOCK TABLE access_log IN EXCLUSIVE MODE",
    types: [
        ("{int}", "BIGINT"),
        ("{small}", "SMALLINT"),
        ("{bool}", "BOOLEAN"),
        ("{blob}", "BYTEA"),
        ("{serial}", "BIGSERIAL PRIMARY KEY"),
        ("{strict}", ""),
    ],
};

impl Dialect {
    /// `ddl` with its type placeholders (`{int}`, `{small}`, `{bool}`,
    /// `{blob}`, `{serial}`, `{strict}`) replaced by this dialect's types.
    pub fn ddl(&self, ddl: &str) -> String {
        self.types
            .iter()
            .fold(ddl.to_owned(), |text, (from, to)| text.replace(from, to))
    }
}

/// Locks the device's row and reads its head.
pub const LOCK_DEVICE: Sql = Sql {
    pg: "SELECT head_seq, head_hash, revoked_at IS NOT NULL FROM devices WHERE device = $1 FOR UPDATE",
    // The IMMEDIATE transaction already holds the write lock.
    sqlite: "SELECT head_seq, head_hash, revoked_at IS NOT NULL FROM devices WHERE device = ?1",
};

/// `dossier.created` records per device and day in Vietnam (UTC+7).
pub const DAILY_DOSSIERS: Sql = Sql {
    pg: "SELECT device, to_char(signed_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD') AS day,
                count(*)
         FROM records WHERE kind = 'dossier.created' AND signed_at >= $1
         GROUP BY device, day ORDER BY day, device",
    sqlite: "SELECT device, date(signed_at, '+7 hours') AS day, count(*) FROM records
             WHERE kind = 'dossier.created' AND signed_at >= ?1
             GROUP BY device, day ORDER BY day, device",
};

/// Average and largest seconds from signing to storing, per day in
/// Vietnam, of records signed by a synchronised clock.
pub const DAILY_LAG: Sql = Sql {
    pg: "SELECT day, avg(lag)::float8, max(lag)::float8 FROM (
            SELECT to_char(signed_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD') AS day,
                   extract(epoch FROM received_at::timestamptz - signed_at::timestamptz) AS lag
            FROM records WHERE clock AND signed_at >= $1) l
         GROUP BY day ORDER BY day",
    sqlite: "SELECT day, avg(lag), max(lag) FROM (
                SELECT date(signed_at, '+7 hours') AS day,
                       (julianday(received_at) - julianday(signed_at)) * 86400.0 AS lag
                FROM records WHERE clock = 1 AND signed_at >= ?1)
             GROUP BY day ORDER BY day",
};

/// A value bound to a placeholder: anything both drivers can write.
pub trait Param: Sync {
    /// As rusqlite binds it.
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    /// As the postgres client binds it.
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        self
    }
}

/// A column type both drivers can read.
pub trait Column: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Column for T {}

/// One result row of either backend.
pub enum Row<'a> {
    /// A SQLite row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A PostgreSQL row.
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0).
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        Ok(match self {
            Row::Sqlite(r) => r.get(i)?,
            Row::Pg(r) => r.try_get(i)?,
        })
    }
}

/// What a backend supplies: one connection, statements in, rows out.
pub trait Conn: Send {
    /// Its dialect.
    const DIALECT: Dialect;

    /// Runs `sql` (no parameters, possibly several statements): DDL,
    /// transaction control.
    fn batch(&mut self, sql: &str) -> Result<()>;

    /// Runs one statement; the number of rows it changed.
    fn execute(&mut self, sql: &Sql, params: &[&dyn Param]) -> Result<u64>;

    /// Runs one query, handing each row to `each` in order.
    fn query(
        &mut self,
        sql: &Sql,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()>;

    /// Every row of a query, read by `f`.
    fn rows<T>(
        &mut self,
        sql: &Sql,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.query(sql, params, &mut |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query, if any, read by `f`.
    fn row<T>(
        &mut self,
        sql: &Sql,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>>
    where
        Self: Sized,
    {
        let mut out = None;
        self.query(sql, params, &mut |r| {
            if out.is_none() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// An open writing transaction; rolled back when dropped uncommitted.
pub struct Tx<'a, C: Conn> {
    conn: &'a mut C,
    open: bool,
}

impl<'a, C: Conn> Tx<'a, C> {
    /// Begins a writing transaction, running `lock` (if not empty) first.
    pub fn begin(conn: &'a mut C, lock: &str) -> Result<Tx<'a, C>> {
        conn.batch(C::DIALECT.begin)?;
        let mut tx = Tx { conn, open: true };
        if !lock.is_empty() {
            tx.batch(lock)?;
        }
        Ok(tx)
    }

    /// Commits. A COMMIT that fails leaves the transaction to `Drop`,
    /// which rolls it back: SQLite keeps a transaction open after some
    /// failed commits (busy, full), and the connection must not carry it
    /// into its next statements.
    pub fn commit(mut self) -> Result<()> {
        self.conn.batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl<C: Conn> std::ops::Deref for Tx<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn
    }
}

impl<C: Conn> std::ops::DerefMut for Tx<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
    }
}

impl<C: Conn> Drop for Tx<'_, C> {
    fn drop(&mut self) {
        if self.open {
            // The error that abandoned the transaction is the one reported;
            // a failed rollback leaves nothing committed either.
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_at_compile_time() {
        const S: Sql = sql!("UPDATE t SET a = $1 WHERE b = $2 AND c = $1");
        assert_eq!(S.pg, "UPDATE t SET a = $1 WHERE b = $2 AND c = $1");
        assert_eq!(S.sqlite, "UPDATE t SET a = ?1 WHERE b = ?2 AND c = ?1");
    }

    #[test]
    fn ddl_types_are_substituted_per_dialect() {
        let ddl = "CREATE TABLE t (id {serial}, n {int}, s {small}, b {bool}, x {blob}){strict};";
        assert_eq!(
            SQLITE.ddl(ddl),
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, s INTEGER, b INTEGER, x BLOB) STRICT;"
        );
        assert_eq!(
            POSTGRES.ddl(ddl),
            "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, n BIGINT, s SMALLINT, b BOOLEAN, x BYTEA);"
        );
    }
}
