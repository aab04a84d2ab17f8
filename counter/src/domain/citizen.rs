//! The citizen's identifiers: personal identification number, phone, email.
//!
//! The personal identification number (số định danh cá nhân, on the CCCD
//! card) has 12 digits and no checksum, so it is checked by structure:
//! digits 1-3 the province where the birth was registered, digit 4 the
//! century and gender (0/1 for the 1900s male/female, 2/3 for the 2000s,
//! 4/5 the 2100s...), digits 5-6 the last two digits of the birth year,
//! digits 7-12 random. A number is refused when its province code is not
//! one of the codes in use or when it gives a birth year in the future or
//! more than [`MAX_AGE`] years ago.

use crate::domain::invalid::Invalid;

/// Oldest plausible age, in years.
pub const MAX_AGE: i32 = 125;

/// Province-of-birth-registration codes in use in personal identification
/// numbers (the 63 provinces of Circular 07/2016/TT-BCA, appendix I). These
/// are historical: a number keeps its code after provinces merge (as on
/// 1 July 2025), so the list does not follow administrative changes.
pub const PROVINCE_CODES: [&str; 63] = [
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020",
    "022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038",
    "040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060",
    "062", "064", "066", "067", "068", "070", "072", "074", "075", "077", "079", "080", "082",
    "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
];

/// Checks a personal identification number; `this_year` bounds the birth
/// year. Returns the number as stored (digits only, spaces removed).
pub fn id_number(field: &str, raw: &str, this_year: i32) -> Result<String, Invalid> {
    let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(
            field,
            "id_number_format",
            "Số định danh cá nhân phải gồm đúng 12 chữ số.",
        ));
    }
    if !PROVINCE_CODES.contains(&&digits[..3]) {
        return Err(Invalid::new(
            field,
            "id_number_province",
            "Ba chữ số đầu của số định danh cá nhân không phải là mã tỉnh nơi đăng ký khai sinh. Vui lòng kiểm tra lại.",
        ));
    }
    let b = digits.as_bytes();
    let century = i32::from(b[3] - b'0') / 2;
    let yy = i32::from(b[4] - b'0') * 10 + i32::from(b[5] - b'0');
    let birth_year = 1900 + century * 100 + yy;
    if birth_year > this_year || birth_year < this_year - MAX_AGE {
        return Err(Invalid::new(
            field,
            "id_number_birth_year",
            "Chữ số thứ 4 (thế kỷ và giới tính) và chữ số thứ 5, 6 (năm sinh) của số định danh cá nhân \
             không cho một năm sinh hợp lý. Vui lòng kiểm tra lại.",
        ));
    }
    Ok(digits)
}

/// Checks a Vietnamese phone number and returns it as stored: digits only,
/// a leading +84 or 84 written as 0. Mobile numbers have 10 digits starting
/// 03, 05, 07, 08 or 09; fixed lines 11 digits starting 02.
pub fn phone(field: &str, raw: &str) -> Result<String, Invalid> {
    let err = || {
        Invalid::new(
            field,
            "phone_format",
            "Số điện thoại phải gồm 10 chữ số bắt đầu bằng 03, 05, 07, 08 hoặc 09 (di động), \
             hoặc 11 chữ số bắt đầu bằng 02 (cố định).",
        )
    };
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let national = if let Some(rest) = compact.strip_prefix("+84") {
        format!("0{rest}")
    } else if compact.len() == 11 && compact.starts_with("84") && !compact.starts_with("840") {
        format!("0{}", &compact[2..])
    } else {
        compact
    };
    if !national.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let ok = match national.len() {
        10 => ["03", "05", "07", "08", "09"]
            .iter()
            .any(|p| national.starts_with(p)),
        11 => national.starts_with("02"),
        _ => false,
    };
    if ok { Ok(national) } else { Err(err()) }
}

/// Checks an email address by shape: one `@`, a non-empty local part, a
/// domain with a dot, no spaces, at most 254 characters.
pub fn email(field: &str, raw: &str) -> Result<String, Invalid> {
    let e = raw.trim();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(e.to_owned())
    } else {
        Err(Invalid::new(
            field,
            "email_format",
            "Địa chỉ email không hợp lệ (ví dụ đúng: ten@example.vn).",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Result<String, &'static str> {
        id_number("applicant.id_number", s, 2026).map_err(|e| e.code)
    }

    #[test]
    fn province_list_has_63_distinct_sorted_codes() {
        let mut sorted = PROVINCE_CODES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 63);
        assert_eq!(sorted, PROVINCE_CODES.to_vec());
    }

    #[test]
    fn identification_numbers() {
        assert_eq!(id("049301000123"), Ok("049301000123".into())); // Quảng Nam, female, 2001
        assert_eq!(id("048 085 000 123"), Ok("048085000123".into())); // Đà Nẵng, male, 1985
        assert_eq!(id("001099123456"), Ok("001099123456".into())); // 1999
        assert_eq!(id("04930100012"), Err("id_number_format"));
        assert_eq!(id("0493010001234"), Err("id_number_format"));
        assert_eq!(id("04930100012a"), Err("id_number_format"));
        assert_eq!(id("003301000123"), Err("id_number_province")); // 003 is not in use
        assert_eq!(id("097301000123"), Err("id_number_province"));
        assert_eq!(id("049230000123"), Err("id_number_birth_year")); // 2030: future
        assert_eq!(id("049400000123"), Err("id_number_birth_year")); // 2100
        assert_eq!(id("049000000123"), Err("id_number_birth_year")); // 1900: 126 years
        assert_eq!(id("049001000123"), Ok("049001000123".into())); // 1901: 125 years
    }

    #[test]
    fn phones() {
        let p = |s| phone("applicant.phone", s).map_err(|e| e.code);
        assert_eq!(p("0905 123 456"), Ok("0905123456".into()));
        assert_eq!(p("+84 905.123.456"), Ok("0905123456".into()));
        assert_eq!(p("84905123456"), Ok("0905123456".into()));
        assert_eq!(p("0235 3812 345"), Ok("02353812345".into()));
        assert_eq!(p("0105123456"), Err("phone_format"));
        assert_eq!(p("090512345"), Err("phone_format"));
        assert_eq!(p("09051234567"), Err("phone_format"));
        assert_eq!(p("0905abc456"), Err("phone_format"));
    }

    #[test]
    fn emails() {
        let e = |s| email("applicant.email", s).map_err(|e| e.code);
        assert_eq!(
            e(" ha.nguyen@example.vn "),
            Ok("ha.nguyen@example.vn".into())
        );
        for bad in [
            "ha",
            "@example.vn",
            "ha@example",
            "ha@@example.vn",
            "h a@example.vn",
            "ha@.vn",
        ] {
            assert_eq!(e(bad), Err("email_format"), "{bad}");
        }
    }

    #[test]
    fn messages_never_echo_the_value() {
        let e = id_number("f", "049230000123", 2026).expect_err("refused");
        assert!(!e.message.contains("049230000123"));
    }
}
