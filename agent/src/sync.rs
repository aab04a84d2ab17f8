//! Sync: the journal's unsynced envelopes to the DC over MQTT, and the DC's
//! signed receipts back into the store.
//!
//! The journal is the only source of truth. Nothing durable is left to MQTT
//! session state (rumqttc drops its queue when the broker has no session):
//! on every connection, and whenever receipts stop advancing for
//! `resend_after`, sending restarts just after the last receipted seq. A
//! PUBACK means nothing; a record is synced only when
//! [`WriterHandle::accept_receipt_async`] accepts a receipt that verifies
//! against the pinned DC key and matches the stored envelope hash.
//!
//! Envelopes go out in seq order, up to `window` of them unreceipted at a
//! time, `batch` per MQTT message (a bundle, `motcua_protocol::bundle`).
//! Reconnection waits grow with full jitter up to `reconnect_max`.
//!
//! Presence: every connection carries a retained last will, `offline` on
//! the device's `status` topic, and publishes `online` there once
//! connected; a clean stop publishes `offline` itself. While connected, a
//! health report ([`crate::health`]) goes out at once and then every
//! `health_interval`, at QoS 0.
//!
//! # Layout
//! - `motcua_counter::sync`: every decision above, as a state machine
//!   without I/O fed events and the time (`Machine`).
//! - this module: the shell. [`run`] owns the MQTT connection, the store's
//!   reader and writer handle, downstream, the health probe and systemd's
//!   watchdog, and only carries out the machine's actions.

use std::future::Future;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use motcua_common::config::BrokerConnection;
use motcua_common::mqtt::{self, Backoff};
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{DeviceId, Presence, UnitCode, UtcTime, bundle};
use rumqttc::{
    AsyncClient, LastWill, Outgoing, Packet, PublishOptions, QoS, SubscribeFilterInput,
    SubscribeReasonCode,
};
use rustls::pki_types::UnixTime;
use tokio::sync::{mpsc, watch};

use crate::health::Probe;
use motcua_counter::clock::{Clock, DC_MAX_EXCHANGE, DcClock};
use motcua_counter::downstream::{Downstream, Outcome};
use motcua_counter::state_dir::StateDir;
use motcua_counter::store::read::Reader;
use motcua_counter::store::writer::WriterHandle;

pub use motcua_counter::sync::SyncState;
use motcua_counter::sync::{Action, DownOutcome, Event, Limits, Machine, Replace, Sent};

/// What sync needs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// This device.
    pub device: DeviceId,
    /// Its receiving unit (in health reports).
    pub unit: UnitCode,
    /// The state directory: its database is read for unsynced envelopes,
    /// its file system's free space goes into health reports.
    pub state_dir: StateDir,
    /// The broker.
    pub broker: BrokerConnection,
    /// The DC's receipt key.
    pub dc_key: VerifyingKey,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// Most envelopes sent and not yet receipted.
    pub window: usize,
    /// Most envelopes per MQTT message.
    pub batch: usize,
    /// Without a new receipt for this long, send again from the last one.
    pub resend_after: Duration,
    /// Ping systemd's watchdog from the loop (`motcua run` under a
    /// `WatchdogSec=` unit).
    pub watchdog: bool,
    /// The clock health reports and receipt times are read from; it learns
    /// the DC's time from receipts when the system clock is not
    /// synchronised (shared with the store's writer and the kiosk).
    pub clock: DcClock,
    /// How often a health report goes out while connected.
    pub health_interval: Duration,
}

/// What a connection's poller reports, tagged with its generation.
enum Net {
    /// A new connection (or subscriptions let in at last): when.
    Connected(Instant),
    Lost,
    Receipt(Vec<u8>),
    Down(String, Vec<u8>),
}

/// Runs sync until `stop` completes. Fails only when the store fails.
///
/// The decisions are [`Machine`]'s; this loop turns what happens (the
/// connection's events, a 100 ms tick, `stop`) into [`Event`]s and has
/// the shell carry out the [`Action`]s it gets back.
pub async fn run(
    cfg: SyncConfig,
    writer: WriterHandle,
    state: watch::Sender<SyncState>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let db = cfg.state_dir.db();
    let probe = Probe::new(cfg.device.clone(), cfg.unit.clone(), cfg.state_dir.clone());
    let down = Downstream::open(
        &db,
        cfg.device.clone(),
        cfg.dc_key,
        writer.clone(),
        cfg.health_interval,
    )?;
    let health_interval = down.health_interval()?;
    let reader = Reader::open(&db)?;
    let limits = Limits {
        window: cfg.window,
        batch: cfg.batch,
        resend_after: cfg.resend_after,
    };
    let mut machine = Machine::new(
        limits,
        health_interval,
        reader.receipted_through()?,
        Instant::now(),
    );
    let (net_tx, mut net) = mpsc::channel::<(u64, Net)>(1024);
    let conn = Connection::open(
        &cfg,
        machine.generation(),
        net_tx.clone(),
        tls_floor(&reader, &cfg.dc_key),
    )?;
    let mut shell = Shell {
        up_topic: topics::device_topic(&cfg.device, &Channel::Up),
        status_topic: topics::device_topic(&cfg.device, &Channel::Status),
        health_topic: topics::device_topic(&cfg.device, &Channel::Health),
        cfg,
        writer,
        reader,
        down,
        probe,
        conn,
        net_tx,
        last_receipt_at: None,
        time_asked: None,
        latest_dc_at: None,
    };
    shell.latest_dc_at = last_receipt_at(&shell.reader, &shell.cfg.dc_key);
    let mut watchdog = motcua_common::notify::Watchdog::new(shell.cfg.watchdog);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            _ = &mut stop => Event::Stop,
            ev = net.recv() => match ev {
                None => anyhow::bail!("the MQTT event loop stopped"),
                Some((generation, Net::Connected(at))) => {
                    // Any receipt on this connection was signed after it
                    // was set up: the first one bounds the DC's time.
                    shell.time_asked = Some(at);
                    Event::Connected { generation }
                }
                Some((generation, Net::Lost)) => Event::Lost { generation },
                Some((generation, Net::Receipt(bytes))) => Event::Receipt { generation, bytes },
                Some((generation, Net::Down(topic, payload))) => {
                    Event::Down { generation, topic, payload }
                }
            },
            _ = tick.tick() => {
                // The loop turns, and the store answered its last read and
                // receipt: tell systemd the agent is alive.
                let s = machine.state();
                watchdog.tick(|| {
                    format!(
                        "{}; receipted through seq {}",
                        if s.online { "online" } else { "offline" },
                        s.through,
                    )
                });
                shell.ask_time_again(machine.generation())?;
                Event::Tick
            }
        };
        machine.handle(event, Instant::now());
        while let Some(action) = machine.poll_action(Instant::now()) {
            if matches!(action, Action::Leave) {
                shell.leave().await;
                return Ok(());
            }
            if let Some(answer) = shell.perform(action, &machine.state()).await? {
                machine.handle(answer, Instant::now());
            }
        }
        state.send_replace(machine.state());
    }
}

/// What carries out the machine's actions: the connection, the store's
/// reader and writer handle, downstream and the health probe.
struct Shell {
    cfg: SyncConfig,
    writer: WriterHandle,
    reader: Reader,
    down: Downstream,
    probe: Probe,
    conn: Connection,
    /// Handed to every new connection's poller.
    net_tx: mpsc::Sender<(u64, Net)>,
    up_topic: String,
    status_topic: String,
    health_topic: String,
    /// Wall time of the last valid receipt, for health reports.
    last_receipt_at: Option<UtcTime>,
    /// When the current connection was set up, until its first valid
    /// receipt teaches the clock the DC's time.
    time_asked: Option<Instant>,
    /// The latest signing time of a valid receipt seen: an older receipt
    /// (replayed on the receipt topic) teaches nothing.
    latest_dc_at: Option<UtcTime>,
}

impl Shell {
    /// Carries out `action` (any but [`Action::Leave`]) for a machine in
    /// state `state`; returns the machine's answer, if the action has one.
    /// Fails only when the store fails or a connection cannot be set up.
    async fn perform(
        &mut self,
        action: Action,
        state: &SyncState,
    ) -> anyhow::Result<Option<Event>> {
        Ok(match action {
            Action::Announce => self.announce(state.through),
            Action::ApplyReceipt(bytes) => Some(self.apply_receipt(bytes, state.through).await?),
            Action::ApplyDown { topic, payload } => {
                Some(Event::DownApplied(self.apply_down(&topic, &payload).await?))
            }
            Action::ReportHealth => Some(self.report_health(state.refused_down)?),
            Action::Send { after, max } => Some(Event::Sent(send(
                &self.reader,
                &self.conn.client,
                &self.up_topic,
                after,
                max,
            )?)),
            Action::Resend { through, sent } => {
                tracing::warn!(
                    through,
                    sent,
                    "no receipt for {:?}; sending again from seq {} on the same connection",
                    self.cfg.resend_after,
                    through + 1
                );
                None
            }
            Action::Replace { generation, why } => {
                let Replace::AnnounceFailed = why;
                let floor = tls_floor(&self.reader, &self.cfg.dc_key);
                self.conn
                    .replace(&self.cfg, generation, self.net_tx.clone(), floor)?;
                None
            }
            // `run` does this itself: it ends the shell.
            Action::Leave => None,
        })
    }

    /// `online` (retained) on the status topic and the subscriptions.
    fn announce(&self, through: u64) -> Option<Event> {
        tracing::info!(broker = %self.cfg.broker.url, through, "connected to the DC broker; sending from seq {}", through + 1);
        let client = &self.conn.client;
        let presence = client.try_publish(
            self.status_topic.as_str(),
            Presence::Online.as_bytes(),
            PublishOptions::new(QoS::AtLeastOnce).retained(),
        );
        // One SUBSCRIBE, so one SUBACK tells whether the broker lets this
        // certificate in.
        let subscribed = client
            .try_subscribe_many(
                topics::agent_filters(&self.cfg.device)
                    .into_iter()
                    .map(|f| SubscribeFilterInput::new(f, QoS::AtLeastOnce)),
            )
            .is_ok();
        if presence.is_err() || !subscribed {
            tracing::warn!("could not queue the receipt subscription; reconnecting");
            return Some(Event::AnnounceFailed);
        }
        self.ask_time(through);
        None
    }

    /// Without a synchronised clock, sends the last receipted envelope
    /// again: the DC stores nothing new and answers with a receipt signed
    /// now, from which the clock learns the DC's time even when nothing is
    /// waiting to be sent.
    fn ask_time(&self, through: u64) {
        if through == 0 || self.cfg.clock.system().now().synced() {
            return;
        }
        match self.reader.envelope(through) {
            Ok(Some(envelope)) => {
                let _ = self.conn.client.try_publish(
                    self.up_topic.as_str(),
                    bundle::join(&[envelope.as_slice()]),
                    PublishOptions::new(QoS::AtLeastOnce),
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading the last receipted envelope"),
        }
    }

    /// Without a synchronised clock or a lesson, and no receipt within
    /// [`DC_MAX_EXCHANGE`] of connecting (the envelope sent to ask was lost:
    /// no receiver subscribed at that moment, say), connects again: only a
    /// new connection bounds when the next receipt was signed.
    fn ask_time_again(&mut self, generation: u64) -> anyhow::Result<()> {
        let Some(asked) = self.time_asked else {
            return Ok(());
        };
        if asked.elapsed() <= DC_MAX_EXCHANGE {
            return Ok(());
        }
        self.time_asked = None;
        let clock = &self.cfg.clock;
        if clock.system().now().synced() || clock.lesson().is_some() {
            return Ok(());
        }
        tracing::info!(
            "no receipt to learn the DC's time from within {}s of connecting; connecting again to ask",
            DC_MAX_EXCHANGE.as_secs()
        );
        let floor = tls_floor(&self.reader, &self.cfg.dc_key);
        self.conn
            .replace(&self.cfg, generation, self.net_tx.clone(), floor)
    }

    /// Learns the DC's time from a verified receipt signed at `dc_at` on a
    /// connection set up at `asked`; keeps the lesson for `doctor`. Whether
    /// it taught anything.
    fn learn_time(&self, dc_at: UtcTime, asked: Instant) -> bool {
        let answered = Instant::now();
        let clock = &self.cfg.clock;
        let system = clock.system().now();
        if !clock.learn(dc_at.get(), asked, answered) {
            tracing::debug!(
                exchange_ms = answered.duration_since(asked).as_millis() as u64,
                "receipt not used for the DC's time (too slow, or less precise than what is held)"
            );
            return false;
        }
        let Some(dc) = clock.lesson() else {
            return false;
        };
        if !system.synced() {
            tracing::info!(
                bound_ms = dc.bound_ms,
                system_off_s = dc.system_offset.whole_seconds(),
                "no synchronised clock: records are stamped with the DC's time from its receipts"
            );
        }
        if let Some(saved) = crate::health::boot().and_then(|b| clock.saved(&b)) {
            let path = self.cfg.state_dir.clock_lesson();
            let written = serde_json::to_vec(&saved)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| {
                    motcua_common::atomic::write(
                        &path,
                        &bytes,
                        0o644,
                        motcua_common::atomic::Overwrite::Allow,
                    )
                    .map_err(anyhow::Error::from)
                });
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not keep the DC time lesson for doctor");
            }
        }
        true
    }

    /// Hands a receipt to the writer, which alone decides what is synced.
    async fn apply_receipt(&mut self, bytes: Vec<u8>, through: u64) -> anyhow::Result<Event> {
        match self
            .writer
            .accept_receipt_async(bytes, self.cfg.dc_key)
            .await?
        {
            Ok(s) => {
                // Every receipt on this connection was signed after it was
                // set up; until one teaches the time, each may, unless it
                // is older than one already seen (a replay).
                let fresh = self.latest_dc_at.is_none_or(|l| s.dc_at >= l);
                if fresh {
                    self.latest_dc_at = Some(s.dc_at);
                }
                if fresh
                    && let Some(asked) = self.time_asked
                    && self.learn_time(s.dc_at, asked)
                {
                    self.time_asked = None;
                }
                self.last_receipt_at = Some(UtcTime::new(self.cfg.clock.now().at));
                if s.through > through && s.newly > 0 {
                    tracing::debug!(through = s.through, newly = s.newly, "receipt");
                }
                Ok(Event::ReceiptApplied { through: s.through })
            }
            // A receipt that does not verify or does not match the journal:
            // counted, never applied.
            Err(refusal) => {
                tracing::warn!(error = %refusal, "receipt refused");
                Ok(Event::ReceiptRefused)
            }
        }
    }

    /// Verifies and applies a message from the DC.
    async fn apply_down(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<DownOutcome> {
        let now = UtcTime::new(self.cfg.clock.now().at);
        Ok(match self.down.handle(topic, payload, &now).await? {
            Outcome::Refused { reason, detail } => {
                tracing::warn!(%topic, reason, %detail, len = payload.len(), "message from the DC refused; nothing of it applied");
                DownOutcome::Refused
            }
            Outcome::Settings {
                seq,
                health_interval,
            } => {
                tracing::info!(seq, ?health_interval, "settings from the DC applied");
                DownOutcome::Settings { health_interval }
            }
            Outcome::Catalogue { version } => {
                tracing::info!(version, "catalogue from the DC cached");
                DownOutcome::Applied
            }
            Outcome::Units { version } => {
                tracing::info!(version, "units' names and places from the DC cached");
                DownOutcome::Applied
            }
            Outcome::Updates {
                seq,
                applied,
                already,
                conflicts,
                unknown,
            } => {
                tracing::info!(
                    seq,
                    applied,
                    already,
                    conflicts,
                    unknown,
                    "status updates from the DC gone through"
                );
                DownOutcome::Applied
            }
            Outcome::Seen | Outcome::Ignored => DownOutcome::Unchanged,
        })
    }

    /// Makes a health report and publishes it at QoS 0.
    fn report_health(&mut self, refused_down: u64) -> anyhow::Result<Event> {
        let report = self.probe.report(
            &self.cfg.clock,
            &self.reader,
            self.last_receipt_at,
            self.down.applied()?,
            refused_down,
        )?;
        // QoS 0: a report lost is replaced by the next one.
        if self
            .conn
            .client
            .try_publish(
                self.health_topic.as_str(),
                report.to_bytes(),
                PublishOptions::new(QoS::AtMostOnce),
            )
            .is_err()
        {
            tracing::debug!("health report not queued (the client's queue is full)");
        }
        Ok(Event::HealthReported {
            backlog: report.unsynced > 0,
        })
    }

    /// A clean stop of the current connection.
    async fn leave(self) {
        self.conn.stop(&self.status_topic).await;
    }
}

/// One MQTT connection: the client, and the task polling its event loop
/// (which reconnects with backoff by itself). Replaced whole only when the
/// announcement cannot be queued; a stall resends on it.
struct Connection {
    client: AsyncClient,
    poller: tokio::task::JoinHandle<()>,
}

impl Connection {
    fn open(
        cfg: &SyncConfig,
        generation: u64,
        net: mpsc::Sender<(u64, Net)>,
        floor: Option<UnixTime>,
    ) -> anyhow::Result<Connection> {
        let mut opts =
            mqtt::options_with_floor(&cfg.broker, cfg.device.as_str(), cfg.keep_alive, floor)?;
        // The broker publishes this for us when the connection drops
        // without a DISCONNECT: the DC sees the counter go.
        opts.set_last_will(LastWill::new(
            topics::device_topic(&cfg.device, &Channel::Status),
            Presence::Offline.as_bytes(),
            QoS::AtLeastOnce,
            true,
        ));
        let messages = cfg.window.div_ceil(cfg.batch).clamp(1, u16::MAX as usize);
        opts.set_inflight(messages as u16);
        let (client, mut eventloop) = AsyncClient::builder(opts).capacity(messages + 16).build();
        let receipt_topic = topics::device_topic(&cfg.device, &Channel::Receipt);
        let reconnect_max = cfg.reconnect_max;
        let broker = cfg.broker.url.to_string();
        let (resubscribe, device) = (client.clone(), cfg.device.clone());
        let poller = tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_secs(1), reconnect_max);
            // Refused subscriptions in a row: asked again after 5, 10, 20,
            // 40, then every 60 seconds, by one task at a time.
            let mut refused: u32 = 0;
            let mut asking: Option<tokio::task::JoinHandle<()>> = None;
            loop {
                let msg = match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                        backoff.reset();
                        // A new connection subscribes anew (announce).
                        if let Some(t) = asking.take() {
                            t.abort();
                        }
                        Net::Connected(Instant::now())
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(ack)))
                        if ack
                            .return_codes
                            .iter()
                            .any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
                    {
                        // The broker's access list does not (yet) name this
                        // certificate: a counter not enrolled at the DC, or
                        // revoked. Asked again after a while, on the same
                        // connection; records wait in the journal.
                        let wait = Duration::from_secs((5u64 << refused.min(4)).min(60));
                        refused += 1;
                        tracing::error!(%broker, %device, "the broker refused this counter's subscriptions: its certificate name is not in the broker's access list (is {device} enrolled at the DC, and not revoked?); asking again in {:.0}s", wait.as_secs_f32());
                        let (c, d) = (resubscribe.clone(), device.clone());
                        if let Some(t) = asking.take() {
                            t.abort();
                        }
                        // Waits for room in the client's queue rather than
                        // giving up when a backlog fills it.
                        asking = Some(tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            let _ = c
                                .subscribe_many(
                                    topics::agent_filters(&d)
                                        .into_iter()
                                        .map(|f| SubscribeFilterInput::new(f, QoS::AtLeastOnce)),
                                )
                                .await;
                        }));
                        continue;
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) if refused > 0 => {
                        // Let in at last (the DC has just added this counter
                        // to the broker's access list): what was published
                        // before was dropped by the broker, so start again as
                        // on a new connection: announce, report, resend.
                        refused = 0;
                        tracing::info!(%broker, "the broker now accepts this counter's subscriptions");
                        Net::Connected(Instant::now())
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => continue,
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p)))
                        if p.topic == receipt_topic.as_bytes() =>
                    {
                        Net::Receipt(p.payload.to_vec())
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                        // Topics are UTF-8 by MQTT's rules; one that is not
                        // matches nothing we subscribed to and is refused
                        // downstream by its (lossy) name.
                        Net::Down(
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            p.payload.to_vec(),
                        )
                    }
                    // A clean stop: nothing more to poll.
                    Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => continue,
                    Err(e) => {
                        let wait = backoff.next_wait();
                        tracing::warn!(%broker, error = %e, "no connection to the DC broker; retrying in {:.1}s", wait.as_secs_f32());
                        if net.send((generation, Net::Lost)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                };
                if net.send((generation, msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Connection { client, poller })
    }

    /// Drops this connection (and everything queued on it) and opens
    /// connection `generation`.
    fn replace(
        &mut self,
        cfg: &SyncConfig,
        generation: u64,
        net: mpsc::Sender<(u64, Net)>,
        floor: Option<UnixTime>,
    ) -> anyhow::Result<()> {
        self.close();
        *self = Connection::open(cfg, generation, net, floor)?;
        Ok(())
    }

    fn close(&self) {
        let _ = self.client.try_disconnect();
        self.poller.abort();
    }

    /// A clean stop: `offline` on the status topic (retained), and only
    /// once the broker has acknowledged it, DISCONNECT (which makes the
    /// broker discard the last will). When `offline` cannot be queued or is
    /// not acknowledged within two seconds (a full window while a backlog
    /// drains), the connection is dropped without DISCONNECT instead, so
    /// the broker publishes the last will, `offline`, itself. Either way
    /// the DC sees the counter go.
    async fn stop(self, status_topic: &str) {
        let abort = self.poller.abort_handle();
        let offline_said = match self.client.try_publish_tracked(
            status_topic,
            Presence::Offline.as_bytes(),
            PublishOptions::new(QoS::AtLeastOnce).retained(),
        ) {
            Ok(notice) => {
                tokio::time::timeout(Duration::from_secs(2), notice.wait_completion_async())
                    .await
                    .is_ok_and(|acked| acked.is_ok())
            }
            Err(_) => false,
        };
        if !offline_said {
            abort.abort();
            return;
        }
        let _ = self.client.try_disconnect_now();
        if tokio::time::timeout(Duration::from_secs(2), self.poller)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// The DC's last receipt's signing time: the time is at least that, whatever
/// a box without a battery-backed clock reads after a power cut, so the
/// broker's certificate is checked at no earlier a time
/// ([`mqtt::options_with_floor`]).
fn tls_floor(reader: &Reader, dc_key: &VerifyingKey) -> Option<UnixTime> {
    let at = last_receipt_at(reader, dc_key)?;
    u64::try_from(at.get().unix_timestamp())
        .ok()
        .map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
}

/// The signing time of the DC's last receipt kept in the store (verified
/// again with the DC's key).
fn last_receipt_at(reader: &Reader, dc_key: &VerifyingKey) -> Option<UtcTime> {
    let bytes = reader.last_receipt().ok()??;
    Some(
        motcua_protocol::verify::<motcua_protocol::Receipt>(&bytes, dc_key)
            .ok()?
            .message
            .at,
    )
}

/// Publishes up to `max` unsynced envelopes after seq `after`, in bundles
/// within the protocol's byte limit, while the client's queue takes them.
/// Never waits: what does not fit now goes on a later pass.
fn send(
    reader: &Reader,
    client: &AsyncClient,
    topic: &str,
    after: u64,
    max: usize,
) -> anyhow::Result<Sent> {
    let pending = reader.unsynced(after, max)?;
    let mut last = None;
    let mut start = 0;
    while start < pending.len() {
        let mut end = start + 1;
        while end < pending.len()
            && bundle::bundle_len(pending[start..=end].iter().map(|p| p.envelope.len()))
                <= bundle::MAX_BUNDLE_BYTES
        {
            end += 1;
        }
        let part = &pending[start..end];
        let envelopes: Vec<&[u8]> = part.iter().map(|p| p.envelope.as_slice()).collect();
        if client
            .try_publish(
                topic,
                bundle::join(&envelopes),
                PublishOptions::new(QoS::AtLeastOnce),
            )
            .is_err()
        {
            // The queue is full (the broker is slow to acknowledge): try
            // again on the next pass.
            return Ok(Sent::QueueFull { last });
        }
        last = Some(part[part.len() - 1].seq);
        start = end;
    }
    Ok(match last {
        Some(last) => Sent::All { last },
        None => Sent::Nothing,
    })
}
