//! Re-verification of stored chains: what `motcua-dc verify` runs and what
//! the end-to-end tests assert. Every stored record is checked again from
//! its bytes: the signature against the device's enrolled key named by its
//! kid, the payload's device and seq, the hash, and the link to the record
//! before it, from seq 1 to the device's head.

use motcua_protocol::{DeviceId, Hash32, Opened, Submission};

use crate::store::{Device, Store, StoreError};

/// The result for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The device.
    pub device: DeviceId,
    /// Records checked.
    pub records: u64,
    /// The first problem found, if any.
    pub problem: Option<String>,
}

/// Verifies the chain of `only`, or of every device.
pub fn chains(
    store: &mut dyn Store,
    only: Option<&DeviceId>,
) -> Result<Vec<ChainReport>, StoreError> {
    let devices = match only {
        Some(d) => store.device(d)?.into_iter().collect(),
        None => store.devices()?,
    };
    devices.iter().map(|d| chain(store, d)).collect()
}

fn chain(store: &mut dyn Store, d: &Device) -> Result<ChainReport, StoreError> {
    let mut seq = 0u64;
    let mut prev = Hash32::ZERO;
    let report = |records, problem| ChainReport {
        device: d.device.clone(),
        records,
        problem,
    };
    loop {
        let page = store.records(&d.device, seq, 1000)?;
        if page.is_empty() {
            break;
        }
        for r in page {
            let problem = check(d, &r.bytes, seq + 1, prev, r.seq);
            if let Some(p) = problem {
                return Ok(report(seq, Some(p)));
            }
            seq = r.seq;
            prev = r.hash;
        }
    }
    if seq != d.head.seq || prev != d.head.hash {
        return Ok(report(
            seq,
            Some(format!(
                "records end at seq {seq}, but the head says {}",
                d.head.seq
            )),
        ));
    }
    Ok(report(seq, None))
}

fn check(d: &Device, bytes: &[u8], expect: u64, prev: Hash32, stored_seq: u64) -> Option<String> {
    if stored_seq != expect {
        return Some(format!(
            "seq {expect} is missing (next stored is {stored_seq})"
        ));
    }
    let opened = match Opened::<Submission>::parse(bytes) {
        Ok(o) => o,
        Err(e) => return Some(format!("seq {expect}: {e}")),
    };
    let kid = opened.kid();
    let Some(key) = d.keys.iter().find(|k| k.kid == kid) else {
        return Some(format!("seq {expect}: signed by kid {kid}, not enrolled"));
    };
    let v = match opened.verify(&key.key) {
        Ok(v) => v,
        Err(e) => return Some(format!("seq {expect}: {e}")),
    };
    if v.message.device != d.device || v.message.seq != expect {
        return Some(format!(
            "seq {expect}: the payload names another device or seq"
        ));
    }
    if v.message.prev != prev {
        return Some(format!(
            "seq {expect}: prev does not link to seq {}",
            expect - 1
        ));
    }
    None
}
