//! Key ids, fingerprints and the enrollment line.
//!
//! A key id (`kid`) is the first 16 bytes of the SHA-256 of the raw 32-byte
//! Ed25519 public key. It names the key in every COSE protected header, so a
//! device can rotate keys while keeping its device id, and it doubles as the
//! fingerprint an operator compares by eye (32 hex digits).
//!
//! The enrollment line is what `motcua keygen` prints and `motcua-dc device
//! add` takes: one line a technician can read out or paste, e.g.
//!
//! ```text
//! motcua-enroll v1 H49.12.3-q01 ed25519:<64 hex digits> kid:<32 hex digits>
//! ```
//!
//! The `kid:` part is redundant on purpose: the DC recomputes it from the key,
//! so a mistyped key is caught instead of enrolled.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

use crate::ids::{DeviceId, IdError};

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 16;

/// The id of an Ed25519 public key: `SHA-256(raw public key)[0..16]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// The key id of `key`.
    pub fn of(key: &VerifyingKey) -> KeyId {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// The key id from its raw bytes, as found in a COSE `kid` header.
    pub fn from_slice(bytes: &[u8]) -> Option<KeyId> {
        bytes.try_into().ok().map(KeyId)
    }

    /// 32 lowercase hex digits: the fingerprint shown to operators.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

/// A device's identity as the DC operator enrolls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The device id the key belongs to.
    pub device: DeviceId,
    /// The device's Ed25519 public key.
    pub key: VerifyingKey,
}

impl Enrollment {
    /// The first word of every enrollment line.
    pub const MAGIC: &'static str = "motcua-enroll";
    /// The line format version.
    pub const VERSION: &'static str = "v1";

    /// The key id of the enrolled key.
    pub fn kid(&self) -> KeyId {
        KeyId::of(&self.key)
    }
}

impl fmt::Display for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} ed25519:{} kid:{}",
            Self::MAGIC,
            Self::VERSION,
            self.device,
            hex::encode(self.key.as_bytes()),
            self.kid()
        )
    }
}

/// Why an enrollment line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentError {
    /// Not five space-separated words starting `motcua-enroll v1`.
    #[error(
        "not an enrollment line: expected 'motcua-enroll v1 DEVICE ed25519:KEYHEX kid:KIDHEX' as printed by 'motcua keygen'"
    )]
    Shape,
    /// The device id word is invalid.
    #[error(transparent)]
    Device(#[from] IdError),
    /// The key is not 64 hex digits of a valid Ed25519 point.
    #[error("the ed25519: part is not a valid Ed25519 public key (64 hex digits)")]
    Key,
    /// The stated key id does not match the key: a typing or copying error.
    #[error(
        "the kid: part {stated} does not match the key (its kid is {actual}): the line was altered or mistyped"
    )]
    KidMismatch {
        /// The key id written in the line.
        stated: String,
        /// The key id computed from the key in the line.
        actual: KeyId,
    },
}

impl FromStr for Enrollment {
    type Err = EnrollmentError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [magic, version, device, key, kid] = words[..] else {
            return Err(EnrollmentError::Shape);
        };
        if magic != Self::MAGIC || version != Self::VERSION {
            return Err(EnrollmentError::Shape);
        }
        let (Some(key), Some(kid)) = (key.strip_prefix("ed25519:"), kid.strip_prefix("kid:"))
        else {
            return Err(EnrollmentError::Shape);
        };
        let device: DeviceId = device.parse()?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(key, &mut raw).map_err(|_| EnrollmentError::Key)?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| EnrollmentError::Key)?;
        let actual = KeyId::of(&key);
        if !kid.eq_ignore_ascii_case(&actual.to_hex()) {
            return Err(EnrollmentError::KidMismatch {
                stated: kid.to_owned(),
                actual,
            });
        }
        Ok(Enrollment { device, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn enrollment() -> Enrollment {
        Enrollment {
            device: "H49.12.3-q01".parse().expect("valid id"),
            key: SigningKey::from_bytes(&[7; 32]).verifying_key(),
        }
    }

    #[test]
    fn line_round_trips() {
        let e = enrollment();
        let line = e.to_string();
        assert!(line.starts_with("motcua-enroll v1 H49.12.3-q01 ed25519:"));
        assert_eq!(line.parse::<Enrollment>(), Ok(e));
    }

    #[test]
    fn a_mistyped_key_is_caught_by_the_kid() {
        let line = enrollment().to_string();
        let pos = line.find("ed25519:").expect("has key") + 10;
        let mut bytes = line.into_bytes();
        bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(bytes).expect("ascii");
        match altered.parse::<Enrollment>() {
            Err(EnrollmentError::KidMismatch { .. }) | Err(EnrollmentError::Key) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        assert_eq!("".parse::<Enrollment>(), Err(EnrollmentError::Shape));
        assert_eq!(
            "motcua-enroll v2 a b c".parse::<Enrollment>(),
            Err(EnrollmentError::Shape)
        );
    }
}
