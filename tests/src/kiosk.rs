//! A running counter with its kiosk, for the kiosk's API and browser tests
//! and its benchmark: a site (broker, receiver), an agent whose catalogue
//! is the documented example and with one staff account, and a small HTTP
//! client that keeps cookies.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::site::{Agent, Proc, Site, wait_until};
use crate::{run, workspace};

/// The staff account every kiosk test logs in with.
pub const STAFF: &str = "canbo.an";
/// Its name.
pub const STAFF_NAME: &str = "Nguyễn Văn An";
/// Its password.
pub const SECRET: &str = "mat-khau-123";

/// Adds the [`STAFF`] account to the counter configured at `conf`.
pub fn add_staff(conf: &str) {
    let out = std::process::Command::new(crate::bin("motcua"))
        .args(["-c", conf, "staff", "add", STAFF, "--name", STAFF_NAME])
        .env("MOTCUA_STAFF_SECRET", SECRET)
        .output()
        .expect("staff add runs");
    assert!(
        out.status.success(),
        "staff add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new idempotency key: unique within this test run.
pub fn fresh_key() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test-{}-{nanos}-{n}", std::process::id())
}

/// Makes the counter whose configuration is `conf` ready for a clerk: the
/// example catalogue imported and [`STAFF`]'s account added.
pub fn prepare(conf: &std::path::Path) {
    let conf = conf.to_str().expect("utf-8");
    let catalogue = workspace().join("docs/examples/reference.json");
    let r = run(
        "motcua",
        [
            "-c",
            conf,
            "reference",
            "import",
            catalogue.to_str().expect("utf-8"),
        ],
    );
    assert!(r.ok, "reference import: {}", r.stderr);
    add_staff(conf);
}

/// A wall clock a test sets by hand, for the agent it starts: the
/// agent runs with libfaketime (Debian's `faketime` package) preloaded,
/// reading the time from a file the test rewrites. The time stands still
/// between settings; only the wall clock is faked, not the monotonic one,
/// so the agent's timers run as usual.
pub struct ManualClock {
    dir: tempfile::TempDir,
}

/// Where Debian's libfaketime is.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

impl ManualClock {
    /// A clock reading `utc` (`YYYY-MM-DD hh:mm:ss`, UTC).
    pub fn at(utc: &str) -> ManualClock {
        assert!(
            std::path::Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing: apt-get install faketime"
        );
        let clock = ManualClock {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        clock.set(utc);
        clock
    }

    /// Sets the clock to `utc` (`YYYY-MM-DD hh:mm:ss`, UTC): the agent's
    /// next reading of the time gives it.
    pub fn set(&self, utc: &str) {
        // Written whole and renamed, so a reading never sees half a time.
        let tmp = self.dir.path().join("now.tmp");
        std::fs::write(&tmp, format!("{utc}\n")).expect("writes the time");
        std::fs::rename(&tmp, self.file()).expect("sets the time");
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("now")
    }

    /// The environment that makes a process read this clock.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_owned()),
            ("FAKETIME_TIMESTAMP_FILE", self.file().display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
            ("TZ", "UTC".to_owned()),
        ]
    }
}

/// A counter serving its kiosk.
pub struct Counter {
    /// The site (broker and receiver).
    pub site: Site,
    /// The agent's files.
    pub agent: Agent,
    /// `motcua run`.
    pub proc: Proc,
    /// The receiver, when started.
    pub receiver: Option<Proc>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Counter {
    /// A counter with the example catalogue and one staff account; with
    /// `online`, the broker and a receiver run too.
    pub fn start(online: bool) -> Counter {
        Counter::start_with(online, &[])
    }

    /// As [`Counter::start`], with extra `[kiosk]` settings.
    pub fn start_with(online: bool, kiosk: &[(&str, &str)]) -> Counter {
        Counter::start_office(online, kiosk, &[])
    }

    /// As [`Counter::start`], with extra `[kiosk]` and `[office]` settings
    /// (values as TOML, strings quoted).
    pub fn start_office(online: bool, kiosk: &[(&str, &str)], office: &[(&str, &str)]) -> Counter {
        Counter::start_full(online, kiosk, office, None)
    }

    /// An offline counter whose agent reads its time from `clock`
    /// ([`ManualClock`]) instead of the system clock.
    pub fn start_clocked(clock: &ManualClock) -> Counter {
        Counter::start_full(false, &[], &[], Some(clock))
    }

    fn start_full(
        online: bool,
        kiosk: &[(&str, &str)],
        office: &[(&str, &str)],
        clock: Option<&ManualClock>,
    ) -> Counter {
        let mut site = Site::new(false);
        let agent = site.counter("H49.12.3-q01");
        let lines = |kv: &[(&str, &str)]| -> String {
            kv.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
        };
        if !kiosk.is_empty() || !office.is_empty() {
            let text = std::fs::read_to_string(&agent.conf).expect("reads agent.toml");
            let mut text = text.replacen("[kiosk]\n", &format!("[kiosk]\n{}", lines(kiosk)), 1);
            if !office.is_empty() {
                text.push_str(&format!("\n[office]\n{}", lines(office)));
            }
            std::fs::write(&agent.conf, text).expect("writes agent.toml");
        }
        prepare(&agent.conf);
        let receiver = online.then(|| {
            site.broker.start();
            site.receiver()
        });
        let proc = match clock {
            Some(c) => {
                let env = c.env();
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                agent.run_with_env(&env)
            }
            None => agent.run(),
        };
        let base = format!("http://127.0.0.1:{}", agent.kiosk);
        let probe = Http::new(&base);
        wait_until("the kiosk answers", Duration::from_secs(20), || {
            probe.get("/dang-nhap").status == 200
        });
        Counter {
            site,
            agent,
            proc,
            receiver,
            base,
        }
    }

    /// Stops the agent (SIGTERM) and starts it again on the same state;
    /// returns once the kiosk answers. Sessions do not survive it.
    pub fn restart(self) -> Counter {
        let Counter {
            site,
            agent,
            proc,
            receiver,
            base,
        } = self;
        drop(proc.stop());
        let proc = agent.run();
        let probe = Http::new(&base);
        wait_until("the kiosk answers again", Duration::from_secs(30), || {
            probe.get("/dang-nhap").status == 200
        });
        Counter {
            site,
            agent,
            proc,
            receiver,
            base,
        }
    }

    /// A client of this kiosk.
    pub fn http(&self) -> Http {
        Http::new(&self.base)
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names; repeated ones joined with "\n".
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: String,
}

impl Answer {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The value of the first `name="<field>" value="..."` in the page.
    pub fn hidden(&self, field: &str) -> String {
        let pat = format!("name=\"{field}\" value=\"");
        let i = self
            .body
            .find(&pat)
            .unwrap_or_else(|| panic!("no {field} in the page: {}", self.body))
            + pat.len();
        self.body[i..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client that keeps cookies and does not follow redirects.
pub struct Http {
    base: String,
    agent: ureq::Agent,
    /// The cookies it holds.
    pub cookies: std::cell::RefCell<BTreeMap<String, String>>,
}

impl Http {
    /// A client of `base`.
    pub fn new(base: &str) -> Http {
        Http::with_timeout(base, Duration::from_secs(30))
    }

    /// A client of `base` whose requests may take up to `timeout`.
    pub fn with_timeout(base: &str, timeout: Duration) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Http {
            base: base.to_owned(),
            agent,
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn answer(&self, res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut res = match res {
            Ok(r) => r,
            Err(e) => {
                return Answer {
                    status: 0,
                    headers: BTreeMap::new(),
                    body: e.to_string(),
                };
            }
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in res.headers() {
            let v = v.to_str().unwrap_or_default().to_owned();
            if k.as_str() == "set-cookie" {
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    let mut jar = self.cookies.borrow_mut();
                    if value.is_empty() || v.contains("Max-Age=0") {
                        jar.remove(name);
                    } else {
                        jar.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
            headers
                .entry(k.as_str().to_owned())
                .and_modify(|e| {
                    e.push('\n');
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Answer {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .call();
        self.answer(r)
    }

    /// GET `path` with extra headers (an `Authorization`, say).
    pub fn get_with(&self, path: &str, extra: &[(&str, &str)]) -> Answer {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header());
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let r = req.call();
        self.answer(r)
    }

    /// Logs in to the DC's dashboard as an operator through its form;
    /// the answer to the form (303 to `/` when it worked).
    pub fn dc_login(&self, name: &str, password: &str) -> Answer {
        let form = self.get("/dang-nhap");
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.hidden("_csrf");
        self.post_form(
            "/dang-nhap",
            &[("ten", name), ("mat_khau", password), ("_csrf", &csrf)],
        )
    }

    /// POST a form.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send_form(fields.iter().copied());
        self.answer(r)
    }

    /// POST raw bytes with a content type.
    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Content-Type", content_type);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let r = req.send(body);
        self.answer(r)
    }

    /// POST JSON, with the CSRF header when given, and an idempotency key
    /// of its own (each call a new intent).
    pub fn post_json(&self, path: &str, body: &serde_json::Value, csrf: Option<&str>) -> Answer {
        self.post_json_keyed(path, body, csrf, &fresh_key())
    }

    /// POST JSON with the CSRF header when given and `Idempotency-Key: key`
    /// (none when `key` is empty).
    pub fn post_json_keyed(
        &self,
        path: &str,
        body: &serde_json::Value,
        csrf: Option<&str>,
        key: &str,
    ) -> Answer {
        let mut extra: Vec<(&str, &str)> = csrf.map(|c| ("X-CSRF-Token", c)).into_iter().collect();
        if !key.is_empty() {
            extra.push(("Idempotency-Key", key));
        }
        self.post_raw(
            path,
            "application/json",
            body.to_string().as_bytes(),
            &extra,
        )
    }

    /// Logs in through the JSON API as [`STAFF`]; returns the session's
    /// CSRF token for API writes.
    pub fn login_api(&self) -> String {
        let login = self.post_json(
            "/api/v1/login",
            &serde_json::json!({ "staff": STAFF, "secret": SECRET }),
            None,
        );
        assert_eq!(login.status, 200, "{}", login.body);
        login.json()["csrf_token"]
            .as_str()
            .expect("a CSRF token")
            .to_owned()
    }

    /// Logs in through the login page; returns the session's CSRF token
    /// (from the next page's forms).
    pub fn login_page(&self, staff: &str, secret: &str) -> Answer {
        let form = self.get("/dang-nhap");
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.hidden("_csrf");
        self.post_form(
            "/dang-nhap",
            &[
                ("_csrf", &token),
                ("ma_can_bo", staff),
                ("mat_khau", secret),
            ],
        )
    }
}

/// One HTTPS GET of `path` from `addr`, trusting only the CA in `ca` (PEM)
/// and checking the certificate names `host`: the status and the whole
/// answer (headers and body), or why the connection failed.
pub fn https_get(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    host: &str,
    path: &str,
) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // The server may close without close_notify once it has answered.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text}"))?;
    Ok((status, text))
}
