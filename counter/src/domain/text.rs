//! Vietnamese text: one stored spelling, and a form for searching.
//!
//! The same letter arrives precomposed (NFC, "ế" = U+1EBF) or decomposed
//! ("e" + U+0302 + U+0301) depending on the keyboard tool (UniKey, Telex,
//! VNI). Everything a clerk types is normalised to NFC on input (TCVN 6909
//! mandates Unicode; NFC is what the web and databases expect), with runs of
//! white space collapsed. For search, a folded form drops the diacritics:
//! decompose, strip combining marks, map "đ/Đ" to "d" (it does not
//! decompose), and lower-case, so "Nguyen Thi Ha" finds "Nguyễn Thị Hà".

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// NFC, trimmed, with every run of white space replaced by one space.
pub fn clean(input: &str) -> String {
    let nfc: String = input.nfc().collect();
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The search form: no diacritics, "đ" as "d", lower case, single spaces.
pub fn fold(input: &str) -> String {
    let folded: String = input
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            // U+00D0/U+00F0 (eth) is what some legacy TCVN3 conversions
            // produce for Đ/đ.
            'đ' | 'Đ' | 'Ð' | 'ð' => 'd',
            other => other,
        })
        .flat_map(char::to_lowercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomposed_and_decomposed_input_store_the_same() {
        let nfc = "Nguy\u{1EC5}n Th\u{1ECB} H\u{00E0}";
        let nfd = "Nguye\u{0302}\u{0303}n Thi\u{0323} Ha\u{0300}";
        assert_ne!(nfc, nfd);
        assert_eq!(clean(nfd), nfc);
        assert_eq!(clean(nfc), nfc);
    }

    #[test]
    fn white_space_is_collapsed() {
        assert_eq!(clean("  Trần \t Văn\n An "), "Trần Văn An");
    }

    #[test]
    fn folding_strips_diacritics_and_maps_d() {
        assert_eq!(fold("Nguyễn Thị Hà"), "nguyen thi ha");
        assert_eq!(fold("ĐẶNG Đức"), "dang duc");
        assert_eq!(fold("\u{00D0}\u{1EB6}NG"), "dang");
        assert_eq!(
            fold("Thôn Phú Thạnh, xã Tam Thăng"),
            "thon phu thanh, xa tam thang"
        );
        assert_eq!(fold("Nguye\u{0302}\u{0303}n"), fold("Nguy\u{1EC5}n"));
    }
}
