//! `motcua demo`: the whole system on one machine, with no external service.
//!
//! In one process: the embedded MQTT broker on a loopback port the OS
//! picks, a DC receiver storing into SQLite, and a counter agent with its
//! own store, all with keys made in a temporary directory. It receives
//! sample dossiers at the counter, shows each one stored and signed, sent,
//! verified and stored at the DC, and receipted back. It serves the
//! clerks' kiosk (with a demo clerk account whose login it prints) and the
//! DC's dashboard on loopback ports, says what to look at (commands with
//! the absolute paths of the binaries) and waits for Ctrl-C (or stops at
//! once with `--exit`), and removes the directory unless `--keep` was
//! given.
//!
//! The receiver and agent code is the production code (`motcua_dc::receiver`,
//! [`crate::sync`]); only the broker is the embedded one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use motcua_broker::EmbeddedBroker;
use motcua_common::atomic::Overwrite;
use motcua_common::config::BrokerConnection;
use motcua_common::{keyfile, outln};
use motcua_dc::receiver::{self, Processor, RunOptions};
use motcua_dc::store::{Store, sqlite::SqliteStore};
use motcua_protocol::{DeviceId, Enrollment};

use crate::sync::{self, SyncConfig, SyncState};
use motcua_counter::clock::{DcClock, SystemClock};
use motcua_counter::domain::code::Counter;
use motcua_counter::state_dir::StateDir;
use motcua_counter::store::reference::{self, ReferenceData};
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{Writer, WriterConfig};

const DEVICE: &str = "H49.12.3-q01";
const REFERENCE: &str = include_str!("../../docs/examples/reference.json");
/// The demo clerk's login.
const CLERK: &str = "canbo.demo";
/// The demo's operator at the DC (roles fleet and records).
const OPERATOR: &str = "vanhanh.demo";

/// Sample applicants (invented) for the demo's dossiers.
const PEOPLE: [(&str, &str); 6] = [
    ("Nguyễn Thị Thu Hà", "049301000123"),
    ("Trần Văn An", "048085000123"),
    ("Lê Thị Bích Ngọc", "049190000456"),
    ("Phạm Minh Tuấn", "048092000789"),
    ("Hoàng Thị Mai", "049188000321"),
    ("Võ Đức Thắng", "048075000654"),
];

/// Options of `motcua demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many dossiers to receive.
    pub dossiers: u32,
    /// Keep the directory (and say where it is) instead of removing it.
    pub keep: Option<PathBuf>,
    /// Stop as soon as every dossier is receipted, instead of waiting for
    /// Ctrl-C.
    pub exit: bool,
}

/// Runs the demo.
pub fn run(opts: DemoOptions) -> Result<()> {
    let temp = tempfile::Builder::new().prefix("motcua-demo-").tempdir()?;
    let dir = match &opts.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => temp.path().to_owned(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(demo(&dir, &opts));
    rt.shutdown_timeout(Duration::from_secs(2));
    if opts.keep.is_none() {
        outln!("Removed {}.", dir.display());
    }
    result
}

async fn demo(dir: &Path, opts: &DemoOptions) -> Result<()> {
    outln!(
        "motcua demo: a counter and a data centre on this machine, in {}",
        dir.display()
    );

    // The broker.
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse()?).await?;
    let url = format!("mqtt://{}", broker.addr());
    outln!("  broker      embedded MQTT broker on {url}");

    // The data centre: receipt key, SQLite store, the device enrolled.
    let dc_key = keyfile::create(&dir.join("dc.key"), Overwrite::Allow)?;
    let dc_public = dc_key.verifying_key();
    let dc_db = dir.join("dc.db");
    let device_key = keyfile::create(&dir.join("device.key"), Overwrite::Allow)?;
    let device: DeviceId = DEVICE.parse()?;
    let mut registry = SqliteStore::open(&dc_db)?;
    let enrollment = Enrollment {
        device: device.clone(),
        key: device_key.verifying_key(),
    };
    let _ = registry.enroll(&enrollment, &receiver::now())?;
    outln!(
        "  data centre motcua-dc receiver, SQLite {}",
        dc_db.display()
    );
    outln!(
        "  counter     {DEVICE}, store {}",
        dir.join("counter").display()
    );
    outln!("              enrolled: {enrollment}");

    let conn: BrokerConnection = plain(&url)?;
    let stop = Arc::new(AtomicBool::new(false));
    let processor = Processor::new(Box::new(SqliteStore::open(&dc_db)?), dc_key);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let dc = tokio::spawn(receiver::run(
        RunOptions {
            broker: conn.clone(),
            share_group: "motcua-dc".into(),
            keep_alive: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(5),
            watchdog: false,
        },
        processor,
        // One verifier thread beside the writer, as in production.
        vec![Box::new(SqliteStore::open(&dc_db)?)],
        stop.clone(),
        move || {
            let _ = ready_tx.send(());
        },
    ));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .context("the receiver did not subscribe within 10 s")?
        .context("the receiver stopped")?;

    // The counter: store with the sample catalogue, writer, sync.
    let state = StateDir::new(dir.join("counter"));
    std::fs::create_dir_all(state.path())?;
    let db = state.db();
    let clock = DcClock::new(SystemClock { marker: None });
    let writer = Writer::start(WriterConfig {
        db: db.clone(),
        device: device.clone(),
        unit: "H49.12.3".parse()?,
        counter: Counter::new(1).context("counter 1")?,
        min_free: 0,
        key: device_key,
        clock: Arc::new(clock.clone()),
        default_collect_at: "Bộ phận Một cửa UBND xã Tam Thăng".into(),
        office: motcua_counter::domain::calendar::OfficeDay::default(),
        max_batch: DEFAULT_MAX_BATCH,
    })?;
    let data: ReferenceData = serde_json::from_str(REFERENCE)?;
    let now = motcua_protocol::UtcTime::new(time::OffsetDateTime::now_utc());
    reference::import_async(&writer.handle(), data, &now).await?;
    write_configs(dir, &url, &dc_public)?;
    let (state_tx, mut state_rx) = tokio::sync::watch::channel(SyncState::default());

    // The clerks' kiosk and the DC's dashboard, each on a loopback port.
    let secret = demo_secret();
    let staff_file = dir.join("staff.toml");
    crate::kiosk::staff::add(
        &staff_file,
        CLERK.parse()?,
        "Cán bộ trình diễn",
        &secret,
        true,
    )?;
    let kiosk = crate::kiosk::Kiosk::new(
        crate::kiosk::KioskOptions {
            clock: clock.clone(),
            bind: "127.0.0.1:0".parse()?,
            tls: None,
            staff_file,
            idle_timeout: Duration::from_secs(3600),
            max_failures: 5,
            lockout: Duration::from_secs(60),
            device: device.clone(),
            unit: "H49.12.3".parse()?,
            db: db.clone(),
            office: motcua_counter::domain::calendar::OfficeDay::default(),
            lookup_url: None,
        },
        writer.handle(),
        state_rx.clone(),
    )?;
    let kiosk_listener = crate::kiosk::bind("127.0.0.1:0".parse()?).await?;
    let kiosk_url = format!("http://{}/", kiosk_listener.local_addr()?);
    let (stop_web_tx, stop_web_rx) = tokio::sync::watch::channel(false);
    let mut stop_kiosk = stop_web_rx.clone();
    let kiosk_task = tokio::spawn(crate::kiosk::serve(kiosk, kiosk_listener, async move {
        let _ = stop_kiosk.wait_for(|s| *s).await;
    }));
    // The DC's operator: the dashboard and the records API.
    let operator_secret = format!("{secret}-{}", demo_secret());
    let now = motcua_protocol::UtcTime::new(time::OffsetDateTime::now_utc());
    let mut dc_store = SqliteStore::open(&dc_db)?;
    motcua_dc::store::Store::operator_put(
        &mut dc_store,
        &motcua_dc::rights::Operator {
            name: OPERATOR.parse().map_err(|e: String| anyhow::anyhow!(e))?,
            hash: motcua_common::login::hash(&operator_secret)?,
            roles: motcua_dc::rights::Roles::of([
                motcua_dc::rights::Role::Fleet,
                motcua_dc::rights::Role::Records,
            ]),
            added_at: now,
            changed_at: now,
            disabled_at: None,
        },
        true,
    )?;
    let web = motcua_dc::web::Web::new(
        Box::new(dc_store),
        Arc::new(motcua_dc::metrics::Metrics::new()),
    )
    .with_unit_names(dc_public);
    let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dashboard_url = format!("http://{}/", web_listener.local_addr()?);
    let mut stop_dashboard = stop_web_rx.clone();
    let dashboard_task = tokio::spawn(async move {
        axum::serve(web_listener, motcua_dc::web::router(web))
            .with_graceful_shutdown(async move {
                let _ = stop_dashboard.wait_for(|s| *s).await;
            })
            .await
    });
    let web = Served {
        kiosk: kiosk_url,
        dashboard: dashboard_url,
        secret,
        operator_secret,
    };
    let (stop_sync_tx, stop_sync_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = sync::run(
        SyncConfig {
            device: device.clone(),
            unit: "H49.12.3".parse()?,
            state_dir: state,
            broker: conn,
            dc_key: dc_public,
            keep_alive: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(5),
            window: 256,
            batch: 16,
            resend_after: Duration::from_secs(10),
            watchdog: false,
            clock: clock.clone(),
            health_interval: Duration::from_secs(60),
        },
        writer.handle(),
        state_tx,
        async move {
            let _ = stop_sync_rx.await;
        },
    );
    // The agent's sync runs beside the clerk's work, on this task (its
    // store reader stays on one thread).
    let clerk = async {
        let r = clerk(
            dir,
            opts,
            &writer,
            &mut registry,
            &device,
            &mut state_rx,
            &web,
        )
        .await;
        let _ = stop_sync_tx.send(());
        r
    };
    let (synced, outcome) = tokio::join!(agent, clerk);
    synced?;
    let _ = stop_web_tx.send(true);
    kiosk_task.await??;
    dashboard_task.await??;
    // The writer's shutdown joins its thread.
    tokio::task::block_in_place(|| writer.shutdown());
    stop.store(true, Ordering::Relaxed);
    dc.await??;
    broker.shutdown().await;
    outcome
}

/// The clerk's side: receives dossiers and reports each step.
async fn clerk(
    dir: &Path,
    opts: &DemoOptions,
    writer: &Writer,
    registry: &mut SqliteStore,
    device: &DeviceId,
    state_rx: &mut tokio::sync::watch::Receiver<SyncState>,
    web: &Served,
) -> Result<()> {
    let dc_db = dir.join("dc.db");
    // Receive dossiers; show each step.
    outln!(
        "\nReceiving {} sample dossiers at the counter:",
        opts.dossiers
    );
    let handle = writer.handle();
    let started = Instant::now();
    let mut last_report = None;
    for i in 0..opts.dossiers {
        let (name, id) = PEOPLE[i as usize % PEOPLE.len()];
        let mut input: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/examples/dossier.json"))?;
        input["applicant"]["name"] = name.into();
        input["applicant"]["id_number"] = id.into();
        let created = handle
            .create_async(serde_json::from_value(input)?, "canbo.demo".parse()?)
            .await??;
        outln!(
            "  counter  stored and signed {}  seq {}",
            created.dossier.code,
            created.seq
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        report(
            registry,
            device,
            &state_rx.borrow_and_update().clone(),
            &mut last_report,
        )?;
    }
    let total = u64::from(opts.dossiers);
    // Wait for as long as receipts keep coming; give up only when none
    // has come for 30 s (a stalled sync), however slow the machine is.
    let stall = Duration::from_secs(30);
    let mut moved = Instant::now();
    let mut seen = state_rx.borrow().through;
    while seen < total && moved.elapsed() < stall {
        let _ = tokio::time::timeout(Duration::from_millis(200), state_rx.changed()).await;
        let now = state_rx.borrow().through;
        if now != seen {
            seen = now;
            moved = Instant::now();
        }
    }
    report(
        registry,
        device,
        &state_rx.borrow().clone(),
        &mut last_report,
    )?;
    let through = state_rx.borrow().through;
    let verified = motcua_dc::verify::chains(registry, Some(device))?;
    let intact = verified.first().is_some_and(|r| r.problem.is_none());
    outln!(
        "\nDone in {:.1} s: {through} of {total} records receipted by the data centre; \
         its copy of the chain re-verified: {}.",
        started.elapsed().as_secs_f32(),
        if intact { "intact" } else { "BROKEN" }
    );
    let (motcua, motcua_dc) = binaries();
    let agent_toml = dir.join("agent.toml");
    if opts.exit && opts.keep.is_none() {
        outln!(
            "\nTo look around afterwards, run it with --keep DIR; without --exit it also \
             serves the kiosk and the DC's dashboard until Ctrl-C."
        );
        anyhow::ensure!(
            through == total && intact,
            "not every record reached the data centre intact"
        );
        return Ok(());
    }
    if opts.exit {
        outln!("\nWhat to look at next, in {}:", dir.display());
    } else {
        outln!("\nWhile this runs:");
        outln!(
            "  kiosk       {}  (log in as {CLERK}, password {})",
            web.kiosk,
            web.secret
        );
        outln!(
            "  dashboard   {}  (log in as {OPERATOR}, password {})",
            web.dashboard,
            web.operator_secret
        );
        outln!("\nWhat to look at next (while this runs):");
    }
    outln!("  {motcua} -c {} status", agent_toml.display());
    outln!(
        "  {motcua} -c {} dossier search --name \"tran van an\"",
        agent_toml.display()
    );
    outln!(
        "  {motcua_dc} --database sqlite://{} device list",
        dc_db.display()
    );
    outln!(
        "  {motcua_dc} --database sqlite://{} verify",
        dc_db.display()
    );
    outln!(
        "  {motcua_dc} --database sqlite://{} alerts",
        dc_db.display()
    );
    if !opts.exit {
        outln!("\nPress Ctrl-C to stop and clean up.");
        motcua_common::shutdown::signal().await;
        outln!("");
    }
    anyhow::ensure!(
        through == total && intact,
        "not every record reached the data centre intact"
    );
    Ok(())
}

fn plain(url: &str) -> Result<BrokerConnection> {
    Ok(BrokerConnection {
        url: url.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        tls: None,
    })
}

/// What the demo serves while it runs.
struct Served {
    /// The kiosk's URL.
    kiosk: String,
    /// The DC dashboard's URL.
    dashboard: String,
    /// The demo clerk's password.
    secret: String,
    /// The demo operator's password at the DC.
    operator_secret: String,
}

/// A password for the demo clerk, fresh each run.
fn demo_secret() -> String {
    let mut b = [0u8; 4];
    // Without randomness the kiosk's sessions could not be safe either.
    getrandom::fill(&mut b).expect("the operating system's random source");
    format!("demo-{}", hex::encode(b))
}

/// The absolute paths of `motcua` (this program) and of `motcua-dc` when
/// it was built beside it, else the name alone (on the PATH).
fn binaries() -> (String, String) {
    let me = std::env::current_exe().ok();
    let motcua = me
        .as_ref()
        .map_or_else(|| "motcua".to_owned(), |p| p.display().to_string());
    let dc = me
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| d.join("motcua-dc"))
        .filter(|p| p.exists())
        .map_or_else(|| "motcua-dc".to_owned(), |p| p.display().to_string());
    (motcua, dc)
}

/// Prints what the DC holds and what the counter has had receipted, when
/// it changed since the last line printed.
fn report(
    registry: &mut SqliteStore,
    device: &DeviceId,
    s: &SyncState,
    last: &mut Option<(u64, u64)>,
) -> Result<()> {
    if let Some(d) = registry.device(device)? {
        let now = (d.head.seq, s.through);
        if *last == Some(now) {
            return Ok(());
        }
        *last = Some(now);
        outln!(
            "  DC       verified and stored through seq {:<4} counter: receipted through seq {}",
            now.0,
            now.1
        );
    }
    Ok(())
}

/// An agent.toml and dc.toml for the commands suggested at the end.
fn write_configs(dir: &Path, url: &str, dc: &ed25519_dalek::VerifyingKey) -> Result<()> {
    let agent = format!(
        "# Written by motcua demo.\n[device]\nid = \"{DEVICE}\"\nunit = \"H49.12.3\"\ncounter = 1\nkey_file = {:?}\n\n[store]\nstate_dir = {:?}\nmin_free = \"1 MiB\"\n\n[dc]\nbroker = {url:?}\nallow_plaintext = true\npublic_key = \"ed25519:{}\"\n",
        dir.join("device.key"),
        dir.join("counter"),
        hex::encode(dc.as_bytes())
    );
    std::fs::write(dir.join("agent.toml"), agent)?;
    Ok(())
}
