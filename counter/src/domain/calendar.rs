//! Working days and the appointment time.
//!
//! A procedure's legal processing time is counted in working days. Working
//! days are Monday to Friday, minus public holidays, plus any weekend day
//! the government declares a make-up working day. Holidays and make-up days
//! are reference data the DC publishes (they change every year: Tết moves);
//! the counter caches them and computes offline.
//!
//! Rule (the deployment's, set in `[office]` of agent.toml, see
//! docs/DEPLOY.md):
//! - a procedure of N ≥ 1 working days is due on the N-th working day after
//!   the day of receipt, at the same time of day (received on a day off,
//!   the first working day after it is day 1);
//! - a procedure resolved within the day (0 days, "trong ngày") is due when
//!   the office closes ([`OfficeDay::closes`]) on the day of receipt, or
//!   on the next working day when it was received on a day off, after the
//!   same-day cut-off ([`OfficeDay::same_day_cutoff`], e.g. 15:00) or after
//!   closing time.

use std::collections::BTreeSet;

use time::{Date, Duration, OffsetDateTime, Time, Weekday};

/// The office's day, as the deployment's rule sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficeDay {
    /// When the counter closes: a same-day dossier is due then.
    pub closes: Time,
    /// Received at or after this time, a same-day dossier is due at the
    /// close of the next working day; `None`: only after closing time.
    pub same_day_cutoff: Option<Time>,
}

impl Default for OfficeDay {
    /// 17:00, with a 15:00 cut-off.
    fn default() -> OfficeDay {
        OfficeDay {
            closes: Time::from_hms(17, 0, 0).unwrap_or(Time::MIDNIGHT),
            same_day_cutoff: Time::from_hms(15, 0, 0).ok(),
        }
    }
}

impl OfficeDay {
    /// Whether something received at `t` (Vietnam time) misses the day.
    fn too_late(&self, t: Time) -> bool {
        t >= self.closes || self.same_day_cutoff.is_some_and(|c| t >= c)
    }
}

/// The longest processing time accepted, in working days (about two years):
/// bounds the computation whatever the reference data says.
pub const MAX_WORKING_DAYS: u16 = 500;

/// Holidays and make-up working days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Days off that would otherwise be working days.
    pub holidays: BTreeSet<Date>,
    /// Weekend days declared working days.
    pub workdays: BTreeSet<Date>,
}

impl Calendar {
    /// Whether `d` is a working day.
    pub fn is_working(&self, d: Date) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && !self.holidays.contains(&d)
    }

    /// The first working day after `d`, within five years.
    fn next_working(&self, mut d: Date) -> Option<Date> {
        for _ in 0..(5 * 366) {
            d = d.checked_add(Duration::days(1))?;
            if self.is_working(d) {
                return Some(d);
            }
        }
        None
    }

    /// The appointment for a dossier received at `received` (Vietnam time)
    /// whose procedure takes `days` working days, under `office`'s rule;
    /// `None` when `days` is over [`MAX_WORKING_DAYS`] or the calendar has
    /// no working day for years.
    pub fn appointment(
        &self,
        received: OffsetDateTime,
        days: u16,
        office: &OfficeDay,
    ) -> Option<OffsetDateTime> {
        if days > MAX_WORKING_DAYS {
            return None;
        }
        if days == 0 {
            let mut d = received.date();
            if !self.is_working(d) || office.too_late(received.time()) {
                d = self.next_working(d)?;
            }
            return Some(received.replace_date(d).replace_time(office.closes));
        }
        let mut d = received.date();
        let mut counted = 0;
        // Five years of calendar days is far more than 500 working days.
        for _ in 0..(5 * 366) {
            if counted == days {
                return Some(received.replace_date(d));
            }
            d = d.checked_add(Duration::days(1))?;
            if self.is_working(d) {
                counted += 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn weekends_are_skipped() {
        let cal = Calendar::default();
        let o = OfficeDay::default();
        // Thursday 26 Nov 2026, 09:30 (+07:00)
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(
            cal.appointment(t, 1, &o),
            Some(datetime!(2026-11-27 09:30 +7))
        );
        assert_eq!(
            cal.appointment(t, 2, &o),
            Some(datetime!(2026-11-30 09:30 +7))
        );
        assert_eq!(
            cal.appointment(t, 5, &o),
            Some(datetime!(2026-12-03 09:30 +7))
        );
        // Received on a Saturday: the first working day counts as day 1.
        assert_eq!(
            cal.appointment(datetime!(2026-11-28 08:00 +7), 1, &o),
            Some(datetime!(2026-11-30 08:00 +7))
        );
    }

    #[test]
    fn holidays_are_skipped_and_make_up_days_count() {
        let mut cal = Calendar::default();
        cal.holidays.insert(date!(2026 - 11 - 27));
        let o = OfficeDay::default();
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(
            cal.appointment(t, 1, &o),
            Some(datetime!(2026-11-30 09:30 +7))
        );
        // A same-day dossier received after the cut-off skips the holiday.
        assert_eq!(
            cal.appointment(datetime!(2026-11-26 16:00 +7), 0, &o),
            Some(datetime!(2026-11-30 17:00 +7))
        );
        cal.workdays.insert(date!(2026 - 11 - 28));
        assert_eq!(
            cal.appointment(t, 1, &o),
            Some(datetime!(2026-11-28 09:30 +7))
        );
        assert_eq!(
            cal.appointment(datetime!(2026-11-26 16:00 +7), 0, &o),
            Some(datetime!(2026-11-28 17:00 +7))
        );
    }

    #[test]
    fn same_day_procedures_are_due_at_closing_time_or_the_next_working_day() {
        let cal = Calendar::default();
        let o = OfficeDay::default();
        // Thursday before the cut-off: today at 17:00.
        assert_eq!(
            cal.appointment(datetime!(2026-11-26 14:59 +7), 0, &o),
            Some(datetime!(2026-11-26 17:00 +7))
        );
        // At and after the cut-off, and after closing: the next working day.
        for t in [
            datetime!(2026-11-26 15:00 +7),
            datetime!(2026-11-26 16:00 +7),
            datetime!(2026-11-26 18:30 +7),
        ] {
            assert_eq!(
                cal.appointment(t, 0, &o),
                Some(datetime!(2026-11-27 17:00 +7)),
                "{t}"
            );
        }
        // Friday afternoon: Monday. Saturday morning: Monday.
        assert_eq!(
            cal.appointment(datetime!(2026-11-27 16:00 +7), 0, &o),
            Some(datetime!(2026-11-30 17:00 +7))
        );
        assert_eq!(
            cal.appointment(datetime!(2026-11-28 08:00 +7), 0, &o),
            Some(datetime!(2026-11-30 17:00 +7))
        );
        // Without a cut-off, only closing time moves it.
        let no_cutoff = OfficeDay {
            same_day_cutoff: None,
            ..o
        };
        assert_eq!(
            cal.appointment(datetime!(2026-11-26 16:00 +7), 0, &no_cutoff),
            Some(datetime!(2026-11-26 17:00 +7))
        );
        assert_eq!(
            cal.appointment(datetime!(2026-11-26 17:00 +7), 0, &no_cutoff),
            Some(datetime!(2026-11-27 17:00 +7))
        );
    }

    #[test]
    fn absurd_inputs_end() {
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(
            Calendar::default().appointment(t, MAX_WORKING_DAYS + 1, &OfficeDay::default()),
            None
        );
        let mut never = Calendar::default();
        let mut d = date!(2026 - 11 - 27);
        for _ in 0..(6 * 366) {
            never.holidays.insert(d);
            d = d.next_day().expect("in range");
        }
        assert_eq!(never.appointment(t, 1, &OfficeDay::default()), None);
        let late = datetime!(2026-11-26 16:00 +7);
        assert_eq!(never.appointment(late, 0, &OfficeDay::default()), None);
    }
}
