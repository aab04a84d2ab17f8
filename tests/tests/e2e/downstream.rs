//! What the DC sends down, end to end over TLS with the shipped broker configuration and access list:
//! `motcua-dc publish` signs and publishes retained; the real agent
//! verifies, applies, reports in its health what it applied, and refuses
//! tampered and replayed messages.

use std::path::PathBuf;
use std::time::Duration;

use motcua_e2e::site::{Agent, Site, wait_until};
use motcua_e2e::{run, workspace};
use serde_json::Value;

const A: &str = "H49.12.3-q01";
const LIMIT: Duration = Duration::from_secs(60);

fn publish(site: &Site, args: &[&str]) -> String {
    let conf = site.dc_conf.to_str().expect("utf-8");
    let mut a = vec!["-c", conf, "--database", &site.database, "publish"];
    a.extend(args);
    let r = run("motcua-dc", a);
    assert!(r.ok, "publish {args:?}: {}", r.stderr);
    r.stdout
}

fn health(site: &Site) -> Value {
    let r = site.dc(&["fleet", "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let rows: Value = serde_json::from_str(&r.stdout).expect("JSON");
    rows.as_array()
        .expect("array")
        .iter()
        .find(|r| r["device"] == A)
        .expect("A in the fleet")["health"]
        .clone()
}

/// The catalogue example with another version and one more procedure.
fn catalogue(site: &Site, version: u64) -> PathBuf {
    let text =
        std::fs::read_to_string(workspace().join("docs/examples/reference.json")).expect("example");
    let mut v: Value = serde_json::from_str(&text).expect("JSON");
    v["version"] = version.into();
    v["procedures"]
        .as_array_mut()
        .expect("procedures")
        .push(serde_json::json!({
            "code": "1.004227",
            "name": format!("Thủ tục mới, bản {version}"),
            "working_days": 3,
            "documents": ["Đơn đề nghị"]
        }));
    let path = site.dir.path().join(format!("catalogue-{version}.json"));
    std::fs::write(&path, v.to_string()).expect("writes");
    path
}

fn dossier_status(a: &Agent, code: &str) -> u8 {
    let db = a.state.join(motcua_counter::store::DB_FILE);
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opens the agent's store");
    conn.query_row("SELECT status FROM dossiers WHERE code = ?", [code], |r| {
        r.get(0)
    })
    .expect("the dossier")
}

fn kept(site: &Site, topic: &str) -> Vec<u8> {
    let path = site.database.strip_prefix("sqlite://").expect("SQLite");
    let conn = rusqlite::Connection::open(path).expect("opens the DC's store");
    conn.query_row(
        "SELECT message FROM down_messages WHERE topic = ?",
        [topic],
        |r| r.get(0),
    )
    .expect("kept")
}

#[test]
fn catalogue_status_and_settings_reach_a_counter_and_forgeries_do_not() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(A);
    a.receive(3);
    let code: String = {
        let db = a.state.join(motcua_counter::store::DB_FILE);
        let conn = rusqlite::Connection::open(&db).expect("opens");
        conn.query_row("SELECT code FROM dossiers ORDER BY code LIMIT 1", [], |r| {
            r.get(0)
        })
        .expect("a dossier")
    };
    assert_eq!(dossier_status(&a, &code), 2, "accepted at the counter");
    motcua_e2e::kiosk::add_staff(a.conf.to_str().expect("utf-8"));

    // Published while the counter is not running: retained, it is
    // applied when the counter connects.
    let cat5 = catalogue(&site, 5);
    let out = publish(&site, &["catalogue", cat5.to_str().expect("utf-8")]);
    assert!(out.contains("catalogue version 5"), "{out}");
    let dc = site.receiver();
    let agent = a.run();
    wait_until("the counter reports catalogue 5", LIMIT, || {
        health(&site)["catalogue_version"] == 5
    });

    // A status decided elsewhere reaches the dossier, as a journal record
    // the DC then receives in the chain.
    publish(
        &site,
        &["status", A, &code, "4", "--by", "UBND huyện Phú Ninh"],
    );
    wait_until("the dossier in process", LIMIT, || {
        dossier_status(&a, &code) == 4
    });
    // 4 cannot become 10 (returned) without 9: not forced, a conflict.
    publish(
        &site,
        &["status", A, &code, "10", "--by", "UBND huyện Phú Ninh"],
    );
    wait_until("the conflict reported", LIMIT, || {
        health(&site)["update_conflicts"] == 1
    });
    assert_eq!(dossier_status(&a, &code), 4, "the counter's status wins");
    publish(
        &site,
        &[
            "status",
            A,
            &code,
            "9",
            "--by",
            "UBND huyện Phú Ninh",
            "--note",
            "Đã ký",
        ],
    );
    wait_until("the result ready", LIMIT, || dossier_status(&a, &code) == 9);
    // The clerk sees it in the kiosk.
    let http = motcua_e2e::kiosk::Http::new(&format!("http://127.0.0.1:{}", a.kiosk));
    http.login_api();
    let seen = http.get(&format!("/api/v1/dossiers/{code}"));
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.json()["status"], 9, "{}", seen.body);
    wait_until("the updates reported gone through", LIMIT, || {
        health(&site)["updates_through"] == 3
    });
    // 3 received + 2 applied status changes, all receipted.
    wait_until("the status records receipted", LIMIT, || a.receipted() == 5);
    site.assert_chain(A, 5);

    // Settings: a new health interval, applied at once.
    publish(&site, &["settings", A, "--health-interval", "10s"]);
    wait_until("the settings applied", LIMIT, || {
        agent.log().contains("settings from the DC applied")
    });
    wait_until("the counter reports settings 1", LIMIT, || {
        health(&site)["settings_seq"] == 1
    });

    // Tampered: one byte of the kept catalogue changed, sent with the
    // DC's own certificate. Refused; nothing applied.
    let good5 = kept(&site, "motcua/v1/all/catalogue");
    let mut bad = good5.clone();
    let at = bad.len() - 80;
    bad[at] ^= 0x01;
    site.publish_as_receiver("motcua/v1/all/catalogue", &[bad]);
    wait_until("the tampered catalogue refused", LIMIT, || {
        agent.log().contains("message from the DC refused")
    });
    // Replayed: version 6 is published, then the old version 5 again.
    let cat6 = catalogue(&site, 6);
    publish(&site, &["catalogue", cat6.to_str().expect("utf-8")]);
    wait_until("catalogue 6 applied", LIMIT, || {
        health(&site)["catalogue_version"] == 6
    });
    site.publish_as_receiver("motcua/v1/all/catalogue", &[good5]);
    wait_until("the replay refused", LIMIT, || {
        agent.log().contains("reason=\"replay\"") || agent.log().contains("reason=replay")
    });
    wait_until("both refusals reported", LIMIT, || {
        health(&site)["refused_down"] == 2
    });
    assert_eq!(health(&site)["catalogue_version"], 6);

    // A catalogue not newer than the published one is refused at the DC.
    let conf = site.dc_conf.to_str().expect("utf-8");
    let again = run(
        "motcua-dc",
        [
            "-c",
            conf,
            "--database",
            &site.database,
            "publish",
            "catalogue",
            cat5.to_str().expect("utf-8"),
        ],
    );
    assert!(
        !again.ok && again.stderr.contains("already published"),
        "{}",
        again.stderr
    );

    let log = agent.stop();
    assert!(!log.contains("panicked"), "{log}");
    drop(dc);
}
