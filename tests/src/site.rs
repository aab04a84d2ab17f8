//! A whole installation on loopback for the sync tests and the drain
//! benchmark: a real Mosquitto on an ephemeral port (TLS with client
//! certificates and the shipped ACL, or plain TCP), a CA made with
//! `motcua-dc ca`, the DC's key and configuration, and counters enrolled
//! with the lines `motcua keygen` prints.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use motcua_counter::clock::ManualClock;
use motcua_counter::domain::code::Counter;
use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
use motcua_counter::store::{DB_FILE, Reader, Writer, WriterConfig};
use motcua_dc::store::{Store, Totals};

use crate::{bin, run, workspace};

/// A free TCP port on loopback (the OS picks; the listener is closed so the
/// broker can take it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// Polls `f` every 50 ms until it returns true or `limit` passes.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Mosquitto process of the test's own.
pub struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The address it listens on.
    pub host: String,
}

impl Mosquitto {
    /// Writes the configuration into `dir` (TLS with the shipped ACL when
    /// `pki` is given) without starting the broker.
    pub fn configure(dir: &Path, pki: Option<&Pki>, bind: &str) -> Mosquitto {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        let mut text = format!(
            "# written by the motcua tests\n\
             user root\n\
             persistence false\n\
             allow_anonymous {}\n\
             max_packet_size 1052672\n\
             max_inflight_messages 0\n\
             max_queued_messages 100000\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             listener {port} {bind}\n",
            pki.is_none()
        );
        if let Some(p) = pki {
            let (cert, key) = p.server();
            text += &format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
                 use_identity_as_username true\nacl_file {}\n",
                p.ca().display(),
                cert.display(),
                key.display(),
                workspace().join("firmware-config/mosquitto/acl").display()
            );
        }
        std::fs::write(&conf, text).expect("writes mosquitto.conf");
        Mosquitto {
            child: None,
            conf,
            port,
            tls: pki.is_some(),
            host: bind.to_owned(),
        }
    }

    /// Starts (or restarts) the broker on its port and waits until it
    /// accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        self.child = Some(child);
        let (port, host) = (self.port, self.host.clone());
        wait_until("mosquitto to listen", Duration::from_secs(10), || {
            TcpStream::connect((host.as_str(), port)).is_ok()
        });
    }

    /// Stops the broker abruptly (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `mqtt://` or `mqtts://` URL of the broker at `host`.
    pub fn url_at(&self, host: &str) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{host}:{}", self.port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA directory made by `motcua-dc ca init`.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Creates the CA and the broker's certificate (for 127.0.0.1,
    /// localhost and `host`).
    pub fn new(dir: &Path, host: &str) -> Pki {
        let dir = dir.join("ca");
        let args: Vec<std::ffi::OsString> = vec![
            "ca".into(),
            "init".into(),
            "--dir".into(),
            dir.clone().into(),
        ];
        let r = run("motcua-dc", args);
        assert!(r.ok, "ca init: {}", r.stderr);
        let pki = Pki { dir };
        let mut args = vec!["--server", "--host", "127.0.0.1", "--host", "localhost"];
        if host != "127.0.0.1" {
            args.extend(["--host", host]);
        }
        pki.issue("broker", &args);
        pki
    }

    /// Issues a certificate named `name` with extra `args`.
    pub fn issue(&self, name: &str, args: &[&str]) -> (PathBuf, PathBuf) {
        let mut a: Vec<std::ffi::OsString> = vec![
            "ca".into(),
            "issue".into(),
            "--dir".into(),
            self.dir.clone().into(),
            "--name".into(),
            name.into(),
        ];
        a.extend(args.iter().map(Into::into));
        let r = run("motcua-dc", a);
        assert!(r.ok, "ca issue {name}: {}", r.stderr);
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        self.issue(name, &["--client"])
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA directory (for `motcua-dc ca sign --dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn server(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("broker.pem"), self.dir.join("broker.key"))
    }
}

/// The DC side and the broker.
pub struct Site {
    /// Everything lives under here.
    pub dir: tempfile::TempDir,
    /// The CA, when TLS is on.
    pub pki: Option<Pki>,
    /// The broker.
    pub broker: Mosquitto,
    /// The `public_key = ...` line for agents.
    pub dc_line: String,
    /// The receivers' configuration file.
    pub dc_conf: PathBuf,
    /// The receivers' database URL.
    pub database: String,
}

/// A running receiver or agent, killed when dropped; its standard error is
/// collected.
pub struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env_remove("MOTCUA_CONFIG")
            .env_remove("MOTCUA_DC_CONFIG")
            .env("RUST_LOG", "info");
        let mut child = cmd.spawn().expect("starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut g) = l.lock() {
                    g.push_str(&line);
                    g.push('\n');
                }
            }
        });
        Proc { child, log }
    }

    /// What it wrote to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for it to exit; returns its log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Site {
    /// A site with TLS (and the shipped ACL) or plain TCP, storing in a
    /// SQLite file; the broker is configured but not started.
    pub fn new(tls: bool) -> Site {
        Site::with_database(tls, None)
    }

    /// As [`Site::new`], storing at `database` (a URL) instead.
    pub fn with_database(tls: bool, database: Option<String>) -> Site {
        Site::build(tls, database, "127.0.0.1")
    }

    /// A site whose broker listens on `host` (an address of this machine,
    /// e.g. the host end of a veth pair).
    pub fn build(tls: bool, database: Option<String>, host: &str) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = tls.then(|| Pki::new(dir.path(), host));
        let broker = Mosquitto::configure(dir.path(), pki.as_ref(), host);
        let key = dir.path().join("dc.key");
        let r = run(
            "motcua-dc",
            ["keygen", "--key-file", key.to_str().expect("utf-8")],
        );
        assert!(r.ok, "dc keygen: {}", r.stderr);
        let dc_line = r.stdout.trim().to_owned();
        let database =
            database.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("dc.db").display()));
        let dc_conf = dir.path().join("dc.toml");
        let tls_lines = match &pki {
            Some(p) => {
                let (cert, key) = p.client("motcua-dc");
                format!(
                    "ca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n",
                    p.ca(),
                    cert,
                    key
                )
            }
            None => "allow_plaintext = true\n".into(),
        };
        std::fs::write(
            &dc_conf,
            format!(
                "[dc]\nkey_file = {key:?}\n[database]\nurl = {database:?}\n[broker]\nbroker = {:?}\n{tls_lines}share_group = \"motcua-dc\"\n[http]\nbind = \"127.0.0.1:0\"\n",
                broker.url_at(host)
            ),
        )
        .expect("writes dc.toml");
        Site {
            dir,
            pki,
            broker,
            dc_line,
            dc_conf,
            database,
        }
    }

    /// Starts a receiver.
    pub fn receiver(&self) -> Proc {
        self.receiver_with_env(&[])
    }

    /// Starts `motcua-dc run` with extra environment variables.
    pub fn receiver_with_env(&self, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin("motcua-dc"));
        cmd.arg("-c").arg(&self.dc_conf).arg("run");
        cmd.envs(env.iter().copied());
        Proc::spawn(cmd)
    }

    /// Runs a `motcua-dc` command against this site's database.
    pub fn dc(&self, args: &[&str]) -> crate::Run {
        let mut a: Vec<&str> = vec!["--database", &self.database];
        a.extend(args);
        run("motcua-dc", a)
    }

    /// Publishes `payloads` to `topic` at QoS 1 as a client of the broker
    /// with certificate `tls` (or none on a plain site), waits for every
    /// PUBACK, and disconnects.
    pub fn publish_as(&self, tls: Option<&(PathBuf, PathBuf)>, topic: &str, payloads: &[Vec<u8>]) {
        use motcua_common::config::{AbsPath, BrokerConnection, BrokerUrl, TlsFiles};
        use rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS};
        let abs = |p: &Path| -> AbsPath { p.to_str().expect("utf-8").parse().expect("absolute") };
        let conn = BrokerConnection {
            url: BrokerUrl {
                tls: self.broker.tls,
                host: self.broker.host.clone(),
                port: self.broker.port,
            },
            tls: match (&self.pki, tls) {
                (Some(p), Some((cert, key))) => Some(TlsFiles {
                    ca_file: abs(&p.ca()),
                    client_cert: abs(cert),
                    client_key: abs(key),
                }),
                _ => None,
            },
        };
        let id = format!("test-client-{:x}", motcua_common::mqtt::random_u64());
        let opts = motcua_common::mqtt::options(&conn, &id, Duration::from_secs(10))
            .expect("client options");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, mut events) = AsyncClient::builder(opts)
                .capacity(payloads.len() + 10)
                .build();
            let mut acks = 0;
            let mut sent = false;
            while acks < payloads.len() {
                match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) if !sent => {
                        sent = true;
                        for p in payloads {
                            client
                                .publish(topic, p.clone(), PublishOptions::new(QoS::AtLeastOnce))
                                .await
                                .expect("queued");
                        }
                    }
                    Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acks += 1,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("test client connection failed: {e}"),
                    Err(_) => panic!("test client: no PUBACK within 10 s"),
                }
            }
            let _ = client.disconnect().await;
        });
    }

    /// Opens the DC's database.
    pub fn store(&self) -> Box<dyn Store> {
        let url = self.database.parse().expect("a database URL");
        motcua_dc::store::open(&url).expect("opens the DC database")
    }

    /// Totals at the DC.
    pub fn totals(&self) -> Totals {
        self.store().totals().expect("totals")
    }

    /// Alert reason codes at the DC, in order.
    pub fn alert_reasons(&self) -> Vec<String> {
        self.store()
            .alerts(0, 10_000)
            .expect("alerts")
            .into_iter()
            .map(|a| a.alert.reason)
            .collect()
    }

    /// Checks that `device`'s chain at the DC is exactly seq 1..=n, every
    /// signature and link verified again from the stored bytes.
    pub fn assert_chain(&self, device: &str, n: u64) {
        let mut s = self.store();
        let id = device.parse().expect("device id");
        let reports = motcua_dc::verify::chains(&mut *s, Some(&id)).expect("verifies");
        assert_eq!(reports.len(), 1, "{device} is enrolled");
        assert_eq!(reports[0].problem, None, "{device}'s chain");
        assert_eq!(reports[0].records, n, "{device}'s records at the DC");
    }

    /// A new counter: configuration, key (enrolled at the DC) and TLS
    /// certificate.
    pub fn counter(&self, id: &str) -> Agent {
        let dir = self.dir.path().join(id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let conf = dir.join("agent.toml");
        let tls = self.pki.as_ref().map(|p| p.client(id));
        let tls_lines = match (&self.pki, &tls) {
            (Some(p), Some((cert, key))) => format!(
                "ca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n",
                p.ca(),
                cert,
                key
            ),
            _ => "allow_plaintext = true\n".into(),
        };
        let key = dir.join("device.key");
        let state = dir.join("state");
        let kiosk = free_port();
        std::fs::write(
            &conf,
            format!(
                "[device]\nid = {id:?}\nunit = \"H49.12.3\"\ncounter = 1\nkey_file = {key:?}\n\
                 [store]\nstate_dir = {state:?}\nmin_free = \"1 MiB\"\n\
                 [kiosk]\nbind = \"127.0.0.1:{kiosk}\"\n\
                 [dc]\nbroker = {:?}\n{tls_lines}{}\nresend_after = \"3s\"\nreconnect_max = \"2s\"\n",
                self.broker.url_at(&self.broker.host),
                self.dc_line.split('#').next().unwrap_or_default().trim()
            ),
        )
        .expect("writes agent.toml");
        let r = run("motcua", ["-c", conf.to_str().expect("utf-8"), "keygen"]);
        assert!(r.ok, "keygen: {}", r.stderr);
        let line = r.stdout.trim().to_owned();
        let e = self.dc(&["device", "add", &line]);
        assert!(e.ok, "device add: {}", e.stderr);
        Agent {
            id: id.to_owned(),
            conf,
            key,
            state,
            enrollment: line,
            tls,
            kiosk,
            day: std::cell::Cell::new(300),
        }
    }

    /// A counter set up by other means (`motcua provision`), its
    /// configuration at `conf`.
    pub fn adopt(id: &str, conf: PathBuf, state: PathBuf, enrollment: String) -> Agent {
        // The template's kiosk port is taken by whichever test runs first.
        let kiosk = free_port();
        let text = std::fs::read_to_string(&conf).expect("reads agent.toml");
        let mut section = String::new();
        let mut out = String::new();
        for line in text.lines() {
            if line.starts_with('[') {
                section = line.to_owned();
            }
            if section == "[kiosk]" && line.starts_with("bind =") {
                out.push_str(&format!("bind = \"127.0.0.1:{kiosk}\"\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(&conf, out).expect("writes agent.toml");
        Agent {
            kiosk,
            id: id.to_owned(),
            conf,
            key: state.join("device.key"),
            state,
            enrollment,
            tls: None,
            day: std::cell::Cell::new(300),
        }
    }
}

/// A counter of a [`Site`].
pub struct Agent {
    /// Its device id.
    pub id: String,
    /// Its configuration file.
    pub conf: PathBuf,
    /// Its device key.
    pub key: PathBuf,
    /// Its state directory.
    pub state: PathBuf,
    /// Its enrollment line.
    pub enrollment: String,
    /// Its TLS certificate and key, when the site uses TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Its kiosk's port on 127.0.0.1.
    pub kiosk: u16,
    /// Days before today of the next batch of records (a counter hands out
    /// 999 dossier codes a day).
    day: std::cell::Cell<i64>,
}

impl Agent {
    /// As [`Agent::receive`], starting `days_ago` days before today (fewer
    /// than any day already used: a chain's times only move forward).
    pub fn receive_from(&self, days_ago: i64, n: u64) {
        assert!(days_ago < self.day.get(), "days already used");
        self.day.set(days_ago);
        self.receive(n);
    }

    /// Adds `n` dossiers to its store, as the clerk would while offline.
    pub fn receive(&self, n: u64) {
        std::fs::create_dir_all(&self.state).expect("mkdir");
        let db = self.state.join(DB_FILE);
        let key = motcua_common::keyfile::load(&self.key).expect("device key");
        let mut left = n;
        while left > 0 {
            // One writer per day: up to 990 dossiers on each past day.
            let chunk = left.min(990);
            left -= chunk;
            let ago = self.day.get();
            // Today (0) last: the running agent's own records come after.
            assert!(ago >= 0, "ran out of past days for test records");
            self.day.set(ago - 1);
            let at = time::OffsetDateTime::now_utc() - time::Duration::days(ago);
            let writer = Writer::start(WriterConfig {
                db: db.clone(),
                device: self.id.parse().expect("valid"),
                unit: "H49.12.3".parse().expect("valid"),
                counter: Counter::new(1).expect("valid"),
                min_free: 0,
                key: key.clone(),
                clock: Arc::new(ManualClock::new(at, true)),
                default_collect_at: "Bộ phận Một cửa".into(),
                max_batch: DEFAULT_MAX_BATCH,
            })
            .expect("writer starts");
            crate::import_sample_catalogue(&writer.handle());
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let w = writer.handle();
                    std::thread::spawn(move || {
                        for i in (t..chunk).step_by(4) {
                            let input = serde_json::from_value(serde_json::json!({
                                "procedure": "2.000908",
                                "applicant": {
                                    "name": "Trần Văn An",
                                    "id_number": "048085000123",
                                    "address": format!("Số {i}, tổ 3")
                                }
                            }))
                            .expect("valid input");
                            w.create(input, "canbo01".parse().expect("valid"))
                                .expect("no failure")
                                .expect("stored");
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("submitter");
            }
            writer.shutdown();
        }
    }

    /// Sets `key = value` (TOML) in its `[dc]` section, replacing the
    /// site's choice (the site resends after 3 s, to keep tests quick).
    pub fn set_dc(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.conf).expect("reads agent.toml");
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(str::to_owned)
            .collect();
        // [dc] is the last section.
        lines.push(format!("{key} = {value}"));
        std::fs::write(&self.conf, lines.join("\n") + "\n").expect("writes agent.toml");
    }

    /// Starts `motcua run`.
    pub fn run(&self) -> Proc {
        self.run_with_env(&[])
    }

    /// Starts `motcua run` with extra environment variables.
    pub fn run_with_env(&self, env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(bin("motcua"));
        cmd.arg("-c").arg(&self.conf).arg("run");
        cmd.envs(env.iter().copied());
        Proc::spawn(cmd)
    }

    /// Starts `motcua run` inside network namespace `netns`.
    pub fn run_in(&self, netns: &str) -> Proc {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(bin("motcua"))
            .arg("-c")
            .arg(&self.conf)
            .arg("run");
        Proc::spawn(cmd)
    }

    /// The seq up to which the DC's receipts have been accepted.
    pub fn receipted(&self) -> u64 {
        Reader::open(&self.state.join(DB_FILE))
            .and_then(|r| r.receipted_through())
            .unwrap_or(0)
    }
}

/// A PostgreSQL database of the test's own on the local server, dropped at
/// the end (`MOTCUA_TEST_PG` overrides the server URL).
pub struct PgDatabase {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates it.
    pub fn create() -> PgDatabase {
        let server = std::env::var("MOTCUA_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let name = format!("motcua_e2e_{}_{}", std::process::id(), free_port());
        let admin = format!("{server}/postgres");
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .expect("PostgreSQL must run on 127.0.0.1:5432 (or set MOTCUA_TEST_PG)");
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("creates the test database");
        PgDatabase {
            url: format!("{server}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name));
        }
    }
}
