//! Dates and times as clerks read and type them: `dd/mm/yyyy`, Vietnam
//! time (Asia/Ho_Chi_Minh, UTC+7). Shared by the command line and the
//! kiosk.

use motcua_protocol::UtcTime;

use crate::domain::VIETNAM;
use crate::store::reference::{self, parse_day};

/// `HH:MM dd/mm/yyyy`, Vietnam time, from RFC 3339.
pub fn local_time(t: &str) -> String {
    UtcTime::parse(t)
        .ok()
        .and_then(|u| {
            u.get()
                .to_offset(VIETNAM)
                .format(time::macros::format_description!(
                    "[hour]:[minute] [day]/[month]/[year]"
                ))
                .ok()
        })
        .unwrap_or_else(|| t.to_owned())
}

/// `dd/mm/yyyy`, Vietnam time, from RFC 3339.
pub fn local_date(t: &str) -> String {
    UtcTime::parse(t)
        .ok()
        .and_then(|u| {
            u.get()
                .to_offset(VIETNAM)
                .format(time::macros::format_description!("[day]/[month]/[year]"))
                .ok()
        })
        .unwrap_or_else(|| t.to_owned())
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
