//! Sync: the journal's unsynced envelopes to the DC over MQTT, and the DC's
//! signed receipts back into the store.
//!
//! The journal is the only source of truth. Nothing durable is left to MQTT
//! session state (rumqttc drops its queue when the broker has no session):
//! on every connection, and whenever receipts stop advancing for
//! `resend_after`, sending restarts just after the last receipted seq. A
//! PUBACK means nothing; a record is synced only when
//! [`WriterHandle::mark_synced_async`] accepts a receipt that verifies
//! against the pinned DC key and matches the stored envelope hash.
//!
//! Envelopes go out in seq order, up to `window` of them unreceipted at a
//! time, `batch` per MQTT message (a bundle, `motcua_protocol::bundle`).
//! Reconnection waits grow with full jitter up to `reconnect_max`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use motcua_common::config::BrokerConnection;
use motcua_common::mqtt::{self, Backoff};
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{DeviceId, bundle};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{mpsc, watch};

use crate::store::StoreError;
use crate::store::read::Reader;
use crate::store::writer::WriterHandle;

/// What sync needs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// This device.
    pub device: DeviceId,
    /// The database file (read for unsynced envelopes).
    pub db: PathBuf,
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
}

/// What sync reports about itself (for status displays and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    /// Connected to the broker.
    pub online: bool,
    /// Every seq up to this one is receipted.
    pub through: u64,
    /// Highest seq sent on the current connection.
    pub sent: u64,
    /// When the last valid receipt arrived (monotonic, not wall time).
    pub last_receipt: Option<std::time::Duration>,
    /// Receipts refused (bad signature, fork, wrong device...).
    pub refused_receipts: u64,
}

enum Net {
    Connected,
    Lost,
    Receipt(Vec<u8>),
}

/// Runs sync until `stop` completes. Fails only when the store fails.
pub async fn run(
    cfg: SyncConfig,
    writer: WriterHandle,
    state: watch::Sender<SyncState>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let client_id = cfg.device.to_string();
    let mut opts = mqtt::options(&cfg.broker, &client_id, cfg.keep_alive)?;
    let messages = cfg.window.div_ceil(cfg.batch).clamp(1, u16::MAX as usize);
    opts.set_inflight(messages as u16);
    let (client, mut eventloop) = AsyncClient::new(opts, messages + 16);
    let receipt_topic = topics::device_topic(&cfg.device, &Channel::Receipt);
    let up_topic = topics::device_topic(&cfg.device, &Channel::Up);

    let (net_tx, mut net) = mpsc::channel::<Net>(1024);
    let reconnect_max = cfg.reconnect_max;
    let broker = cfg.broker.url.to_string();
    let rt = receipt_topic.clone();
    let poller = tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_secs(1), reconnect_max);
        loop {
            let msg = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    Net::Connected
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == rt => {
                    Net::Receipt(p.payload.to_vec())
                }
                Ok(_) => continue,
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(%broker, error = %e, "no connection to the DC broker; retrying in {:.1}s", wait.as_secs_f32());
                    if net_tx.send(Net::Lost).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            if net_tx.send(msg).await.is_err() {
                return;
            }
        }
    });

    let reader = Reader::open(&cfg.db)?;
    let mut through = reader.receipted_through()?;
    let mut sent = through;
    let mut online = false;
    let mut progress = Instant::now();
    let started = Instant::now();
    let mut refused = 0u64;
    let mut last_receipt = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = net.recv() => match ev {
                None => anyhow::bail!("the MQTT event loop stopped"),
                Some(Net::Connected) => {
                    tracing::info!(broker = %cfg.broker.url, through, "connected to the DC broker; sending from seq {}", through + 1);
                    online = true;
                    client.subscribe(receipt_topic.clone(), QoS::AtLeastOnce).await?;
                    sent = through;
                    progress = Instant::now();
                }
                Some(Net::Lost) => {
                    online = false;
                }
                Some(Net::Receipt(bytes)) => {
                    match writer.mark_synced_async(bytes, cfg.dc_key).await {
                        Ok(s) => {
                            last_receipt = Some(started.elapsed());
                            if s.through > through {
                                through = s.through;
                                progress = Instant::now();
                                if s.newly > 0 {
                                    tracing::debug!(through, newly = s.newly, "receipt");
                                }
                            }
                            sent = sent.max(through);
                        }
                        Err(e @ (StoreError::Receipt(_) | StoreError::Fork { .. })) => {
                            refused += 1;
                            tracing::warn!(error = %e, "receipt refused");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            },
            _ = tick.tick() => {
                if online && sent > through && progress.elapsed() > cfg.resend_after {
                    tracing::warn!(through, sent, "no receipt for {:?}; sending again from seq {}", cfg.resend_after, through + 1);
                    sent = through;
                    progress = Instant::now();
                }
            }
        }
        if online {
            sent = fill(&cfg, &reader, &client, &up_topic, through, sent).await?;
        }
        state.send_replace(SyncState {
            online,
            through,
            sent,
            last_receipt,
            refused_receipts: refused,
        });
    }
    let _ = client.disconnect().await;
    poller.abort();
    Ok(())
}

/// Publishes unsynced envelopes after `sent` while the window has room;
/// returns the new highest seq sent.
async fn fill(
    cfg: &SyncConfig,
    reader: &Reader,
    client: &AsyncClient,
    topic: &str,
    through: u64,
    mut sent: u64,
) -> anyhow::Result<u64> {
    loop {
        let room = cfg.window.saturating_sub((sent - through) as usize);
        if room == 0 {
            return Ok(sent);
        }
        let pending = reader.unsynced(sent, room.min(cfg.batch))?;
        if pending.is_empty() {
            return Ok(sent);
        }
        // Keep each bundle within the protocol's byte limit.
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
            client
                .publish(topic, QoS::AtLeastOnce, false, bundle::join(&envelopes))
                .await?;
            sent = part[part.len() - 1].seq;
            start = end;
        }
    }
}
