//! Strict reading of signed JSON payloads.
//!
//! JSON as generally parsed lets `{"seq":1,"seq":2}` through, each library
//! keeping a different one of the two values: a signer and a verifier could
//! then disagree about what was signed. So before a payload is used, its
//! exact bytes are walked once and refused if any object, at any depth, has a
//! key twice, or if anything but white space follows the value.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a payload was refused before use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A key appears twice in one object.
    #[error("payload JSON has the key {0:?} twice in one object")]
    DuplicateKey(String),
    /// Not JSON, trailing bytes, or a value of the wrong shape.
    #[error("payload JSON is invalid: {0}")]
    Invalid(String),
}

/// Walks any JSON value, refusing duplicate keys; keeps nothing.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicates)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                let shown: String = key.chars().take(40).collect();
                return Err(de::Error::custom(DuplicateMarker(shown)));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(self)
    }
}

/// Carries the duplicate key through serde's string-only custom errors.
struct DuplicateMarker(String);

impl fmt::Display for DuplicateMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{DUP_PREFIX}{}", self.0)
    }
}

const DUP_PREFIX: &str = "\u{0}duplicate-key\u{0}";

fn invalid(e: &serde_json::Error) -> JsonError {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix(DUP_PREFIX) {
        // serde_json appends " at line L column C"; keep only the key.
        let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
        return JsonError::DuplicateKey(key.to_owned());
    }
    // Bounded: a hostile payload must not make the operator's log huge.
    JsonError::Invalid(text.chars().take(200).collect())
}

/// Checks that `bytes` are exactly one JSON value with no duplicate key at
/// any depth and nothing but white space after it.
pub(crate) fn check_strict(bytes: &[u8]) -> Result<(), JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicates::deserialize(&mut de).map_err(|e| invalid(&e))?;
    de.end().map_err(|e| invalid(&e))
}

/// Reads `bytes`, already passed through [`check_strict`], as a `T`.
pub(crate) fn parse_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(&e))
}

/// Parses `bytes` as exactly one JSON value of type `T`, refusing duplicate
/// keys at any depth and trailing bytes.
#[cfg(test)]
pub(crate) fn from_slice_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    check_strict(bytes)?;
    parse_typed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn check(input: &str) -> Result<Value, JsonError> {
        from_slice_strict(input.as_bytes())
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert_eq!(
            check(r#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
        assert_eq!(
            check(r#"{"a":{"b":[{"c":1,"c":1}]}}"#),
            Err(JsonError::DuplicateKey("c".into()))
        );
        // An escaped spelling of the same key is the same key.
        assert_eq!(
            check(r#"{"a":1,"\u0061":2}"#),
            Err(JsonError::DuplicateKey("a".into()))
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert!(matches!(check(r#"{"a":1} x"#), Err(JsonError::Invalid(_))));
        assert!(matches!(check(r#"{"a":1}{}"#), Err(JsonError::Invalid(_))));
        assert!(check("{\"a\":1}\n").is_ok());
    }

    #[test]
    fn same_key_in_sibling_objects_is_fine() {
        assert!(check(r#"[{"a":1},{"a":2}]"#).is_ok());
    }
}
