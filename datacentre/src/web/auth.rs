//! Who is asking, and whether they may: every route but `/healthz` and the
//! login page takes an [`Allowed<R>`], which exists only for an operator
//! whose account (read fresh from the database on each request: a
//! disabled account or a removed role counts at once) holds role `R`.
//!
//! Two ways in:
//! - a session: `/dang-nhap` (name, password, and a double-submit CSRF
//!   token) sets the cookie [`COOKIE`] (HttpOnly, SameSite=Strict, Secure
//!   over TLS); `/dang-xuat` ends it, with the session's CSRF token;
//! - HTTP Basic authentication on each request (for programs: a
//!   Prometheus scraper, a script), checked like a login.
//!
//! Both count failed passwords per account and lock it for `[http]
//! lockout` after `max_failures` in a row; at most
//! [`motcua_common::login::LOGIN_CHECKS`] password checks run at once. An
//! unknown account costs the same check as a known one. Refusals say no
//! more than needed: 401 (who are you?) or 403 (not with this role), the
//! same for a wrong name, a wrong password, a disabled account or a lock,
//! except on the login page, which tells a person that their account is
//! locked.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use motcua_common::login::{LoginGate, Sessions};

use super::Web;
use motcua_protocol::UtcTime;

use crate::rights::{Operator, OperatorName, Role};

/// The session cookie's name.
pub const COOKIE: &str = "motcua_dc_phien";
/// The login form's double-submit cookie (CSRF before a session exists).
pub const LOGIN_COOKIE: &str = "motcua_dc_dangnhap";

/// The longest a session lasts, however active: the dashboard reloads
/// itself, so an open page would otherwise never go idle.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// Whose a session is, and since when.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The account.
    pub name: OperatorName,
    /// When it was opened: a session opened before the account last
    /// changed (a new password, roles, or enabled again after being
    /// disabled) is over.
    pub opened: UtcTime,
}

/// What the routes share about logins.
pub struct Auth {
    /// Open sessions, by cookie token.
    pub sessions: Sessions<Holder>,
    /// The bound on concurrent password checks.
    pub logins: Arc<LoginGate>,
    /// A hash checked for unknown accounts, so they cost the same.
    dummy: String,
    /// Cookies are `Secure` (served over TLS).
    pub secure: bool,
}

impl Auth {
    /// Sessions ending after `idle`; `max_failures` wrong passwords in a
    /// row lock an account for `lockout`.
    pub fn new(idle: Duration, max_failures: u32, lockout: Duration, secure: bool) -> Auth {
        Auth {
            sessions: Sessions::new(idle, max_failures, lockout),
            logins: Arc::new(LoginGate::default()),
            // A fixed hash of a random secret: nothing matches it.
            dummy: motcua_common::login::hash(&motcua_common::login::token()).unwrap_or_default(),
            secure,
        }
    }

    /// A `Set-Cookie` header value.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        motcua_common::login::set_cookie(name, value, max_age, self.secure)
    }
}

pub use motcua_common::login::cookie;

/// What a password check came to.
pub enum Checked {
    /// The enabled account whose password this is.
    Ok(Operator),
    /// Wrong name or password, or a disabled account.
    Wrong,
    /// Locked for this many more minutes.
    Locked(u64),
    /// Too many checks at once.
    Busy,
    /// The database could not be read.
    Unavailable,
}

/// Checks `name` and `password`, counting failures and locking.
pub async fn check(web: &Web, name: &str, password: &str) -> Checked {
    let auth = &web.auth;
    let locked = || {
        auth.sessions
            .locked(name)
            .map(|l| Checked::Locked(l.remaining.as_secs().div_ceil(60)))
    };
    if let Some(l) = locked() {
        return l;
    }
    let Some(permit) = auth.logins.enter().await else {
        tracing::warn!("dashboard login refused: too many at once");
        return Checked::Busy;
    };
    if let Some(l) = locked() {
        return l;
    }
    // A name that cannot be an account costs the same check but is not
    // counted: counting any text would let made-up names fill the memory.
    let parsed = name.parse::<OperatorName>().ok();
    let counted = parsed.is_some();
    let account = match parsed {
        Some(n) => match web.read(move |s| s.operator(&n)).await {
            Ok(found) => found.filter(|o| o.disabled_at.is_none()),
            Err(_) => return Checked::Unavailable,
        },
        None => None,
    };
    let phc = account
        .as_ref()
        .map_or_else(|| auth.dummy.clone(), |o| o.hash.clone());
    let (gate, secret) = (auth.logins.clone(), password.to_owned());
    let matched = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut memory = gate.memory();
        let ok = motcua_common::login::matches_in(&secret, &phc, &mut memory);
        gate.keep(memory);
        ok
    })
    .await
    .unwrap_or(false);
    match account {
        Some(o) if matched => {
            auth.sessions.succeeded(name);
            Checked::Ok(o)
        }
        _ if !counted => Checked::Wrong,
        _ => match auth.sessions.failed(name) {
            Some(l) => {
                tracing::warn!("dashboard account locked after repeated failed logins");
                Checked::Locked(l.remaining.as_secs().div_ceil(60))
            }
            None => Checked::Wrong,
        },
    }
}

/// How the operator came in.
#[derive(Debug, Clone)]
pub enum Via {
    /// A session, with its CSRF token (for the logout form).
    Session {
        /// The token its forms carry.
        csrf: String,
    },
    /// HTTP Basic authentication on this request.
    Basic,
}

/// A role a route needs.
pub trait Required: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// The fleet role: health, presence, metrics.
pub struct Fleet;
impl Required for Fleet {
    const ROLE: Role = Role::Fleet;
}

/// The records role: citizens' personal data.
pub struct Records;
impl Required for Records {
    const ROLE: Role = Role::Records;
}

/// An operator who holds role `R`.
pub struct Allowed<R: Required> {
    /// The account, as the database has it now.
    pub operator: Operator,
    /// How they came in.
    pub via: Via,
    role: PhantomData<R>,
}

/// Whether `path` is for programs (answered 401/403 in JSON or text) rather
/// than people (sent to the login page).
fn for_programs(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// The answer to a request without a valid login.
pub fn unauthenticated(path: &str) -> Response {
    if for_programs(path) {
        // No `WWW-Authenticate: Basic`: a browser would then ask for a
        // password and attach it to requests other sites make it send.
        (
            StatusCode::UNAUTHORIZED,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "error": "authentication required" })),
        )
            .into_response()
    } else {
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/dang-nhap"),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
            .into_response()
    }
}

/// The answer to an operator without the route's role.
fn forbidden(path: &str, role: Role) -> Response {
    if for_programs(path) {
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": format!("this needs the {role} role") })),
        )
            .into_response()
    } else {
        super::login::forbidden(role)
    }
}

/// `name:password` of a Basic `Authorization` header; `Err` for any other
/// (or a malformed) header.
fn basic(value: &HeaderValue) -> Result<(String, String), ()> {
    let v = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = v.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let (n, p) = text.split_once(':').ok_or(())?;
    Ok((n.to_owned(), p.to_owned()))
}

/// The operator of a request, fresh from the database, or the refusal.
pub async fn identify(parts: &Parts, web: &Web) -> Result<(Operator, Via), Response> {
    let path = parts.uri.path();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let Ok((name, password)) = basic(value) else {
            return Err(unauthenticated(path));
        };
        return match check(web, &name, &password).await {
            Checked::Ok(o) => Ok((o, Via::Basic)),
            Checked::Unavailable => Err(super::unavailable()),
            Checked::Busy => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "too many logins at once; try again in a few seconds\n",
            )
                .into_response()),
            Checked::Wrong | Checked::Locked(_) => Err(unauthenticated(path)),
        };
    }
    let Some(token) = cookie(&parts.headers, COOKIE) else {
        return Err(unauthenticated(path));
    };
    let Some(session) = web.auth.sessions.get(&token) else {
        return Err(unauthenticated(path));
    };
    let name = session.who.name.clone();
    let account = web
        .read(move |s| s.operator(&name))
        .await
        .map_err(|_| super::unavailable())?;
    let opened = session.who.opened;
    let fresh = crate::receiver::now()
        .get()
        .checked_sub(time::Duration::try_from(MAX_SESSION).unwrap_or(time::Duration::ZERO))
        .is_some_and(|oldest| opened.get() >= oldest);
    match account {
        Some(o) if o.disabled_at.is_none() && o.changed_at <= opened && fresh => Ok((
            o,
            Via::Session {
                csrf: session.csrf.clone(),
            },
        )),
        _ => {
            web.auth.sessions.close(&token);
            Err(unauthenticated(path))
        }
    }
}

impl<R: Required> FromRequestParts<Web> for Allowed<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let (operator, via) = identify(parts, web).await?;
        if !operator.roles.has(R::ROLE) {
            tracing::warn!(operator = %operator.name, role = %R::ROLE, path = parts.uri.path(), "refused: the account lacks the role");
            return Err(forbidden(parts.uri.path(), R::ROLE));
        }
        Ok(Allowed {
            operator,
            via,
            role: PhantomData,
        })
    }
}
