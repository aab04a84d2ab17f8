//! The timestamp format of the `at` fields: RFC 3339, UTC, millisecond
//! precision, written `2026-11-26T08:15:00.000Z`.
//!
//! This crate never reads the clock: callers pass the time in, so the agent
//! can say separately (the `clock` field) whether its clock was known to be
//! synchronised when it stamped a record.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A UTC instant with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(OffsetDateTime);

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// Why a string is not a valid `at` timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not RFC 3339 in UTC (expected e.g. 2026-11-26T08:15:00.000Z)")]
pub struct TimeParseError(pub String);

impl UtcTime {
    /// The instant `t`, converted to UTC and truncated to milliseconds.
    pub fn new(t: OffsetDateTime) -> UtcTime {
        let t = t.to_offset(UtcOffset::UTC);
        let ms = t.millisecond();
        UtcTime(
            t.replace_millisecond(ms)
                .expect("a millisecond read from a valid time is valid"),
        )
    }

    /// Milliseconds since the Unix epoch.
    pub fn from_unix_millis(ms: i64) -> Option<UtcTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .map(UtcTime)
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// The underlying `time` value.
    pub fn get(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses the wire form. Any RFC 3339 time whose offset is `Z` or
    /// `+00:00` is accepted; sub-millisecond digits are truncated.
    pub fn parse(s: &str) -> Result<UtcTime, TimeParseError> {
        // RFC 3339 allows "-00:00" for "offset unknown": not UTC. Only "Z"
        // and "+00:00" say UTC; and the separator must be "T".
        let utc_suffix = s.ends_with('Z') || s.ends_with('z') || s.ends_with("+00:00");
        if !utc_suffix || !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
            return Err(TimeParseError(s.to_owned()));
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimeParseError(s.to_owned()))?;
        if t.offset() != UtcOffset::UTC {
            return Err(TimeParseError(s.to_owned()));
        }
        Ok(UtcTime::new(t))
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.format(FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcTime({self})")
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        UtcTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = UtcTime::from_unix_millis(1_764_144_900_123).expect("in range");
        assert_eq!(t.to_string(), "2025-11-26T08:15:00.123Z");
        assert_eq!(UtcTime::parse(&t.to_string()), Ok(t));
    }

    #[test]
    fn the_epoch_of_a_box_without_rtc_is_representable() {
        let t = UtcTime::from_unix_millis(0).expect("epoch");
        assert_eq!(t.to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn non_utc_offsets_are_refused() {
        assert!(UtcTime::parse("2026-11-26T15:15:00.000+07:00").is_err());
        assert!(UtcTime::parse("2026-11-26 08:15:00").is_err());
        assert!(UtcTime::parse("2026-11-26T08:15:00+00:00").is_ok());
        assert!(
            UtcTime::parse("2026-11-26T08:15:00-00:00").is_err(),
            "offset unknown is not UTC"
        );
        assert!(UtcTime::parse("2026-11-26 08:15:00Z").is_err());
    }
}
