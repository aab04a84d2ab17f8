//! A counter box without a battery-backed clock: after a power cut its
//! clock reads 2000, it refuses to stamp dossiers with that, and once the
//! DC answers it takes the DC's time from the first signed receipt, signs
//! what it stamps as derived from the DC (submission version 2,
//! `clock_dc`), and the broker's certificate is still checked (at a time
//! the box can vouch for, not at 2000). The same on a real Debian box
//! under systemd: the box lab (`boxlab.rs`).

use std::time::Duration;

use motcua_e2e::kiosk::{Http, ManualClock, fresh_key, prepare};
use motcua_e2e::site::{Site, wait_until};
use motcua_e2e::workspace;
use motcua_protocol::{Submission, UtcTime, verify};

const DEVICE: &str = "H49.12.3-q01";

fn dossier() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(workspace().join("docs/examples/dossier.json")).expect("example"),
    )
    .expect("json")
}

#[test]
fn a_box_whose_clock_lost_its_time_takes_the_dcs_from_its_receipts() {
    let mut site = Site::new(true);
    let agent = site.counter(DEVICE);
    prepare(&agent.conf);
    site.broker.start();
    let _receiver = site.receiver();
    let now = || time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let clock = ManualClock::at(&now().format(fmt).expect("formats"));
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let lesson = agent.state.join("clock-dc.json");
    let http = Http::new(&format!("http://127.0.0.1:{}", agent.kiosk));
    let receive = |http: &Http, csrf: &str| {
        http.post_json_keyed("/api/v1/dossiers", &dossier(), Some(csrf), &fresh_key())
    };

    // A working day: one dossier, receipted.
    let proc = agent.run_with_env(&env);
    wait_until("the kiosk", Duration::from_secs(30), || {
        http.get("/dang-nhap").status == 200
    });
    let csrf = http.login_api();
    assert_eq!(receive(&http, &csrf).status, 201);
    wait_until("the record at the DC", Duration::from_secs(60), || {
        site.totals().records == 1
    });
    drop(proc.stop());

    // A power cut without a battery: the clock reads 2000, the DC is out of
    // reach, and nothing learnt in the last boot counts.
    std::fs::remove_file(&lesson).ok();
    site.broker.kill();
    clock.set("2000-01-01 00:00:00");
    let proc = agent.run_with_env(&env);
    wait_until("the kiosk again", Duration::from_secs(30), || {
        http.get("/dang-nhap").status == 200
    });
    let csrf = http.login_api();
    let refused = receive(&http, &csrf);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("clock_wrong"), "{}", refused.body);

    // The DC answers: the box's TLS accepts the broker (whose certificate
    // is "not yet valid" in 2000) and the first receipt teaches the time.
    site.broker.start();
    wait_until("the DC's time learnt", Duration::from_secs(60), || {
        lesson.exists()
    });
    let a = receive(&http, &csrf);
    assert_eq!(a.status, 201, "{}", a.body);
    let code = a.json()["code"].as_str().expect("code").to_owned();
    let got = http.get(&format!("/api/v1/dossiers/{code}"));
    assert_eq!(got.status, 200, "{}", got.body);
    let d = got.json();
    let received = UtcTime::parse(
        d["dossier"]["received_at"]
            .as_str()
            .or(d["received_at"].as_str())
            .unwrap_or_else(|| panic!("received_at in {d}")),
    )
    .expect("a time");
    assert!(
        (received.get() - now()).abs() < time::Duration::minutes(5),
        "stamped {received}, not the DC's time"
    );
    // At the DC: the record is signed as version 2 with its bound.
    wait_until(
        "the second record at the DC",
        Duration::from_secs(60),
        || site.totals().records == 2,
    );
    let device: motcua_protocol::DeviceId = DEVICE.parse().expect("id");
    let stored = site.store().records(&device, 0, 10).expect("records");
    let key = motcua_common::keyfile::load(&agent.key).expect("key");
    let second = verify::<Submission>(&stored[1].bytes, &key.verifying_key())
        .expect("verifies")
        .message;
    assert_eq!((second.v, second.clock), (2, false));
    let bound = second.clock_dc.expect("clock_dc");
    assert!(bound < 60_000, "bound {bound} ms");
    drop(proc.stop());
}
