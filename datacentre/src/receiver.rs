//! The receiver: MQTT in, verified records stored, signed receipts out.
//!
//! Two halves:
//! - [`Processor`] is synchronous and knows no MQTT: given a topic and a
//!   payload it frames, verifies, applies the chain rules through the
//!   [`Store`], records every refusal as an alert, and returns the receipt
//!   to publish. It never panics or fails on input; only a storage failure
//!   is an error.
//! - [`run`] connects to the broker (shared subscription, clean session),
//!   hands messages to the processor on a thread of its own (the store's
//!   clients block), and publishes the receipts it returns.
//!
//! Checks, in order, for each message of an `up` payload: the topic is a
//! device's `up` topic; the payload frames (one message or a bundle); the
//! COSE structure and headers; the key id is enrolled for the topic's
//! device; the signature and payload; the payload's device equals the
//! topic's. Then the chain rules, in the store's transaction (which also
//! refuses revoked and unknown devices).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::VerifyingKey;
use motcua_common::mqtt::{self, Backoff};
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{
    DeviceId, FORMAT_VERSION, Health, KeyId, Opened, Presence, Receipt, Submission, UtcTime,
    Verified, VerifyError, bundle, sign, verify_many,
};
use rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

use crate::access;
use crate::metrics::Metrics;
use crate::store::{Alert, Device, Incoming, Outcome, Store, StoreError, conflict_reason};

/// How long a device's keys are trusted from the cache before they are
/// read again (a new key or a device enrolled meanwhile is found at once:
/// an unknown kid always reads again).
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Most raw bytes kept as evidence of a refusal: of a payload refused
/// whole that is longer (a bundle, or anything over a limit), only the
/// beginning is kept.
const MAX_EVIDENCE: usize = motcua_protocol::MAX_MESSAGE_BYTES;

/// Counters since start, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// MQTT messages handled.
    pub messages: u64,
    /// Envelopes that verified and reached the chain rules.
    pub verified: u64,
    /// Envelopes stored (including released from hold).
    pub stored: u64,
    /// Envelopes already stored.
    pub duplicates: u64,
    /// Envelopes held beyond a gap.
    pub held: u64,
    /// Alerts recorded (refused messages, conflicts).
    pub alerts: u64,
    /// Receipts signed.
    pub receipts: u64,
    /// Health reports stored.
    pub health: u64,
    /// Presence changes stored.
    pub presence: u64,
    /// Health or status messages refused (malformed, or from a device
    /// that is not enrolled); logged, not kept.
    pub telemetry_refused: u64,
}

/// A message to publish.
#[derive(Clone, PartialEq, Eq)]
pub struct Publish {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("topic", &self.topic)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// A message after the first stage: framed, parsed and verified, not yet
/// stored. What was refused on the way is kept for the second stage to
/// record as alerts.
pub struct Checked {
    device: Option<DeviceId>,
    items: Vec<Incoming>,
    refused: Vec<Alert>,
}

/// The first stage: everything but writing. It reads the store only to
/// find devices' keys (cached), so several verifiers, each with a store
/// connection of its own, can run beside the one that writes.
#[derive(Default)]
pub struct Verifier {
    devices: HashMap<DeviceId, (Instant, Option<Device>)>,
}

/// Turns `up` messages into stored records and receipts: a [`Verifier`]
/// and the second stage (alerts, chain rules, receipt), on one store.
pub struct Processor {
    store: Box<dyn Store>,
    key: SigningKey,
    verifier: Verifier,
    stats: Stats,
    metrics: Arc<Metrics>,
}

impl Processor {
    /// A processor storing into `store` and signing receipts with `key`.
    pub fn new(store: Box<dyn Store>, key: SigningKey) -> Processor {
        Processor {
            store,
            key,
            verifier: Verifier::default(),
            stats: Stats::default(),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Counts into `metrics` (shared with the `/metrics` endpoint).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Processor {
        self.metrics = metrics;
        self
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The store, for the commands that read it.
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// Handles one MQTT message; returns the receipt to publish, if any.
    pub fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        now: UtcTime,
    ) -> Result<Option<Publish>, StoreError> {
        if is_telemetry(topic) {
            self.telemetry(topic, payload, now)?;
            return Ok(None);
        }
        let checked = self.verifier.check(&mut *self.store, topic, payload, now)?;
        self.commit(checked, now)
    }

    /// The second stage: records what the first refused, applies the chain
    /// rules to what it verified, and returns the receipt to publish.
    pub fn commit(
        &mut self,
        checked: Checked,
        now: UtcTime,
    ) -> Result<Option<Publish>, StoreError> {
        self.stats.messages += 1;
        self.metrics.messages.inc();
        for alert in &checked.refused {
            self.stats.alerts += 1;
            self.metrics
                .refused
                .with_label_values(&[alert.reason.as_str()])
                .inc();
            tracing::warn!(
                device = alert.device.as_ref().map(DeviceId::as_str),
                reason = alert.reason,
                detail = %alert.detail,
                len = alert.bytes.len(),
                "message refused and kept as evidence"
            );
            self.store.alert(alert)?;
        }
        let Checked { device, items, .. } = checked;
        let Some(device) = device else {
            return Ok(None);
        };
        if items.is_empty() {
            return Ok(None);
        }
        self.stats.verified += items.len() as u64;
        let started = Instant::now();
        let accepted = self.store.accept(&device, &items, &now)?;
        self.metrics
            .store_seconds
            .observe(started.elapsed().as_secs_f64());
        let m = &self.metrics;
        for (item, outcome) in items.iter().zip(&accepted.outcomes) {
            match outcome {
                Outcome::Stored => {
                    self.stats.stored += 1;
                    m.stored.inc();
                }
                Outcome::Duplicate => {
                    self.stats.duplicates += 1;
                    m.duplicates.inc();
                }
                Outcome::Held => {
                    self.stats.held += 1;
                    m.held.inc();
                }
                Outcome::NotHeld => {
                    tracing::debug!(%device, seq = item.seq, "beyond a gap and the hold is full; not kept");
                }
                Outcome::Conflict(kind) => {
                    self.stats.alerts += 1;
                    m.refused.with_label_values(&[conflict_reason(*kind)]).inc();
                    tracing::warn!(%device, seq = item.seq, reason = conflict_reason(*kind), "conflicting envelope kept as evidence");
                }
                Outcome::Refused => {
                    self.stats.alerts += 1;
                    m.refused.with_label_values(&["revoked_or_unknown"]).inc();
                    tracing::warn!(%device, seq = item.seq, "envelope of a revoked or unknown device refused");
                }
            }
        }
        self.stats.stored += accepted.released;
        m.stored.inc_by(accepted.released);
        let Some(head) = accepted.head else {
            return Ok(None);
        };
        let receipt = Receipt {
            v: FORMAT_VERSION,
            device: device.clone(),
            seq: head.seq,
            hash: head.hash,
            at: now,
        };
        let payload = match sign(&receipt, &self.key) {
            Ok(p) => p,
            Err(e) => return Err(StoreError::Other(format!("signing a receipt: {e}"))),
        };
        self.stats.receipts += 1;
        self.metrics.receipts.inc();
        tracing::debug!(%device, seq = head.seq, "receipt");
        Ok(Some(Publish {
            topic: topics::device_topic(&device, &Channel::Receipt),
            payload,
        }))
    }
}

/// Whether `topic` is a device's health or status topic, which
/// [`Processor::handle`] takes without the verifier.
pub fn is_telemetry(topic: &str) -> bool {
    matches!(
        topics::parse_device_topic(topic),
        Some((_, Channel::Health | Channel::Status))
    )
}

impl Processor {
    /// Stores a health report or a presence change. Malformed ones and
    /// those of devices not enrolled are logged and counted, never stored.
    fn telemetry(&mut self, topic: &str, payload: &[u8], now: UtcTime) -> Result<(), StoreError> {
        self.stats.messages += 1;
        self.metrics.messages.inc();
        let stored = match topics::parse_device_topic(topic) {
            Some((device, Channel::Status)) => match Presence::parse(payload) {
                Some(p) => {
                    let online = p == Presence::Online;
                    let known = self.store.set_presence(&device, online, &now)?;
                    if known {
                        self.stats.presence += 1;
                        tracing::info!(%device, state = if online { "online" } else { "offline" }, "counter presence");
                    }
                    known.then_some(()).ok_or((device, "unknown_device"))
                }
                None => Err((device, "bad_status")),
            },
            Some((device, Channel::Health)) => match Health::parse(payload, &device) {
                Ok(h) => {
                    let known = self.store.put_health(&device, payload, &now)?;
                    if known {
                        self.stats.health += 1;
                        self.metrics.health.inc();
                        tracing::debug!(%device, unsynced = h.unsynced, "health report");
                    }
                    known.then_some(()).ok_or((device, "unknown_device"))
                }
                Err(e) => Err((device, e.reason())),
            },
            _ => return Ok(()),
        };
        if let Err((device, reason)) = stored {
            self.stats.telemetry_refused += 1;
            self.metrics
                .telemetry_refused
                .with_label_values(&[reason])
                .inc();
            tracing::warn!(%device, reason, len = payload.len(), "health or status message refused");
        }
        Ok(())
    }
}

impl Verifier {
    /// The first stage for one MQTT message: topic, framing, COSE, key,
    /// signatures (one batch), device. `store` is read for keys only.
    pub fn check(
        &mut self,
        store: &mut dyn Store,
        topic: &str,
        payload: &[u8],
        now: UtcTime,
    ) -> Result<Checked, StoreError> {
        let mut out = Checked {
            device: None,
            items: Vec::new(),
            refused: Vec::new(),
        };
        let device = match topics::parse_device_topic(topic) {
            Some((device, Channel::Up)) => device,
            _ => {
                out.refuse(
                    None,
                    topic,
                    "bad_topic",
                    None,
                    "not a device's up topic".into(),
                    payload,
                    now,
                );
                return Ok(out);
            }
        };
        let parts = match bundle::split(payload) {
            Ok(p) => p,
            Err(e) => {
                out.refuse(
                    Some(&device),
                    topic,
                    e.reason(),
                    None,
                    e.to_string(),
                    payload,
                    now,
                );
                return Ok(out);
            }
        };
        // Structure and key first, one by one; then every signature of the
        // message in one batch verification.
        let mut opened = Vec::with_capacity(parts.len());
        for bytes in parts {
            if let Some((o, key)) = self.open(store, &mut out, &device, topic, bytes, now)? {
                opened.push((o, key));
            }
        }
        let kids: Vec<_> = opened.iter().map(|(o, _)| (o.kid(), o.bytes())).collect();
        for (result, (kid, bytes)) in verify_many(opened).into_iter().zip(kids) {
            if let Some(item) = out.verified(&device, topic, result, kid, bytes, now) {
                out.items.push(item);
            }
        }
        out.device = Some(device);
        Ok(out)
    }

    /// Parses one message and finds its key; `None` (with the refusal
    /// noted in `out`) when refused.
    fn open<'b>(
        &mut self,
        store: &mut dyn Store,
        out: &mut Checked,
        device: &DeviceId,
        topic: &str,
        bytes: &'b [u8],
        now: UtcTime,
    ) -> Result<Option<(Opened<'b, Submission>, VerifyingKey)>, StoreError> {
        let opened = match Opened::<Submission>::parse(bytes) {
            Ok(o) => o,
            Err(e) => {
                out.refuse(
                    Some(device),
                    topic,
                    e.reason(),
                    None,
                    e.to_string(),
                    bytes,
                    now,
                );
                return Ok(None);
            }
        };
        let kid = opened.kid();
        let (reason, detail) = match self.key_for(store, device, kid)? {
            KeyLookup::Found(k) => return Ok(Some((opened, k))),
            KeyLookup::UnknownDevice => (
                "unknown_device",
                format!("device {device} is not enrolled (kid {kid})"),
            ),
            KeyLookup::UnknownKey => (
                "unknown_key",
                format!("kid {kid} is not enrolled for device {device}"),
            ),
        };
        out.refuse(Some(device), topic, reason, None, detail, bytes, now);
        Ok(None)
    }

    fn key_for(
        &mut self,
        store: &mut dyn Store,
        device: &DeviceId,
        kid: KeyId,
    ) -> Result<KeyLookup, StoreError> {
        let fresh = |(at, _): &(Instant, Option<Device>)| at.elapsed() < KEY_CACHE_TTL;
        let find = |d: &Option<Device>| {
            d.as_ref()
                .map(|d| d.keys.iter().find(|k| k.kid == kid).map(|k| k.key))
        };
        if let Some(entry) = self.devices.get(device).filter(|e| fresh(e))
            && let Some(Some(key)) = find(&entry.1)
        {
            return Ok(KeyLookup::Found(key));
        }
        let d = store.device(device)?;
        let result = match find(&d) {
            None => KeyLookup::UnknownDevice,
            Some(None) => KeyLookup::UnknownKey,
            Some(Some(k)) => KeyLookup::Found(k),
        };
        self.devices.insert(device.clone(), (Instant::now(), d));
        Ok(result)
    }
}

impl Checked {
    /// The verification result of one message; `None` (with the refusal
    /// noted) when refused.
    fn verified(
        &mut self,
        device: &DeviceId,
        topic: &str,
        result: Result<Verified<Submission>, VerifyError>,
        kid: KeyId,
        bytes: &[u8],
        now: UtcTime,
    ) -> Option<Incoming> {
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                let detail = match &e {
                    VerifyError::Payload(_) => format!("{} (kid {kid})", e.reason()),
                    _ => format!("{e} (kid {kid})"),
                };
                self.refuse(Some(device), topic, e.reason(), None, detail, bytes, now);
                return None;
            }
        };
        if v.message.device != *device {
            let detail = format!(
                "signed by {device}'s key for device {}, sent on {device}'s topic",
                v.message.device
            );
            self.refuse(
                Some(device),
                topic,
                "device_mismatch",
                Some(v.message.seq),
                detail,
                bytes,
                now,
            );
            return None;
        }
        Some(Incoming::from_verified(v, topic))
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        device: Option<&DeviceId>,
        topic: &str,
        reason: &str,
        seq: Option<u64>,
        detail: String,
        bytes: &[u8],
        now: UtcTime,
    ) {
        self.refused.push(Alert {
            at: now,
            device: device.cloned(),
            topic: topic.chars().take(256).collect(),
            reason: reason.to_owned(),
            seq,
            detail,
            bytes: bytes[..bytes.len().min(MAX_EVIDENCE)].to_vec(),
        });
    }
}

enum KeyLookup {
    Found(VerifyingKey),
    UnknownDevice,
    UnknownKey,
}

/// How the receiver connects.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The broker.
    pub broker: motcua_common::config::BrokerConnection,
    /// The shared-subscription group.
    pub share_group: String,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// Ping systemd's watchdog while the loop turns and the store thread
    /// keeps up (`motcua-dc run` under a `WatchdogSec=` unit).
    pub watchdog: bool,
}

/// Now, as the protocol's time.
pub fn now() -> UtcTime {
    UtcTime::new(time::OffsetDateTime::now_utc())
}

/// One message on its way through the verifiers: its payload, and where
/// the verifier that takes it sends the result.
type Work = (
    String,
    Vec<u8>,
    std::sync::mpsc::SyncSender<Result<Checked, StoreError>>,
);

/// Runs the receiver until `stop` is set (checked between messages) or the
/// store fails. `ready` is called once the first subscription is granted.
///
/// Each store in `verifiers` gets a thread of its own running the first
/// stage ([`Verifier`]: parsing and signature checks, the store read only
/// for keys) while the processor's thread writes; results are committed
/// in the order the messages arrived. With no verifier stores, the
/// processor's thread does both stages.
pub async fn run(
    opts: RunOptions,
    processor: Processor,
    verifiers: Vec<Box<dyn Store>>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce() + Send,
) -> anyhow::Result<Stats> {
    run_keeping(opts, processor, verifiers, None, stop, ready).await
}

/// The answers of the broker's dynamic-security plugin, taken from the
/// receiver's connection, and commands published on it.
struct ControlChannel {
    client: AsyncClient,
    answers: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl access::Channel for ControlChannel {
    fn send(&mut self, payload: Vec<u8>) -> bool {
        self.client
            .try_publish(
                access::CONTROL_TOPIC,
                payload,
                PublishOptions::new(QoS::AtLeastOnce),
            )
            .is_ok()
    }
    fn next(&mut self, wait: Duration) -> Option<Vec<u8>> {
        self.answers.recv_timeout(wait).ok()
    }
}

/// As [`run`], and with `keeper` keeps the broker's access list in step
/// with the registry over the same connection ([`access`]).
pub async fn run_keeping(
    opts: RunOptions,
    mut processor: Processor,
    verifiers: Vec<Box<dyn Store>>,
    keeper: Option<access::Keeper>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce() + Send,
) -> anyhow::Result<Stats> {
    let client_id = format!("motcua-dc-{:016x}", mqtt::random_u64());
    let mut mo = mqtt::options(&opts.broker, &client_id, opts.keep_alive)?;
    mo.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::builder(mo).capacity(1024).build();
    let filter = topics::dc_up_filter(&opts.share_group);
    let mut telemetry_filters = vec![
        topics::dc_health_filter(&opts.share_group),
        topics::dc_status_filter(),
    ];
    // The access keeper: its own thread, the answers routed to it, told
    // when the connection is up.
    // The keeper's view of the connection: its number once every
    // subscription is granted, 0 while it is not.
    let keeping = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut connections = 0u64;
    let (answers_tx, keeper_thread) = match keeper {
        Some(k) => {
            telemetry_filters.push(access::RESPONSE_TOPIC.to_owned());
            let (tx, rx) = std::sync::mpsc::channel();
            let mut ch = ControlChannel {
                client: client.clone(),
                answers: rx,
            };
            let (up, stop) = (keeping.clone(), stop.clone());
            let t = std::thread::Builder::new()
                .name("motcua-dc-access".into())
                .spawn(move || k.run(&mut ch, &up, &stop))?;
            (Some(tx), Some(t))
        }
        None => (None, None),
    };

    // Verifier threads take work from one queue; the store thread takes,
    // in arrival order, the slots their results land in. The order
    // queue's bound also bounds the work queue.
    let (work_tx, work_rx) = std::sync::mpsc::channel::<Work>();
    let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
    let mut verifier_threads = Vec::new();
    for (i, mut store) in verifiers.into_iter().enumerate() {
        let work_rx = work_rx.clone();
        verifier_threads.push(
            std::thread::Builder::new()
                .name(format!("motcua-dc-verify-{i}"))
                .spawn(move || {
                    let mut verifier = Verifier::default();
                    loop {
                        let next = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((topic, payload, done)) = next else {
                            return;
                        };
                        let checked = verifier.check(&mut *store, &topic, &payload, now());
                        if done.send(checked).is_err() {
                            return;
                        }
                    }
                })?,
        );
    }
    let pipelined = !verifier_threads.is_empty();
    enum Job {
        Direct(String, Vec<u8>),
        Checked(std::sync::mpsc::Receiver<Result<Checked, StoreError>>),
    }
    let (in_tx, mut in_rx) = mpsc::channel::<Job>(4096);
    // Jobs the store thread finished: the watchdog is fed only while it
    // keeps up (idle, or moving).
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done_by_store = done.clone();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Publish>();
    let worker = std::thread::Builder::new()
        .name("motcua-dc-store".into())
        .spawn(move || -> Result<Stats, StoreError> {
            let mut last_log = Instant::now();
            let mut logged = processor.stats();
            while let Some(job) = in_rx.blocking_recv() {
                let receipt = match job {
                    Job::Direct(topic, payload) => processor.handle(&topic, &payload, now())?,
                    Job::Checked(slot) => {
                        let checked = slot
                            .recv()
                            .map_err(|_| StoreError::Other("a verifier thread stopped".into()))??;
                        processor.commit(checked, now())?
                    }
                };
                done_by_store.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = receipt
                    && out_tx.send(p).is_err()
                {
                    break;
                }
                if last_log.elapsed() > Duration::from_secs(10) && processor.stats() != logged {
                    logged = processor.stats();
                    last_log = Instant::now();
                    tracing::info!(
                        stored = logged.stored,
                        duplicates = logged.duplicates,
                        held = logged.held,
                        alerts = logged.alerts,
                        receipts = logged.receipts,
                        "receiver totals"
                    );
                }
            }
            Ok(processor.stats())
        })?;

    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            while let Some(p) = out_rx.recv().await {
                // A receipt lost with the connection is harmless: the
                // counter resends and gets another.
                if client
                    .publish(p.topic, p.payload, PublishOptions::new(QoS::AtLeastOnce))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };

    let mut backoff = Backoff::new(Duration::from_millis(500), opts.reconnect_max);
    let mut ready = Some(ready);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut watchdog = motcua_common::notify::Watchdog::new(opts.watchdog);
    let (mut queued, mut seen_done) = (0u64, 0u64);
    let mut subscribed = false;
    let mut granted = 0usize;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let event = tokio::select! {
            e = eventloop.poll() => e,
            _ = tick.tick() => {
                let finished = done.load(Ordering::Relaxed);
                if finished == queued || finished != seen_done {
                    seen_done = finished;
                    watchdog.tick(|| {
                        format!(
                            "{}; {finished} messages handled",
                            if subscribed { "subscribed" } else { "connecting" }
                        )
                    });
                }
                continue;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                granted = 0;
                connections += 1;
                tracing::info!(broker = %opts.broker.url, %filter, "connected; subscribing");
                client.subscribe(filter.clone(), QoS::AtLeastOnce).await?;
                for f in &telemetry_filters {
                    client.subscribe(f.clone(), QoS::AtLeastOnce).await?;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure))
                {
                    // The broker's access list does not give this
                    // certificate name the receivers' rights.
                    tracing::error!(
                        broker = %opts.broker.url,
                        "the broker refused a subscription of this receiver: give its certificate name the receivers' role in the broker's access list ([broker] receivers, motcua-dc broker access) and check [broker] share_group"
                    );
                    continue;
                }
                granted += 1;
                // Every filter granted (the answers' among them): ready,
                // and the keeper may ask.
                if granted > telemetry_filters.len() {
                    subscribed = true;
                    keeping.store(connections, Ordering::Relaxed);
                    if let Some(r) = ready.take() {
                        r();
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p)))
                if p.topic == access::RESPONSE_TOPIC.as_bytes() =>
            {
                if let Some(tx) = &answers_tx {
                    let _ = tx.send(p.payload.to_vec());
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // MQTT topics are UTF-8 (brokers enforce it); anything else
                // keeps its bytes visible and is refused as a bad topic.
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                let job = if pipelined && !is_telemetry(&topic) {
                    let (done, slot) = std::sync::mpsc::sync_channel(1);
                    if work_tx.send((topic, p.payload.to_vec(), done)).is_err() {
                        break Err(anyhow::anyhow!("the verifier threads stopped"));
                    }
                    Job::Checked(slot)
                } else {
                    Job::Direct(topic, p.payload.to_vec())
                };
                if in_tx.send(job).await.is_err() {
                    break Err(anyhow::anyhow!("the store thread stopped"));
                }
                queued += 1;
            }
            Ok(_) => {}
            Err(e) => {
                subscribed = false;
                keeping.store(0, Ordering::Relaxed);
                let wait = backoff.next_wait();
                tracing::warn!(broker = %opts.broker.url, error = %e, "broker connection lost; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
            }
        }
    };
    drop(in_tx);
    drop(work_tx);
    let _ = client.disconnect().await;
    publisher.abort();
    let stats = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the store thread panicked"))??;
    for t in verifier_threads {
        let _ = t.join();
    }
    drop(answers_tx);
    if let Some(t) = keeper_thread {
        // It watches `stop`; when the loop ended for another reason, it
        // is told here.
        stop.store(true, Ordering::Relaxed);
        let _ = t.join();
    }
    result.map(|()| stats)
}
