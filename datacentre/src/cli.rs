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

    /// Database URL, overriding database.url of the configuration:
    /// sqlite:///var/lib/motcua-dc/motcua-dc.db or postgres://user@host/db.
    /// With it, the registry commands need no configuration file.
    #[arg(long, global = true, env = "MOTCUA_DC_DATABASE")]
    pub database: Option<String>,

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
    /// Receive counters' submissions: verify, store each once, receipt.
    ///
    /// Connects to the broker of the configuration, joins the shared
    /// subscription group (several receivers may run against one broker and
    /// one database), and runs until SIGINT or SIGTERM. Refused messages
    /// are kept in the alerts table with their raw bytes.
    Run,
    /// Enroll, list and revoke counters.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Show refused messages (bad signatures, conflicts, unknown devices...).
    Alerts {
        /// Only alerts with an id above this.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The fleet at a glance: every counter, those needing a technician first.
    ///
    /// One row per enrolled counter: its unit, presence (online, offline,
    /// unknown, revoked; from the retained status and the MQTT last will),
    /// when the DC last heard from it, its chain head here, its backlog and
    /// sync lag (age of its oldest unreceipted record) from its latest
    /// health report, its alerts by reason, and what needs attention.
    Fleet {
        /// Print JSON (one array, every health report in full) instead of
        /// the table.
        #[arg(long)]
        json: bool,
        /// An online counter with no health report for this long is
        /// flagged ("no health report").
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        silent_after: std::time::Duration,
        /// A counter whose oldest unreceipted record is older than this is
        /// flagged ("sync lagging").
        #[arg(long, default_value = "15m", value_parser = parse_duration)]
        lag: std::time::Duration,
    },
    /// Send counters what they cache: the catalogue, status updates,
    /// settings.
    ///
    /// Each message is signed with the receipt key (counters verify it
    /// against the public key they pin), kept in the database and
    /// published retained, so a counter offline now gets it when it
    /// reconnects. Needs the configuration (broker, key, database).
    #[command(subcommand)]
    Publish(PublishCommand),
    /// Export stored records for the provincial systems, by date and unit.
    ///
    /// Every record is verified again against its counter's enrolled keys
    /// and written with its dossier code, unit, staff, body as signed
    /// (citizens' personal data included: handle the output accordingly)
    /// and the signed envelope in hex.
    Export {
        /// First day, in Vietnam: YYYY-MM-DD or dd/mm/yyyy.
        #[arg(long, value_parser = parse_day)]
        from: time::Date,
        /// Last day, included [default: the first day].
        #[arg(long, value_parser = parse_day)]
        to: Option<time::Date>,
        /// Only this unit's dossiers (e.g. H49.12.3).
        #[arg(long)]
        unit: Option<String>,
        /// Output format: JSON lines; CSV for programs (a header, one
        /// column per field, the body as one JSON text); or CSV for a
        /// spreadsheet ("excel": a UTF-8 byte order mark, `;` between
        /// fields, one column per member of the body, identification
        /// numbers kept with their leading zeros and formulas shown, not
        /// run). Double-clicked in a Vietnamese Windows, "excel" opens in
        /// columns.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: crate::export::Format,
        /// Separator between CSV fields [default: semicolon for excel,
        /// comma for csv]. For Excel in a Windows whose list separator is
        /// a comma (English regional settings), give comma.
        #[arg(long, value_enum)]
        delimiter: Option<crate::export::Delimiter>,
        /// Start the CSV with a UTF-8 byte order mark, so that Excel reads
        /// its Vietnamese text as UTF-8 (other programs may show the mark
        /// as a stray character before the first column's name). Always
        /// so for excel.
        #[arg(long)]
        bom: bool,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Why these records are read (3 to 200 characters), e.g. "đối
        /// soát tháng 11 với hệ thống một cửa tỉnh". Recorded with every
        /// page exported in the access log, with who ran the command.
        #[arg(long)]
        purpose: String,
    },
    /// Operators' accounts for the dashboard and the HTTP API.
    #[command(subcommand)]
    User(UserCommand),
    /// The access log: every read of citizens' personal data.
    #[command(subcommand, name = "access-log")]
    AccessLog(AccessLogCommand),
    /// The broker's certificate authority: create it, issue certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The broker's access list (Mosquitto's dynamic-security plugin).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// The Debian package installs the bash, zsh and fish ones.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (motcua-dc.1 and one per command) into a
    /// directory.
    #[command(hide = true)]
    Man {
        /// The directory.
        dir: PathBuf,
    },
    /// Re-verify stored chains: every signature against the enrolled keys,
    /// every link, from seq 1 to the head. Exits 1 on any break.
    Verify {
        /// Only this device [default: every device].
        device: Option<String>,
    },
}

/// `motcua-dc user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an operator's account (or with --replace set a new password
    /// and roles, enabling it again).
    ///
    /// The password (at least 12 characters) is read twice without echo
    /// from a terminal, once from a pipe, or from $MOTCUA_DC_PASSWORD;
    /// only its Argon2id hash is stored, in the database, so every
    /// receiver sharing it knows the account.
    Add {
        /// The login: 1 to 64 of a-z, 0-9, '.', '_', '-'.
        name: String,
        /// What the account may do: fleet (dashboard, fleet API, metrics;
        /// no personal data), records (citizens' records, each read logged
        /// with its purpose), admin. Repeat for several.
        #[arg(long = "role", required = true, value_parser = crate::rights::Role::from_str_arg)]
        roles: Vec<crate::rights::Role>,
        /// Replace an existing account's password and roles.
        #[arg(long)]
        replace: bool,
    },
    /// Disable an account: it can no longer log in, and its open sessions
    /// end at their next request. Its entries in the access log stay.
    Disable {
        /// The login.
        name: String,
    },
    /// List the accounts and their roles.
    List {
        /// Print JSON (an array).
        #[arg(long)]
        json: bool,
    },
}

/// `motcua-dc access-log ...`.
#[derive(Debug, Subcommand)]
pub enum AccessLogCommand {
    /// Recompute the access log's hash chain from its first entry; exits 1
    /// at the first edited, removed or inserted entry.
    ///
    /// Prints the head (last entry's number and hash). Entries removed
    /// from the end leave a shorter chain that is still whole: keep the
    /// head printed now somewhere else (a ticket, the DPO's register) and
    /// give it to a later run with --expect-head, which fails unless that
    /// entry is still there with that hash.
    Verify {
        /// ID:HASH of an earlier head, which must still be in the chain.
        #[arg(long)]
        expect_head: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the access log for the province's data protection officer.
    Export {
        /// Only entries on or after this day (Vietnam): YYYY-MM-DD or
        /// dd/mm/yyyy.
        #[arg(long, value_parser = parse_day)]
        from: Option<time::Date>,
        /// Only entries on or before this day.
        #[arg(long, value_parser = parse_day)]
        to: Option<time::Date>,
        /// JSON lines, or CSV (a header, then one row per entry).
        #[arg(long, value_enum, default_value = "jsonl")]
        format: AccessLogFormat,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `motcua-dc access-log export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Jsonl,
    /// CSV (RFC 4180, UTF-8, comma).
    Csv,
}

/// `motcua-dc broker ...`.
#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Write the broker's whole access list for the registry as it is now.
    ///
    /// The file Mosquitto's dynamic-security plugin starts from
    /// (plugin_opt_config_file in motcua.conf; docs/BROKER.md): every name
    /// of [broker] receivers may join the receivers' group and write every
    /// counter's receipts and downstream topics; each enrolled, unrevoked
    /// counter may publish and subscribe only its own topics and the
    /// broadcasts; everything else is refused, subscriptions included.
    /// Once Mosquitto runs, `motcua-dc run` with [broker] access =
    /// "mosquitto-dynsec" keeps the list in step with the registry itself.
    /// Needs the configuration (receivers, share group, database).
    Access {
        /// Write here (mode 0640, replaced whole) instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `motcua-dc publish ...`.
#[derive(Debug, Subcommand)]
pub enum PublishCommand {
    /// Publish the procedure catalogue and calendar to every counter.
    ///
    /// FILE is the JSON that `motcua reference import` reads
    /// (docs/DOSSIER-INPUT.md); its version must be higher than the last
    /// one published. Counters replace their cached catalogue with it.
    Catalogue {
        /// The catalogue JSON.
        file: PathBuf,
    },
    /// Publish the receiving units' names and places to every counter.
    ///
    /// FILE is `{"version": N, "units": [{"code": "H49.12.3", "name":
    /// "UBND xã Tam Thăng", "place": "Tam Thăng"}]}`
    /// (docs/DOSSIER-INPUT.md); its version must be higher than the last
    /// one published. Counters print the name and place on their forms
    /// instead of the unit code; the dashboard shows names beside codes.
    Units {
        /// The units JSON.
        file: PathBuf,
    },
    /// Tell a counter that one of its dossiers changed status elsewhere
    /// (e.g. the district finished processing: 9).
    ///
    /// The update joins the counter's pending list, which is published as
    /// a whole; the counter applies each update it has not yet applied
    /// when the move is allowed from the dossier's status there, and
    /// reports conflicts otherwise (docs/PROTOCOL.md, 7.3).
    Status {
        /// The counter's device id.
        device: String,
        /// The dossier code.
        code: String,
        /// The new national status value: 4 in process, 5 documents
        /// requested, 6 payment required, 8 stopped, 9 result ready...
        status: u8,
        /// The deciding office, shown to the clerk (e.g. "UBND huyện Phú Ninh").
        #[arg(long)]
        by: String,
        /// A note for the clerk.
        #[arg(long)]
        note: Option<String>,
    },
    /// Override settings on one counter.
    Settings {
        /// The counter's device id.
        device: String,
        /// Health report interval (10s to 1h), e.g. 5m.
        #[arg(long, value_parser = parse_duration, conflicts_with = "clear")]
        health_interval: Option<std::time::Duration>,
        /// Give every setting back to the counter's own configuration.
        #[arg(long)]
        clear: bool,
    },
    /// Publish every kept message again (after the broker lost its
    /// retained messages).
    Again,
}

/// `motcua-dc device ...`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Enroll a counter from the line `motcua keygen` printed on it.
    ///
    /// The line is `motcua-enroll v1 DEVICE ed25519:HEX kid:HEX`; the kid is
    /// recomputed and must match (a copying error is refused). Enrolling a
    /// new key for a known device adds it (key rotation); old keys stay so
    /// old records remain verifiable.
    Add {
        /// The enrollment line [default: read from standard input].
        line: Option<String>,
    },
    /// List enrolled counters with their chain heads and keys.
    List,
    /// Revoke a counter (e.g. a stolen box): its envelopes are refused and
    /// recorded from now on. A revoked id is never enrolled again.
    Revoke {
        /// The device id.
        device: String,
    },
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

/// `motcua-dc ca ...`. Keys and certificates are ECDSA P-256, keys written
/// mode 0600; nothing existing is replaced without --force.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA: DIR/ca.pem (give it to the broker and every counter)
    /// and DIR/ca.key (keep it off the network).
    ///
    /// Two are needed (docs/BROKER.md): the counters' CA (counters and the
    /// broker's own certificate) and, with --receivers, the receivers' CA,
    /// which issues only names starting with motcua-dc; the counters' CA
    /// never issues those.
    Init {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The CA's name [default: "motcua DC CA", or "motcua DC receivers
        /// CA" with --receivers].
        #[arg(long)]
        name: Option<String>,
        /// The receivers' CA.
        #[arg(long)]
        receivers: bool,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace an existing CA (every certificate it issued stops being
        /// trusted by those given the new ca.pem).
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate and a new key: OUT/NAME.pem and OUT/NAME.key.
    ///
    /// --server for the broker (with every --host clients connect to),
    /// --client for a receiver (NAME motcua-dc) or a counter (NAME = its
    /// device id: the broker's ACL takes the name as the user).
    Issue {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate's common name.
        #[arg(long)]
        name: String,
        /// A broker certificate.
        #[arg(long, conflicts_with = "client", required_unless_present = "client")]
        server: bool,
        /// A DNS name or IP address of the broker (repeat for several).
        #[arg(long = "host", requires = "server")]
        hosts: Vec<String>,
        /// A client certificate.
        #[arg(long)]
        client: bool,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Where to write [default: the CA directory].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Revoke certificates this CA issued, and write a new CRL.
    ///
    /// Records each certificate's serial in DIR/revoked.tsv, then writes a
    /// CRL of every certificate revoked so far, signed by the CA, to
    /// --out. Install it as the broker's crlfile and reload the broker
    /// (systemctl reload mosquitto): from then on the certificate's TLS
    /// handshake is refused (docs/BROKER.md, "Revocation"). Revoke the
    /// device at the DC as well (motcua-dc device revoke).
    Revoke {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The certificates (PEM): the copies kept when they were issued,
        /// or a counter's /etc/motcua/device.crt.
        #[arg(required = true)]
        certs: Vec<PathBuf>,
        /// Where to write the CRL (PEM).
        #[arg(long)]
        out: PathBuf,
        /// The CRL's validity in days: write a new one (motcua-dc ca crl)
        /// before then, or the broker refuses every client.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Write the CRL again: every certificate revoked so far, a new next
    /// update. Run it well before the last CRL's next update (a timer),
    /// and once with no certificate revoked to enable crlfile.
    Crl {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// Where to write the CRL (PEM).
        #[arg(long)]
        out: PathBuf,
        /// The CRL's validity in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Sign a counter's certificate request (from `motcua provision`).
    ///
    /// Only the request's key and common name (the device id) are used;
    /// the certificate is for client authentication only. Prints the
    /// certificate, or writes it with --out.
    Sign {
        /// The CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The request file (PEM).
        csr: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Write the certificate here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<motcua_common::config::HumanDuration>()
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}

/// A day as operators type it: `YYYY-MM-DD` or `dd/mm/yyyy`.
pub fn parse_day(s: &str) -> Result<time::Date, String> {
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let vn = time::macros::format_description!("[day]/[month]/[year]");
    time::Date::parse(s, iso)
        .or_else(|_| time::Date::parse(s, vn))
        .map_err(|_| format!("{s:?} is not a day: write 2026-11-27 or 27/11/2026"))
}
