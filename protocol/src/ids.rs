//! Checked identifiers that appear on the wire and in topics.
//!
//! Each is a newtype whose only constructor validates, so code that holds a
//! [`DeviceId`] never has to wonder whether it could break an MQTT topic or a
//! broker ACL pattern.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier. Quotes the offending input: these
/// identifiers name devices, units and staff accounts, never citizens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A device id outside `[A-Za-z0-9._-]`, 3 to 64 characters, starting
    /// with a letter or digit.
    #[error(
        "device id {0:?} is invalid: use 3 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
    )]
    Device(String),
    /// A unit code not in the QCVN 102:2016 form such as `H49.12.3`.
    #[error(
        "unit code {0:?} is invalid: expected the QCVN 102:2016 form, an upper-case letter, two digits, then up to three groups of '.' and 1 to 3 digits (e.g. H49.12.3)"
    )]
    Unit(String),
    /// A staff id that is empty, too long or has characters outside
    /// `[A-Za-z0-9._@-]`.
    #[error("staff id {0:?} is invalid: use 1 to 64 characters from A-Z a-z 0-9 . _ @ -")]
    Staff(String),
    /// A record kind not of the form `word.word`, lower case.
    #[error(
        "record kind {0:?} is invalid: expected lower-case words joined by dots, e.g. dossier.created (at most 64 characters)"
    )]
    Kind(String),
}

fn all_in(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(s)?;
                Ok($name(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(&s)?;
                Ok($name(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.try_into().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A counter device's stable identity: appears in every payload and in
    /// its MQTT topics, so it must be safe in a topic level and an ACL
    /// pattern (no `/`, `+`, `#`, spaces). It survives key rotation.
    DeviceId,
    |s| {
        let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if (3..=64).contains(&s.len()) && first_ok && all_in(s, b"._-") {
            Ok(())
        } else {
            Err(IdError::Device(s.to_owned()))
        }
    }
);

string_id!(
    /// A receiving unit's code in the QCVN 102:2016 form (`H49.12.3`). Unit
    /// names and codes change with reorganisations, so they always come from
    /// configuration, never from code.
    UnitCode,
    |s| {
        let err = || IdError::Unit(s.to_owned());
        let mut groups = s.split('.');
        let head = groups.next().ok_or_else(err)?.as_bytes();
        if head.len() != 3 || !head[0].is_ascii_uppercase() || !head[1..].iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        let mut n = 0;
        for g in groups {
            n += 1;
            if n > 3 || !(1..=3).contains(&g.len()) || !g.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
        }
        Ok(())
    }
);

string_id!(
    /// The account id of the staff member who performed an action (a
    /// government officer's login, not a citizen).
    StaffId,
    |s| {
        if (1..=64).contains(&s.len()) && all_in(s, b"._@-") {
            Ok(())
        } else {
            Err(IdError::Staff(s.to_owned()))
        }
    }
);

string_id!(
    /// What a record change is, e.g. `dossier.created`, `dossier.status`.
    RecordKind,
    |s| {
        let ok = s.len() <= 64
            && s.contains('.')
            && s.split('.').all(|w| {
                !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            });
        if ok { Ok(()) } else { Err(IdError::Kind(s.to_owned())) }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_ok(s: &str) -> bool {
        s.parse::<UnitCode>().is_ok()
    }

    #[test]
    fn unit_codes_follow_qcvn_102() {
        for good in ["H49", "H49.12", "H49.12.3", "H21.65", "G01.1.22.333"] {
            assert!(unit_ok(good), "{good}");
        }
        for bad in [
            "",
            "h49.12",
            "H4",
            "H490",
            "H49.",
            "H49..1",
            "H49.1234",
            "H49.1.2.3.4",
            "H49-12",
            "H49.1a",
        ] {
            assert!(!unit_ok(bad), "{bad}");
        }
    }

    #[test]
    fn device_ids_are_topic_safe() {
        for good in ["mc-0a1b2c", "H49.12.3-q01", "abc"] {
            assert!(good.parse::<DeviceId>().is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "-abc",
            "a/b/c",
            "a+bc",
            "a#bc",
            "a bc",
            "áb c",
            &"x".repeat(65),
        ] {
            assert!(bad.parse::<DeviceId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_and_staff() {
        assert!("dossier.created".parse::<RecordKind>().is_ok());
        assert!("dossier.status_changed".parse::<RecordKind>().is_ok());
        for bad in ["dossier", "Dossier.created", "dossier..x", ".x", "x."] {
            assert!(bad.parse::<RecordKind>().is_err(), "{bad}");
        }
        assert!("can.bo-01@xa".parse::<StaffId>().is_ok());
        assert!("".parse::<StaffId>().is_err());
        assert!("a b".parse::<StaffId>().is_err());
    }

    #[test]
    fn error_quotes_the_bad_input() {
        let e = "a/b".parse::<DeviceId>().unwrap_err().to_string();
        assert!(e.contains("\"a/b\""), "{e}");
    }
}
