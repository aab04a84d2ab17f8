//! The store commands as a technician or a script runs them: the real
//! binary, a real configuration, a real key, a real database.

use std::fs;
use std::path::{Path, PathBuf};

use motcua_e2e::{Run, run, template_with, workspace};

/// A configuration whose state directory and key live in a temp dir, with
/// the documented example reference data imported.
struct Counter {
    _dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
}

impl Counter {
    fn new() -> Counter {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let key = dir.path().join("device.key");
        let config = dir.path().join("agent.toml");
        fs::write(
            &config,
            template_with(
                "agent.toml",
                &[
                    (
                        "key_file",
                        format!("key_file = {:?}", key.display().to_string()),
                    ),
                    (
                        "state_dir",
                        format!("state_dir = {:?}", state.display().to_string()),
                    ),
                    ("min_free", "min_free = \"1 MiB\"".into()),
                ],
            ),
        )
        .expect("write config");
        let c = Counter {
            _dir: dir,
            config,
            state,
        };
        assert!(c.run(&["keygen"]).ok);
        let r = c.run(&[
            "reference",
            "import",
            example("reference.json").to_str().expect("utf-8"),
        ]);
        assert!(r.ok, "{r:?}");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config", self.config.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        run("motcua", all)
    }

    fn add(&self, file: &Path) -> Run {
        self.run(&[
            "dossier",
            "add",
            "--json",
            file.to_str().expect("utf-8"),
            "--staff",
            "canbo.an",
        ])
    }
}

fn example(name: &str) -> PathBuf {
    workspace().join("docs/examples").join(name)
}

#[test]
fn a_dossier_is_received_shown_found_and_advanced() {
    let c = Counter::new();
    let r = c.add(&example("dossier.json"));
    assert!(r.ok, "{r:?}");
    let code = r.stdout.trim().to_owned();
    assert!(
        code.starts_with("H49.12.3-") && code.ends_with("-1001"),
        "stdout is the code alone: {r:?}"
    );

    let show = c.run(&["dossier", "show", &code]);
    assert!(show.ok, "{show:?}");
    for field in [
        "Nguyễn Thị Thu Hà",
        "1.001193 Đăng ký kết hôn",
        "Hẹn trả kết quả:",
        "(5 ngày làm việc)",
        "2 (Đã tiếp nhận)",
        "chưa được",
    ] {
        assert!(show.stdout.contains(field), "{field}: {show:?}");
    }
    let json = c.run(&["dossier", "show", &code, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["dossier"]["applicant"]["id_number"], "049301000123");

    for query in [
        &["--name", "nguyen thi thu ha"][..],
        &["--name", "THU HÀ"],
        &["--id", "049301000123"],
        &["--code", &code],
        &["--today"],
    ] {
        let mut args = vec!["dossier", "search"];
        args.extend_from_slice(query);
        let found = c.run(&args);
        assert!(
            found.ok && found.stdout.contains(&code),
            "{query:?}: {found:?}"
        );
    }
    let none = c.run(&["dossier", "search", "--name", "tran van"]);
    assert!(none.ok && !none.stdout.contains(&code), "{none:?}");

    let ch = c.run(&[
        "dossier",
        "set-status",
        &code,
        "4",
        "--staff",
        "canbo.an",
        "--note",
        "Chuyển phòng Tư pháp",
    ]);
    assert!(ch.ok, "{ch:?}");
    let bad = c.run(&["dossier", "set-status", &code, "10", "--staff", "canbo.an"]);
    assert_eq!(bad.code, Some(3), "{bad:?}");
    assert!(
        bad.stderr.contains("status_transition") && bad.stderr.contains("Không thể chuyển"),
        "{bad:?}"
    );

    // Nothing is receipted yet, so pruning removes nothing.
    let prune = c.run(&["journal", "prune"]);
    assert!(
        prune.ok && prune.stdout.contains("pruned 0 receipted envelopes"),
        "{prune:?}"
    );
    let verify = c.run(&["journal", "verify"]);
    assert!(
        verify.ok
            && verify
                .stdout
                .contains("journal intact: 2 records, 2 signatures"),
        "{verify:?}"
    );
    let status = c.run(&["status"]);
    assert!(
        status.ok && status.stdout.contains("2 records"),
        "{status:?}"
    );
    let status = c.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(
        (
            v["dossiers"].as_u64(),
            v["unsynced"].as_u64(),
            v["today"].as_u64()
        ),
        (Some(1), Some(2), Some(1))
    );
}

#[test]
fn refused_input_lists_every_problem_in_vietnamese_and_stores_nothing() {
    let c = Counter::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(example("dossier.json")).expect("read"))
            .expect("json");
    v["applicant"]["id_number"] = "003301000123".into();
    v["applicant"]["phone"] = "123".into();
    v["applicant"]["name"] = "".into();
    fs::write(&bad, v.to_string()).expect("write");
    let r = c.add(&bad);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stdout.is_empty(), "no code for a refused dossier: {r:?}");
    for code in ["required", "id_number_province", "phone_format"] {
        assert!(r.stderr.contains(code), "{code}: {r:?}");
    }
    assert!(
        r.stderr.contains("Vui lòng nhập họ và tên người nộp"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("003301000123"),
        "the message does not echo the ID number: {r:?}"
    );
    // Malformed JSON is refused with where it broke.
    fs::write(&bad, "{\"procedure\": ").expect("write");
    let r = c.add(&bad);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("dòng 1"), "{r:?}");
    let status = c.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(v["dossiers"].as_u64(), Some(0));
}

#[test]
fn unknown_codes_and_dates_have_their_exit_codes() {
    let c = Counter::new();
    let r = c.run(&["dossier", "show", "H49.12.3-261126-9999"]);
    assert_eq!(r.code, Some(5), "{r:?}");
    let r = c.run(&["dossier", "search", "--date", "31/02/2026"]);
    assert_eq!(r.code, Some(3), "{r:?}");
    let r = c.run(&["dossier", "search", "--date", "26/11/2026"]);
    assert!(r.ok, "{r:?}");
}

#[test]
fn an_older_reference_file_is_refused() {
    let c = Counter::new();
    let r = c.run(&[
        "reference",
        "import",
        example("reference.json").to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stderr.contains("already has version 1"), "{r:?}");
    let list = c.run(&["reference", "list", "ket hon"]);
    assert!(list.ok && list.stdout.contains("1.001193"), "{list:?}");
}

#[test]
fn the_store_is_private_and_the_journal_check_finds_tampering() {
    use std::os::unix::fs::PermissionsExt;
    let c = Counter::new();
    for _ in 0..3 {
        assert!(c.add(&example("dossier.json")).ok);
    }
    let db = c.state.join("motcua.db");
    assert_eq!(
        fs::metadata(&db).expect("db").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&c.state).expect("dir").permissions().mode() & 0o777,
        0o700
    );
    // Tamper with the file through SQLite itself: swap two envelopes.
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute(
        "UPDATE journal SET envelope = (SELECT envelope FROM journal WHERE seq = 1) WHERE seq = 2",
        [],
    )
    .expect("tamper");
    drop(conn);
    let r = c.run(&["journal", "verify"]);
    assert_eq!(r.code, Some(6), "{r:?}");
    assert!(r.stdout.contains("journal broken at seq 2"), "{r:?}");
}
