//! `motcua provision` as a technician runs it on a blank box, then the
//! operator's two steps (enroll the key, sign the TLS request), then a
//! drain over TLS with the shipped broker configuration and access list: the provisioned counter syncs.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use motcua_e2e::run;
use motcua_e2e::site::{Site, wait_until};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

#[test]
fn a_provisioned_counter_is_enrolled_and_syncs_over_tls() {
    let mut site = Site::new(true);
    site.broker.start();
    let _dc = site.receiver();
    let pki = site.pki.as_ref().expect("tls site");
    let root = tempfile::tempdir().expect("tempdir");
    let conf = root.path().join("etc/motcua/agent.toml");
    let state = root.path().join("var/lib/motcua");
    let dc_key = site
        .dc_line
        .split('"')
        .find(|w| w.starts_with("ed25519:"))
        .expect("the DC key line holds the key")
        .to_owned();
    let broker = site.broker.url_at(&site.broker.host);
    let ca = pki.ca();
    let provision = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            conf.to_str().expect("utf-8"),
            "provision",
            "--unit",
            "H49.12.3",
            "--counter",
            "7",
            "--broker",
            &broker,
            "--dc-key",
            &dc_key,
            "--ca",
            ca.to_str().expect("utf-8"),
            "--state-dir",
            state.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        run("motcua", args)
    };

    let first = provision(&[]);
    assert!(first.ok, "provision: {}", first.stderr);
    let line = first.stdout.trim().to_owned();
    assert!(line.starts_with("motcua-enroll v1 H49.12.3-q07 "), "{line}");
    assert!(
        first.stderr.contains("motcua-dc device add"),
        "{}",
        first.stderr
    );
    assert_eq!(mode(&state.join("device.key")), 0o600);
    assert_eq!(mode(&state.join("tls.key")), 0o600);
    let check = run("motcua", ["config", "check", conf.to_str().expect("utf-8")]);
    assert!(check.ok, "{}", check.stderr);
    assert!(check.stdout.contains(&dc_key), "{}", check.stdout);

    // Again: the identity is kept, the line is the same.
    let again = provision(&[]);
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(again.stdout.trim(), line);
    assert!(again.stderr.contains("kept     "), "{}", again.stderr);

    // The operator's side.
    let added = site.dc(&["device", "add", &line]);
    assert!(added.ok, "{}", added.stderr);
    let cert = conf.with_file_name("device.crt");
    let signed = run(
        "motcua-dc",
        [
            "ca",
            "sign",
            "--dir",
            pki.dir().to_str().expect("utf-8"),
            state.join("device.csr").to_str().expect("utf-8"),
            "--out",
            cert.to_str().expect("utf-8"),
        ],
    );
    assert!(signed.ok, "ca sign: {}", signed.stderr);

    let a = Site::adopt("H49.12.3-q07", conf.clone(), state.clone(), line.clone());
    a.receive(20);
    let agent = a.run();
    wait_until("the backlog receipted", Duration::from_secs(60), || {
        a.receipted() == 20
    });
    drop(agent);
    site.assert_chain("H49.12.3-q07", 20);

    // A new identity only on request, and then a different line.
    let renewed = provision(&["--new-identity"]);
    assert!(renewed.ok, "{}", renewed.stderr);
    assert_ne!(renewed.stdout.trim(), line);
}

#[test]
fn provision_refuses_bad_input_and_writes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let conf = root.path().join("etc/agent.toml");
    let ca = root.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").expect("writes");
    let r = run(
        "motcua",
        [
            "--config",
            conf.to_str().expect("utf-8"),
            "provision",
            "--unit",
            "H49.12.3",
            "--counter",
            "1",
            "--broker",
            "mqtts://127.0.0.1:8883",
            "--dc-key",
            "ed25519:00",
            "--ca",
            ca.to_str().expect("utf-8"),
            "--state-dir",
            root.path().join("state").to_str().expect("utf-8"),
        ],
    );
    assert!(!r.ok);
    assert!(r.stderr.contains("--dc-key"), "{}", r.stderr);
    assert!(!conf.exists());
    assert!(!root.path().join("state").exists());
}
