//! Working days and the appointment time.
//!
//! A procedure's legal processing time is counted in working days. Working
//! days are Monday to Friday, minus public holidays, plus any weekend day
//! the government declares a make-up working day. Holidays and make-up days
//! are reference data the DC publishes (they change every year: Tết moves);
//! the counter caches them and computes offline.
//!
//! Rule: the appointment is the N-th working day after the day of receipt,
//! at the same time of day; a procedure with 0 days is returned on the spot
//! (appointment = received time).

use std::collections::BTreeSet;

use time::{Date, Duration, OffsetDateTime, Weekday};

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

    /// The appointment for a dossier received at `received` (Vietnam time)
    /// whose procedure takes `days` working days; `None` when `days` is over
    /// [`MAX_WORKING_DAYS`] or the calendar has no working day for years.
    pub fn appointment(&self, received: OffsetDateTime, days: u16) -> Option<OffsetDateTime> {
        if days > MAX_WORKING_DAYS {
            return None;
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
        // Thursday 26 Nov 2026, 09:30 (+07:00)
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(cal.appointment(t, 0), Some(t));
        assert_eq!(cal.appointment(t, 1), Some(datetime!(2026-11-27 09:30 +7)));
        assert_eq!(cal.appointment(t, 2), Some(datetime!(2026-11-30 09:30 +7)));
        assert_eq!(cal.appointment(t, 5), Some(datetime!(2026-12-03 09:30 +7)));
        // Received on a Saturday: the first working day counts as day 1.
        assert_eq!(
            cal.appointment(datetime!(2026-11-28 08:00 +7), 1),
            Some(datetime!(2026-11-30 08:00 +7))
        );
    }

    #[test]
    fn holidays_are_skipped_and_make_up_days_count() {
        let mut cal = Calendar::default();
        cal.holidays.insert(date!(2026 - 11 - 27));
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(cal.appointment(t, 1), Some(datetime!(2026-11-30 09:30 +7)));
        cal.workdays.insert(date!(2026 - 11 - 28));
        assert_eq!(cal.appointment(t, 1), Some(datetime!(2026-11-28 09:30 +7)));
    }

    #[test]
    fn absurd_inputs_end() {
        let t = datetime!(2026-11-26 09:30 +7);
        assert_eq!(
            Calendar::default().appointment(t, MAX_WORKING_DAYS + 1),
            None
        );
        let mut never = Calendar::default();
        let mut d = date!(2026 - 11 - 27);
        for _ in 0..(6 * 366) {
            never.holidays.insert(d);
            d = d.next_day().expect("in range");
        }
        assert_eq!(never.appointment(t, 1), None);
    }
}
