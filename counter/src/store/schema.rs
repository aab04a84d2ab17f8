//! Opening the database: file mode, pragmas, integrity check, migrations.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Step, StoreError};

/// The newest schema version this build writes.
pub const VERSION: i64 = 4;

const V1: &str = "
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    device_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE keys (
    kid BLOB PRIMARY KEY,
    public_key BLOB NOT NULL,
    first_seq INTEGER NOT NULL
);
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    prev BLOB NOT NULL CHECK (length(prev) = 32),
    kind TEXT NOT NULL,
    dossier_code TEXT,
    at TEXT NOT NULL,
    envelope BLOB,
    synced INTEGER NOT NULL DEFAULT 0 CHECK (synced IN (0, 1))
);
CREATE INDEX journal_unsynced ON journal (seq) WHERE synced = 0;
CREATE INDEX journal_dossier ON journal (dossier_code);
CREATE TABLE receipts (
    seq INTEGER PRIMARY KEY,
    receipt BLOB NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE dossiers (
    code TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    received_day TEXT NOT NULL,
    appointment_at TEXT NOT NULL,
    procedure TEXT NOT NULL,
    status INTEGER NOT NULL CHECK (status BETWEEN 1 AND 10),
    staff TEXT NOT NULL,
    name_folded TEXT,
    id_number TEXT,
    data TEXT,
    created_seq INTEGER NOT NULL REFERENCES journal (seq),
    updated_seq INTEGER NOT NULL REFERENCES journal (seq),
    updated_at TEXT NOT NULL,
    pruned_at TEXT
);
CREATE INDEX dossiers_id_number ON dossiers (id_number);
CREATE INDEX dossiers_name ON dossiers (name_folded);
CREATE INDEX dossiers_day ON dossiers (received_day);
CREATE INDEX dossiers_status ON dossiers (status, appointment_at);
CREATE TABLE code_blocks (
    unit TEXT NOT NULL,
    counter INTEGER NOT NULL,
    day TEXT NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (unit, counter, day)
);
CREATE TABLE procedures (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_folded TEXT NOT NULL,
    working_days INTEGER NOT NULL CHECK (working_days >= 0),
    fee INTEGER,
    documents TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE calendar (
    day TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT
);
CREATE TABLE reference (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
";

/// Version 3: idempotency keys (`crate::domain::intent`): each key the
/// first answer it got, so a repeat returns that answer; the receiving
/// units' names and places the DC sends down.
const V3: &str = "
CREATE TABLE intents (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
    code TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES journal (seq),
    result TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX intents_at ON intents (at);
CREATE TABLE units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    place TEXT NOT NULL
);
";

/// Version 4: idempotency keys keep no personal data. Version 3 kept a
/// reception's first answer (the dossier, the applicant's name and ID
/// number in it) and an unkeyed digest of the request; version 4 keeps the
/// code and seq it made and a fingerprint keyed with the device key
/// (`writer::intent`). The keys kept before are forgotten: only a form
/// left open across the upgrade and then sent twice could give two
/// dossiers, and `secure_delete` zeroes the rows.
///
/// It also adds `dossiers.rescheduled_at`: the new appointment given with
/// an apology for a late dossier (form 04, `dossier.rescheduled`); the
/// legal `appointment_at` never moves.
const V4: &str = "
DELETE FROM intents;
ALTER TABLE dossiers ADD COLUMN rescheduled_at TEXT;
";

/// Version 2: what the DC sent down (`crate::downstream`).
const V2: &str = "
CREATE TABLE downstream (
    kind TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    message BLOB NOT NULL,
    applied_at TEXT NOT NULL
);
CREATE TABLE dc_updates (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    seq INTEGER,
    at TEXT NOT NULL
);
";

/// Opens (creating if needed) the database at `path` for reading and
/// writing: directory mode 0700 and file mode 0600 when created, WAL,
/// `synchronous=FULL`, foreign keys, a busy timeout, an integrity check,
/// then migrations.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    prepare_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged_or(path, e, "opening the database"))?;
    configure(&conn, path)?;
    check(&conn, path)?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens a second connection to a database that [`open`] has just opened
/// and checked: pragmas only, no integrity check, no migration.
pub fn open_more(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged_or(path, e, "opening the database"))?;
    configure(&conn, path)?;
    Ok(conn)
}

/// Opens an existing database for reading only (no migration, no write).
pub fn open_read(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no database yet: no record was ever stored",
            ),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| damaged_or(path, e, "opening the database"))?;
    configure(&conn, path)?;
    conn.pragma_update(None, "query_only", true)
        .step("setting query_only")?;
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| damaged_or(path, e, "reading the schema version"))?;
    if v > VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: v,
            supported: VERSION,
        });
    }
    Ok(conn)
}

fn prepare_file(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    if !path.exists() {
        // Created here, with mode 0600, before SQLite writes a byte: the
        // file holds citizens' personal data.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
    }
    Ok(())
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .step("setting the busy timeout")?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
        .map_err(|e| damaged_or(path, e, "enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(format!("the file system refused WAL mode (got {mode})")),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .step("setting synchronous=FULL")?;
    // Pruned personal data is overwritten with zeros, not left in free
    // space: a box at a counter can be stolen.
    conn.pragma_update(None, "secure_delete", true)
        .step("enabling secure delete")?;
    conn.pragma_update(None, "foreign_keys", true)
        .step("enabling foreign keys")?;
    // WAL files are created with the database file's mode; keep them small.
    conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)
        .step("limiting the WAL size")?;
    Ok(())
}

/// Refuses a damaged file. `quick_check` reads every page (O(N)) but skips
/// the slow index cross-checks; `motcua journal verify` does the rest.
fn check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| damaged_or(path, e, "checking integrity"))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(Iterator::collect)
        .map_err(|e| damaged_or(path, e, "checking integrity"))?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else {
        Err(StoreError::Damaged {
            path: path.to_owned(),
            detail: lines.into_iter().take(3).collect::<Vec<_>>().join("; "),
        })
    }
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // Under the write lock, so two processes creating one new store at the
    // same moment cannot both create the tables.
    conn.execute_batch("BEGIN IMMEDIATE")
        .step("locking for migration")?;
    let result = (|| {
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .step("reading the schema version")?;
        if v > VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: v,
                supported: VERSION,
            });
        }
        if v < 1 {
            conn.execute_batch(&format!("{V1} PRAGMA user_version = 1;"))
                .step("creating the schema")?;
        }
        if v < 2 {
            conn.execute_batch(&format!("{V2} PRAGMA user_version = 2;"))
                .step("migrating the schema to version 2")?;
        }
        if v < 3 {
            conn.execute_batch(&format!("{V3} PRAGMA user_version = 3;"))
                .step("migrating the schema to version 3")?;
        }
        if v < 4 {
            conn.execute_batch(&format!("{V4} PRAGMA user_version = 4;"))
                .step("migrating the schema to version 4")?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn
            .execute_batch("COMMIT")
            .step("committing the migration"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// SQLite's "not a database" and "corrupt" errors mean a damaged file;
/// anything else is reported as the step that failed.
fn damaged_or(path: &Path, e: rusqlite::Error, step: &'static str) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.sqlite_error_code() {
        Some(DatabaseCorrupt | NotADatabase) => StoreError::Damaged {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => StoreError::Sqlite { step, source: e },
    }
}

/// Whether the database file exists and is non-empty.
pub fn exists(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() > 0)
}
