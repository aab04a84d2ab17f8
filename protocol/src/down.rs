//! What the DC sends down, each signed with the DC key (the one that signs
//! receipts) as a COSE_Sign1 message of its own type, published retained so
//! a counter that was offline gets the latest on its next connection.
//!
//! | message          | topic                                 | orders by |
//! |------------------|---------------------------------------|-----------|
//! | [`Catalogue`]    | `motcua/v1/all/catalogue`             | `version` |
//! | [`Units`]        | `motcua/v1/all/units`                 | `version` |
//! | [`StatusUpdates`]| `motcua/v1/d/{device}/down/status`    | `seq`     |
//! | [`Settings`]     | `motcua/v1/d/{device}/down/settings`  | `seq`     |
//!
//! A counter applies a message only when its number is higher than the one
//! it last applied of that kind; an equal one is the retained copy it has
//! already seen, a lower one a replay. Each is one whole state, never a
//! difference: the catalogue in full, every status update the counter has
//! not yet reported applied, every setting the DC overrides.

use serde::{Deserialize, Serialize};

use crate::cose::{Message, MessageType, PayloadError};
use crate::ids::DeviceId;
use crate::time::UtcTime;

/// Largest signed catalogue message: a province's catalogue with document
/// lists is larger than one record.
pub const MAX_CATALOGUE_BYTES: usize = 1024 * 1024;

/// Most status updates in one [`StatusUpdates`] message.
pub const MAX_STATUS_UPDATES: usize = 256;

/// The procedure catalogue and the working calendar, for every counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Format version: [`crate::FORMAT_VERSION`].
    pub v: u32,
    /// The catalogue's version; each publication has a higher one.
    pub version: u64,
    /// When the DC signed it.
    pub issued_at: UtcTime,
    /// The procedures.
    pub procedures: Vec<Procedure>,
    /// Public holidays.
    pub holidays: Vec<CalendarDay>,
    /// Weekend days declared working days.
    pub workdays: Vec<CalendarDay>,
}

/// The receiving units' names and places, for every counter: what an
/// official document prints instead of a unit code (its heading and its
/// place-and-date line). A message of its own, so that counters which do
/// not know it ignore it rather than refuse the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Units {
    /// Format version: [`crate::FORMAT_VERSION`].
    pub v: u32,
    /// The list's version; each publication has a higher one.
    pub version: u64,
    /// When the DC signed it.
    pub issued_at: UtcTime,
    /// The units.
    pub units: Vec<Unit>,
}

/// A receiving unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Its QCVN 102 code, e.g. `H49.12.3`.
    pub code: String,
    /// The agency's name as documents print it, e.g. "UBND xã Tam Thăng".
    pub name: String,
    /// The place name of its place-and-date line, e.g. "Tam Thăng".
    pub place: String,
}

/// Longest unit name, in characters.
pub const MAX_UNIT_NAME: usize = 200;
/// Longest place name, in characters.
pub const MAX_PLACE: usize = 100;

/// A procedure of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// National code, e.g. `1.000948` or `1.011442.000.00.00.H38`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Legal processing time in working days.
    pub working_days: u16,
    /// Fee in đồng, if any.
    #[serde(default)]
    pub fee: Option<u64>,
    /// Documents the applicant must bring (the kiosk's checklist).
    #[serde(default)]
    pub documents: Vec<String>,
}

/// A dated calendar entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarDay {
    /// The date, `YYYY-MM-DD`.
    pub day: String,
    /// What it is, e.g. "Tết Nguyên đán".
    #[serde(default)]
    pub name: Option<String>,
}

/// Every status change decided elsewhere (e.g. the district finished
/// processing) for one counter's dossiers that the counter has not yet
/// reported applied, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdates {
    /// Format version.
    pub v: u32,
    /// The counter these are for.
    pub device: DeviceId,
    /// Increases with every publication for this device.
    pub seq: u64,
    /// When the DC signed it.
    pub issued_at: UtcTime,
    /// The updates, by increasing `id`.
    pub updates: Vec<StatusUpdate>,
}

/// One status change of one dossier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    /// The DC's number for this update, increasing per device: what the
    /// counter reports as applied.
    pub id: u64,
    /// The dossier code.
    pub code: String,
    /// The new national status value (1 to 10).
    pub status: u8,
    /// When it was decided.
    pub at: UtcTime,
    /// Who decided it: an office, never a citizen (e.g. "UBND huyện").
    pub by: String,
    /// A note for the clerk, if any.
    #[serde(default)]
    pub note: Option<String>,
}

/// Settings the DC overrides on one counter. Only the members below
/// exist; a message with any other is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Format version.
    pub v: u32,
    /// The counter these are for.
    pub device: DeviceId,
    /// Increases with every publication for this device.
    pub seq: u64,
    /// When the DC signed it.
    pub issued_at: UtcTime,
    /// Health report interval in seconds (the counter's own bounds apply);
    /// absent: the counter's configuration decides.
    #[serde(default)]
    pub health_interval_s: Option<u64>,
}

fn field(name: &'static str, why: &str) -> PayloadError {
    PayloadError::Field {
        field: name,
        reason: why.to_owned(),
    }
}

impl Message for Catalogue {
    const TYPE: MessageType = MessageType::Catalogue;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), PayloadError> {
        if self.version == 0 {
            return Err(field("version", "must be 1 or more"));
        }
        let mut codes = std::collections::BTreeSet::new();
        for p in &self.procedures {
            let code_ok = (1..=64).contains(&p.code.len())
                && p.code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.');
            if !code_ok {
                return Err(field("procedures.code", "1 to 64 letters, digits and dots"));
            }
            if !codes.insert(p.code.as_str()) {
                return Err(field("procedures.code", "a code appears twice"));
            }
            if p.name.trim().is_empty() || p.name.chars().count() > 500 {
                return Err(field("procedures.name", "1 to 500 characters"));
            }
        }
        let day_ok = |d: &CalendarDay| {
            time::Date::parse(
                &d.day,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .is_ok()
        };
        if !self.holidays.iter().chain(&self.workdays).all(day_ok) {
            return Err(field("holidays", "days are YYYY-MM-DD"));
        }
        Ok(())
    }
}

impl Message for Units {
    const TYPE: MessageType = MessageType::Units;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), PayloadError> {
        if self.version == 0 {
            return Err(field("version", "must be 1 or more"));
        }
        let mut codes = std::collections::BTreeSet::new();
        for u in &self.units {
            if u.code.parse::<crate::UnitCode>().is_err() {
                return Err(field("units.code", "a QCVN 102 unit code"));
            }
            if !codes.insert(u.code.as_str()) {
                return Err(field("units.code", "a code appears twice"));
            }
            let text_ok = |t: &str, max: usize| {
                !t.trim().is_empty() && t.chars().count() <= max && !t.chars().any(char::is_control)
            };
            if !text_ok(&u.name, MAX_UNIT_NAME) {
                return Err(field(
                    "units.name",
                    "1 to 200 characters, no control characters",
                ));
            }
            if !text_ok(&u.place, MAX_PLACE) {
                return Err(field(
                    "units.place",
                    "1 to 100 characters, no control characters",
                ));
            }
        }
        Ok(())
    }
}

impl Message for StatusUpdates {
    const TYPE: MessageType = MessageType::StatusUpdates;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), PayloadError> {
        if self.seq == 0 {
            return Err(field("seq", "must be 1 or more"));
        }
        if self.updates.len() > MAX_STATUS_UPDATES {
            return Err(field("updates", "more than 256"));
        }
        if !self.updates.windows(2).all(|w| w[0].id < w[1].id) {
            return Err(field("updates", "ids must increase"));
        }
        if self.updates.iter().any(|u| !(1..=10).contains(&u.status)) {
            return Err(field("updates.status", "must be 1 to 10"));
        }
        Ok(())
    }
}

impl Message for Settings {
    const TYPE: MessageType = MessageType::Settings;

    fn version(&self) -> u32 {
        self.v
    }

    fn check(&self) -> Result<(), PayloadError> {
        if self.seq == 0 {
            return Err(field("seq", "must be 1 or more"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::cose::{VerifyError, sign, sign_payload, verify};

    fn dc() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn t() -> UtcTime {
        UtcTime::parse("2026-11-27T03:00:00.000Z").expect("valid")
    }

    fn updates() -> StatusUpdates {
        StatusUpdates {
            v: 1,
            device: "H49.12.3-q01".parse().expect("valid"),
            seq: 3,
            issued_at: t(),
            updates: vec![StatusUpdate {
                id: 7,
                code: "H49.12.3-261127-1001".into(),
                status: 9,
                at: t(),
                by: "UBND huyện".into(),
                note: None,
            }],
        }
    }

    #[test]
    fn each_message_verifies_as_its_own_type_only() {
        let bytes = sign(&updates(), &dc()).expect("signs");
        let key = dc().verifying_key();
        assert_eq!(
            verify::<StatusUpdates>(&bytes, &key)
                .expect("verifies")
                .message,
            updates()
        );
        assert!(matches!(
            verify::<Settings>(&bytes, &key),
            Err(VerifyError::WrongType { .. })
        ));
        assert!(matches!(
            verify::<crate::Receipt>(&bytes, &key),
            Err(VerifyError::WrongType { .. })
        ));
    }

    #[test]
    fn settings_other_than_the_known_ones_are_refused() {
        let payload = br#"{"v":1,"device":"H49.12.3-q01","seq":1,"issued_at":"2026-11-27T03:00:00.000Z","health_interval_s":300,"kiosk_bind":"0.0.0.0:80"}"#;
        let bytes = sign_payload(MessageType::Settings, payload.to_vec(), &dc()).expect("signs");
        assert!(matches!(
            verify::<Settings>(&bytes, &dc().verifying_key()),
            Err(VerifyError::Payload(_))
        ));
    }

    #[test]
    fn units_are_named_once_each_with_a_place() {
        let unit = |code: &str, name: &str, place: &str| Unit {
            code: code.into(),
            name: name.into(),
            place: place.into(),
        };
        let ok = Units {
            v: 1,
            version: 1,
            issued_at: t(),
            units: vec![unit("H49.12.3", "UBND xã Tam Thăng", "Tam Thăng")],
        };
        let bytes = sign(&ok, &dc()).expect("signs");
        assert_eq!(
            verify::<Units>(&bytes, &dc().verifying_key())
                .expect("verifies")
                .message,
            ok
        );
        for bad in [
            vec![unit("not a code", "UBND", "X")],
            vec![unit("H49.12.3", " ", "X")],
            vec![unit("H49.12.3", "UBND", "")],
            vec![unit("H49.12.3", "UBND\nxã", "X")],
            vec![unit("H49.12.3", "A", "X"), unit("H49.12.3", "B", "Y")],
        ] {
            let u = Units {
                units: bad.clone(),
                ..ok.clone()
            };
            assert!(sign(&u, &dc()).is_err(), "{bad:?}");
        }
        assert!(matches!(
            verify::<Catalogue>(&bytes, &dc().verifying_key()),
            Err(VerifyError::WrongType { .. })
        ));
    }

    #[test]
    fn unordered_or_out_of_range_updates_are_refused() {
        let mut u = updates();
        u.updates.push(u.updates[0].clone());
        assert!(sign(&u, &dc()).is_err(), "ids must increase");
        let mut u = updates();
        u.updates[0].status = 11;
        assert!(sign(&u, &dc()).is_err());
    }

    #[test]
    fn a_catalogue_may_be_larger_than_a_record() {
        let c = Catalogue {
            v: 1,
            version: 2,
            issued_at: t(),
            procedures: (0..600)
                .map(|i| Procedure {
                    code: format!("1.{i:06}"),
                    name: "Thủ tục hành chính có tên khá dài để thử kích thước".into(),
                    working_days: 5,
                    fee: Some(50_000),
                    documents: vec!["Tờ khai".into(), "Bản sao giấy tờ tùy thân".into()],
                })
                .collect(),
            holidays: vec![],
            workdays: vec![],
        };
        let bytes = sign(&c, &dc()).expect("signs");
        assert!(bytes.len() > crate::MAX_MESSAGE_BYTES);
        assert_eq!(
            verify::<Catalogue>(&bytes, &dc().verifying_key())
                .expect("verifies")
                .message,
            c
        );
    }
}
