//! Hostile and broken input through the real broker: misrouted, forged,
//! altered, replayed and conflicting envelopes, garbage, and a revoked
//! device. Each is refused by the broker's access list or by the DC, recorded as an
//! alert with a reason code, and never stored as a record; the honest
//! chains stay exactly as they were.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use motcua_e2e::site::{Site, wait_until};
use motcua_protocol::{Hash32, RecordKind, StaffId, Submission, UtcTime, sign};

const A: &str = "H49.12.3-q01";
const B: &str = "H49.12.3-q02";

fn envelope(device: &str, key: &SigningKey, seq: u64, prev: Hash32, note: &str) -> Vec<u8> {
    let s = Submission {
        v: 1,
        device: device.parse().expect("valid"),
        seq,
        prev,
        at: UtcTime::new(time::OffsetDateTime::now_utc()),
        clock: true,
        clock_dc: None,
        staff: "canbo01".parse::<StaffId>().expect("valid"),
        kind: "dossier.status".parse::<RecordKind>().expect("valid"),
        body: serde_json::json!({ "code": "H49.12.3-261127-1001", "note": note }),
    };
    sign(&s, key).expect("signs")
}

fn up(device: &str) -> String {
    format!("motcua/v1/d/{device}/up")
}

/// Waits until the DC holds `n` alerts (the receiver works asynchronously).
fn wait_alerts(site: &Site, n: usize) {
    wait_until(&format!("{n} alerts"), Duration::from_secs(30), || {
        site.alert_reasons().len() >= n
    });
}

#[test]
fn hostile_messages_are_refused_and_recorded() {
    let mut site = Site::new(true);
    let (a, b) = (site.counter(A), site.counter(B));
    // The broker's access list as written at installation, left as it is:
    // a device revoked at the DC can still publish at the broker, so what
    // the DC itself does with its envelopes shows (the broker's own
    // refusal is in broker.rs).
    site.write_access_list();
    site.freeze_access_list();
    site.broker.start();
    a.receive(5);
    b.receive(5);
    let _dc = site.receiver();
    {
        let _agents = [a.run(), b.run()];
        wait_until("both counters synced", Duration::from_secs(60), || {
            a.receipted() == 5 && b.receipted() == 5
        });
    }
    let b_key = motcua_common::keyfile::load(&b.key).expect("B's key");
    let b_records = site
        .store()
        .records(&B.parse().expect("valid"), 0, 10)
        .expect("reads");
    let b_head = b_records[4].hash;

    // B's certificate on A's topic: the broker's access list drops it
    // (MQTT 3.1.1 still acknowledges it), so the DC never even sees it.
    site.publish_as(
        b.tls.as_ref(),
        &up(A),
        &[envelope(B, &b_key, 6, b_head, "misrouted")],
    );
    // A payload for device A signed by B, on B's own topic.
    let claims_a = envelope(A, &b_key, 6, b_head, "claims A");
    // B's next envelope with its signature damaged.
    let mut forged = envelope(B, &b_key, 6, b_head, "forged");
    let n = forged.len();
    forged[n - 1] ^= 0x01;
    // A stored envelope with one byte of its payload changed.
    let mut altered = b_records[2].bytes.clone();
    let at = altered
        .windows(5)
        .position(|w| w == b"canbo")
        .expect("the staff id is in the payload");
    altered[at] = b'x';
    // A stored envelope again, byte for byte.
    let replayed = b_records[2].bytes.clone();
    // A second, validly signed envelope for seq 5: a fork.
    let fork = envelope(B, &b_key, 5, b_records[3].hash, "fork");
    site.publish_as(
        b.tls.as_ref(),
        &up(B),
        &[
            claims_a,
            forged,
            altered,
            replayed,
            fork,
            b"not a message".to_vec(),
        ],
    );
    wait_alerts(&site, 5);

    // Revoked: B's valid next envelope is refused from now on.
    let r = site.dc(&["device", "revoke", B]);
    assert!(r.ok, "{}", r.stderr);
    site.publish_as(
        b.tls.as_ref(),
        &up(B),
        &[envelope(B, &b_key, 6, b_head, "after revocation")],
    );
    wait_alerts(&site, 6);
    // Give a misrouted message time to show up, if the access list had let it by.
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(
        site.alert_reasons(),
        [
            "device_mismatch",
            "bad_signature",
            "bad_signature",
            "conflict_rewrite",
            "not_cose",
            "revoked"
        ]
    );
    let alerts = site.store().alerts(0, 100).expect("reads");
    assert!(
        alerts.iter().all(|a| !a.alert.bytes.is_empty()),
        "evidence kept"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.alert.device.as_ref().map(|d| d.as_str()) == Some(B))
    );
    assert_eq!(site.totals().records, 10);
    site.assert_chain(A, 5);
    site.assert_chain(B, 5);
    let list = site.dc(&["device", "list"]);
    assert!(list.stdout.contains("revoked"), "{}", list.stdout);
    let shown = site.dc(&["alerts"]);
    assert!(
        shown.ok && shown.stdout.contains("conflict_rewrite"),
        "{}",
        shown.stdout
    );
}

/// Without an access list (a plain broker), a device writing on another device's
/// topic reaches the DC, which refuses it: B's key is not enrolled for A.
#[test]
fn the_dc_refuses_a_device_on_another_devices_topic() {
    let mut site = Site::new(false);
    site.broker.start();
    let (a, b) = (site.counter(A), site.counter(B));
    a.receive(2);
    let _dc = site.receiver();
    {
        let _agent = a.run();
        wait_until("A synced", Duration::from_secs(60), || a.receipted() == 2);
    }
    let b_key = motcua_common::keyfile::load(&b.key).expect("B's key");
    let a_head = site
        .store()
        .device(&A.parse().expect("valid"))
        .expect("reads")
        .expect("enrolled")
        .head;
    site.publish_as(
        None,
        &up(A),
        &[
            envelope(B, &b_key, 3, a_head.hash, "as B"),
            envelope(A, &b_key, 3, a_head.hash, "as A"),
        ],
    );
    wait_alerts(&site, 2);
    assert_eq!(site.alert_reasons(), ["unknown_key", "unknown_key"]);
    site.assert_chain(A, 2);
}
