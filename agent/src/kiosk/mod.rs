//! The clerks' kiosk: Vietnamese web pages and a JSON API served by the
//! agent (axum), on 127.0.0.1:8080 by default.
//!
//! - Every asset is in the binary (`assets/`); pages work without
//!   JavaScript, the one small script only adds conveniences.
//! - Every value a clerk typed reaches the page through maud, which escapes
//!   it: a name containing `<script>` shows as text.
//! - Staff log in with a password or PIN (Argon2id, [`staff`]); the
//!   session cookie is HttpOnly and SameSite=Strict; every form carries the
//!   session's CSRF token (the login form a double-submit cookie), every API
//!   write the `X-CSRF-Token` header; repeated failures lock the account
//!   ([`session`]).
//! - A submission is answered only after the writer's durable commit; the
//!   receipt page is shown only for a stored dossier. A refused submission
//!   comes back with everything typed and the reasons in Vietnamese.
//! - Bodies over [`MAX_BODY`] get 413; unknown routes a friendly 404; no
//!   internal error text reaches a page (it goes to the log, without
//!   personal data).
//!
//! # Layout
//! - [`staff`]: accounts, `motcua staff`.
//! - [`session`]: sessions, CSRF tokens, lockout.
//! - [`guard`]: the extractors every handler takes (a clerk's session, a
//!   CSRF-checked form or API write), the only way to the store.
//! - [`pages`]: the HTML screens.
//! - [`api`]: the JSON API (docs/KIOSK-API.md).

pub mod api;
pub mod guard;
pub mod pages;
pub mod session;
pub mod staff;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use motcua_protocol::{DeviceId, UnitCode, UtcTime};
use tokio::sync::watch;

use crate::sync::SyncState;
use motcua_counter::app::{self, Today};
use motcua_counter::clock::DcClock;
use motcua_counter::store::StoreError;
use motcua_counter::store::writer::WriterHandle;

/// Largest request body: a dossier form is a few kilobytes.
pub const MAX_BODY: usize = 64 * 1024;

/// What the kiosk needs from the configuration.
#[derive(Debug, Clone)]
pub struct KioskOptions {
    /// The agent's clock (shared with the writer and sync).
    pub clock: DcClock,
    /// Where to listen.
    pub bind: SocketAddr,
    /// Certificate chain and key (PEM), for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The staff file.
    pub staff_file: PathBuf,
    /// Idle time before a session ends.
    pub idle_timeout: Duration,
    /// Failed logins in a row before a lockout.
    pub max_failures: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// This counter's device.
    pub device: DeviceId,
    /// Its unit.
    pub unit: UnitCode,
    /// The store file.
    pub db: PathBuf,
    /// The office's closing time and same-day cut-off.
    pub office: motcua_counter::domain::calendar::OfficeDay,
    /// The citizen's lookup page for a dossier code, if configured.
    pub lookup_url: Option<crate::config::LookupUrl>,
}

/// The shared state of every handler.
#[derive(Clone)]
pub struct Kiosk {
    inner: Arc<Inner>,
}

struct Inner {
    opts: KioskOptions,
    store: guard::Store,
    clock: DcClock,
    sync: watch::Receiver<SyncState>,
    sessions: session::Sessions,
    staff: staff::Book,
    logins: guard::LoginGate,
}

/// What the sync indicator shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncView {
    /// Connected to the DC's broker.
    pub online: bool,
    /// Records waiting for the DC's receipt.
    pub waiting: u64,
    /// When the last receipt was stored, if ever.
    pub last_receipt_at: Option<UtcTime>,
}

/// An error a handler answers with. The message shown is fixed per kind;
/// the cause goes to the log only.
#[derive(Debug)]
pub enum Failure {
    /// 404.
    NotFound,
    /// The store failed (logged; the page says to try again).
    Store(StoreError),
    /// Anything else internal (logged).
    Internal(anyhow::Error),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::Store(e)
    }
}

impl Kiosk {
    /// The kiosk over a running writer and the sync state.
    pub fn new(
        opts: KioskOptions,
        writer: WriterHandle,
        sync: watch::Receiver<SyncState>,
    ) -> Result<Kiosk> {
        Ok(Kiosk {
            inner: Arc::new(Inner {
                sessions: session::Sessions::new(
                    opts.idle_timeout,
                    opts.max_failures,
                    opts.lockout,
                ),
                staff: staff::Book::new(opts.staff_file.clone())?,
                logins: guard::LoginGate::default(),
                store: guard::Store::new(writer, opts.db.clone()),
                clock: opts.clock.clone(),
                opts,
                sync,
            }),
        })
    }

    /// The options.
    pub fn opts(&self) -> &KioskOptions {
        &self.inner.opts
    }

    /// Sessions.
    pub fn sessions(&self) -> &session::Sessions {
        &self.inner.sessions
    }

    /// Staff.
    pub fn staff(&self) -> &staff::Book {
        &self.inner.staff
    }

    /// The bound on concurrent password checks.
    pub fn logins(&self) -> &guard::LoginGate {
        &self.inner.logins
    }

    /// Today's date in Vietnam and now, from the kiosk's clock.
    pub fn today(&self) -> Today {
        app::today(&self.inner.clock)
    }

    /// The sync indicator's figures.
    pub async fn sync_view(&self) -> SyncView {
        let online = self.inner.sync.borrow().online;
        let Today { day, now } = self.today();
        let counts = guard::counts(self, day, now).await;
        SyncView {
            online,
            waiting: counts.as_ref().map_or(0, |c| c.unsynced),
            last_receipt_at: counts.and_then(|c| c.last_receipt_at),
        }
    }

    /// Whether it is served over TLS (cookies are then `Secure`).
    pub fn secure(&self) -> bool {
        self.inner.opts.tls.is_some()
    }

    /// A Set-Cookie value.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        motcua_common::login::set_cookie(name, value, max_age, self.secure())
    }
}

pub use motcua_common::login::cookie;

/// The router: pages, assets, API, limits and security headers.
pub fn router(kiosk: Kiosk) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/dang-nhap", get(pages::login_form).post(pages::login))
        .route("/dang-xuat", post(pages::logout))
        .route("/tiep-nhan", get(pages::reception))
        .route("/ho-so", post(pages::submit))
        .route("/ho-so/{code}", get(pages::receipt))
        .route("/ho-so/{code}/trang-thai", post(pages::change_status))
        .route("/ho-so/{code}/phieu/{seq}", get(pages::form_sheet))
        .route("/ho-so/{code}/hen-lai", post(pages::reschedule))
        .route("/tra-cuu", get(pages::lookup))
        .route("/tai-nguyen/kiosk.css", get(pages::css))
        .route("/tai-nguyen/kiosk.js", get(pages::js))
        .nest("/api/v1", api::routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(kiosk)
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry citizens' personal data: never kept by a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Binds the kiosk's address (before the agent says it is ready, so a
/// taken port fails the start with a clear message).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("the kiosk cannot listen on {addr} (kiosk.bind): is another program using it?")
    })
}

/// Serves the kiosk on `listener` until `stop` completes.
pub async fn serve(
    kiosk: Kiosk,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let bind = listener.local_addr()?;
    let tls = kiosk.opts().tls.clone();
    let app = router(kiosk);
    match tls {
        None => {
            tracing::info!(%bind, "kiosk listening (http)");
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .context("kiosk server")?;
        }
        Some((cert, key)) => {
            let acceptor = motcua_common::https::acceptor(&cert, &key)?;
            tracing::info!(%bind, "kiosk listening (https)");
            axum::serve(motcua_common::https::Listener::new(listener, acceptor), app)
                .with_graceful_shutdown(stop)
                .await
                .context("kiosk server")?;
        }
    }
    Ok(())
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        pages::failure_page(self)
    }
}
