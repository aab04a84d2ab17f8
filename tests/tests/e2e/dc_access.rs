//! Who may read what at the data centre, against `motcua-dc run` as
//! shipped: every route for every kind of caller (a table: route x caller
//! -> status), by session and by HTTP Basic authentication; a disabled
//! account loses its open session; the lockout; and the access log's
//! tamper detection through `motcua-dc access-log verify`.

use std::time::Duration;

use motcua_e2e::kiosk::{Answer, Http};
use motcua_e2e::site::{OPERATOR_PASSWORD, Site, wait_until};

const A: &str = "H49.12.3-q01";
const LIMIT: Duration = Duration::from_secs(60);

/// A caller of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No credentials.
    Nobody,
    /// A Basic header with a wrong password.
    WrongPassword,
    /// Sessions (and, once, Basic) of accounts with these roles.
    Fleet,
    Records,
    Admin,
    FleetAndRecords,
}

const PURPOSE: &str = "kiem%20tra%20quyen";

/// Every route mounted, and what each caller gets there.
fn table() -> Vec<(&'static str, [(Caller, u16); 6])> {
    use Caller::*;
    let records = format!("/api/v1/records?from=2000-01-01&to=2100-01-01&purpose={PURPOSE}");
    let records: &'static str = Box::leak(records.into_boxed_str());
    vec![
        (
            "/",
            [
                (Nobody, 303),
                (WrongPassword, 303),
                (Fleet, 200),
                (Records, 403),
                (Admin, 403),
                (FleetAndRecords, 200),
            ],
        ),
        (
            "/api/v1/fleet",
            [
                (Nobody, 401),
                (WrongPassword, 401),
                (Fleet, 200),
                (Records, 403),
                (Admin, 403),
                (FleetAndRecords, 200),
            ],
        ),
        (
            "/metrics",
            [
                (Nobody, 401),
                (WrongPassword, 401),
                (Fleet, 200),
                (Records, 403),
                (Admin, 403),
                (FleetAndRecords, 200),
            ],
        ),
        (
            records,
            [
                (Nobody, 401),
                (WrongPassword, 401),
                (Fleet, 403),
                (Records, 200),
                (Admin, 403),
                (FleetAndRecords, 200),
            ],
        ),
        (
            "/healthz",
            [
                (Nobody, 200),
                (WrongPassword, 200),
                (Fleet, 200),
                (Records, 200),
                (Admin, 200),
                (FleetAndRecords, 200),
            ],
        ),
        (
            "/dang-nhap",
            [
                (Nobody, 200),
                (WrongPassword, 200),
                (Fleet, 200),
                (Records, 200),
                (Admin, 200),
                (FleetAndRecords, 200),
            ],
        ),
    ]
}

fn account(c: Caller) -> Option<&'static str> {
    match c {
        Caller::Nobody | Caller::WrongPassword => None,
        Caller::Fleet => Some("ops.fleet"),
        Caller::Records => Some("ops.records"),
        Caller::Admin => Some("ops.admin"),
        Caller::FleetAndRecords => Some("ops.both"),
    }
}

fn basic(name: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
    )
}

/// No personal field of the simulated dossiers (Site::counter's
/// applicant) in an answer.
fn no_personal_data(a: &Answer, what: &str) {
    for needle in ["Trần Văn An", "048085000123", "tổ 3", "applicant"] {
        assert!(!a.body.contains(needle), "{what} shows {needle:?}");
    }
}

#[test]
fn each_route_answers_each_caller_as_its_role_allows_and_reads_are_logged() {
    let mut site = Site::new(false);
    site.broker.start();
    let a = site.counter(A);
    a.receive_from(0, 6);
    let dc = site.receiver();
    let base = crate::dashboard::base_of(&dc);
    let _a = a.run();
    wait_until("the records receipted", LIMIT, || a.receipted() == 6);
    site.add_operator("ops.fleet", &["fleet"]);
    site.add_operator("ops.records", &["records"]);
    site.add_operator("ops.admin", &["admin"]);
    site.add_operator("ops.both", &["fleet", "records"]);

    // Sessions, one per account.
    let sessions: Vec<(Caller, Http)> = [
        Caller::Fleet,
        Caller::Records,
        Caller::Admin,
        Caller::FleetAndRecords,
    ]
    .into_iter()
    .map(|c| {
        let h = Http::new(&base);
        let login = h.dc_login(account(c).expect("an account"), OPERATOR_PASSWORD);
        assert_eq!(login.status, 303, "{c:?}: {}", login.body);
        (c, h)
    })
    .collect();
    let anonymous = Http::new(&base);
    let mut checked = 0;
    for (route, row) in table() {
        for (caller, want) in row {
            let got = match caller {
                Caller::Nobody => anonymous.get(route),
                Caller::WrongPassword => {
                    anonymous.get_with(route, &[("Authorization", &basic("ops.fleet", "sai"))])
                }
                _ => {
                    let h = &sessions
                        .iter()
                        .find(|(c, _)| *c == caller)
                        .expect("a session")
                        .1;
                    h.get(route)
                }
            };
            assert_eq!(
                got.status, want,
                "{route} as {caller:?} by session: {}",
                got.body
            );
            if got.status == 401 {
                assert_eq!(
                    got.body, "{\"error\":\"authentication required\"}",
                    "no detail leaked"
                );
            }
            if caller != Caller::Records && caller != Caller::FleetAndRecords {
                no_personal_data(&got, &format!("{route} as {caller:?}"));
            }
            // The same with HTTP Basic authentication, as programs call.
            if let Some(name) = account(caller) {
                let by_basic = anonymous
                    .get_with(route, &[("Authorization", &basic(name, OPERATOR_PASSWORD))]);
                let want_basic = if want == 303 { 401 } else { want };
                assert_eq!(
                    by_basic.status, want_basic,
                    "{route} as {caller:?} by Basic"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 36);
    // The pages say who is in, and nothing here sets a cookie for another
    // site or for scripts.
    let (_, fleet) = &sessions[0];
    assert!(fleet.get("/").body.contains("ops.fleet"));
    let form = anonymous.get("/dang-nhap");
    assert!(
        form.header("set-cookie")
            .contains("HttpOnly; SameSite=Strict"),
        "{:?}",
        form.headers
    );
    // A form posted without its token is refused.
    let forged = Http::new(&base);
    let r = forged.post_form(
        "/dang-nhap",
        &[
            ("ten", "ops.fleet"),
            ("mat_khau", OPERATOR_PASSWORD),
            ("_csrf", "x"),
        ],
    );
    assert_eq!(r.status, 403);

    // The records read above are in the access log: by session and by
    // Basic, each naming the account and the purpose.
    let entries = site.access_log();
    let mut by: Vec<&str> = entries.iter().filter_map(|e| e["who"].as_str()).collect();
    by.sort_unstable();
    assert_eq!(
        by,
        [
            "operator:ops.both",
            "operator:ops.both",
            "operator:ops.records",
            "operator:ops.records"
        ]
    );
    for e in &entries {
        assert_eq!(e["purpose"], "kiem tra quyen");
        assert_eq!(e["records"], format!("{A}:1-6"));
        assert_eq!(e["count"], 6);
    }

    // A disabled account's open session ends at its next request.
    let (_, both) = &sessions[3];
    let off = site.dc(&["user", "disable", "ops.both"]);
    assert!(off.ok, "{}", off.stderr);
    assert_eq!(both.get("/api/v1/fleet").status, 401);
    assert_eq!(both.dc_login("ops.both", OPERATOR_PASSWORD).status, 401);
    let listed = site.dc(&["user", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    let row = listed
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == "ops.both"))
        .expect("listed");
    assert!(row["disabled_at"].is_string(), "{row}");
    assert!(!listed.to_string().contains("argon2"), "no hash shown");
    // Enabled again (a new password): the session from before stays over.
    site.replace_operator("ops.both", &["fleet", "records"]);
    assert_eq!(both.get("/api/v1/fleet").status, 401, "an old session");
    // A new password ends the sessions opened before it.
    let (_, records) = &sessions[1];
    assert_eq!(records.get("/healthz").status, 200);
    site.replace_operator("ops.records", &["records"]);
    assert_eq!(
        records
            .get(&format!(
                "/api/v1/records?from=2000-01-01&purpose={PURPOSE}"
            ))
            .status,
        401
    );
    // A refusal asks no browser for a password.
    let r = anonymous.get("/api/v1/fleet");
    assert_eq!(r.header("www-authenticate"), "", "{:?}", r.headers);
    assert_eq!(r.header("cache-control"), "no-store");

    // Five wrong passwords lock the account; then even the right one is
    // refused, by form and by Basic.
    let guesser = Http::new(&base);
    for _ in 0..5 {
        assert_eq!(guesser.dc_login("ops.admin", "doan-mo-123456").status, 401);
    }
    let locked = guesser.dc_login("ops.admin", OPERATOR_PASSWORD);
    assert_eq!(locked.status, 401);
    assert!(locked.body.contains("tạm khóa"), "{}", locked.body);
    let by_basic = anonymous.get_with(
        "/api/v1/fleet",
        &[("Authorization", &basic("ops.fleet", OPERATOR_PASSWORD))],
    );
    assert_eq!(by_basic.status, 200, "other accounts are not locked");

    // Logout needs the session's token and ends the session.
    let h = Http::new(&base);
    assert_eq!(h.dc_login("ops.fleet", OPERATOR_PASSWORD).status, 303);
    let page = h.get("/");
    assert_eq!(h.post_form("/dang-xuat", &[("_csrf", "x")]).status, 403);
    assert_eq!(h.get("/").status, 200, "still in");
    let out = h.post_form("/dang-xuat", &[("_csrf", &page.hidden("_csrf"))]);
    assert_eq!(out.status, 303);
    assert_eq!(h.get("/").status, 303, "logged out");

    // The chain verifies; its head, noted now, must stay in it.
    let ok = site.dc(&["access-log", "verify", "--json"]);
    assert!(ok.ok, "{}{}", ok.stdout, ok.stderr);
    let v: serde_json::Value = serde_json::from_str(&ok.stdout).expect("JSON");
    assert_eq!(v["entries"], 4);
    let head = v["head"].as_str().expect("head").to_owned();
    let db = site
        .database
        .strip_prefix("sqlite://")
        .expect("a SQLite site");
    let edit = |sql: &str| {
        rusqlite::Connection::open(db)
            .expect("opens")
            .execute_batch(sql)
            .expect("edits");
    };
    // An edited entry: named.
    edit("UPDATE access_log SET purpose = 'khac' WHERE id = 2");
    let broken = site.dc(&["access-log", "verify"]);
    assert_eq!(broken.code, Some(1), "{}", broken.stdout);
    assert!(
        broken.stdout.contains("BROKEN  at entry 2"),
        "{}",
        broken.stdout
    );
    edit("UPDATE access_log SET purpose = 'kiem tra quyen' WHERE id = 2");
    // The last entry removed: the chain is whole but shorter, and the
    // head noted before is missing.
    edit("DELETE FROM access_log WHERE id = 4");
    let cut = site.dc(&["access-log", "verify"]);
    assert!(cut.ok, "a shorter chain is whole: {}", cut.stdout);
    let cut = site.dc(&["access-log", "verify", "--expect-head", &head]);
    assert_eq!(cut.code, Some(1), "{}", cut.stdout);
    assert!(cut.stdout.contains("not in the chain"), "{}", cut.stdout);

    let log = dc.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(OPERATOR_PASSWORD), "no password in the log");
}

/// Beyond loopback only with TLS (config check names the key); with TLS
/// the dashboard answers HTTPS with a certificate the test's CA vouches
/// for, refuses plain HTTP, and its cookies are Secure.
#[test]
fn the_dashboard_beyond_loopback_needs_tls_and_serves_https() {
    let site = Site::new(true);
    let pki = site.pki.as_ref().expect("a TLS site");
    let (cert, key) = pki.issue("dashboard", &["--server", "--host", "127.0.0.1"]);
    let conf = std::fs::read_to_string(&site.dc_conf).expect("reads");
    let open = conf.replace("bind = \"127.0.0.1:0\"", "bind = \"0.0.0.0:0\"");
    std::fs::write(&site.dc_conf, &open).expect("writes");
    let conf_path = site.dc_conf.to_str().expect("utf-8").to_owned();
    let refused = site.dc(&["config", "check", &conf_path]);
    assert_eq!(refused.code, Some(78), "{}", refused.stdout);
    assert!(
        format!("{}{}", refused.stdout, refused.stderr).contains("http.bind"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    std::fs::write(
        &site.dc_conf,
        format!("{conf}tls_cert = {cert:?}\ntls_key = {key:?}\n"),
    )
    .expect("writes");
    let checked = site.dc(&["config", "check", &conf_path]);
    assert!(checked.ok, "{}{}", checked.stdout, checked.stderr);

    let mut site = site;
    site.broker.start();
    let dc = site.receiver();
    let base = crate::dashboard::base_of(&dc);
    let addr: std::net::SocketAddr = base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("served over https: {base}"))
        .parse()
        .expect("an address");
    let ca = site.pki.as_ref().expect("a TLS site").ca();
    let (status, text) =
        motcua_e2e::kiosk::https_get(addr, &ca, "127.0.0.1", "/healthz").expect("HTTPS");
    assert_eq!(status, 200, "{text}");
    let (status, text) =
        motcua_e2e::kiosk::https_get(addr, &ca, "127.0.0.1", "/dang-nhap").expect("HTTPS");
    assert_eq!(status, 200);
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let (status, _) =
        motcua_e2e::kiosk::https_get(addr, &ca, "127.0.0.1", "/api/v1/fleet").expect("HTTPS");
    assert_eq!(status, 401);
    // Plain HTTP on the TLS port gets no answer.
    let plain = Http::new(&format!("http://{addr}")).get("/healthz");
    assert_ne!(plain.status, 200, "{plain:?}");
    let log = dc.stop();
    assert!(!log.contains("panicked"), "{log}");
}
