//! The store commands of the `motcua` binary: `dossier`, `journal`,
//! `status`, `reference`, `staff`, and `run`. Each returns the process exit code documented in
//! [`crate::cli::EXIT_CODES`].

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use motcua_common::keyfile;
use motcua_protocol::{StaffId, UtcTime};
use time::OffsetDateTime;

use crate::cli::{DossierCommand, JournalCommand, ReferenceCommand, StaffCommand};
use crate::config::AgentConfig;
use crate::kiosk::staff;
use motcua_counter::app::{self, Day, Lookup, Today};
use motcua_counter::clock::{Clock, DcClock, SavedLesson, SystemClock};
use motcua_counter::dates::local_time;
use motcua_counter::domain::code::Counter;
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::store::read::StoredDossier;
use motcua_counter::store::reference::{self, ReferenceData};
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{Answer, Reader, Refusal, Writer, WriterConfig};

/// Exit code: input refused.
pub const EXIT_INVALID: u8 = 3;
/// Exit code: refused by the counter's state.
pub const EXIT_REFUSED: u8 = 4;
/// Exit code: not found.
pub const EXIT_NOT_FOUND: u8 = 5;
/// Exit code: the journal is broken.
pub const EXIT_BROKEN: u8 = 6;

fn db_path(cfg: &AgentConfig) -> std::path::PathBuf {
    cfg.store.state_dir.db()
}

/// The system clock, with the configured synchronisation marker.
pub fn clock(cfg: &AgentConfig) -> SystemClock {
    SystemClock {
        marker: cfg
            .device
            .clock_marker
            .as_ref()
            .map(|m| m.as_path().to_owned()),
    }
}

/// Starts a writer on the configured store with the device key.
pub fn open_writer(cfg: &AgentConfig) -> Result<Writer> {
    open_writer_on(cfg, Arc::new(clock(cfg)))
}

/// The agent's clock: the system clock while it is synchronised, else the
/// DC's time learnt from receipts, taken up from what an agent earlier in
/// this boot learnt.
fn agent_clock(cfg: &AgentConfig) -> DcClock {
    let c = DcClock::new(clock(cfg));
    let saved = SavedLesson::load(&cfg.store.state_dir.clock_lesson());
    if let (Some(saved), Some(boot)) = (saved, crate::health::boot())
        && c.restore(&saved, &boot)
    {
        tracing::info!("the DC's time learnt earlier in this boot is taken up");
    }
    c
}

/// Starts a writer on the configured store with the device key, stamping
/// records by `clock`.
fn open_writer_on(cfg: &AgentConfig, clock: Arc<dyn Clock>) -> Result<Writer> {
    let key = keyfile::load(cfg.device.key_file.as_path())
        .context("the device key signs every record; create it with 'motcua keygen'")?;
    let counter =
        Counter::new(cfg.device.counter).context("device.counter is validated to be 1 to 9")?;
    Ok(Writer::start(WriterConfig {
        db: db_path(cfg),
        device: cfg.device.id.clone(),
        unit: cfg.device.unit.clone(),
        counter,
        min_free: cfg.store.min_free.0,
        key,
        clock,
        default_collect_at: cfg.device.collect_at.clone(),
        office: cfg.office.day(),
        max_batch: DEFAULT_MAX_BATCH,
    })?)
}

/// What the sync loop takes from the configuration.
fn sync_config(cfg: &AgentConfig, clock: DcClock) -> crate::sync::SyncConfig {
    crate::sync::SyncConfig {
        device: cfg.device.id.clone(),
        unit: cfg.device.unit.clone(),
        state_dir: cfg.store.state_dir.clone(),
        broker: cfg.dc.broker.clone(),
        dc_key: cfg.dc.public_key.0,
        keep_alive: cfg.dc.keep_alive,
        reconnect_max: cfg.dc.reconnect_max,
        window: cfg.dc.window,
        batch: cfg.dc.batch,
        resend_after: cfg.dc.resend_after,
        watchdog: true,
        clock,
        health_interval: cfg.telemetry.health_interval,
    }
}

/// What the kiosk takes from the configuration; `None` when it is off.
fn kiosk_options(cfg: &AgentConfig, clock: DcClock) -> Option<crate::kiosk::KioskOptions> {
    let k = &cfg.kiosk;
    k.enabled.then(|| crate::kiosk::KioskOptions {
        clock,
        bind: k.bind,
        tls: k
            .tls
            .as_ref()
            .map(|(c, key)| (c.as_path().to_path_buf(), key.as_path().to_path_buf())),
        staff_file: k.staff_file.clone(),
        idle_timeout: k.idle_timeout,
        max_failures: k.max_failures,
        lockout: k.lockout,
        device: cfg.device.id.clone(),
        unit: cfg.device.unit.clone(),
        db: db_path(cfg),
        office: cfg.office.day(),
        lookup_url: cfg.office.lookup_url.clone(),
    })
}

fn reader(cfg: &AgentConfig) -> Result<Reader> {
    Ok(Reader::open(&db_path(cfg))?)
}

/// Prints a refusal the way a clerk reads it, plus the technical cause
/// where it is not about the input, and returns the exit code.
fn refusal(r: &Refusal) -> ExitCode {
    match r {
        Refusal::Invalid(i) => {
            eprint!("{i}");
            ExitCode::from(EXIT_INVALID)
        }
        Refusal::DiskFull { .. } | Refusal::ClockWrong { .. } | Refusal::CodesExhausted { .. } => {
            eprint!("{}", r.for_clerk());
            eprintln!("cause: {r}");
            ExitCode::from(EXIT_REFUSED)
        }
        Refusal::NotFound(_) => {
            eprint!("{}", r.for_clerk());
            ExitCode::from(EXIT_NOT_FOUND)
        }
        Refusal::Receipt(_) | Refusal::Fork { .. } => {
            eprintln!("error: {r}");
            ExitCode::FAILURE
        }
        Refusal::ReferenceNotNewer { .. } => {
            eprintln!("{r}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The exit code of a writer's answer whose success `done` reports: a
/// refusal as [`refusal`] prints it, a failure as an error line.
fn answered<T>(answer: Answer<T>, done: impl FnOnce(T)) -> ExitCode {
    match answer {
        Ok(Ok(t)) => {
            done(t);
            ExitCode::SUCCESS
        }
        Ok(Err(r)) => refusal(&r),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `motcua dossier ...`.
pub fn dossier(config: &Path, cmd: DossierCommand) -> Result<ExitCode> {
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .context("reading the configuration")?;
    match cmd {
        DossierCommand::Add { json, staff } => add(&cfg, &json, staff),
        DossierCommand::Show { code, json } => {
            let Some(d) = reader(&cfg)?.dossier(&code)? else {
                return Ok(refusal(&Refusal::NotFound(code)));
            };
            if json {
                motcua_common::outln!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                motcua_common::out!("{}", render(&d));
            }
            Ok(ExitCode::SUCCESS)
        }
        DossierCommand::Search {
            code,
            id_number,
            name,
            date,
            today: only_today,
            overdue,
            limit,
            json,
        } => {
            let typed = date.clone();
            let lookup = Lookup {
                code,
                id_number,
                name,
                day: match (date, only_today) {
                    (Some(d), _) => Day::Typed(d),
                    (None, true) => Day::Today,
                    (None, false) => Day::Any,
                },
                overdue,
                limit,
                ..Lookup::default()
            };
            let today = app::today(&clock(&cfg));
            let q = match lookup.query(&today) {
                Ok(q) => q,
                Err(_) => {
                    // The command line's own wording of app::DAY_FORMAT,
                    // naming what was typed.
                    let d = typed.unwrap_or_default();
                    eprintln!("Ngày {d:?} không hợp lệ: nhập dd/mm/yyyy, ví dụ 26/11/2026.");
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
            };
            let found = reader(&cfg)?.search(&q, &today.now)?;
            if json {
                motcua_common::outln!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for s in &found {
                    motcua_common::outln!(
                        "{}  {:<28}  nhận {}  hẹn {}  {}{}",
                        s.code,
                        s.status.to_string(),
                        local_time(&s.received_at),
                        local_time(&s.appointment_at),
                        s.name.as_deref().unwrap_or("(đã xoá dữ liệu cá nhân)"),
                        if s.overdue { "  [QUÁ HẠN]" } else { "" }
                    );
                }
                eprintln!("{} hồ sơ", found.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        DossierCommand::SetStatus {
            code,
            status,
            staff,
            note,
        } => {
            let Ok(to) = app::status(status) else {
                // The command line's own wording of app::STATUS_RANGE,
                // naming what was typed.
                eprintln!("Trạng thái {status} không hợp lệ: nhập một số từ 1 đến 10.");
                return Ok(ExitCode::from(EXIT_INVALID));
            };
            let writer = open_writer(&cfg)?;
            let r = writer.handle().set_status(&code, to, staff, note);
            writer.shutdown();
            Ok(answered(r, |ch| {
                motcua_common::outln!("{} {} -> {}", ch.code, ch.from, ch.to);
            }))
        }
    }
}

fn add(cfg: &AgentConfig, json: &Path, staff: StaffId) -> Result<ExitCode> {
    let text = if json == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        s
    } else {
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?
    };
    let input: DossierInput = match serde_json::from_str(&text) {
        Ok(i) => i,
        Err(e) => {
            // serde's own message can quote a value (an ID number typed as a
            // number): only where and what kind of error is shown.
            let what = match e.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "không phải JSON hợp lệ"
                }
                _ => "có trường thiếu, thừa hoặc sai kiểu",
            };
            eprintln!(
                "Tệp hồ sơ {what} (dòng {}, cột {}). Xem mẫu trong docs/DOSSIER-INPUT.md.",
                e.line(),
                e.column()
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let writer = open_writer(cfg)?;
    let r = writer.handle().create(input, staff);
    writer.shutdown();
    Ok(answered(r, |c| {
        motcua_common::outln!("{}", c.dossier.code);
    }))
}

/// The receipt's fields, in Vietnamese.
fn render(d: &StoredDossier) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(out, "{k:<22}{v}");
    };
    line("Mã hồ sơ:", &d.code.to_string());
    match &d.dossier {
        Some(x) => {
            line("Đơn vị tiếp nhận:", x.unit.as_str());
            line("Thủ tục:", &format!("{} {}", x.procedure, x.procedure_name));
            line("Người nộp:", &x.applicant.name);
            line("Số định danh cá nhân:", &x.applicant.id_number);
            line("Điện thoại:", x.applicant.phone.as_deref().unwrap_or("-"));
            line("Email:", x.applicant.email.as_deref().unwrap_or("-"));
            line("Địa chỉ:", &x.applicant.address);
            for (i, doc) in x.documents.iter().enumerate() {
                let form = doc
                    .form
                    .as_deref()
                    .map(|f| format!(", {f}"))
                    .unwrap_or_default();
                line(
                    if i == 0 {
                        "Thành phần hồ sơ:"
                    } else {
                        ""
                    },
                    &format!("{}. {} ({} bản{form})", i + 1, doc.name, doc.copies),
                );
            }
            line("Số bộ hồ sơ:", &x.sets.to_string());
            line("Tiếp nhận lúc:", &local_time(&x.received_at));
            line(
                "Hẹn trả kết quả:",
                &format!(
                    "{} ({})",
                    local_time(&x.appointment_at),
                    motcua_counter::dates::legal_time(x.working_days)
                ),
            );
            line("Nơi trả kết quả:", &x.collect_at);
            line("Cán bộ tiếp nhận:", x.staff.as_str());
            if let Some(n) = &x.note {
                line("Ghi chú:", n);
            }
        }
        None => line(
            "Dữ liệu cá nhân:",
            &format!(
                "đã xoá lúc {}",
                d.pruned_at.as_ref().map(local_time).unwrap_or_default()
            ),
        ),
    }
    line("Trạng thái:", &d.status.to_string());
    line(
        "Đồng bộ:",
        if d.synced {
            "trung tâm dữ liệu đã xác nhận"
        } else {
            "chưa được trung tâm dữ liệu xác nhận"
        },
    );
    out
}

/// Runs `motcua journal ...`.
pub fn journal(config: &Path, cmd: JournalCommand) -> Result<ExitCode> {
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .context("reading the configuration")?;
    match cmd {
        JournalCommand::Prune => {
            let writer = open_writer(&cfg)?;
            let retention = time::Duration::try_from(cfg.store.retention)
                .context("store.retention is bounded")?;
            let r = writer.handle().prune(retention);
            writer.shutdown();
            Ok(answered(r, |p| {
                motcua_common::outln!(
                    "pruned {} receipted envelopes and the personal data of {} finished dossiers (retention {})",
                    p.envelopes,
                    p.dossiers,
                    motcua_common::config::HumanDuration(cfg.store.retention)
                );
            }))
        }
        JournalCommand::Verify { signatures_from } => {
            let r = reader(&cfg)?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("verifying");
            let result = r.verify_journal_from(signatures_from.max(1), |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            match result {
                Ok(report) => {
                    motcua_common::outln!(
                        "journal intact: {} records, {} signatures verified ({} pruned), {} receipted by the data centre",
                        report.records,
                        report.signatures,
                        report.records - report.signatures,
                        report.synced
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(brk) => {
                    motcua_common::outln!("{brk}");
                    Ok(ExitCode::from(EXIT_BROKEN))
                }
            }
        }
    }
}

/// Runs `motcua status`.
pub fn status(config: &Path, json: bool) -> Result<ExitCode> {
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .context("reading the configuration")?;
    let Today { day, now } = app::today(&clock(&cfg));
    let c = reader(&cfg)?.counts(&day, &now)?;
    if json {
        motcua_common::outln!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(ExitCode::SUCCESS);
    }
    let age = c.oldest_unsynced_at.map(|t| {
        let secs = (now.get() - t.get()).whole_seconds().max(0) as u64;
        age(secs)
    });
    motcua_common::outln!("device               {}", cfg.device.id);
    motcua_common::outln!(
        "dossiers             {} ({} today, {} overdue)",
        c.dossiers,
        c.today,
        c.overdue
    );
    motcua_common::outln!(
        "journal              {} records, receipted through {}",
        c.head_seq,
        c.synced_through
    );
    match age {
        Some(a) => motcua_common::outln!(
            "waiting for the DC   {} records, oldest {a} old",
            c.unsynced
        ),
        None => motcua_common::outln!("waiting for the DC   none"),
    }
    motcua_common::outln!(
        "last receipt         {}",
        c.last_receipt_at
            .as_ref()
            .map(local_time)
            .unwrap_or_else(|| "never".into())
    );
    motcua_common::outln!(
        "reference data       {}",
        c.reference_version
            .map(|v| format!("version {v}"))
            .unwrap_or_else(|| "none".into())
    );
    motcua_common::outln!(
        "clock synchronised   {}",
        if clock(&cfg).now().synced() {
            "yes"
        } else {
            "no"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `motcua reference ...`.
pub fn reference(config: &Path, cmd: ReferenceCommand) -> Result<ExitCode> {
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .context("reading the configuration")?;
    match cmd {
        ReferenceCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let data: ReferenceData = match serde_json::from_str(&text) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!(
                        "{}: not reference data ({e}); see docs/DOSSIER-INPUT.md",
                        file.display()
                    );
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
            };
            let summary = format!(
                "imported reference data version {}: {} procedures, {} holidays, {} make-up working days",
                data.version,
                data.procedures.len(),
                data.holidays.len(),
                data.workdays.len()
            );
            let writer = open_writer(&cfg)?;
            let done = reference::import(
                &writer.handle(),
                data,
                &UtcTime::new(OffsetDateTime::now_utc()),
            );
            writer.shutdown();
            match done {
                Ok(()) => {
                    motcua_common::outln!("{summary}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(
                    e @ (reference::ImportError::Invalid(_)
                    | reference::ImportError::NotNewer { .. }),
                ) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(EXIT_INVALID))
                }
                Err(e) => Err(e.into()),
            }
        }
        ReferenceCommand::List { query } => {
            let r = reader(&cfg)?;
            let list =
                reference::search_procedures(r.connection(), query.as_deref().unwrap_or(""))?;
            for p in &list {
                motcua_common::outln!("{:<24} {:>3} ngày  {}", p.code, p.working_days, p.name);
            }
            eprintln!("{} thủ tục", list.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `motcua staff ...`.
pub fn staff(config: &Path, cmd: StaffCommand) -> Result<()> {
    use StaffCommand as C;
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {}", config.display()))?;
    let path = cfg.kiosk.staff_file;
    match cmd {
        C::Add { id, name, replace } => {
            let secret = staff::read_secret()?;
            staff::add(&path, id.clone(), &name, &secret, replace)?;
            eprintln!(
                "{} {id} in {}",
                if replace { "updated" } else { "added" },
                path.display()
            );
        }
        C::Disable { id } => {
            staff::disable(&path, &id)?;
            eprintln!("disabled {id}");
        }
        C::List => {
            for a in staff::load(&path)? {
                motcua_common::outln!(
                    "{:<24} {}{}",
                    a.id.as_str(),
                    a.name,
                    if a.disabled { "  (disabled)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// A short age: `45s`, `12m`, `3h 20m`, `2d 4h`.
fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `motcua run`: the store and sync until SIGINT or SIGTERM.
pub fn run(config: &Path) -> Result<ExitCode> {
    let cfg = AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("reading {}", config.display()))?;
    motcua_common::logging::init(cfg.log.format, &cfg.log.level);
    // One agent per state directory: a second would take the first's
    // broker session (the broker binds the client id to the certificate).
    let _running = cfg
        .store
        .state_dir
        .lock_run()
        .with_context(|| format!("locking {}", cfg.store.state_dir.path().display()))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "another motcua run already uses {} (systemctl status motcua-agent)",
                cfg.store.state_dir.path().display()
            )
        })?;
    let agent_clock = agent_clock(&cfg);
    let writer = open_writer_on(&cfg, Arc::new(agent_clock.clone()))?;
    let sync_cfg = sync_config(&cfg, agent_clock.clone());
    tracing::info!(device = %cfg.device.id, broker = %cfg.dc.broker.url, "agent starting");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (state, state_rx) = tokio::sync::watch::channel(crate::sync::SyncState::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let kiosk = match kiosk_options(&cfg, agent_clock) {
        Some(opts) => Some(crate::kiosk::Kiosk::new(opts, writer.handle(), state_rx)?),
        None => None,
    };
    let result = rt.block_on(async {
        let listener = match &kiosk {
            Some(k) => Some(crate::kiosk::bind(k.opts().bind).await?),
            None => None,
        };
        tokio::spawn(async move {
            motcua_common::shutdown::signal().await;
            let _ = stop_tx.send(true);
        });
        if let Some((cert, key)) = kiosk.as_ref().and_then(|k| k.opts().tls.as_ref()) {
            // Refuse a bad certificate now, not at the first connection.
            motcua_common::https::acceptor(cert, key)?;
        }
        motcua_common::notify::ready("store open; connecting to the data centre");
        let kiosk_task = kiosk
            .zip(listener)
            .map(|(k, l)| tokio::spawn(crate::kiosk::serve(k, l, stopped())));
        let sync = crate::sync::run(sync_cfg, writer.handle(), state, stopped());
        tokio::pin!(sync);
        match kiosk_task {
            None => sync.await,
            Some(mut task) => tokio::select! {
                synced = &mut sync => {
                    let kiosk = task.await;
                    synced?;
                    kiosk.map_err(|e| anyhow::anyhow!("kiosk task: {e}"))?
                }
                kiosk = &mut task => {
                    // The kiosk ends only on the stop signal or a failure.
                    kiosk.map_err(|e| anyhow::anyhow!("kiosk task: {e}"))??;
                    sync.await
                }
            },
        }
    });
    motcua_common::notify::stopping();
    writer.shutdown();
    result?;
    tracing::info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(kiosk: &str) -> AgentConfig {
        let text = crate::provision::TEMPLATE.replace("enabled = true", kiosk);
        AgentConfig::from_raw(toml::from_str(&text).expect("TOML")).expect("the template")
    }

    #[test]
    fn sync_and_kiosk_options_come_from_the_validated_configuration() {
        let cfg = template("enabled = true");
        let sync = sync_config(&cfg, DcClock::default());
        assert_eq!(sync.state_dir.path(), Path::new("/var/lib/motcua"));
        assert_eq!(sync.window, cfg.dc.window);
        assert_eq!(sync.health_interval, cfg.telemetry.health_interval);
        let kiosk = kiosk_options(&cfg, DcClock::default()).expect("the kiosk is on");
        assert_eq!(kiosk.db, Path::new("/var/lib/motcua/motcua.db"));
        assert_eq!(kiosk.staff_file, Path::new("/var/lib/motcua/staff.toml"));
        assert!(kiosk_options(&template("enabled = false"), DcClock::default()).is_none());
    }
}
