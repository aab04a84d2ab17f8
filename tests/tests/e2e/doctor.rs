//! `motcua doctor` against a real site: everything passes on a working
//! counter, and each broken piece is named with its fix and a nonzero exit.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use motcua_e2e::run;
use motcua_e2e::site::{Site, wait_until};

fn doctor(conf: &std::path::Path) -> motcua_e2e::Run {
    run(
        "motcua",
        [
            "-c",
            conf.to_str().expect("utf-8"),
            "doctor",
            "--timeout",
            "5",
        ],
    )
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} row in:\n{out}"))
}

#[test]
fn doctor_passes_a_working_counter_and_names_what_breaks() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter("H49.12.3-q21");
    a.receive(3);
    let dc = site.receiver();
    let agent = a.run();
    wait_until("the backlog receipted", Duration::from_secs(30), || {
        a.receipted() == 3
    });
    // While the agent runs, doctor leaves its broker session alone (the
    // broker binds the client id to the certificate) and says why.
    let beside = doctor(&a.conf);
    assert!(beside.ok, "{}{}", beside.stdout, beside.stderr);
    for name in ["broker login", "receipt round trip"] {
        let l = line(&beside.stdout, name);
        assert!(l.starts_with("skip"), "{l}");
    }
    assert!(
        line(&beside.stdout, "broker login").contains("motcua run is running"),
        "{}",
        beside.stdout
    );
    // A second agent on the same state directory refuses to start.
    let mut second = a.run();
    let second_log = second.exited(Duration::from_secs(30));
    assert!(
        second_log.contains("another motcua run already uses"),
        "{second_log}"
    );
    let log = agent.stop();
    assert!(
        !log.contains("no connection to the DC broker"),
        "doctor or the second agent took the agent's session: {log}"
    );

    let ok = doctor(&a.conf);
    assert!(
        ok.ok,
        "doctor on a working counter:\n{}{}",
        ok.stdout, ok.stderr
    );
    for name in [
        "configuration",
        "device key",
        "DC key pinned",
        "TLS files",
        "free disk",
        "store",
        "broker reachable",
        "broker login",
        "receipt round trip",
    ] {
        assert!(
            line(&ok.stdout, name).starts_with("ok"),
            "{name}:\n{}",
            ok.stdout
        );
    }
    assert!(line(&ok.stdout, "receipt round trip").contains("sent seq 3 again"));
    // The round trip stored nothing twice.
    assert_eq!(site.totals().records, 3);
    assert!(site.alert_reasons().is_empty());

    // The DC's receiver down: no receipt.
    drop(dc);
    let no_dc = doctor(&a.conf);
    assert!(!no_dc.ok);
    let trip = line(&no_dc.stdout, "receipt round trip");
    assert!(trip.starts_with("FAIL"), "{}", no_dc.stdout);
    assert!(
        no_dc
            .stdout
            .contains("fix: the DC's receiver is not running"),
        "{}",
        no_dc.stdout
    );

    // A key others can read.
    std::fs::set_permissions(&a.key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let loose = doctor(&a.conf);
    assert!(!loose.ok);
    assert!(
        line(&loose.stdout, "device key").starts_with("FAIL"),
        "{}",
        loose.stdout
    );
    std::fs::set_permissions(&a.key, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // The broker gone.
    site.broker.kill();
    let no_broker = doctor(&a.conf);
    assert!(!no_broker.ok);
    assert!(
        line(&no_broker.stdout, "broker reachable").starts_with("FAIL"),
        "{}",
        no_broker.stdout
    );
    assert!(
        line(&no_broker.stdout, "broker login").starts_with("skip"),
        "{}",
        no_broker.stdout
    );
}
