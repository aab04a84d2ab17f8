//! The motcua counter agent.
//!
//! Runs on the small ARM box at a one-stop-shop counter. This crate holds
//! everything the `motcua` binary does; `main.rs` only parses the command
//! line and dispatches.
//!
//! # Layout
//! - [`cli`]: the command line (clap), parsed into [`cli::Command`].
//! - [`cmd`]: the store commands (`dossier`, `journal`, `status`,
//!   `reference`), `run`, and their exit codes.
//! - [`config`]: `/etc/motcua/agent.toml`, parsed raw then validated once.
//! - [`clock`]: the wall clock and whether it is synchronised.
//! - [`dates`]: dates and times as clerks read and type them.
//! - [`domain`]: dossiers, codes, statuses, citizens' identifiers, working
//!   days: the rules, as pure functions.
//! - [`store`]: the durable SQLite store, its signed journal and the single
//!   writer with group commit.
//! - [`identity`]: the device key and the enrollment line.
//! - [`kiosk`]: the clerks' web pages and JSON API (axum), staff accounts.
//! - [`sync`]: unsynced envelopes to the DC over MQTT, receipts back.
//! - `demo` (feature `demo`, on by default): `motcua demo`, the embedded
//!   broker, a DC receiver and this agent in one process.
//! - [`selftest`]: an on-box check of keys, signing, verification and chain
//!   rules in a throw-away directory.

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod dates;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod domain;
pub mod downstream;
pub mod health;
pub mod identity;
pub mod kiosk;
pub mod provision;
pub mod selftest;
pub mod store;
pub mod sync;
