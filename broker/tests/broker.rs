//! The embedded broker with real MQTT clients (rumqttc): QoS 1
//! acknowledgement, plain and shared subscriptions, retained messages, last
//! wills, and a port chosen by the OS.

use std::time::Duration;

use motcua_broker::EmbeddedBroker;
use rumqttc::{
    AsyncClient, Broker, Event, EventLoop, LastWill, MqttOptions, Packet, PublishOptions, QoS,
};
use tokio::time::timeout;

async fn client(
    broker: &EmbeddedBroker,
    id: &str,
    will: Option<LastWill>,
) -> (AsyncClient, EventLoop) {
    let addr = broker.addr();
    let mut o = MqttOptions::new(id, Broker::tcp(addr.ip().to_string(), addr.port()));
    o.set_keep_alive(5);
    if let Some(w) = will {
        o.set_last_will(w);
    }
    let (c, mut el) = AsyncClient::builder(o).capacity(100).build();
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = el.poll().await.expect("connects") {
            return (c, el);
        }
    }
}

async fn subscribe(c: &AsyncClient, el: &mut EventLoop, filter: &str) {
    c.subscribe(filter, QoS::AtLeastOnce).await.expect("queued");
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = el.poll().await.expect("subscribes") {
            return;
        }
    }
}

/// Payloads received within `wait`.
async fn received(el: &mut EventLoop, wait: Duration) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(Ok(ev)) = timeout(wait, el.poll()).await {
        if let Event::Incoming(Packet::Publish(p)) = ev {
            out.push((
                String::from_utf8_lossy(&p.topic).into_owned(),
                p.payload.to_vec(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn routes_like_a_broker() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("starts");
    assert_ne!(broker.addr().port(), 0, "the OS chose a port");
    let (r1, mut e1) = client(&broker, "receiver-1", None).await;
    let (r2, mut e2) = client(&broker, "receiver-2", None).await;
    let (watch, mut ew) = client(&broker, "watcher", None).await;
    subscribe(&r1, &mut e1, "$share/dc/motcua/v1/d/+/up").await;
    subscribe(&r2, &mut e2, "$share/dc/motcua/v1/d/+/up").await;
    subscribe(&watch, &mut ew, "motcua/v1/d/+/status").await;

    let will = LastWill::new(
        "motcua/v1/d/dev-1/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    );
    let (dev, mut ed) = client(&broker, "dev-1", Some(will)).await;
    for i in 0..10u8 {
        dev.publish(
            "motcua/v1/d/dev-1/up",
            vec![i],
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .expect("queued");
    }
    dev.publish(
        "motcua/v1/d/dev-1/status",
        "online",
        PublishOptions::new(QoS::AtLeastOnce).retained(),
    )
    .await
    .expect("queued");
    // Every QoS 1 publish is acknowledged.
    let mut acks = 0;
    while acks < 11 {
        if let Event::Incoming(Packet::PubAck(_)) = dev_poll(&mut ed).await {
            acks += 1;
        }
    }
    let (a, b) = tokio::join!(
        received(&mut e1, Duration::from_millis(300)),
        received(&mut e2, Duration::from_millis(300))
    );
    // The group shares the ten messages: each once, both members used.
    let mut all: Vec<u8> = a.iter().chain(&b).map(|(_, p)| p[0]).collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<u8>>());
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
    let seen = received(&mut ew, Duration::from_millis(200)).await;
    assert_eq!(
        seen,
        [("motcua/v1/d/dev-1/status".to_owned(), b"online".to_vec())]
    );

    // The device drops without DISCONNECT: its will is published, retained.
    drop(dev);
    drop(ed);
    let seen = received(&mut ew, Duration::from_millis(300)).await;
    assert_eq!(
        seen,
        [("motcua/v1/d/dev-1/status".to_owned(), b"offline".to_vec())]
    );
    let (late, mut el) = client(&broker, "late", None).await;
    subscribe(&late, &mut el, "motcua/v1/d/+/status").await;
    let seen = received(&mut el, Duration::from_millis(200)).await;
    assert_eq!(
        seen,
        [("motcua/v1/d/dev-1/status".to_owned(), b"offline".to_vec())]
    );
    broker.shutdown().await;
}

async fn dev_poll(el: &mut EventLoop) -> Event {
    timeout(Duration::from_secs(5), el.poll())
        .await
        .expect("an event within 5 s")
        .expect("connected")
}
