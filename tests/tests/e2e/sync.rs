//! Sync end to end: real `motcua run` and `motcua-dc run` processes and a
//! real Mosquitto started by each test on an ephemeral port (TLS with
//! client certificates and the shipped broker configuration unless a test says otherwise).
//! Every test ends by re-verifying the DC's copy of each chain from its
//! stored bytes: exactly seq 1..=n, every signature and link intact.

use std::time::Duration;

use motcua_e2e::site::{PgDatabase, Site, wait_draining};

const DEVICE: &str = "H49.12.3-q01";
const LONG: Duration = Duration::from_secs(120);

fn sleep(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn a_backlog_drains_over_tls_and_new_records_follow() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(DEVICE);
    a.receive(1500);
    let _dc = site.receiver();
    let _agent = a.run();
    wait_draining("the backlog receipted", LONG, || a.receipted(), 1500);
    // Records made while the agent runs (by the CLI's writer beside it).
    a.receive(25);
    wait_draining("new records receipted", LONG, || a.receipted(), 1525);
    site.assert_chain(DEVICE, 1525);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
    assert_eq!(site.totals().held, 0);
}

#[test]
fn broker_down_at_start_then_restarted_mid_drain() {
    let mut site = Site::new(true);
    let a = site.counter(DEVICE);
    a.receive(20_000);
    let _agent = a.run();
    sleep(1500);
    assert_eq!(a.receipted(), 0, "nothing is synced without a broker");
    site.broker.start();
    let _dc = site.receiver();
    wait_draining(
        "part of the backlog receipted",
        LONG,
        || a.receipted().min(1001),
        1001,
    );
    let at_kill = a.receipted();
    site.broker.kill();
    assert!(at_kill < 20_000, "the broker went down mid-drain");
    sleep(1000);
    site.broker.start();
    wait_draining(
        "the whole backlog receipted",
        LONG,
        || a.receipted(),
        20_000,
    );
    site.assert_chain(DEVICE, 20_000);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}

#[test]
fn receiver_down_for_a_while() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(DEVICE);
    // Large enough that the drain is still under way when the test sees
    // its first 301 receipts and kills the receiver (3 000 could all be
    // receipted between two looks on a quiet machine).
    const BACKLOG: u64 = 12_000;
    a.receive(BACKLOG);
    let _agent = a.run();
    // Nobody subscribes: the broker drops what the agent sends.
    sleep(2000);
    assert_eq!(a.receipted(), 0);
    let mut dc = site.receiver();
    wait_draining(
        "part of the backlog receipted",
        LONG,
        || a.receipted().min(301),
        301,
    );
    dc.kill();
    let at_kill = a.receipted();
    sleep(2000);
    assert!(at_kill < BACKLOG, "the receiver went down mid-drain");
    let _dc = site.receiver();
    wait_draining(
        "the whole backlog receipted",
        LONG,
        || a.receipted(),
        BACKLOG,
    );
    site.assert_chain(DEVICE, BACKLOG);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}

#[test]
fn agent_killed_mid_drain() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(DEVICE);
    a.receive(20_000);
    let _dc = site.receiver();
    let mut agent = a.run();
    wait_draining(
        "part of the backlog receipted",
        LONG,
        || a.receipted().min(1001),
        1001,
    );
    agent.kill();
    let at_kill = a.receipted();
    assert!(at_kill < 20_000, "the agent died mid-drain");
    let _agent = a.run();
    wait_draining(
        "the whole backlog receipted",
        LONG,
        || a.receipted(),
        20_000,
    );
    site.assert_chain(DEVICE, 20_000);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}

/// Two receivers in one shared-subscription group, one PostgreSQL
/// database, four counters: every record once, and both receivers worked.
#[test]
fn two_receivers_share_one_subscription() {
    let db = PgDatabase::create();
    let mut site = Site::with_database(true, Some(db.url.clone()));
    site.broker.start();
    let counters: Vec<_> = (1..=4)
        .map(|i| site.counter(&format!("H49.12.3-q0{i}")))
        .collect();
    for c in &counters {
        c.receive(2000);
    }
    let r1 = site.receiver();
    let r2 = site.receiver();
    let _agents: Vec<_> = counters.iter().map(|c| c.run()).collect();
    for c in &counters {
        wait_draining("every backlog receipted", LONG, || c.receipted(), 2000);
    }
    let logs = [r1.stop(), r2.stop()];
    for c in &counters {
        site.assert_chain(&c.id, 2000);
    }
    assert_eq!(site.totals().records, 8000);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
    let stored: Vec<u64> = logs.iter().map(|l| count(l, "stored=")).collect();
    // Both took a share of the messages. Which one stores a record first
    // is a race when the agents resend under load, so the share is
    // counted as stored plus recognised duplicates.
    let handled: Vec<u64> = logs
        .iter()
        .map(|l| count(l, "stored=") + count(l, "duplicates="))
        .collect();
    assert!(
        handled.iter().all(|&n| n > 0),
        "both receivers took messages: {handled:?}\n{}\n{}",
        logs[0],
        logs[1]
    );
    assert_eq!(stored.iter().sum::<u64>(), 8000, "each record stored once");
}

/// The `stored=N` of a receiver's last "receiver stopped" line.
fn count(log: &str, field: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("receiver stopped"))
        .filter_map(|l| l.split(field).nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .next_back()
        .unwrap_or(0)
}

/// The embedded-defaults path: plain MQTT on loopback (allow_plaintext),
/// SQLite, several counters at once.
#[test]
fn plain_loopback_with_several_counters() {
    let mut site = Site::new(false);
    site.broker.start();
    let counters: Vec<_> = (1..=3)
        .map(|i| site.counter(&format!("H49.12.3-q0{i}")))
        .collect();
    for c in &counters {
        c.receive(700);
    }
    let _dc = site.receiver();
    let _agents: Vec<_> = counters.iter().map(|c| c.run()).collect();
    for c in &counters {
        wait_draining("every backlog receipted", LONG, || c.receipted(), 700);
        site.assert_chain(&c.id, 700);
    }
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}
