//! An in-process MQTT 3.1.1 broker for `motcua demo` and tests: loopback,
//! plain TCP, no authentication. Production uses Mosquitto or EMQX
//! (`docs/BROKER.md`).
//!
//! Why not rumqttd: it starts threads it never stops (no shutdown), cannot
//! report a port the OS chose, and brings about 190 crates, a second rustls
//! among them. What the demo needs is small, so it is written here over
//! rumqttc's own packet codec: CONNECT with a clean session, PUBLISH at
//! QoS 0 and 1 (acknowledged on receipt), SUBSCRIBE with `+` and `#` and
//! shared subscriptions (`$share/{group}/{filter}`, round robin among the
//! group's members), retained messages, last wills, PINGREQ. Nothing is
//! persisted and nothing is retransmitted: QoS 1 here means "acknowledged
//! once routed", which is all the protocol relies on (the journal, not the
//! broker, is the source of truth).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use motcua_common::mqtt::MAX_PACKET_BYTES;

/// A running embedded broker.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Binds `addr` (port 0 lets the OS choose) and starts serving on the
    /// current tokio runtime.
    pub async fn start(addr: SocketAddr) -> std::io::Result<EmbeddedBroker> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let router = Arc::new(Mutex::new(Router::default()));
        let task = tokio::spawn(accept(listener, router, stopped));
        Ok(EmbeddedBroker { addr, stop, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept(
    listener: TcpListener,
    router: Arc<Mutex<Router>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_id = 0u64;
    let mut conns = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                next_id += 1;
                let _ = stream.set_nodelay(true);
                conns.push(tokio::spawn(connection(next_id, stream, router.clone(), stop.clone())));
                conns.retain(|c: &JoinHandle<()>| !c.is_finished());
            }
        }
    }
    for c in conns {
        c.abort();
    }
}

#[derive(Default)]
struct Router {
    clients: HashMap<u64, Client>,
    subs: Vec<Sub>,
    retained: HashMap<String, Publish>,
    turns: HashMap<(String, String), usize>,
}

struct Client {
    client_id: String,
    tx: mpsc::UnboundedSender<Packet>,
    next_pkid: u16,
    /// Closes the connection when a newer one takes its client id.
    kick: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Sub {
    conn: u64,
    group: Option<String>,
    filter: String,
    qos: QoS,
}

/// Splits `$share/{group}/{filter}`.
fn shared(path: &str) -> (Option<String>, String) {
    if let Some(rest) = path.strip_prefix("$share/")
        && let Some((group, filter)) = rest.split_once('/')
    {
        return (Some(group.to_owned()), filter.to_owned());
    }
    (None, path.to_owned())
}

/// MQTT topic matching with `+` (one level) and `#` (the rest).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && !filter.starts_with('$') {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if a == QoS::AtMostOnce || b == QoS::AtMostOnce {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// A publish's topic name; checked UTF-8 when it arrived (a will's topic is
/// a string already).
fn topic(p: &Publish) -> &str {
    std::str::from_utf8(&p.topic).unwrap_or_default()
}

impl Router {
    fn send(&mut self, conn: u64, p: &Publish, qos: QoS) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        let mut out = p.clone();
        out.qos = qos;
        out.dup = false;
        out.pkid = 0;
        if qos != QoS::AtMostOnce {
            c.next_pkid = c.next_pkid.checked_add(1).unwrap_or(1);
            out.pkid = c.next_pkid;
        }
        let _ = c.tx.send(Packet::Publish(out));
    }

    fn route(&mut self, p: &Publish) {
        // Plain subscribers: once per connection, at the highest QoS granted.
        let mut plain: HashMap<u64, QoS> = HashMap::new();
        let mut groups: HashMap<(String, String), Vec<(u64, QoS)>> = HashMap::new();
        for s in &self.subs {
            if !matches(&s.filter, topic(p)) {
                continue;
            }
            let q = min_qos(s.qos, p.qos);
            match &s.group {
                None => {
                    let e = plain.entry(s.conn).or_insert(QoS::AtMostOnce);
                    if q == QoS::AtLeastOnce {
                        *e = q;
                    }
                }
                Some(g) => groups
                    .entry((g.clone(), s.filter.clone()))
                    .or_default()
                    .push((s.conn, q)),
            }
        }
        for (conn, q) in plain {
            self.send(conn, p, q);
        }
        for (key, members) in groups {
            let turn = self.turns.entry(key).or_insert(0);
            let (conn, q) = members[*turn % members.len()];
            *turn = turn.wrapping_add(1);
            self.send(conn, p, q);
        }
    }

    fn publish(&mut self, p: &Publish) {
        if p.retain {
            if p.payload.is_empty() {
                self.retained.remove(topic(p));
            } else {
                let mut kept = p.clone();
                kept.retain = true;
                self.retained.insert(topic(p).to_owned(), kept);
            }
        }
        let mut live = p.clone();
        live.retain = false;
        self.route(&live);
    }
}

async fn connection(
    id: u64,
    stream: TcpStream,
    router: Arc<Mutex<Router>>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Packet>();
    let writer = tokio::spawn(async move {
        let mut buf = bytes::BytesMut::new();
        while let Some(p) = rx.recv().await {
            buf.clear();
            if p.write(&mut buf, MAX_PACKET_BYTES).is_err() || wr.write_all(&buf).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let (kick_tx, mut kicked) = tokio::sync::oneshot::channel::<()>();
    let mut kick_tx = Some(kick_tx);
    let mut will = None;
    let mut connected = false;
    let mut clean_exit = false;
    let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
    'read: loop {
        // Take every complete packet already buffered.
        loop {
            let packet = match Packet::read(&mut buf, MAX_PACKET_BYTES) {
                Ok(p) => p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(_) => break 'read,
            };
            let mut r = match router.lock() {
                Ok(r) => r,
                Err(_) => break 'read,
            };
            match packet {
                Packet::Connect(c) if !connected => {
                    connected = true;
                    will = c.last_will.map(|w| Publish {
                        dup: false,
                        qos: w.qos,
                        retain: w.retain,
                        topic: bytes::Bytes::from(w.topic),
                        pkid: 0,
                        payload: w.message,
                    });
                    // A newer connection with the same client id wins.
                    let old: Vec<u64> = r
                        .clients
                        .iter()
                        .filter(|(_, cl)| cl.client_id == c.client_id)
                        .map(|(k, _)| *k)
                        .collect();
                    for o in old {
                        if let Some(mut cl) = r.clients.remove(&o)
                            && let Some(k) = cl.kick.take()
                        {
                            let _ = k.send(());
                        }
                        r.subs.retain(|s| s.conn != o);
                    }
                    r.clients.insert(
                        id,
                        Client {
                            client_id: c.client_id,
                            tx: tx.clone(),
                            next_pkid: 0,
                            kick: kick_tx.take(),
                        },
                    );
                    let _ = tx.send(Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::Success,
                        false,
                    )));
                }
                _ if !connected => break 'read,
                // MQTT topic names are UTF-8: anything else is a
                // protocol violation that ends the connection.
                Packet::Publish(p) if std::str::from_utf8(&p.topic).is_err() => break 'read,
                Packet::Publish(p) => {
                    if p.qos == QoS::AtLeastOnce {
                        let _ = tx.send(Packet::PubAck(PubAck::new(p.pkid)));
                    } else if p.qos == QoS::ExactlyOnce {
                        // Not supported here; nobody in motcua uses it.
                        break 'read;
                    }
                    r.publish(&p);
                }
                Packet::Subscribe(s) => {
                    let mut codes = Vec::with_capacity(s.filters.len());
                    let mut replay = Vec::new();
                    for f in &s.filters {
                        let qos = min_qos(f.qos, QoS::AtLeastOnce);
                        let (group, filter) = shared(&f.path);
                        let retained: Vec<Publish> = if group.is_none() {
                            r.retained
                                .values()
                                .filter(|p| matches(&filter, topic(p)))
                                .cloned()
                                .collect()
                        } else {
                            Vec::new()
                        };
                        r.subs
                            .retain(|x| !(x.conn == id && x.filter == filter && x.group == group));
                        r.subs.push(Sub {
                            conn: id,
                            group,
                            filter,
                            qos,
                        });
                        codes.push(SubscribeReasonCode::Success(qos));
                        replay.extend(retained.into_iter().map(|p| (min_qos(p.qos, qos), p)));
                    }
                    let _ = tx.send(Packet::SubAck(SubAck::new(s.pkid, codes)));
                    // Retained messages follow the SUBACK, as with Mosquitto.
                    for (q, p) in replay {
                        r.send(id, &p, q);
                    }
                }
                Packet::Unsubscribe(u) => {
                    for f in &u.topics {
                        let (group, filter) = shared(f);
                        r.subs
                            .retain(|x| !(x.conn == id && x.filter == filter && x.group == group));
                    }
                    let _ = tx.send(Packet::UnsubAck(UnsubAck::new(u.pkid)));
                }
                Packet::PingReq => {
                    let _ = tx.send(Packet::PingResp);
                }
                Packet::Disconnect => {
                    clean_exit = true;
                    break 'read;
                }
                // Acknowledgements of what we delivered: nothing is
                // retransmitted, so nothing to track.
                _ => {}
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = &mut kicked => break,
            _ = stop.changed() => break,
        }
    }
    if let Ok(mut r) = router.lock() {
        let mine = r.clients.contains_key(&id);
        if mine {
            r.clients.remove(&id);
            r.subs.retain(|s| s.conn != id);
            if !clean_exit && let Some(w) = will.take() {
                r.publish(&w);
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matching() {
        assert!(matches("motcua/v1/d/+/up", "motcua/v1/d/dev-1/up"));
        assert!(!matches("motcua/v1/d/+/up", "motcua/v1/d/dev-1/receipt"));
        assert!(matches(
            "motcua/v1/d/dev-1/down/#",
            "motcua/v1/d/dev-1/down/catalogue"
        ));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("a/+", "a/b/c"));
        assert_eq!(
            shared("$share/motcua-dc/motcua/v1/d/+/up"),
            (Some("motcua-dc".into()), "motcua/v1/d/+/up".into())
        );
    }
}
