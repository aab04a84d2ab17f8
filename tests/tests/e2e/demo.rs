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
