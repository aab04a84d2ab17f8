//! The kiosk's JSON API, under `/api/v1`, for other counter software
//! (queue-number machines, scanners). Documented in docs/KIOSK-API.md.
//!
//! The same session as the pages: `POST /api/v1/login` sets the cookie and
//! returns the CSRF token, which every later `POST` carries in
//! `X-CSRF-Token`. Bodies must be `application/json` (a cross-site HTML
//! form cannot send that without the browser asking first). Errors are
//! `{"error": code, "message": Vietnamese sentence}`, with `problems`
//! (field, code, message) for refused dossiers.
//!
//! Every handler takes its clerk from [`super::guard`]: a [`Clerk<Api>`]
//! to read (401 without a session), a [`Checked<Api>`] to write (403
//! without `X-CSRF-Token`); bodies come through [`JsonBody`].

// The helpers return the finished error response as their `Err`: it is
// sent as it is, once per refused request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::guard::{Api, Checked, Clerk, Front, LoginOutcome, attempt};
use super::session;
use super::{Failure, Kiosk};
use motcua_counter::app::{self, Day, Lookup};
use motcua_counter::domain::dossier::DossierInput;
use motcua_counter::domain::intent::Intent;
use motcua_counter::domain::invalid::InvalidInput;
use motcua_counter::store::{Answer, Refusal};

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
        .route("/dossiers/{code}/reschedule", post(reschedule))
        .fallback(not_found)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

impl Front for Api {
    fn unauthenticated() -> Response {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Chưa đăng nhập hoặc phiên đã hết hạn.",
        )
    }

    fn forged() -> Response {
        error(
            StatusCode::FORBIDDEN,
            "csrf",
            "Thiếu hoặc sai mã chống giả mạo (X-CSRF-Token).",
        )
    }
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

/// A writer's answer as the API gives it, the one table for every write:
/// no such dossier 404, a move the status table forbids 409
/// (`status_transition`), other refused input 422, anything else 503
/// with the clerk's line (the cause logged as `what` not stored).
fn answered<T>(answer: Answer<T>, what: &str) -> Result<T, Response> {
    match answer {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Refusal::NotFound(_))) => Err(failure(Failure::NotFound)),
        Ok(Err(Refusal::Invalid(i))) => {
            tracing::info!(codes = ?i.codes(), "kiosk API: {what} refused");
            let status = if i.codes().contains(&"status_transition") {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Err(invalid(status, &i))
        }
        Ok(Err(r)) => {
            tracing::error!(error = %r, "kiosk API: {what} was not stored");
            Err(invalid(StatusCode::SERVICE_UNAVAILABLE, &r.for_clerk()))
        }
        Err(e) => {
            tracing::error!(error = %e, "kiosk API: {what} was not stored");
            Err(invalid(StatusCode::SERVICE_UNAVAILABLE, &e.for_clerk()))
        }
    }
}

/// A refusal decided by the counter's use cases ([`app`]), as
/// `{"error": code, "message"}` with `status`.
fn refused(status: StatusCode, r: &Refusal) -> Response {
    let i = r.for_clerk();
    match i.0.first() {
        Some(first) => error(status, first.code, &first.message),
        None => invalid(status, &i),
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_such_route",
        "Không có đường dẫn API này.",
    )
}

/// A JSON body of `T`: read within the limit (413), `application/json`
/// (415), well-formed (400). As the last argument, after the clerk, so the
/// session and CSRF token are checked first.
pub struct JsonBody<T>(pub T);

impl<T: for<'de> Deserialize<'de>> FromRequest<Kiosk> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, k: &Kiosk) -> Result<Self, Response> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        let body = Bytes::from_request(req, k).await.map_err(|e| {
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
        if !is_json {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_json",
                "Dữ liệu phải là JSON (Content-Type: application/json).",
            ));
        }
        serde_json::from_slice(&body).map(JsonBody).map_err(|e| {
            // serde's message names fields and types, never values.
            let msg = format!("JSON không đúng định dạng: {e}");
            error(StatusCode::BAD_REQUEST, "bad_json", &msg)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    staff: String,
    secret: String,
}

async fn login(State(k): State<Kiosk>, JsonBody(b): JsonBody<LoginBody>) -> Response {
    let outcome = attempt(&k, b.staff.trim(), &b.secret).await;
    let message = outcome.message().unwrap_or_default();
    match outcome {
        LoginOutcome::Ok(token, s) => {
            let mut res = Json(json!({
                "staff": s.staff,
                "name": s.name,
                "csrf_token": s.csrf,
            }))
            .into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                k.set_cookie(session::COOKIE, &token, None),
            );
            res
        }
        LoginOutcome::Wrong => error(StatusCode::UNAUTHORIZED, "login_failed", &message),
        LoginOutcome::Locked(min) => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "error": "locked",
                "message": message,
                "retry_after_minutes": min,
            })),
        )
            .into_response(),
        LoginOutcome::Busy => {
            let mut res = error(StatusCode::SERVICE_UNAVAILABLE, "busy", &message);
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            res
        }
    }
}

async fn logout(State(k): State<Kiosk>, clerk: Checked<Api>) -> Response {
    clerk.log_out();
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        k.set_cookie(session::COOKIE, "", Some(0)),
    );
    res
}

async fn sync(State(k): State<Kiosk>, _clerk: Clerk<Api>) -> Response {
    Json(k.sync_view().await).into_response()
}

#[derive(Deserialize)]
struct ProcedureQuery {
    #[serde(default)]
    q: String,
}

async fn procedures(
    State(k): State<Kiosk>,
    clerk: Clerk<Api>,
    Query(pq): Query<ProcedureQuery>,
) -> Response {
    let today = k.today();
    let office = k.opts().office;
    match clerk
        .read(move |r| app::offers(r, &pq.q, &today, &office))
        .await
    {
        Ok(list) => Json(list).into_response(),
        Err(f) => failure(f),
    }
}

/// The request's `Idempotency-Key` for a request whose canonical bytes are
/// `request`: 400 when missing or malformed.
fn intent(headers: &HeaderMap, request: &[u8]) -> Result<Intent, Response> {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .unwrap_or_default();
    Intent::new(key, request).map_err(|i| invalid(StatusCode::BAD_REQUEST, &i))
}

/// The header that tells a client its request was a repeat.
const REPLAYED: &str = "idempotent-replayed";

async fn create(
    headers: HeaderMap,
    clerk: Checked<Api>,
    JsonBody(input): JsonBody<DossierInput>,
) -> Response {
    let intent = match intent(&headers, &input.canonical()) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let staff = &clerk.session().staff;
    let answer = clerk
        .writer()
        .create_once_async(input, staff.clone(), intent)
        .await;
    match answered(answer, "a submission") {
        Ok(c) => {
            tracing::info!(code = %c.dossier.code, seq = c.seq, repeated = c.repeated, staff = %staff, "dossier received through the kiosk API");
            let status = if c.repeated {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (
                status,
                [
                    (
                        header::LOCATION,
                        format!("/api/v1/dossiers/{}", c.dossier.code),
                    ),
                    (
                        header::HeaderName::from_static(REPLAYED),
                        c.repeated.to_string(),
                    ),
                ],
                Json(json!({ "code": c.dossier.code, "seq": c.seq, "dossier": c.dossier })),
            )
                .into_response()
        }
        Err(r) => r,
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
    clerk: Clerk<Api>,
    Query(sq): Query<SearchQuery>,
) -> Response {
    let lookup = Lookup {
        text: sq.q,
        code: sq.code,
        id_number: sq.id_number,
        name: sq.name,
        day: sq
            .day
            .filter(|d| !d.trim().is_empty())
            .map_or(Day::Any, Day::Typed),
        overdue: sq.overdue,
        limit: sq.limit.unwrap_or(100).clamp(1, 1000),
    };
    let today = k.today();
    let q = match lookup.query(&today) {
        Ok(q) => q,
        Err(_) => {
            // The API's own wording of app::DAY_FORMAT, kept as published.
            return error(
                StatusCode::BAD_REQUEST,
                app::DAY_FORMAT,
                "Ngày không hợp lệ: dùng dd/mm/yyyy, ví dụ 26/11/2026.",
            );
        }
    };
    match clerk.read(move |r| r.search(&q, &today.now)).await {
        Ok(list) => Json(list).into_response(),
        Err(f) => failure(f),
    }
}

async fn dossier(clerk: Clerk<Api>, Path(code): Path<String>) -> Response {
    match clerk.read(move |r| r.dossier(&code)).await {
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
    headers: HeaderMap,
    clerk: Checked<Api>,
    Path(code): Path<String>,
    JsonBody(b): JsonBody<StatusBody>,
) -> Response {
    let request = json!({ "code": code, "status": b.status, "note": b.note }).to_string();
    let intent = match intent(&headers, request.as_bytes()) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let to = match app::status(b.status) {
        Ok(to) => to,
        Err(r) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &r),
    };
    let staff = &clerk.session().staff;
    let answer = clerk
        .writer()
        .set_status_once_async(&code, to, staff.clone(), b.note, intent)
        .await;
    match answered(answer, "a status change") {
        Ok(c) => {
            tracing::info!(code = %c.code, seq = c.seq, from = c.from.get(), to = c.to.get(), repeated = c.repeated, staff = %staff, "status changed through the kiosk API");
            (
                [(
                    header::HeaderName::from_static(REPLAYED),
                    c.repeated.to_string(),
                )],
                Json(
                    json!({ "code": c.code, "from": c.from.get(), "to": c.to.get(), "seq": c.seq }),
                ),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RescheduleBody {
    /// The new appointment, RFC 3339 with its offset.
    to: String,
    #[serde(default)]
    note: Option<String>,
}

/// POST `/dossiers/{code}/reschedule`: an apology for a late dossier with
/// its new appointment (form 04), signed as `dossier.rescheduled`.
async fn reschedule(
    headers: HeaderMap,
    clerk: Checked<Api>,
    Path(code): Path<String>,
    JsonBody(b): JsonBody<RescheduleBody>,
) -> Response {
    let request = json!({ "code": code, "to": b.to, "note": b.note }).to_string();
    let intent = match intent(&headers, request.as_bytes()) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(to) = time::OffsetDateTime::parse(&b.to, &time::format_description::well_known::Rfc3339)
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            app::APPOINTMENT_FORMAT,
            "Ngày giờ hẹn mới không hợp lệ: dùng RFC 3339, ví dụ 2026-12-08T17:00:00+07:00.",
        );
    };
    let staff = &clerk.session().staff;
    let answer = clerk
        .writer()
        .reschedule_once_async(&code, to, staff.clone(), b.note, intent)
        .await;
    match answered(answer, "an apology") {
        Ok(r) => {
            tracing::info!(code = %r.code, seq = r.seq, repeated = r.repeated, staff = %staff, "apology with a new appointment through the kiosk API");
            (
                [(
                    header::HeaderName::from_static(REPLAYED),
                    r.repeated.to_string(),
                )],
                Json(json!({
                    "code": r.code,
                    "from": r.from,
                    "to": r.to,
                    "seq": r.seq,
                    "form": format!("/ho-so/{}/phieu/{}", r.code, r.seq),
                })),
            )
                .into_response()
        }
        Err(r) => r,
    }
}
