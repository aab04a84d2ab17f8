//! The `motcua-dc` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_PATH;

/// motcua-dc: the data-centre receiver for motcua counters.
///
/// Verifies the signed, hash-chained records that counters send over MQTT,
/// stores each exactly once and answers with signed receipts.
#[derive(Debug, Parser)]
#[command(
    name = "motcua-dc",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "MOTCUA_DC_CONFIG", default_value = DEFAULT_PATH)]
    pub config: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data centre's receipt-signing key.
    ///
    /// Writes an Ed25519 key (PKCS#8 PEM, mode 0600) and prints on standard
    /// output the `public_key = ...` line for every counter's [dc] section.
    /// Never replaces an existing key unless --force is given.
    Keygen {
        /// Key file to create [default: dc.key_file from the configuration].
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Replace an existing key. Every counter must then be given the new
        /// public key, or it will ignore the data centre's receipts.
        #[arg(long)]
        force: bool,
    },
    /// Print the `public_key = ...` line of the existing key again.
    PublicKey {
        /// Key file [default: dc.key_file from the configuration].
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `motcua-dc config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print the effective configuration.
    ///
    /// Prints every problem with its key and exits 1 when there is any;
    /// otherwise prints the configuration with all defaults filled in
    /// (database passwords hidden).
    Check {
        /// The file to check [default: the --config file].
        file: Option<PathBuf>,
    },
}
