//! The motcua data-centre receiver.
//!
//! Consumes counters' submissions from the DC's MQTT broker, verifies each
//! signature and hash chain, stores every record exactly once and answers
//! with signed receipts. This crate holds what the `motcua-dc` binary does;
//! `main.rs` only parses the command line and dispatches.
//!
//! # Layout
//! - [`cli`]: the command line (clap).
//! - [`config`]: `/etc/motcua/dc.toml`, parsed raw then validated once.
//! - [`identity`]: the DC's receipt-signing key.
//! - [`ca`]: the broker's certificate authority (`motcua-dc ca`).
//! - [`access`]: the broker's access list, kept in step with the registry
//!   (Mosquitto's dynamic-security plugin).
//! - [`rights`]: operators' accounts and roles, and the hash-chained
//!   access log of every read of personal data.
//! - [`receiver`]: MQTT in, verification and chain rules, receipts out.
//! - [`verify`]: re-verification of stored chains.
//! - [`store`]: registry, records, held envelopes and alerts; SQLite or
//!   PostgreSQL behind one trait.

pub mod access;
pub mod ca;
pub mod cli;
pub mod config;
pub mod export;
pub mod fleet;
pub mod identity;
pub mod metrics;
pub mod publish;
pub mod receiver;
pub mod rights;
pub mod store;
pub mod verify;
pub mod web;

/// The broker identity (certificate common name) of a receiver, and the
/// prefix of every receiver's name (`[broker] receivers`). The broker's
/// access list grants receivers every device's topics, so no device may be
/// enrolled under a name starting with it.
pub const RECEIVER_IDENTITY: &str = "motcua-dc";

/// Whether `name` is reserved for receivers (starts with
/// [`RECEIVER_IDENTITY`]).
pub fn is_receiver_name(name: &str) -> bool {
    name.starts_with(RECEIVER_IDENTITY)
}
