//! Headless Chromium through chromedriver (WebDriver) for the browser
//! tests: the driver process and a session with Debian's Chromium.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI installs them).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use motcua_e2e::site::{free_port, wait_until};

/// chromedriver in a process group of its own, and the Chromium it starts
/// with a profile directory of its own. Dropping it, whether the test ended
/// or panicked, kills the group and then any process still naming that
/// profile directory: a headless Chromium left behind by a failed run spins
/// on a core for as long as the machine stays up.
pub struct Driver {
    child: Child,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start(chromedriver: &str, port: u16) -> Driver {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::Builder::new()
            .prefix("motcua-chromium-")
            .tempdir()
            .expect("profile directory");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Driver { child, profile }
    }

    pub fn profile(&self) -> String {
        self.profile.path().to_str().expect("utf-8").to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process, kill_process_group};
        if let Some(group) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.wait();
        let marker = self.profile();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker)
                && let Some(pid) = Pid::from_raw(pid)
            {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

impl Driver {
    /// chromedriver on a free port, ready for sessions.
    pub fn launch() -> (Driver, u16) {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
        let port = free_port();
        let driver = Driver::start(chromedriver, port);
        wait_until("chromedriver listens", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        (driver, port)
    }

    /// A headless Chromium session of `width` x `height` pixels.
    pub async fn session(&self, port: u16, width: u32, height: u32) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-background-networking",
                         "--disable-dev-shm-usage", format!("--window-size={width},{height}"), "--lang=vi",
                         format!("--user-data-dir={}", self.profile())]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session")
    }
}
