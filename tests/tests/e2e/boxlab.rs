//! The box lab: the agent as it ships, on a Debian box in a virtual
//! machine (`scripts/box test`, which builds the image and the package
//! first). The DC (Mosquitto with the shipped arrangement, `motcua-dc
//! run`) runs on this host; the box reaches it through qemu's user-mode
//! network. The box is driven only as a technician (`scripts/deploy` over
//! ssh, `systemctl`, `journalctl`) and a clerk (the kiosk's API through an
//! ssh tunnel) drive one.
//!
//! Ignored in a plain `cargo test`: it needs the image, the package and a
//! few minutes of emulation. CI runs it through `scripts/box test`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use motcua_e2e::kiosk::{Http, SECRET, STAFF, STAFF_NAME, fresh_key};
use motcua_e2e::site::{Site, wait_until};
use motcua_e2e::vm::{self, BoxVm};
use motcua_e2e::workspace;

const DEVICE: &str = "H49.12.3-q01";
const DB: &str = "/var/lib/motcua/motcua.db";

/// The newest `dist/motcua_*-REV_<arch>.deb`.
fn package(revision: u32) -> PathBuf {
    let arch = vm::arch();
    let mut found: Vec<PathBuf> = std::fs::read_dir(workspace().join("dist"))
        .expect("dist/: run scripts/box test, which builds the packages")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("motcua_") && n.ends_with(&format!("-{revision}_{arch}.deb"))
            })
        })
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found
        .pop()
        .unwrap_or_else(|| panic!("no dist/motcua_*-{revision}_{arch}.deb"))
}

/// `scripts/deploy` to the box, with provision options after `--` when
/// given: its exit code and output.
fn deploy(vm: &BoxVm, deb: &PathBuf, ca: Option<&PathBuf>, provision: &[&str]) -> motcua_e2e::Run {
    let mut c = std::process::Command::new(workspace().join("scripts/deploy"));
    c.args(vm.deploy_options()).arg("--package").arg(deb);
    if let Some(ca) = ca {
        c.arg("--ca").arg(ca);
    }
    c.arg("root@127.0.0.1");
    if !provision.is_empty() {
        c.arg("--").args(provision);
    }
    c.output().expect("scripts/deploy runs").into()
}

/// The box's `motcua status --json`.
fn status(vm: &BoxVm) -> serde_json::Value {
    let out = vm.sh("runuser -u motcua -- motcua status --json");
    serde_json::from_str(&out).expect("status --json")
}

/// Every dossier code in the box's store.
fn codes(vm: &BoxVm) -> std::collections::BTreeSet<String> {
    vm.sh(&format!("sqlite3 {DB} 'SELECT code FROM dossiers'"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the agent's unit is active (it is started by systemd at
/// boot, after a restart, after an install).
fn agent_active(vm: &BoxVm) {
    let start = Instant::now();
    loop {
        let r = vm.ssh("systemctl is-active motcua-agent");
        if r.stdout.trim() == "active" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "motcua-agent is {}: {}",
            r.stdout.trim(),
            vm.ssh("systemctl status motcua-agent --no-pager; journalctl -u motcua-agent -n 30 --no-pager").stdout
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A clerk logged in to the box's kiosk through an ssh tunnel.
fn clerk(vm: &BoxVm) -> (vm::Tunnel, Http, String) {
    let tunnel = vm.tunnel(8080);
    let http = Http::new(&format!("http://127.0.0.1:{}", tunnel.port));
    // The kiosk answers once the agent has bound its port.
    wait_until("the kiosk", Duration::from_secs(120), || {
        http.get("/dang-nhap").status == 200
    });
    let csrf = http.login_api();
    (tunnel, http, csrf)
}

fn dossier() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/examples/dossier.json")).expect("example"),
    )
    .expect("json")
}

/// What one submission through the API came to.
enum Received {
    /// The clerk was shown a receipt for this code.
    Shown(String),
    /// No answer: the connection broke (the box lost power).
    NoAnswer,
    /// Any other answer: a refusal or an error, which the lab fails on.
    Refused(String),
}

/// Receives one dossier through the API.
fn receive(http: &Http, csrf: &str) -> Received {
    let a = http.post_json_keyed("/api/v1/dossiers", &dossier(), Some(csrf), &fresh_key());
    match a.status {
        201 => Received::Shown(a.json()["code"].as_str().expect("a code").to_owned()),
        0 => Received::NoAnswer,
        _ => Received::Refused(format!("{} {}", a.status, a.body)),
    }
}

#[test]
#[ignore = "a virtual machine: scripts/box test"]
fn the_box_as_shipped_through_restarts_upgrades_and_power_cuts() {
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[box lab {:>4} s] {what}", t0.elapsed().as_secs());
    let mut site = Site::build_named(true, None, "127.0.0.1", &[vm::HOST]);
    site.broker.start();
    let _receiver = site.receiver();
    let pki = site.pki.as_ref().expect("TLS");
    let published = site.dc(&[
        "-c",
        site.dc_conf.to_str().expect("utf-8"),
        "publish",
        "catalogue",
        workspace()
            .join("docs/examples/reference.json")
            .to_str()
            .expect("utf-8"),
    ]);
    assert!(published.ok, "{}", published.stderr);

    step("booting the box");
    let mut vm = BoxVm::create();
    vm.boot();
    step(&format!("booted: {}", vm.settled()));

    // Install and provision as a technician: the package, the DC's CA and
    // key line; doctor fails only for the certificate not signed yet.
    let deb1 = package(1);
    let broker = format!("mqtts://{}:{}", vm::HOST, site.broker.port);
    let first = deploy(
        &vm,
        &deb1,
        Some(&pki.ca()),
        &[
            "--unit",
            "H49.12.3",
            "--counter",
            "1",
            "--broker",
            &broker,
            "--dc-key",
            &site.dc_line,
        ],
    );
    assert_eq!(
        first.code,
        Some(1),
        "doctor waits for the certificate: {first:?}"
    );
    step("installed and provisioned");
    // The DC enrolls the key and signs the request; the certificate goes
    // back to the box.
    let line = vm
        .sh("motcua -c /etc/motcua/agent.toml identity")
        .trim()
        .to_owned();
    assert!(line.starts_with("motcua-enroll v1 H49.12.3-q01 "), "{line}");
    let added = site.dc(&["device", "add", &line]);
    assert!(added.ok, "{}", added.stderr);
    let csr = site.dir.path().join("box.csr");
    let crt = site.dir.path().join("box.crt");
    vm.get("/var/lib/motcua/device.csr", &csr);
    let signed = motcua_e2e::run(
        "motcua-dc",
        [
            "ca".as_ref(),
            "sign".as_ref(),
            "--dir".as_ref(),
            pki.dir().as_os_str(),
            csr.as_os_str(),
            "--out".as_ref(),
            crt.as_os_str(),
        ],
    );
    assert!(signed.ok, "{}", signed.stderr);
    vm.put(&crt, "/etc/motcua/device.crt");
    // Health reports every 10 s, so the lab need not wait a minute.
    vm.sh("chmod 0644 /etc/motcua/device.crt && \
         sed -i 's/^health_interval = .*/health_interval = \"10s\"/' /etc/motcua/agent.toml && \
         systemctl restart motcua-agent");
    agent_active(&vm);
    // The broker learns the new counter from the registry within seconds:
    // doctor goes green once it does.
    let start = Instant::now();
    loop {
        let d = vm.ssh("runuser -u motcua -- motcua doctor");
        if d.ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "doctor stays red: {}{}",
            d.stdout,
            d.stderr
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    step("doctor is green");

    // A clerk's account, then a morning's dossiers through the kiosk.
    vm.sh(&format!(
        "runuser -u motcua -- env MOTCUA_STAFF_SECRET='{SECRET}' motcua staff add {STAFF} --name '{STAFF_NAME}'"
    ));
    let (tunnel, http, csrf) = clerk(&vm);
    // The catalogue arrives from the DC once the agent is connected.
    wait_until("the catalogue on the box", Duration::from_secs(120), || {
        vm.ssh("runuser -u motcua -- motcua reference list")
            .stdout
            .contains("1.001193")
    });
    let mut shown = Vec::new();
    for _ in 0..10 {
        match receive(&http, &csrf) {
            Received::Shown(code) => shown.push(code),
            Received::NoAnswer => panic!("the kiosk did not answer"),
            Received::Refused(why) => panic!("refused: {why}"),
        }
    }
    // A wrong login: a warning in the journal.
    let wrong = http.post_json(
        "/api/v1/login",
        &serde_json::json!({"staff": STAFF, "secret": "sai-mat-khau"}),
        None,
    );
    assert_eq!(wrong.status, 401);
    drop(tunnel);
    wait_until("every record receipted", Duration::from_secs(180), || {
        status(&vm)["unsynced"] == 0
    });
    let head = status(&vm)["head_seq"].as_u64().expect("head_seq");
    site.assert_chain(DEVICE, head);
    step(&format!("{} dossiers receipted by the DC", shown.len()));

    // The health report the DC keeps carries the box's real figures.
    wait_until(
        "a health report with figures",
        Duration::from_secs(120),
        || {
            site.store()
                .states()
                .expect("states")
                .into_iter()
                .find(|s| s.device.as_str() == DEVICE)
                .and_then(|s| s.health)
                .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
                .is_some_and(|h| {
                    h["mem_total_bytes"].as_u64().unwrap_or(0) > 0
                        && h["mem_used_bytes"].as_u64().unwrap_or(0) > 0
                        && h["load"].as_array().is_some_and(|l| l.len() == 3)
                })
        },
    );
    let health: serde_json::Value = serde_json::from_slice(
        &site
            .store()
            .states()
            .expect("states")
            .into_iter()
            .find(|s| s.device.as_str() == DEVICE)
            .and_then(|s| s.health)
            .expect("a report"),
    )
    .expect("json");
    step(&format!(
        "health at the DC: memory {} of {} bytes, cpu {}%, load {}",
        health["mem_used_bytes"], health["mem_total_bytes"], health["cpu_percent"], health["load"]
    ));

    // The journal: levels as priorities, no citizen's data.
    let warnings = vm.sh("journalctl -u motcua-agent -p warning -o cat --no-pager");
    assert!(warnings.contains("kiosk login refused"), "{warnings}");
    assert!(
        !warnings.contains("agent starting"),
        "info is not a warning: {warnings}"
    );
    let info = vm.sh("journalctl -u motcua-agent -p info -o cat --no-pager");
    assert!(info.contains("agent starting"), "{info}");
    let all = vm.sh("journalctl -o cat --no-pager");
    let d = dossier();
    for personal in [
        d["applicant"]["name"].as_str().expect("name"),
        d["applicant"]["id_number"].as_str().expect("id"),
        d["applicant"]["phone"].as_str().expect("phone"),
        d["applicant"]["address"].as_str().expect("address"),
    ] {
        assert!(!all.contains(personal), "the journal holds personal data");
    }
    step("journal: warnings at warning priority, no personal data");

    // A flood of wrong logins on the kiosk: the password checks are
    // bounded, so the agent's memory stays bounded too (each check takes
    // 19 MiB; unbounded, a hundred at once would take the box's 1 GiB).
    let mem = |field: &str| -> u64 {
        let status = vm.sh("cat /proc/$(systemctl show -p MainPID --value motcua-agent)/status");
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    };
    // Figures for docs/BENCHMARKS.md: memory is the box's own; times are
    // emulation's (TCG), not a box's.
    vm.sh("systemctl restart motcua-agent");
    agent_active(&vm);
    let show = vm.sh(
        "systemctl show -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic motcua-agent",
    );
    let mono = |k: &str| -> u64 {
        show.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{k} in {show}"))
    };
    // Type=notify: the unit is active once the agent says READY=1.
    let ready_ms = mono("ActiveEnterTimestampMonotonic")
        .saturating_sub(mono("ExecMainStartTimestampMonotonic"))
        / 1000;
    wait_until(
        "the restarted agent connected",
        Duration::from_secs(120),
        || {
            vm.sh("journalctl _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value motcua-agent) -o cat --no-pager")
            .contains("connected to the DC broker")
        },
    );
    let rss_idle = mem("VmRSS:");
    let (load_tunnel, load_http, load_csrf) = clerk(&vm);
    let mut took = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        match receive(&load_http, &load_csrf) {
            Received::Shown(code) => shown.push(code),
            Received::NoAnswer => panic!("the kiosk did not answer"),
            Received::Refused(why) => panic!("refused: {why}"),
        }
        took.push(t.elapsed());
    }
    drop(load_tunnel);
    took.sort();
    let rss_load = mem("VmHWM:");
    let dd = vm.sh("dd if=/dev/zero of=/var/lib/motcua/.fsync-probe bs=4k count=100 oflag=dsync 2>&1; rm -f /var/lib/motcua/.fsync-probe");
    let dd_s: f64 = dd
        .lines()
        .find(|l| l.contains("copied"))
        .and_then(|l| l.split(", ").nth(2))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("dd's summary in {dd}"));
    step(&format!(
        "figures ({}): start to READY {ready_ms} ms; RSS idle and connected {rss_idle} kB, peak after 50 dossiers {rss_load} kB; \
         a dossier through the kiosk API and the tunnel median {} ms, p90 {} ms; the guest's raw 4 KiB dsync write {:.2} ms",
        vm::arch(),
        took[took.len() / 2].as_millis(),
        took[took.len() * 9 / 10].as_millis(),
        dd_s * 1000.0 / 100.0
    ));
    wait_until(
        "the figures' dossiers receipted",
        Duration::from_secs(300),
        || status(&vm)["unsynced"] == 0,
    );
    let rss_before = mem("VmRSS:");
    let flood_tunnel = vm.tunnel(8080);
    let base = format!("http://127.0.0.1:{}", flood_tunnel.port);
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|n| {
                let base = base.clone();
                scope.spawn(move || {
                    // A queued login waits for up to eight rounds of two
                    // checks, slow under emulation.
                    Http::with_timeout(&base, Duration::from_secs(300))
                        .post_json(
                            "/api/v1/login",
                            &serde_json::json!({"staff": format!("ke.gian{n}"), "secret": "sai"}),
                            None,
                        )
                        .status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a login"))
            .collect()
    });
    drop(flood_tunnel);
    let peak = mem("VmHWM:");
    let refused = answers.iter().filter(|s| **s == 401).count();
    let busy = answers.iter().filter(|s| **s == 503).count();
    assert_eq!(
        refused + busy,
        answers.len(),
        "401 or 503 only: {answers:?}"
    );
    assert!(
        peak < rss_before + 100 * 1024,
        "peak RSS {peak} kB after a flood, {rss_before} kB before"
    );
    step(&format!(
        "100 wrong logins at once: {refused} refused, {busy} busy; RSS {rss_before} kB before, peak {peak} kB"
    ));

    // A configuration error: exit 78, no restart loop.
    vm.sh("cp /etc/motcua/agent.toml /root/agent.toml.good && \
         echo 'khong_hop_le = 1' >> /etc/motcua/agent.toml");
    let _ = vm.ssh("systemctl restart motcua-agent");
    wait_until("the unit failed", Duration::from_secs(120), || {
        vm.ssh("systemctl show -p ActiveState --value motcua-agent")
            .stdout
            .trim()
            == "failed"
    });
    let show = vm.sh("systemctl show -p ExecMainStatus -p NRestarts -p Result motcua-agent");
    assert!(show.contains("ExecMainStatus=78"), "{show}");
    assert!(show.contains("NRestarts=0"), "no restart loop: {show}");
    let why = vm.sh("journalctl -u motcua-agent -p err -o cat --no-pager -n 5");
    assert!(
        why.contains("khong_hop_le"),
        "the error names the key: {why}"
    );
    vm.sh("cp /root/agent.toml.good /etc/motcua/agent.toml && systemctl reset-failed motcua-agent && systemctl start motcua-agent");
    agent_active(&vm);
    step("a configuration error: exit 78, failed without restarts");

    // Restart, reboot: nothing lost.
    let mut before = codes(&vm);
    assert!(shown.iter().all(|c| before.contains(c)));
    vm.sh("systemctl restart motcua-agent");
    agent_active(&vm);
    assert_eq!(codes(&vm), before);
    vm.reboot();
    agent_active(&vm);
    assert_eq!(codes(&vm), before);
    step("restart and reboot keep the store");

    // No battery-backed clock and no NTP: a power cut while the DC is out
    // of reach, and the box comes back with its RTC at 2000-01-01.
    site.broker.kill();
    vm.cut();
    vm.rtc_base = Some("2000-01-01T00:00:00".into());
    vm.boot();
    agent_active(&vm);
    // systemd moves a clock that reads before its own build forward to
    // that (bookworm's systemd: April 2026); still months before the last
    // dossier.
    let box_now = vm.sh("date -u +%FT%TZ").trim().to_owned();
    let box_secs: i64 = vm.sh("date -u +%s").trim().parse().expect("seconds");
    assert!(
        box_secs < time::OffsetDateTime::now_utc().unix_timestamp() - 86_400,
        "the box's clock reads {box_now}"
    );
    let (tunnel, http, csrf) = clerk(&vm);
    match receive(&http, &csrf) {
        Received::Refused(why) => assert!(why.contains("clock_wrong"), "{why}"),
        Received::Shown(code) => panic!("{code} was stamped with a clock reading {box_now}"),
        Received::NoAnswer => panic!("the kiosk did not answer"),
    }
    let doctor = vm.ssh("runuser -u motcua -- motcua doctor");
    assert!(!doctor.ok, "doctor fails on the clock: {}", doctor.stdout);
    assert!(
        doctor.stdout.contains("cannot be right"),
        "{}",
        doctor.stdout
    );
    step(&format!(
        "booted with the RTC at 2000-01-01 (clock reads {box_now}), DC unreachable: dossiers refused (clock_wrong), doctor red"
    ));
    // The DC answers again: the first receipt teaches the box its time.
    site.broker.start();
    wait_until(
        "the box takes the DC's time",
        Duration::from_secs(300),
        || {
            vm.ssh("runuser -u motcua -- motcua doctor")
                .stdout
                .contains("records take the DC's time")
        },
    );
    let code = match receive(&http, &csrf) {
        Received::Shown(code) => code,
        Received::Refused(why) => panic!("refused with the DC's time: {why}"),
        Received::NoAnswer => panic!("the kiosk did not answer"),
    };
    let at = vm.sh(&format!(
        "sqlite3 {DB} 'SELECT at FROM journal ORDER BY seq DESC LIMIT 1'"
    ));
    let at = motcua_protocol::UtcTime::parse(at.trim()).expect("a time");
    let off = (at.get() - time::OffsetDateTime::now_utc()).abs();
    assert!(
        off < time::Duration::minutes(10),
        "the record is stamped {at}, the DC's clock reads now"
    );
    before.insert(code.clone());
    // The counter's copy of the receipt says where the time came from; the
    // citizen's copy does not.
    let page = http.get(&format!("/ho-so/{code}"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("giờ lấy theo Trung tâm dữ liệu").count(),
        1,
        "on the counter's copy only"
    );
    drop(tunnel);
    wait_until("every record receipted", Duration::from_secs(300), || {
        status(&vm)["unsynced"] == 0
    });
    let head = status(&vm)["head_seq"].as_u64().expect("head_seq");
    site.assert_chain(DEVICE, head);
    // The DC's fleet view names the box that runs on a derived clock.
    wait_until(
        "the fleet view names the derived clock",
        Duration::from_secs(120),
        || {
            let fleet = site.dc(&[
                "-c",
                site.dc_conf.to_str().expect("utf-8"),
                "fleet",
                "--json",
            ]);
            fleet.ok && fleet.stdout.contains("clock derived from the DC")
        },
    );
    step(&format!(
        "the DC's time learnt from its receipt: {code} stamped {at} (version 2, clock_dc); doctor, the counter's copy and the fleet view say so"
    ));
    // The clock is set right again (as NTP would step it), and marked
    // synchronised; the rest of the lab runs on a clock that is right, its
    // RTC days ahead for the power cuts.
    vm.rtc_base = None;
    vm.sh(&format!(
        "date -u -s @{} >/dev/null",
        time::OffsetDateTime::now_utc().unix_timestamp()
    ));
    vm.sh("sed -i 's|^\\[device\\]$|[device]\\nclock_marker = \"/etc/motcua/clock-ok\"|' /etc/motcua/agent.toml && \
         touch /etc/motcua/clock-ok && systemctl restart motcua-agent");
    agent_active(&vm);
    let doctor = vm.ssh("runuser -u motcua -- motcua doctor");
    assert!(doctor.stdout.contains("synchronised,"), "{}", doctor.stdout);
    step("clock set right again (device.clock_marker)");

    // An upgrade by the technician's path, then remove and reinstall.
    let keys =
        "sha256sum /etc/motcua/agent.toml /var/lib/motcua/device.key /var/lib/motcua/tls.key";
    let sums = vm.sh(keys);
    let upgrade = deploy(&vm, &package(2), None, &[]);
    assert!(upgrade.ok, "upgrade, doctor green: {upgrade:?}");
    assert!(
        vm.sh("dpkg-query -W -f '${Version}' motcua")
            .ends_with("-2")
    );
    agent_active(&vm);
    assert_eq!(vm.sh(keys), sums);
    assert_eq!(codes(&vm), before);
    vm.put(&package(2), "/root/motcua.deb");
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q motcua >/dev/null");
    assert_eq!(vm.sh(keys), sums, "remove keeps configuration and keys");
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/motcua.deb >/dev/null");
    agent_active(&vm);
    assert_eq!(codes(&vm), before, "and the store");
    step("upgrade, remove and reinstall keep configuration, keys and store");

    // Power cuts while a clerk receives dossiers and the agent syncs.
    let cuts: u32 = std::env::var("MOTCUA_BOX_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut acknowledged: std::collections::BTreeSet<String> = before.clone();
    let mut lost = 0usize;
    let mut verified_through = 0u64;
    for cut in 1..=cuts {
        let (tunnel, http, csrf) = clerk(&vm);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let submitter = {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || -> Option<String> {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match receive(&http, &csrf) {
                        Received::Shown(code) => acked.lock().expect("lock").push(code),
                        // The box is gone: no receipt was shown.
                        Received::NoAnswer => return None,
                        Received::Refused(why) => return Some(why),
                    }
                }
                None
            })
        };
        // The cut comes at a random moment of the clerk's work.
        let wait = Duration::from_millis(rand::random_range(1_000..8_000));
        std::thread::sleep(wait);
        vm.cut();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let refused = submitter.join().expect("the clerk's thread");
        assert_eq!(
            refused, None,
            "cut {cut}: a submission was refused before the cut"
        );
        drop(tunnel);
        let shown: Vec<String> = acked.lock().expect("lock").clone();
        // The box comes back a day later: a counter hands out 999 codes a
        // day, and a hundred rounds receive more than that.
        vm.days_ahead = cut;
        vm.boot();
        agent_active(&vm);
        let now = codes(&vm);
        acknowledged.extend(shown.iter().cloned());
        let missing: Vec<&String> = acknowledged.iter().filter(|c| !now.contains(*c)).collect();
        lost += missing.len();
        assert!(
            missing.is_empty(),
            "cut {cut}: acknowledged dossiers lost: {missing:?}"
        );
        let integrity = vm.sh(&format!("sqlite3 {DB} 'PRAGMA integrity_check'"));
        assert_eq!(integrity.trim(), "ok", "cut {cut}");
        // Every hash and link from seq 1; the signatures from where the
        // last check left off (all of them once more at the end), so a cut
        // does not take longer as the journal grows.
        let verify = vm.ssh(&format!(
            "runuser -u motcua -- motcua journal verify --signatures-from {}",
            verified_through + 1
        ));
        assert!(verify.ok, "cut {cut}: {}{}", verify.stdout, verify.stderr);
        verified_through = status(&vm)["head_seq"].as_u64().expect("head_seq");
        step(&format!(
            "cut {cut} after {} ms: {} dossiers acknowledged in this round, all present; integrity ok; journal verifies",
            wait.as_millis(),
            shown.len()
        ));
    }
    let verify = vm.ssh("runuser -u motcua -- motcua journal verify");
    assert!(
        verify.ok,
        "the whole journal: {}{}",
        verify.stdout, verify.stderr
    );
    // The DC ends with every record exactly once.
    wait_until(
        "every record receipted after the cuts",
        Duration::from_secs(300),
        || status(&vm)["unsynced"] == 0,
    );
    let head = status(&vm)["head_seq"].as_u64().expect("head_seq");
    site.assert_chain(DEVICE, head);
    assert_eq!(site.totals().records, head, "each record stored once");
    step(&format!(
        "{cuts} cuts, {} acknowledged dossiers, {lost} lost; the DC holds all {head} records once",
        acknowledged.len()
    ));

    // Purge removes the box's data.
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q motcua >/dev/null");
    let gone = vm.ssh("test ! -e /var/lib/motcua && test ! -e /etc/motcua/agent.toml");
    assert!(gone.ok, "purge deletes the store, keys and configuration");
    step("purged");
}
