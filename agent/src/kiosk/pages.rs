//! The kiosk's screens, in Vietnamese: login, reception, receipt (form 01,
//! printable in two copies), lookup, status change. Dates dd/mm/yyyy,
//! times in Asia/Ho_Chi_Minh.
//!
//! Every handler that changes something takes a [`CsrfForm`] (the
//! session's CSRF token in `_csrf`, checked before anything else); every
//! page that shows personal data takes a [`Clerk`] ([`super::guard`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::guard::{Clerk, CsrfForm, Front, LoginOutcome, Page, attempt, field, fields};
use super::session::{self, Session};
use super::{Failure, Kiosk, SyncView, cookie};
use motcua_counter::app::{self, Day, Lookup, Offer};
use motcua_counter::dates::{legal_time, local_time};
use motcua_counter::domain::code::DossierCode;
use motcua_counter::domain::dossier::{ApplicantInput, DocumentInput, DossierInput};
use motcua_counter::domain::intent::Intent;
use motcua_counter::domain::invalid::{Invalid, InvalidInput};
use motcua_counter::domain::status::Status;
use motcua_counter::store::read::{Change, ChangeRecord, StoredDossier, Summary};
use motcua_counter::store::reference::{self, Procedure, UnitName};
use motcua_counter::store::{Answer, Refusal};

const CSS: &str = include_str!("assets/kiosk.css");
const JS: &str = include_str!("assets/kiosk.js");

fn money(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out + " đồng"
}

fn page(title: &str, k: &Kiosk, s: Option<&Session>, sync: &SyncView, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Một cửa " (k.opts().unit) }
                link rel="stylesheet" href="/tai-nguyen/kiosk.css";
                script src="/tai-nguyen/kiosk.js" defer {}
            }
            body {
                header.top {
                    div.brand { "Bộ phận Một cửa · " (k.opts().unit) " · quầy " (k.opts().device) }
                    @if let Some(s) = s {
                        nav {
                            a href="/tiep-nhan" { "Tiếp nhận" }
                            a href="/tra-cuu" { "Tra cứu" }
                        }
                        form.logout method="post" action="/dang-xuat" {
                            span.who { (s.name) }
                            input type="hidden" name="_csrf" value=(s.csrf);
                            button type="submit" { "Đăng xuất" }
                        }
                    }
                }
                (sync_bar(sync))
                main { (body) }
            }
        }
    }
}

fn sync_bar(v: &SyncView) -> Markup {
    html! {
        div.sync #dong-bo data-online=(v.online) {
            @if v.online {
                span.online { "● Đã kết nối Trung tâm dữ liệu" }
            } @else {
                span.offline { "● Mất kết nối: máy vẫn nhận hồ sơ bình thường, sẽ gửi khi có mạng" }
            }
            span.waiting { (v.waiting) " bản ghi chờ đồng bộ" }
            span.receipt {
                "Biên nhận cuối từ Trung tâm: "
                @match &v.last_receipt_at {
                    Some(t) => (local_time(t)),
                    None => "chưa có",
                }
            }
        }
    }
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/dang-nhap").into_response()
}

impl Front for Page {
    fn unauthenticated() -> Response {
        to_login()
    }

    fn forged() -> Response {
        csrf_refused()
    }
}

/// A writer's answer as the pages show it: done, or the clerk's lines. A
/// store failure, or a refusal no clerk can fix, goes to the log as
/// `what` was not stored.
fn for_clerk<T>(answer: Answer<T>, what: &str) -> Result<T, InvalidInput> {
    match answer {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Refusal::Invalid(i))) => Err(i),
        Ok(Err(r)) => {
            tracing::error!(error = %r, "kiosk: {what} was not stored");
            Err(r.for_clerk())
        }
        Err(e) => {
            tracing::error!(error = %e, "kiosk: {what} was not stored");
            Err(e.for_clerk())
        }
    }
}

/// A refusal's lines as one sentence.
fn sentence(i: InvalidInput) -> String {
    i.0.into_iter()
        .map(|i| i.message)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 404 page.
pub async fn not_found(State(k): State<Kiosk>, clerk: Option<Clerk<Page>>) -> Response {
    let sync = k.sync_view().await;
    html_response(
        StatusCode::NOT_FOUND,
        page(
            "Không tìm thấy trang",
            &k,
            clerk.as_ref().map(Clerk::session),
            &sync,
            html! {
                h1 { "Không tìm thấy trang này" }
                p { "Đường dẫn không đúng hoặc trang đã được chuyển. " a href="/" { "Về trang chính" } }
            },
        ),
    )
}

/// The page shown for an internal failure: a fixed sentence, the cause
/// only in the log.
pub fn failure_page(f: Failure) -> Response {
    let (status, title, text) = match &f {
        Failure::NotFound => (
            StatusCode::NOT_FOUND,
            "Không tìm thấy",
            "Không tìm thấy hồ sơ hoặc trang này.",
        ),
        Failure::Store(e) => {
            tracing::error!(error = %e, "kiosk: store failure");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Lỗi lưu trữ",
                "Máy gặp lỗi khi đọc hoặc ghi dữ liệu. Các hồ sơ đã lưu vẫn an toàn. Vui lòng thử lại; nếu vẫn lỗi, báo kỹ thuật viên.",
            )
        }
        Failure::Internal(e) => {
            tracing::error!(error = %e, "kiosk: internal failure");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Lỗi",
                "Máy gặp lỗi ngoài dự kiến. Vui lòng thử lại; nếu vẫn lỗi, báo kỹ thuật viên.",
            )
        }
    };
    html_response(
        status,
        html! {
            (DOCTYPE)
            html lang="vi" {
                head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href="/tai-nguyen/kiosk.css"; }
                body { main { h1 { (title) } p { (text) } p { a href="/" { "Về trang chính" } } } }
            }
        },
    )
}

/// 413 and other unreadable bodies.
pub(super) fn body_refused(e: &BytesRejection) -> Response {
    let status = e.status();
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "Dữ liệu gửi lên quá lớn. Vui lòng kiểm tra lại nội dung đã nhập."
    } else {
        "Không đọc được dữ liệu gửi lên. Vui lòng thử lại."
    };
    html_response(
        status,
        html! {
            (DOCTYPE)
            html lang="vi" {
                head { meta charset="utf-8"; title { "Không nhận được dữ liệu" } link rel="stylesheet" href="/tai-nguyen/kiosk.css"; }
                body { main { h1 { "Không nhận được dữ liệu" } p { (text) } p { a href="/" { "Về trang chính" } } } }
            }
        },
    )
}

/// The stylesheet.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// The script.
pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

/// `/`: the reception screen, or the login.
pub async fn home(clerk: Option<Clerk<Page>>) -> Response {
    if clerk.is_some() {
        Redirect::to("/tiep-nhan").into_response()
    } else {
        to_login()
    }
}

async fn login_page(k: &Kiosk, status: StatusCode, error: Option<String>, staff: &str) -> Response {
    let token = session::token();
    let sync = k.sync_view().await;
    let mut res = html_response(
        status,
        page(
            "Đăng nhập",
            k,
            None,
            &sync,
            html! {
                h1 { "Đăng nhập" }
                @if let Some(e) = &error { p.error role="alert" { (e) } }
                form.login method="post" action="/dang-nhap" {
                    input type="hidden" name="_csrf" value=(token);
                    label { "Mã cán bộ" input name="ma_can_bo" value=(staff) required autocomplete="username" autofocus; }
                    label { "Mật khẩu hoặc mã PIN" input type="password" name="mat_khau" required autocomplete="current-password"; }
                    button type="submit" { "Đăng nhập" }
                }
            },
        ),
    );
    res.headers_mut().append(
        header::SET_COOKIE,
        k.set_cookie(session::LOGIN_COOKIE, &token, Some(1800)),
    );
    res
}

/// GET `/dang-nhap`.
pub async fn login_form(State(k): State<Kiosk>) -> Response {
    login_page(&k, StatusCode::OK, None, "").await
}

/// POST `/dang-nhap`.
pub async fn login(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_refused(&e),
    };
    let f = fields(&body);
    let expected = cookie(&headers, session::LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same(&expected, field(&f, "_csrf")) {
        return login_page(
            &k,
            StatusCode::FORBIDDEN,
            Some("Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.".into()),
            "",
        )
        .await;
    }
    let staff = field(&f, "ma_can_bo").trim().to_owned();
    let outcome = attempt(&k, &staff, field(&f, "mat_khau")).await;
    let message = outcome.message();
    match outcome {
        LoginOutcome::Ok(token, _) => {
            let mut res = Redirect::to("/tiep-nhan").into_response();
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                k.set_cookie(session::COOKIE, &token, None),
            );
            h.append(
                header::SET_COOKIE,
                k.set_cookie(session::LOGIN_COOKIE, "", Some(0)),
            );
            res
        }
        LoginOutcome::Wrong => login_page(&k, StatusCode::UNAUTHORIZED, message, &staff).await,
        LoginOutcome::Locked(_) => {
            login_page(&k, StatusCode::TOO_MANY_REQUESTS, message, &staff).await
        }
        LoginOutcome::Busy => {
            login_page(&k, StatusCode::SERVICE_UNAVAILABLE, message, &staff).await
        }
    }
}

fn csrf_refused() -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        html! {
            (DOCTYPE)
            html lang="vi" {
                head { meta charset="utf-8"; title { "Yêu cầu không hợp lệ" } link rel="stylesheet" href="/tai-nguyen/kiosk.css"; }
                body { main {
                    h1 { "Yêu cầu không hợp lệ" }
                    p { "Biểu mẫu đã cũ hoặc không được gửi từ màn hình này. Vui lòng mở lại trang và thử lại." }
                    p { a href="/" { "Về trang chính" } }
                } }
            }
        },
    )
}

/// POST `/dang-xuat`.
pub async fn logout(State(k): State<Kiosk>, form: CsrfForm) -> Response {
    tracing::info!(staff = %form.clerk.session().staff, "kiosk logout");
    form.clerk.log_out();
    let mut res = to_login();
    res.headers_mut().append(
        header::SET_COOKIE,
        k.set_cookie(session::COOKIE, "", Some(0)),
    );
    res
}

/// What the clerk typed in the reception form, to show it again.
#[derive(Debug, Default, Clone)]
pub struct Entered {
    procedure: String,
    name: String,
    id_number: String,
    phone: String,
    email: String,
    address: String,
    documents: Vec<String>,
    sets: String,
    collect_at: String,
    note: String,
    /// The form's idempotency key ([`INTENT_FIELD`]).
    intent: String,
}

/// The hidden field holding a form's idempotency key: drawn when the form
/// is shown, kept when a refused form is shown again, so every press of
/// the button for one citizen's dossier carries the same key.
pub const INTENT_FIELD: &str = "ma_lan_gui";

impl Entered {
    fn from_fields(f: &[(String, String)]) -> Entered {
        Entered {
            intent: field(f, INTENT_FIELD).trim().to_owned(),
            procedure: field(f, "thu_tuc").trim().to_owned(),
            name: field(f, "ho_ten").to_owned(),
            id_number: field(f, "so_dinh_danh").to_owned(),
            phone: field(f, "dien_thoai").to_owned(),
            email: field(f, "email").to_owned(),
            address: field(f, "dia_chi").to_owned(),
            documents: f
                .iter()
                .filter(|(k, _)| k == "giay_to")
                .map(|(_, v)| v.clone())
                .collect(),
            sets: field(f, "so_bo").to_owned(),
            collect_at: field(f, "noi_tra").to_owned(),
            note: field(f, "ghi_chu").to_owned(),
        }
    }

    fn input(&self) -> Result<DossierInput, InvalidInput> {
        let opt = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        };
        let sets = match self.sets.trim() {
            "" => 1,
            s => s.parse::<u32>().map_err(|_| {
                InvalidInput(vec![Invalid::new(
                    "sets",
                    "sets_number",
                    "Số bộ hồ sơ phải là một số nguyên từ 1 trở lên.",
                )])
            })?,
        };
        Ok(DossierInput {
            procedure: self.procedure.clone(),
            applicant: ApplicantInput {
                name: self.name.clone(),
                id_number: self.id_number.clone(),
                phone: opt(&self.phone),
                email: opt(&self.email),
                address: self.address.clone(),
            },
            documents: self
                .documents
                .iter()
                .map(|d| DocumentInput {
                    name: d.clone(),
                    form: None,
                    copies: 1,
                })
                .collect(),
            sets,
            collect_at: opt(&self.collect_at),
            note: opt(&self.note),
        })
    }
}

/// The query of the reception screen.
#[derive(Debug, Default, Deserialize)]
pub struct ReceptionQuery {
    /// Procedure search, with or without diacritics.
    #[serde(default)]
    q: String,
    /// The chosen procedure.
    #[serde(default)]
    thu_tuc: String,
}

/// The procedures matching `q` and the chosen one, with its appointment
/// if received now.
async fn load_reception(
    k: &Kiosk,
    clerk: &Clerk<Page>,
    q: String,
    chosen: String,
) -> Result<(Vec<Procedure>, Option<Offer>), Failure> {
    let today = k.today();
    let office = k.opts().office;
    clerk
        .read(move |r| {
            let list = reference::search_procedures(r.connection(), &q)?;
            let chosen = if chosen.is_empty() {
                None
            } else {
                app::offer(r, &chosen, &today, &office)?
            };
            Ok((list, chosen))
        })
        .await
}

fn errors_for<'a>(errors: &'a [Invalid], prefix: &str) -> Vec<&'a Invalid> {
    errors
        .iter()
        .filter(|e| e.field.starts_with(prefix))
        .collect()
}

fn field_errors(errors: &[Invalid], prefix: &str) -> Markup {
    html! {
        @for e in errors_for(errors, prefix) {
            span.field-error role="alert" { (e.message) }
        }
    }
}

/// The reception form's fields in screen order: the refused field's
/// prefix, the input's name and the label the banner names it by.
const FORM_FIELDS: &[(&str, &str, &str)] = &[
    ("procedure", "thu_tuc", "Thủ tục"),
    ("applicant.name", "ho_ten", "Họ và tên"),
    (
        "applicant.id_number",
        "so_dinh_danh",
        "Số định danh cá nhân",
    ),
    ("applicant.phone", "dien_thoai", "Số điện thoại"),
    ("applicant.email", "email", "Thư điện tử"),
    ("applicant.address", "dia_chi", "Địa chỉ"),
    ("documents", "giay_to", "Giấy tờ đã nhận"),
    ("sets", "so_bo", "Số bộ hồ sơ"),
    ("collect_at", "noi_tra", "Nơi trả kết quả"),
    ("note", "ghi_chu", "Ghi chú"),
];

/// The input name of the first refused field on the screen, if any.
fn first_bad(errors: &[Invalid]) -> Option<&'static str> {
    FORM_FIELDS
        .iter()
        .find(|(prefix, _, _)| !errors_for(errors, prefix).is_empty())
        .map(|(_, name, _)| *name)
}

#[allow(clippy::too_many_arguments)]
fn reception_body(
    s: &Session,
    q: &str,
    list: &[Procedure],
    chosen: Option<&Offer>,
    entered: &Entered,
    errors: &[Invalid],
) -> Markup {
    let named: Vec<&str> = FORM_FIELDS
        .iter()
        .filter(|(prefix, _, _)| !errors_for(errors, prefix).is_empty())
        .map(|(_, _, label)| *label)
        .collect();
    let general: Vec<&Invalid> = errors
        .iter()
        .filter(|e| !FORM_FIELDS.iter().any(|(p, _, _)| e.field.starts_with(p)))
        .collect();
    let focus = first_bad(errors);
    // The first refused field takes the focus; else the first empty one.
    let bad = |name: &str| focus == Some(name);
    let invalid = |prefix: &str| (!errors_for(errors, prefix).is_empty()).then_some("true");
    html! {
        h1 { "Tiếp nhận hồ sơ" }
        @if !errors.is_empty() {
            div.errors role="alert" #loi {
                p { "Hồ sơ chưa được lưu: " strong { (errors.len()) " lỗi" }
                    @if !named.is_empty() { " ở " (named.join(", ")) }
                    ". Thông tin đã nhập vẫn được giữ nguyên." }
                @for e in &general { p { (e.message) } }
            }
        }
        @if let Some(c) = chosen {
            section.chosen-procedure {
                p { span.code { (c.procedure.code) } " " strong { (c.procedure.name) } " · "
                    "Thời hạn: " (legal_time(c.procedure.working_days)) " · "
                    "Phí, lệ phí: " @match c.procedure.fee { Some(f) if f > 0 => (money(f)), _ => "không" } " · "
                    "Hẹn trả nếu nhận bây giờ: "
                    strong #ngay-hen { @match &c.appointment_at { Some(d) => (local_time(d)), None => "chưa tính được (thiếu lịch nghỉ lễ)" } }
                    " " a.change href="/tiep-nhan" { "Đổi thủ tục" } }
            }
        } @else {
            section.procedures {
                h2 { "1. Chọn thủ tục" }
                form.search method="get" action="/tiep-nhan" {
                    label { "Tìm theo mã hoặc tên (gõ có dấu hoặc không dấu)"
                        input type="search" name="q" value=(q) placeholder="ví dụ: khai sinh" autofocus; }
                    button type="submit" { "Tìm" }
                }
                @if list.is_empty() {
                    p.note { "Không có thủ tục phù hợp. Danh mục thủ tục do Trung tâm dữ liệu gửi xuống; nếu trống, báo kỹ thuật viên." }
                } @else {
                    ul.procedure-list {
                        @for p in list {
                            li {
                                a href={ "/tiep-nhan?thu_tuc=" (p.code) } { span.code { (p.code) } " " (p.name) " " span.note { "(" (legal_time(p.working_days)) ")" } }
                            }
                        }
                    }
                }
                (field_errors(errors, "procedure"))
            }
        }
        @if let Some(c) = chosen {
            form #tiep-nhan.reception method="post" action="/ho-so" data-once="1" {
                input type="hidden" name="_csrf" value=(s.csrf);
                input type="hidden" name=(INTENT_FIELD) value=(entered.intent);
                input type="hidden" name="thu_tuc" value=(c.procedure.code);
                div.columns {
                    fieldset {
                        legend { "Người nộp hồ sơ" }
                        label { "Họ và tên"
                            input name="ho_ten" value=(entered.name) required maxlength="100" autocomplete="off"
                                aria-invalid=[invalid("applicant.name")] autofocus[bad("ho_ten") || focus.is_none()]; }
                        (field_errors(errors, "applicant.name"))
                        div.pair {
                            div {
                                label { "Số định danh cá nhân (12 chữ số)"
                                    input name="so_dinh_danh" value=(entered.id_number) required inputmode="numeric"
                                        pattern="[0-9]{12}" maxlength="12" autocomplete="off"
                                        title="Số định danh cá nhân gồm đúng 12 chữ số."
                                        aria-invalid=[invalid("applicant.id_number")] autofocus[bad("so_dinh_danh")]; }
                                (field_errors(errors, "applicant.id_number"))
                            }
                            div {
                                label { "Số điện thoại"
                                    input name="dien_thoai" value=(entered.phone) inputmode="tel"
                                        pattern="[0-9 .+()\\-]{10,16}" autocomplete="off"
                                        title="Số điện thoại phải gồm 10 chữ số bắt đầu bằng 03, 05, 07, 08 hoặc 09 (di động), hoặc 11 chữ số bắt đầu bằng 02 (cố định)."
                                        aria-invalid=[invalid("applicant.phone")] autofocus[bad("dien_thoai")]; }
                                (field_errors(errors, "applicant.phone"))
                            }
                        }
                        label { "Địa chỉ"
                            input name="dia_chi" value=(entered.address) required maxlength="300" autocomplete="off"
                                aria-invalid=[invalid("applicant.address")] autofocus[bad("dia_chi")]; }
                        (field_errors(errors, "applicant.address"))
                        label { "Thư điện tử"
                            input type="email" name="email" value=(entered.email) autocomplete="off"
                                aria-invalid=[invalid("applicant.email")] autofocus[bad("email")]; }
                        (field_errors(errors, "applicant.email"))
                        div.pair {
                            div {
                                label { "Nơi trả kết quả (để trống: tại bộ phận này)"
                                    input name="noi_tra" value=(entered.collect_at) maxlength="200"
                                        aria-invalid=[invalid("collect_at")] autofocus[bad("noi_tra")]; }
                                (field_errors(errors, "collect_at"))
                            }
                            div {
                                label { "Ghi chú"
                                    input name="ghi_chu" value=(entered.note) maxlength="1000"
                                        aria-invalid=[invalid("note")] autofocus[bad("ghi_chu")]; }
                                (field_errors(errors, "note"))
                            }
                        }
                    }
                    fieldset.documents {
                        legend { "Giấy tờ đã nhận" }
                        @if c.procedure.documents.is_empty() {
                            p.note { "Danh mục không ghi giấy tờ cho thủ tục này." }
                        }
                        @for (i, d) in c.procedure.documents.iter().enumerate() {
                            label.check {
                                input type="checkbox" name="giay_to" value=(d)
                                    checked[entered.documents.iter().any(|e| e == d)]
                                    autofocus[i == 0 && bad("giay_to")];
                                (d)
                            }
                        }
                        (field_errors(errors, "documents"))
                        label.sets { "Số bộ hồ sơ"
                            input type="number" name="so_bo" min="1" max="99"
                                value=(if entered.sets.is_empty() { "1" } else { entered.sets.as_str() })
                                aria-invalid=[invalid("sets")] autofocus[bad("so_bo")]; }
                        (field_errors(errors, "sets"))
                        button.primary type="submit" { "Lưu và in giấy tiếp nhận" }
                    }
                }
            }
        }
    }
}

/// GET `/tiep-nhan`.
pub async fn reception(
    State(k): State<Kiosk>,
    clerk: Clerk<Page>,
    Query(rq): Query<ReceptionQuery>,
) -> Result<Response, Failure> {
    let s = clerk.session();
    let (list, chosen) = load_reception(&k, &clerk, rq.q.clone(), rq.thu_tuc.clone()).await?;
    let sync = k.sync_view().await;
    let entered = Entered {
        procedure: rq.thu_tuc.clone(),
        intent: session::token(),
        ..Entered::default()
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            "Tiếp nhận hồ sơ",
            &k,
            Some(s),
            &sync,
            reception_body(s, &rq.q, &list, chosen.as_ref(), &entered, &[]),
        ),
    ))
}

/// POST `/ho-so`: validate, store durably, then show the receipt.
pub async fn submit(State(k): State<Kiosk>, form: CsrfForm) -> Result<Response, Failure> {
    let s = form.clerk.session();
    let mut entered = Entered::from_fields(&form.fields);
    let result = match entered
        .input()
        .and_then(|input| Intent::new(&entered.intent, &input.canonical()).map(|i| (input, i)))
    {
        Ok((input, intent)) => for_clerk(
            form.clerk
                .writer()
                .create_once_async(input, s.staff.clone(), intent)
                .await,
            "a submission",
        ),
        Err(i) => Err(i),
    };
    match result {
        Ok(created) => {
            tracing::info!(code = %created.dossier.code, seq = created.seq, repeated = created.repeated, staff = %s.staff, "dossier received at the kiosk");
            let moi = if created.repeated { 2 } else { 1 };
            Ok(Redirect::to(&format!("/ho-so/{}?moi={moi}", created.dossier.code)).into_response())
        }
        Err(invalid) => {
            if invalid.0.iter().any(|i| i.field == "idempotency_key") {
                // A form without a usable key (or whose key made another
                // dossier): the form shown again gets a fresh one.
                entered.intent = session::token();
            }
            tracing::info!(codes = ?invalid.codes(), "kiosk submission refused");
            let (list, chosen) =
                load_reception(&k, &form.clerk, String::new(), entered.procedure.clone()).await?;
            let sync = k.sync_view().await;
            Ok(html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(
                    "Tiếp nhận hồ sơ",
                    &k,
                    Some(s),
                    &sync,
                    reception_body(s, "", &list, chosen.as_ref(), &entered, &invalid.0),
                ),
            ))
        }
    }
}

/// What the receipt's QR code holds: the citizen's lookup page for the
/// dossier when one is configured, else the code.
pub fn qr_text(k: &Kiosk, code: &DossierCode) -> String {
    let code = code.to_string();
    match &k.opts().lookup_url {
        Some(u) => u.for_code(&code),
        None => code,
    }
}

/// `text` as an SVG QR code.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(q) => q
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(132, 132)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// One copy of form 01. Only the first copy carries element ids.
fn receipt_sheet(
    k: &Kiosk,
    d: &StoredDossier,
    unit: Option<&UnitName>,
    staff_name: &str,
    copy: &str,
    first: bool,
) -> Markup {
    let id = |name: &'static str| first.then_some(name);
    let Some(x) = &d.dossier else {
        return html! { p { "Thông tin cá nhân của hồ sơ này đã được xóa theo thời hạn lưu trữ." } };
    };
    html! {
        article.sheet {
            div.sheet-head {
                div.agency {
                    @match unit {
                        Some(u) => p.unit id=[id("ten-co-quan")] { (u.name.to_uppercase()) },
                        None => p.unit { "Đơn vị: " (x.unit) },
                    }
                    p { strong { "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ" } }
                }
                div.nation {
                    p { strong { "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" } } p { "Độc lập - Tự do - Hạnh phúc" }
                    p.place-date id=[id("ngay-thang")] {
                        @match unit {
                            Some(u) => { (u.place) ", " (date_line(&x.received_at)) },
                            None => { "Ngày " (date_line(&x.received_at).trim_start_matches("ngày ")) },
                        }
                    }
                }
            }
            h2.sheet-title { "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" }
            p.copy { (copy) }
            div.code-row {
                div {
                    p { "Mã hồ sơ: " strong id=[id("ma-ho-so")] { (d.code) } }
                    p { "Số thứ tự trong ngày: " (format!("{:04}", d.code.seq)) " · Quầy số " (d.code.seq / 1000) }
                }
                div.qr id=[id("qr-ma-ho-so")] data-qr=(qr_text(k, &d.code)) { (PreEscaped(qr_svg(&qr_text(k, &d.code)))) }
            }
            p { "Bộ phận tiếp nhận và trả kết quả đã nhận hồ sơ của:" }
            table.fields {
                tr { th { "Ông/Bà" } td id=[id("nguoi-nop")] { (x.applicant.name) } }
                tr { th { "Số định danh cá nhân" } td { (x.applicant.id_number) } }
                tr { th { "Địa chỉ" } td { (x.applicant.address) } }
                tr { th { "Số điện thoại" } td { (x.applicant.phone.as_deref().unwrap_or("")) } }
                tr { th { "Thư điện tử" } td { (x.applicant.email.as_deref().unwrap_or("")) } }
                tr { th { "Nội dung yêu cầu giải quyết" } td { (x.procedure_name) " (" (x.procedure) ")" } }
            }
            p { "Thành phần hồ sơ gồm:" }
            ol.documents {
                @for doc in &x.documents {
                    li { (doc.name) @if let Some(form) = &doc.form { " (" (form) ")" } " - " (doc.copies) " bản" }
                }
                @if x.documents.is_empty() { li { "(không ghi giấy tờ)" } }
            }
            table.fields {
                tr { th { "Số lượng hồ sơ" } td { (x.sets) " bộ" } }
                tr { th { "Thời gian giải quyết theo quy định" } td { (legal_time(x.working_days)) } }
                tr { th { "Thời gian nhận hồ sơ" } td { (local_time(&x.received_at)) @if !first { (clock_note(x)) } } }
                tr { th { "Thời gian trả kết quả" } td id=[id("ngay-tra")] { (local_time(&x.appointment_at)) } }
                tr { th { "Nơi trả kết quả" } td { (x.collect_at) } }
                tr { th { "Vào Sổ theo dõi hồ sơ" } td { "Quyển: " (x.received_at.get().year()) ", số: " (d.code) } }
            }
            div.signatures {
                div { p { strong { "NGƯỜI NỘP HỒ SƠ" } } p.hint { "(Ký và ghi rõ họ tên)" } }
                div { p { strong { "NGƯỜI TIẾP NHẬN HỒ SƠ" } } p.hint { "(Ký và ghi rõ họ tên)" } p.signer { (staff_name) } }
            }
        }
    }
}

/// The date part of an official document's place-and-date line, Vietnam
/// time: "ngày 04 tháng 12 năm 2026".
fn date_line(t: &motcua_protocol::UtcTime) -> String {
    let d = t.get().to_offset(motcua_counter::domain::VIETNAM).date();
    format!(
        "ngày {:02} tháng {:02} năm {}",
        d.day(),
        u8::from(d.month()),
        d.year()
    )
}

/// The one-stop-shop form printed for a signed change, if any: its number
/// in the annex of Circular 01/2018/TT-VPCP and its title.
fn form_of(change: &Change) -> Option<(&'static str, &'static str)> {
    match change {
        Change::Status {
            to: Status::SUPPLEMENT,
            ..
        } => Some(("02", "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ")),
        Change::Status {
            to: Status::REFUSED,
            ..
        } => Some(("03", "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ")),
        Change::Status { .. } => None,
        Change::Rescheduled { .. } => Some(("04", "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ")),
    }
}

/// A time as an official document writes it, Vietnam time: "17 giờ 00
/// phút, ngày 07 tháng 12 năm 2026".
fn hour_line(t: &motcua_protocol::UtcTime) -> String {
    let local = t.get().to_offset(motcua_counter::domain::VIETNAM);
    format!(
        "{:02} giờ {:02} phút, {}",
        local.hour(),
        local.minute(),
        date_line(t)
    )
}

/// GET `/ho-so/{code}/phieu/{seq}`: form 02 (request to supplement), 03
/// (refusal to receive) or 04 (apology with a new appointment) for the
/// signed change `seq` of the dossier, printed from its verified journal
/// record.
pub async fn form_sheet(
    State(k): State<Kiosk>,
    clerk: Clerk<Page>,
    Path((code, seq)): Path<(String, u64)>,
) -> Result<Response, Failure> {
    let c = code.clone();
    let Some((d, unit, rec)) = clerk
        .read(move |r| {
            let Some(d) = r.dossier(&c)? else {
                return Ok(None);
            };
            let Some(rec) = r.changes(&c)?.into_iter().find(|s| s.seq == seq) else {
                return Ok(None);
            };
            let unit = reference::unit(r.connection(), d.code.unit.as_str())?;
            Ok(Some((d, unit, rec)))
        })
        .await?
    else {
        return Err(Failure::NotFound);
    };
    let (Some((number, title)), Some(x)) = (form_of(&rec.change), d.dossier.as_ref()) else {
        return Err(Failure::NotFound);
    };
    let staff_name = k
        .staff()
        .name_of(rec.staff.as_str())
        .unwrap_or_else(|| rec.staff.to_string());
    let sync = k.sync_view().await;
    let reason = rec.note.clone().unwrap_or_default();
    let agency = unit
        .as_ref()
        .map_or_else(|| x.unit.to_string(), |u| u.name.clone());
    let body = html! {
        div.actions.no-print {
            button.primary #in-phieu type="button" data-print="1" { "In phiếu (mẫu " (number) ")" }
            a href={ "/ho-so/" (d.code) } { "Về hồ sơ " (d.code) }
        }
        article.sheet #phieu data-form=(number) {
            div.sheet-head {
                div.agency {
                    @match &unit {
                        Some(u) => p.unit { (u.name.to_uppercase()) },
                        None => p.unit { "Đơn vị: " (x.unit) },
                    }
                    p { strong { "BỘ PHẬN TIẾP NHẬN VÀ TRẢ KẾT QUẢ" } }
                }
                div.nation {
                    p { strong { "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" } } p { "Độc lập - Tự do - Hạnh phúc" }
                    p.place-date {
                        @match &unit {
                            Some(u) => { (u.place) ", " (date_line(&rec.at)) },
                            None => { "Ngày " (date_line(&rec.at).trim_start_matches("ngày ")) },
                        }
                    }
                }
            }
            h2.sheet-title { (title) }
            @if let Change::Rescheduled { from, to } = &rec.change {
                (apology(x, &unit.as_ref().map_or_else(
                    || format!("Bộ phận tiếp nhận và trả kết quả (đơn vị {})", x.unit),
                    |u| u.name.clone(),
                ), from, to, &reason))
            } @else {
            p.copy { "Mã hồ sơ: " strong { (d.code) } }
            p { "Bộ phận tiếp nhận và trả kết quả: " (agency) }
            table.fields {
                tr { th { @if number == "03" { "Tiếp nhận hồ sơ của" } @else { "Hồ sơ của" } } td { (x.applicant.name) } }
                tr { th { "Địa chỉ" } td { (x.applicant.address) } }
                tr { th { "Số điện thoại" } td { (x.applicant.phone.as_deref().unwrap_or("")) } }
                tr { th { "Thư điện tử" } td { (x.applicant.email.as_deref().unwrap_or("")) } }
                tr { th { "Nội dung yêu cầu giải quyết" } td { (x.procedure_name) " (" (x.procedure) ")" } }
            }
            @if number == "02" {
                p { "Yêu cầu Ông/Bà hoàn thiện hồ sơ gồm những nội dung sau:" }
                p.reason #noi-dung { (reason) }
                p { "Trong quá trình hoàn thiện hồ sơ nếu có vướng mắc, Ông/Bà liên hệ với "
                    (staff_name) ", " (unit.as_ref().map_or_else(|| "Bộ phận tiếp nhận và trả kết quả".to_owned(), |u| format!("Bộ phận tiếp nhận và trả kết quả {}", u.name))) " để được hướng dẫn./." }
            } @else {
                p { "Qua xem xét, Bộ phận tiếp nhận hồ sơ thông báo không tiếp nhận, giải quyết hồ sơ này với lý do cụ thể như sau:" }
                p.reason #noi-dung { (reason) }
                p { "Xin thông báo cho Ông/Bà được biết và thực hiện./." }
            }
            }
            div.signatures {
                @if number == "04" {
                    div {
                        p { strong { "NGƯỜI LẬP PHIẾU" } }
                        p.hint { "(Ký và ghi rõ họ tên)" }
                        p.signer { (staff_name) }
                    }
                    div {
                        p { strong { "THỦ TRƯỞNG CƠ QUAN" } }
                        p.hint { "(Ký, ghi rõ họ tên và đóng dấu)" }
                    }
                } @else {
                div {}
                div {
                    p { strong { @if number == "02" { "NGƯỜI HƯỚNG DẪN" } @else { "NGƯỜI TIẾP NHẬN HỒ SƠ" } } }
                    p.hint { "(Ký và ghi rõ họ tên)" }
                    p.signer { (staff_name) }
                }
                }
            }
            p.record.note { "Bản ghi số " (rec.seq) " trong nhật ký có chữ ký của quầy"
                @if !rec.clock { " (đồng hồ máy chưa đồng bộ khi lập)" } "." }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            &format!("Mẫu {number} · {}", d.code),
            &k,
            Some(clerk.session()),
            &sync,
            body,
        ),
    ))
}

/// The body of form 04: the apology for a late dossier and its new
/// appointment, in the order of the annex's form.
fn apology(
    x: &motcua_counter::domain::dossier::Dossier,
    agency: &str,
    from: &motcua_protocol::UtcTime,
    to: &motcua_protocol::UtcTime,
    reason: &str,
) -> Markup {
    html! {
        p { "Kính gửi: " strong { (x.applicant.name) } }
        p { "Ngày " (date_line(&x.received_at).trim_start_matches("ngày ")) ", " (agency)
            " tiếp nhận hồ sơ đề nghị giải quyết thủ tục hành chính " strong { (x.procedure_name) }
            " của Ông/Bà. Mã hồ sơ: " strong { span.nowrap { (x.code) } } "." }
        p { "Thời hạn trả kết quả giải quyết hồ sơ: " span #hen-cu { (hour_line(from)) } "." }
        p { "Tuy nhiên đến nay, " (agency) " chưa trả kết quả giải quyết hồ sơ của Ông/Bà. Lý do:" }
        p.reason #noi-dung { (reason) }
        p { "Sự chậm trễ này đã gây phiền hà cho Ông/Bà. " (agency)
            " xin lỗi Ông/Bà và sẽ trả kết quả giải quyết hồ sơ cho Ông/Bà vào "
            strong #hen-moi { (hour_line(to)) } "." }
        p { "Mong nhận được sự thông cảm của Ông/Bà vì sự chậm trễ này." }
        p { "Trân trọng!" }
    }
}

/// The apology with a new appointment (form 04), offered on the receipt
/// page of a dossier that is late or due today.
fn apology_form(
    code: &str,
    csrf: &str,
    promised: &motcua_protocol::UtcTime,
    typed: ApologyTyped,
    closes: time::Time,
) -> Markup {
    let intent = if typed.intent.is_empty() {
        session::token()
    } else {
        typed.intent
    };
    let at = if typed.at.is_empty() {
        format!("{:02}:{:02}", closes.hour(), closes.minute())
    } else {
        typed.at
    };
    html! {
        section.apology #xin-loi {
            h2 { "Xin lỗi và hẹn lại ngày trả kết quả (mẫu 04)" }
            p.note { "Hẹn trả kết quả " (local_time(promised)) ": hồ sơ chưa có kết quả đúng hẹn. "
                "Lập phiếu xin lỗi, ghi lý do và ngày hẹn mới; thời hạn theo quy định không đổi, hồ sơ vẫn tính là trễ hạn." }
            form #hen-lai-form method="post" action={ "/ho-so/" (code) "/hen-lai" } data-once="1" {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name=(INTENT_FIELD) value=(intent);
                div.row {
                    label { "Ngày hẹn mới" input #ngay-hen-moi type="date" name="ngay" value=(typed.day) required; }
                    label { "Giờ" input #gio-hen-moi type="time" name="gio" value=(at) required; }
                }
                label { "Lý do chậm trả kết quả (in trên phiếu)" input #ly-do-tre name="ly_do" value=(typed.note) required maxlength="1000"; }
                button type="submit" { "Lập phiếu xin lỗi và hẹn lại" }
            }
        }
    }
}

/// POST `/ho-so/{code}/hen-lai`: the apology with a new appointment,
/// signed as a `dossier.rescheduled` record; then form 04 to print. A
/// refusal shows the form back as typed.
pub async fn reschedule(
    State(k): State<Kiosk>,
    Path(code): Path<String>,
    form: CsrfForm,
) -> Result<Response, Failure> {
    let typed = ApologyTyped {
        day: form.field("ngay").trim().to_owned(),
        at: form.field("gio").trim().to_owned(),
        note: form.field("ly_do").trim().to_owned(),
        intent: form.field(INTENT_FIELD).trim().to_owned(),
    };
    let refused = |i: InvalidInput, typed: ApologyTyped| {
        receipt_page(
            &k,
            &form.clerk,
            code.clone(),
            Notice::None,
            Some(sentence(i)),
            Pending::Apology(typed),
        )
    };
    let to = match app::new_appointment(&typed.day, &typed.at) {
        Ok(to) => to,
        Err(r) => return refused(r.for_clerk(), typed).await,
    };
    let request = format!("{code}\n{}\n{}\n{}", typed.day, typed.at, typed.note);
    let intent = match Intent::new(&typed.intent, request.as_bytes()) {
        Ok(i) => i,
        Err(i) => {
            let fresh = ApologyTyped {
                intent: String::new(),
                ..typed
            };
            return refused(i, fresh).await;
        }
    };
    let staff = &form.clerk.session().staff;
    let note = Some(typed.note.clone()).filter(|n| !n.is_empty());
    let answer = form
        .clerk
        .writer()
        .reschedule_once_async(&code, to, staff.clone(), note, intent)
        .await;
    match answer {
        Ok(Err(Refusal::NotFound(_))) => Err(Failure::NotFound),
        answer => match for_clerk(answer, "an apology") {
            Ok(r) => {
                tracing::info!(code = %r.code, seq = r.seq, repeated = r.repeated, staff = %staff, "apology with a new appointment at the kiosk");
                Ok(Redirect::to(&format!("/ho-so/{code}/phieu/{}", r.seq)).into_response())
            }
            Err(i) => refused(i, typed).await,
        },
    }
}

/// The query of the receipt page.
#[derive(Debug, Default, Deserialize)]
pub struct ReceiptQuery {
    /// 1: just received; 2: a repeated submission answered with this one.
    #[serde(default)]
    moi: Option<u8>,
    /// The status it was just moved to.
    #[serde(default)]
    doi: Option<u8>,
}

/// What the top of the receipt page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// Nothing.
    None,
    /// Stored just now.
    Received,
    /// A repeated press of the button: the dossier stored the first time.
    Repeated,
    /// Moved to this status just now.
    Moved(Status),
}

/// A status move the clerk asked for and must confirm: it cannot be undone.
struct Confirm {
    to: Status,
    note: String,
    intent: String,
}

/// An apology (form 04) the clerk typed and the store refused: shown back
/// as typed, with the same idempotency key.
#[derive(Default)]
struct ApologyTyped {
    day: String,
    at: String,
    note: String,
    intent: String,
}

/// A form the receipt page shows back filled in, if any.
enum Pending {
    None,
    Confirm(Confirm),
    Apology(ApologyTyped),
}

async fn receipt_page(
    k: &Kiosk,
    clerk: &Clerk<Page>,
    code: String,
    notice: Notice,
    status_error: Option<String>,
    pending: Pending,
) -> Result<Response, Failure> {
    let s = clerk.session();
    let (confirm, typed) = match pending {
        Pending::None => (None, None),
        Pending::Confirm(c) => (Some(c), None),
        Pending::Apology(a) => (None, Some(a)),
    };
    let apology_refused = typed.is_some();
    let c = code.clone();
    let Some((d, unit, forms)) = clerk
        .read(move |r| {
            let Some(d) = r.dossier(&c)? else {
                return Ok(None);
            };
            let unit = reference::unit(r.connection(), d.code.unit.as_str())?;
            let forms: Vec<ChangeRecord> = r
                .changes(&c)?
                .into_iter()
                .filter(|s| form_of(&s.change).is_some())
                .collect();
            Ok(Some((d, unit, forms)))
        })
        .await?
    else {
        return Err(Failure::NotFound);
    };
    let staff_id = d
        .dossier
        .as_ref()
        .map(|x| x.staff.to_string())
        .unwrap_or_default();
    let staff_name = k.staff().name_of(&staff_id).unwrap_or(staff_id);
    let sync = k.sync_view().await;
    let today = k.today();
    // What the citizen is promised now: the last new appointment, else the
    // receipt's (unknown once the personal data is pruned).
    let promised = d
        .rescheduled_at
        .or_else(|| d.dossier.as_ref().map(|x| x.appointment_at));
    let body = html! {
        @match notice {
            Notice::Received => p.success role="status" #thong-bao { "Đã lưu hồ sơ " strong { (d.code) } " an toàn trên máy. Hãy in giấy tiếp nhận (hai bản)." },
            Notice::Repeated => p.success role="status" #thong-bao { "Hồ sơ " strong { (d.code) } " đã được lưu từ lần bấm trước; không tạo thêm hồ sơ mới." },
            Notice::Moved(to) => p.success role="status" #thong-bao { "Đã chuyển hồ sơ " strong { (d.code) } " sang trạng thái \"" (to.name_vi()) "\"." },
            Notice::None => {},
        }
        @if let Some(e) = &status_error { p.error role="alert" #loi-trang-thai { (e) } }
        div.receipt-bar.no-print {
            div.actions {
                button.primary #in-giay type="button" data-print="1" { "In giấy tiếp nhận (2 bản)" }
                span.note { "Khổ A4: mỗi bản một trang; khổ A5: mỗi bản một tờ. Hoặc nhấn Ctrl+P." }
                a href="/tiep-nhan" { "Tiếp nhận hồ sơ khác" }
                @for f in &forms {
                    @if let Some((number, title)) = form_of(&f.change) {
                        a.form-link href={ "/ho-so/" (d.code) "/phieu/" (f.seq) } {
                            "In " (title.to_lowercase()) " (mẫu " (number) ", " (local_time(&f.at)) ")"
                        }
                    }
                }
            }
            section.status {
                h2 { "Trạng thái" }
                p { "Hiện tại: " strong #trang-thai { (d.status.name_vi()) } " (cập nhật " (local_time(&d.updated_at)) ")"
                    @if d.synced { " · đã gửi Trung tâm" } @else { " · chờ gửi Trung tâm" } }
                @if let Some(at) = &d.rescheduled_at {
                    p { "Đã xin lỗi và hẹn lại: " strong #hen-lai { (local_time(at)) } }
                }
                @if let Some(cf) = &confirm {
                    form.confirm #xac-nhan method="post" action={ "/ho-so/" (d.code) "/trang-thai" } data-once="1" {
                        p.warning role="alert" { "Chuyển hồ sơ " strong { (d.code) } " sang \"" (cf.to.name_vi()) "\"? Hồ sơ sẽ kết thúc, "
                            strong { "không thể hoàn tác" } ". Ghi rõ lý do (in trên phiếu gửi công dân)." }
                        input type="hidden" name="_csrf" value=(s.csrf);
                        input type="hidden" name=(INTENT_FIELD) value=(cf.intent);
                        input type="hidden" name="trang_thai" value=(cf.to.get());
                        input type="hidden" name="xac_nhan" value="1";
                        label { "Lý do (bắt buộc)" input #ly-do name="ghi_chu" value=(cf.note) required maxlength="1000" autofocus; }
                        button.danger type="submit" { "Xác nhận chuyển sang \"" (cf.to.name_vi()) "\"" }
                        " "
                        a href={ "/ho-so/" (d.code) } { "Hủy, giữ nguyên trạng thái" }
                    }
                } @else if d.status.is_final() {
                    p.note { "Hồ sơ đã ở trạng thái cuối, không thể chuyển tiếp." }
                } @else {
                    form #doi-trang-thai method="post" action={ "/ho-so/" (d.code) "/trang-thai" } data-once="1" {
                        input type="hidden" name="_csrf" value=(s.csrf);
                        input type="hidden" name=(INTENT_FIELD) value=(session::token());
                        label { "Chuyển sang"
                            select name="trang_thai" required {
                                option value="" selected disabled { "— Chọn trạng thái mới —" }
                                @for n in d.status.next() {
                                    option value=(n.get()) { (n.name_vi()) @if n.asks_confirmation() { " (cần xác nhận)" } @else if n.needs_reason() { " (cần ghi lý do)" } }
                                }
                            }
                        }
                        label { "Ghi chú / lý do (bắt buộc khi từ chối, yêu cầu bổ sung, rút hoặc dừng xử lý)" input name="ghi_chu" maxlength="1000"; }
                        button type="submit" { "Cập nhật trạng thái" }
                    }
                }
            }
            @if let Some(promised) = &promised {
                @if typed.is_some() || app::offers_apology(d.status, promised, &today) {
                    (apology_form(&d.code.to_string(), &s.csrf, promised, typed.unwrap_or_default(), k.opts().office.closes))
                }
            }
        }
        (receipt_sheet(k, &d, unit.as_ref(), &staff_name, "Bản 1: giao người nộp hồ sơ", true))
        div.print-only { (receipt_sheet(k, &d, unit.as_ref(), &staff_name, "Bản 2: lưu tại bộ phận tiếp nhận", false)) }
    };
    let status = if apology_refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if status_error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok(html_response(
        status,
        page(&format!("Hồ sơ {}", d.code), k, Some(s), &sync, body),
    ))
}

/// GET `/ho-so/{code}`: the receipt (form 01).
pub async fn receipt(
    State(k): State<Kiosk>,
    clerk: Clerk<Page>,
    Path(code): Path<String>,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, Failure> {
    let notice = match (q.moi, q.doi.and_then(|v| Status::try_from(v).ok())) {
        (_, Some(to)) => Notice::Moved(to),
        (Some(2), None) => Notice::Repeated,
        (Some(_), None) => Notice::Received,
        (None, None) => Notice::None,
    };
    receipt_page(&k, &clerk, code, notice, None, Pending::None).await
}

/// POST `/ho-so/{code}/trang-thai`: a move that ends the dossier (refused,
/// withdrawn, stopped) is first shown back for confirmation with its
/// reason; the form's idempotency key makes a second press answer with
/// the first move.
pub async fn change_status(
    State(k): State<Kiosk>,
    Path(code): Path<String>,
    form: CsrfForm,
) -> Result<Response, Failure> {
    let to = form
        .field("trang_thai")
        .parse::<u8>()
        .ok()
        .and_then(|v| app::status(v).ok());
    let Some(to) = to else {
        return receipt_page(
            &k,
            &form.clerk,
            code,
            Notice::None,
            Some("Chưa chọn trạng thái mới.".into()),
            Pending::None,
        )
        .await;
    };
    let typed_note = form.field("ghi_chu").trim().to_owned();
    let key = form.field(INTENT_FIELD).trim().to_owned();
    if to.asks_confirmation() && form.field("xac_nhan") != "1" {
        let confirm = Confirm {
            to,
            note: typed_note,
            intent: key,
        };
        return receipt_page(
            &k,
            &form.clerk,
            code,
            Notice::None,
            None,
            Pending::Confirm(confirm),
        )
        .await;
    }
    let note = Some(typed_note.clone()).filter(|n| !n.is_empty());
    let request = format!("{code}\n{}\n{typed_note}", to.get());
    let intent = match Intent::new(&key, request.as_bytes()) {
        Ok(i) => i,
        Err(i) => {
            return receipt_page(
                &k,
                &form.clerk,
                code,
                Notice::None,
                Some(sentence(i)),
                Pending::None,
            )
            .await;
        }
    };
    let staff = &form.clerk.session().staff;
    let answer = form
        .clerk
        .writer()
        .set_status_once_async(&code, to, staff.clone(), note, intent)
        .await;
    let refused = match answer {
        Ok(Err(Refusal::NotFound(_))) => return Err(Failure::NotFound),
        answer => match for_clerk(answer, "a status change") {
            Ok(c) => {
                tracing::info!(code = %c.code, seq = c.seq, from = c.from.get(), to = c.to.get(), repeated = c.repeated, staff = %staff, "status changed at the kiosk");
                return Ok(
                    Redirect::to(&format!("/ho-so/{code}?doi={}", c.to.get())).into_response()
                );
            }
            Err(i) => i,
        },
    };
    // A reason left empty at the confirmation: ask again.
    let confirm = (to.asks_confirmation() && refused.0.iter().any(|i| i.code == "reason_required"))
        .then_some(Confirm {
            to,
            note: typed_note,
            intent: key,
        });
    receipt_page(
        &k,
        &form.clerk,
        code,
        Notice::None,
        Some(sentence(refused)),
        confirm.map_or(Pending::None, Pending::Confirm),
    )
    .await
}

/// The lookup query.
#[derive(Debug, Default, Deserialize)]
pub struct LookupQuery {
    /// A dossier code, an ID number or a name.
    #[serde(default)]
    q: String,
    /// The day received, dd/mm/yyyy.
    #[serde(default)]
    ngay: String,
    /// Only overdue dossiers.
    #[serde(default)]
    qua_han: Option<String>,
}

fn results(list: &[Summary]) -> Markup {
    html! {
        @if list.is_empty() {
            p.note #khong-co { "Không có hồ sơ phù hợp." }
        } @else {
            table.results #ket-qua {
                thead { tr { th { "Mã hồ sơ" } th { "Người nộp" } th { "Thủ tục" } th { "Nhận lúc" } th { "Hẹn trả" } th { "Trạng thái" } } }
                tbody {
                    @for r in list {
                        tr class=[r.overdue.then_some("overdue")] {
                            td.nowrap { a href={ "/ho-so/" (r.code) } { (r.code) } }
                            td { (r.name.as_deref().unwrap_or("(đã xóa theo thời hạn)")) }
                            td.procedure { @if let Some(n) = &r.procedure_name { (n) " " } span.code { (r.procedure) } }
                            td.nowrap { (local_time(&r.received_at)) }
                            td.nowrap { (local_time(&r.appointment_at)) @if r.overdue { " " span.badge { "Quá hạn" } }
                                @if let Some(at) = &r.rescheduled_at { br; span.note { "hẹn lại " (local_time(at)) } } }
                            td { (r.status.name_vi()) }
                        }
                    }
                }
            }
        }
    }
}

/// The dossier code in what a scanner typed: the whole text, or one part
/// of a URL (path segment or query value).
fn scanned_code(typed: &str) -> Option<String> {
    typed
        .trim()
        .split(['/', '?', '&', '=', '#'])
        .filter_map(|part| part.trim().to_uppercase().parse::<DossierCode>().ok())
        .map(|c| c.to_string())
        .next_back()
}

/// GET `/tra-cuu`.
pub async fn lookup(
    State(k): State<Kiosk>,
    clerk: Clerk<Page>,
    Query(lq): Query<LookupQuery>,
) -> Result<Response, Failure> {
    let overdue = lq.qua_han.is_some();
    // A scanner types the receipt's QR (a code, or the lookup URL holding
    // it) and Enter: that dossier opens.
    if let Some(code) = scanned_code(&lq.q) {
        let c = code.clone();
        if clerk.read(move |r| r.dossier(&c)).await?.is_some() {
            return Ok(Redirect::to(&format!("/ho-so/{code}")).into_response());
        }
    }
    // Nothing asked: today's dossiers.
    let todays = lq.q.trim().is_empty() && lq.ngay.trim().is_empty() && !overdue;
    let lookup = Lookup {
        text: lq.q.clone(),
        day: if !lq.ngay.trim().is_empty() {
            Day::Typed(lq.ngay.clone())
        } else if todays {
            Day::Today
        } else {
            Day::Any
        },
        overdue,
        limit: 200,
        ..Lookup::default()
    };
    let today = k.today();
    let (list, error) = match lookup.query(&today) {
        Ok(q) => (clerk.read(move |r| r.search(&q, &today.now)).await?, None),
        Err(r) => (Vec::new(), Some(sentence(r.for_clerk()))),
    };
    let sync = k.sync_view().await;
    let body = html! {
        h1 { "Tra cứu hồ sơ" }
        form.lookup method="get" action="/tra-cuu" {
            label { "Mã hồ sơ (hoặc quét mã QR), số định danh hoặc họ tên (có dấu hoặc không dấu)"
                input type="search" name="q" value=(lq.q) autofocus; }
            label { "Ngày nhận (dd/mm/yyyy)" input name="ngay" value=(lq.ngay) placeholder="26/11/2026"; }
            label.check { input type="checkbox" name="qua_han" value="1" checked[lq.qua_han.is_some()]; "Chỉ hồ sơ quá hạn" }
            button type="submit" { "Tìm" }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if todays { h2 { "Hồ sơ nhận hôm nay" } }
        (results(&list))
    };
    Ok(html_response(
        StatusCode::OK,
        page("Tra cứu hồ sơ", &k, Some(clerk.session()), &sync, body),
    ))
}

/// Where the reception time came from, on the counter's copy only (the
/// citizen's copy is not the place for the box's clock): nothing for a
/// synchronised clock.
fn clock_note(x: &motcua_counter::domain::dossier::Dossier) -> String {
    match (x.clock_synced, x.clock_dc) {
        (true, _) => String::new(),
        (false, Some(ms)) => format!(
            " (giờ lấy theo Trung tâm dữ liệu, sai lệch không quá {} giây)",
            ms.div_ceil(1000).max(1)
        ),
        (false, None) => " (đồng hồ máy chưa đồng bộ)".into(),
    }
}
