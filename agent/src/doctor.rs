//! `motcua doctor`: one table of checks for the technician, each with a
//! plain fix, and a nonzero exit when any fails.
//!
//! Checks, in order: the configuration; the device key and its mode; the
//! DC's receipt key pinned; the TLS files and the certificate's days left;
//! the clock; free disk; the store's integrity; the broker reachable over
//! TCP; the TLS handshake and MQTT login; a receipt round trip (the last
//! receipted record sent again: the DC stores nothing twice and answers
//! with a signed receipt, verified against the pinned key). A check that
//! cannot run because an earlier one failed is skipped, not failed.
//!
//! Nothing printed holds personal data: paths, ids, seqs, key ids.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use motcua_common::keyfile;
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{Receipt, verify};
use rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS};

use crate::config::AgentConfig;
use motcua_counter::clock::Clock;
use motcua_counter::store::Reader;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: the counter cannot work as it should.
    Fail,
    /// Not run (an earlier check failed, or nothing to check).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when fine).
    pub fix: String,
}

fn row(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Certificates expiring within this many days are a warning.
const CERT_WARN_DAYS: i64 = 30;

/// Runs every check against the configuration at `config`.
pub fn run(config: &Path, timeout: Duration) -> Vec<Check> {
    let mut out = Vec::new();
    let cfg = match AgentConfig::load(config) {
        Ok(c) => {
            out.push(row(
                "configuration",
                Status::Ok,
                format!("{} checks", config.display()),
                "",
            ));
            c
        }
        Err(e) => {
            out.push(row(
                "configuration",
                Status::Fail,
                format!("{}: {e}", config.display()),
                format!(
                    "motcua config check {} shows every problem with its key",
                    config.display()
                ),
            ));
            return out;
        }
    };

    let key = keyfile::load(cfg.device.key_file.as_path());
    out.push(match &key {
        Ok(k) => row(
            "device key",
            Status::Ok,
            format!(
                "{} (0600), kid {}",
                cfg.device.key_file,
                motcua_protocol::KeyId::of(&k.verifying_key())
            ),
            "",
        ),
        Err(e) => row(
            "device key",
            Status::Fail,
            e.to_string(),
            "chmod 600 the key if only its mode is wrong; if it is missing, run motcua provision (a new key must be enrolled at the DC)",
        ),
    });

    out.push(row(
        "DC key pinned",
        Status::Ok,
        format!("kid {}", motcua_protocol::KeyId::of(&cfg.dc.public_key.0)),
        "",
    ));

    out.push(tls_files(&cfg));
    out.push(clock(&cfg));
    out.push(disk(&cfg));
    let (store_check, last) = store(&cfg);
    out.push(store_check);

    let reachable = tcp(&cfg, timeout);
    let can_connect = reachable.status == Status::Ok;
    out.push(reachable);
    let tls_ok = out
        .iter()
        .all(|c| c.name != "TLS files" || c.status != Status::Fail);
    if can_connect && tls_ok && cfg.store.state_dir.agent_running() {
        // The broker binds the client id to the certificate's name: a
        // login of ours would take the running agent's session, and the DC
        // would see the counter drop. The agent's own sync shows instead.
        let synced = match &last {
            Some((seq, _)) => format!("the journal's last record is seq {seq}"),
            None => "no record in the store yet".into(),
        };
        out.push(row(
            "broker login",
            Status::Skip,
            "motcua run is running and holds this counter's broker session",
            "",
        ));
        out.push(row(
            "receipt round trip",
            Status::Skip,
            format!("left to the running agent ({synced}; motcua status shows what is receipted)"),
            "stop the agent (systemctl stop motcua-agent) to test the round trip from here",
        ));
    } else if can_connect && tls_ok {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match rt {
            Ok(rt) => out.extend(rt.block_on(round_trip(&cfg, last, timeout))),
            Err(e) => out.push(row("broker login", Status::Fail, e.to_string(), "")),
        }
    } else {
        out.push(row(
            "broker login",
            Status::Skip,
            "the broker cannot be reached",
            "",
        ));
        out.push(row(
            "receipt round trip",
            Status::Skip,
            "the broker cannot be reached",
            "",
        ));
    }
    out
}

fn tls_files(cfg: &AgentConfig) -> Check {
    let Some(files) = &cfg.dc.broker.tls else {
        return row(
            "TLS files",
            Status::Warn,
            "plain MQTT (allow_plaintext): nothing is encrypted",
            "only for a local demo; give dc.ca_file, client_cert and client_key for the DC",
        );
    };
    if let Err(e) = motcua_common::mqtt::read_certs(files.ca_file.as_path()) {
        return row(
            "TLS files",
            Status::Fail,
            e.to_string(),
            "install the DC's CA certificate (motcua provision --ca)",
        );
    }
    if let Err(e) = motcua_common::mqtt::read_private_key(files.client_key.as_path()) {
        return row(
            "TLS files",
            Status::Fail,
            e.to_string(),
            "chmod 600 the TLS key, or run motcua provision",
        );
    }
    let certs = match motcua_common::mqtt::read_certs(files.client_cert.as_path()) {
        Ok(c) => c,
        Err(e) => {
            return row(
                "TLS files",
                Status::Fail,
                e.to_string(),
                "have the DC operator sign device.csr (motcua-dc ca sign) and copy the certificate to dc.client_cert",
            );
        }
    };
    let parsed = x509_parser::parse_x509_certificate(&certs[0]);
    let Ok((_, cert)) = parsed else {
        return row(
            "TLS files",
            Status::Fail,
            format!("{}: not an X.509 certificate", files.client_cert),
            "have the DC operator sign device.csr again",
        );
    };
    let left = (cert.validity().not_after.timestamp()
        - time::OffsetDateTime::now_utc().unix_timestamp())
    .div_euclid(86_400);
    let subject = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("?")
        .to_owned();
    if subject != cfg.device.id.as_str() {
        return row(
            "TLS files",
            Status::Fail,
            format!(
                "the certificate is for {subject:?}, this device is {}",
                cfg.device.id
            ),
            "the broker's ACL confines each device to its own topics by this name: sign this device's device.csr",
        );
    }
    let (status, fix) = if left < 0 {
        (
            Status::Fail,
            "the certificate has expired: have device.csr signed again",
        )
    } else if left < CERT_WARN_DAYS {
        (Status::Warn, "renew soon: have device.csr signed again")
    } else {
        (Status::Ok, "")
    };
    row(
        "TLS files",
        status,
        format!("certificate for {subject}, {left} days left"),
        fix,
    )
}

fn clock(cfg: &AgentConfig) -> Check {
    let reading = crate::cmd::clock(cfg).now();
    let at = motcua_protocol::UtcTime::new(reading.at);
    if reading.synced() {
        return row("clock", Status::Ok, format!("synchronised, {at}"), "");
    }
    const NTP: &str = "enable systemd-timesyncd (timedatectl set-ntp true) with an NTP server the box reaches, or set device.clock_marker";
    // What the running agent learnt of the DC's time in this boot.
    let learnt = motcua_counter::clock::SavedLesson::load(&cfg.store.state_dir.clock_lesson())
        .zip(crate::health::boot())
        .and_then(|(saved, boot)| saved.now(&boot));
    if let Some(dc) = learnt {
        return row(
            "clock",
            Status::Warn,
            format!(
                "not synchronised; records take the DC's time from its receipts: {} (within {} ms), the system clock reads {at} ({} s off)",
                motcua_protocol::UtcTime::new(dc.at),
                dc.bound_ms,
                -dc.system_offset.whole_seconds(),
            ),
            NTP,
        );
    }
    // The writer's rule: no earlier than 2026, nor more than a day behind
    // the last record.
    use motcua_counter::store::writer::{CLOCK_FLOOR, CLOCK_SLACK};
    let last = Reader::open(&cfg.store.state_dir.db())
        .ok()
        .and_then(|r| r.last_at().ok().flatten());
    let floor = last.map_or(CLOCK_FLOOR, |l| (l.get() - CLOCK_SLACK).max(CLOCK_FLOOR));
    if reading.at < floor {
        let why = match last {
            Some(l) if floor > CLOCK_FLOOR => {
                format!("more than a day before the last record ({l})")
            }
            _ => "before 2026".into(),
        };
        return row(
            "clock",
            Status::Fail,
            format!(
                "not synchronised and reads {at}, {why}: it cannot be right; the DC's time is not learnt yet"
            ),
            "new dossiers are refused until the agent reaches the DC (it takes the DC's time from the first receipt) or NTP answers; check the network, then NTP",
        );
    }
    row(
        "clock",
        Status::Warn,
        format!("not known synchronised, reads {at}"),
        format!("records are stamped \"clock unknown\" until the agent reaches the DC; {NTP}"),
    )
}

fn disk(cfg: &AgentConfig) -> Check {
    let dir = cfg.store.state_dir.path();
    match motcua_counter::store::disk::free_bytes(dir) {
        Ok(free) => {
            let min = cfg.store.min_free.0;
            let mib = |b: u64| b / (1 << 20);
            if free < min {
                row(
                    "free disk",
                    Status::Fail,
                    format!(
                        "{} MiB free in {dir:?}, below store.min_free {} MiB",
                        mib(free),
                        mib(min)
                    ),
                    "free space on the SD card: new dossiers are refused below store.min_free",
                )
            } else if free < min.saturating_mul(4) {
                row(
                    "free disk",
                    Status::Warn,
                    format!(
                        "{} MiB free, close to store.min_free {} MiB",
                        mib(free),
                        mib(min)
                    ),
                    "free space soon",
                )
            } else {
                row(
                    "free disk",
                    Status::Ok,
                    format!("{} MiB free", mib(free)),
                    "",
                )
            }
        }
        Err(e) => row(
            "free disk",
            Status::Fail,
            format!("{}: {e}", dir.display()),
            "create the state directory (motcua provision) and check its owner",
        ),
    }
}

/// The store's check, and the record to send for the round trip.
fn store(cfg: &AgentConfig) -> (Check, Option<(u64, Vec<u8>)>) {
    let path = cfg.store.state_dir.db();
    if !path.exists() {
        return (
            row(
                "store",
                Status::Ok,
                "no store yet: created on first use",
                "",
            ),
            None,
        );
    }
    let reader = match Reader::open(&path) {
        Ok(r) => r,
        Err(e) => {
            return (
                row(
                    "store",
                    Status::Fail,
                    e.to_string(),
                    "check the state directory's owner and mode",
                ),
                None,
            );
        }
    };
    let quick: Result<String, _> = reader
        .connection()
        .query_row("PRAGMA quick_check", [], |r| r.get(0));
    match quick {
        Ok(s) if s == "ok" => {}
        Ok(s) => {
            return (
                row(
                    "store",
                    Status::Fail,
                    format!("SQLite quick_check: {s}"),
                    "keep the card for the DC's technicians; do not delete the store",
                ),
                None,
            );
        }
        Err(e) => return (row("store", Status::Fail, e.to_string(), ""), None),
    }
    let through = reader.receipted_through().unwrap_or(0);
    let unsynced = reader.unsynced(through, 1).ok().unwrap_or_default();
    // Every signature again: seconds on a big store on a slow board, so
    // a bar on the terminal (indicatif draws nothing when stderr is not
    // one) until the table can be printed.
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("checking the journal {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let journal = reader.verify_journal_with(|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let check = match journal {
        Ok(Ok(report)) => row(
            "store",
            Status::Ok,
            format!(
                "integrity ok; {} records, {} signatures verified; receipted through seq {through}",
                report.records, report.signatures
            ),
            "",
        ),
        Ok(Err(b)) => row(
            "store",
            Status::Fail,
            b.to_string(),
            "keep the card for the DC's technicians; do not delete the store",
        ),
        Err(e) => row("store", Status::Fail, e.to_string(), ""),
    };
    let last = if through > 0 {
        reader
            .connection()
            .query_row(
                "SELECT envelope FROM journal WHERE seq = ?",
                [through as i64],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .ok()
            .map(|e| (through, e))
    } else {
        unsynced.into_iter().next().map(|p| (p.seq, p.envelope))
    };
    (check, last)
}

fn tcp(cfg: &AgentConfig, timeout: Duration) -> Check {
    let url = &cfg.dc.broker.url;
    let addrs = match (url.host.as_str(), url.port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            return row(
                "broker reachable",
                Status::Fail,
                format!("{}: name not resolved: {e}", url.host),
                "check DNS on the box (resolvectl status) or use the broker's address",
            );
        }
    };
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(_) => return row("broker reachable", Status::Ok, format!("TCP to {a}"), ""),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    row(
        "broker reachable",
        Status::Fail,
        last,
        "check the SD-WAN link and that the DC's firewall lets this office reach the broker's port",
    )
}

/// Login, then the round trip; two rows.
async fn round_trip(
    cfg: &AgentConfig,
    last: Option<(u64, Vec<u8>)>,
    timeout: Duration,
) -> Vec<Check> {
    let device = &cfg.device.id;
    // The broker takes the certificate's name as the client id whatever is
    // asked; the device id is that name.
    let client_id = device.to_string();
    let opts =
        match motcua_common::mqtt::options(&cfg.dc.broker, &client_id, Duration::from_secs(30)) {
            Ok(o) => o,
            Err(e) => {
                return vec![
                    row(
                        "broker login",
                        Status::Fail,
                        e.to_string(),
                        "check the TLS files",
                    ),
                    row("receipt round trip", Status::Skip, "", ""),
                ];
            }
        };
    let (client, mut events) = AsyncClient::builder(opts).capacity(16).build();
    let receipt_topic = topics::device_topic(device, &Channel::Receipt);
    let up_topic = topics::device_topic(device, &Channel::Up);
    let start = Instant::now();
    let mut login: Option<Check> = None;
    let result = loop {
        let left = timeout.saturating_sub(start.elapsed());
        let event = match tokio::time::timeout(left, events.poll()).await {
            Err(_) => break None,
            Ok(e) => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                login = Some(row(
                    "broker login",
                    Status::Ok,
                    format!("{} as {client_id}", cfg.dc.broker.url),
                    "",
                ));
                if last.is_none() {
                    break Some(row(
                        "receipt round trip",
                        Status::Skip,
                        "no record in the store yet",
                        "",
                    ));
                }
                let _ = client.try_subscribe(receipt_topic.clone(), QoS::AtLeastOnce);
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some((_, envelope)) = &last {
                    let _ = client.try_publish(
                        up_topic.as_str(),
                        envelope.clone(),
                        PublishOptions::new(QoS::AtLeastOnce),
                    );
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == receipt_topic.as_bytes() => {
                let seq = last.as_ref().map_or(0, |l| l.0);
                match verify::<Receipt>(&p.payload, &cfg.dc.public_key.0) {
                    Ok(r) if r.message.device == *device && r.message.seq >= seq => {
                        break Some(row(
                            "receipt round trip",
                            Status::Ok,
                            format!(
                                "sent seq {seq} again; the DC's receipt (through seq {}) verifies with the pinned key, in {} ms",
                                r.message.seq,
                                start.elapsed().as_millis()
                            ),
                            "",
                        ));
                    }
                    Ok(r) => {
                        break Some(row(
                            "receipt round trip",
                            Status::Fail,
                            format!(
                                "a receipt for {} through seq {}, expected {device} through {seq} or later",
                                r.message.device, r.message.seq
                            ),
                            "the DC's store is behind this counter: tell the DC operator (motcua-dc device list)",
                        ));
                    }
                    Err(e) => {
                        break Some(row(
                            "receipt round trip",
                            Status::Fail,
                            format!("the receipt does not verify with the pinned DC key: {e}"),
                            "dc.public_key must be the DC's key as 'motcua-dc public-key' prints it",
                        ));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if login.is_none() {
                    login = Some(row(
                        "broker login",
                        Status::Fail,
                        e.to_string(),
                        "a TLS or certificate error: check dc.ca_file and the certificate; a refused login: the DC must know this device's certificate",
                    ));
                }
                break None;
            }
        }
    };
    let _ = client.try_disconnect();
    let login = login.unwrap_or_else(|| {
        row(
            "broker login",
            Status::Fail,
            format!("no answer within {timeout:?}"),
            "the broker accepts TCP but does not complete the TLS or MQTT handshake",
        )
    });
    let trip = result.unwrap_or_else(|| {
        if login.status == Status::Ok {
            row(
                "receipt round trip",
                Status::Fail,
                format!("no receipt within {timeout:?}"),
                "the DC's receiver is not running or this device is not enrolled (motcua-dc device list; motcua-dc alerts)",
            )
        } else {
            row("receipt round trip", Status::Skip, "no login", "")
        }
    });
    vec![login, trip]
}

/// The table as text, one check per line with its fix beneath.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut s = String::new();
    for c in checks {
        s.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            c.status.label(),
            c.name,
            c.detail
        ));
        if !c.fix.is_empty() && c.status != Status::Ok {
            s.push_str(&format!("{:<4}  {:<width$}  fix: {}\n", "", "", c.fix));
        }
    }
    s
}

/// Whether every check passed or only warned.
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}
