//! systemd service notifications: readiness, watchdog pings and status.
//!
//! Both binaries run as `Type=notify` units. Outside systemd (no
//! `$NOTIFY_SOCKET`) every call does nothing, so the same binary runs
//! from a shell, in tests and under other supervisors.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    // A failed notification is not a reason to stop serving: systemd
    // restarts a unit that never reports ready or stops pinging.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "systemd notification not sent");
    }
}

/// Tells systemd the service is ready (its store is open).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Watchdog pings for a main loop: [`Watchdog::tick`] on every turn of the
/// loop sends `WATCHDOG=1` (with a status line) at half the interval
/// systemd asked for in `$WATCHDOG_USEC`, so a loop that stops turning
/// gets the service restarted. Does nothing when the unit has no
/// `WatchdogSec=`.
pub struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    /// Reads the interval systemd set for this process, if any: as
    /// sd_watchdog_enabled(3), `$WATCHDOG_USEC`, ignored when
    /// `$WATCHDOG_PID` is set and names another process.
    pub fn from_env() -> Watchdog {
        let every = sd_notify::watchdog_enabled()
            .map(|interval| interval / 2)
            .filter(|d| !d.is_zero());
        Watchdog {
            every,
            last: Instant::now(),
        }
    }

    /// [`Watchdog::from_env`] when `enabled`, else [`Watchdog::disabled`].
    pub fn new(enabled: bool) -> Watchdog {
        if enabled {
            Watchdog::from_env()
        } else {
            Watchdog::disabled()
        }
    }

    /// A watchdog that never pings (not under systemd, or in tests).
    pub fn disabled() -> Watchdog {
        Watchdog {
            every: None,
            last: Instant::now(),
        }
    }

    /// The interval between pings, when enabled.
    pub fn every(&self) -> Option<Duration> {
        self.every
    }

    /// Pings when half the interval has passed; `status` becomes the
    /// unit's status line (`systemctl status`). It must hold no personal
    /// data: counts and seq numbers only.
    pub fn tick(&mut self, status: impl FnOnce() -> String) {
        let Some(every) = self.every else { return };
        if self.last.elapsed() >= every {
            self.last = Instant::now();
            let status = status();
            send(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_watchdog_never_asks_for_its_status() {
        let mut w = Watchdog::disabled();
        assert_eq!(w.every(), None);
        w.tick(|| panic!("not called"));
    }
}
