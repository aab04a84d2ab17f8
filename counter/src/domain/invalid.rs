//! What a clerk sees when input is refused: a stable machine code (for the
//! kiosk and other software) and a Vietnamese sentence saying what to fix.
//!
//! Messages name the field and the rule, never the value typed: these errors
//! may be logged, and the values are citizens' personal data.

use std::fmt;

use serde::Serialize;

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invalid {
    /// The input field, dotted (`applicant.id_number`, `documents[2].name`).
    pub field: String,
    /// Stable machine code, e.g. `id_number_length`.
    pub code: &'static str,
    /// What to fix, in Vietnamese.
    pub message: String,
}

impl Invalid {
    /// A refusal of `field` with `code` and a Vietnamese `message`.
    pub fn new(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Invalid {
        Invalid {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} [{}]", self.field, self.message, self.code)
    }
}

/// Every problem found in one input; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct InvalidInput(pub Vec<Invalid>);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Hồ sơ chưa hợp lệ ({} lỗi):", self.0.len())?;
        for i in &self.0 {
            writeln!(f, "  - {i}")?;
        }
        Ok(())
    }
}

impl InvalidInput {
    /// The codes, for tests and summaries.
    pub fn codes(&self) -> Vec<&'static str> {
        self.0.iter().map(|i| i.code).collect()
    }
}
