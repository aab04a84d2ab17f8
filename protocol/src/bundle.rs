//! The payload of one MQTT message on a device's `up` topic: one submission,
//! or a bundle of several.
//!
//! A counter draining a week's backlog sends thousands of envelopes; one
//! MQTT message per envelope costs a PUBLISH/PUBACK pair and a broker routing
//! decision each. A bundle carries up to [`MAX_BUNDLE_MESSAGES`] complete
//! messages in one MQTT message. Bundling changes no signature and no hash:
//! every element is a complete, independently signed message whose hash is
//! over its own bytes.
//!
//! Wire form (`docs/PROTOCOL.md`, section 7.1):
//! - a single message: the tagged COSE_Sign1 bytes (first byte `0xd2`);
//! - a bundle: a CBOR array of definite length, 1 to
//!   [`MAX_BUNDLE_MESSAGES`] items, each a definite-length byte string
//!   holding one complete message; lengths in their shortest form, nothing
//!   after the array, at most [`MAX_BUNDLE_BYTES`] in all.
//!
//! [`split`] only frames: it returns byte slices, which the caller verifies
//! one by one with [`crate::Opened::parse`].

use crate::MAX_MESSAGE_BYTES;

/// Most messages in one bundle.
pub const MAX_BUNDLE_MESSAGES: usize = 256;

/// Largest bundle, in bytes: enough for [`MAX_BUNDLE_MESSAGES`] typical
/// dossier envelopes (about 1 KiB each), small enough for any broker's
/// default message size limit.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

/// First byte of a tagged COSE_Sign1 message (CBOR tag 18).
const COSE_SIGN1_TAG: u8 = 0xd2;

/// Why an `up` payload could not be framed. Nothing was verified yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The payload is empty.
    #[error("empty payload")]
    Empty,
    /// Over [`MAX_BUNDLE_BYTES`].
    #[error("payload is {len} bytes, over the bundle limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Neither a tagged COSE_Sign1 nor a CBOR array.
    #[error("payload is neither a COSE_Sign1 message nor a bundle (first byte {first:#04x})")]
    NotABundle {
        /// The first byte seen.
        first: u8,
    },
    /// The array header or an item header is malformed, not definite, not
    /// shortest-form, or the item count is out of range.
    #[error("malformed bundle: {0}")]
    Malformed(&'static str),
}

impl BundleError {
    /// A stable short code for metrics and alert records.
    pub fn reason(&self) -> &'static str {
        match self {
            BundleError::Empty => "empty",
            BundleError::TooLarge { .. } => "too_large",
            BundleError::NotABundle { .. } => "not_cose",
            BundleError::Malformed(_) => "bad_bundle",
        }
    }
}

/// Splits an `up` payload into the complete messages it carries.
pub fn split(payload: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let first = *payload.first().ok_or(BundleError::Empty)?;
    if payload.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge {
            len: payload.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    if first == COSE_SIGN1_TAG {
        return Ok(vec![payload]);
    }
    if first >> 5 != 4 {
        return Err(BundleError::NotABundle { first });
    }
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    let n = r.head(4)?;
    if n == 0 || n > MAX_BUNDLE_MESSAGES as u64 {
        return Err(BundleError::Malformed("a bundle holds 1 to 256 messages"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = r.head(2)?;
        if len > MAX_MESSAGE_BYTES as u64 {
            return Err(BundleError::Malformed("an item is over the message limit"));
        }
        out.push(r.take(len as usize)?);
    }
    if r.at != payload.len() {
        return Err(BundleError::Malformed("bytes after the array"));
    }
    Ok(out)
}

/// Frames messages as one `up` payload: a lone message as itself, several as
/// a bundle. The caller keeps within [`MAX_BUNDLE_MESSAGES`] and
/// [`MAX_BUNDLE_BYTES`] (see [`bundle_len`]); an empty slice gives an empty
/// payload, which receivers refuse.
pub fn join<B: AsRef<[u8]>>(messages: &[B]) -> Vec<u8> {
    if let [one] = messages {
        return one.as_ref().to_vec();
    }
    let mut out = Vec::with_capacity(bundle_len(messages.iter().map(|m| m.as_ref().len())));
    write_head(&mut out, 4, messages.len() as u64);
    for m in messages {
        write_head(&mut out, 2, m.as_ref().len() as u64);
        out.extend_from_slice(m.as_ref());
    }
    out
}

/// The size of the bundle [`join`] would make of messages of these lengths
/// (when there are two or more).
pub fn bundle_len(lens: impl Iterator<Item = usize>) -> usize {
    let mut n = 0u64;
    let mut total = 0usize;
    for len in lens {
        n += 1;
        total += head_len(len as u64) + len;
    }
    total + head_len(n)
}

fn head_len(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fn write_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match head_len(v) {
        1 => out.push(m | v as u8),
        2 => out.extend_from_slice(&[m | 24, v as u8]),
        3 => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        5 => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(BundleError::Malformed("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// A CBOR head of major type `major` with a definite, shortest-form
    /// argument.
    fn head(&mut self, major: u8) -> Result<u64, BundleError> {
        let b = self.take(1)?[0];
        if b >> 5 != major {
            return Err(BundleError::Malformed(if major == 4 {
                "not an array"
            } else {
                "an item is not a byte string"
            }));
        }
        let v = match b & 0x1f {
            n @ 0..=23 => u64::from(n),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let s = self.take(4)?;
                u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            }
            27 => {
                let s = self.take(8)?;
                u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
            }
            _ => return Err(BundleError::Malformed("indefinite or reserved length")),
        };
        if head_len(v)
            != 1 + match b & 0x1f {
                24 => 1,
                25 => 2,
                26 => 4,
                27 => 8,
                _ => 0,
            }
        {
            return Err(BundleError::Malformed("length not in its shortest form"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> Vec<u8> {
        let mut m = vec![0x5a; len];
        m[0] = COSE_SIGN1_TAG;
        m
    }

    #[test]
    fn one_message_is_itself() {
        let m = msg(300);
        assert_eq!(join(&[&m]), m);
        assert_eq!(split(&m), Ok(vec![&m[..]]));
    }

    #[test]
    fn bundles_round_trip_and_lengths_agree() {
        for lens in [vec![1, 2], vec![23, 24, 255, 256, 65_535], vec![1000; 256]] {
            let ms: Vec<Vec<u8>> = lens.iter().map(|&l| msg(l)).collect();
            let b = join(&ms);
            assert_eq!(b.len(), bundle_len(lens.iter().copied()));
            let back = split(&b).expect("splits");
            assert_eq!(back.len(), ms.len());
            for (a, m) in back.iter().zip(&ms) {
                assert_eq!(*a, &m[..]);
            }
        }
    }

    #[test]
    fn malformed_bundles_are_refused() {
        let two = join(&[msg(3), msg(4)]);
        let mut trailing = two.clone();
        trailing.push(0);
        let mut long_form = vec![0x98, 2]; // array, count 2 in a 1-byte argument
        long_form.extend_from_slice(&two[1..]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (vec![0x80], "bad_bundle"),
            (vec![0x9f, 0x41, 0xd2, 0xff], "bad_bundle"),
            (two[..two.len() - 1].to_vec(), "bad_bundle"),
            (trailing, "bad_bundle"),
            (long_form, "bad_bundle"),
            (vec![0x81, 0x61, 0x41], "bad_bundle"),
            (vec![0xa1, 0x00, 0x00], "not_cose"),
            (vec![0x80; MAX_BUNDLE_BYTES + 1], "too_large"),
        ];
        for (bytes, reason) in cases {
            let e = split(&bytes).expect_err("refused");
            assert_eq!(e.reason(), reason, "{e}");
        }
        let mut many = vec![0x99, 0x01, 0x01]; // 257 items
        many.extend(std::iter::repeat_n([0x41, 0xd2], 257).flatten());
        assert_eq!(
            split(&many).map(|v| v.len()).map_err(|e| e.reason()),
            Err("bad_bundle")
        );
    }
}
