//! The counter's use cases as every front end (the command line, the
//! kiosk's pages, its JSON API) calls them: what day it is at the counter,
//! a lookup as a clerk types it, the procedures on offer with the
//! appointment a dossier received now would get, a status typed as a
//! number. Each rule and each refusal's code and Vietnamese sentence is
//! decided here once; a front end only reads its input and shapes the
//! answer (HTML, JSON, text and an exit code).
//!
//! The writes are the writer's operations themselves
//! ([`WriterHandle::create`](crate::store::writer::WriterHandle::create),
//! `set_status`, `accept_receipt`, and [`crate::downstream`] for what the
//! DC sends down): each already answers an
//! [`Answer`](crate::store::Answer), refusals apart from failures, so
//! nothing here wraps them.
//!
//! Lookups hold personal data (an ID number, a name): [`Lookup`] shows in
//! `Debug` only which criteria are set.

use std::fmt;

use motcua_protocol::UtcTime;
use serde::Serialize;

use crate::clock::Clock;
use crate::dates::{local_date, parse_date};
use crate::domain::VIETNAM;
use crate::domain::calendar::OfficeDay;
use crate::domain::invalid::{Invalid, InvalidInput};
use crate::domain::status::Status;
use crate::store::read::Query;
use crate::store::reference::{self, Procedure, format_day};
use crate::store::{Reader, Refusal, StoreError};

/// The counter's day and time: one reading of the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Today {
    /// Today's date in Vietnam, `YYYY-MM-DD`.
    pub day: String,
    /// Now, UTC.
    pub now: UtcTime,
}

/// Today's date in Vietnam (Asia/Ho_Chi_Minh) and now, read from `clock`.
pub fn today(clock: &dyn Clock) -> Today {
    let at = clock.now().at;
    Today {
        day: format_day(at.to_offset(VIETNAM).date()),
        now: UtcTime::new(at),
    }
}

/// The refusal of a day that is neither `dd/mm/yyyy` nor `yyyy-mm-dd`.
pub const DAY_FORMAT: &str = "day_format";
/// The refusal of a status number outside 1 to 10.
pub const STATUS_RANGE: &str = "status_range";

fn refused(field: &str, code: &'static str, message: &str) -> Refusal {
    Refusal::Invalid(InvalidInput(vec![Invalid::new(field, code, message)]))
}

/// Which day a lookup asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Day {
    /// Any day.
    #[default]
    Any,
    /// The day the clerk typed (`dd/mm/yyyy` or `yyyy-mm-dd`).
    Typed(String),
    /// Today at the counter.
    Today,
}

/// A lookup as a clerk asks it; [`Lookup::query`] turns it into the
/// store's [`Query`] or refuses it.
#[derive(Clone, Default)]
pub struct Lookup {
    /// Free text: a dossier code, an ID number or a name, recognised by
    /// its form (see [`Lookup::query`]).
    pub text: String,
    /// A dossier code or its beginning.
    pub code: Option<String>,
    /// A personal identification number (exact).
    pub id_number: Option<String>,
    /// Part of the applicant's name.
    pub name: Option<String>,
    /// The day received.
    pub day: Day,
    /// Only overdue dossiers.
    pub overdue: bool,
    /// At most this many results.
    pub limit: usize,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookup")
            .field("text", &!self.text.trim().is_empty())
            .field("code", &self.code.is_some())
            .field("id_number", &self.id_number.is_some())
            .field("name", &self.name.is_some())
            .field("day", &!matches!(self.day, Day::Any))
            .field("overdue", &self.overdue)
            .field("limit", &self.limit)
            .finish()
    }
}

impl Lookup {
    /// The store's query: the free text read as a code (a letter first,
    /// one or two dashes, no space: upper-cased), an ID number (12 digits)
    /// or a name; the day parsed. A day typed wrong is refused
    /// ([`DAY_FORMAT`]).
    pub fn query(&self, today: &Today) -> Result<Query, Refusal> {
        let mut q = Query {
            code: self.code.clone(),
            id_number: self.id_number.clone(),
            name: self.name.clone(),
            day: None,
            overdue: self.overdue,
            limit: self.limit,
        };
        let t = self.text.trim();
        if t.is_empty() {
            // Only the other criteria.
        } else if t.len() == 12 && t.bytes().all(|b| b.is_ascii_digit()) {
            q.id_number = Some(t.to_owned());
        } else if t.contains('-')
            && t.as_bytes()[0].is_ascii_alphabetic()
            && t.chars().filter(|c| *c == '-').count() <= 2
            && !t.contains(' ')
        {
            q.code = Some(t.to_uppercase());
        } else {
            q.name = Some(t.to_owned());
        }
        q.day = match &self.day {
            Day::Any => None,
            Day::Today => Some(today.day.clone()),
            Day::Typed(d) => Some(parse_date(d).ok_or_else(|| {
                refused(
                    "day",
                    DAY_FORMAT,
                    "Ngày không hợp lệ: nhập theo dạng dd/mm/yyyy, ví dụ 26/11/2026.",
                )
            })?),
        };
        Ok(q)
    }
}

/// A status typed as its national number (1 to 10), or its refusal
/// ([`STATUS_RANGE`]).
pub fn status(number: u8) -> Result<Status, Refusal> {
    Status::try_from(number)
        .map_err(|_| refused("status", STATUS_RANGE, "Trạng thái phải là số từ 1 đến 10."))
}

/// The refusal of a new appointment that is not a day and a time.
pub const APPOINTMENT_FORMAT: &str = "appointment_format";

/// A new appointment as the clerk typed it (day `yyyy-mm-dd` or
/// `dd/mm/yyyy`, time `HH:MM`, Vietnam time), or its refusal
/// ([`APPOINTMENT_FORMAT`]). That it is later and on a working day is the
/// store's to check (`dossier.rescheduled`).
pub fn new_appointment(day: &str, at: &str) -> Result<time::OffsetDateTime, Refusal> {
    let bad = || {
        refused(
            "to",
            APPOINTMENT_FORMAT,
            "Ngày giờ hẹn mới không hợp lệ: chọn ngày (dd/mm/yyyy) và giờ (HH:MM).",
        )
    };
    let day = parse_date(day)
        .and_then(|d| reference::parse_day(&d))
        .ok_or_else(bad)?;
    let (h, m) = at.trim().split_once(':').ok_or_else(bad)?;
    let (Ok(h), Ok(m)) = (h.parse::<u8>(), m.parse::<u8>()) else {
        return Err(bad());
    };
    let t = time::Time::from_hms(h, m, 0).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(day, t).assume_offset(VIETNAM))
}

/// Whether an apology with a new appointment (form 04) is offered for a
/// dossier in `status` promised for `promised` (its appointment, or the
/// last new one), today being `today`: when the promise falls before the
/// end of today (late already, or due today and not resolved) and the
/// deadline still runs.
pub fn offers_apology(status: Status, promised: &UtcTime, today: &Today) -> bool {
    let Some(day) = reference::parse_day(&today.day) else {
        return false;
    };
    let promised_day = promised.get().to_offset(VIETNAM).date();
    !status.ends_deadline() && promised_day <= day
}

/// A procedure on offer, with the appointment date (`dd/mm/yyyy`) of a
/// dossier received now, if the calendar allows computing it.
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// The procedure.
    #[serde(flatten)]
    pub procedure: Procedure,
    /// The appointment date (`dd/mm/yyyy`) for a dossier received now.
    pub appointment: Option<String>,
    /// The appointment itself (RFC 3339, UTC).
    pub appointment_at: Option<UtcTime>,
}

/// The procedures matching `text` (code or name, with or without
/// diacritics), each with its appointment if received now.
pub fn offers(
    reader: &Reader,
    text: &str,
    today: &Today,
    office: &OfficeDay,
) -> Result<Vec<Offer>, StoreError> {
    let conn = reader.connection();
    let list = reference::search_procedures(conn, text)?;
    let now = today.now.get();
    let cal = reference::calendar(conn, now.to_offset(VIETNAM).date())?;
    Ok(list
        .into_iter()
        .map(|procedure| {
            let at = cal
                .appointment(now.to_offset(VIETNAM), procedure.working_days, office)
                .map(UtcTime::new);
            Offer {
                appointment: at.as_ref().map(local_date),
                appointment_at: at,
                procedure,
            }
        })
        .collect())
}

/// The procedure whose code is exactly `code`, with its appointment.
pub fn offer(
    reader: &Reader,
    code: &str,
    today: &Today,
    office: &OfficeDay,
) -> Result<Option<Offer>, StoreError> {
    Ok(offers(reader, code, today, office)?
        .into_iter()
        .find(|o| o.procedure.code == code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn at_evening() -> Today {
        // 18:30 UTC is already the next day in Vietnam.
        today(&ManualClock::new(datetime!(2026-11-26 18:30 UTC), true))
    }

    #[test]
    fn today_is_the_day_in_vietnam() {
        let t = at_evening();
        assert_eq!(t.day, "2026-11-27");
        assert_eq!(t.now.to_string(), "2026-11-26T18:30:00.000Z");
    }

    fn query(text: &str, day: Day) -> Result<Query, Refusal> {
        Lookup {
            text: text.into(),
            day,
            limit: 10,
            ..Lookup::default()
        }
        .query(&at_evening())
    }

    #[test]
    fn free_text_is_read_as_a_code_an_id_number_or_a_name() {
        let q = query("001190012345", Day::Any).expect("ok");
        assert_eq!(q.id_number.as_deref(), Some("001190012345"));
        let q = query(" h49.12.3-261127-1001 ", Day::Any).expect("ok");
        assert_eq!(q.code.as_deref(), Some("H49.12.3-261127-1001"));
        let q = query("nguyen thi", Day::Any).expect("ok");
        assert_eq!(q.name.as_deref(), Some("nguyen thi"));
        let q = query("", Day::Any).expect("ok");
        assert!(q.code.is_none() && q.id_number.is_none() && q.name.is_none());
        assert_eq!(q.limit, 10);
    }

    #[test]
    fn days_are_today_typed_or_refused() {
        assert_eq!(
            query("", Day::Today).expect("ok").day.as_deref(),
            Some("2026-11-27")
        );
        assert_eq!(
            query("", Day::Typed("26/11/2026".into()))
                .expect("ok")
                .day
                .as_deref(),
            Some("2026-11-26")
        );
        let r = query("", Day::Typed("31/02/2026".into())).expect_err("refused");
        assert!(
            matches!(&r, Refusal::Invalid(i) if i.codes() == [DAY_FORMAT]),
            "{r:?}"
        );
    }

    #[test]
    fn status_numbers_outside_the_table_are_refused() {
        assert_eq!(status(4).expect("ok").get(), 4);
        for n in [0, 11] {
            let r = status(n).expect_err("refused");
            assert!(matches!(&r, Refusal::Invalid(i) if i.codes() == [STATUS_RANGE]));
        }
    }

    #[test]
    fn a_lookup_hides_its_values_in_debug() {
        let l = Lookup {
            text: "Nguyễn".into(),
            id_number: Some("001190012345".into()),
            ..Lookup::default()
        };
        let d = format!("{l:?}");
        assert!(!d.contains("Nguy") && !d.contains("0011"), "{d}");
    }
}
