//! The wall clock, and whether to trust it.
//!
//! Counter boxes often have no battery-backed real-time clock: after a power
//! cut the clock can read 1970 until NTP answers, and an offline site may
//! never get NTP that day. Every record says whether the clock was known
//! synchronised when it was stamped, and the store refuses new records while
//! the clock reads a time that cannot be right (see
//! [`crate::store::writer`]).

use std::path::Path;
use std::sync::Mutex;

use time::OffsetDateTime;

/// What the clock said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The time, UTC.
    pub at: OffsetDateTime,
    /// Whether the system clock was known synchronised (NTP) at the time.
    pub synced: bool,
}

/// A source of time. The store takes one so tests can set the time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Reading;
}

/// The system clock. It counts as synchronised when systemd-timesyncd says
/// so (the file `/run/systemd/timesync/synchronized` exists, created at each
/// successful synchronisation), or when the configured marker file exists
/// (for chrony or ntpd, whose hooks can touch it).
#[derive(Debug, Clone, Default)]
pub struct SystemClock {
    /// An extra marker file that means "synchronised".
    pub marker: Option<std::path::PathBuf>,
}

/// systemd-timesyncd's marker.
pub const TIMESYNCD_MARKER: &str = "/run/systemd/timesync/synchronized";

impl Clock for SystemClock {
    fn now(&self) -> Reading {
        let synced = Path::new(TIMESYNCD_MARKER).exists()
            || self.marker.as_deref().is_some_and(Path::exists);
        Reading {
            at: OffsetDateTime::now_utc(),
            synced,
        }
    }
}

/// A clock that says what it is told: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<Reading>);

impl ManualClock {
    /// A clock reading `at`, synchronised or not.
    pub fn new(at: OffsetDateTime, synced: bool) -> ManualClock {
        ManualClock(Mutex::new(Reading { at, synced }))
    }

    /// Sets the reading.
    pub fn set(&self, at: OffsetDateTime, synced: bool) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Reading { at, synced };
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut r = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.at += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Reading {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
