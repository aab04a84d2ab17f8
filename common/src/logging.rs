//! Log output through tracing-subscriber.
//!
//! Under systemd (detected by `JOURNAL_STREAM`), text logs carry no
//! timestamp and no colour: journald stamps every line itself. Colour is
//! used only when standard error is a terminal. JSON logs
//! are one object per line. Levels come from the configuration, overridden
//! by `RUST_LOG` when set. Logs name dossier codes and seq numbers, never a
//! citizen's personal data; callers are responsible for that, and types
//! that hold personal data must not implement `Display`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber, writing to standard error. Call once.
pub fn init(format: LogFormat, level: &LogLevel) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&level.0));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber: ignore the error.
    let _ = match (format, journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        // Colour only for a person at a terminal, never into a file or pipe.
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}
