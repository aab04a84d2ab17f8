//! `config check` on the shipped templates and on broken files.

use std::fs;

use motcua_e2e::{run, template_with, workspace};

/// Which binary checks which template.
fn checker(template: &str) -> &'static str {
    match template {
        "agent.toml" => "motcua",
        "dc.toml" => "motcua-dc",
        other => panic!("firmware-config/{other} has no checker: add it here"),
    }
}

#[test]
fn every_shipped_template_passes_config_check() {
    let dir = workspace().join("firmware-config");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).expect("firmware-config exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_owned();
            let r = run(
                checker(&name),
                ["config", "check", path.to_str().expect("utf-8")],
            );
            assert!(r.ok, "{name}: {r:?}");
            assert!(r.stderr.contains("valid"), "{name}: {r:?}");
            seen += 1;
        }
    }
    assert!(seen >= 2, "found {seen} templates");
}

#[test]
fn config_check_reports_every_problem_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        template_with(
            "agent.toml",
            &[
                ("unit =", "unit = \"Quang Nam\"".into()),
                ("counter =", "counter = 0".into()),
                ("key_file =", "key_file = \"device.key\"".into()),
                ("public_key =", "public_key = \"abc\"".into()),
                ("reconnect_max =", "reconnect_max = \"forever\"".into()),
                ("format =", "format = \"xml\"".into()),
            ],
        ),
    )
    .expect("write");
    let r = run("motcua", ["config", "check", cfg.to_str().expect("utf-8")]);
    assert_eq!(r.code, Some(78), "EX_CONFIG: {r:?}");
    assert!(
        r.stdout.is_empty(),
        "nothing is printed as effective: {r:?}"
    );
    assert!(r.stderr.contains("6 problems"), "{r:?}");
    for key in [
        "device.unit",
        "device.counter",
        "device.key_file",
        "dc.public_key",
        "dc.reconnect_max",
        "log.format",
    ] {
        assert!(
            r.stderr.contains(&format!("  {key}: ")),
            "{key} reported: {r:?}"
        );
    }
    // The bad value is quoted so the technician sees what was read.
    assert!(r.stderr.contains("\"Quang Nam\""), "{r:?}");
}

#[test]
fn an_unknown_key_is_refused_not_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        template_with(
            "agent.toml",
            &[("counter =", "counter = 1\ncountr = 2".into())],
        ),
    )
    .expect("write");
    let r = run("motcua", ["config", "check", cfg.to_str().expect("utf-8")]);
    assert_eq!(r.code, Some(78), "EX_CONFIG: {r:?}");
    assert!(r.stderr.contains("countr"), "{r:?}");
}

#[test]
fn plain_mqtt_needs_an_explicit_opt_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("dc.toml");
    let plain = |allow: bool| {
        template_with(
            "dc.toml",
            &[
                ("broker =", "broker = \"mqtt://127.0.0.1:1883\"".into()),
                ("allow_plaintext", format!("allow_plaintext = {allow}")),
                ("ca_file", String::new()),
                ("client_cert", String::new()),
                ("client_key", String::new()),
            ],
        )
    };
    fs::write(&cfg, plain(false)).expect("write");
    let r = run(
        "motcua-dc",
        ["config", "check", cfg.to_str().expect("utf-8")],
    );
    assert_eq!(r.code, Some(78), "EX_CONFIG: {r:?}");
    assert!(
        r.stderr
            .contains("broker.broker: mqtt:// sends records unencrypted"),
        "{r:?}"
    );
    fs::write(&cfg, plain(true)).expect("write");
    let r = run(
        "motcua-dc",
        ["config", "check", cfg.to_str().expect("utf-8")],
    );
    assert!(r.ok, "{r:?}");
    assert!(r.stdout.contains("allow_plaintext = true"), "{r:?}");
}

#[test]
fn a_database_password_never_reaches_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("dc.toml");
    let url = "url = \"postgres://motcua:s3cret@127.0.0.1:5432/motcua\"".to_owned();
    fs::write(&cfg, template_with("dc.toml", &[("url =", url)])).expect("write");
    let r = run(
        "motcua-dc",
        ["config", "check", cfg.to_str().expect("utf-8")],
    );
    assert!(r.ok, "{r:?}");
    assert!(
        !r.stdout.contains("s3cret") && !r.stderr.contains("s3cret"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("postgres://motcua:***@127.0.0.1:5432/motcua"),
        "{r:?}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let r = run("motcua", ["config", "check", "/nonexistent/agent.toml"]);
    assert_eq!(r.code, Some(78), "EX_CONFIG: {r:?}");
    assert!(r.stderr.contains("/nonexistent/agent.toml"), "{r:?}");
    // What systemd sees: `run` stops with EX_CONFIG, which the unit's
    // RestartPreventExitStatus=78 keeps from a restart loop.
    let r = run("motcua", ["-c", "/nonexistent/agent.toml", "run"]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("/nonexistent/agent.toml"), "{r:?}");
    let r = run("motcua-dc", ["-c", "/nonexistent/dc.toml", "run"]);
    assert_eq!(r.code, Some(78), "{r:?}");
}

#[test]
fn every_command_has_help() {
    for (bin, cmds) in [
        (
            "motcua",
            &[
                "keygen",
                "identity",
                "config",
                "selftest",
                "dossier",
                "journal",
                "status",
                "reference",
            ][..],
        ),
        ("motcua-dc", &["keygen", "public-key", "config"][..]),
    ] {
        let top = run(bin, ["--help"]);
        assert!(top.ok, "{bin}: {top:?}");
        for cmd in cmds {
            assert!(top.stdout.contains(cmd), "{bin} --help lists {cmd}");
            let r = run(bin, [cmd, &"--help"]);
            assert!(
                r.ok && r.stdout.contains("Usage:"),
                "{bin} {cmd} --help: {r:?}"
            );
        }
    }
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // Like `motcua config check ... | head -1`: the reader closes early.
    let mut child = Command::new(motcua_e2e::bin("motcua"))
        .args([
            "config",
            "check",
            workspace()
                .join("firmware-config/agent.toml")
                .to_str()
                .expect("utf-8"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    drop(child.stdout.take());
    let status = child.wait().expect("ends");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut err)
        .expect("read");
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}
