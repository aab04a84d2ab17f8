//! Dates and times as clerks read and type them: `dd/mm/yyyy`, Vietnam
//! time (Asia/Ho_Chi_Minh, UTC+7). Shared by the command line and the
//! kiosk.

use motcua_protocol::UtcTime;

use crate::domain::VIETNAM;
use crate::store::reference::{self, parse_day};

/// `HH:MM dd/mm/yyyy`, Vietnam time.
pub fn local_time(t: &UtcTime) -> String {
    in_vietnam(
        t,
        time::macros::format_description!("[hour]:[minute] [day]/[month]/[year]"),
    )
}

/// A procedure's legal processing time as the forms say it: "Trong ngày"
/// (within the day) for 0 working days, else "N ngày làm việc".
pub fn legal_time(working_days: u16) -> String {
    if working_days == 0 {
        "Trong ngày".to_owned()
    } else {
        format!("{working_days} ngày làm việc")
    }
}

/// `dd/mm/yyyy`, Vietnam time.
pub fn local_date(t: &UtcTime) -> String {
    in_vietnam(t, time::macros::format_description!("[day]/[month]/[year]"))
}

/// `t` in Vietnam time as `format` writes it; its RFC 3339 form should
/// formatting fail (it cannot for these descriptions: every component is
/// present).
fn in_vietnam(t: &UtcTime, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    t.get()
        .to_offset(VIETNAM)
        .format(format)
        .unwrap_or_else(|_| t.to_string())
}

/// `dd/mm/yyyy` or `yyyy-mm-dd` to `yyyy-mm-dd`.
pub fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(d) = parse_day(s) {
        return Some(reference::format_day(d));
    }
    let mut parts = s.split('/');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    parse_day(&format!("{y:0>4}-{m:0>2}-{d:0>2}")).map(reference::format_day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_shown_in_vietnam() {
        // 18:30 UTC is 01:30 the next day in Vietnam.
        let t = UtcTime::new(datetime!(2026-11-26 18:30:15.250 UTC));
        assert_eq!(local_time(&t), "01:30 27/11/2026");
        assert_eq!(local_date(&t), "27/11/2026");
    }

    #[test]
    fn typed_dates_are_read_both_ways() {
        assert_eq!(parse_date("26/11/2026").as_deref(), Some("2026-11-26"));
        assert_eq!(parse_date(" 2026-11-26 ").as_deref(), Some("2026-11-26"));
        assert_eq!(parse_date("1/2/2026").as_deref(), Some("2026-02-01"));
        assert_eq!(parse_date("31/02/2026"), None);
    }
}
