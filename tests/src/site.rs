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

/// Waits until `count()` reaches at least `target`, for as long as it
/// keeps rising: fails when it has not moved for `stall` (a sync that stopped),
/// however slow a busy machine makes the drain, and after half an hour
/// whatever happens.
pub fn wait_draining(what: &str, stall: Duration, mut count: impl FnMut() -> u64, target: u64) {
    let start = Instant::now();
    let mut last = count();
    let mut moved = Instant::now();
    while last < target {
        assert!(
            moved.elapsed() < stall,
            "{what}: stuck at {last} of {target} for {stall:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "{what}: {last} of {target} after half an hour"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = count();
        if now != last {
            last = now;
            moved = Instant::now();
        }
    }
}

/// The dynamic-security plugin of Debian's mosquitto package.
pub fn dynsec_plugin() -> PathBuf {
    let out = Command::new("dpkg")
        .args(["-L", "mosquitto"])
        .output()
        .expect("dpkg runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with("/mosquitto_dynamic_security.so"))
        .map(PathBuf::from)
        .expect("mosquitto's dynamic-security plugin is installed (apt-get install mosquitto)")
}

/// The shipped `firmware-config/mosquitto/motcua.conf`, its paths,
/// ports and addresses replaced by the test's; every one must be found,
/// so the tests run what ships.
fn shipped_conf(p: &Pki, dynsec: &Path, dir: &Path, port: u16, dc_port: u16, bind: &str) -> String {
    let path = workspace().join("firmware-config/mosquitto/motcua.conf");
    let mut text = std::fs::read_to_string(&path).expect("reads the shipped motcua.conf");
    let (cert, key) = p.server();
    let show = |p: &Path| p.display().to_string();
    for (from, to) in [
        (
            "/etc/mosquitto/motcua/receivers-ca.pem",
            show(&p.receivers_ca()),
        ),
        ("/etc/mosquitto/motcua/ca.pem", show(&p.ca())),
        ("/etc/mosquitto/motcua/broker.pem", show(&cert)),
        ("/etc/mosquitto/motcua/broker.key", show(&key)),
        (
            "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            show(&dynsec_plugin()),
        ),
        ("/var/lib/mosquitto/dynamic-security.json", show(dynsec)),
        (
            "persistence_location /var/lib/mosquitto/",
            format!("persistence_location {}/", dir.display()),
        ),
        ("log_dest syslog", "log_dest stderr".into()),
        ("/etc/mosquitto/motcua/crl.pem", show(&dir.join("crl.pem"))),
        ("\nlistener 8883\n", format!("\nlistener {port} {bind}\n")),
        (
            "\nlistener 8884 10.20.0.5\n",
            format!("\nlistener {dc_port} {bind}\n"),
        ),
    ] {
        assert!(text.contains(from), "{} has no {from:?}", path.display());
        text = text.replace(from, &to);
    }
    format!("# the shipped motcua.conf, for the motcua tests\nuser root\n{text}")
}

/// A Mosquitto process of the test's own.
pub struct Mosquitto {
    child: Option<Child>,
    conf: PathBuf,
    /// The counters' port on 127.0.0.1 (the only one on a plain broker).
    pub port: u16,
    /// The receivers' port (TLS only; the same as `port` on a plain broker).
    pub dc_port: u16,
    /// The dynamic-security plugin's file (TLS only).
    pub dynsec: Option<PathBuf>,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The address it listens on.
    pub host: String,
}

impl Mosquitto {
    /// Writes the configuration into `dir` without starting the broker:
    /// with `pki`, the shipped arrangement (firmware-config/mosquitto/
    /// motcua.conf): the dynamic-security plugin, a counters' listener
    /// binding each client id to its certificate name, and a receivers'
    /// listener trusting only the receivers' CA. The plugin's file is
    /// written by `motcua-dc broker access` (see [`Site::build`]).
    pub fn configure(dir: &Path, pki: Option<&Pki>, bind: &str) -> Mosquitto {
        let port = free_port();
        let dc_port = match pki {
            Some(_) => loop {
                let p = free_port();
                if p != port {
                    break p;
                }
            },
            None => port,
        };
        let conf = dir.join("mosquitto.conf");
        let dynsec = pki.map(|_| dir.join("dynamic-security.json"));
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
        if let (Some(p), Some(file)) = (pki, &dynsec) {
            text = shipped_conf(p, file, dir, port, dc_port, bind);
        }
        std::fs::write(&conf, text).expect("writes mosquitto.conf");
        Mosquitto {
            child: None,
            conf,
            port,
            dc_port,
            dynsec,
            tls: pki.is_some(),
            host: bind.to_owned(),
        }
    }

    /// Starts (or restarts) the broker on its port and waits until it
    /// accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        // Its log, kept beside its configuration for a failing test.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.conf.with_extension("log"))
            .expect("opens mosquitto.log");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        self.child = Some(child);
        let (port, host) = (self.port, self.host.clone());
        wait_until("mosquitto to listen", Duration::from_secs(10), || {
            TcpStream::connect((host.as_str(), port)).is_ok()
        });
    }

    /// Turns on the counters' listener's `crlfile` (commented out in the
    /// shipped file), reading `crl`, before the broker starts.
    pub fn enable_crl(&mut self, crl: &Path) {
        let text = std::fs::read_to_string(&self.conf).expect("reads mosquitto.conf");
        let expected = crl.with_file_name("crl.pem");
        assert_eq!(crl, expected, "the shipped file names crl.pem");
        let line = format!("#crlfile {}", crl.display());
        assert!(text.contains(&line), "no {line:?} in the configuration");
        std::fs::write(&self.conf, text.replace(&line, &line[1..])).expect("writes");
    }

    /// SIGHUP: the broker re-reads its certificates and CRL.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -HUP {pid}");
        // Mosquitto logs the reload once done.
        wait_until("the broker to reload", Duration::from_secs(10), || {
            self.log().contains("Reloading config")
        });
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.conf.with_extension("log")).unwrap_or_default()
    }

    /// Stops the broker abruptly (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `mqtt://` or `mqtts://` URL of the counters' listener at `host`.
    pub fn url_at(&self, host: &str) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{host}:{}", self.port)
    }

    /// The URL of the receivers' listener at `host`.
    pub fn dc_url_at(&self, host: &str) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{host}:{}", self.dc_port)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The two CA directories made by `motcua-dc ca init`: the counters' CA
/// (which also signs the broker's certificate) and the receivers' CA.
pub struct Pki {
    dir: PathBuf,
    receivers: PathBuf,
}

impl Pki {
    /// Creates both CAs and the broker's certificate (for 127.0.0.1,
    /// localhost and `host`).
    pub fn new(dir: &Path, host: &str) -> Pki {
        Pki::with_names(dir, host, &[])
    }

    /// As [`Pki::new`], the broker's certificate naming `names` too (the
    /// host as a virtual machine's guests reach it).
    pub fn with_names(dir: &Path, host: &str, names: &[&str]) -> Pki {
        let receivers = dir.join("receivers-ca");
        let dir = dir.join("ca");
        for (d, extra) in [(&dir, None), (&receivers, Some("--receivers"))] {
            let mut args: Vec<std::ffi::OsString> =
                vec!["ca".into(), "init".into(), "--dir".into(), d.into()];
            args.extend(extra.map(Into::into));
            let r = run("motcua-dc", args);
            assert!(r.ok, "ca init: {}", r.stderr);
        }
        let pki = Pki { dir, receivers };
        let mut args = vec!["--server", "--host", "127.0.0.1", "--host", "localhost"];
        if host != "127.0.0.1" {
            args.extend(["--host", host]);
        }
        for n in names {
            args.extend(["--host", n]);
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

    /// A receiver's client certificate for `name`, from the receivers' CA.
    pub fn receiver(&self, name: &str) -> (PathBuf, PathBuf) {
        let a: Vec<std::ffi::OsString> = vec![
            "ca".into(),
            "issue".into(),
            "--dir".into(),
            self.receivers.clone().into(),
            "--name".into(),
            name.into(),
            "--client".into(),
        ];
        let r = run("motcua-dc", a);
        assert!(r.ok, "ca issue {name}: {}", r.stderr);
        (
            self.receivers.join(format!("{name}.pem")),
            self.receivers.join(format!("{name}.key")),
        )
    }

    /// The files of receiver certificate `name` already issued.
    pub fn receiver_files(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.receivers.join(format!("{name}.pem")),
            self.receivers.join(format!("{name}.key")),
        )
    }

    /// The receivers' CA certificate.
    pub fn receivers_ca(&self) -> PathBuf {
        self.receivers.join("ca.pem")
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
    /// Set by the reader once standard error is closed: every line is in `log`.
    read_all: Arc<std::sync::atomic::AtomicBool>,
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
        let read_all = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = read_all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut g) = l.lock() {
                    g.push_str(&line);
                    g.push('\n');
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        Proc {
            child,
            log,
            read_all,
        }
    }

    /// Its whole log once it has exited: waits for the reader to see the end
    /// of its standard error.
    fn whole_log(&self) -> String {
        wait_until(
            "its standard error to close",
            Duration::from_secs(15),
            || self.read_all.load(std::sync::atomic::Ordering::Acquire),
        );
        self.log()
    }

    /// Waits up to `timeout` for it to exit on its own; returns its whole log.
    pub fn exited(&mut self, timeout: Duration) -> String {
        wait_until("the process to exit", timeout, || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        self.whole_log()
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
        self.whole_log()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// The password [`Site::add_operator`] gives.
pub const OPERATOR_PASSWORD: &str = "mat-khau-van-hanh-2026";

impl Site {
    /// A site with TLS (and the shipped broker configuration) or plain TCP, storing in a
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
        Site::build_named(tls, database, host, &[])
    }

    /// As [`Site::build`], the broker's certificate also naming `names`
    /// (e.g. 10.0.2.2, the host as qemu's guests reach it).
    pub fn build_named(tls: bool, database: Option<String>, host: &str, names: &[&str]) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = tls.then(|| Pki::with_names(dir.path(), host, names));
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
                let (cert, key) = p.receiver("motcua-dc");
                format!(
                    "ca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n\
                     access = \"mosquitto-dynsec\"\naccess_every = \"1s\"\n",
                    p.ca(),
                    cert,
                    key
                )
            }
            None => "allow_plaintext = true\naccess = \"off\"\n".into(),
        };
        std::fs::write(
            &dc_conf,
            format!(
                "[dc]\nkey_file = {key:?}\n[database]\nurl = {database:?}\n[broker]\nbroker = {:?}\n{tls_lines}share_group = \"motcua-dc\"\n[http]\nbind = \"127.0.0.1:0\"\n",
                broker.dc_url_at(host)
            ),
        )
        .expect("writes dc.toml");
        let site = Site {
            dir,
            pki,
            broker,
            dc_line,
            dc_conf,
            database,
        };
        site.write_access_list();
        site
    }

    /// Writes the broker's access list for the registry as it is now, as
    /// an operator does before Mosquitto first starts (`motcua-dc broker
    /// access --out`); nothing on a plain site.
    pub fn write_access_list(&self) {
        if let Some(file) = &self.broker.dynsec {
            let r = run(
                "motcua-dc",
                [
                    "-c",
                    self.dc_conf.to_str().expect("utf-8"),
                    "broker",
                    "access",
                    "--out",
                    file.to_str().expect("utf-8"),
                ],
            );
            assert!(r.ok, "broker access: {}", r.stderr);
        }
    }

    /// The access log's entries (`motcua-dc access-log export`), in order.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        let log = self.dc(&["access-log", "export"]);
        assert!(log.ok, "access-log export: {}", log.stderr);
        log.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect()
    }

    /// Creates the operator `name` with `roles` and [`OPERATOR_PASSWORD`]
    /// (`motcua-dc user add`, the password from a pipe).
    pub fn add_operator(&self, name: &str, roles: &[&str]) {
        self.put_operator(name, roles, false);
    }

    /// As [`Site::add_operator`] with `--replace`: a new password and
    /// roles, enabled again.
    pub fn replace_operator(&self, name: &str, roles: &[&str]) {
        self.put_operator(name, roles, true);
    }

    fn put_operator(&self, name: &str, roles: &[&str], replace: bool) {
        let mut cmd = Command::new(bin("motcua-dc"));
        cmd.arg("-c")
            .arg(&self.dc_conf)
            .args(["--database", &self.database, "user", "add", name])
            .env_remove("MOTCUA_DC_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for r in roles {
            cmd.args(["--role", r]);
        }
        if replace {
            cmd.arg("--replace");
        }
        let mut child = cmd.spawn().expect("motcua-dc starts");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            writeln!(stdin, "{OPERATOR_PASSWORD}").expect("writes the password");
        }
        let out: crate::Run = child.wait_with_output().expect("runs").into();
        assert!(out.ok, "user add {name}: {}", out.stderr);
    }

    /// Receivers leave the broker's access list as it is ([broker] access
    /// = "off"): what [`Site::write_access_list`] wrote stays.
    pub fn freeze_access_list(&self) {
        let text = std::fs::read_to_string(&self.dc_conf).expect("reads dc.toml");
        let line = "access = \"mosquitto-dynsec\"";
        assert!(text.contains(line), "a TLS site");
        std::fs::write(&self.dc_conf, text.replace(line, "access = \"off\""))
            .expect("writes dc.toml");
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
        self.publish_on(self.broker.port, tls, topic, payloads);
    }

    fn publish_on(
        &self,
        port: u16,
        tls: Option<&(PathBuf, PathBuf)>,
        topic: &str,
        payloads: &[Vec<u8>],
    ) {
        use motcua_common::config::{AbsPath, BrokerConnection, BrokerUrl, TlsFiles};
        use rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS};
        let abs = |p: &Path| -> AbsPath { p.to_str().expect("utf-8").parse().expect("absolute") };
        let conn = BrokerConnection {
            url: BrokerUrl {
                tls: self.broker.tls,
                host: self.broker.host.clone(),
                port,
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

    /// Publishes `payloads` to `topic` at QoS 1 as a receiver (the
    /// receivers' certificate, on their listener), as [`Site::publish_as`].
    pub fn publish_as_receiver(&self, topic: &str, payloads: &[Vec<u8>]) {
        let p = self.pki.as_ref().expect("a TLS site");
        let cert = p.receiver_files("motcua-dc");
        self.publish_on(self.broker.dc_port, Some(&cert), topic, payloads);
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
                office: motcua_counter::domain::calendar::OfficeDay::default(),
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
