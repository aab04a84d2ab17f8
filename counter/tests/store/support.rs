//! A store in a temporary directory with a manual clock and sample
//! reference data.

use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use motcua_counter::clock::ManualClock;
use motcua_counter::domain::code::Counter;
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::store::reference::{self, CalendarDay, Procedure, ReferenceData};
use motcua_counter::store::writer::{DEFAULT_MAX_BATCH, WriterHandle};
use motcua_counter::store::{DB_FILE, Reader, Writer, WriterConfig};
use motcua_protocol::{DeviceId, Hash32, Receipt, StaffId, UtcTime, sign};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

/// Thursday 26 November 2026, 09:30 in Vietnam.
pub const T0: OffsetDateTime = datetime!(2026-11-26 02:30 UTC);

pub fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

pub fn dc_key() -> SigningKey {
    SigningKey::from_bytes(&[0xdc; 32])
}

pub fn device() -> DeviceId {
    "H49.12.3-q01".parse().expect("valid")
}

pub fn staff() -> StaffId {
    "canbo.an".parse().expect("valid")
}

pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub writer: Option<Writer>,
    pub counter: u8,
    pub min_free: u64,
}

impl TestStore {
    pub fn new() -> TestStore {
        Self::with_counter(1)
    }

    pub fn with_counter(counter: u8) -> TestStore {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = TestStore {
            dir,
            clock: Arc::new(ManualClock::new(T0, true)),
            writer: None,
            counter,
            min_free: 0,
        };
        s.start();
        s.import_reference(1);
        s
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join(DB_FILE)
    }

    pub fn config(&self) -> WriterConfig {
        WriterConfig {
            db: self.db(),
            device: device(),
            unit: "H49.12.3".parse().expect("unit"),
            counter: Counter::new(self.counter).expect("1..=9"),
            min_free: self.min_free,
            key: device_key(),
            clock: self.clock.clone(),
            default_collect_at: "Bộ phận Một cửa UBND xã Tam Thăng".into(),
            office: motcua_counter::domain::calendar::OfficeDay::default(),
            max_batch: DEFAULT_MAX_BATCH,
        }
    }

    pub fn start(&mut self) {
        self.writer = Some(Writer::start(self.config()).expect("writer starts"));
    }

    /// Stops the writer and starts a new one on the same file.
    pub fn reopen(&mut self) {
        if let Some(w) = self.writer.take() {
            w.shutdown();
        }
        self.start();
    }

    /// Stops the writer (queued jobs finish, the WAL is folded in).
    pub fn stop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.shutdown();
        }
    }

    pub fn w(&self) -> WriterHandle {
        self.writer.as_ref().expect("started").handle()
    }

    pub fn reader(&self) -> Reader {
        Reader::open(&self.db()).expect("reader")
    }

    pub fn import_reference(&self, version: u64) {
        reference::import(
            &self.w(),
            reference_data(version),
            &UtcTime::new(datetime!(2026-11-01 00:00 UTC)),
        )
        .expect("import");
    }

    /// A receipt for `seq`, signed by the DC key, acknowledging `hash`.
    pub fn receipt(&self, seq: u64, hash: Hash32) -> Vec<u8> {
        let r = Receipt {
            v: 1,
            device: device(),
            seq,
            hash,
            at: UtcTime::new(self.clock.now_at()),
        };
        sign(&r, &dc_key()).expect("signs")
    }
}

pub trait NowAt {
    fn now_at(&self) -> OffsetDateTime;
}

impl NowAt for ManualClock {
    fn now_at(&self) -> OffsetDateTime {
        use motcua_counter::clock::Clock;
        self.now().at
    }
}

/// Now, as the time an import is stamped with.
pub fn now() -> UtcTime {
    UtcTime::new(OffsetDateTime::now_utc())
}

pub fn reference_data(version: u64) -> ReferenceData {
    ReferenceData {
        version,
        procedures: vec![
            Procedure {
                code: "1.000948".into(),
                name: "Đăng ký khai sinh".into(),
                working_days: 0,
                fee: None,
                documents: vec!["Tờ khai đăng ký khai sinh".into(), "Giấy chứng sinh".into()],
            },
            Procedure {
                code: "2.000635".into(),
                name: "Cấp bản sao trích lục hộ tịch".into(),
                working_days: 3,
                fee: Some(8000),
                documents: vec![],
            },
        ],
        holidays: vec![CalendarDay {
            day: "2026-11-27".into(),
            name: Some("Ngày nghỉ thử nghiệm".into()),
        }],
        workdays: vec![],
    }
}

/// An input for procedure 2.000635 (3 working days) with an invented
/// applicant.
pub fn input(n: u32) -> DossierInput {
    serde_json::from_value(json!({
        "procedure": "2.000635",
        "applicant": {
            "name": "Nguyễn Thị Thu Hà",
            "id_number": "049301000123",
            "phone": "0905123456",
            "address": format!("Số {n}, thôn Phú Thạnh, xã Tam Thăng")
        },
        "documents": [{"name": "Tờ khai", "copies": 1}]
    }))
    .expect("valid shape")
}
