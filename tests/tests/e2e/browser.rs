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

async fn wait_path(c: &Client, path: &str) {
    for _ in 0..100 {
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
    for _ in 0..200 {
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
        assert_eq!(offered, ["4", "3", "7"], "from 'accepted'");
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
