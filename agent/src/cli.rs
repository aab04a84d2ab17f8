//! The `motcua` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use motcua_protocol::DeviceId;

use crate::config::DEFAULT_PATH;

/// motcua: the counter agent of the one-stop-shop ("Một cửa").
///
/// Keeps every dossier received at this counter durably, signs each record
/// into the device's hash chain, and syncs them to the provincial data
/// centre.
#[derive(Debug, Parser)]
#[command(
    name = "motcua",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "MOTCUA_CONFIG", default_value = DEFAULT_PATH)]
    pub config: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this device's signing key and print its enrollment line.
    ///
    /// Writes an Ed25519 key (PKCS#8 PEM, mode 0600) and prints on standard
    /// output one line for the data-centre operator to pass to
    /// 'motcua-dc device add'. Never replaces an existing key unless --force
    /// is given: the key is the device's identity.
    Keygen {
        /// Key file to create [default: device.key_file from the configuration].
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Device id to put in the enrollment line [default: device.id from the configuration].
        #[arg(long)]
        device: Option<DeviceId>,
        /// Replace an existing key. The data centre must then enroll the new one.
        #[arg(long)]
        force: bool,
    },
    /// Print the enrollment line of the existing key again.
    Identity {
        /// Key file [default: device.key_file from the configuration].
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Device id [default: device.id from the configuration].
        #[arg(long)]
        device: Option<DeviceId>,
    },
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check signing, verification, key files and chain rules on this box.
    ///
    /// Works in a throw-away directory with throw-away keys; the device's own
    /// key and data are not touched. Exits non-zero if any step fails.
    Selftest {
        /// How many envelopes to sign and verify.
        #[arg(long, default_value_t = 1000)]
        records: u64,
    },
}

/// `motcua config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    ///
    /// Prints every problem with its key and exits 1 when there is any;
    /// otherwise prints the configuration with all defaults filled in.
    Check {
        /// The file to check [default: the --config file].
        file: Option<PathBuf>,
    },
}
