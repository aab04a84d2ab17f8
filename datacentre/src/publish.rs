//! `motcua-dc publish`: what the DC sends down to counters
//! (`motcua_protocol::down`), signed with the receipt key, kept in the
//! database (so numbers only grow and `publish again` can restore a
//! broker's retained messages) and published retained at QoS 1.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use motcua_common::config::BrokerConnection;
use motcua_common::mqtt;
use motcua_protocol::down::{
    CalendarDay, Catalogue, MAX_STATUS_UPDATES, Procedure, Settings, StatusUpdate, StatusUpdates,
    Unit, Units,
};
use motcua_protocol::topics::{self, Channel};
use motcua_protocol::{DeviceId, FORMAT_VERSION, Health, UtcTime, sign};
use rumqttc::{AsyncClient, Event, Packet, PublishOptions, QoS};
use serde::Deserialize;

use crate::store::{PendingUpdate, Store};

/// A signed message ready to publish.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Its topic.
    pub topic: String,
    /// Its number (catalogue version or seq).
    pub number: u64,
    /// The COSE bytes.
    pub bytes: Vec<u8>,
}

/// The catalogue file: the same JSON as the counter's `motcua reference
/// import` (docs/DOSSIER-INPUT.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    version: u64,
    procedures: Vec<Procedure>,
    #[serde(default)]
    holidays: Vec<CalendarDay>,
    #[serde(default)]
    workdays: Vec<CalendarDay>,
}

/// Keeps `bytes` as the newest on `topic`, refusing a number that is not
/// higher than the kept one.
fn keep(
    store: &mut dyn Store,
    topic: String,
    number: u64,
    bytes: Vec<u8>,
    now: &UtcTime,
) -> Result<Signed> {
    let s = Signed {
        topic,
        number,
        bytes,
    };
    if !store.down_put(&s.topic, s.number, &s.bytes, now)? {
        bail!(
            "{} already has number {} or higher: publish a higher one",
            s.topic,
            s.number
        );
    }
    Ok(s)
}

fn next_number(store: &mut dyn Store, topic: &str) -> Result<u64> {
    Ok(store.down_last(topic)?.map_or(0, |(n, _)| n) + 1)
}

fn enrolled(store: &mut dyn Store, device: &DeviceId) -> Result<()> {
    match store.device(device)? {
        Some(d) if d.revoked_at.is_none() => Ok(()),
        Some(_) => bail!("{device} is revoked"),
        None => bail!("{device} is not enrolled"),
    }
}

/// Signs and keeps the catalogue in `json` (its version must be higher
/// than the last one published).
pub fn catalogue(
    store: &mut dyn Store,
    key: &SigningKey,
    json: &[u8],
    now: &UtcTime,
) -> Result<Signed> {
    let f: CatalogueFile = serde_json::from_slice(json).context("reading the catalogue JSON")?;
    let topic = topics::broadcast_topic(topics::CATALOGUE);
    if let Some((last, _)) = store.down_last(&topic)?
        && f.version <= last
    {
        bail!(
            "catalogue version {} refused: version {last} is already published; give it a higher version",
            f.version
        );
    }
    let c = Catalogue {
        v: FORMAT_VERSION,
        version: f.version,
        issued_at: *now,
        procedures: f.procedures,
        holidays: f.holidays,
        workdays: f.workdays,
    };
    let bytes = sign(&c, key).context("signing the catalogue")?;
    keep(store, topic, c.version, bytes, now)
}

/// The units file: `{"version": N, "units": [{"code", "name", "place"}]}`
/// (docs/DOSSIER-INPUT.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    version: u64,
    units: Vec<Unit>,
}

/// Signs and keeps the receiving units' names and places in `json` (its
/// version must be higher than the last one published).
pub fn units(
    store: &mut dyn Store,
    key: &SigningKey,
    json: &[u8],
    now: &UtcTime,
) -> Result<Signed> {
    let f: UnitsFile = serde_json::from_slice(json).context("reading the units JSON")?;
    let topic = topics::broadcast_topic(topics::UNITS);
    if let Some((last, _)) = store.down_last(&topic)?
        && f.version <= last
    {
        bail!(
            "units version {} refused: version {last} is already published; give it a higher version",
            f.version
        );
    }
    let u = Units {
        v: FORMAT_VERSION,
        version: f.version,
        issued_at: *now,
        units: f.units,
    };
    let bytes = sign(&u, key).context("signing the units")?;
    keep(store, topic, u.version, bytes, now)
}

/// The units' names as last published, by code: what the dashboard shows
/// beside a unit code. Empty when none was published.
pub fn unit_names(
    store: &mut dyn Store,
    dc_key: &ed25519_dalek::VerifyingKey,
) -> Result<std::collections::BTreeMap<String, String>> {
    let Some((_, bytes)) = store.down_last(&topics::broadcast_topic(topics::UNITS))? else {
        return Ok(Default::default());
    };
    // Checked again as a counter would: a list signed by another key
    // (the receipt key replaced since) names nothing.
    Ok(motcua_protocol::verify::<Units>(&bytes, dc_key)
        .map(|v| v.message.units)
        .unwrap_or_default()
        .into_iter()
        .map(|u| (u.code, u.name))
        .collect())
}

/// The highest update id `device` reported going through, from its
/// latest health report.
fn reported_through(store: &mut dyn Store, device: &DeviceId) -> Result<u64> {
    Ok(store
        .states()?
        .into_iter()
        .find(|s| s.device == *device)
        .and_then(|s| s.health)
        .and_then(|h| Health::parse(&h, device).ok())
        .map_or(0, |h| h.updates_through))
}

/// Queues `update` for `device` (unless `update` is `None`: then only
/// republishes what is pending) and signs the device's pending list anew.
pub fn status(
    store: &mut dyn Store,
    key: &SigningKey,
    device: &DeviceId,
    update: Option<PendingUpdate>,
    now: &UtcTime,
) -> Result<(Signed, usize)> {
    enrolled(store, device)?;
    if let Some(u) = update {
        if !(1..=10).contains(&u.status) {
            bail!(
                "status {} is not a national status value (1 to 10)",
                u.status
            );
        }
        store.add_update(device, &u)?;
    }
    let through = reported_through(store, device)?;
    let pending = store.updates(device, through, MAX_STATUS_UPDATES as u32)?;
    let topic = topics::device_topic(device, &Channel::Down(topics::DOWN_STATUS.into()));
    let seq = next_number(store, &topic)?;
    let updates = pending
        .iter()
        .map(|p| {
            Ok(StatusUpdate {
                id: p.id,
                code: p.code.clone(),
                status: p.status,
                at: p.at,
                by: p.by.clone(),
                note: p.note.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let n = updates.len();
    let msg = StatusUpdates {
        v: FORMAT_VERSION,
        device: device.clone(),
        seq,
        issued_at: *now,
        updates,
    };
    let bytes = sign(&msg, key).context("signing the status updates")?;
    Ok((keep(store, topic, seq, bytes, now)?, n))
}

/// Signs `device`'s settings: `health_interval` overrides its configured
/// interval; `None` gives the decision back to its configuration.
pub fn settings(
    store: &mut dyn Store,
    key: &SigningKey,
    device: &DeviceId,
    health_interval: Option<Duration>,
    now: &UtcTime,
) -> Result<Signed> {
    enrolled(store, device)?;
    if let Some(d) = health_interval
        && !(10..=3600).contains(&d.as_secs())
    {
        bail!("a health interval is 10s to 1h");
    }
    let topic = topics::device_topic(device, &Channel::Down(topics::DOWN_SETTINGS.into()));
    let seq = next_number(store, &topic)?;
    let msg = Settings {
        v: FORMAT_VERSION,
        device: device.clone(),
        seq,
        issued_at: *now,
        health_interval_s: health_interval.map(|d| d.as_secs()),
    };
    let bytes = sign(&msg, key).context("signing the settings")?;
    keep(store, topic, seq, bytes, now)
}

/// Publishes `messages` retained at QoS 1 and waits for the broker to
/// acknowledge each (at most `limit` in all).
pub async fn send(broker: &BrokerConnection, messages: &[Signed], limit: Duration) -> Result<()> {
    let id = format!("motcua-dc-publish-{:08x}", mqtt::random_u64() as u32);
    let opts = mqtt::options(broker, &id, Duration::from_secs(30))?;
    let (client, mut events) = AsyncClient::builder(opts)
        .capacity(messages.len() + 10)
        .build();
    let work = async {
        let mut acked = 0;
        let mut sent = false;
        while acked < messages.len() {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) if !sent => {
                    sent = true;
                    for m in messages {
                        client
                            .publish(
                                m.topic.as_str(),
                                m.bytes.clone(),
                                PublishOptions::new(QoS::AtLeastOnce).retained(),
                            )
                            .await?;
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => bail!("the broker {}: {e}", broker.url),
            }
        }
        let _ = client.disconnect().await;
        // Let the DISCONNECT go out.
        let _ = tokio::time::timeout(Duration::from_millis(500), events.poll()).await;
        Ok(())
    };
    tokio::time::timeout(limit, work).await.with_context(|| {
        format!(
            "no acknowledgement from the broker {} in {limit:?}",
            broker.url
        )
    })?
}
