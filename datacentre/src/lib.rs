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
//! - [`receiver`]: MQTT in, verification and chain rules, receipts out.
//! - [`verify`]: re-verification of stored chains.
//! - [`store`]: registry, records, held envelopes and alerts; SQLite or
//!   PostgreSQL behind one trait.

pub mod ca;
pub mod cli;
pub mod config;
pub mod export;
pub mod fleet;
pub mod identity;
pub mod metrics;
pub mod publish;
pub mod receiver;
pub mod store;
pub mod verify;
pub mod web;

/// The broker identity (certificate common name) every receiver uses. The
/// broker's ACL grants it every device's topics, so no device may be
/// enrolled under this id.
pub const RECEIVER_IDENTITY: &str = "motcua-dc";
