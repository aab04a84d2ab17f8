//! `motcua selftest`: proves on the box itself (natively or under qemu) that
//! the agent's cryptography and files work, using a throw-away directory and
//! throw-away keys; the device's real key and data are never touched.
//!
//! Steps, each reported pass or fail: write a key file mode 0600 and read it
//! back; refuse it once group-readable; sign a chain of sample envelopes and
//! verify each the way the DC does (kid lookup, signature, chain rule);
//! recognise a replay as a duplicate and a flipped bit as a forgery; sign a
//! DC receipt and accept it only with the pinned DC key; store dossiers in a
//! fresh SQLite store, read them back, verify its journal and apply a
//! receipt.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use motcua_common::atomic::Overwrite;
use motcua_common::keyfile;
use motcua_counter::state_dir::StateDir;
use motcua_protocol::{
    ChainHead, Classification, DeviceId, Hash32, Opened, Receipt, Submission, UtcTime, classify,
    sign, verify,
};
use serde_json::json;

/// One step's outcome.
#[derive(Debug)]
pub struct Step {
    /// What was checked.
    pub name: &'static str,
    /// `Ok(detail)` or the failure.
    pub outcome: Result<String>,
}

/// Runs every step with a chain of `records` envelopes; never stops early.
pub fn run(records: u64) -> Vec<Step> {
    let mut steps = Vec::new();
    let dir = match tempfile::Builder::new()
        .prefix("motcua-selftest-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            steps.push(Step {
                name: "temporary directory",
                outcome: Err(e.into()),
            });
            return steps;
        }
    };
    let key_path = StateDir::new(dir.path()).device_key();
    let mut step = |name, outcome| steps.push(Step { name, outcome });

    let device_key = keyfile::create(&key_path, Overwrite::Refuse);
    let device_key = match device_key {
        Ok(k) => k,
        Err(e) => {
            step("key file written mode 0600 and read back", Err(e.into()));
            return steps;
        }
    };
    step(
        "key file written mode 0600 and read back",
        (|| {
            let mode = fs::metadata(&key_path)?.permissions().mode() & 0o777;
            ensure!(mode == 0o600, "mode is {mode:04o}");
            let back = keyfile::load(&key_path)?;
            ensure!(
                back.to_bytes() == device_key.to_bytes(),
                "key read back differs"
            );
            Ok(format!("{}", key_path.display()))
        })(),
    );
    step(
        "group-readable key file refused",
        (|| {
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640))?;
            let refused = keyfile::load(&key_path).is_err();
            fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))?;
            ensure!(refused, "a mode 0640 key was accepted");
            Ok("mode 0640 refused".into())
        })(),
    );

    let chain = (|| {
        let device: DeviceId = "selftest-device".parse()?;
        let started = Instant::now();
        let mut envelopes = Vec::new();
        let mut head = ChainHead::EMPTY;
        for seq in 1..=records {
            let bytes = sign(&sample(&device, seq, head.hash), &device_key)?;
            head = ChainHead {
                seq,
                hash: Hash32::of(&bytes),
            };
            envelopes.push(bytes);
        }
        let signed = started.elapsed();
        let started = Instant::now();
        let public = device_key.verifying_key();
        let mut dc_head = ChainHead::EMPTY;
        for bytes in &envelopes {
            let opened = Opened::<Submission>::parse(bytes)?;
            ensure!(
                opened.kid() == motcua_protocol::KeyId::of(&public),
                "kid does not name the device key"
            );
            let v = opened.verify(&public)?;
            let class = classify(&dc_head, &v.link());
            ensure!(
                class == Classification::Next,
                "seq {} classified {class:?}",
                v.message.seq
            );
            dc_head = ChainHead {
                seq: v.message.seq,
                hash: v.hash,
            };
        }
        let verified = started.elapsed();
        Ok((envelopes, dc_head, signed, verified))
    })();
    let (envelopes, head) = match chain {
        Ok((envelopes, head, signed, verified)) => {
            step(
                "chain signed and verified as the DC does",
                Ok(format!(
                    "{records} envelopes: signed in {} ms, verified in {} ms",
                    signed.as_millis(),
                    verified.as_millis()
                )),
            );
            (envelopes, head)
        }
        Err(e) => {
            step("chain signed and verified as the DC does", Err(e));
            return steps;
        }
    };
    step(
        "replay classified duplicate, flipped bit refused",
        (|| {
            let last = envelopes.last().context("no envelope")?;
            let v = verify::<Submission>(last, &device_key.verifying_key())?;
            ensure!(
                classify(&head, &v.link()) == Classification::Duplicate,
                "replay not a duplicate"
            );
            let mut bad = last.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x04;
            if verify::<Submission>(&bad, &device_key.verifying_key()).is_ok() {
                bail!("a flipped bit verified");
            }
            Ok("ok".into())
        })(),
    );
    step(
        "DC receipt accepted with the pinned key only",
        (|| {
            let dc_key = keyfile::generate()?;
            let other = keyfile::generate()?;
            let device: DeviceId = "selftest-device".parse()?;
            let receipt = Receipt {
                v: 1,
                device: device.clone(),
                seq: head.seq,
                hash: head.hash,
                at: now(),
            };
            let bytes = sign(&receipt, &dc_key)?;
            let r = verify::<Receipt>(&bytes, &dc_key.verifying_key())?;
            ensure!(
                r.message.acknowledges(&device, head.seq, &head.hash),
                "receipt does not acknowledge the head"
            );
            ensure!(
                verify::<Receipt>(&bytes, &other.verifying_key()).is_err(),
                "a receipt verified with another key"
            );
            ensure!(
                verify::<Submission>(&bytes, &dc_key.verifying_key()).is_err(),
                "a receipt passed as a submission"
            );
            Ok(format!("acknowledges seq {}", head.seq))
        })(),
    );
    step(
        "store: dossiers stored durably, journal verified, receipt applied",
        store_round_trip(&StateDir::new(dir.path()), &device_key),
    );
    steps
}

/// Stores sample dossiers in a fresh store in `dir`, reads them back,
/// verifies the journal, and applies a DC receipt.
fn store_round_trip(dir: &StateDir, key: &ed25519_dalek::SigningKey) -> Result<String> {
    use motcua_counter::clock::ManualClock;
    use motcua_counter::domain::code::Counter;
    use motcua_counter::store::reference::{self, Procedure, ReferenceData};
    use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
    use motcua_counter::store::{Reader, Writer, WriterConfig};

    let db = dir.db();
    let data = ReferenceData {
        version: 1,
        procedures: vec![Procedure {
            code: "1.000000".into(),
            name: "Thủ tục thử nghiệm".into(),
            working_days: 3,
            fee: None,
            documents: vec![],
        }],
        holidays: vec![],
        workdays: vec![],
    };
    let clock = std::sync::Arc::new(ManualClock::new(
        time::OffsetDateTime::now_utc().max(motcua_counter::store::writer::CLOCK_FLOOR),
        true,
    ));
    let writer = Writer::start(WriterConfig {
        db: db.clone(),
        device: "selftest-device".parse()?,
        unit: "H00.1".parse()?,
        counter: Counter::new(1).context("counter 1")?,
        min_free: 0,
        key: key.clone(),
        clock,
        default_collect_at: "Bộ phận Một cửa".into(),
        office: motcua_counter::domain::calendar::OfficeDay::default(),
        max_batch: DEFAULT_MAX_BATCH,
    })?;
    let w = writer.handle();
    reference::import(&w, data, &now())?;
    let mut codes = Vec::new();
    for i in 0..50 {
        let input = serde_json::from_value(json!({
            "procedure": "1.000000",
            "applicant": {
                "name": "Mẫu Thử Nghiệm",
                "id_number": "001099000000",
                "address": format!("Địa chỉ thử nghiệm {i}")
            }
        }))?;
        codes.push(w.create(input, "selftest".parse()?)??.dossier.code);
    }
    let reader = Reader::open(&db)?;
    for code in &codes {
        ensure!(
            reader.dossier(code)?.is_some(),
            "dossier {code} not read back"
        );
    }
    let report = reader
        .verify_journal()?
        .map_err(|b| anyhow::anyhow!("{b}"))?;
    ensure!(
        report.records == 50 && report.signatures == 50,
        "journal: {report:?}"
    );
    let last = reader
        .unsynced(0, 100)?
        .pop()
        .context("unsynced envelopes")?;
    let dc_key = keyfile::generate()?;
    let receipt = Receipt {
        v: 1,
        device: "selftest-device".parse()?,
        seq: last.seq,
        hash: last.hash,
        at: now(),
    };
    let synced = w.accept_receipt(sign(&receipt, &dc_key)?, dc_key.verifying_key())??;
    ensure!(synced.newly == 50, "receipt marked {} of 50", synced.newly);
    drop(w);
    writer.shutdown();
    Ok(format!("50 dossiers, codes {} to {}", codes[0], codes[49]))
}

fn now() -> UtcTime {
    UtcTime::new(time::OffsetDateTime::now_utc())
}

/// A sample record. Invented content; the self-test never sees real data.
fn sample(device: &DeviceId, seq: u64, prev: Hash32) -> Submission {
    Submission {
        v: 1,
        device: device.clone(),
        seq,
        prev,
        at: now(),
        clock: false,
        clock_dc: None,
        staff: "selftest".parse().expect("a valid literal staff id"),
        kind: "dossier.created".parse().expect("a valid literal kind"),
        body: json!({
            "code": format!("H00.1-700101-{:04}", seq % 10_000),
            "procedure": "1.000000",
            "applicant": { "name": "Mẫu Thử Nghiệm", "id_number": "000000000000" },
        }),
    }
}
