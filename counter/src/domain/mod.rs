//! The counter's domain: dossiers as the receipt form (form 01) describes
//! them, and the rules that decide what may be stored. Pure functions over
//! data: no database, no clock (callers pass the time in).
//!
//! - [`text`]: Unicode NFC normalisation and the diacritic-free search form.
//! - [`citizen`]: the personal identification number, phone and email rules.
//! - [`code`]: dossier codes `UNITCODE-YYMMDD-XXXX` and each counter's block
//!   of the daily sequence.
//! - [`calendar`]: working days and the appointment time.
//! - [`status`]: the national status values and the allowed transitions.
//! - [`dossier`]: the dossier itself, its input form and its validation.
//! - [`intent`]: idempotency keys: one dossier per intent.
//! - [`invalid`]: the errors a clerk sees (Vietnamese, with stable codes).

pub mod calendar;
pub mod citizen;
pub mod code;
pub mod dossier;
pub mod intent;
pub mod invalid;
pub mod status;
pub mod text;

use time::UtcOffset;

/// Asia/Ho_Chi_Minh: UTC+7 all year (Vietnam has no daylight saving time).
pub const VIETNAM: UtcOffset = match UtcOffset::from_hms(7, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("UTC+7 is a valid offset"),
};
