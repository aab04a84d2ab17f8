//! Helpers for the end-to-end tests: locate (and if needed build) the real
//! binaries, run them, and read what they print.
//!
//! The binaries are found next to the test executable's directory
//! (`target/<profile>/`). `cargo test --workspace` does not always build
//! plain binaries of other packages, so the first call builds them with the
//! same cargo, profile and target directory.

pub mod fleet_sim;
pub mod impair;
pub mod kiosk;
pub mod site;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// `target/<profile>`: where cargo put this test binary's parent directory.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_owned()
}

static PROFILE: OnceLock<String> = OnceLock::new();

/// Builds the binaries with cargo profile `name` instead of the one the
/// calling executable was built with (benchmarks use `bench`: release
/// optimisation without whole-program LTO, so they do not wait minutes for
/// the link). Call before the first [`bin`].
pub fn use_profile(name: &str) {
    let _ = PROFILE.set(name.to_owned());
}

fn build_once() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let profile = match PROFILE.get() {
            Some(p) => p.clone(),
            None => dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("profile dir name")
                .to_owned(),
        };
        let target_dir = dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace())
            .args([
                "build",
                "--quiet",
                "--bins",
                "-p",
                "motcua-agent",
                "-p",
                "motcua-dc",
                "--target-dir",
            ])
            .arg(target_dir);
        if profile != "debug" {
            cmd.args([
                "--profile",
                if profile == "release" {
                    "release"
                } else {
                    &profile
                },
            ]);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
    });
}

/// The path of workspace binary `name` (`motcua` or `motcua-dc`), built if
/// needed.
pub fn bin(name: &str) -> PathBuf {
    build_once();
    let path = profile_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// What a finished command printed, as text.
#[derive(Debug)]
pub struct Run {
    /// Whether it exited 0.
    pub ok: bool,
    /// Its exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs binary `name` with `args`, with no configuration from the
/// environment, and waits for it.
pub fn run<I, S>(name: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(bin(name))
        .args(args)
        .env_remove("MOTCUA_CONFIG")
        .env_remove("MOTCUA_DC_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary starts")
        .into()
}

/// A shipped template with some lines replaced: `(prefix, new line)` pairs,
/// each replacing the first line that starts with `prefix`.
pub fn template_with(name: &str, replace: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(workspace().join("firmware-config").join(name))
        .expect("template exists");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (prefix, new) in replace {
        let line = lines
            .iter_mut()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{name} has a line {prefix}"));
        *line = new.clone();
    }
    lines.join("\n") + "\n"
}

/// Has `writer` import a one-procedure catalogue (2.000908, one working
/// day) for the tests' dossiers. Version 1 may already be there (an earlier
/// cycle or batch): that is kept.
pub fn import_sample_catalogue(writer: &motcua_counter::store::writer::WriterHandle) {
    use motcua_counter::store::reference::{self, Procedure, ReferenceData};
    let data = ReferenceData {
        version: 1,
        procedures: vec![Procedure {
            code: "2.000908".into(),
            name: "Chứng thực bản sao".into(),
            working_days: 1,
            fee: None,
            documents: vec![],
        }],
        holidays: vec![],
        workdays: vec![],
    };
    let at = motcua_protocol::UtcTime::new(time::macros::datetime!(2026-11-01 00:00 UTC));
    let _ = reference::import(writer, data, &at);
}
