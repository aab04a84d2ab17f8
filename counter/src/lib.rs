//! The counter's core: everything a one-stop-shop counter decides and
//! keeps, as a library with no front end.
//!
//! The `motcua` binary (crate `motcua-agent`) holds the adapters: the
//! command line, the kiosk's pages and JSON API, the MQTT sync shell,
//! `doctor` and `provision`. They call this crate; it depends on no
//! command-line parser, web framework or MQTT client, and Cargo enforces
//! that direction.
//!
//! # Layout
//! - [`app`]: the use cases the front ends share (today, lookups, the
//!   procedures on offer, a status typed as a number), each refusal
//!   worded once.
//! - [`domain`]: dossiers, codes, statuses, citizens' identifiers, working
//!   days: the rules, as pure functions.
//! - [`store`]: the durable SQLite store, its signed journal and the single
//!   writer with group commit.
//! - [`downstream`]: what the DC signs and sends down (catalogue, status
//!   updates, settings), verified against the pinned key and applied.
//! - [`sync`]: the sync loop's decisions (what to send, when to send again,
//!   when to report health) as a state machine without I/O.
//! - [`clock`]: the wall clock and whether it is synchronised.
//! - [`dates`]: dates and times as clerks read and type them.
//! - [`state_dir`]: the state directory and the name of every file in it.

pub mod app;
pub mod clock;
pub mod dates;
pub mod domain;
pub mod downstream;
pub mod state_dir;
pub mod store;
pub mod sync;
