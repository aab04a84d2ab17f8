//! The kiosk in a real headless Chromium, driven through chromedriver
//! (WebDriver), as a clerk uses it: log in, receive a dossier (the browser
//! first refuses a short ID number with the Vietnamese message), see the
//! receipt with its code and a QR code that decodes to it, print it (two
//! pages: the two copies), find it by a name typed without diacritics,
//! change its status, log out. Screenshots go to
//! `target/kiosk-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (CI installs them).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};
use motcua_e2e::kiosk::{Counter, SECRET, STAFF};
use motcua_e2e::site::wait_until;

use crate::chromium::Driver;
use motcua_e2e::workspace;

fn shots() -> PathBuf {
    let d = workspace().join("target/kiosk-screenshots");
    std::fs::create_dir_all(&d).expect("screenshot directory");
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(shots().join(name), png).expect("writes screenshot");
}

/// Waits until the browser is at `path` (up to a minute: a busy machine
/// can take long to answer a POST that fsyncs).
async fn wait_path(c: &Client, path: &str) {
    for _ in 0..600 {
        if c.current_url().await.expect("url").path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never reached {path}; at {}",
        c.current_url().await.expect("url")
    );
}

/// Runs `act`, which makes the browser load another page, and returns once
/// the page it was on is gone. An element the old page also has (a
/// procedure link, a search result) is otherwise found on the page being
/// replaced and clicked after it is gone.
async fn new_page<F: std::future::Future<Output = ()>>(c: &Client, act: F) {
    let old = c
        .find(Locator::Css("html"))
        .await
        .expect("the current page");
    act.await;
    for _ in 0..1200 {
        match old.tag_name().await {
            Err(e) if e.is_stale_element_reference() => return,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!(
        "the page never changed; still at {}",
        c.current_url().await.expect("url")
    );
}

/// Types `text` into the input named `name`.
async fn fill(c: &Client, name: &str, text: &str) {
    c.find(Locator::Css(&format!("input[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("input {name}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into {name}: {e}"));
}

/// Clicks the element `css` selects.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory(png).expect("PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the element");
    let (_, content) = grids[0].decode().expect("the QR code decodes");
    content
}

#[test]
fn a_clerk_receives_prints_finds_and_updates_a_dossier_in_chromium() {
    let c = Counter::start(true);
    let (driver, port) = Driver::launch();
    // The agent's sync indicator should say "connected" in the screenshots.
    wait_until("the agent is connected", Duration::from_secs(30), || {
        c.proc.log().contains("connected to the DC broker")
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = driver.session(port, 1100, 1500).await;
        let base = &c.base;

        // Log in.
        client.goto(&format!("{base}/")).await.expect("goto");
        wait_path(&client, "/dang-nhap").await;
        shot(&client, "01-dang-nhap.png").await;
        fill(&client, "ma_can_bo", STAFF).await;
        fill(&client, "mat_khau", SECRET).await;
        click(&client, "form.login button").await;
        wait_path(&client, "/tiep-nhan").await;

        // Find the procedure without diacritics, choose it.
        new_page(&client, fill(&client, "q", "khai sinh\n")).await;
        client
            .wait()
            .for_element(Locator::Css("a[href='/tiep-nhan?thu_tuc=1.000894']"))
            .await
            .expect("the procedure is listed")
            .click()
            .await
            .expect("click");
        client
            .wait()
            .for_element(Locator::Id("tiep-nhan"))
            .await
            .expect("the form");
        let sync = client
            .find(Locator::Id("dong-bo"))
            .await
            .expect("sync bar")
            .text()
            .await
            .expect("text");
        assert!(sync.contains("Đã kết nối"), "{sync}");

        // The browser refuses a short ID number with the server's sentence.
        fill(&client, "ho_ten", "Nguyễn Thị Thu Hà").await;
        fill(&client, "so_dinh_danh", "12345").await;
        fill(&client, "dien_thoai", "0912345678").await;
        fill(&client, "dia_chi", "Thôn 1, xã Hòa Bắc").await;
        click(&client, "input[name='giay_to']").await;
        click(&client, "#tiep-nhan button.primary").await;
        let message = client
            .execute(
                "return document.querySelector(\"input[name='so_dinh_danh']\").validationMessage",
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(message, "Số định danh cá nhân gồm đúng 12 chữ số.");
        assert_eq!(
            client.current_url().await.expect("url").path(),
            "/tiep-nhan",
            "not submitted"
        );
        shot(&client, "02-tiep-nhan-loi.png").await;

        let id = client
            .find(Locator::Css("input[name='so_dinh_danh']"))
            .await
            .expect("id");
        id.clear().await.expect("clear");
        id.send_keys("001190012345").await.expect("type");
        shot(&client, "03-tiep-nhan.png").await;
        click(&client, "#tiep-nhan button.primary").await;

        // The receipt: the code as text and as a QR code that decodes to it.
        let code_el = client
            .wait()
            .for_element(Locator::Id("ma-ho-so"))
            .await
            .expect("receipt");
        let code = code_el.text().await.expect("code");
        assert!(code.starts_with("H49.12.3-"), "{code}");
        shot(&client, "04-giay-tiep-nhan.png").await;
        let qr = client
            .find(Locator::Id("qr-ma-ho-so"))
            .await
            .expect("QR")
            .screenshot()
            .await
            .expect("QR screenshot");
        std::fs::write(shots().join("04-qr.png"), &qr).expect("writes");
        assert_eq!(decode_qr(&qr), code);
        let pdf = client
            .print(fantoccini::wd::PrintConfiguration::default())
            .await
            .expect("prints");
        std::fs::write(shots().join("04-giay-tiep-nhan.pdf"), &pdf).expect("writes PDF");
        let text = String::from_utf8_lossy(&pdf);
        let pages = text.matches("/Type /Page\n").count()
            + text.matches("/Type /Page ").count()
            + text.matches("/Type /Page/").count()
            + text.matches("/Type /Page>").count();
        assert_eq!(pages, 2, "two copies, one page each");

        // Find it by the name typed without diacritics.
        client.goto(&format!("{base}/tra-cuu")).await.expect("goto");
        new_page(&client, fill(&client, "q", "nguyen thi thu ha\n")).await;
        let link = client
            .wait()
            .for_element(Locator::Css(&format!("#ket-qua a[href='/ho-so/{code}']")))
            .await
            .expect("found by name without diacritics");
        shot(&client, "05-tra-cuu.png").await;
        link.click().await.expect("open");

        // Change its status: only the allowed moves are offered.
        client
            .wait()
            .for_element(Locator::Id("doi-trang-thai"))
            .await
            .expect("status form");
        let offered: Vec<String> = {
            let mut v = Vec::new();
            for o in client
                .find_all(Locator::Css("select[name='trang_thai'] option"))
                .await
                .expect("options")
            {
                v.push(o.attr("value").await.expect("value").unwrap_or_default());
            }
            v
        };
        assert_eq!(offered, ["", "4", "3", "7"], "from 'accepted', none chosen");
        client
            .find(Locator::Css("select[name='trang_thai']"))
            .await
            .expect("select")
            .select_by_value("4")
            .await
            .expect("choose");
        new_page(&client, click(&client, "#doi-trang-thai button")).await;
        let status = client
            .wait()
            .for_element(Locator::Id("trang-thai"))
            .await
            .expect("status")
            .text()
            .await
            .expect("text");
        assert_eq!(status, "Đang xử lý");
        let notice = client
            .find(Locator::Id("thong-bao"))
            .await
            .expect("a confirmation at the top")
            .text()
            .await
            .expect("text");
        assert!(notice.contains("Đã chuyển hồ sơ"), "{notice}");
        shot(&client, "06-trang-thai.png").await;

        // Log out: the screens are closed again.
        click(&client, "form.logout button").await;
        wait_path(&client, "/dang-nhap").await;
        client
            .goto(&format!("{base}/tiep-nhan"))
            .await
            .expect("goto");
        wait_path(&client, "/dang-nhap").await;
        client.close().await.expect("closes the session");
    });
}

/// The pages of a printed PDF and the size of its first, in points.
fn pdf_pages(pdf: &[u8]) -> (usize, (f64, f64)) {
    let text = String::from_utf8_lossy(pdf);
    let pages = text.matches("/Type /Page\n").count()
        + text.matches("/Type /Page ").count()
        + text.matches("/Type /Page/").count()
        + text.matches("/Type /Page>").count();
    let i = text.find("/MediaBox [").expect("a media box") + "/MediaBox [".len();
    let nums: Vec<f64> = text[i..]
        .split(']')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    (pages, (nums[2] - nums[0], nums[3] - nums[1]))
}

async fn print_pdf(c: &Client, width_cm: f64, height_cm: f64, name: &str) -> Vec<u8> {
    let cfg = fantoccini::wd::PrintConfiguration::builder()
        .size(fantoccini::wd::PrintSize {
            width: width_cm,
            height: height_cm,
        })
        .build()
        .expect("print configuration");
    let pdf = c.print(cfg).await.expect("prints");
    std::fs::write(shots().join(name), &pdf).expect("writes PDF");
    pdf
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn script(c: &Client, js: &str) -> serde_json::Value {
    c.execute(js, vec![]).await.expect("script")
}

/// A clerk's day at a 1280x800 screen: a same-day procedure received after
/// the cut-off, a refused field focused, a double-click, the receipt on A4
/// and A5, a scanner opening the dossier, and a refusal that asks first.
#[test]
fn a_clerks_day_at_the_counter_in_chromium() {
    const LOOKUP: &str = "https://dichvucong.example.gov.vn/tra-cuu?ma={code}";
    // The cut-off at 00:00: whenever this runs, a same-day dossier received
    // now is past it, so it is due at the close of the next working day.
    let c = Counter::start_office(
        true,
        &[],
        &[
            ("same_day_cutoff", "\"00:00\""),
            ("lookup_url", &format!("\"{LOOKUP}\"")),
        ],
    );
    // The DC names the units; the counter prints the name and place.
    let units = workspace().join("docs/examples/units.json");
    let published = motcua_e2e::run(
        "motcua-dc",
        [
            "-c",
            c.site.dc_conf.to_str().expect("utf-8"),
            "--database",
            &c.site.database,
            "publish",
            "units",
            units.to_str().expect("utf-8"),
        ],
    );
    assert!(published.ok, "{}", published.stderr);
    wait_until(
        "the units reach the counter",
        Duration::from_secs(60),
        || {
            c.proc
                .log()
                .contains("units' names and places from the DC cached")
        },
    );
    let http = c.http();
    assert_eq!(http.login_page(STAFF, SECRET).status, 303);
    let (driver, port) = Driver::launch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).expect("offset"))
        .date();
    let today_text = format!(
        "{:02}/{:02}/{}",
        today.day(),
        u8::from(today.month()),
        today.year()
    );
    rt.block_on(async {
        let client = driver.session(port, 1280, 800).await;
        let base = &c.base;
        client.goto(&format!("{base}/dang-nhap")).await.expect("goto");
        fill(&client, "ma_can_bo", STAFF).await;
        fill(&client, "mat_khau", SECRET).await;
        new_page(&client, click(&client, "form.login button")).await;

        // The same-day procedure: due at 17:00 of a later working day.
        client
            .goto(&format!("{base}/tiep-nhan?thu_tuc=1.000894"))
            .await
            .expect("goto");
        let due = text_of(&client, "#ngay-hen").await;
        assert!(due.starts_with("17:00 "), "{due}");
        assert!(!due.ends_with(&today_text), "after the cut-off: {due}");
        let info = text_of(&client, ".chosen-procedure").await;
        assert!(info.contains("Trong ngày"), "{info}");
        // The form and its button fit the first screen.
        let bottom = script(
            &client,
            "const r = document.querySelector('#tiep-nhan button.primary').getBoundingClientRect(); return r.bottom + window.scrollY;",
        )
        .await;
        assert!(
            bottom.as_f64().is_some_and(|b| b <= 800.0),
            "the submit button ends at {bottom}px"
        );
        // Keyboard: the name field has the focus.
        let focused = script(&client, "return document.activeElement.name").await;
        assert_eq!(focused, "ho_ten");
        shot(&client, "10-ngay-tiep-nhan.png").await;

        // A refused field (an unknown province code passes the browser's
        // pattern, not the server's rule): named, marked and focused.
        fill(&client, "ho_ten", "Lê Văn Tám").await;
        fill(&client, "so_dinh_danh", "000190012345").await;
        fill(&client, "dia_chi", "Thôn 4, xã Tam Thăng").await;
        new_page(&client, click(&client, "#tiep-nhan button.primary")).await;
        let banner = text_of(&client, "#loi").await;
        assert!(banner.contains("Số định danh cá nhân"), "{banner}");
        let focused = script(&client, "return document.activeElement.name").await;
        assert_eq!(focused, "so_dinh_danh");
        shot(&client, "11-loi-mot-truong.png").await;

        // Fixed, then a double-click on the button: one dossier.
        let id = client
            .find(Locator::Css("input[name='so_dinh_danh']"))
            .await
            .expect("id");
        id.clear().await.expect("clear");
        id.send_keys("049090012345").await.expect("type");
        new_page(
            &client,
            async {
                script(
                    &client,
                    "const b = document.querySelector('#tiep-nhan button.primary'); b.click(); b.click(); return true;",
                )
                .await;
            },
        )
        .await;
        let code = text_of(&client, "#ma-ho-so").await;
        let listed = http.get("/api/v1/dossiers?q=le%20van%20tam").json();
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed[0]["overdue"], false, "not overdue today");

        // The receipt: the date line, the counter, the legal time, the QR
        // opening the citizen's lookup page.
        let sheet = text_of(&client, "article.sheet").await;
        assert_eq!(text_of(&client, "#ten-co-quan").await, "UBND XÃ TAM THĂNG");
        let date_line = text_of(&client, "#ngay-thang").await;
        assert!(date_line.starts_with("Tam Thăng, ngày "), "{date_line}");
        for part in ["Quầy số 1", "Trong ngày", "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ"] {
            assert!(sheet.contains(part), "{part}: {sheet}");
        }
        assert!(!sheet.contains("H49.12.3-q01"), "{sheet}");
        shot(&client, "12-giay-tiep-nhan.png").await;
        let qr = client
            .find(Locator::Id("qr-ma-ho-so"))
            .await
            .expect("QR")
            .screenshot()
            .await
            .expect("QR screenshot");
        assert_eq!(decode_qr(&qr), LOOKUP.replace("{code}", &code));
        // A4: two pages of A4; A5: two sheets of A5.
        let (pages, (w, h)) = pdf_pages(&print_pdf(&client, 21.0, 29.7, "12-a4.pdf").await);
        assert_eq!(pages, 2, "A4: one copy a page");
        assert!((w - 595.0).abs() < 3.0 && (h - 842.0).abs() < 3.0, "A4 is {w}x{h}");
        let (pages, (w, h)) = pdf_pages(&print_pdf(&client, 14.8, 21.0, "12-a5.pdf").await);
        assert_eq!(pages, 2, "A5: one copy a sheet");
        assert!((w - 420.0).abs() < 3.0 && (h - 595.0).abs() < 3.0, "A5 is {w}x{h}");

        // A scanner types the QR's URL and Enter in the lookup box.
        client.goto(&format!("{base}/tra-cuu")).await.expect("goto");
        let scanned = LOOKUP.replace("{code}", &code);
        new_page(&client, fill(&client, "q", &format!("{scanned}\n"))).await;
        wait_path(&client, &format!("/ho-so/{code}")).await;

        // Refusing asks first, and needs the reason.
        client
            .find(Locator::Css("select[name='trang_thai']"))
            .await
            .expect("select")
            .select_by_value("3")
            .await
            .expect("choose");
        new_page(&client, click(&client, "#doi-trang-thai button")).await;
        let ask = text_of(&client, "#xac-nhan").await;
        assert!(ask.contains("không thể hoàn tác"), "{ask}");
        assert_eq!(text_of(&client, "#trang-thai").await, "Đã tiếp nhận");
        shot(&client, "13-xac-nhan-tu-choi.png").await;
        fill(&client, "ghi_chu", "Hồ sơ không thuộc thẩm quyền của xã").await;
        new_page(&client, click(&client, "#xac-nhan button.danger")).await;
        assert_eq!(text_of(&client, "#trang-thai").await, "Từ chối");
        assert!(text_of(&client, "#thong-bao").await.contains("Đã chuyển"));
        shot(&client, "14-da-tu-choi.png").await;

        // Form 03, the refusal to receive, printed from the signed record.
        new_page(&client, click(&client, "a.form-link")).await;
        let form = text_of(&client, "#phieu").await;
        for part in [
            "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ",
            "UBND XÃ TAM THĂNG",
            "Tam Thăng, ngày ",
            "Hồ sơ không thuộc thẩm quyền của xã",
            "Lê Văn Tám",
            "NGƯỜI TIẾP NHẬN HỒ SƠ",
        ] {
            assert!(form.contains(part), "{part}: {form}");
        }
        shot(&client, "16-mau-03.png").await;
        let (pages, _) = pdf_pages(&print_pdf(&client, 21.0, 29.7, "16-mau-03.pdf").await);
        assert_eq!(pages, 1, "form 03 on one A4 page");

        // The lookup: one line per dossier, the procedure's name shown.
        client
            .goto(&format!("{base}/tra-cuu"))
            .await
            .expect("goto");
        let row = text_of(&client, "#ket-qua tbody tr").await;
        assert!(row.contains("Đăng ký khai sinh"), "{row}");
        let wrapped = script(
            &client,
            "return [...document.querySelectorAll('#ket-qua td.nowrap')].some(td => td.getClientRects().length > 1 || td.scrollHeight > 40);",
        )
        .await;
        assert_eq!(wrapped, false, "codes and dates on one line");
        shot(&client, "15-tra-cuu.png").await;
        client.close().await.expect("closes the session");
    });
}

/// A late dossier on a clock set by hand: the receipt page offers the
/// apology, the clerk gives a new appointment and a reason, and form 04
/// prints on one A4 page.
#[test]
fn a_late_dossier_gets_its_apology_form_in_chromium() {
    use motcua_e2e::kiosk::ManualClock;
    // Monday 07/12/2026 10:00 in Vietnam.
    let clock = ManualClock::at("2026-12-07 03:00:00");
    let c = Counter::start_clocked(&clock);
    let http = c.http();
    let csrf = http.login_api();
    let made = http.post_json(
        "/api/v1/dossiers",
        &serde_json::json!({
            "procedure": "1.000894",
            "applicant": {"name": "Trần Thị Mai", "id_number": "049190012345",
                          "address": "Thôn 2, xã Tam Thăng"},
            "documents": [{"name": "Giấy chứng sinh"}]
        }),
        Some(&csrf),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let code = made.json()["code"].as_str().expect("code").to_owned();
    // Wednesday 09/12 08:00: due Monday 17:00, late.
    clock.set("2026-12-09 01:00:00");
    let (driver, port) = Driver::launch();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = driver.session(port, 1280, 800).await;
        let base = &c.base;
        client.goto(&format!("{base}/dang-nhap")).await.expect("goto");
        fill(&client, "ma_can_bo", STAFF).await;
        fill(&client, "mat_khau", SECRET).await;
        new_page(&client, click(&client, "form.login button")).await;
        client
            .goto(&format!("{base}/ho-so/{code}"))
            .await
            .expect("goto");
        let offer = text_of(&client, "#xin-loi").await;
        assert!(offer.contains("17:00 07/12/2026"), "{offer}");
        // The apology form is on the first screen, under the status box.
        let bottom = script(
            &client,
            "const r = document.querySelector('#hen-lai-form button').getBoundingClientRect(); return r.bottom + window.scrollY;",
        )
        .await;
        assert!(
            bottom.as_f64().is_some_and(|b| b <= 800.0),
            "the apology's button ends at {bottom}px"
        );
        // A date input takes its value in the browser's locale; set it as
        // the date picker would.
        script(
            &client,
            "document.querySelector('#ngay-hen-moi').value = '2026-12-10'; return true;",
        )
        .await;
        fill(&client, "ly_do", "Chờ trích lục từ Sở Tư pháp").await;
        shot(&client, "17-xin-loi.png").await;
        new_page(&client, click(&client, "#hen-lai-form button")).await;
        let form = text_of(&client, "#phieu").await;
        for part in [
            "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
            "Kính gửi: Trần Thị Mai",
            "Thời hạn trả kết quả giải quyết hồ sơ: 17 giờ 00 phút, ngày 07 tháng 12 năm 2026",
            "Chờ trích lục từ Sở Tư pháp",
            "17 giờ 00 phút, ngày 10 tháng 12 năm 2026",
            "THỦ TRƯỞNG CƠ QUAN",
        ] {
            assert!(form.contains(part), "{part}: {form}");
        }
        shot(&client, "18-mau-04.png").await;
        let (pages, (w, h)) = pdf_pages(&print_pdf(&client, 21.0, 29.7, "18-mau-04.pdf").await);
        assert_eq!(pages, 1, "form 04 on one A4 page");
        assert!((w - 595.0).abs() < 2.0 && (h - 842.0).abs() < 2.0, "{w}x{h}");
        // Back on the receipt page: the new appointment and the form's link.
        client
            .goto(&format!("{base}/ho-so/{code}"))
            .await
            .expect("goto");
        assert_eq!(text_of(&client, "#hen-lai").await, "17:00 10/12/2026");
        let links = text_of(&client, ".receipt-bar .actions").await;
        assert!(links.contains("mẫu 04"), "{links}");
        client.close().await.expect("closes the session");
    });
}
