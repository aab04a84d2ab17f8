//! README's runbook, copy-pasted: the block under `<!-- runbook: -->` run
//! by bash with the built binaries first on the PATH, every absolute path
//! it names (and the template's) moved under a scratch root. From a fresh
//! data centre to an enrolled counter with its signed certificate, by the
//! one path `motcua provision` prints.

use std::path::Path;

use motcua_e2e::{bin, run, workspace};

/// The paths the runbook writes, each moved under `root`.
fn rooted(text: &str, root: &Path) -> String {
    let root = root.display().to_string();
    let mut out = text.replace(
        "sqlite:///var/lib/motcua-dc",
        &format!("sqlite://{root}/var/lib/motcua-dc"),
    );
    for dir in ["/etc/motcua", "/var/lib/motcua", "/root"] {
        // Only where the path starts: after a space, a quote, `=`, a
        // parenthesis or a line's start (never inside a path already
        // moved).
        for before in [" ", "\"", "\n", "=", "("] {
            out = out.replace(&format!("{before}{dir}"), &format!("{before}{root}{dir}"));
        }
    }
    out
}

#[test]
fn the_readme_runbook_enrolls_a_counter_by_one_path() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README");
    let from = readme.find("<!-- runbook:").expect("the runbook marker");
    let block = readme[from..]
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(b, _)| b)
        .expect("the runbook's code block");

    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path();
    let template = std::fs::read_to_string(workspace().join("firmware-config/dc.toml"))
        .expect("the dc.toml template");
    std::fs::write(root.join("dc.toml"), rooted(&template, root)).expect("writes");
    let script = rooted(block, root).replace(
        "firmware-config/dc.toml",
        &root.join("dc.toml").display().to_string(),
    );
    // Every path moved: with the scratch root taken out, no system
    // directory is left anywhere in the script (quoted, after `=`, at a
    // line's start or inside a URL).
    let marked = script.replace(&root.display().to_string(), "SCRATCH");
    for system in ["/etc/", "/var/", "/root"] {
        assert_eq!(
            marked.matches(system).count(),
            marked.matches(&format!("SCRATCH{system}")).count(),
            "the runbook still names {system} outside the scratch root: {script}"
        );
    }
    let bins = root.join("bin");
    std::fs::create_dir_all(&bins).expect("bin");
    for name in ["motcua", "motcua-dc"] {
        std::os::unix::fs::symlink(bin(name), bins.join(name)).expect("links the binary");
    }
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workspace())
        .env("PATH", path)
        .env(
            "MOTCUA_DC_CONFIG",
            root.join("etc/motcua/dc.toml").display().to_string(),
        )
        .env(
            "MOTCUA_CONFIG",
            root.join("etc/motcua/agent.toml").display().to_string(),
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("H49.12.3-q01\tactive"),
        "the counter is enrolled: {stdout}"
    );
    assert!(root.join("etc/motcua/device.crt").exists());

    // What it wrote is a configuration each side accepts as it is.
    let agent = root.join("etc/motcua/agent.toml");
    let check = run(
        "motcua",
        ["config", "check", agent.to_str().expect("utf-8")],
    );
    assert!(check.ok, "{}{}", check.stdout, check.stderr);
    let dc = root.join("etc/motcua/dc.toml");
    let check = run(
        "motcua-dc",
        ["-c", dc.to_str().expect("utf-8"), "config", "check"],
    );
    assert!(check.ok, "{}{}", check.stdout, check.stderr);
}
