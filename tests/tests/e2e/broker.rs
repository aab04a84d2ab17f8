//! The broker's own rules, as shipped: a real Mosquitto running
//! firmware-config/mosquitto/motcua.conf, with the access list `motcua-dc`
//! writes and keeps (dynamic-security plugin). An attacker holds one
//! enrolled counter's valid certificate (M). With it they can neither
//! join the receivers' shared subscription, nor read `#` or another
//! counter's topics, nor take another counter's session; once M is
//! revoked at the DC the broker shuts it out, and once its certificate is
//! on the CRL its handshake fails. A DC that stalls makes no counter look
//! offline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use motcua_common::config::{AbsPath, BrokerConnection, BrokerUrl, TlsFiles};
use motcua_e2e::site::{Proc, Site, wait_until};
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};

const A: &str = "H49.12.3-q01";
const B: &str = "H49.12.3-q02";
/// The counter whose certificate the attacker holds.
const M: &str = "H49.12.3-q09";
const LIMIT: Duration = Duration::from_secs(60);

/// What a raw MQTT client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    ConnAck,
    /// One SUBACK: granted or refused, per filter.
    SubAck(Vec<bool>),
    Publish(String, Vec<u8>),
    /// The connection failed (TLS refused, or closed by the broker).
    Failed(String),
}

/// A plain MQTT client with a certificate of our choice, polled on its own
/// thread; it never reconnects.
struct Raw {
    client: AsyncClient,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Raw {
    fn connect(site: &Site, port: u16, ca: &Path, cert: &(PathBuf, PathBuf), id: &str) -> Raw {
        let abs = |p: &Path| -> AbsPath { p.to_str().expect("utf-8").parse().expect("absolute") };
        let conn = BrokerConnection {
            url: BrokerUrl {
                tls: true,
                host: site.broker.host.clone(),
                port,
            },
            tls: Some(TlsFiles {
                ca_file: abs(ca),
                client_cert: abs(&cert.0),
                client_key: abs(&cert.1),
            }),
        };
        let opts =
            motcua_common::mqtt::options(&conn, id, Duration::from_secs(30)).expect("options");
        let (client, mut events) = AsyncClient::builder(opts).capacity(64).build();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                loop {
                    let what = match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::ConnAck,
                        Ok(Event::Incoming(Packet::SubAck(a))) => Seen::SubAck(
                            a.return_codes
                                .iter()
                                .map(|c| matches!(c, SubscribeReasonCode::Success(_)))
                                .collect(),
                        ),
                        Ok(Event::Incoming(Packet::Publish(p))) => Seen::Publish(
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            p.payload.to_vec(),
                        ),
                        Ok(_) => continue,
                        Err(e) => {
                            s.lock().expect("lock").push(Seen::Failed(e.to_string()));
                            return;
                        }
                    };
                    s.lock().expect("lock").push(what);
                }
            });
        });
        Raw { client, seen }
    }

    /// A counter's certificate on the counters' listener.
    fn counter(site: &Site, cert: &(PathBuf, PathBuf), id: &str) -> Raw {
        let ca = site.pki.as_ref().expect("TLS").ca();
        Raw::connect(site, site.broker.port, &ca, cert, id)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn wait(&self, what: &str, f: impl Fn(&[Seen]) -> bool) {
        wait_until(what, LIMIT, || f(&self.seen()));
    }

    fn connected(&self) {
        self.wait("the connection", |s| {
            s.iter()
                .any(|e| matches!(e, Seen::ConnAck | Seen::Failed(_)))
        });
        assert_eq!(
            self.seen().first(),
            Some(&Seen::ConnAck),
            "{:?}",
            self.seen()
        );
    }

    /// Subscribes to each filter in turn; returns whether each was granted.
    fn subscribe_each(&self, filters: &[&str]) -> Vec<bool> {
        let before = self.suback_count();
        for f in filters {
            self.client
                .try_subscribe(*f, QoS::AtLeastOnce)
                .expect("queued");
        }
        self.wait("every SUBACK", |s| {
            s.iter().filter(|e| matches!(e, Seen::SubAck(_))).count() >= before + filters.len()
        });
        self.seen()
            .into_iter()
            .filter_map(|e| match e {
                Seen::SubAck(codes) => Some(codes[0]),
                _ => None,
            })
            .skip(before)
            .collect()
    }

    fn suback_count(&self) -> usize {
        self.seen()
            .iter()
            .filter(|e| matches!(e, Seen::SubAck(_)))
            .count()
    }

    fn publishes(&self) -> Vec<(String, Vec<u8>)> {
        self.seen()
            .into_iter()
            .filter_map(|e| match e {
                Seen::Publish(t, p) => Some((t, p)),
                _ => None,
            })
            .collect()
    }
}

/// Waits until the receiver has let `device` in at the broker.
fn let_in(dc: &Proc, device: &str) {
    wait_until(
        &format!("{device} in the broker's access list"),
        LIMIT,
        || {
            dc.log()
                .lines()
                .any(|l| l.contains("brought in step") && l.contains(device))
        },
    );
}

fn row(site: &Site, device: &str) -> serde_json::Value {
    let r = site.dc(&["fleet", "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let all: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    all.as_array()
        .expect("a list")
        .iter()
        .find(|c| c["device"] == device)
        .cloned()
        .expect("the counter is listed")
}

#[test]
fn one_counters_certificate_can_neither_take_the_fleets_submissions_nor_its_sessions() {
    let mut site = Site::new(true);
    let crl = site.dir.path().join("crl.pem");
    let ca_dir = site.pki.as_ref().expect("TLS").dir().to_owned();
    // Revocation at the broker is on from the start: an empty CRL.
    let r = site.dc(&[
        "ca",
        "crl",
        "--dir",
        ca_dir.to_str().expect("utf-8"),
        "--out",
        crl.to_str().expect("utf-8"),
    ]);
    assert!(r.ok, "{}", r.stderr);
    site.broker.enable_crl(&crl);
    site.broker.start();
    let (a, b, m) = (site.counter(A), site.counter(B), site.counter(M));
    a.receive(30);
    b.receive(30);
    let dc = site.receiver();
    for d in [A, B, M] {
        let_in(&dc, d);
    }

    // M's certificate, trying everything that would hand it other
    // counters' messages: refused at SUBSCRIBE, each of them; only its own
    // topics are granted.
    let m_cert = m.tls.clone().expect("TLS");
    let spy = Raw::counter(&site, &m_cert, "spy");
    spy.connected();
    let granted = spy.subscribe_each(&[
        "$share/motcua-dc/motcua/v1/d/+/up",
        "$share/motcua-dc/motcua/v1/d/+/health",
        "#",
        "motcua/v1/d/+/up",
        &format!("motcua/v1/d/{A}/receipt"),
        &format!("motcua/v1/d/{A}/down/+"),
        "$SYS/#",
        &format!("motcua/v1/d/{M}/receipt"),
    ]);
    assert_eq!(
        granted,
        [false, false, false, false, false, false, false, true]
    );

    // With the spy connected, both counters sync everything at once: not
    // one submission swallowed, so not one resend (the site's agents
    // resend after 3 s without a receipt) and not one duplicate at the DC.
    let (pa, pb) = (a.run(), b.run());
    wait_until("60 records receipted", LIMIT, || {
        a.receipted() == 30 && b.receipted() == 30
    });
    assert_eq!(site.totals().records, 60);
    site.assert_chain(A, 30);
    site.assert_chain(B, 30);
    for log in [pa.log(), pb.log()] {
        assert!(!log.contains("no receipt for"), "{log}");
    }
    assert!(
        spy.publishes().is_empty(),
        "the spy received {:?}",
        spy.publishes()
    );

    // M's certificate under A's client id: the broker takes the
    // certificate's name as the id, so it is M's session (the spy's) that
    // is taken over, not A's.
    let thief = Raw::counter(&site, &m_cert, A);
    thief.connected();
    spy.wait("the spy's session taken over by M's", |s| {
        s.iter().any(|e| matches!(e, Seen::Failed(_)))
    });
    // Anything the broker did to A's connection before the thief's
    // CONNACK reached the DC before B's clean stop does.
    let log_b = pb.stop();
    assert!(!log_b.contains("panicked"), "{log_b}");
    wait_until("B offline after its clean stop", LIMIT, || {
        row(&site, B)["state"] == "offline"
    });
    assert_eq!(row(&site, A)["state"], "online");
    let log_a = pa.log();
    assert!(
        !log_a.contains("no connection to the DC broker"),
        "A lost its connection: {log_a}"
    );
    let broker_log = site.broker.log();
    assert!(
        !broker_log.contains(&format!("Client {A} already connected")),
        "{broker_log}"
    );

    // Revoked at the DC: the receiver removes M from the access list and
    // the broker disconnects it; connecting again, it may subscribe to
    // nothing, not even its own receipts.
    let r = site.dc(&["device", "revoke", M]);
    assert!(r.ok, "{}", r.stderr);
    wait_until("M removed from the broker's access list", LIMIT, || {
        dc.log()
            .lines()
            .any(|l| l.contains("brought in step") && l.contains("removed") && l.contains(M))
    });
    thief.wait("M's connection closed by the broker", |s| {
        s.iter().any(|e| matches!(e, Seen::Failed(_)))
    });
    let again = Raw::counter(&site, &m_cert, M);
    again.connected();
    assert_eq!(
        again.subscribe_each(&[&format!("motcua/v1/d/{M}/receipt")]),
        [false]
    );

    // Its certificate revoked at the CA and the CRL reloaded: the TLS
    // handshake itself is refused. B's certificate still connects.
    let r = site.dc(&[
        "ca",
        "revoke",
        "--dir",
        ca_dir.to_str().expect("utf-8"),
        m_cert.0.to_str().expect("utf-8"),
        "--out",
        crl.to_str().expect("utf-8"),
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains(M), "{}", r.stdout);
    site.broker.reload();
    // The broker logs the reload before it reads the files: each attempt
    // is a new handshake, until one is refused.
    wait_until("M's handshake refused", LIMIT, || {
        let r = Raw::counter(&site, &m_cert, M);
        r.wait("M's handshake", |s| !s.is_empty());
        matches!(r.seen().first(), Some(Seen::Failed(_)))
    });
    let b_cert = b.tls.clone().expect("TLS");
    let honest = Raw::counter(&site, &b_cert, B);
    honest.connected();
    drop(pa);
}

#[test]
fn a_stalled_dc_makes_no_counter_look_offline() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(A);
    a.receive(8);
    let mut dc = site.receiver();
    let_in(&dc, A);
    // A watcher with a receiver's certificate (another connection of the
    // receivers' name, on their listener) sees every presence A
    // publishes, its last will included.
    let watcher = {
        let p = site.pki.as_ref().expect("TLS");
        Raw::connect(
            &site,
            site.broker.dc_port,
            &p.ca(),
            &p.receiver_files("motcua-dc"),
            "watcher",
        )
    };
    watcher.connected();
    assert_eq!(watcher.subscribe_each(&["motcua/v1/d/+/status"]), [true]);

    // The DC stops answering (its process frozen): A's records go out and
    // no receipt comes.
    let pid = dc.pid();
    signal(pid, "STOP");
    let agent = a.run();
    wait_until(
        "A sends again after 3 s without a receipt, twice",
        LIMIT,
        || agent.log().matches("on the same connection").count() >= 2,
    );
    assert_eq!(a.receipted(), 0);
    signal(pid, "CONT");
    wait_until("8 records receipted", LIMIT, || a.receipted() == 8);
    let log = agent.stop();
    assert!(!log.contains("no connection to the DC broker"), "{log}");
    let status = format!("motcua/v1/d/{A}/status");
    let said = || -> Vec<String> {
        watcher
            .publishes()
            .into_iter()
            .filter(|(t, _)| *t == status)
            .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
            .collect()
    };
    wait_until("A's offline after its clean stop", LIMIT, || {
        said().iter().any(|p| p == "offline")
    });
    // Its online, then its clean stop: no will in between.
    let said = said();
    assert_eq!(said, ["online", "offline"]);
    dc.kill();
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}
