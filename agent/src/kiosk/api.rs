//! The kiosk's JSON API, under `/api/v1`, for other counter software
//! (queue-number machines, scanners). Documented in docs/KIOSK-API.md.
//!
//! The same session as the pages: `POST /api/v1/login` sets the cookie and
//! returns the CSRF token, which every later `POST` carries in
//! `X-CSRF-Token`. Bodies must be `application/json` (a cross-site HTML
//! form cannot send that without the browser asking first). Errors are
//! `{"error": code, "message": Vietnamese sentence}`, with `problems`
//! (field, code, message) for refused dossiers.

// The helpers return the finished error response as their `Err`: it is
// sent as it is, once per refused request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::pages::{LoginOutcome, attempt, interpret};
use super::session::{self, Session};
use super::{Failure, Kiosk, today};
use motcua_counter::dates::{local_date, parse_date};
use motcua_counter::domain::VIETNAM;
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::domain::invalid::InvalidInput;
use motcua_counter::domain::status::Status;
use motcua_counter::store::Refusal;
use motcua_counter::store::read::Query as Search;
use motcua_counter::store::reference::{self, Procedure};

/// The API's routes.
pub fn routes() -> Router<Kiosk> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sync", get(sync))
        .route("/procedures", get(procedures))
        .route("/dossiers", post(create).get(search))
        .route("/dossiers/{code}", get(dossier))
        .route("/dossiers/{code}/status", post(set_status))
        .fallback(not_found)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn failure(f: Failure) -> Response {
    match f {
        Failure::NotFound => error(StatusCode::NOT_FOUND, "not_found", "Không tìm thấy."),
        Failure::Store(e) => {
            tracing::error!(error = %e, "kiosk API: store failure");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store",
                "Máy gặp lỗi khi đọc hoặc ghi dữ liệu. Vui lòng thử lại; nếu vẫn lỗi, báo kỹ thuật viên.",
            )
        }
        Failure::Internal(e) => {
            tracing::error!(error = %e, "kiosk API: internal failure");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Máy gặp lỗi ngoài dự kiến.",
            )
        }
    }
}

fn invalid(status: StatusCode, i: &InvalidInput) -> Response {
    (
        status,
        Json(json!({
            "error": "invalid",
            "message": "Dữ liệu chưa hợp lệ.",
            "problems": i,
        })),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_such_route",
        "Không có đường dẫn API này.",
    )
}

/// The body as JSON of `T`, or the error response.
fn json_body<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Response> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Dữ liệu gửi lên quá lớn.",
            )
        } else {
            error(
                StatusCode::BAD_REQUEST,
                "unreadable",
                "Không đọc được dữ liệu gửi lên.",
            )
        }
    })?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim() == "application/json")
        });
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_json",
            "Dữ liệu phải là JSON (Content-Type: application/json).",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        // serde's message names fields and types, never values.
        let msg = format!("JSON không đúng định dạng: {e}");
        error(StatusCode::BAD_REQUEST, "bad_json", &msg)
    })
}

fn authed(k: &Kiosk, headers: &HeaderMap) -> Result<(String, Session), Response> {
    k.session(headers).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Chưa đăng nhập hoặc phiên đã hết hạn.",
        )
    })
}

fn authed_write(k: &Kiosk, headers: &HeaderMap) -> Result<(String, Session), Response> {
    let (t, s) = authed(k, headers)?;
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !session::same(&s.csrf, given) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "csrf",
            "Thiếu hoặc sai mã chống giả mạo (X-CSRF-Token).",
        ));
    }
    Ok((t, s))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    staff: String,
    secret: String,
}

async fn login(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let b: LoginBody = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match attempt(&k, b.staff.trim(), &b.secret).await {
        LoginOutcome::Ok(token, s) => {
            let mut res = Json(json!({
                "staff": s.staff,
                "name": s.name,
                "csrf_token": s.csrf,
            }))
            .into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, k.set_cookie(session::COOKIE, &token, None));
            res
        }
        LoginOutcome::Wrong => error(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "Sai mã cán bộ hoặc mật khẩu.",
        ),
        LoginOutcome::Locked(min) => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "error": "locked",
                "message": format!("Tài khoản tạm khóa vì nhập sai nhiều lần. Vui lòng thử lại sau {min} phút."),
                "retry_after_minutes": min,
            })),
        )
            .into_response(),
    }
}

async fn logout(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    match authed_write(&k, &headers) {
        Ok((token, _)) => {
            k.sessions().close(&token);
            let mut res = StatusCode::NO_CONTENT.into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                k.set_cookie(session::COOKIE, "", Some(0)),
            );
            res
        }
        Err(r) => r,
    }
}

async fn sync(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    if let Err(r) = authed(&k, &headers) {
        return r;
    }
    Json(k.sync_view().await).into_response()
}

#[derive(Deserialize)]
struct ProcedureQuery {
    #[serde(default)]
    q: String,
}

#[derive(Serialize)]
struct ProcedureOut {
    #[serde(flatten)]
    procedure: Procedure,
    /// The appointment date (dd/mm/yyyy) for a dossier received now.
    appointment: Option<String>,
}

async fn procedures(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    Query(pq): Query<ProcedureQuery>,
) -> Response {
    if let Err(r) = authed(&k, &headers) {
        return r;
    }
    let res = k
        .read(move |r| {
            let conn = r.connection();
            let list = reference::search_procedures(conn, &pq.q)?;
            let now = time::OffsetDateTime::now_utc();
            let cal = reference::calendar(conn, now.to_offset(VIETNAM).date())?;
            Ok(list
                .into_iter()
                .map(|p| {
                    let appointment = cal
                        .appointment(now, p.working_days)
                        .map(|t| local_date(&motcua_protocol::UtcTime::new(t).to_string()));
                    ProcedureOut {
                        procedure: p,
                        appointment,
                    }
                })
                .collect::<Vec<_>>())
        })
        .await;
    match res {
        Ok(list) => Json(list).into_response(),
        Err(f) => failure(f),
    }
}

async fn create(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (_, s) = match authed_write(&k, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let input: DossierInput = match json_body(&headers, body) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match k.writer().create_async(input, s.staff.clone()).await {
        Ok(Ok(c)) => {
            tracing::info!(code = %c.dossier.code, seq = c.seq, staff = %s.staff, "dossier received through the kiosk API");
            (
                StatusCode::CREATED,
                [(
                    header::LOCATION,
                    format!("/api/v1/dossiers/{}", c.dossier.code),
                )],
                Json(json!({ "code": c.dossier.code, "seq": c.seq, "dossier": c.dossier })),
            )
                .into_response()
        }
        Ok(Err(Refusal::Invalid(i))) => {
            tracing::info!(codes = ?i.codes(), "kiosk API submission refused");
            invalid(StatusCode::UNPROCESSABLE_ENTITY, &i)
        }
        Ok(Err(r)) => {
            tracing::error!(error = %r, "kiosk API: a submission was not stored");
            invalid(StatusCode::SERVICE_UNAVAILABLE, &r.for_clerk())
        }
        Err(e) => {
            tracing::error!(error = %e, "kiosk API: a submission was not stored");
            invalid(StatusCode::SERVICE_UNAVAILABLE, &e.for_clerk())
        }
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    id_number: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// dd/mm/yyyy or yyyy-mm-dd.
    #[serde(default)]
    day: Option<String>,
    #[serde(default)]
    overdue: bool,
    #[serde(default)]
    limit: Option<usize>,
}

async fn search(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    Query(sq): Query<SearchQuery>,
) -> Response {
    if let Err(r) = authed(&k, &headers) {
        return r;
    }
    let mut q = Search {
        code: sq.code,
        id_number: sq.id_number,
        name: sq.name,
        overdue: sq.overdue,
        limit: sq.limit.unwrap_or(100).clamp(1, 1000),
        ..Search::default()
    };
    interpret(&sq.q, &mut q);
    if let Some(d) = sq.day.as_deref().filter(|d| !d.trim().is_empty()) {
        match parse_date(d) {
            Some(d) => q.day = Some(d),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "day_format",
                    "Ngày không hợp lệ: dùng dd/mm/yyyy, ví dụ 26/11/2026.",
                );
            }
        }
    }
    let (_, now) = today();
    match k.read(move |r| r.search(&q, &now)).await {
        Ok(list) => Json(list).into_response(),
        Err(f) => failure(f),
    }
}

async fn dossier(State(k): State<Kiosk>, headers: HeaderMap, Path(code): Path<String>) -> Response {
    if let Err(r) = authed(&k, &headers) {
        return r;
    }
    match k.read(move |r| r.dossier(&code)).await {
        Ok(Some(d)) => Json(d).into_response(),
        Ok(None) => failure(Failure::NotFound),
        Err(f) => failure(f),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: u8,
    #[serde(default)]
    note: Option<String>,
}

async fn set_status(
    State(k): State<Kiosk>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (_, s) = match authed_write(&k, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let b: StatusBody = match json_body(&headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(to) = Status::try_from(b.status) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "status_range",
            "Trạng thái phải là số từ 1 đến 10.",
        );
    };
    match k
        .writer()
        .set_status_async(&code, to, s.staff.clone(), b.note)
        .await
    {
        Ok(Ok(c)) => {
            tracing::info!(code = %c.code, seq = c.seq, from = c.from.get(), to = c.to.get(), staff = %s.staff, "status changed through the kiosk API");
            Json(json!({ "code": c.code, "from": c.from.get(), "to": c.to.get(), "seq": c.seq }))
                .into_response()
        }
        Ok(Err(Refusal::NotFound(_))) => failure(Failure::NotFound),
        Ok(Err(Refusal::Invalid(i))) => invalid(StatusCode::CONFLICT, &i),
        Ok(Err(r)) => {
            tracing::error!(error = %r, "kiosk API: a status change was not stored");
            invalid(StatusCode::SERVICE_UNAVAILABLE, &r.for_clerk())
        }
        Err(e) => {
            tracing::error!(error = %e, "kiosk API: a status change was not stored");
            invalid(StatusCode::SERVICE_UNAVAILABLE, &e.for_clerk())
        }
    }
}
