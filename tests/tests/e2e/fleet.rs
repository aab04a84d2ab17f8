//! What the data centre sees of its counters, end to end over TLS with the
//! shipped broker configuration: presence from the retained status topic and the MQTT last
//! will, health reports, and `motcua-dc fleet`.

use std::time::Duration;

use motcua_e2e::site::{Site, wait_until};
use serde_json::Value;

const A: &str = "H49.12.3-q01";
const B: &str = "H49.12.3-q02";
const LIMIT: Duration = Duration::from_secs(60);

fn fleet(site: &Site) -> Vec<Value> {
    let r = site.dc(&["fleet", "--json"]);
    assert!(r.ok, "fleet --json: {}", r.stderr);
    serde_json::from_str::<Value>(&r.stdout)
        .expect("JSON")
        .as_array()
        .expect("an array")
        .clone()
}

fn row(site: &Site, device: &str) -> Value {
    fleet(site)
        .into_iter()
        .find(|r| r["device"] == device)
        .unwrap_or_else(|| panic!("{device} is not in the fleet"))
}

#[test]
fn counters_report_health_and_the_fleet_sees_them_come_and_go() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(A);
    let _b = site.counter(B);
    a.receive(40);
    let dc = site.receiver();

    // Before it ever connects, a counter is "unknown" and flagged.
    let never = row(&site, A);
    assert_eq!(never["state"], "unknown");
    assert_eq!(never["attention"][0], "never connected");

    // Connected: online, its health report stored, its backlog drained.
    let mut agent = a.run();
    wait_until("the backlog receipted", LIMIT, || a.receipted() == 40);
    wait_until("A online with a health report", LIMIT, || {
        let r = row(&site, A);
        r["state"] == "online" && r["health"].is_object()
    });
    let r = row(&site, A);
    let h = &r["health"];
    assert_eq!(h["device"], A);
    assert_eq!(h["unit"], "H49.12.3");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["mem_total_bytes"].as_u64().is_some_and(|m| m > 0), "{h}");
    assert!(h["disk_free_bytes"].as_u64().is_some_and(|m| m > 0), "{h}");
    assert!(h["head_seq"].as_u64() == Some(40), "{h}");
    assert_eq!(r["unit"], "H49.12.3");
    assert!(r["last_seen"].is_string());

    // Once drained, the counter says so at once (not an interval later).
    wait_until("A's report shows the backlog gone", LIMIT, || {
        row(&site, A)["backlog"] == 0
    });
    let r = row(&site, A);
    assert!(r["lag_s"].is_null(), "{r}");
    assert!(
        !r["attention"]
            .as_array()
            .expect("list")
            .iter()
            .any(|a| a == "sync lagging"),
        "{r}"
    );

    // Those needing the most attention come first.
    let rows = fleet(&site);
    let needs: Vec<usize> = rows
        .iter()
        .map(|r| r["attention"].as_array().expect("list").len())
        .collect();
    assert!(needs.windows(2).all(|w| w[0] >= w[1]), "{needs:?}");

    // The table: one line per counter under a header.
    let table = site.dc(&["fleet"]);
    assert!(table.ok, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("UNIT"), "{}", table.stdout);
    let line = |d: &str| {
        *lines
            .iter()
            .find(|l| l.contains(d))
            .unwrap_or_else(|| panic!("no row for {d}: {}", table.stdout))
    };
    assert!(line(B).contains("never connected"), "{}", table.stdout);
    assert!(
        line(A).contains("online") && line(A).starts_with("H49.12.3"),
        "{}",
        table.stdout
    );

    // Killed (no DISCONNECT): the broker publishes the last will.
    agent.kill();
    wait_until("A offline by its last will", LIMIT, || {
        row(&site, A)["state"] == "offline"
    });
    assert_eq!(row(&site, A)["attention"][0], "offline");

    // While no receiver runs, the counter comes back: its retained
    // `online` waits at the broker for the next receiver.
    let dc_log = dc.stop();
    assert!(
        dc_log.contains("counter presence") && dc_log.contains("offline"),
        "{dc_log}"
    );
    let agent = a.run();
    wait_until("A connected", LIMIT, || {
        agent.log().contains("connected to the DC broker")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(row(&site, A)["state"], "offline", "no receiver yet");
    let dc = site.receiver();
    wait_until("A online, from the retained status", LIMIT, || {
        row(&site, A)["state"] == "online"
    });

    // A clean stop says offline itself.
    let log = agent.stop();
    assert!(!log.contains("panicked"), "{log}");
    wait_until("A offline after a clean stop", LIMIT, || {
        row(&site, A)["state"] == "offline"
    });

    // A report naming another device, sent on A's topic with A's
    // certificate, is refused and counted, never stored.
    let before = row(&site, A)["health_at"].clone();
    let mut forged = row(&site, A)["health"].clone();
    forged["device"] = B.into();
    site.publish_as(
        a.tls.as_ref(),
        &format!("motcua/v1/d/{A}/health"),
        &[serde_json::to_vec(&forged).expect("JSON")],
    );
    wait_until("the forged report refused", LIMIT, || {
        dc.log().contains("device_mismatch")
    });
    assert_eq!(row(&site, A)["health_at"], before, "nothing stored");
    assert!(row(&site, B)["health"].is_null(), "nothing stored for B");
    // Presence and health never become alerts (they are not records).
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}

#[test]
fn a_small_simulated_fleet_drains_through_two_receivers_with_nothing_lost() {
    // The fleet benchmark's simulator at a size the suite can afford:
    // every counter the agent's real store and sync loop, in this process.
    let f = motcua_e2e::fleet_sim::Fleet {
        counters: 40,
        records: 25,
        receivers: 2,
    };
    let r = motcua_e2e::fleet_sim::run(f, |_, _, _| {});
    eprintln!("{r:?}");
    assert_eq!(r.stored, 40 * 25);
    assert_eq!(r.complete, 40, "every chain exactly its backlog");
    assert_eq!(r.alerts, 0);
}
