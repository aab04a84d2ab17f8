//! The wall clock, and how far to trust it.
//!
//! Counter boxes often have no battery-backed real-time clock: after a power
//! cut the clock can read 2000 or 1970 until NTP answers, and an offline
//! site may never get NTP that day. Every record says what its time came
//! from ([`Quality`]): a synchronised clock, the DC's signed receipt times
//! ([`DcClock`]), or nothing known. The store refuses new records while the
//! clock reads a time that cannot be right (see [`crate::store::writer`]).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use time::{Duration, OffsetDateTime};

/// Where a reading's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// The system clock, known synchronised (NTP).
    Synced,
    /// Derived from the DC's signed receipt times: within `bound_ms`
    /// milliseconds of the DC's clock.
    Dc {
        /// The bound, milliseconds.
        bound_ms: u64,
    },
    /// The system clock, not known to be right.
    Unknown,
}

impl Quality {
    /// The word for it in health reports, `doctor --json` and the DC's
    /// fleet view: `synced`, `dc` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Quality::Synced => "synced",
            Quality::Dc { .. } => "dc",
            Quality::Unknown => "unknown",
        }
    }
}

/// What the clock said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The time, UTC.
    pub at: OffsetDateTime,
    /// Where it came from.
    pub quality: Quality,
}

impl Reading {
    /// A reading of the system clock, synchronised or not.
    pub fn system(at: OffsetDateTime, synced: bool) -> Reading {
        Reading {
            at,
            quality: if synced {
                Quality::Synced
            } else {
                Quality::Unknown
            },
        }
    }

    /// Whether the time came from a synchronised clock.
    pub fn synced(&self) -> bool {
        self.quality == Quality::Synced
    }

    /// Whether the time can be trusted: synchronised, or derived from the
    /// DC.
    pub fn trusted(&self) -> bool {
        self.quality != Quality::Unknown
    }
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
        Reading::system(OffsetDateTime::now_utc(), synced)
    }
}

/// A clock that says what it is told: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<Reading>);

impl ManualClock {
    /// A clock reading `at`, synchronised or not.
    pub fn new(at: OffsetDateTime, synced: bool) -> ManualClock {
        ManualClock(Mutex::new(Reading::system(at, synced)))
    }

    /// Sets the reading.
    pub fn set(&self, at: OffsetDateTime, synced: bool) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Reading::system(at, synced);
    }

    /// Sets the reading, of any quality.
    pub fn set_reading(&self, reading: Reading) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = reading;
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

/// The widest receipt exchange a [`DcClock`] learns from: half of it is the
/// bound of the derived time. A receipt that took longer to come back (a
/// crawling link, a DC working through a backlog) teaches nothing, and the
/// agent connects again to ask anew.
pub const DC_MAX_EXCHANGE: std::time::Duration = std::time::Duration::from_secs(30);

/// How fast the box's own oscillator may drift from the DC's clock between
/// two lessons: 100 parts per million (8.6 s a day), generous for a
/// crystal.
const DRIFT_PPM: u64 = 100;

/// The system clock when it is synchronised; otherwise the DC's time,
/// learnt from its signed receipts; otherwise the system clock, marked
/// unknown.
///
/// A receipt is signed by the DC with its own time (`at`). When the agent
/// asked at `asked` and the verified receipt came back at `answered` (both
/// on the monotonic clock, which no one sets), the DC's clock read `at` at
/// some moment between the two: the derived time is `at` plus half the
/// exchange plus what the monotonic clock counted since, within half the
/// exchange plus the drift since. A newer lesson replaces the one held when
/// its bound is no wider than the held one's is by then. The lesson lives
/// as long as the process (it is kept for `doctor` in a file, see
/// [`DcClock::lesson`]).
#[derive(Debug, Clone, Default)]
pub struct DcClock {
    system: SystemClock,
    lesson: Arc<Mutex<Option<Lesson>>>,
}

/// What one receipt taught.
#[derive(Debug, Clone, Copy)]
struct Lesson {
    /// The DC's time at `mono`, estimated.
    dc_at: OffsetDateTime,
    /// When, on the monotonic clock.
    mono: Instant,
    /// Half the exchange, milliseconds.
    half_ms: u64,
}

impl Lesson {
    /// The DC's time now and its bound in milliseconds.
    fn now(&self, mono_now: Instant) -> (OffsetDateTime, u64) {
        let since = mono_now.saturating_duration_since(self.mono);
        let drift_ms = (since.as_millis() as u64).saturating_mul(DRIFT_PPM) / 1_000_000;
        (
            self.dc_at + since,
            self.half_ms.saturating_add(drift_ms).max(1),
        )
    }
}

impl DcClock {
    /// A clock over `system` that has learnt nothing yet.
    pub fn new(system: SystemClock) -> DcClock {
        DcClock {
            system,
            lesson: Arc::default(),
        }
    }

    /// The system clock under it.
    pub fn system(&self) -> &SystemClock {
        &self.system
    }

    /// Learns from a verified receipt signed at `dc_at` by the DC, asked
    /// for at `asked` and answered at `answered`. Returns whether the
    /// lesson was taken (an exchange over [`DC_MAX_EXCHANGE`], or one
    /// less precise than what is held, is not).
    pub fn learn(&self, dc_at: OffsetDateTime, asked: Instant, answered: Instant) -> bool {
        let exchange = answered.saturating_duration_since(asked);
        if exchange > DC_MAX_EXCHANGE {
            return false;
        }
        let half = exchange / 2;
        let new = Lesson {
            dc_at: dc_at + half,
            mono: answered,
            // Rounded up, and 2 ms more: the receipt's time and the
            // record's are both cut to whole milliseconds.
            half_ms: (half.as_micros().div_ceil(1000) as u64).saturating_add(2),
        };
        let mut held = self
            .lesson
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let better = match &*held {
            None => true,
            Some(old) => new.half_ms <= old.now(answered).1,
        };
        if better {
            *held = Some(new);
        }
        better
    }

    /// The last lesson as kept on disk, at `boot`'s moment.
    pub fn saved(&self, boot: &Boot) -> Option<SavedLesson> {
        self.lesson().map(|dc| SavedLesson {
            boot_id: boot.id.clone(),
            uptime_ms: boot.uptime_ms,
            dc_at: motcua_protocol::UtcTime::new(dc.at).to_string(),
            system_offset_ms: dc.system_offset.whole_milliseconds() as i64,
            bound_ms: dc.bound_ms,
        })
    }

    /// Takes up a lesson kept on disk by an agent earlier in this boot; a
    /// lesson of another boot teaches nothing.
    pub fn restore(&self, saved: &SavedLesson, boot: &Boot) -> bool {
        let Some(dc) = saved.now(boot) else {
            return false;
        };
        *self
            .lesson
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Lesson {
            dc_at: dc.at,
            mono: Instant::now(),
            half_ms: dc.bound_ms,
        });
        true
    }

    /// What the DC's time is now by the last lesson, with its bound in
    /// milliseconds and the difference from the system clock
    /// (DC minus system), whether or not the system clock is synchronised.
    pub fn lesson(&self) -> Option<DcTime> {
        let held = *self
            .lesson
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.map(|l| {
            let (at, bound_ms) = l.now(Instant::now());
            DcTime {
                at,
                bound_ms,
                system_offset: at - OffsetDateTime::now_utc(),
            }
        })
    }
}

/// A moment of this boot: the kernel's boot id and the time since boot
/// (`CLOCK_BOOTTIME`, which no one sets and which counts on through a
/// suspend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// `/proc/sys/kernel/random/boot_id`.
    pub id: String,
    /// Milliseconds since boot.
    pub uptime_ms: u64,
}

/// A lesson as kept on disk: the DC's time at a moment of the boot that
/// learnt it. Counted on from that moment with the time since boot, so a
/// system clock set in between (by hand, or by an NTP client that left no
/// marker) does not move it; of no use in another boot (a box without a
/// battery-backed clock starts each boot from another time).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedLesson {
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// Milliseconds since boot when it was saved.
    pub uptime_ms: u64,
    /// The DC's time then (RFC 3339).
    pub dc_at: String,
    /// DC time minus the system clock then, milliseconds (for people).
    pub system_offset_ms: i64,
    /// The bound then, milliseconds.
    pub bound_ms: u64,
}

impl SavedLesson {
    /// The lesson kept at `path`, if there is a readable one.
    pub fn load(path: &Path) -> Option<SavedLesson> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// The DC's time at `boot`'s moment by this lesson, with its bound
    /// grown by the drift since it was saved; `None` in another boot.
    pub fn now(&self, boot: &Boot) -> Option<DcTime> {
        if self.boot_id != boot.id || boot.uptime_ms < self.uptime_ms {
            return None;
        }
        let saved = motcua_protocol::UtcTime::parse(&self.dc_at).ok()?.get();
        let since_ms = boot.uptime_ms - self.uptime_ms;
        let at = saved + Duration::milliseconds(i64::try_from(since_ms).ok()?);
        let drift_ms = since_ms.saturating_mul(DRIFT_PPM) / 1_000_000;
        Some(DcTime {
            at,
            bound_ms: self.bound_ms.saturating_add(drift_ms),
            system_offset: at - OffsetDateTime::now_utc(),
        })
    }
}

/// The DC's time by a [`DcClock`]'s last lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DcTime {
    /// Now, by the DC's clock.
    pub at: OffsetDateTime,
    /// Within this many milliseconds.
    pub bound_ms: u64,
    /// DC time minus the system clock.
    pub system_offset: Duration,
}

impl Clock for DcClock {
    fn now(&self) -> Reading {
        let system = self.system.now();
        if system.synced() {
            return system;
        }
        match self.lesson() {
            Some(dc) => Reading {
                at: dc.at,
                quality: Quality::Dc {
                    bound_ms: dc.bound_ms,
                },
            },
            None => system,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsynced() -> DcClock {
        DcClock::new(SystemClock {
            marker: Some("/nonexistent/motcua-test-marker".into()),
        })
    }

    #[test]
    fn without_a_lesson_the_system_clock_is_unknown() {
        if Path::new(TIMESYNCD_MARKER).exists() {
            return; // this host is synchronised: covered below
        }
        let c = unsynced();
        assert_eq!(c.now().quality, Quality::Unknown);
        assert!(c.lesson().is_none());
    }

    #[test]
    fn a_receipt_teaches_the_dcs_time_within_half_the_exchange() {
        let c = unsynced();
        let asked = Instant::now();
        let answered = asked + std::time::Duration::from_millis(800);
        let dc_at = time::macros::datetime!(2026-12-07 02:00 UTC);
        assert!(c.learn(dc_at, asked, answered));
        let dc = c.lesson().expect("learnt");
        // Now is a little after `answered` on the monotonic clock... or
        // before it, as the test made `answered` up: never earlier than
        // the estimate at `answered` minus the time the test took.
        let est = dc_at + time::Duration::milliseconds(400);
        assert!(
            (dc.at - est).abs() < time::Duration::seconds(5),
            "{:?}",
            dc.at
        );
        assert_eq!(dc.bound_ms, 402);
        if !Path::new(TIMESYNCD_MARKER).exists() {
            assert_eq!(c.now().quality, Quality::Dc { bound_ms: 402 });
            assert!((c.now().at - est).abs() < time::Duration::seconds(5));
        }
    }

    #[test]
    fn a_slow_exchange_teaches_nothing_and_a_wider_one_does_not_replace() {
        let c = unsynced();
        let t0 = Instant::now();
        let dc_at = time::macros::datetime!(2026-12-07 02:00 UTC);
        assert!(!c.learn(
            dc_at,
            t0,
            t0 + DC_MAX_EXCHANGE + std::time::Duration::from_secs(1)
        ));
        assert!(c.lesson().is_none());
        assert!(c.learn(dc_at, t0, t0 + std::time::Duration::from_millis(200)));
        // A wider exchange right after: the narrow one stays.
        let later = time::macros::datetime!(2030-01-01 00:00 UTC);
        assert!(!c.learn(later, t0, t0 + std::time::Duration::from_secs(10)));
        assert_eq!(c.lesson().expect("held").bound_ms, 102);
        // As narrow: replaces (the newer lesson has drifted less).
        assert!(c.learn(
            dc_at,
            t0 + std::time::Duration::from_millis(300),
            t0 + std::time::Duration::from_millis(500)
        ));
    }

    #[test]
    fn a_saved_lesson_holds_in_its_boot_only_and_counts_time_since_boot() {
        let c = unsynced();
        let t0 = Instant::now();
        let dc_at = OffsetDateTime::now_utc() + Duration::days(3);
        assert!(c.learn(dc_at, t0, t0));
        let at = |ms| Boot {
            id: "boot-a".into(),
            uptime_ms: ms,
        };
        let saved = c.saved(&at(60_000)).expect("a lesson");
        assert!((saved.system_offset_ms - 3 * 86_400_000).abs() < 5_000);
        let text = serde_json::to_string(&saved).expect("json");
        let back: SavedLesson = serde_json::from_str(&text).expect("json");
        let other = unsynced();
        let elsewhere = Boot {
            id: "boot-b".into(),
            uptime_ms: 70_000,
        };
        assert!(!other.restore(&back, &elsewhere));
        assert!(other.lesson().is_none());
        // An hour of this boot later, whatever the system clock says.
        let later = back.now(&at(60_000 + 3_600_000)).expect("same boot");
        let saved_at = motcua_protocol::UtcTime::parse(&back.dc_at)
            .expect("time")
            .get();
        assert_eq!(later.at - saved_at, Duration::hours(1));
        assert_eq!(later.bound_ms, back.bound_ms + 360);
        assert!(back.now(&at(59_000)).is_none(), "time since boot went back");
        assert!(other.restore(&back, &at(60_000)));
        let dc = other.lesson().expect("restored");
        assert!((dc.system_offset - Duration::days(3)).abs() < Duration::seconds(5));
    }

    #[test]
    fn the_bound_grows_with_the_drift() {
        let t0 = Instant::now();
        let l = Lesson {
            dc_at: time::macros::datetime!(2026-12-07 02:00 UTC),
            mono: t0,
            half_ms: 50,
        };
        let (at, bound) = l.now(t0 + std::time::Duration::from_secs(86_400));
        assert_eq!(at, time::macros::datetime!(2026-12-08 02:00 UTC));
        assert_eq!(bound, 50 + 8_640);
    }
}
