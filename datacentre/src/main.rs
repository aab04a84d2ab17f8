//! `motcua-dc`: parses the command line and dispatches. All work is in the
//! library crate.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use motcua_common::config::{LogFormat, LogLevel};
use motcua_common::{logging, out, outln};
use motcua_dc::cli::{
    AccessLogCommand, AccessLogFormat, BrokerCommand, CaCommand, Cli, Command, ConfigCommand,
    DeviceCommand, PublishCommand, UserCommand,
};
use motcua_dc::config::{BrokerAccess, DatabaseUrl, DcConfig};
use motcua_dc::receiver::{self, Processor, RunOptions};
use motcua_dc::store::{self, EnrollError, Enrolled};
use motcua_dc::{ca, identity, verify};
use motcua_protocol::{DeviceId, Enrollment};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => logging::fatal(&e),
    }
}

fn load(config: &Path) -> Result<DcConfig> {
    DcConfig::load(config)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {}", config.display()))
}

/// The key file from the flag, else from the configuration.
fn key_file(config: &Path, flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path);
    }
    let cfg =
        load(config).context("--key-file was not given, so it is read from the configuration")?;
    Ok(cfg.dc.key_file.as_path().to_owned())
}

/// The database from --database, else from the configuration.
fn database(cli: &Cli) -> Result<DatabaseUrl> {
    match &cli.database {
        Some(url) => url
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--database: {e}")),
        None => Ok(load(&cli.config)
            .context("--database was not given, so it is read from the configuration")?
            .database
            .url),
    }
}

fn open_store(cli: &Cli) -> Result<Box<dyn store::Store>> {
    let url = database(cli)?;
    store::open(&url).with_context(|| format!("opening the database {url}"))
}

fn run(cli: Cli) -> Result<ExitCode> {
    if !matches!(cli.command, Command::Run) {
        logging::init(LogFormat::Text, &LogLevel("warn".into()));
    }
    match &cli.command {
        Command::Keygen {
            key_file: flag,
            force,
        } => {
            let path = key_file(&cli.config, flag.clone())?;
            let public = identity::keygen(&path, *force)?;
            eprintln!(
                "Wrote the data-centre key to {} (mode 0600).",
                path.display()
            );
            eprintln!("Put this line in the [dc] section of every counter's agent.toml:");
            outln!("{}", identity::agent_config_line(&public));
        }
        Command::PublicKey { key_file: flag } => {
            let path = key_file(&cli.config, flag.clone())?;
            outln!(
                "{}",
                identity::agent_config_line(&identity::public_key(&path)?)
            );
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let path = file.clone().unwrap_or(cli.config);
            return Ok(motcua_common::config::check_command(&path, DcConfig::load));
        }
        Command::Run => return serve(&cli),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            motcua_common::clidocs::completions(Cli::command(), *shell, &mut std::io::stdout());
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            let pages = motcua_common::clidocs::man_pages(Cli::command(), dir)?;
            eprintln!("{} manual pages in {}", pages.len(), dir.display());
        }
        Command::Ca(cmd) => ca_command(cmd)?,
        Command::Device(cmd) => return device(&cli, cmd),
        Command::Alerts { after, limit } => {
            let mut s = open_store(&cli)?;
            for a in s.alerts(*after, *limit)? {
                let x = &a.alert;
                outln!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{} bytes\t{}",
                    a.id,
                    x.at,
                    x.device.as_ref().map_or("-", DeviceId::as_str),
                    x.reason,
                    x.seq.map_or("-".into(), |s| s.to_string()),
                    x.topic,
                    x.bytes.len(),
                    x.detail
                );
            }
        }
        Command::Fleet {
            json,
            silent_after,
            lag,
        } => {
            let mut s = open_store(&cli)?;
            let now = motcua_dc::receiver::now();
            let thresholds = motcua_dc::fleet::Thresholds {
                silent_after: *silent_after,
                lag: *lag,
                ..Default::default()
            };
            let rows = motcua_dc::fleet::collect(&mut *s, &now, thresholds)?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                out!("{}", motcua_dc::fleet::table(&rows, &now));
            }
        }
        Command::Publish(cmd) => return publish(&cli, cmd),
        Command::Broker(BrokerCommand::Access { out }) => {
            let cfg = load(&cli.config)?;
            let mut s = open_store(&cli)?;
            let devices = motcua_dc::access::active_devices(&mut *s)?;
            let file = motcua_dc::access::bootstrap(
                &cfg.broker.share_group.0,
                &cfg.broker.receivers.0,
                &devices,
            );
            let text = serde_json::to_string_pretty(&file)? + "\n";
            match out {
                None => print!("{text}"),
                Some(path) => {
                    write_private(path, text.as_bytes(), 0o640)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "wrote {}: {} receiver name(s), {} counter(s)",
                        path.display(),
                        cfg.broker.receivers.0.len(),
                        devices.len()
                    );
                }
            }
        }
        Command::Export {
            from,
            to,
            unit,
            format,
            delimiter,
            bom,
            out,
            purpose,
        } => {
            use motcua_dc::export::{Format, Style};
            let purpose = motcua_dc::rights::purpose(purpose)
                .map_err(|e| anyhow::anyhow!("--purpose: {e}"))?;
            if *format == Format::Jsonl && (*bom || delimiter.is_some()) {
                bail!("--bom and --delimiter are for --format csv or excel");
            }
            let mut style = Style::of(*format);
            if let Some(d) = delimiter {
                style.delimiter = *d;
            }
            let mut s = open_store(&cli)?;
            let filter = motcua_dc::export::Filter {
                unit: unit.clone(),
                from: *from,
                to: to.unwrap_or(*from),
            };
            if filter.to < filter.from {
                bail!("--to is before --from");
            }
            let mut sink: Box<dyn std::io::Write> = match out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            if *bom || style.bom() {
                sink.write_all(motcua_dc::export::BOM)?;
            }
            let bar = indicatif::ProgressBar::new_spinner().with_message("exporting");
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} records")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let what = export_line(&filter, *format);
            let who = format!("command:{}", command_user());
            let mut reader = motcua_dc::export::Reader::new(&mut *s, filter, None);
            let mut written = 0u64;
            let mut header = true;
            while !reader.done() {
                let page = reader.page(1000)?;
                if !page.is_empty() {
                    // Logged before the page is written: an export that
                    // cannot be logged writes nothing more.
                    let read: Vec<(DeviceId, u64)> =
                        page.iter().map(|r| (r.device.clone(), r.seq)).collect();
                    let entry = motcua_dc::rights::NewAccess {
                        who: who.clone(),
                        what: what.clone(),
                        purpose: purpose.clone(),
                        records: motcua_dc::rights::records_text(&read),
                        count: page.len() as u64,
                    };
                    reader
                        .store()
                        .access_append(&entry, &receiver::now())
                        .context("recording the export in the access log")?;
                }
                motcua_dc::export::write(&mut sink, &page, style, header)?;
                header = false;
                written += page.len() as u64;
                bar.set_position(written);
            }
            if header {
                motcua_dc::export::write(&mut sink, &[], style, true)?;
            }
            sink.flush()?;
            bar.finish_and_clear();
            eprintln!("{written} records exported ({} read)", reader.scanned);
        }
        Command::User(cmd) => return user_command(&cli, cmd),
        Command::AccessLog(cmd) => return access_log_command(&cli, cmd),
        Command::Verify { device } => {
            let mut s = open_store(&cli)?;
            let only = device
                .as_deref()
                .map(str::parse::<DeviceId>)
                .transpose()
                .map_err(|e| anyhow::anyhow!("device id: {e}"))?;
            let reports = verify::chains(&mut *s, only.as_ref())?;
            let mut broken = 0;
            for r in &reports {
                match &r.problem {
                    None => outln!("ok      {}: seq 1..={} intact", r.device, r.records),
                    Some(p) => {
                        broken += 1;
                        outln!("BROKEN  {}: {p}", r.device);
                    }
                }
            }
            if broken > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who runs this command, for the access log: the real user (uid from
/// the kernel, its name from /etc/passwd), and the login that used sudo
/// as sudo says, as a claim beside it. The environment alone names nobody:
/// `USER=someone` is anyone's to set.
fn command_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into());
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    match std::env::var("SUDO_USER").ok().filter(|s| !s.is_empty()) {
        Some(by) => format!("{name} (uid {uid}; sudo from {by})"),
        None => format!("{name} (uid {uid})"),
    }
}

/// The access log's `what` of an export.
fn export_line(f: &motcua_dc::export::Filter, format: motcua_dc::export::Format) -> String {
    let mut line = format!("export --from {} --to {}", f.from, f.to);
    if let Some(u) = &f.unit {
        line.push_str(&format!(" --unit {u}"));
    }
    line.push_str(&format!(" --format {}", format.name()));
    line
}

fn user_command(cli: &Cli, cmd: &UserCommand) -> Result<ExitCode> {
    use motcua_dc::rights::{Operator, OperatorName, Roles, weak};
    let name = |n: &str| {
        n.parse::<OperatorName>()
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    match cmd {
        UserCommand::Add {
            name: n,
            roles,
            replace,
        } => {
            let n = name(n)?;
            let password = motcua_common::login::read_secret(
                "MOTCUA_DC_PASSWORD",
                &format!("Password for {n} (at least 12 characters): "),
                "Again: ",
            )?;
            if let Some(w) = weak(&password) {
                bail!("{w}; nothing was changed");
            }
            let now = receiver::now();
            let o = Operator {
                name: n.clone(),
                hash: motcua_common::login::hash(&password)?,
                roles: Roles::of(roles.iter().copied()),
                added_at: now,
                changed_at: now,
                disabled_at: None,
            };
            let mut s = open_store(cli)?;
            if !s.operator_put(&o, *replace)? {
                bail!("{n} exists; --replace sets a new password and roles");
            }
            outln!(
                "{n}: {} ({})",
                if *replace { "set" } else { "created" },
                o.roles
            );
        }
        UserCommand::Disable { name: n } => {
            let n = name(n)?;
            let mut s = open_store(cli)?;
            if !s.operator_disable(&n, &receiver::now())? {
                bail!("no account {n}");
            }
            outln!("{n}: disabled");
        }
        UserCommand::List { json } => {
            let mut s = open_store(cli)?;
            let all = s.operators()?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                outln!("no accounts yet: motcua-dc user add NAME --role fleet");
            } else {
                outln!("{:<24} {:<22} {:<10} since", "account", "roles", "state");
                for o in &all {
                    outln!(
                        "{:<24} {:<22} {:<10} {}",
                        o.name,
                        o.roles.to_string(),
                        if o.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "enabled"
                        },
                        o.disabled_at.as_ref().unwrap_or(&o.changed_at)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn access_log_command(cli: &Cli, cmd: &AccessLogCommand) -> Result<ExitCode> {
    use motcua_dc::rights::Verifier;
    const PAGE: u32 = 1000;
    let mut s = open_store(cli)?;
    match cmd {
        AccessLogCommand::Verify { expect_head, json } => {
            let expect = expect_head
                .as_deref()
                .map(|h| {
                    h.split_once(':')
                        .and_then(|(i, x)| {
                            let hash: [u8; 32] = hex::decode(x).ok()?.try_into().ok()?;
                            Some((i.parse::<u64>().ok()?, hash))
                        })
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--expect-head is ID:HASH, the HASH 64 hex digits, as verify prints it"
                            )
                        })
                })
                .transpose()?;
            // The head of an empty log is always in the chain.
            let mut expected_found =
                matches!(expect, Some((0, h)) if h == motcua_dc::rights::GENESIS);
            let bar = indicatif::ProgressBar::new_spinner().with_message("verifying");
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} entries")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let mut v = Verifier::default();
            let mut after = 0;
            'pages: loop {
                let page = s.access_entries(after, PAGE)?;
                for e in &page {
                    if !v.step(e) {
                        break 'pages;
                    }
                    if let Some((id, hash)) = &expect
                        && e.id == *id
                        && e.hash == *hash
                    {
                        expected_found = true;
                    }
                    after = e.id;
                }
                bar.set_position(after);
                if page.len() < PAGE as usize {
                    break;
                }
            }
            bar.finish_and_clear();
            let (id, hash) = v.head();
            let missing_head = expect.is_some() && !expected_found;
            let ok = v.broken.is_none() && !missing_head;
            if *json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "ok": ok,
                        "entries": id,
                        "head": format!("{id}:{}", hex::encode(hash)),
                        "broken": v.broken,
                        "expected_head_found": expect.as_ref().map(|_| expected_found),
                    })
                );
            } else {
                match &v.broken {
                    None => outln!("ok      {id} entries, chain intact"),
                    Some(b) => outln!("BROKEN  at entry {}: {}", b.id, b.problem),
                }
                if missing_head {
                    outln!(
                        "BROKEN  the expected head {} is not in the chain: entries were cut from the end or rewritten",
                        expect_head.as_deref().unwrap_or_default()
                    );
                }
                outln!("head    {id}:{}", hex::encode(hash));
            }
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        AccessLogCommand::Export {
            from,
            to,
            format,
            out,
        } => {
            if let (Some(f), Some(t)) = (from, to)
                && t < f
            {
                bail!("--to is before --from");
            }
            let vn = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
            let day_of = |t: &motcua_protocol::UtcTime| t.get().to_offset(vn).date();
            let sink: Box<dyn std::io::Write> = match out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut csv = match format {
                AccessLogFormat::Csv => {
                    let mut w = csv::WriterBuilder::new()
                        .terminator(csv::Terminator::CRLF)
                        .from_writer(sink);
                    w.write_record([
                        "id", "at", "who", "what", "purpose", "records", "count", "prev", "hash",
                    ])?;
                    Ok(w)
                }
                AccessLogFormat::Jsonl => Err(sink),
            };
            let mut after = 0;
            let mut written = 0u64;
            loop {
                let page = s.access_entries(after, PAGE)?;
                for e in &page {
                    after = e.id;
                    let day = day_of(&e.at);
                    if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
                        continue;
                    }
                    written += 1;
                    match &mut csv {
                        Ok(w) => w.write_record([
                            e.id.to_string(),
                            e.at.to_string(),
                            e.who.clone(),
                            e.what.clone(),
                            e.purpose.clone(),
                            e.records.clone(),
                            e.count.to_string(),
                            hex::encode(e.prev),
                            hex::encode(e.hash),
                        ])?,
                        Err(sink) => {
                            serde_json::to_writer(&mut *sink, e)?;
                            sink.write_all(b"\n")?;
                        }
                    }
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
            match &mut csv {
                Ok(w) => w.flush()?,
                Err(sink) => sink.flush()?,
            }
            eprintln!("{written} access-log entries written");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_crl(dir: &Path, out: &Path, days: u32) -> Result<()> {
    let (pem, number, count) = ca::crl(dir, days)?;
    write_private(out, pem.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "wrote CRL number {number} ({count} revoked, valid {days} days) to {}: install it as the broker's crlfile and reload the broker",
        out.display()
    );
    Ok(())
}

fn ca_command(cmd: &CaCommand) -> Result<()> {
    match cmd {
        CaCommand::Init {
            dir,
            name,
            receivers,
            days,
            force,
        } => {
            let role = if *receivers {
                ca::CaRole::Receivers
            } else {
                ca::CaRole::Counters
            };
            let name = name.clone().unwrap_or_else(|| {
                match role {
                    ca::CaRole::Counters => "motcua DC CA",
                    ca::CaRole::Receivers => "motcua DC receivers CA",
                }
                .to_owned()
            });
            let cert = ca::init(dir, &name, role, *days, *force)?;
            match role {
                ca::CaRole::Counters => outln!(
                    "created the counters' CA {}; give it to the broker (cafile of the counters' listener), every counter (dc.ca_file) and every receiver (ca_file)",
                    cert.display()
                ),
                ca::CaRole::Receivers => outln!(
                    "created the receivers' CA {}; give it to the broker (cafile of the receivers' listener) only",
                    cert.display()
                ),
            }
        }
        CaCommand::Revoke {
            dir,
            certs,
            out,
            days,
        } => {
            for c in certs {
                let pem = std::fs::read_to_string(c)
                    .with_context(|| format!("reading {}", c.display()))?;
                let (name, new) =
                    ca::revoke(dir, &pem).with_context(|| format!("revoking {}", c.display()))?;
                if new {
                    outln!("revoked the certificate of {name} ({})", c.display());
                } else {
                    outln!(
                        "the certificate of {name} ({}) was already revoked",
                        c.display()
                    );
                }
            }
            write_crl(dir, out, *days)?;
        }
        CaCommand::Crl { dir, out, days } => write_crl(dir, out, *days)?,
        CaCommand::Issue {
            dir,
            name,
            server,
            hosts,
            days,
            out,
            force,
            ..
        } => {
            let role = if *server {
                ca::Role::Server {
                    hosts: hosts.clone(),
                }
            } else {
                ca::Role::Client
            };
            let out = out.as_deref().unwrap_or(dir);
            let issued = ca::issue(dir, name, &role, *days, out, *force)?;
            outln!(
                "issued {} (key {}, mode 0600)",
                issued.cert.display(),
                issued.key.display()
            );
        }
        CaCommand::Sign {
            dir,
            csr,
            days,
            out,
        } => {
            let pem = std::fs::read_to_string(csr)
                .with_context(|| format!("reading {}", csr.display()))?;
            let (cn, cert) = ca::sign_csr(dir, &pem, *days)?;
            match out {
                Some(path) => {
                    motcua_common::atomic::write(
                        path,
                        cert.as_bytes(),
                        0o644,
                        motcua_common::atomic::Overwrite::Allow,
                    )?;
                    eprintln!("signed a client certificate for {cn}: {}", path.display());
                }
                None => {
                    eprintln!("signed a client certificate for {cn}");
                    motcua_common::out!("{cert}");
                }
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` whole: a temporary file beside it with
/// `mode`, synced, then renamed over it.
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn device(cli: &Cli, cmd: &DeviceCommand) -> Result<ExitCode> {
    let mut s = open_store(cli)?;
    let now = receiver::now();
    match cmd {
        DeviceCommand::Add { line } => {
            let line = match line {
                Some(l) => l.clone(),
                None => {
                    let mut buf = String::new();
                    std::io::stdin()
                        .take(4096)
                        .read_to_string(&mut buf)
                        .context("reading the enrollment line from standard input")?;
                    buf
                }
            };
            let e: Enrollment = line
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("enrollment line refused: {e}"))?;
            if motcua_dc::is_receiver_name(e.device.as_str()) {
                bail!(
                    "{}: names starting with {} are the receivers' broker identities and cannot be device ids",
                    e.device,
                    motcua_dc::RECEIVER_IDENTITY
                );
            }
            match s.enroll(&e, &now)? {
                Ok(Enrolled::NewDevice) => {
                    outln!("enrolled {} with key {}", e.device, e.kid())
                }
                Ok(Enrolled::NewKey) => {
                    outln!(
                        "added key {} to {} (its earlier keys stay valid for its old records)",
                        e.kid(),
                        e.device
                    )
                }
                Ok(Enrolled::AlreadyEnrolled) => {
                    outln!("{} already has key {}; nothing changed", e.device, e.kid())
                }
                Err(err @ (EnrollError::KeyOfAnotherDevice { .. } | EnrollError::Revoked(_))) => {
                    bail!("{err}")
                }
            }
        }
        DeviceCommand::List => {
            outln!("DEVICE\tSTATE\tHEAD\tLAST SEEN\tKEYS");
            for d in s.devices()? {
                let state = match &d.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".into(),
                };
                let keys: Vec<String> = d.keys.iter().map(|k| k.kid.to_string()).collect();
                outln!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.device,
                    state,
                    d.head.seq,
                    d.last_seen.map_or("never".into(), |t| t.to_string()),
                    keys.join(",")
                );
            }
        }
        DeviceCommand::Revoke { device } => {
            let id: DeviceId = device
                .parse()
                .map_err(|e| anyhow::anyhow!("device id: {e}"))?;
            if !s.revoke(&id, &now)? {
                eprintln!("no enrolled device {id}");
                return Ok(ExitCode::FAILURE);
            }
            outln!("revoked {id}: its envelopes are refused and recorded from now on");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn publish(cli: &Cli, cmd: &PublishCommand) -> Result<ExitCode> {
    use motcua_dc::publish;
    let cfg = load(&cli.config)?;
    let key = motcua_common::keyfile::load(cfg.dc.key_file.as_path())
        .with_context(|| format!("loading the receipt key {}", cfg.dc.key_file))?;
    let mut s = open_store(cli)?;
    let now = receiver::now();
    let device =
        |d: &str| -> Result<DeviceId> { d.parse().map_err(|e| anyhow::anyhow!("device id: {e}")) };
    let (messages, what) = match cmd {
        PublishCommand::Catalogue { file } => {
            let json =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let m = publish::catalogue(&mut *s, &key, &json, &now)?;
            let what = format!("catalogue version {}", m.number);
            (vec![m], what)
        }
        PublishCommand::Units { file } => {
            let json =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let m = publish::units(&mut *s, &key, &json, &now)?;
            let what = format!("units version {}", m.number);
            (vec![m], what)
        }
        PublishCommand::Status {
            device: d,
            code,
            status,
            by,
            note,
        } => {
            let update = store::PendingUpdate {
                id: 0,
                code: code.clone(),
                status: *status,
                at: now,
                by: by.clone(),
                note: note.clone(),
            };
            let (m, pending) = publish::status(&mut *s, &key, &device(d)?, Some(update), &now)?;
            let what = format!(
                "status updates for {d}, seq {} ({pending} pending)",
                m.number
            );
            (vec![m], what)
        }
        PublishCommand::Settings {
            device: d,
            health_interval,
            clear,
        } => {
            if health_interval.is_none() && !clear {
                bail!(
                    "give --health-interval, or --clear to give the settings back to the counter"
                );
            }
            let m = publish::settings(&mut *s, &key, &device(d)?, *health_interval, &now)?;
            let what = format!("settings for {d}, seq {}", m.number);
            (vec![m], what)
        }
        PublishCommand::Again => {
            let all: Vec<publish::Signed> = s
                .down_all()?
                .into_iter()
                .map(|(topic, bytes)| publish::Signed {
                    topic,
                    number: 0,
                    bytes,
                })
                .collect();
            let what = format!("{} kept messages", all.len());
            (all, what)
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(publish::send(&cfg.broker.broker, &messages, Duration::from_secs(30)))
        .context("kept in the database but not published: run 'motcua-dc publish again' once the broker is reachable")?;
    outln!("published {what}");
    Ok(ExitCode::SUCCESS)
}

fn serve(cli: &Cli) -> Result<ExitCode> {
    let cfg = load(&cli.config)?;
    logging::init(cfg.log.format, &cfg.log.level);
    let url = match &cli.database {
        Some(_) => database(cli)?,
        None => cfg.database.url.clone(),
    };
    let key = motcua_common::keyfile::load(cfg.dc.key_file.as_path())
        .with_context(|| format!("loading the receipt key {}", cfg.dc.key_file))?;
    let store = store::open(&url).with_context(|| format!("opening the database {url}"))?;
    let public = key.verifying_key();
    let kid = motcua_protocol::KeyId::of(&public);
    let metrics = Arc::new(motcua_dc::metrics::Metrics::new());
    let processor = Processor::new(store, key).with_metrics(metrics.clone());
    // Read before anything starts: a certificate that does not load is a
    // configuration error, not a dashboard that silently never answers.
    let tls = match cfg.http.tls() {
        Some((cert, key)) if cfg.http.bind.is_some() => Some(
            motcua_common::https::acceptor(cert, key).context("http.tls_cert and http.tls_key")?,
        ),
        _ => None,
    };
    let http = match cfg.http.bind {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("http.bind {addr}: cannot listen (another receiver on this machine? give each its own port, or \"off\")"))?;
            listener.set_nonblocking(true)?;
            let web_store = store::open(&url)
                .with_context(|| format!("opening the database {url} for the dashboard"))?;
            Some((
                listener,
                motcua_dc::web::Web::new(web_store, metrics.clone())
                    .with_unit_names(public)
                    .with_auth(motcua_dc::web::auth::Auth::new(
                        cfg.http.idle_timeout,
                        cfg.http.max_failures,
                        cfg.http.lockout,
                        cfg.http.tls().is_some(),
                    )),
            ))
        }
        None => None,
    };
    let threads = match cfg.dc.verify_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let verifiers = (0..threads)
        .map(|_| store::open(&url))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("opening the database {url} for the verifiers"))?;
    let keeper = match cfg.broker.access {
        BrokerAccess::Off => None,
        BrokerAccess::MosquittoDynsec => Some(motcua_dc::access::Keeper {
            store: store::open(&url)
                .with_context(|| format!("opening the database {url} for the access list"))?,
            group: cfg.broker.share_group.0.clone(),
            receivers: cfg.broker.receivers.0.clone(),
            every: cfg.broker.access_every,
            answer_within: Duration::from_secs(10),
            metrics: Some(metrics.clone()),
        }),
    };
    tracing::info!(database = %url, %kid, verify_threads = threads, access = %cfg.broker.access, "receiver starting");
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let opts = RunOptions {
        broker: cfg.broker.broker.clone(),
        share_group: cfg.broker.share_group.0.clone(),
        keep_alive: Duration::from_secs(30),
        reconnect_max: Duration::from_secs(30),
        watchdog: true,
    };
    motcua_common::notify::ready("database open; connecting to the broker");
    let stats = rt.block_on(async {
        let s = stop.clone();
        tokio::spawn(async move {
            motcua_common::shutdown::signal().await;
            s.store(true, Ordering::Relaxed);
        });
        if let Some((listener, web)) = http {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let local = listener.local_addr()?;
            let app = motcua_dc::web::router(web);
            match &tls {
                None => {
                    tracing::info!("dashboard, JSON API and metrics at http://{local}/");
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, app).await {
                            tracing::error!(error = %e, "the dashboard stopped");
                        }
                    });
                }
                Some(acceptor) => {
                    tracing::info!("dashboard, JSON API and metrics at https://{local}/");
                    let listener = motcua_common::https::Listener::new(listener, acceptor.clone());
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, app).await {
                            tracing::error!(error = %e, "the dashboard stopped");
                        }
                    });
                }
            }
        }
        receiver::run_keeping(opts, processor, verifiers, keeper, stop.clone(), || {
            tracing::info!("subscribed; receiving");
        })
        .await
    })?;
    motcua_common::notify::stopping();
    tracing::info!(
        stored = stats.stored,
        duplicates = stats.duplicates,
        alerts = stats.alerts,
        receipts = stats.receipts,
        "receiver stopped"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        motcua_dc::cli::Cli::command().debug_assert();
    }
}
