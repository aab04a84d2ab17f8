//! Both binaries under systemd's service protocol: `Type=notify` units get
//! READY=1 once the store is open and WATCHDOG=1 from the main loop.
//!
//! There is no systemd on the test machine, so the test plays its part: it
//! binds the datagram socket systemd would pass in `$NOTIFY_SOCKET`, sets
//! `$WATCHDOG_USEC` as `WatchdogSec=` would, and reads what the process
//! sends. The unit files themselves are checked by `scripts/check-units`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use motcua_e2e::site::{Proc, Site, wait_until};

/// Datagrams received on `sock` until `want` has been seen in order, or
/// `within` passes.
fn expect_in_order(
    sock: &UnixDatagram,
    want: &[&str],
    within: Duration,
    who: &Proc,
) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut next = 0;
    let mut buf = [0u8; 4096];
    while next < want.len() {
        assert!(
            start.elapsed() < within,
            "waited {within:?} for {:?}; received {got:?}; log:\n{}",
            &want[next..],
            who.log()
        );
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want[next]) {
                next += 1;
            }
            got.push(msg);
        }
    }
    got
}

fn notify_socket(dir: &Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("binds");
    (sock, path.to_str().expect("utf-8").to_owned())
}

#[test]
fn the_agent_reports_ready_and_pings_the_watchdog() {
    let mut site = Site::new(false);
    site.broker.start();
    let a = site.counter("H49.12.3-q11");
    a.receive(5);
    let _dc = site.receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let (sock, path) = notify_socket(dir.path());
    // WatchdogSec=2s: a ping at least every second.
    let agent = a.run_with_env(&[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "2000000")]);
    let got = expect_in_order(
        &sock,
        &["READY=1", "WATCHDOG=1", "WATCHDOG=1"],
        Duration::from_secs(20),
        &agent,
    );
    wait_until("the backlog receipted", Duration::from_secs(30), || {
        a.receipted() == 5
    });
    // Pings sent meanwhile wait in the socket with the older status: read
    // on until one tells the new state (or the time is up).
    let later = expect_in_order(
        &sock,
        &["STATUS=online; receipted through seq 5"],
        Duration::from_secs(20),
        &agent,
    );
    let got = [got, later].concat();
    assert!(
        got.iter()
            .any(|m| m.contains("STATUS=online; receipted through seq 5")),
        "the status line tells the sync state: {got:?}"
    );
    assert!(
        got.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3,
        "the watchdog pings go on: {got:?}"
    );
    let log = agent.stop();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn the_receiver_reports_ready_and_pings_the_watchdog() {
    let mut site = Site::new(false);
    site.broker.start();
    let a = site.counter("H49.12.3-q12");
    a.receive(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let (sock, path) = notify_socket(dir.path());
    let dc = site.receiver_with_env(&[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "2000000")]);
    let _agent = a.run();
    expect_in_order(
        &sock,
        &["READY=1", "WATCHDOG=1", "WATCHDOG=1"],
        Duration::from_secs(20),
        &dc,
    );
    wait_until("the backlog receipted", Duration::from_secs(30), || {
        a.receipted() == 3
    });
    let got = expect_in_order(&sock, &["WATCHDOG=1"], Duration::from_secs(5), &dc);
    assert!(
        got.iter().any(|m| m.contains("STATUS=subscribed;")),
        "the status line says the receiver is subscribed: {got:?}"
    );
}
