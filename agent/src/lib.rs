//! The motcua counter agent.
//!
//! Runs on the small ARM box at a one-stop-shop counter. This crate holds
//! the `motcua` binary's adapters over the counter's core
//! (`motcua-counter`: domain, store, what the DC sends down): the command
//! line, the kiosk, the MQTT sync shell, the health probe, `doctor`,
//! `provision`. `main.rs` only parses the command line and dispatches.
//!
//! # Layout
//! - [`cli`]: the command line (clap), parsed into [`cli::Command`].
//! - [`cmd`]: the store commands (`dossier`, `journal`, `status`,
//!   `reference`), `run`, and their exit codes.
//! - [`config`]: `/etc/motcua/agent.toml`, parsed raw then validated once.
//! - [`identity`]: the device key and the enrollment line.
//! - [`kiosk`]: the clerks' web pages and JSON API (axum), staff accounts.
//! - [`health`]: the health report's probe (CPU, memory, disk, backlog).
//! - [`doctor`], [`provision`]: the technician's commands.
//! - [`sync`]: unsynced envelopes to the DC over MQTT, receipts back.
//! - `demo` (feature `demo`, on by default): `motcua demo`, the embedded
//!   broker, a DC receiver and this agent in one process.
//! - [`selftest`]: an on-box check of keys, signing, verification and chain
//!   rules in a throw-away directory.

pub mod cli;
pub mod cmd;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod health;
pub mod identity;
pub mod kiosk;
pub mod provision;
pub mod selftest;
pub mod sync;
