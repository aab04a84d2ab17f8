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
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use motcua_e2e::kiosk::{Counter, SECRET, STAFF};
use motcua_e2e::site::{free_port, wait_until};
use motcua_e2e::workspace;

/// chromedriver in a process group of its own, and the Chromium it starts
/// with a profile directory of its own. Dropping it, whether the test ended
/// or panicked, kills the group and then any process still naming that
/// profile directory: a headless Chromium left behind by a failed run spins
/// on a core for as long as the machine stays up.
struct Driver {
    child: Child,
    profile: tempfile::TempDir,
}

impl Driver {
    fn start(chromedriver: &str, port: u16) -> Driver {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::Builder::new()
            .prefix("motcua-chromium-")
            .tempdir()
            .expect("profile directory");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Driver { child, profile }
    }

    fn profile(&self) -> String {
        self.profile.path().to_str().expect("utf-8").to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process, kill_process_group};
        if let Some(group) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.wait();
        let marker = self.profile();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker)
                && let Some(pid) = Pid::from_raw(pid)
            {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

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
    let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
    let c = Counter::start(true);
    let port = free_port();
    let driver = Driver::start(chromedriver, port);
    wait_until("chromedriver listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // The agent's sync indicator should say "connected" in the screenshots.
    wait_until("the agent is connected", Duration::from_secs(30), || {
        c.proc.log().contains("connected to the DC broker")
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-background-networking",
                         "--disable-dev-shm-usage", "--window-size=1100,1500", "--lang=vi",
                         format!("--user-data-dir={}", driver.profile())]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let base = &c.base;

        // Log in.
        client.goto(&format!("{base}/")).await.expect("goto");
        wait_path(&client, "/dang-nhap").await;
        shot(&client, "01-dang-nhap.png").await;
        let f = |name: &str| format!("input[name='{name}']");
        client
            .find(Locator::Css(&f("ma_can_bo")))
            .await
            .expect("login")
            .send_keys(STAFF)
            .await
            .expect("type");
        client
            .find(Locator::Css(&f("mat_khau")))
            .await
            .expect("password")
            .send_keys(SECRET)
            .await
            .expect("type");
        client
            .find(Locator::Css("form.login button"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
        wait_path(&client, "/tiep-nhan").await;

        // Find the procedure without diacritics, choose it.
        client
            .find(Locator::Css(&f("q")))
            .await
            .expect("search")
            .send_keys("khai sinh\n")
            .await
            .expect("type");
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
        client
            .find(Locator::Css(&f("ho_ten")))
            .await
            .expect("name")
            .send_keys("Nguyễn Thị Thu Hà")
            .await
            .expect("type");
        client
            .find(Locator::Css(&f("so_dinh_danh")))
            .await
            .expect("id")
            .send_keys("12345")
            .await
            .expect("type");
        client
            .find(Locator::Css(&f("dien_thoai")))
            .await
            .expect("phone")
            .send_keys("0912345678")
            .await
            .expect("type");
        client
            .find(Locator::Css(&f("dia_chi")))
            .await
            .expect("address")
            .send_keys("Thôn 1, xã Hòa Bắc")
            .await
            .expect("type");
        client
            .find(Locator::Css("input[name='giay_to']"))
            .await
            .expect("checklist")
            .click()
            .await
            .expect("tick");
        client
            .find(Locator::Css("#tiep-nhan button.primary"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
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
            .find(Locator::Css(&f("so_dinh_danh")))
            .await
            .expect("id");
        id.clear().await.expect("clear");
        id.send_keys("001190012345").await.expect("type");
        shot(&client, "03-tiep-nhan.png").await;
        client
            .find(Locator::Css("#tiep-nhan button.primary"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");

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
        client
            .find(Locator::Css(&f("q")))
            .await
            .expect("search")
            .send_keys("nguyen thi thu ha\n")
            .await
            .expect("type");
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
        client
            .find(Locator::Css("#doi-trang-thai button"))
            .await
            .expect("submit")
            .click()
            .await
            .expect("click");
        let mut status = String::new();
        for _ in 0..50 {
            status = client
                .find(Locator::Id("trang-thai"))
                .await
                .expect("status")
                .text()
                .await
                .expect("text");
            if status == "Đang xử lý" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "Đang xử lý");
        shot(&client, "06-trang-thai.png").await;

        // Log out: the screens are closed again.
        client
            .find(Locator::Css("form.logout button"))
            .await
            .expect("logout")
            .click()
            .await
            .expect("click");
        wait_path(&client, "/dang-nhap").await;
        client
            .goto(&format!("{base}/tiep-nhan"))
            .await
            .expect("goto");
        wait_path(&client, "/dang-nhap").await;
        client.close().await.expect("closes the session");
    });
}
