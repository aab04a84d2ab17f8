//! The embedded backend: one SQLite file, WAL, `synchronous=FULL`.
//!
//! Several receiver processes on one machine may share the file: every
//! write transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's
//! write lock before the device's head is read, and a busy timeout makes
//! the others wait for it.
//!
//! Only the connection lives here; the operations are in
//! [`super::ops`], the dialect in [`super::sql`]. Statements are prepared
//! once per connection (`prepare_cached`) and their parameters bound in
//! place.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::ops::SqlStore;
use super::sql::{self, Conn, Dialect, Param, Row};
use super::{Result, StoreError};

/// The SQLite backend.
pub type SqliteStore = SqlStore<SqliteConn>;

/// One connection to the SQLite file.
pub struct SqliteConn(Connection);

impl SqliteStore {
    /// Opens or creates the database at `path` (and its directory), and
    /// brings its schema up to date.
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
        SqlStore::new(SqliteConn(conn))
    }
}

impl SqliteConn {
    fn bound(&self, text: &str, params: &[&dyn Param]) -> Result<rusqlite::CachedStatement<'_>> {
        let mut stmt = self.0.prepare_cached(text)?;
        for (n, p) in params.iter().enumerate() {
            stmt.raw_bind_parameter(n + 1, p.sqlite())?;
        }
        Ok(stmt)
    }
}

impl Conn for SqliteConn {
    const DIALECT: Dialect = sql::SQLITE;

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn execute(&mut self, sql: &sql::Sql, params: &[&dyn Param]) -> Result<u64> {
        let n = self.bound(sql.sqlite, params)?.raw_execute()?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        sql: &sql::Sql,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self.bound(sql.sqlite, params)?;
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next()? {
            each(&Row::Sqlite(r))?;
        }
        Ok(())
    }
}
