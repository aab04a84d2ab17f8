//! The sync benchmark: how fast a counter's backlog reaches the DC, beside
//! what the broker itself can carry, in one run on one machine.
//!
//! Run: `cargo bench -p motcua-e2e --bench drain`
//! (`MOTCUA_BENCH_RECORDS` sets the backlog, default 100 000;
//! `MOTCUA_BENCH_TLS=1` runs the broker with TLS, client certificates and
//! the shipped broker configuration instead of plain loopback).
//!
//! It prints:
//! 1. raw broker throughput: QoS 1 publishes from one rumqttc client to one
//!    subscriber through the same Mosquitto, with payloads the size of one
//!    envelope and the size of one bundle of the agent's default batch;
//! 2. the drain: the real `motcua run` and `motcua-dc run` (built with the
//!    `bench` profile) against that Mosquitto, from the agent's start until
//!    the DC's receipt for the last record is in the counter's store:
//!    every record verified, stored once in SQLite and receipted;
//! 3. the DC's verify-and-store rate on one core: the receiver's processor
//!    fed the same envelopes in the agent's bundles, in-process, SQLite.

use std::time::{Duration, Instant};

use motcua_counter::store::{DB_FILE, Reader};
use motcua_e2e::site::{Site, wait_until};
use rumqttc::{AsyncClient, Broker, Event, MqttOptions, Packet, PublishOptions, QoS};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Messages per second through the broker: one publisher, one subscriber,
/// QoS 1 both ways, `n` payloads of `size` bytes.
fn raw_rate(port: u16, n: u64, size: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let opts = |id: &str| {
            let mut o = MqttOptions::new(id, Broker::tcp("127.0.0.1", port));
            o.set_max_packet_size(2 << 20, 2 << 20);
            o.set_inflight(100);
            o.set_keep_alive(30);
            o
        };
        let (sub, mut sub_loop) = AsyncClient::builder(opts("bench-sub"))
            .capacity(1000)
            .build();
        sub.subscribe("bench/raw", QoS::AtLeastOnce)
            .await
            .expect("queued");
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = sub_loop.poll().await {
                break;
            }
        }
        let receiver = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                if let Ok(Event::Incoming(Packet::Publish(_))) = sub_loop.poll().await {
                    got += 1;
                }
            }
            Instant::now()
        });
        let (publ, mut pub_loop) = AsyncClient::builder(opts("bench-pub"))
            .capacity(1000)
            .build();
        let payload = vec![0x5a; size];
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..n {
                publ.publish(
                    "bench/raw",
                    payload.clone(),
                    PublishOptions::new(QoS::AtLeastOnce),
                )
                .await
                .expect("queued");
            }
            publ
        });
        let mut acks = 0;
        while acks < n {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = pub_loop.poll().await {
                acks += 1;
            }
        }
        let _publ = sender.await.expect("sender");
        let end = receiver.await.expect("receiver");
        n as f64 / (end - start).as_secs_f64()
    })
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    motcua_e2e::use_profile("bench");
    let records = env_u64("MOTCUA_BENCH_RECORDS", 100_000);
    let tls = std::env::var("MOTCUA_BENCH_TLS").is_ok_and(|v| v == "1");
    let mut site = Site::new(tls);
    site.broker.start();
    let counter = site.counter("H49.12.3-q01");
    println!("filling a backlog of {records} records...");
    let t = Instant::now();
    counter.receive(records);
    println!("  {:.1} s", t.elapsed().as_secs_f64());

    let reader = Reader::open(&counter.state.join(DB_FILE)).expect("store");
    let sample = reader.unsynced(0, 64).expect("envelopes");
    let envelope = sample.iter().map(|p| p.envelope.len()).sum::<usize>() / sample.len();
    let bundle = motcua_protocol::bundle::bundle_len(sample.iter().map(|p| p.envelope.len()));
    println!("envelope: {envelope} bytes on average; bundle of 64: {bundle} bytes");

    if !tls {
        let n = records.min(100_000);
        let raw_env = raw_rate(site.broker.port, n, envelope);
        println!("raw QoS 1, {envelope}-byte messages: {raw_env:.0} messages/s");
        let nb = (n / 64).max(200);
        let raw_bundle = raw_rate(site.broker.port, nb, bundle);
        println!(
            "raw QoS 1, {bundle}-byte messages: {raw_bundle:.0} messages/s = {:.0} envelopes/s",
            raw_bundle * 64.0
        );
    } else {
        println!("(raw rates are measured on the plain broker; run without MOTCUA_BENCH_TLS)");
    }

    let _dc = site.receiver();
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let _agent = counter.run();
    wait_until("the backlog receipted", Duration::from_secs(900), || {
        counter.receipted() == records
    });
    let drain = start.elapsed();
    println!(
        "drain: {records} records verified, stored and receipted in {:.2} s = {:.0} records/s",
        drain.as_secs_f64(),
        records as f64 / drain.as_secs_f64()
    );
    site.assert_chain(&counter.id, records);

    // The DC's own rate: the processor alone, one thread, a fresh SQLite.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        motcua_dc::store::sqlite::SqliteStore::open(&dir.path().join("dc.db")).expect("store");
    let line: motcua_protocol::Enrollment = counter.enrollment.parse().expect("line");
    use motcua_dc::store::Store;
    store
        .enroll(&line, &motcua_dc::receiver::now())
        .expect("enrolls")
        .expect("new");
    let mut proc = motcua_dc::receiver::Processor::new(
        Box::new(store),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
    );
    let mut bundles = Vec::new();
    let mut after = 0;
    loop {
        let page = reader.unsynced_or_synced(after, 64);
        if page.is_empty() {
            break;
        }
        after = page.last().map_or(after, |p| p.0);
        let parts: Vec<&[u8]> = page.iter().map(|p| p.1.as_slice()).collect();
        bundles.push(motcua_protocol::bundle::join(&parts));
    }
    // Verification alone (COSE checks, signature, strict payload), one
    // thread: the part of the processor's work that needs no database.
    let key = line.key;
    let start = Instant::now();
    let mut verified = 0u64;
    for b in &bundles {
        for m in motcua_protocol::bundle::split(b).expect("frames") {
            motcua_protocol::verify::<motcua_protocol::Submission>(m, &key).expect("verifies");
            verified += 1;
        }
    }
    let took = start.elapsed();
    println!(
        "verification alone (one thread): {verified} envelopes in {:.2} s = {:.0} envelopes/s",
        took.as_secs_f64(),
        verified as f64 / took.as_secs_f64()
    );
    // The same with one batch verification per bundle, as the receiver does.
    let start = Instant::now();
    let mut verified = 0u64;
    for b in &bundles {
        let opened: Vec<_> = motcua_protocol::bundle::split(b)
            .expect("frames")
            .into_iter()
            .map(|m| {
                (
                    motcua_protocol::Opened::<motcua_protocol::Submission>::parse(m)
                        .expect("parses"),
                    key,
                )
            })
            .collect();
        for r in motcua_protocol::verify_many(opened) {
            r.expect("verifies");
            verified += 1;
        }
    }
    let took = start.elapsed();
    println!(
        "batch verification alone (one thread, a batch per bundle): {verified} envelopes in {:.2} s = {:.0} envelopes/s",
        took.as_secs_f64(),
        verified as f64 / took.as_secs_f64()
    );
    let topic = format!("motcua/v1/d/{}/up", counter.id);
    let start = Instant::now();
    for b in &bundles {
        proc.handle(&topic, b, motcua_dc::receiver::now())
            .expect("handles");
    }
    let took = start.elapsed();
    assert_eq!(proc.stats().stored, records);
    println!(
        "DC processor alone (one thread, SQLite): {records} records in {:.2} s = {:.0} records/s",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );
}

/// Reading every envelope (synced or not) in seq order, for the processor
/// run above.
trait AllEnvelopes {
    fn unsynced_or_synced(&self, after: u64, limit: usize) -> Vec<(u64, Vec<u8>)>;
}

impl AllEnvelopes for Reader {
    fn unsynced_or_synced(&self, after: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        let mut stmt = self
            .connection()
            .prepare_cached("SELECT seq, envelope FROM journal WHERE seq > ? ORDER BY seq LIMIT ?")
            .expect("prepares");
        stmt.query_map([after as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
        })
        .expect("reads")
        .collect::<Result<Vec<_>, _>>()
        .expect("reads")
    }
}
