//! The checkpointer: copies committed WAL frames into the database file
//! from its own connection and thread, so no submission waits for a
//! checkpoint (the writer's connection has automatic checkpoints off).

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How long the checkpointer lets a burst of commits run before copying the
/// WAL into the database (and so how large the WAL gets between resets).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Runs until the writer drops its end of `wal_grew`. PASSIVE checkpoints
/// never block the writer or readers.
pub(super) fn run(conn: Connection, wal_grew: Receiver<()>) {
    while wal_grew.recv().is_ok() {
        // Let a burst of commits finish, then copy them in one go; leave at
        // once if the writer stops meanwhile (it checkpoints on its way out).
        let deadline = Instant::now() + CHECKPOINT_EVERY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match wal_grew.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
    }
}
