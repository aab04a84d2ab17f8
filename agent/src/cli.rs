//! The `motcua` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use motcua_protocol::{DeviceId, StaffId};

use crate::config::DEFAULT_PATH;

/// The exit codes, shown under every command's help.
pub const EXIT_CODES: &str = "Exit codes:
  0  success
  1  failure (configuration, key file, database, I/O)
  2  wrong command-line usage
  3  input refused (each problem is printed, in Vietnamese, with its code)
  4  refused by the counter's state: free space below the floor, clock wrong,
     or the counter's dossier codes for the day used up
  5  not found
  6  journal verification found a break";

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
    /// Receive, show, find dossiers and change their status.
    #[command(subcommand)]
    Dossier(DossierCommand),
    /// Check the signed journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Show counts: dossiers, today's, overdue, records waiting for the data centre.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Manage the cached reference data (procedure catalogue, holidays).
    #[command(subcommand)]
    Reference(ReferenceCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// The Debian package installs the bash, zsh and fish ones.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (motcua.1 and one per command) into a
    /// directory.
    #[command(hide = true)]
    Man {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// Check signing, verification, key files and chain rules on this box.
    ///
    /// Works in a throw-away directory with throw-away keys; the device's own
    /// key and data are not touched. Exits non-zero if any step fails.
    Selftest {
        /// How many envelopes to sign and verify.
        #[arg(long, default_value_t = 1000)]
        records: u64,
    },
    /// Show the whole system working on this machine, with no set-up.
    ///
    /// Starts an embedded MQTT broker on a free loopback port, a data-centre
    /// receiver with its own SQLite store and a counter agent, with keys in a
    /// temporary directory; receives sample dossiers at the counter and shows
    /// each one signed, sent, verified and stored at the DC and receipted
    /// back. Then waits for Ctrl-C and removes the directory.
    #[cfg(feature = "demo")]
    Demo {
        /// How many sample dossiers to receive.
        #[arg(long, default_value_t = 12)]
        dossiers: u32,
        /// Keep everything in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
        /// Stop when every dossier is receipted instead of waiting for
        /// Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
    /// Check everything a counter needs, with a plain fix for each problem.
    ///
    /// Configuration, key file modes, the pinned DC key, TLS files and the
    /// certificate's days left, the clock, free disk, the store's
    /// integrity, the broker reachable, the TLS handshake and login, and a
    /// receipt round trip (the last receipted record sent again; the DC
    /// stores nothing twice). The login and the round trip are skipped while
    /// `motcua run` runs: the broker binds the client id to the
    /// certificate, so they would take over the agent's session. Exits 1
    /// when any check fails.
    Doctor {
        /// Seconds to wait for the broker and the DC's receipt.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
    },
    /// Set up this box as a counter: configuration, keys, TLS request.
    ///
    /// Writes the configuration (--config) from the documented template with
    /// the values given, the device's signing key and a TLS key (mode 0600)
    /// in --state-dir, a certificate signing request for the DC operator's
    /// 'motcua-dc ca sign', and the DC's CA certificate. Prints the
    /// enrollment line (and its QR code) for 'motcua-dc device add'.
    /// Existing keys are kept (run it again to change the broker or the DC
    /// key); --new-identity replaces them, and the DC must then enroll the
    /// device again. Run as root so the keys go to the service user.
    Provision(crate::provision::Options),
    /// Run the counter's agent: open the store and sync it to the DC.
    ///
    /// Sends every unsynced record to the DC's broker (TLS with the pinned
    /// CA and this device's certificate), marks records synced only on the
    /// DC's signed receipts, and reconnects with growing, jittered waits
    /// when the link drops. Runs until SIGINT or SIGTERM.
    Run,
    /// Manage the kiosk's staff accounts (login and password or PIN).
    ///
    /// Accounts live in kiosk.staff_file (default <state_dir>/staff.toml,
    /// mode 0600); only Argon2id hashes are stored. A running kiosk picks
    /// up changes at the next login.
    #[command(subcommand)]
    Staff(StaffCommand),
}

/// `motcua staff ...`.
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add an account; asks for the password or PIN (at least 6 characters).
    ///
    /// Reads it twice from the terminal without echo, or once from standard
    /// input when that is not a terminal (e.g. from a provisioning script),
    /// or from $MOTCUA_STAFF_SECRET.
    Add {
        /// The login, e.g. canbo.an (letters, digits, . _ @ -).
        id: motcua_protocol::StaffId,
        /// Full name, shown in the kiosk and on receipts.
        #[arg(long)]
        name: String,
        /// Set a new password (and name) for an existing account.
        #[arg(long)]
        replace: bool,
    },
    /// Disable an account: it can no longer log in; its records keep it.
    Disable {
        /// The login.
        id: motcua_protocol::StaffId,
    },
    /// List the accounts.
    List,
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

/// `motcua dossier ...`.
#[derive(Debug, Subcommand)]
pub enum DossierCommand {
    /// Receive a dossier described by a JSON file; print its code.
    ///
    /// The file's format is documented in docs/DOSSIER-INPUT.md. The code is
    /// printed only once the dossier and its signed journal record are
    /// durably stored. Refused input prints every problem, in Vietnamese,
    /// with a stable code, and exits 3.
    Add {
        /// The JSON file ('-' for standard input).
        #[arg(long)]
        json: PathBuf,
        /// The staff account receiving the dossier.
        #[arg(long)]
        staff: StaffId,
    },
    /// Show one dossier as its receipt shows it.
    Show {
        /// The dossier code, e.g. H49.12.3-261126-1001.
        code: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find dossiers by code, ID number, name (with or without diacritics) or date.
    Search {
        /// A dossier code or its beginning.
        #[arg(long)]
        code: Option<String>,
        /// A personal identification number.
        #[arg(long = "id")]
        id_number: Option<String>,
        /// Part of the applicant's name; "nguyen thi ha" finds "Nguyễn Thị Hà".
        #[arg(long)]
        name: Option<String>,
        /// The day received: dd/mm/yyyy or yyyy-mm-dd.
        #[arg(long)]
        date: Option<String>,
        /// Only today's dossiers.
        #[arg(long, conflicts_with = "date")]
        today: bool,
        /// Only dossiers past their appointment and not finished.
        #[arg(long)]
        overdue: bool,
        /// At most this many results, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a dossier's status (only the allowed moves are accepted).
    SetStatus {
        /// The dossier code.
        code: String,
        /// The new status, 1 to 10 (see docs/DOSSIER-INPUT.md).
        status: u8,
        /// The staff account making the change.
        #[arg(long)]
        staff: StaffId,
        /// A note for the record.
        #[arg(long)]
        note: Option<String>,
    },
}

/// `motcua journal ...`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Re-verify every signature and hash link of the journal; report the first break.
    Verify {
        /// Check signatures only from this seq on (every envelope's hash
        /// and every link are still checked from seq 1): for repeated
        /// checks of a growing journal whose earlier signatures were
        /// verified before.
        #[arg(long, value_name = "SEQ", default_value_t = 1)]
        signatures_from: u64,
    },
    /// Remove what store.retention says is no longer needed at the counter.
    ///
    /// Journal envelopes the data centre has receipted and that are older
    /// than the retention period lose their bytes (their seq and hash stay,
    /// so the chain still verifies); finished dossiers whose every record is
    /// receipted lose their personal data. Nothing not yet receipted is
    /// ever removed.
    Prune,
}

/// `motcua reference ...`.
#[derive(Debug, Subcommand)]
pub enum ReferenceCommand {
    /// Import a reference data file (procedures, holidays) if it is newer than the cached one.
    Import {
        /// The JSON file (format in docs/DOSSIER-INPUT.md).
        file: PathBuf,
    },
    /// List cached procedures, optionally those matching a code or name.
    List {
        /// Part of a code or name, with or without diacritics.
        query: Option<String>,
    },
}
