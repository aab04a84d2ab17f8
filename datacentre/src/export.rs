//! What arrived, for the provincial systems: stored records by unit and
//! date range, each verified again against its device's enrolled keys, as
//! JSON lines, CSV for programs or CSV for spreadsheets (`motcua-dc
//! export`), or JSON pages (`/api/v1/records`).
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
    /// When its time was derived from the DC's receipts instead: the
    /// bound in milliseconds (the envelope's `clock_dc`, version 2).
    pub clock_dc: Option<u64>,
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

    /// The store it reads (to log a page in the access log before it
    /// leaves).
    pub fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
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
                    clock_dc: s.clock_dc,
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

impl Format {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Excel => "excel",
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV for programs (RFC 4180 quoting, UTF-8) with a header: one
    /// column per field of [`Exported`], the body as one JSON text in its
    /// column.
    Csv,
    /// CSV for people in a spreadsheet: UTF-8 with a byte order mark,
    /// `;` between fields unless told otherwise, the body spread over one
    /// column per member ([`BODY_COLUMNS`]), and cells a spreadsheet
    /// would mangle kept as text (see [`Sheet`]).
    Excel,
}

/// The field separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Delimiter {
    /// `,`
    Comma,
    /// `;`: Windows' list separator where the decimal mark is a comma
    /// (Vietnamese among them), which Excel splits on when a CSV is
    /// double-clicked.
    Semicolon,
    /// A tab.
    Tab,
}

impl Delimiter {
    fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
        }
    }
}

/// The columns of the CSV, in order: the fields of [`Exported`].
pub const CSV_HEADER: [&str; 12] = [
    "device",
    "seq",
    "kind",
    "code",
    "unit",
    "signed_at",
    "clock",
    "clock_dc",
    "received_at",
    "staff",
    "body",
    "envelope",
];

/// The body's members that get a column of their own in
/// [`Format::Excel`], headed `body.` and the member's path: every member
/// of the kinds counters sign (`dossier.created`, `dossier.status`,
/// `dossier.rescheduled`; `from` and `to` are statuses in the one and
/// UTC times in the other). `documents`, a list, is one JSON text.
pub const BODY_COLUMNS: [&str; 19] = [
    "procedure",
    "procedure_name",
    "applicant.name",
    "applicant.id_number",
    "applicant.phone",
    "applicant.email",
    "applicant.address",
    "documents",
    "sets",
    "received_at",
    "clock_synced",
    "clock_dc",
    "working_days",
    "appointment_at",
    "collect_at",
    "status",
    "from",
    "to",
    "note",
];

/// The UTF-8 byte order mark, written first with `--bom` and always for
/// [`Format::Excel`]: spreadsheets (Excel) that otherwise read a CSV in
/// the system's legacy code page then read it, Vietnamese included, as
/// UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How records are written.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// The format.
    pub format: Format,
    /// The CSV separator (ignored for JSON lines).
    pub delimiter: Delimiter,
}

impl Style {
    /// `format` with its usual separator: `;` for [`Format::Excel`], `,`
    /// otherwise.
    pub fn of(format: Format) -> Style {
        let delimiter = match format {
            Format::Excel => Delimiter::Semicolon,
            Format::Jsonl | Format::Csv => Delimiter::Comma,
        };
        Style { format, delimiter }
    }

    /// Whether the output starts with [`BOM`] without being asked.
    pub fn bom(&self) -> bool {
        self.format == Format::Excel
    }
}

/// The header of [`Format::Excel`]: the record's fields, the body's
/// members, `body.other` (any member not in [`BODY_COLUMNS`], as one JSON
/// object, so that nothing signed is left out) and `envelope`.
pub fn sheet_header() -> Vec<String> {
    CSV_HEADER[..10]
        .iter()
        .map(|c| (*c).to_owned())
        .chain(BODY_COLUMNS.iter().map(|c| format!("body.{c}")))
        .chain(["body.other".to_owned(), "envelope".to_owned()])
        .collect()
}

/// Cells for a spreadsheet opening a CSV: what it would otherwise turn
/// into something else stays the text that was signed.
pub struct Sheet;

impl Sheet {
    /// A text cell as a spreadsheet keeps it:
    /// - text a spreadsheet would read as a number, a date or a time
    ///   (digits, with `.`, `,`, `/`, `:`, `-` or spaces between them: an
    ///   identification number, a phone number, a procedure code such as
    ///   `1.001193`, which a Vietnamese Excel reads as 1 001 193) as the
    ///   formula `="…"`, which shows the text as it is;
    /// - text a spreadsheet would run as a formula (starting with `=`,
    ///   `+`, `-`, `@`, a tab or a carriage return: a citizen's note can
    ///   hold anything) after an apostrophe, so that it is shown, never
    ///   run.
    pub fn text(s: &str) -> String {
        let numeric = s.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b".,/:- ".contains(&b));
        if numeric && s.len() > 1 {
            format!("=\"{s}\"")
        } else if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        }
    }

    /// A body member's cell: text through [`Sheet::text`], numbers and
    /// `true`/`false` as written, nothing for null or absent, a list or
    /// an object as its JSON text.
    fn value(v: Option<&serde_json::Value>) -> String {
        match v {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => Sheet::text(s),
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => Sheet::text(&other.to_string()),
        }
    }

    /// The record's row: [`sheet_header`]'s columns.
    fn row(r: &Exported) -> Vec<String> {
        let mut rest = match &r.body {
            serde_json::Value::Object(m) => m.clone(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert(String::new(), other.clone());
                m
            }
        };
        // What the record's own columns already say.
        for (member, column) in [
            ("code", r.code.as_deref()),
            ("unit", r.unit.as_deref()),
            ("staff", Some(r.staff.as_str())),
        ] {
            if column.is_some() && rest.get(member).and_then(|v| v.as_str()) == column {
                rest.remove(member);
            }
        }
        let mut row = vec![
            r.device.to_string(),
            r.seq.to_string(),
            r.kind.as_str().to_owned(),
            r.code.as_deref().map(Sheet::text).unwrap_or_default(),
            r.unit.as_deref().map(Sheet::text).unwrap_or_default(),
            r.signed_at.to_string(),
            r.clock.to_string(),
            r.clock_dc.map(|ms| ms.to_string()).unwrap_or_default(),
            r.received_at.to_string(),
            Sheet::text(&r.staff),
        ];
        for path in BODY_COLUMNS {
            row.push(Sheet::value(take(&mut rest, path).as_ref()));
        }
        row.push(if rest.is_empty() {
            String::new()
        } else {
            Sheet::text(&serde_json::Value::Object(rest).to_string())
        });
        row.push(r.envelope.clone());
        row
    }
}

/// Removes the member at a dotted `path` from `m`, and the object holding
/// it once that is empty.
fn take(
    m: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<serde_json::Value> {
    match path.split_once('.') {
        None => m.remove(path),
        Some((head, tail)) => {
            let inner = m.get_mut(head)?.as_object_mut()?;
            let v = take(inner, tail);
            // Emptied by this, not empty as signed (that stays in
            // body.other).
            if v.is_some() && inner.is_empty() {
                m.remove(head);
            }
            v
        }
    }
}

/// Writes records in `style`; the CSV header first when `header`.
pub fn write(
    out: &mut dyn Write,
    records: &[Exported],
    style: Style,
    header: bool,
) -> std::io::Result<()> {
    if style.format == Format::Jsonl {
        for r in records {
            serde_json::to_writer(&mut *out, r)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .delimiter(style.delimiter.byte())
        // For Windows programs, RFC 4180's CRLF between records.
        .terminator(if style.format == Format::Excel {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(out);
    match style.format {
        Format::Excel => {
            if header {
                w.write_record(sheet_header())?;
            }
            for r in records {
                w.write_record(Sheet::row(r))?;
            }
        }
        _ => {
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
                    &r.clock_dc.map(|ms| ms.to_string()).unwrap_or_default(),
                    &r.received_at.to_string(),
                    &r.staff,
                    &r.body.to_string(),
                    &r.envelope,
                ])?;
            }
        }
    }
    w.flush()?;
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
            clock_dc: seq.is_multiple_of(2).then_some(1250),
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
        write(&mut out, &records[..1], Style::of(Format::Csv), true).expect("writes");
        write(&mut out, &records[1..], Style::of(Format::Csv), false).expect("writes");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with(
            "device,seq,kind,code,unit,signed_at,clock,clock_dc,received_at,staff,body,envelope\n"
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
        assert_eq!(&row[7], "");
        assert_eq!(&row[8], "2026-11-27T01:02:04.000Z");
        assert_eq!(&row[9], "canbo.an@h49");
        let back: serde_json::Value = serde_json::from_str(&row[10]).expect("the body's JSON");
        assert_eq!(back, body);
        assert_eq!(&row[11], "d28443a10126a0");
        // A time derived from the DC: its bound.
        assert_eq!((&rows[1][6], &rows[1][7]), ("false", "1250"));
        assert_eq!(&rows[1][10], "{}");
    }

    #[test]
    fn excel_gets_bodies_spread_over_columns_and_cells_it_cannot_mangle() {
        let created = serde_json::json!({
            "code": "H49.12.3-261127-1001",
            "unit": "H49.12.3",
            "staff": "canbo.an@h49",
            "procedure": "1.001193",
            "procedure_name": "Đăng ký kết hôn",
            "applicant": {
                "name": "Nguyễn Thị Thu Hà",
                "id_number": "049301000123",
                "phone": "0905 123 456",
                "address": "Thôn Phú Thạnh; xã Tam Thăng",
            },
            "documents": [{"name": "Tờ khai", "form": "Bản chính", "copies": 1}],
            "sets": 1,
            "working_days": 5,
            "clock_synced": true,
            "note": "=HYPERLINK(\"http://x.invalid\")\ndòng hai",
            "future": {"member": 7},
        });
        let status = serde_json::json!({
            "code": "H49.12.3-261127-1001", "from": 2, "to": 4, "note": "-",
        });
        let mut changed = record(2, status);
        changed.kind = "dossier.status".parse().expect("a kind");
        let records = [record(1, created), changed];
        let mut out = Vec::new();
        let style = Style::of(Format::Excel);
        assert!(style.bom());
        write(&mut out, &records[..1], style, true).expect("writes");
        write(&mut out, &records[1..], style, false).expect("writes");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with(
            "device;seq;kind;code;unit;signed_at;clock;clock_dc;received_at;staff;body.procedure;"
        ));
        assert!(text.contains("\r\n"), "CRLF between records");

        let mut r = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        let header: Vec<String> = r
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, sheet_header());
        assert_eq!(header.len(), 10 + BODY_COLUMNS.len() + 2);
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.expect("a record")).collect();
        assert_eq!(rows.len(), 2);
        let (a, b) = (&rows[0], &rows[1]);
        assert!(rows.iter().all(|r| r.len() == header.len()));
        assert_eq!(&a[col("code")], "H49.12.3-261127-1001");
        assert_eq!(&a[col("body.procedure_name")], "Đăng ký kết hôn");
        assert_eq!(&a[col("body.applicant.name")], "Nguyễn Thị Thu Hà");
        // Its leading zero kept; codes and numbers with dots stay text.
        assert_eq!(&a[col("body.applicant.id_number")], "=\"049301000123\"");
        assert_eq!(&a[col("body.applicant.phone")], "=\"0905 123 456\"");
        assert_eq!(&a[col("body.procedure")], "=\"1.001193\"");
        assert_eq!(&a[col("body.applicant.email")], "");
        assert_eq!(
            &a[col("body.applicant.address")],
            "Thôn Phú Thạnh; xã Tam Thăng"
        );
        let docs: serde_json::Value =
            serde_json::from_str(&a[col("body.documents")]).expect("the list's JSON");
        assert_eq!(docs[0]["name"], "Tờ khai");
        assert_eq!(&a[col("body.sets")], "1");
        assert_eq!(&a[col("body.working_days")], "5");
        assert_eq!(&a[col("body.clock_synced")], "true");
        // A formula in a note is shown, not run; its line break kept.
        assert_eq!(
            &a[col("body.note")],
            "'=HYPERLINK(\"http://x.invalid\")\ndòng hai"
        );
        // Members the record's columns say are not repeated; an unknown
        // one is not lost.
        let other: serde_json::Value = serde_json::from_str(&a[col("body.other")]).expect("JSON");
        assert_eq!(other, serde_json::json!({"future": {"member": 7}}));
        assert_eq!(&a[col("envelope")], "d28443a10126a0");

        assert_eq!(&b[col("kind")], "dossier.status");
        assert_eq!(&b[col("body.from")], "2");
        assert_eq!(&b[col("body.to")], "4");
        assert_eq!(&b[col("body.note")], "'-");
        assert_eq!(&b[col("body.other")], "");
        assert_eq!(&b[col("body.procedure")], "");
    }

    #[test]
    fn an_object_empty_as_signed_is_not_lost() {
        let r = record(1, serde_json::json!({"applicant": {}, "note": "x"}));
        let row = Sheet::row(&r);
        let other: serde_json::Value = serde_json::from_str(&row[row.len() - 2]).expect("JSON");
        assert_eq!(other, serde_json::json!({"applicant": {}}));
    }

    #[test]
    fn a_body_member_that_differs_from_the_records_column_is_kept() {
        let r = record(
            1,
            serde_json::json!({"code": "X-1", "staff": "canbo.an@h49"}),
        );
        let row = Sheet::row(&r);
        let other: serde_json::Value = serde_json::from_str(&row[row.len() - 2]).expect("JSON");
        assert_eq!(other, serde_json::json!({"code": "X-1"}));
    }

    #[test]
    fn sheet_text_guards_only_what_a_spreadsheet_would_change() {
        assert_eq!(Sheet::text("0905123456"), "=\"0905123456\"");
        assert_eq!(Sheet::text("1234567890123456"), "=\"1234567890123456\"");
        assert_eq!(Sheet::text("1.001193"), "=\"1.001193\"");
        assert_eq!(Sheet::text("06/12/2026"), "=\"06/12/2026\"");
        assert_eq!(Sheet::text("0905 123 456"), "=\"0905 123 456\"");
        assert_eq!(Sheet::text("1,5"), "=\"1,5\"");
        assert_eq!(Sheet::text("0"), "0");
        assert_eq!(Sheet::text("H49.12.3"), "H49.12.3");
        assert_eq!(Sheet::text("@canbo"), "'@canbo");
        assert_eq!(Sheet::text("+84 905"), "'+84 905");
        assert_eq!(Sheet::text("Trần Văn B"), "Trần Văn B");
        assert_eq!(Sheet::text(""), "");
    }

    #[test]
    fn the_separator_is_the_one_asked_for() {
        let mut out = Vec::new();
        let style = Style {
            format: Format::Csv,
            delimiter: Delimiter::Tab,
        };
        write(&mut out, &[record(1, serde_json::json!({}))], style, true).expect("writes");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.starts_with("device\tseq\tkind"), "{text}");
    }

    #[test]
    fn the_bom_is_utf8s() {
        assert_eq!(BOM, "\u{feff}".as_bytes());
    }
}
