//! Dossier codes: `UNITCODE-YYMMDD-XXXX` (Circular 01/2018/TT-VPCP art. 19),
//! e.g. `H49.12.3-261126-1007`: the receiving unit's code, the receipt date
//! (Vietnam time), and a 4-digit sequence within that day for that unit.
//!
//! Several counters of one unit work offline and must never hand out the
//! same code, so the daily sequence space is partitioned: counter `c` (1 to
//! 9, set at provisioning) hands out `c001` to `c999`. Codes `0000`-`0999`
//! are left to the unit's other systems (for example an online portal).
//! 999 dossiers per counter per day is several times what a commune counter
//! receives.

use std::fmt;
use std::str::FromStr;

use motcua_protocol::UnitCode;
use time::{Date, Month};

/// A counter's number within its unit, 1 to 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Counter(u8);

impl Counter {
    /// The counter `n`, if 1 to 9.
    pub fn new(n: u8) -> Option<Counter> {
        (1..=9).contains(&n).then_some(Counter(n))
    }

    /// Its number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The first sequence number of this counter's daily block.
    pub fn first(self) -> u16 {
        u16::from(self.0) * 1000 + 1
    }

    /// The last sequence number of this counter's daily block.
    pub fn last(self) -> u16 {
        u16::from(self.0) * 1000 + 999
    }

    /// The sequence number after `last_issued` (the day's last one this
    /// counter handed out, if any), or `None` when the block is used up.
    pub fn next(self, last_issued: Option<u16>) -> Option<u16> {
        match last_issued {
            None => Some(self.first()),
            Some(n) if n < self.first() => Some(self.first()),
            Some(n) if n < self.last() => Some(n + 1),
            Some(_) => None,
        }
    }
}

/// A dossier code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DossierCode {
    /// The receiving unit.
    pub unit: UnitCode,
    /// The receipt date, Vietnam time.
    pub date: Date,
    /// The sequence within the day, 0 to 9999.
    pub seq: u16,
}

impl fmt::Display for DossierCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{:02}{:02}{:02}-{:04}",
            self.unit,
            self.date.year().rem_euclid(100),
            u8::from(self.date.month()),
            self.date.day(),
            self.seq
        )
    }
}

/// Serialised as its text form, as [`fmt::Display`] writes it.
impl serde::Serialize for DossierCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a string is not a dossier code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a dossier code (expected UNITCODE-YYMMDD-XXXX, e.g. H49.12.3-261126-1007)")]
pub struct CodeParseError(pub String);

impl FromStr for DossierCode {
    type Err = CodeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CodeParseError(s.to_owned());
        let mut parts = s.rsplitn(3, '-');
        let (Some(seq), Some(date), Some(unit)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err());
        };
        if seq.len() != 4
            || date.len() != 6
            || !(seq.bytes().chain(date.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| date[r].parse::<u8>().map_err(|_| err());
        let month = Month::try_from(num(2..4)?).map_err(|_| err())?;
        let date = Date::from_calendar_date(2000 + i32::from(num(0..2)?), month, num(4..6)?)
            .map_err(|_| err())?;
        Ok(DossierCode {
            unit: unit.parse().map_err(|_| err())?,
            date,
            seq: seq.parse().map_err(|_| err())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};
    use time::macros::date;

    #[test]
    fn formats_and_parses() {
        let c = DossierCode {
            unit: "H21.65".parse().expect("unit"),
            date: date!(2022 - 09 - 14),
            seq: 11,
        };
        assert_eq!(c.to_string(), "H21.65-220914-0011");
        // JSON carries the text form, as when codes travelled as strings.
        assert_eq!(
            serde_json::to_string(&c).expect("serialises"),
            "\"H21.65-220914-0011\""
        );
        assert_eq!("H21.65-220914-0011".parse::<DossierCode>(), Ok(c));
        for bad in [
            "H21.65-220914-011",
            "H21.65-221314-0011",
            "H21.65-220931-0011",
            "h21-220914-0011",
            "220914-0011",
            "",
        ] {
            assert!(bad.parse::<DossierCode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_block_runs_from_c001_to_c999() {
        let c = Counter::new(3).expect("valid");
        assert_eq!(c.next(None), Some(3001));
        assert_eq!(c.next(Some(3001)), Some(3002));
        assert_eq!(c.next(Some(3998)), Some(3999));
        assert_eq!(c.next(Some(3999)), None);
        assert_eq!(Counter::new(0), None);
        assert_eq!(Counter::new(10), None);
    }

    proptest! {
        /// Counters of one unit allocating in any interleaving, over several
        /// days, never produce one code twice, and every code parses back.
        #[test]
        fn counters_of_one_unit_never_collide(steps in prop::collection::vec((1u8..=9, 0u8..3), 1..3000)) {
            let unit: UnitCode = "H49.12.3".parse().expect("unit");
            let mut last: BTreeMap<(u8, u8), u16> = BTreeMap::new();
            let mut seen = HashSet::new();
            for (counter, day) in steps {
                let c = Counter::new(counter).expect("1..=9");
                let Some(seq) = c.next(last.get(&(counter, day)).copied()) else { continue };
                last.insert((counter, day), seq);
                let code = DossierCode { unit: unit.clone(), date: date!(2026 - 11 - 26) + time::Duration::days(day.into()), seq };
                let text = code.to_string();
                prop_assert!(seen.insert(text.clone()), "duplicate {}", text);
                prop_assert_eq!(text.parse::<DossierCode>().expect("parses"), code);
                prop_assert_eq!(usize::from(seq / 1000), usize::from(counter));
            }
        }
    }
}
