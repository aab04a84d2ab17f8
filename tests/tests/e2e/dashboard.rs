//! What `motcua-dc run` serves over HTTP: the dashboard in headless
//! Chromium (a screenshot saved in `target/dashboard-screenshots/`), the
//! fleet and records API, `/metrics` read by an independent Prometheus
//! text-format parser, and `motcua-dc export`.

use std::time::Duration;

use fantoccini::Locator;
use motcua_e2e::kiosk::Http;
use motcua_e2e::site::{OPERATOR_PASSWORD, Proc, Site, wait_until};
use motcua_e2e::{run, workspace};

use crate::chromium::Driver;

const A: &str = "H49.12.3-q01";
const B: &str = "H49.12.3-q02";
const LIMIT: Duration = Duration::from_secs(60);

/// The base URL the receiver logged for its dashboard.
pub(crate) fn base_of(dc: &Proc) -> String {
    let mut base = String::new();
    wait_until("the dashboard listens", LIMIT, || {
        let log = dc.log();
        if let Some(i) = log.find("metrics at http") {
            let rest = &log[i + "metrics at ".len()..];
            base = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned();
            return true;
        }
        false
    });
    base
}

fn sample(metrics: &prometheus_parse::Scrape, name: &str, device: Option<&str>) -> f64 {
    metrics
        .samples
        .iter()
        .find(|s| s.metric == name && device.is_none_or(|d| s.labels.get("device") == Some(d)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("no sample {name} {device:?}"))
}

#[test]
fn the_dashboard_api_metrics_and_export_show_what_arrived() {
    let mut site = Site::new(true);
    site.broker.start();
    let a = site.counter(A);
    let b = site.counter(B);
    // A backlog from three days ago and today's (the charts show 14 days).
    a.receive_from(3, 30);
    a.receive_from(0, 12);
    b.receive_from(1, 20);
    let dc = site.receiver();
    let base = base_of(&dc);
    let _a = a.run();
    let _b = b.run();
    wait_until("both backlogs receipted", LIMIT, || {
        a.receipted() == 42 && b.receipted() == 20
    });

    site.add_operator("ops.fleet", &["fleet"]);
    site.add_operator("ops.records", &["records"]);
    let http = Http::new(&base);
    assert_eq!(http.get("/api/v1/fleet").status, 401, "a login first");
    assert_eq!(http.dc_login("ops.fleet", OPERATOR_PASSWORD).status, 303);
    let records = Http::new(&base);
    assert_eq!(
        records.dc_login("ops.records", OPERATOR_PASSWORD).status,
        303
    );
    wait_until("both counters online with reports", LIMIT, || {
        let f = http.get("/api/v1/fleet");
        f.status == 200
            && f.json().as_array().is_some_and(|rows| {
                rows.iter()
                    .all(|r| r["state"] == "online" && r["backlog"] == 0)
            })
    });

    // /metrics in the Prometheus text format, read by another parser.
    let m = http.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        m.headers
    );
    let lines = m.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    assert_eq!(
        sample(&scrape, "motcua_dc_records_stored_total", None),
        62.0
    );
    assert_eq!(sample(&scrape, "motcua_dc_device_online", Some(A)), 1.0);
    assert_eq!(sample(&scrape, "motcua_dc_device_head_seq", Some(B)), 20.0);
    assert_eq!(sample(&scrape, "motcua_dc_device_backlog", Some(A)), 0.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "motcua_dc_store_seconds"),
        "the store latency histogram"
    );
    assert!(!m.body.contains("Nguy"), "no personal data in metrics");

    // The records API, paged, and the unit filter: with the records role
    // and a purpose.
    let purpose = "doi%20soat%20thang%2012";
    assert_eq!(
        http.get(&format!(
            "/api/v1/records?from=2000-01-01&purpose={purpose}"
        ))
        .status,
        403,
        "the fleet role sees no records"
    );
    assert_eq!(
        records.get("/api/v1/records?from=2000-01-01").status,
        400,
        "no purpose stated"
    );
    let mut seen = 0;
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(c) => format!(
                "/api/v1/records?from=2000-01-01&to=2100-01-01&limit=25&purpose={purpose}&after={c}"
            ),
            None => {
                format!("/api/v1/records?from=2000-01-01&to=2100-01-01&limit=25&purpose={purpose}")
            }
        };
        let page = records.get(&q);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        let records = page["records"].as_array().expect("records");
        seen += records.len();
        for r in records {
            assert_eq!(r["unit"], "H49.12.3");
            assert!(r["envelope"].as_str().is_some_and(|e| e.starts_with("d2")));
        }
        match page["next"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 62);
    let other = records
        .get(&format!(
            "/api/v1/records?from=2000-01-01&to=2100-01-01&unit=H01.01.1&purpose={purpose}"
        ))
        .json();
    assert_eq!(other["records"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        records
            .get(&format!("/api/v1/records?from=hom-qua&purpose={purpose}"))
            .status,
        400
    );
    // Each page sent is in the access log: three pages of 25, 25 and 12.
    let entries = site.access_log();
    assert_eq!(
        entries
            .iter()
            .map(|e| e["count"].as_u64())
            .collect::<Vec<_>>(),
        [Some(25), Some(25), Some(12)],
        "{entries:?}"
    );
    for e in &entries {
        assert_eq!(e["who"], "operator:ops.records");
        assert_eq!(e["purpose"], "doi soat thang 12");
    }
    assert!(
        entries[0]["records"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{A}:1-25"))),
        "{entries:?}"
    );

    // The export command: CSV with a header, today's records only.
    let conf = site.dc_conf.to_str().expect("utf-8");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).expect("valid"))
        .date()
        .to_string();
    let csv = run(
        "motcua-dc",
        [
            "-c",
            conf,
            "--database",
            &site.database,
            "export",
            "--from",
            &today,
            "--format",
            "csv",
            "--purpose",
            "báo cáo tháng",
        ],
    );
    assert!(csv.ok, "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert!(
        lines[0].starts_with("device,seq,kind,code,unit"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines.len(),
        1 + 12,
        "today's 12 records of A: {}",
        csv.stderr
    );
    // For Excel: the same, after the UTF-8 byte order mark.
    let bom = run(
        "motcua-dc",
        [
            "-c",
            conf,
            "--database",
            &site.database,
            "export",
            "--from",
            &today,
            "--format",
            "csv",
            "--bom",
            "--purpose",
            "báo cáo tháng",
        ],
    );
    assert!(bom.ok, "{}", bom.stderr);
    assert_eq!(
        bom.stdout.strip_prefix('\u{feff}'),
        Some(csv.stdout.as_str())
    );
    // For a spreadsheet: `;`, the byte order mark, one column per member
    // of the body, the same records.
    let sheet = run(
        "motcua-dc",
        [
            "-c",
            conf,
            "--database",
            &site.database,
            "export",
            "--from",
            &today,
            "--format",
            "excel",
            "--purpose",
            "báo cáo tháng",
        ],
    );
    assert!(sheet.ok, "{}", sheet.stderr);
    let text = sheet
        .stdout
        .strip_prefix('\u{feff}')
        .expect("a byte order mark first");
    let mut rows = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let header: Vec<String> = rows
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), 12, "today's 12 records of A");
    for row in &rows {
        assert_eq!(row.len(), header.len());
        assert_eq!(&row[col("unit")], "H49.12.3");
        if &row[col("kind")] == "dossier.created" {
            assert!(!row[col("body.procedure")].is_empty(), "{row:?}");
            assert!(!row[col("body.applicant.name")].is_empty(), "{row:?}");
        }
        assert_eq!(&row[col("body.other")], "", "nothing unknown: {row:?}");
    }

    // The exports are in the access log after the API's pages, and the
    // chain holds.
    let verified = site.dc(&["access-log", "verify", "--json"]);
    assert!(verified.ok, "{}{}", verified.stdout, verified.stderr);
    let v: serde_json::Value = serde_json::from_str(&verified.stdout).expect("JSON");
    assert_eq!(v["entries"], 6, "{v}");
    let log = site.dc(&["access-log", "export", "--format", "csv"]);
    let last = log.stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("6,") && last.contains("command:") && last.contains("báo cáo tháng"),
        "{last}"
    );

    // The units' names, once published, stand beside their codes.
    let units = workspace().join("docs/examples/units.json");
    let published = run(
        "motcua-dc",
        [
            "-c",
            conf,
            "--database",
            &site.database,
            "publish",
            "units",
            units.to_str().expect("utf-8"),
        ],
    );
    assert!(published.ok, "{}", published.stderr);

    // The dashboard in Chromium.
    let (driver, port) = Driver::launch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = driver.session(port, 1300, 1100).await;
        let dir = workspace().join("target/dashboard-screenshots");
        std::fs::create_dir_all(&dir).expect("mkdir");
        c.goto(&format!("{base}/")).await.expect("goto");
        // Sent to the login page; logged in with the form.
        let form = c
            .wait()
            .for_element(Locator::Css("form.login"))
            .await
            .expect("the login form");
        std::fs::write(
            dir.join("login.png"),
            c.screenshot().await.expect("screenshot"),
        )
        .expect("writes");
        form.find(Locator::Css("input[name=ten]"))
            .await
            .expect("name field")
            .send_keys("ops.fleet")
            .await
            .expect("types");
        form.find(Locator::Css("input[name=mat_khau]"))
            .await
            .expect("password field")
            .send_keys(OPERATOR_PASSWORD)
            .await
            .expect("types");
        form.find(Locator::Css("button[type=submit]"))
            .await
            .expect("button")
            .click()
            .await
            .expect("submits");
        let table = c
            .wait()
            .for_element(Locator::Id("doi-may"))
            .await
            .expect("the fleet table");
        let text = table.text().await.expect("text");
        assert!(text.contains(A) && text.contains(B), "{text}");
        assert!(text.contains("H49.12.3 · UBND xã Tam Thăng"), "{text}");
        let bars = c
            .find_all(Locator::Css("#bieu-do-ho-so svg rect[fill]"))
            .await
            .expect("bars");
        assert!(
            bars.len() >= 4,
            "three days of bars and the unit's legend: {}",
            bars.len()
        );
        // The dossiers' value axis: each label once, rising from 0.
        let labels = c
            .find_all(Locator::Css("#bieu-do-ho-so svg text[text-anchor='end']"))
            .await
            .expect("axis labels");
        let mut values = Vec::new();
        for l in labels {
            let t = l.text().await.expect("text");
            values.push(
                t.parse::<u64>()
                    .unwrap_or_else(|_| panic!("a whole tick: {t:?}")),
            );
        }
        assert_eq!(values.first(), Some(&0), "{values:?}");
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        let who = c
            .find(Locator::Css("header .who"))
            .await
            .expect("who is logged in")
            .text()
            .await
            .expect("text");
        assert!(
            who.contains("ops.fleet") && who.contains("Đăng xuất"),
            "{who}"
        );
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(dir.join("dashboard.png"), png).expect("writes");
        c.close().await.expect("closes");
    });
    drop(driver);
    let log = dc.stop();
    assert!(!log.contains("panicked"), "{log}");
}
