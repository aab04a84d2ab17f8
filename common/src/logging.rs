//! Log output through tracing-subscriber.
//!
//! Under systemd (standard error is the journal stream that
//! `JOURNAL_STREAM` names), text logs carry no timestamp and no colour:
//! journald stamps every line itself. Each line starts with its syslog
//! priority in the `<N>` form journald reads from a stream (error 3,
//! warning 4, info 6, debug and trace 7), so `journalctl -p warning`
//! shows warnings and errors. Colour is used only when standard error is a
//! terminal. JSON logs are one object per line. Levels come from the
//! configuration, overridden by `RUST_LOG` when set. Logs name dossier
//! codes and seq numbers, never a citizen's personal data; callers are
//! responsible for that, and types that hold personal data must not
//! implement `Display`.

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber, writing to standard error. Call once.
pub fn init(format: LogFormat, level: &LogLevel) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&level.0));
    let journald = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber: ignore the error.
    let _ = match (format, journald) {
        (LogFormat::Json, false) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Json, true) => builder
            .event_format(Priority(
                tracing_subscriber::fmt::format().json().flatten_event(true),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .try_init(),
        (LogFormat::Text, true) => builder
            .with_ansi(false)
            .event_format(Priority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .try_init(),
        // Colour only for a person at a terminal, never into a file or pipe.
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// Whether standard error is the journal stream systemd connected: its
/// device and inode are those `JOURNAL_STREAM` names (a child whose
/// standard error was redirected inherits the variable, not the stream).
pub fn stderr_is_journal() -> bool {
    let Some(named) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(st) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    named.to_str() == Some(format!("{}:{}", st.st_dev, st.st_ino).as_str())
}

/// The syslog priority journald gives a line that starts with it.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Prints the error that stopped a command on standard error (at error
/// priority in the journal) and gives the command's exit status:
/// [`crate::config::EX_CONFIG`] for a configuration problem, 1 otherwise.
pub fn fatal(e: &anyhow::Error) -> std::process::ExitCode {
    let prefix = if stderr_is_journal() { "<3>" } else { "" };
    // Each line its own journal entry, each at error priority (a
    // configuration's problems come one per line).
    for line in format!("error: {e:#}").lines() {
        eprintln!("{prefix}{line}");
    }
    let status = e.chain().map(crate::config::exit_status).max().unwrap_or(1);
    std::process::ExitCode::from(status)
}

/// An event format that starts each event with its `<N>` priority.
pub struct Priority<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // journald makes each line an entry of its own: every line of a
        // multi-line event gets the priority, not only the first.
        let mut text = String::new();
        self.0.format_event(ctx, Writer::new(&mut text), event)?;
        let n = priority(event.metadata().level());
        for line in text.lines() {
            writeln!(writer, "<{n}>{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_line_starts_with_its_journald_priority() {
        let out = Buffer::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .event_format(Priority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            ))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(seq = 7, "the store is gone");
            tracing::warn!("two lines:\nthe second");
            tracing::warn!("free space below the floor");
            tracing::info!("connected");
            tracing::debug!("polled");
            tracing::trace!("detail");
        });
        let text = String::from_utf8(out.0.lock().expect("not poisoned").clone()).expect("UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        for (line, prefix, words) in [
            (lines[0], "<3>", "the store is gone"),
            (lines[1], "<4>", "two lines:"),
            (lines[2], "<4>", "the second"),
            (lines[3], "<4>", "free space below the floor"),
            (lines[4], "<6>", "connected"),
            (lines[5], "<7>", "polled"),
            (lines[6], "<7>", "detail"),
        ] {
            assert!(line.starts_with(prefix), "{line}");
            assert!(line.contains(words), "{line}");
        }
        assert!(lines[0].contains("seq=7"), "{}", lines[0]);
    }
}
