//! The dossier, as the receipt form (form 01, "Giấy tiếp nhận hồ sơ và hẹn
//! trả kết quả") records it, and the validation of what a clerk enters.
//!
//! [`DossierInput`] is what the kiosk or `motcua dossier add --json` gives
//! (documented in `docs/DOSSIER-INPUT.md`). [`validate`] checks every field,
//! normalises text to NFC and returns every problem at once, each with a
//! stable code and a Vietnamese message. The store then adds what the
//! counter decides (code, times, appointment, staff, status) to make a
//! [`Dossier`], the body of the signed `dossier.created` record.
//!
//! [`Applicant`] holds personal data: its `Debug` shows no value, and no
//! type here implements `Display`, so personal data cannot slip into a log
//! line by formatting.

use std::fmt;

use motcua_protocol::{StaffId, UnitCode, UtcTime};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::calendar::{Calendar, OfficeDay};
use crate::domain::citizen;
use crate::domain::invalid::{Invalid, InvalidInput};
use crate::domain::status::Status;
use crate::domain::text::clean;

/// Longest applicant name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest address, in characters.
pub const MAX_ADDRESS: usize = 300;
/// Longest document name, "where to collect" and similar short texts.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest note.
pub const MAX_NOTE: usize = 1000;
/// Most documents listed on one receipt.
pub const MAX_DOCUMENTS: usize = 50;
/// Most copies of one document, and most sets of one dossier.
pub const MAX_COPIES: u32 = 99;

/// What a clerk enters for a new dossier. `Debug` shows the procedure only:
/// the rest may hold personal data (the note, document names).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DossierInput {
    /// National procedure code, e.g. `1.000948`.
    pub procedure: String,
    /// The applicant.
    pub applicant: ApplicantInput,
    /// Documents received.
    #[serde(default)]
    pub documents: Vec<DocumentInput>,
    /// Number of sets of the dossier received (default 1).
    #[serde(default = "one")]
    pub sets: u32,
    /// Where the result is collected (default: this counter).
    #[serde(default)]
    pub collect_at: Option<String>,
    /// A free note for the processing department.
    #[serde(default)]
    pub note: Option<String>,
}

impl DossierInput {
    /// The input as canonical bytes, for an idempotency key's fingerprint:
    /// two inputs give the same bytes when every field is the same.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl fmt::Debug for DossierInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DossierInput")
            .field("procedure", &self.procedure)
            .finish_non_exhaustive()
    }
}

/// The applicant as entered.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicantInput {
    /// Full name.
    pub name: String,
    /// Personal identification number (12 digits).
    pub id_number: String,
    /// Phone, optional.
    #[serde(default)]
    pub phone: Option<String>,
    /// Email, optional.
    #[serde(default)]
    pub email: Option<String>,
    /// Address.
    pub address: String,
}

impl fmt::Debug for ApplicantInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApplicantInput { <personal data> }")
    }
}

/// One document as entered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// What the document is, e.g. "Tờ khai đăng ký khai sinh".
    pub name: String,
    /// Form: original, certified copy... free text, optional.
    #[serde(default)]
    pub form: Option<String>,
    /// How many (default 1).
    #[serde(default = "one")]
    pub copies: u32,
}

fn one() -> u32 {
    1
}

/// What the counter knows about a procedure from the cached catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureRef {
    /// National code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Legal processing time in working days.
    pub working_days: u16,
}

/// The applicant as stored and signed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// Full name, NFC.
    pub name: String,
    /// Personal identification number, 12 digits.
    pub id_number: String,
    /// Phone, digits only.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Address, NFC.
    pub address: String,
}

impl fmt::Debug for Applicant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Applicant { <personal data> }")
    }
}

/// A document as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Name, NFC.
    pub name: String,
    /// Form, NFC, if given.
    pub form: Option<String>,
    /// How many.
    pub copies: u32,
}

/// A validated input: what the clerk entered, cleaned, with the procedure
/// resolved from the catalogue. `Debug` shows the procedure only.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidInput {
    /// The procedure.
    pub procedure: ProcedureRef,
    /// The applicant.
    pub applicant: Applicant,
    /// Documents.
    pub documents: Vec<Document>,
    /// Sets.
    pub sets: u32,
    /// Where to collect, if given.
    pub collect_at: Option<String>,
    /// Note, if given.
    pub note: Option<String>,
}

impl fmt::Debug for ValidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidInput")
            .field("procedure", &self.procedure.code)
            .finish_non_exhaustive()
    }
}

/// A dossier: the body of the signed `dossier.created` record, and what
/// the receipt prints. `Debug` shows code, procedure and status only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dossier {
    /// Dossier code, `UNITCODE-YYMMDD-XXXX`.
    pub code: String,
    /// Receiving unit.
    pub unit: UnitCode,
    /// National procedure code.
    pub procedure: String,
    /// Procedure name, as in the catalogue at receipt.
    pub procedure_name: String,
    /// The applicant.
    pub applicant: Applicant,
    /// Documents received.
    pub documents: Vec<Document>,
    /// Number of sets received.
    pub sets: u32,
    /// Time received.
    pub received_at: UtcTime,
    /// Whether the counter's clock was known synchronised at receipt.
    pub clock_synced: bool,
    /// When `received_at` was derived from the DC's receipt times instead
    /// (no synchronised clock): within this many milliseconds, as the
    /// envelope's `clock_dc` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_dc: Option<u64>,
    /// Legal processing time in working days.
    pub working_days: u16,
    /// Appointment for the result.
    pub appointment_at: UtcTime,
    /// Where the result is collected.
    pub collect_at: String,
    /// Staff who received it.
    pub staff: StaffId,
    /// Status at creation.
    pub status: Status,
    /// Note.
    pub note: Option<String>,
}

impl fmt::Debug for Dossier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dossier")
            .field("code", &self.code)
            .field("procedure", &self.procedure)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Cleans a required text field; records an error when empty or too long.
fn required(
    errors: &mut Vec<Invalid>,
    field: &str,
    label: &str,
    raw: &str,
    max: usize,
) -> Option<String> {
    let v = clean(raw);
    if v.is_empty() {
        errors.push(Invalid::new(
            field,
            "required",
            format!("Vui lòng nhập {label}."),
        ));
        return None;
    }
    text_rules(errors, field, label, v, max)
}

/// Cleans an optional text field; empty means absent.
fn optional(
    errors: &mut Vec<Invalid>,
    field: &str,
    label: &str,
    raw: Option<&str>,
    max: usize,
) -> Option<String> {
    let v = clean(raw?);
    if v.is_empty() {
        return None;
    }
    text_rules(errors, field, label, v, max)
}

/// A note given with a status change, as it is signed and stored:
/// cleaned like every typed text (NFC, single spaces), empty meaning none;
/// refused with control characters or over [`MAX_NOTE`] characters.
pub fn status_note(raw: Option<&str>) -> Result<Option<String>, InvalidInput> {
    let Some(note) = raw.map(clean).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().any(char::is_control) {
        return Err(InvalidInput(vec![Invalid::new(
            "note",
            "control_characters",
            "Ghi chú có ký tự điều khiển không hợp lệ.",
        )]));
    }
    if note.chars().count() > MAX_NOTE {
        return Err(InvalidInput(vec![Invalid::new(
            "note",
            "too_long",
            format!("Ghi chú quá dài: tối đa {MAX_NOTE} ký tự."),
        )]));
    }
    Ok(Some(note))
}

/// The appointment of a dossier received at `received` (Vietnam time) for
/// a procedure of `working_days`, refused for the clerk when the stored
/// calendar cannot give one.
pub fn appointment(
    calendar: &Calendar,
    received: OffsetDateTime,
    working_days: u16,
    office: &OfficeDay,
) -> Result<OffsetDateTime, InvalidInput> {
    calendar.appointment(received, working_days, office).ok_or_else(|| {
        InvalidInput(vec![Invalid::new(
            "procedure",
            "appointment_unknown",
            "Không tính được ngày hẹn trả kết quả từ lịch làm việc đã lưu. Vui lòng báo kỹ thuật viên.",
        )])
    })
}

fn text_rules(
    errors: &mut Vec<Invalid>,
    field: &str,
    label: &str,
    v: String,
    max: usize,
) -> Option<String> {
    if v.chars().any(char::is_control) {
        errors.push(Invalid::new(
            field,
            "control_characters",
            format!("{} có ký tự điều khiển không hợp lệ.", capital(label)),
        ));
        return None;
    }
    let n = v.chars().count();
    if n > max {
        errors.push(Invalid::new(
            field,
            "too_long",
            format!(
                "{} quá dài: tối đa {max} ký tự (đang có {n}).",
                capital(label)
            ),
        ));
        return None;
    }
    Some(v)
}

fn capital(label: &str) -> String {
    let mut c = label.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn count(errors: &mut Vec<Invalid>, field: &str, label: &str, n: u32) -> Option<u32> {
    if (1..=MAX_COPIES).contains(&n) {
        Some(n)
    } else {
        errors.push(Invalid::new(
            field,
            "count_range",
            format!("{} phải từ 1 đến {MAX_COPIES}.", capital(label)),
        ));
        None
    }
}

/// Validates `input`: every field, every rule, every problem reported.
/// `procedure` looks a code up in the cached catalogue; `this_year` (Vietnam
/// time) bounds birth years.
pub fn validate(
    input: &DossierInput,
    mut procedure: impl FnMut(&str) -> Option<ProcedureRef>,
    this_year: i32,
) -> Result<ValidInput, InvalidInput> {
    let mut e = Vec::new();
    let code = input.procedure.trim();
    let proc_ref = if code.is_empty() {
        e.push(Invalid::new(
            "procedure",
            "required",
            "Vui lòng chọn thủ tục hành chính.",
        ));
        None
    } else {
        let found = procedure(code);
        if found.is_none() {
            e.push(Invalid::new(
                "procedure",
                "procedure_unknown",
                "Mã thủ tục không có trong danh mục thủ tục đã lưu trên máy. Vui lòng chọn thủ tục từ danh mục.",
            ));
        }
        found
    };

    let a = &input.applicant;
    let name = required(
        &mut e,
        "applicant.name",
        "họ và tên người nộp",
        &a.name,
        MAX_NAME,
    );
    let name = name.filter(|n| {
        let ok = n
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '.' | '\''));
        if !ok {
            e.push(Invalid::new(
                "applicant.name",
                "name_characters",
                "Họ và tên chỉ gồm chữ cái, khoảng trắng và các dấu - . '",
            ));
        }
        ok
    });
    let id_raw = clean(&a.id_number);
    let id_number = if id_raw.is_empty() {
        e.push(Invalid::new(
            "applicant.id_number",
            "required",
            "Vui lòng nhập số định danh cá nhân.",
        ));
        None
    } else {
        citizen::id_number("applicant.id_number", &id_raw, this_year)
            .map_err(|i| e.push(i))
            .ok()
    };
    let phone = a
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            citizen::phone("applicant.phone", p)
                .map_err(|i| e.push(i))
                .ok()
        });
    let email = a
        .email
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            citizen::email("applicant.email", m)
                .map_err(|i| e.push(i))
                .ok()
        });
    let address = required(
        &mut e,
        "applicant.address",
        "địa chỉ",
        &a.address,
        MAX_ADDRESS,
    );

    if input.documents.len() > MAX_DOCUMENTS {
        e.push(Invalid::new(
            "documents",
            "too_many",
            format!(
                "Tối đa {MAX_DOCUMENTS} thành phần hồ sơ (đang có {}).",
                input.documents.len()
            ),
        ));
    }
    let mut documents = Vec::new();
    for (i, d) in input.documents.iter().take(MAX_DOCUMENTS).enumerate() {
        let f = |k: &str| format!("documents[{i}].{k}");
        let name = required(&mut e, &f("name"), "tên giấy tờ", &d.name, MAX_SHORT_TEXT);
        let form = optional(
            &mut e,
            &f("form"),
            "hình thức giấy tờ",
            d.form.as_deref(),
            MAX_SHORT_TEXT,
        );
        let copies = count(&mut e, &f("copies"), "số lượng", d.copies);
        if let (Some(name), Some(copies)) = (name, copies) {
            documents.push(Document { name, form, copies });
        }
    }
    let sets = count(&mut e, "sets", "số bộ hồ sơ", input.sets);
    let collect_at = optional(
        &mut e,
        "collect_at",
        "nơi trả kết quả",
        input.collect_at.as_deref(),
        MAX_SHORT_TEXT,
    );
    let note = optional(&mut e, "note", "ghi chú", input.note.as_deref(), MAX_NOTE);

    if !e.is_empty() {
        return Err(InvalidInput(e));
    }
    let missing = || {
        InvalidInput(vec![Invalid::new(
            "(form)",
            "internal",
            "Lỗi nội bộ khi kiểm tra hồ sơ.",
        )])
    };
    Ok(ValidInput {
        procedure: proc_ref.ok_or_else(missing)?,
        applicant: Applicant {
            name: name.ok_or_else(missing)?,
            id_number: id_number.ok_or_else(missing)?,
            phone: phone.flatten(),
            email: email.flatten(),
            address: address.ok_or_else(missing)?,
        },
        documents,
        sets: sets.ok_or_else(missing)?,
        collect_at,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_note_is_cleaned_and_bounded() {
        assert_eq!(status_note(None), Ok(None));
        assert_eq!(status_note(Some("  \t ")), Ok(None));
        assert_eq!(
            status_note(Some(" Thiếu   giấy ")),
            Ok(Some("Thiếu giấy".to_owned()))
        );
        let long = "a".repeat(MAX_NOTE + 1);
        let e = status_note(Some(&long)).expect_err("too long");
        assert_eq!(e.0[0].message, "Ghi chú quá dài: tối đa 1000 ký tự.");
        assert!(status_note(Some(&"a".repeat(MAX_NOTE))).is_ok());
        let e = status_note(Some("a\u{0007}b")).expect_err("control");
        assert_eq!(e.codes(), vec!["control_characters"]);
    }

    fn catalogue(code: &str) -> Option<ProcedureRef> {
        (code == "1.000948").then(|| ProcedureRef {
            code: code.into(),
            name: "Đăng ký khai sinh".into(),
            working_days: 1,
        })
    }

    fn input(json: serde_json::Value) -> DossierInput {
        serde_json::from_value(json).expect("shape")
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "procedure": "1.000948",
            "applicant": {
                "name": "Nguye\u{0302}\u{0303}n Thị  Thu Hà",
                "id_number": "049301000123",
                "phone": "0905 123 456",
                "address": "Thôn Phú Thạnh, xã Tam Thăng"
            },
            "documents": [{"name": "Tờ khai đăng ký khai sinh", "copies": 1}, {"name": "Giấy chứng sinh", "form": "Bản chính"}]
        })
    }

    #[test]
    fn a_good_input_is_cleaned() {
        let v = validate(&input(good()), catalogue, 2026).expect("valid");
        assert_eq!(v.applicant.name, "Nguyễn Thị Thu Hà");
        assert_eq!(v.applicant.phone.as_deref(), Some("0905123456"));
        assert_eq!(v.documents.len(), 2);
        assert_eq!(v.documents[1].copies, 1);
        assert_eq!(v.sets, 1);
        assert_eq!(v.procedure.working_days, 1);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut j = good();
        j["procedure"] = "9.999999".into();
        j["applicant"]["name"] = " ".into();
        j["applicant"]["id_number"] = "12345".into();
        j["applicant"]["phone"] = "12".into();
        j["applicant"]["email"] = "x".into();
        j["applicant"]["address"] = "a".repeat(MAX_ADDRESS + 1).into();
        j["documents"][0]["copies"] = 0.into();
        j["sets"] = 100.into();
        let err = validate(&input(j), catalogue, 2026).expect_err("invalid");
        assert_eq!(
            err.codes(),
            vec![
                "procedure_unknown",
                "required",
                "id_number_format",
                "phone_format",
                "email_format",
                "too_long",
                "count_range",
                "count_range"
            ]
        );
        assert_eq!(err.0[1].field, "applicant.name");
        assert_eq!(err.0[6].field, "documents[0].copies");
        assert!(err.0.iter().all(|i| !i.message.is_empty()));
    }

    #[test]
    fn names_with_digits_or_markup_are_refused() {
        for bad in ["Nguyễn 2", "<script>alert(1)</script>"] {
            let mut j = good();
            j["applicant"]["name"] = bad.into();
            let err = validate(&input(j), catalogue, 2026).expect_err("invalid");
            assert_eq!(err.codes(), vec!["name_characters"], "{bad}");
        }
    }

    #[test]
    fn control_characters_are_refused() {
        let mut j = good();
        j["note"] = "a\u{0007}b".into();
        assert_eq!(
            validate(&input(j), catalogue, 2026)
                .expect_err("invalid")
                .codes(),
            vec!["control_characters"]
        );
    }

    #[test]
    fn unknown_input_fields_are_refused() {
        let mut j = good();
        j["colour"] = "red".into();
        assert!(serde_json::from_value::<DossierInput>(j).is_err());
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let v = validate(&input(good()), catalogue, 2026).expect("valid");
        let shown = format!("{v:?} {:?}", input(good()));
        assert!(
            !shown.contains("049301000123") && !shown.contains("Nguyễn") && !shown.contains("0905"),
            "{shown}"
        );
    }
}
