//! `motcua keygen` / `identity` and `motcua-dc keygen` / `public-key`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use motcua_e2e::{run, template_with};
use motcua_protocol::{Enrollment, KeyId};

#[test]
fn keygen_writes_a_private_key_and_prints_one_enrollment_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("device.key");
    let r = run(
        "motcua",
        [
            "keygen",
            "--key-file",
            key.to_str().expect("utf-8"),
            "--device",
            "H49.12.3-q01",
        ],
    );
    assert!(r.ok, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the line alone: {r:?}");
    let e: Enrollment = lines[0]
        .parse()
        .expect("the printed line is an enrollment line");
    assert_eq!(e.device.as_str(), "H49.12.3-q01");
    assert_eq!(
        fs::metadata(&key).expect("key exists").permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&key)
            .expect("read")
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        r.stderr.contains("motcua-dc device add"),
        "tells the technician what to do: {r:?}"
    );
    // identity prints the same line again from the file.
    let again = run(
        "motcua",
        [
            "identity",
            "--key-file",
            key.to_str().expect("utf-8"),
            "--device",
            "H49.12.3-q01",
        ],
    );
    assert!(again.ok, "{again:?}");
    assert_eq!(again.stdout, r.stdout);
}

#[test]
fn keygen_takes_the_key_file_and_device_id_from_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("device.key");
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        template_with(
            "agent.toml",
            &[(
                "key_file",
                format!("key_file = {:?}", key.display().to_string()),
            )],
        ),
    )
    .expect("write config");
    let r = run(
        "motcua",
        ["--config", cfg.to_str().expect("utf-8"), "keygen"],
    );
    assert!(r.ok, "{r:?}");
    assert!(key.exists());
    let e: Enrollment = r.stdout.trim().parse().expect("enrollment line");
    assert_eq!(
        e.device.as_str(),
        "H49.12.3-q01",
        "device id from the template"
    );
}

#[test]
fn keygen_never_replaces_an_existing_key_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("device.key");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "keygen",
            "--key-file",
            key.to_str().expect("utf-8"),
            "--device",
            "dev-1",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    assert!(run("motcua", args(&[])).ok);
    let before = fs::read(&key).expect("read");
    let r = run("motcua", args(&[]));
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("already exists") && r.stderr.contains("--force"),
        "{r:?}"
    );
    assert_eq!(
        fs::read(&key).expect("read"),
        before,
        "the existing key is untouched"
    );
    assert!(
        r.stdout.is_empty(),
        "no enrollment line for a key that was not made: {r:?}"
    );
    let forced = run("motcua", args(&["--force"]));
    assert!(forced.ok, "{forced:?}");
    assert_ne!(fs::read(&key).expect("read"), before);
}

#[test]
fn a_key_readable_by_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("device.key");
    let k = key.to_str().expect("utf-8");
    assert!(run("motcua", ["keygen", "--key-file", k, "--device", "dev-1"]).ok);
    for mode in [0o644, 0o604, 0o640] {
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).expect("chmod");
        let r = run("motcua", ["identity", "--key-file", k, "--device", "dev-1"]);
        assert_eq!(r.code, Some(1), "mode {mode:o}: {r:?}");
        assert!(
            r.stderr.contains(&format!("chmod 600 {k}")),
            "says how to fix it: {r:?}"
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn a_dc_key_line_is_what_the_agent_configuration_takes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dc_key = dir.path().join("dc.key");
    let r = run(
        "motcua-dc",
        ["keygen", "--key-file", dc_key.to_str().expect("utf-8")],
    );
    assert!(r.ok, "{r:?}");
    assert_eq!(
        fs::metadata(&dc_key).expect("exists").permissions().mode() & 0o777,
        0o600
    );
    let line = r.stdout.trim().to_owned();
    assert!(line.starts_with("public_key = \"ed25519:"), "{line}");
    // Pasted into an agent configuration, it is accepted and pinned.
    let cfg = dir.path().join("agent.toml");
    fs::write(
        &cfg,
        template_with("agent.toml", &[("public_key", line.clone())]),
    )
    .expect("write");
    let check = run("motcua", ["config", "check", cfg.to_str().expect("utf-8")]);
    assert!(check.ok, "{check:?}");
    let kid = line.rsplit("kid ").next().expect("kid comment");
    assert!(
        check.stdout.contains(kid),
        "the effective configuration shows the pinned kid: {check:?}"
    );
    let hexkey = line
        .split('"')
        .nth(1)
        .and_then(|s| s.strip_prefix("ed25519:"))
        .expect("quoted key");
    let raw: [u8; 32] = hex::decode(hexkey)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&raw).expect("valid point");
    assert_eq!(KeyId::of(&vk).to_hex(), kid);
    // public-key prints the same line from the file.
    let again = run(
        "motcua-dc",
        ["public-key", "--key-file", dc_key.to_str().expect("utf-8")],
    );
    assert_eq!(again.stdout.trim(), line);
    // and the DC key, too, is never silently replaced.
    let twice = run(
        "motcua-dc",
        ["keygen", "--key-file", dc_key.to_str().expect("utf-8")],
    );
    assert_eq!(twice.code, Some(1), "{twice:?}");
}
