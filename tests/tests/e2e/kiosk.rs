//! The kiosk over HTTP, as the clerks' browser and other counter software
//! use it: login, CSRF, lockout, escaping, body limits, the JSON API, and
//! no personal data in the agent's log.

use motcua_e2e::kiosk::{Counter, SECRET, STAFF, fresh_key};
use serde_json::json;

const NAME: &str = "Nguyễn Thị Thu Hà";
const ID_NUMBER: &str = "001190012345";
const PROCEDURE: &str = "1.000894";

fn dossier_json(name: &str, id_number: &str, address: &str) -> serde_json::Value {
    json!({
        "procedure": PROCEDURE,
        "applicant": { "name": name, "id_number": id_number, "phone": "0912345678", "address": address },
        "documents": [{ "name": "Giấy chứng sinh" }]
    })
}

#[test]
fn pages_need_a_login_and_every_form_its_csrf_token() {
    let c = Counter::start(false);
    let http = c.http();

    // Without a session every screen sends the clerk to the login page.
    for path in ["/", "/tiep-nhan", "/tra-cuu", "/ho-so/H49.12.3-261127-1001"] {
        let a = http.get(path);
        assert_eq!(a.status, 303, "{path}");
        assert_eq!(a.header("location"), "/dang-nhap", "{path}");
    }

    // The login form's token must come back with its cookie.
    let form = http.get("/dang-nhap");
    assert!(form.header("set-cookie").contains("HttpOnly"));
    let forged = http.post_form(
        "/dang-nhap",
        &[
            ("_csrf", "0000"),
            ("ma_can_bo", STAFF),
            ("mat_khau", SECRET),
        ],
    );
    assert_eq!(forged.status, 403);
    assert!(http.cookies.borrow().get("motcua_phien").is_none());

    let ok = http.login_page(STAFF, SECRET);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), "/tiep-nhan");
    let cookie = ok
        .header("set-cookie")
        .lines()
        .find(|l| l.starts_with("motcua_phien="))
        .expect("session cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let page = http.get(&format!("/tiep-nhan?thu_tuc={PROCEDURE}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Tiếp nhận hồ sơ") && page.body.contains("Giấy chứng sinh"));
    assert!(
        page.header("content-security-policy")
            .contains("default-src 'self'")
    );
    assert_eq!(page.header("cache-control"), "no-store");
    let csrf = page.hidden("_csrf");

    // A submission without the token stores nothing.
    let fields = [
        ("thu_tuc", PROCEDURE),
        ("ho_ten", NAME),
        ("so_dinh_danh", ID_NUMBER),
        ("dia_chi", "Thôn 1"),
    ];
    let refused = http.post_form("/ho-so", &fields);
    assert_eq!(refused.status, 403);
    let with_bad = [&fields[..], &[("_csrf", "abc")]].concat();
    assert_eq!(http.post_form("/ho-so", &with_bad).status, 403);
    let list = http.get("/tra-cuu?q=nguyen");
    assert!(
        list.body.contains("Không có hồ sơ phù hợp"),
        "nothing was stored"
    );

    // Logging out needs the token too, then the session is gone.
    assert_eq!(http.post_form("/dang-xuat", &[]).status, 403);
    let out = http.post_form("/dang-xuat", &[("_csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(http.get("/tiep-nhan").status, 303);
}

#[test]
fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let c = Counter::start_with(false, &[("max_failures", "3"), ("lockout", "\"10m\"")]);
    let http = c.http();
    for _ in 0..2 {
        let a = http.login_page(STAFF, "sai-mat-khau");
        assert_eq!(a.status, 401);
        assert!(a.body.contains("Sai mã cán bộ hoặc mật khẩu."));
    }
    let third = http.login_page(STAFF, "sai-mat-khau");
    assert_eq!(third.status, 429);
    assert!(third.body.contains("Tài khoản tạm khóa"), "{}", third.body);
    let right = http.login_page(STAFF, SECRET);
    assert_eq!(right.status, 429, "locked even with the right password");
    // The API shares the lock.
    let api = http.post_json(
        "/api/v1/login",
        &json!({ "staff": STAFF, "secret": SECRET }),
        None,
    );
    assert_eq!(api.status, 429);
    assert_eq!(api.json()["error"], "locked");
    // An unknown account answers like a wrong password.
    let unknown = http.login_page("khong.co", SECRET);
    assert_eq!(unknown.status, 401);
}

#[test]
fn typed_text_is_escaped_refusals_keep_the_form_and_bodies_are_bounded() {
    let c = Counter::start(false);
    let http = c.http();
    assert_eq!(http.login_page(STAFF, SECRET).status, 303);
    let form = http.get(&format!("/tiep-nhan?thu_tuc={PROCEDURE}"));
    let csrf = form.hidden("_csrf");
    let key = form.hidden("ma_lan_gui");
    assert!(key.len() >= 16, "the form carries its idempotency key");

    // A refused submission comes back filled in, with the reasons, and
    // the same key.
    let bad = http.post_form(
        "/ho-so",
        &[
            ("_csrf", &csrf),
            ("ma_lan_gui", &key),
            ("thu_tuc", PROCEDURE),
            ("ho_ten", "Trần <b>Bình</b>"),
            ("so_dinh_danh", "12345"),
            ("dien_thoai", "0912345678"),
            ("dia_chi", "Xóm 2 <script>alert(1)</script>"),
            ("giay_to", "Giấy chứng sinh"),
        ],
    );
    assert_eq!(bad.status, 422);
    assert!(
        bad.body
            .contains("Số định danh cá nhân phải gồm đúng 12 chữ số.")
    );
    assert!(
        bad.body.contains("value=\"12345\""),
        "the ID number typed is kept"
    );
    assert!(bad.body.contains("value=\"0912345678\""));
    assert!(
        bad.body
            .contains("Xóm 2 &lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!bad.body.contains("<script>alert"), "never raw");
    assert!(
        bad.body.contains("value=\"Giấy chứng sinh\" checked"),
        "the checklist is kept"
    );
    assert_eq!(bad.hidden("ma_lan_gui"), key);
    // The banner names the refused fields; each is marked, the first on
    // the screen focused.
    assert!(
        bad.body
            .contains("2 lỗi</strong> ở Họ và tên, Số định danh cá nhân."),
        "{}",
        bad.body
    );
    assert!(
        bad.body
            .contains("autocomplete=\"off\" aria-invalid=\"true\" autofocus>")
            && bad.body.matches("aria-invalid=\"true\"").count() == 2
            && bad.body.matches(" autofocus").count() == 1,
        "{}",
        bad.body
    );

    // Stored, the receipt shows the same text escaped. Pressed twice (a
    // double-click, a browser's resend): one dossier, the same receipt.
    let fields = [
        ("_csrf", csrf.as_str()),
        ("ma_lan_gui", key.as_str()),
        ("thu_tuc", PROCEDURE),
        ("ho_ten", NAME),
        ("so_dinh_danh", ID_NUMBER),
        ("dia_chi", "Xóm 2 <script>alert(1)</script>"),
    ];
    let ok = http.post_form("/ho-so", &fields);
    assert_eq!(ok.status, 303, "{}", ok.body);
    let twice = http.post_form("/ho-so", &fields);
    assert_eq!(twice.status, 303, "{}", twice.body);
    let first_code = ok.header("location").trim_end_matches("?moi=1");
    assert_eq!(
        twice.header("location"),
        format!("{first_code}?moi=2"),
        "the second press answers with the first dossier"
    );
    let repeated = http.get(twice.header("location"));
    assert!(
        repeated.body.contains("không tạo thêm hồ sơ mới"),
        "{}",
        repeated.body
    );
    let todays = http.get("/api/v1/dossiers?day=");
    assert_eq!(
        todays.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        todays.body
    );
    // A form without its key is refused and shown again with a new one.
    let unkeyed = http.post_form(
        "/ho-so",
        &[
            ("_csrf", csrf.as_str()),
            ("thu_tuc", PROCEDURE),
            ("ho_ten", NAME),
            ("so_dinh_danh", ID_NUMBER),
            ("dia_chi", "Thôn 3"),
        ],
    );
    assert_eq!(unkeyed.status, 422, "{}", unkeyed.body);
    assert!(unkeyed.hidden("ma_lan_gui").len() >= 16);
    let receipt = http.get(ok.header("location"));
    assert_eq!(receipt.status, 200);
    assert!(
        receipt
            .body
            .contains("GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ")
    );
    assert!(
        receipt
            .body
            .contains("Xóm 2 &lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!receipt.body.contains("<script>alert"));
    assert!(receipt.body.contains("<svg"), "the QR code");

    // Oversized bodies: 413, on the pages and the API alike.
    let big = vec![b'a'; 100 * 1024];
    let a = http.post_raw("/ho-so", "application/x-www-form-urlencoded", &big, &[]);
    assert_eq!(a.status, 413);
    assert!(a.body.contains("quá lớn"));
    let a = http.post_raw(
        "/api/v1/dossiers",
        "application/json",
        &big,
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(a.status, 413);

    // Unknown routes: a friendly page, no internals.
    let nf = http.get("/khong-co-trang-nay");
    assert_eq!(nf.status, 404);
    assert!(nf.body.contains("Không tìm thấy trang này"));
    let nf = http.get("/ho-so/H49.12.3-991231-9999");
    assert_eq!(nf.status, 404);
    let api = http.get("/api/v1/khong-co");
    assert_eq!(api.status, 404);
    assert_eq!(api.json()["error"], "no_such_route");
}

#[test]
fn the_api_receives_finds_and_moves_dossiers_and_the_log_holds_no_personal_data() {
    let c = Counter::start(false);
    let http = c.http();
    let unauth = http.get("/api/v1/dossiers?q=nguyen");
    assert_eq!(unauth.status, 401);

    let csrf = http.login_api();

    let procs = http.get("/api/v1/procedures?q=khai%20sinh");
    assert_eq!(procs.status, 200);
    let procs = procs.json();
    assert_eq!(procs[0]["code"], PROCEDURE, "search without diacritics");
    assert!(
        procs[0]["appointment"]
            .as_str()
            .is_some_and(|d| d.len() == 10)
    );

    let body = dossier_json(NAME, ID_NUMBER, "Thôn 1, xã Hòa Bắc");
    let no_token = http.post_json("/api/v1/dossiers", &body, None);
    assert_eq!(no_token.status, 403);
    assert_eq!(no_token.json()["error"], "csrf");
    let form_encoded = http.post_raw(
        "/api/v1/dossiers",
        "text/plain",
        body.to_string().as_bytes(),
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(form_encoded.status, 415);

    let bad = http.post_json(
        "/api/v1/dossiers",
        &dossier_json(NAME, "12", "x"),
        Some(&csrf),
    );
    assert_eq!(bad.status, 422);
    let problems = bad.json()["problems"].clone();
    assert!(
        problems
            .as_array()
            .expect("list")
            .iter()
            .any(|p| p["field"] == "applicant.id_number"),
        "{problems}"
    );

    // Every write carries an idempotency key.
    let unkeyed = http.post_json_keyed("/api/v1/dossiers", &body, Some(&csrf), "");
    assert_eq!(unkeyed.status, 400, "{}", unkeyed.body);
    assert_eq!(
        unkeyed.json()["problems"][0]["code"],
        "idempotency_key_missing"
    );

    let key = fresh_key();
    let created = http.post_json_keyed("/api/v1/dossiers", &body, Some(&csrf), &key);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("idempotent-replayed"), "false");
    let code = created.json()["code"].as_str().expect("code").to_owned();
    assert!(code.starts_with("H49.12.3-"));
    assert_eq!(created.json()["dossier"]["staff"], STAFF);
    // The same request again (a client retrying after a timeout): the
    // first dossier, not a second one.
    let again = http.post_json_keyed("/api/v1/dossiers", &body, Some(&csrf), &key);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.json()["code"], code.as_str());
    assert_eq!(again.json()["seq"], created.json()["seq"]);
    // The same key with other content: refused, nothing stored.
    let other = dossier_json(NAME, ID_NUMBER, "Thôn 2, xã Hòa Bắc");
    let reused = http.post_json_keyed("/api/v1/dossiers", &other, Some(&csrf), &key);
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert_eq!(
        reused.json()["problems"][0]["code"],
        "idempotency_key_reused"
    );
    assert!(!reused.body.contains("Thôn"), "{}", reused.body);

    let found = http.get("/api/v1/dossiers?q=nguyen%20thi%20thu%20ha");
    assert_eq!(found.status, 200);
    assert_eq!(found.json()[0]["code"], code.as_str());
    let by_id = http.get(&format!("/api/v1/dossiers?id_number={ID_NUMBER}"));
    assert_eq!(by_id.json()[0]["code"], code.as_str());
    let one = http.get(&format!("/api/v1/dossiers/{code}"));
    assert_eq!(one.json()["dossier"]["applicant"]["name"], NAME);

    let moved = http.post_json(
        &format!("/api/v1/dossiers/{code}/status"),
        &json!({ "status": 4 }),
        Some(&csrf),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.json()["to"], 4);
    let not_allowed = http.post_json(
        &format!("/api/v1/dossiers/{code}/status"),
        &json!({ "status": 10 }),
        Some(&csrf),
    );
    assert_eq!(not_allowed.status, 409);

    let sync = http.get("/api/v1/sync").json();
    assert_eq!(sync["online"], false);
    assert_eq!(sync["waiting"], 2, "one dossier, one status change: {sync}");

    // Across a restart of the agent, the key still answers with the first
    // dossier.
    let c = c.restart();
    let http = c.http();
    let csrf = http.login_api();
    let after = http.post_json_keyed("/api/v1/dossiers", &body, Some(&csrf), &key);
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.json()["code"], code.as_str());
    let today = http
        .get("/api/v1/dossiers?q=nguyen%20thi%20thu%20ha")
        .json();
    assert_eq!(today.as_array().map(Vec::len), Some(1), "{today}");

    let out = http.post_raw(
        "/api/v1/logout",
        "application/json",
        b"{}",
        &[("X-CSRF-Token", &csrf)],
    );
    assert_eq!(out.status, 204);
    assert_eq!(http.get("/api/v1/sync").status, 401);

    let Counter { proc, .. } = c;
    let log = proc.stop();
    assert!(log.contains(&code), "the log names the dossier code");
    for personal in [NAME, ID_NUMBER, "0912345678", "Hòa Bắc", SECRET] {
        assert!(
            !log.contains(personal),
            "the log holds {personal:?}:\n{log}"
        );
    }
}

/// The counter's day on a clock set by hand: a same-day procedure received
/// at 16:00, after the 15:00 cut-off, is due at closing time of the next
/// working day and not overdue that evening; two days later it is, the
/// receipt page offers the apology (form 04), and the apology prints with
/// the new appointment, signed into the journal once however often it is
/// sent.
#[test]
fn a_late_afternoon_dossier_is_due_tomorrow_and_a_late_one_gets_form_04() {
    use motcua_e2e::kiosk::ManualClock;
    // Monday 07/12/2026 16:00 in Vietnam.
    let clock = ManualClock::at("2026-12-07 09:00:00");
    let c = Counter::start_clocked(&clock);
    let http = c.http();
    let csrf = http.login_api();
    let made = http.post_json(
        "/api/v1/dossiers",
        &dossier_json(NAME, ID_NUMBER, "Thôn 1, xã Hòa Bắc"),
        Some(&csrf),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    let code = made["code"].as_str().expect("a code").to_owned();
    assert!(
        code.contains("-261207-"),
        "received on the clock's day: {code}"
    );
    // Tuesday 08/12 17:00 in Vietnam.
    assert_eq!(
        made["dossier"]["appointment_at"],
        "2026-12-08T10:00:00.000Z"
    );
    assert_eq!(made["dossier"]["working_days"], 0);
    let overdue = |http: &motcua_e2e::kiosk::Http| {
        let found = http.get("/api/v1/dossiers?overdue=true");
        assert_eq!(found.status, 200, "{}", found.body);
        found
            .json()
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|d| d["code"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(overdue(&http).is_empty(), "not overdue the evening it came");
    let page = http.get(&format!("/ho-so/{code}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Trong ngày"),
        "the legal time as the forms say it"
    );
    assert!(
        !page.body.contains("id=\"xin-loi\""),
        "no apology before it is due"
    );

    // Wednesday 09/12 10:00: a day late.
    clock.set("2026-12-09 03:00:00");
    assert_eq!(overdue(&http), std::slice::from_ref(&code));
    let page = http.get(&format!("/ho-so/{code}"));
    assert!(
        page.body.contains("id=\"xin-loi\""),
        "the apology is offered"
    );
    let key = page.hidden("ma_lan_gui");
    let form_csrf = page.hidden("_csrf");
    let apology = |day: &str, reason: &str, key: &str| {
        http.post_form(
            &format!("/ho-so/{code}/hen-lai"),
            &[
                ("_csrf", &form_csrf),
                ("ma_lan_gui", key),
                ("ngay", day),
                ("gio", "17:00"),
                ("ly_do", reason),
            ],
        )
    };
    // A Saturday is refused, with the form kept as typed.
    let saturday = apology(
        "2026-12-12",
        "Chờ xác minh hộ tịch nơi đăng ký",
        &fresh_key(),
    );
    assert_eq!(saturday.status, 422, "{}", saturday.body);
    assert!(
        saturday.body.contains("không phải ngày làm việc"),
        "{}",
        saturday.body
    );
    assert!(saturday.body.contains("Chờ xác minh hộ tịch nơi đăng ký"));
    // Thursday 10/12, twice with the same key (a double-click).
    let first = apology("10/12/2026", "Chờ xác minh hộ tịch nơi đăng ký", &key);
    assert_eq!(first.status, 303, "{}", first.body);
    let again = apology("10/12/2026", "Chờ xác minh hộ tịch nơi đăng ký", &key);
    assert_eq!(again.status, 303, "{}", again.body);
    let sheet = first.header("location").to_owned();
    assert_eq!(again.header("location"), sheet, "the same record");
    assert!(
        sheet.starts_with(&format!("/ho-so/{code}/phieu/")),
        "{sheet}"
    );
    let form = http.get(&sheet);
    assert_eq!(form.status, 200, "{}", form.body);
    for text in [
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        NAME,
        "17 giờ 00 phút, ngày 08 tháng 12 năm 2026",
        "17 giờ 00 phút, ngày 10 tháng 12 năm 2026",
        "Chờ xác minh hộ tịch nơi đăng ký",
        "THỦ TRƯỞNG CƠ QUAN",
    ] {
        assert!(
            form.body.contains(text),
            "form 04 lacks {text}: {}",
            form.body
        );
    }
    // Still counted late; the receipt page shows the new appointment and
    // links the form.
    assert_eq!(overdue(&http), std::slice::from_ref(&code));
    let page = http.get(&format!("/ho-so/{code}"));
    assert!(page.body.contains("id=\"hen-lai\""));
    assert!(page.body.contains(&format!("href=\"{sheet}\"")));
    let stored = http.get(&format!("/api/v1/dossiers/{code}"));
    assert_eq!(stored.status, 200);
    assert_eq!(stored.json()["rescheduled_at"], "2026-12-10T10:00:00.000Z");

    // The API: the same, RFC 3339.
    let api = http.post_json(
        &format!("/api/v1/dossiers/{code}/reschedule"),
        &json!({"to": "2026-12-11T17:00:00+07:00", "note": "Chờ ý kiến cơ quan phối hợp"}),
        Some(&csrf),
    );
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(api.json()["from"], "2026-12-10T10:00:00.000Z");
    assert_eq!(api.json()["to"], "2026-12-11T10:00:00.000Z");
    let log = c.proc.log();
    assert!(log.contains("dossier rescheduled"), "{log}");
    for personal in [NAME, ID_NUMBER, "Chờ xác minh"] {
        assert!(
            !log.contains(personal),
            "the log holds {personal:?}:\n{log}"
        );
    }
}
