//! One intent, one record: the idempotency key a reception form or an API
//! write carries, so that a double-click, a browser's resend or a client's
//! retry after a timeout gives back the first answer instead of a second
//! dossier.
//!
//! The key is the caller's (a token rendered into the form, the
//! `Idempotency-Key` header); the fingerprint is ours, a SHA-256 of the
//! request as the writer received it, so that the same key sent with other
//! content is refused rather than answered with an unrelated dossier.

use motcua_protocol::Hash32;

use crate::domain::invalid::{Invalid, InvalidInput};

/// Shortest key accepted: enough that two forms never draw the same one.
pub const MIN_KEY: usize = 16;
/// Longest key accepted.
pub const MAX_KEY: usize = 128;

/// An idempotency key and the fingerprint of the request it came with.
#[derive(Clone, PartialEq, Eq)]
pub struct Intent {
    key: String,
    fingerprint: Hash32,
}

impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is not secret, the request it fingerprints may be.
        f.debug_struct("Intent").field("key", &self.key).finish()
    }
}

impl Intent {
    /// The intent of `key` for a request whose canonical bytes are
    /// `request`; refused (field `idempotency_key`) when the key is empty,
    /// too short or too long, or has characters other than ASCII letters,
    /// digits and `-_.:`.
    pub fn new(key: &str, request: &[u8]) -> Result<Intent, InvalidInput> {
        let key = key.trim();
        let refuse = |code, message: &str| {
            Err(InvalidInput(vec![Invalid::new(
                "idempotency_key",
                code,
                message,
            )]))
        };
        if key.is_empty() {
            return refuse(
                "idempotency_key_missing",
                "Thiếu mã chống gửi trùng (Idempotency-Key): mỗi lần gửi hồ sơ cần một mã mới.",
            );
        }
        if !(MIN_KEY..=MAX_KEY).contains(&key.len())
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return refuse(
                "idempotency_key_format",
                "Mã chống gửi trùng (Idempotency-Key) không hợp lệ: từ 16 đến 128 ký tự chữ, số hoặc - _ . :",
            );
        }
        Ok(Intent {
            key: key.to_owned(),
            fingerprint: Hash32::of(request),
        })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The request's fingerprint.
    pub fn fingerprint(&self) -> &Hash32 {
        &self.fingerprint
    }

    /// The refusal when this key was already used for another request:
    /// for a job of another `kind` (`dossier.created`, `dossier.status`)
    /// or the same kind with other content.
    pub fn reused(code: &str, kind: &str) -> InvalidInput {
        let message = match kind {
            "dossier.status" => format!(
                "Mã chống gửi trùng này đã dùng cho một lần chuyển trạng thái khác của hồ sơ {code}. \
                 Mở lại hồ sơ để chuyển trạng thái."
            ),
            _ => format!(
                "Mã chống gửi trùng này đã dùng cho hồ sơ {code} với nội dung khác. \
                 Mở lại màn hình tiếp nhận để nhận hồ sơ mới."
            ),
        };
        InvalidInput(vec![Invalid::new(
            "idempotency_key",
            "idempotency_key_reused",
            message,
        )])
    }

    /// The refusal of a repeat whose first dossier no longer holds its
    /// personal data (pruned with the retention): there is nothing left to
    /// answer with, and a new dossier would be a second one.
    pub fn expired(code: &str) -> InvalidInput {
        InvalidInput(vec![Invalid::new(
            "idempotency_key",
            "idempotency_key_expired",
            format!(
                "Mã chống gửi trùng này đã dùng cho hồ sơ {code}, nay đã hết thời hạn lưu. \
                 Mở lại màn hình tiếp nhận để nhận hồ sơ mới."
            ),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_fingerprints_follow_the_request() {
        let a = Intent::new("k-0123456789abcdef", b"one").expect("valid");
        let b = Intent::new(" k-0123456789abcdef ", b"one").expect("valid");
        assert_eq!(a, b);
        let c = Intent::new("k-0123456789abcdef", b"two").expect("valid");
        assert_eq!(a.key(), c.key());
        assert_ne!(a.fingerprint(), c.fingerprint());
        for (key, code) in [
            ("", "idempotency_key_missing"),
            ("short", "idempotency_key_format"),
            ("k 0123456789abcdef", "idempotency_key_format"),
            ("k-0123456789abcdéf", "idempotency_key_format"),
        ] {
            let e = Intent::new(key, b"x").expect_err(key);
            assert_eq!(e.codes(), [code], "{key}");
        }
        assert!(Intent::new(&"k".repeat(MAX_KEY + 1), b"x").is_err());
    }
}
