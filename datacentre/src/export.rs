//! What arrived, for the provincial systems: stored records by unit and
//! date range, each verified again against its device's enrolled keys, as
//! JSON lines or CSV (`motcua-dc export`) or JSON pages (`/api/v1/records`).
//!
//! Records hold citizens' dossiers as the counters signed them: this is a
//! data channel to the systems that process them, not an operator's log.

use std::collections::HashMap;
use std::io::Write;

use motcua_protocol::{DeviceId, KeyId, Opened, RecordKind, Submission, UtcTime};
use serde::Serialize;
use time::{Date, Time};

use crate::store::{ExportRow, Result, Store, StoreError};

/// Which records.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only dossiers of this unit (the dossier code's first part).
    pub unit: Option<String>,
    /// From this day, in Vietnam.
    pub from: Date,
    /// Through this day, in Vietnam.
    pub to: Date,
}

impl Filter {
    /// The UTC instants bounding the days: `[from 00:00, to+1 00:00)` in
    /// Vietnam (UTC+7).
    fn bounds(&self) -> (UtcTime, UtcTime) {
        let vn = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
        let at = |d: Date| {
            UtcTime::new(
                d.with_time(Time::MIDNIGHT)
                    .assume_offset(vn)
                    .to_offset(time::UtcOffset::UTC),
            )
        };
        (at(self.from), at(self.to.next_day().unwrap_or(self.to)))
    }
}

/// One exported record.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The counter.
    pub device: DeviceId,
    /// Its seq in the counter's chain.
    pub seq: u64,
    /// What changed (`dossier.created`, `dossier.status`).
    pub kind: RecordKind,
    /// The dossier code the record is about.
    pub code: Option<String>,
    /// The unit (the code's first part).
    pub unit: Option<String>,
    /// When the counter signed it.
    pub signed_at: UtcTime,
    /// Whether the counter's clock was synchronised then.
    pub clock: bool,
    /// When the DC stored it.
    pub received_at: UtcTime,
    /// The staff account at the counter.
    pub staff: String,
    /// The record as signed.
    pub body: serde_json::Value,
    /// The complete signed envelope (COSE_Sign1), hex, for independent
    /// verification.
    pub envelope: String,
}

/// Reads, verifies and filters records page by page.
pub struct Reader<'a> {
    store: &'a mut dyn Store,
    filter: Filter,
    keys: HashMap<DeviceId, Vec<(KeyId, ed25519_dalek::VerifyingKey)>>,
    cursor: Option<(String, u64)>,
    done: bool,
    /// Records read from the store so far (before the unit filter).
    pub scanned: u64,
}

impl<'a> Reader<'a> {
    /// Starts after `cursor` (a previous page's last device and seq).
    pub fn new(
        store: &'a mut dyn Store,
        filter: Filter,
        cursor: Option<(String, u64)>,
    ) -> Reader<'a> {
        Reader {
            store,
            filter,
            keys: HashMap::new(),
            cursor,
            done: false,
            scanned: 0,
        }
    }

    /// The cursor after the last record read: where the next page starts.
    pub fn cursor(&self) -> Option<&(String, u64)> {
        self.cursor.as_ref()
    }

    /// Whether every record has been read.
    pub fn done(&self) -> bool {
        self.done
    }

    fn verify(&mut self, row: &ExportRow) -> Result<Submission> {
        if !self.keys.contains_key(&row.device) {
            let keys = self
                .store
                .device(&row.device)?
                .map(|d| d.keys.iter().map(|k| (k.kid, k.key)).collect())
                .unwrap_or_default();
            self.keys.insert(row.device.clone(), keys);
        }
        let opened = Opened::<Submission>::parse(&row.bytes).map_err(|e| {
            StoreError::Corrupt(format!("{} seq {}: {}", row.device, row.seq, e.reason()))
        })?;
        let key = self.keys[&row.device]
            .iter()
            .find(|(kid, _)| *kid == opened.kid())
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{} seq {}: its key is not enrolled",
                    row.device, row.seq
                ))
            })?;
        Ok(opened
            .verify(&key)
            .map_err(|e| {
                StoreError::Corrupt(format!("{} seq {}: {}", row.device, row.seq, e.reason()))
            })?
            .message)
    }

    /// The next page: up to `limit` records read from the store, those of
    /// the unit kept. Empty only when [`Reader::done`].
    pub fn page(&mut self, limit: u32) -> Result<Vec<Exported>> {
        let mut out = Vec::new();
        while out.is_empty() && !self.done {
            let (from, to) = self.filter.bounds();
            let after = self.cursor.as_ref().map(|(d, s)| (d.as_str(), *s));
            let rows = self.store.export(&from, &to, after, limit)?;
            if (rows.len() as u32) < limit {
                self.done = true;
            }
            for row in rows {
                self.scanned += 1;
                self.cursor = Some((row.device.to_string(), row.seq));
                let s = self.verify(&row)?;
                let code = s
                    .body
                    .get("code")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned);
                let unit = code
                    .as_deref()
                    .and_then(|c| c.split_once('-'))
                    .map(|(u, _)| u.to_owned());
                if let Some(want) = &self.filter.unit
                    && unit.as_deref() != Some(want.as_str())
                {
                    continue;
                }
                out.push(Exported {
                    device: row.device,
                    seq: row.seq,
                    kind: row.kind,
                    code,
                    unit,
                    signed_at: row.signed_at,
                    clock: row.clock,
                    received_at: row.received_at,
                    staff: s.staff.to_string(),
                    body: s.body,
                    envelope: hex::encode(&row.bytes),
                });
            }
            if limit == 0 {
                self.done = true;
            }
        }
        Ok(out)
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV (RFC 4180 quoting, UTF-8) with a header: one column per field
    /// of [`Exported`], the body as one JSON text in its column.
    Csv,
}

/// The columns of the CSV, in order: the fields of [`Exported`].
pub const CSV_HEADER: [&str; 11] = [
    "device",
    "seq",
    "kind",
    "code",
    "unit",
    "signed_at",
    "clock",
    "received_at",
    "staff",
    "body",
    "envelope",
];

/// The UTF-8 byte order mark, written first with `--bom`: spreadsheets
/// (Excel) that otherwise read a CSV in the system's legacy code page then
/// read it, Vietnamese included, as UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes records in `format`; the CSV header first when `header`.
pub fn write(
    out: &mut dyn Write,
    records: &[Exported],
    format: Format,
    header: bool,
) -> std::io::Result<()> {
    match format {
        Format::Jsonl => {
            for r in records {
                serde_json::to_writer(&mut *out, r)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            if header {
                w.write_record(CSV_HEADER)?;
            }
            for r in records {
                w.write_record([
                    r.device.as_str(),
                    &r.seq.to_string(),
                    r.kind.as_str(),
                    r.code.as_deref().unwrap_or(""),
                    r.unit.as_deref().unwrap_or(""),
                    &r.signed_at.to_string(),
                    if r.clock { "true" } else { "false" },
                    &r.received_at.to_string(),
                    &r.staff,
                    &r.body.to_string(),
                    &r.envelope,
                ])?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, body: serde_json::Value) -> Exported {
        Exported {
            device: "H49.12.3-q01".parse().expect("a device id"),
            seq,
            kind: "dossier.created".parse().expect("a kind"),
            code: Some("H49.12.3-261127-1001".into()),
            unit: Some("H49.12.3".into()),
            signed_at: UtcTime::parse("2026-11-27T01:02:03.004Z").expect("a time"),
            clock: seq % 2 == 1,
            received_at: UtcTime::parse("2026-11-27T01:02:04.000Z").expect("a time"),
            staff: "canbo.an@h49".into(),
            body,
            envelope: "d28443a10126a0".into(),
        }
    }

    #[test]
    fn csv_has_one_column_per_field_and_quotes_what_needs_it() {
        let body = serde_json::json!({
            "code": "H49.12.3-261127-1001",
            "note": "Bổ sung \"giấy tờ\", sáng thứ Hai;\ndòng hai",
        });
        let records = [record(1, body.clone()), record(2, serde_json::json!({}))];
        let mut out = Vec::new();
        write(&mut out, &records[..1], Format::Csv, true).expect("writes");
        write(&mut out, &records[1..], Format::Csv, false).expect("writes");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with(
            "device,seq,kind,code,unit,signed_at,clock,received_at,staff,body,envelope\n"
        ));
        assert_eq!(text.lines().count(), 3, "one line per record: {text}");

        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().expect("a header"), CSV_HEADER.as_slice());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.expect("a record")).collect();
        assert_eq!(rows.len(), 2);
        let row = &rows[0];
        assert_eq!(row.len(), CSV_HEADER.len());
        assert_eq!(&row[0], "H49.12.3-q01");
        assert_eq!(&row[1], "1");
        assert_eq!(&row[2], "dossier.created");
        assert_eq!(&row[3], "H49.12.3-261127-1001");
        assert_eq!(&row[4], "H49.12.3");
        assert_eq!(&row[5], "2026-11-27T01:02:03.004Z");
        assert_eq!(&row[6], "true");
        assert_eq!(&row[7], "2026-11-27T01:02:04.000Z");
        assert_eq!(&row[8], "canbo.an@h49");
        let back: serde_json::Value = serde_json::from_str(&row[9]).expect("the body's JSON");
        assert_eq!(back, body);
        assert_eq!(&row[10], "d28443a10126a0");
        assert_eq!(&rows[1][6], "false");
        assert_eq!(&rows[1][9], "{}");
    }

    #[test]
    fn the_bom_is_utf8s() {
        assert_eq!(BOM, "\u{feff}".as_bytes());
    }
}
