//! What the agent (`motcua`) and the data-centre receiver (`motcua-dc`) both
//! need from the operating system, kept in one place so both handle keys and
//! configuration the same careful way.
//!
//! # Layout
//! - [`atomic`]: write-then-rename file replacement, durable across a power
//!   cut.
//! - [`keyfile`]: Ed25519 keys in PKCS#8 PEM files, created mode 0600 and
//!   refused when group or others can read them.
//! - [`config`]: the diagnostics list that `config check` prints, and checked
//!   value types (durations, sizes, broker URLs, public keys) that config
//!   structs convert raw strings into once.
//! - [`settings`]: [`section!`], a configuration section's keys declared
//!   once (raw field, default, bounds, doc, effective line, template entry).
//! - [`mqtt`]: rumqttc options with rustls (ring) mutual TLS, and the
//!   reconnection backoff.
//! - [`login`]: Argon2id password hashes, sessions with CSRF tokens, the
//!   lockout and the bound on concurrent password checks, for the kiosk's
//!   clerks and the DC's operators.
//! - [`https`]: the HTTPS listener of the kiosk and the DC's dashboard.
//! - [`logging`]: tracing-subscriber set up for journald or JSON.
//! - [`shutdown`]: the signal that ends a long-running command.
//! - [`output`]: `outln!`/`out!`, standard output that a closed pipe ends
//!   quietly.
//! - [`clidocs`]: shell completions and man pages from a clap command line.

pub mod atomic;
pub mod clidocs;
pub mod config;
pub mod https;
pub mod keyfile;
pub mod logging;
pub mod login;
pub mod mqtt;
pub mod notify;
pub mod output;
pub mod settings;
pub mod shutdown;
