//! The operators' login and logout pages, and the page for a role an
//! account lacks. Vietnamese, like the dashboard.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::auth::{self, COOKIE, Checked, LOGIN_COOKIE};
use super::{CSS, Web};
use crate::rights::Role;

fn frame(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — motcua, Trung tâm dữ liệu" }
                style { (CSS) }
            }
            body {
                header { h1 { "motcua — các quầy Một cửa" } }
                main { (body) }
            }
        }
    }
}

fn form(csrf: &str, name: &str, error: Option<&str>) -> Markup {
    frame(
        "Đăng nhập",
        html! {
            form.login method="post" action="/dang-nhap" {
                h2 { "Đăng nhập" }
                p.note { "Dành cho cán bộ vận hành của Trung tâm dữ liệu. Mọi lần xem dữ liệu công dân đều được ghi lại." }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                input type="hidden" name="_csrf" value=(csrf);
                label { "Tài khoản" input name="ten" value=(name) required maxlength="64" autocomplete="username" autofocus; }
                label { "Mật khẩu" input type="password" name="mat_khau" required maxlength="128" autocomplete="current-password"; }
                button type="submit" { "Đăng nhập" }
            }
        },
    )
}

/// `GET /dang-nhap`: the form, with a fresh double-submit token.
pub async fn login_form(State(web): State<Web>) -> Response {
    let token = motcua_common::login::token();
    (
        [
            (
                header::SET_COOKIE,
                web.auth.set_cookie(LOGIN_COOKIE, &token, Some(1800)),
            ),
            (header::CACHE_CONTROL, "no-store".parse().expect("static")),
        ],
        form(&token, "", None),
    )
        .into_response()
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    ten: String,
    #[serde(default)]
    mat_khau: String,
    #[serde(default)]
    _csrf: String,
}

/// `POST /dang-nhap`.
pub async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(f): Form<LoginFields>,
) -> Response {
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let again = |status: StatusCode, message: &str| {
        let token = motcua_common::login::token();
        (
            status,
            [
                (
                    header::SET_COOKIE,
                    web.auth.set_cookie(LOGIN_COOKIE, &token, Some(1800)),
                ),
                (header::CACHE_CONTROL, "no-store".parse().expect("static")),
            ],
            form(&token, f.ten.trim(), Some(message)),
        )
            .into_response()
    };
    if expected.is_empty() || !motcua_common::login::same(&expected, &f._csrf) {
        return again(
            StatusCode::FORBIDDEN,
            "Phiên đăng nhập đã hết hạn. Vui lòng nhập lại.",
        );
    }
    let name = f.ten.trim();
    match auth::check(&web, name, &f.mat_khau).await {
        Checked::Ok(o) => {
            tracing::info!(operator = %o.name, "dashboard login");
            // The browser's previous session, if any, ends here.
            if let Some(old) = auth::cookie(&headers, COOKIE) {
                web.auth.sessions.close(&old);
            }
            let (token, _) = web.auth.sessions.open(auth::Holder {
                name: o.name,
                opened: crate::receiver::now(),
            });
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                web.auth.set_cookie(COOKIE, &token, None),
            );
            h.append(
                header::SET_COOKIE,
                web.auth.set_cookie(LOGIN_COOKIE, "", Some(0)),
            );
            r
        }
        Checked::Wrong => {
            tracing::warn!("dashboard login refused");
            again(StatusCode::UNAUTHORIZED, "Sai tài khoản hoặc mật khẩu.")
        }
        Checked::Locked(min) => again(
            StatusCode::UNAUTHORIZED,
            &format!("Tài khoản tạm khóa vì nhập sai nhiều lần. Vui lòng thử lại sau {min} phút."),
        ),
        Checked::Busy => again(
            StatusCode::SERVICE_UNAVAILABLE,
            "Máy chủ đang xử lý quá nhiều lượt đăng nhập. Vui lòng thử lại sau ít giây.",
        ),
        Checked::Unavailable => super::unavailable(),
    }
}

/// The logout form's field.
#[derive(Deserialize)]
pub struct LogoutFields {
    #[serde(default)]
    _csrf: String,
}

/// `POST /dang-xuat`: ends the session when the form carries its token.
pub async fn logout(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(f): Form<LogoutFields>,
) -> Response {
    if let Some(token) = auth::cookie(&headers, COOKIE)
        && let Some(s) = web.auth.sessions.get(&token)
    {
        if !motcua_common::login::same(&s.csrf, &f._csrf) {
            return (StatusCode::FORBIDDEN, "the form's token does not match\n").into_response();
        }
        web.auth.sessions.close(&token);
        tracing::info!(operator = %s.who.name, "dashboard logout");
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/dang-nhap")]).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, web.auth.set_cookie(COOKIE, "", Some(0)));
    r
}

/// The page for an operator whose account lacks `role`.
pub fn forbidden(role: Role) -> Response {
    let what = match role {
        Role::Fleet => "xem tình trạng các quầy (quyền fleet)",
        Role::Records => "xem dữ liệu hồ sơ của công dân (quyền records)",
        Role::Admin => "quản trị (quyền admin)",
    };
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, "no-store")],
        frame(
            "Không có quyền",
            html! {
                h2 { "Không có quyền" }
                p { "Tài khoản này không được " (what) ". Xin quyền từ quản trị viên của Trung tâm dữ liệu." }
                p { a href="/dang-nhap" { "Đăng nhập bằng tài khoản khác" } }
            },
        ),
    )
        .into_response()
}
