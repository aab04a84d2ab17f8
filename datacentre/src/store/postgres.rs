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
//!
//! Only the connection lives here; the operations are in
//! [`super::ops`], the dialect in [`super::sql`]. Each statement is
//! prepared once per connection and kept, so the hot path sends only its
//! parameters.

use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Statement};

use super::Result;
use super::ops::SqlStore;
use super::sql::{self, Conn, Dialect, Param, Row};

/// The PostgreSQL backend.
pub type PgStore = SqlStore<PgConn>;

/// One client connection, with the statements it has prepared.
pub struct PgConn {
    client: Client,
    /// Keyed by the address and length of the statement's `'static` text:
    /// no hashing of the text on the hot path.
    prepared: HashMap<(usize, usize), Statement>,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date.
    pub fn connect(url: &str) -> Result<PgStore> {
        let client = Client::connect(url, NoTls)?;
        SqlStore::new(PgConn {
            client,
            prepared: HashMap::new(),
        })
    }
}

impl PgConn {
    fn prepare(&mut self, text: &'static str) -> Result<Statement> {
        let key = (text.as_ptr() as usize, text.len());
        if let Some(s) = self.prepared.get(&key) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(text)?;
        self.prepared.insert(key, s.clone());
        Ok(s)
    }
}

impl Conn for PgConn {
    const DIALECT: Dialect = sql::POSTGRES;

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn execute(&mut self, sql: &sql::Sql, params: &[&dyn Param]) -> Result<u64> {
        let stmt = self.prepare(sql.pg)?;
        // The synchronous client's `execute` wants a slice; this binds the
        // parameters in place, as `query` does.
        let mut rows = self
            .client
            .query_raw(&stmt, params.iter().map(|p| p.pg()))?;
        while rows.next()?.is_some() {}
        Ok(rows.rows_affected().unwrap_or(0))
    }

    fn query(
        &mut self,
        sql: &sql::Sql,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let stmt = self.prepare(sql.pg)?;
        let mut rows = self
            .client
            .query_raw(&stmt, params.iter().map(|p| p.pg()))?;
        while let Some(r) = rows.next()? {
            each(&Row::Pg(&r))?;
        }
        Ok(())
    }
}
