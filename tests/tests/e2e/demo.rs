//! `motcua demo`, the README's main job: the embedded broker, the receiver
//! and the agent in one process, with nothing installed.

use motcua_e2e::run;

#[test]
fn the_demo_delivers_every_dossier_and_cleans_up() {
    let r = run("motcua", ["demo", "--exit", "--dossiers", "15"]);
    assert!(r.ok, "{r:?}");
    assert!(
        r.stdout
            .contains("15 of 15 records receipted by the data centre"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("re-verified: intact"), "{}", r.stdout);
    assert_eq!(
        r.stdout
            .matches("counter  stored and signed H49.12.3-")
            .count(),
        15,
        "{}",
        r.stdout
    );
    let dir = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Removed "))
        .and_then(|d| d.strip_suffix('.'))
        .expect("says what it removed");
    assert!(!std::path::Path::new(dir).exists(), "{dir} was removed");
}

#[test]
fn the_demo_can_keep_its_directory_for_inspection() {
    let keep = tempfile::tempdir().expect("tempdir");
    let dir = keep.path().join("demo");
    let r = run(
        "motcua",
        [
            "demo",
            "--exit",
            "--dossiers",
            "3",
            "--keep",
            dir.to_str().expect("utf-8"),
        ],
    );
    assert!(r.ok, "{r:?}");
    // The commands it suggests work on what it kept.
    let db = format!("sqlite://{}", dir.join("dc.db").display());
    let v = run("motcua-dc", ["--database", &db, "verify"]);
    assert!(v.ok && v.stdout.contains("seq 1..=3 intact"), "{v:?}");
    let s = run(
        "motcua",
        [
            "-c",
            dir.join("agent.toml").to_str().expect("utf-8"),
            "status",
        ],
    );
    assert!(s.ok && s.stdout.contains("receipted through 3"), "{s:?}");
}

/// Without `--exit` the demo serves the kiosk (its demo clerk can log in
/// and sees the dossiers) and the DC's dashboard until it is stopped, and
/// prints no line twice.
#[test]
fn the_demo_serves_the_kiosk_and_the_dashboard_until_stopped() {
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use motcua_e2e::kiosk::Http;
    use motcua_e2e::site::wait_until;

    let mut child = std::process::Command::new(motcua_e2e::bin("motcua"))
        .args(["demo", "--dossiers", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let out = Arc::new(Mutex::new(String::new()));
    let o = out.clone();
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(mut g) = o.lock() {
                g.push_str(&line);
                g.push('\n');
            }
        }
    });
    let text = || out.lock().map(|g| g.clone()).unwrap_or_default();
    wait_until("the demo says it waits", Duration::from_secs(120), || {
        text().contains("Press Ctrl-C")
    });
    let printed = text();
    let field = |prefix: &str| -> String {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{printed}"))
            .trim()
            .to_owned()
    };
    let kiosk_line = field("kiosk");
    let kiosk = kiosk_line
        .split_whitespace()
        .next()
        .expect("a URL")
        .trim_end_matches('/')
        .to_owned();
    let secret = kiosk_line
        .rsplit_once("password ")
        .map(|(_, p)| p.trim_end_matches(')'))
        .expect("the password")
        .to_owned();
    let dashboard_line = field("dashboard");
    let dashboard = dashboard_line
        .split_whitespace()
        .next()
        .expect("a URL")
        .trim_end_matches('/')
        .to_owned();
    let operator_secret = dashboard_line
        .rsplit_once("password ")
        .map(|(_, p)| p.trim_end_matches(')'))
        .expect("the operator's password")
        .to_owned();

    let http = Http::new(&kiosk);
    let login = http.post_json(
        "/api/v1/login",
        &serde_json::json!({ "staff": "canbo.demo", "secret": secret }),
        None,
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let listed = http.get("/api/v1/dossiers?day=").json();
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let dc = Http::new(&dashboard);
    assert_eq!(dc.get("/").status, 303, "the dashboard needs a login");
    let login = dc.dc_login("vanhanh.demo", &operator_secret);
    assert_eq!(login.status, 303, "{}", login.body);
    let page = dc.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("H49.12.3-q01"), "{}", page.body);

    // The commands it prints name the binaries by absolute path.
    assert!(
        printed
            .lines()
            .any(|l| l.trim_start().starts_with('/') && l.contains("motcua-dc")),
        "{printed}"
    );
    let _ = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("exits");
    reader.join().expect("reader");
    assert!(status.success(), "{status:?}");
    let all = text();
    assert!(all.contains("Removed "), "{all}");
    let mut seen = std::collections::BTreeSet::new();
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        assert!(seen.insert(line), "printed twice: {line}\n{all}");
    }
}
