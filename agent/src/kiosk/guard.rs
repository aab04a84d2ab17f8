//! Who may do what at the kiosk, as axum extractors: the only way from a
//! request to the store.
//!
//! - [`Clerk<F>`]: a live session, from its cookie. Without one the
//!   request is answered by the front end `F` ([`Front`]): the pages
//!   redirect to the login, the API answers 401 JSON. Reading the store
//!   ([`Clerk::read`]) needs a `Clerk`.
//! - [`Checked<F>`]: a clerk whose CSRF token was checked. Writing
//!   ([`Checked::writer`]) and logging out need one. The API gets it from
//!   the `X-CSRF-Token` header ([`Checked<Api>`] is an extractor);
//!   the pages from the form, through [`CsrfForm`], which reads the body
//!   within the limit, then finds the session, then checks `_csrf`, in
//!   that order, before the handler runs.
//!
//! The store ([`Store`]) keeps its writer and reader in private fields of
//! this module, and only the types above hand them out; the pages and the
//! API are sibling modules and cannot reach them otherwise. A handler that
//! forgets to take a `Clerk` (or a `Checked` clerk for a write) has no way
//! to read or write a dossier: it does not compile.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::Response;

use super::session::{self, Session};
use super::{Failure, Kiosk, cookie};
use motcua_counter::store::read::Counts;
use motcua_counter::store::writer::WriterHandle;
use motcua_counter::store::{Reader, StoreError};

/// The kiosk's way to the store: the writer handle and one read
/// connection, opened on first use (the writer creates the file first).
pub struct Store {
    writer: WriterHandle,
    reader: Mutex<Option<Reader>>,
    db: PathBuf,
}

impl Store {
    /// The store of the database file `db`, written through `writer`.
    pub fn new(writer: WriterHandle, db: PathBuf) -> Store {
        Store {
            writer,
            reader: Mutex::new(None),
            db,
        }
    }
}

/// Runs `f` with the read connection on a blocking thread.
async fn read<T, R>(k: &Kiosk, f: R) -> Result<T, Failure>
where
    T: Send + 'static,
    R: FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
{
    let k = k.clone();
    tokio::task::spawn_blocking(move || {
        let store = &k.inner.store;
        let mut slot = store.reader.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Reader::open(&store.db)?);
        }
        match slot.as_ref() {
            Some(r) => f(r),
            None => Err(StoreError::WriterGone),
        }
    })
    .await
    .map_err(|e| Failure::Internal(anyhow::anyhow!("reader task: {e}")))?
    .map_err(Failure::Store)
}

/// The sync indicator's counts (no personal data: shown on the login page
/// too), or `None` if the store cannot be read.
pub(super) async fn counts(
    k: &Kiosk,
    day: String,
    now: motcua_protocol::UtcTime,
) -> Option<Counts> {
    read(k, move |r| r.counts(&day, &now)).await.ok()
}

/// A front end: how it answers a request refused before its handler runs.
pub trait Front: Send + Sync + 'static {
    /// No live session.
    fn unauthenticated() -> Response;
    /// A state-changing request without the session's CSRF token.
    fn forged() -> Response;
}

/// The HTML pages (the answers are in `pages.rs`).
#[derive(Debug)]
pub enum Page {}

/// The JSON API (the answers are in `api.rs`).
#[derive(Debug)]
pub enum Api {}

/// A logged-in clerk, found by the session cookie.
pub struct Clerk<F> {
    kiosk: Kiosk,
    token: String,
    session: Session,
    front: PhantomData<F>,
}

impl<F> Clerk<F> {
    /// The session found in the request, if any.
    fn of(k: &Kiosk, headers: &HeaderMap) -> Option<Clerk<F>> {
        let token = cookie(headers, session::COOKIE)?;
        let session = k.sessions().get(&token)?;
        Some(Clerk {
            kiosk: k.clone(),
            token,
            session,
            front: PhantomData,
        })
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs `f` with the store's read connection on a blocking thread.
    pub async fn read<T, R>(&self, f: R) -> Result<T, Failure>
    where
        T: Send + 'static,
        R: FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    {
        read(&self.kiosk, f).await
    }
}

impl<F: Front> FromRequestParts<Kiosk> for Clerk<F> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, k: &Kiosk) -> Result<Self, Response> {
        Clerk::of(k, &parts.headers).ok_or_else(F::unauthenticated)
    }
}

impl<F: Front> OptionalFromRequestParts<Kiosk> for Clerk<F> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, k: &Kiosk) -> Result<Option<Self>, Infallible> {
        Ok(Clerk::of(k, &parts.headers))
    }
}

/// A clerk whose request carried the session's CSRF token.
pub struct Checked<F>(Clerk<F>);

impl<F: Front> Checked<F> {
    /// `clerk`, if `given` is the session's CSRF token; otherwise the
    /// front end's answer to a forged request.
    fn check(clerk: Clerk<F>, given: &str) -> Result<Checked<F>, Box<Response>> {
        if session::same(&clerk.session.csrf, given) {
            Ok(Checked(clerk))
        } else {
            Err(Box::new(F::forged()))
        }
    }
}

impl<F> Checked<F> {
    /// The writer.
    pub fn writer(&self) -> &WriterHandle {
        &self.0.kiosk.inner.store.writer
    }

    /// Ends the session.
    pub fn log_out(self) {
        self.0.kiosk.sessions().close(&self.0.token);
    }
}

impl<F> Deref for Checked<F> {
    type Target = Clerk<F>;

    fn deref(&self) -> &Clerk<F> {
        &self.0
    }
}

impl FromRequestParts<Kiosk> for Checked<Api> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, k: &Kiosk) -> Result<Self, Response> {
        let clerk = Clerk::of(k, &parts.headers).ok_or_else(Api::unauthenticated)?;
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        Checked::check(clerk, given).map_err(|r| *r)
    }
}

/// A form's fields, in order (repeated names kept).
pub type Fields = Vec<(String, String)>;

/// The fields of a form body.
pub fn fields(body: &[u8]) -> Fields {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of the first field `name`, or `""`.
pub fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A state-changing page form: its body read within the limit, its
/// session found and its `_csrf` field checked, in that order.
pub struct CsrfForm {
    /// The clerk.
    pub clerk: Checked<Page>,
    /// The form's fields.
    pub fields: Fields,
}

impl CsrfForm {
    /// The value of the first field `name`, or `""`.
    pub fn field(&self, name: &str) -> &str {
        field(&self.fields, name)
    }
}

impl FromRequest<Kiosk> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, k: &Kiosk) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, k)
            .await
            .map_err(|e| super::pages::body_refused(&e))?;
        let clerk = Clerk::of(k, &headers).ok_or_else(Page::unauthenticated)?;
        let fields = fields(&bytes);
        let clerk = Checked::check(clerk, field(&fields, "_csrf")).map_err(|r| *r)?;
        Ok(CsrfForm { clerk, fields })
    }
}

pub use motcua_common::login::{LOGIN_CHECKS, LOGIN_QUEUE, LoginGate};

/// What a login attempt came to.
pub enum LoginOutcome {
    /// Logged in: the cookie token and the session.
    Ok(String, Session),
    /// Wrong account or secret.
    Wrong,
    /// Locked out for this many minutes.
    Locked(u64),
    /// Too many logins at once: try again in a few seconds.
    Busy,
}

impl LoginOutcome {
    /// The sentence a refused login shows, on the pages and in the API.
    pub fn message(&self) -> Option<String> {
        match self {
            LoginOutcome::Ok(..) => None,
            LoginOutcome::Wrong => Some("Sai mã cán bộ hoặc mật khẩu.".into()),
            LoginOutcome::Locked(min) => Some(format!(
                "Tài khoản tạm khóa vì nhập sai nhiều lần. Vui lòng thử lại sau {min} phút."
            )),
            LoginOutcome::Busy => Some(
                "Máy đang xử lý quá nhiều lượt đăng nhập cùng lúc. Vui lòng thử lại sau ít giây."
                    .into(),
            ),
        }
    }
}

/// The answer for an account locked out now, if it is.
fn locked(k: &Kiosk, staff: &str) -> Option<LoginOutcome> {
    k.sessions()
        .locked(staff)
        .map(|l| LoginOutcome::Locked(l.remaining.as_secs().div_ceil(60)))
}

/// Checks a login, counting failures and locking.
pub async fn attempt(k: &Kiosk, staff: &str, secret: &str) -> LoginOutcome {
    if let Some(locked) = locked(k, staff) {
        return locked;
    }
    let Some(permit) = k.logins().enter().await else {
        tracing::warn!("kiosk login refused: too many at once");
        return LoginOutcome::Busy;
    };
    // Locked while this one waited (guesses queued at one account).
    if let Some(locked) = locked(k, staff) {
        return locked;
    }
    let (k2, id, secret) = (k.clone(), staff.to_owned(), secret.to_owned());
    // The permit goes with the check: a client that gives up does not
    // free its place before the check's memory is freed.
    let found = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut memory = k2.logins().memory();
        let found = k2.staff().check_in(&id, &secret, &mut memory);
        k2.logins().keep(memory);
        found
    })
    .await
    .ok()
    .flatten();
    match found {
        Some(a) => {
            k.sessions().succeeded(staff);
            tracing::info!(staff = %a.id, "kiosk login");
            let (t, s) = k.sessions().open(session::Clerk {
                staff: a.id,
                name: a.name,
            });
            LoginOutcome::Ok(t, s)
        }
        None => {
            tracing::warn!("kiosk login refused");
            match k.sessions().failed(staff) {
                Some(l) => {
                    tracing::warn!("kiosk account locked after repeated failures");
                    LoginOutcome::Locked(l.remaining.as_secs().div_ceil(60))
                }
                None => LoginOutcome::Wrong,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::StatusCode;
    use motcua_counter::clock::ManualClock;
    use motcua_counter::domain::code::Counter;
    use motcua_counter::store::writer::DEFAULT_MAX_BATCH;
    use motcua_counter::store::{DB_FILE, Writer, WriterConfig};

    use super::*;
    use crate::kiosk::KioskOptions;

    fn kiosk(dir: &std::path::Path) -> (Writer, Kiosk) {
        let db = dir.join(DB_FILE);
        let writer = Writer::start(WriterConfig {
            db: db.clone(),
            device: "mc-test-01".parse().expect("valid"),
            unit: "H49.12.3".parse().expect("valid"),
            counter: Counter::new(1).expect("valid"),
            min_free: 0,
            key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            clock: Arc::new(ManualClock::new(time::OffsetDateTime::now_utc(), true)),
            default_collect_at: "Bộ phận Một cửa".into(),
            office: motcua_counter::domain::calendar::OfficeDay::default(),
            max_batch: DEFAULT_MAX_BATCH,
        })
        .expect("writer");
        let (_tx, rx) = tokio::sync::watch::channel(crate::sync::SyncState::default());
        let k = Kiosk::new(
            KioskOptions {
                clock: Default::default(),
                bind: "127.0.0.1:0".parse().expect("addr"),
                tls: None,
                staff_file: dir.join("staff.toml"),
                idle_timeout: Duration::from_secs(60),
                max_failures: 3,
                lockout: Duration::from_secs(60),
                device: "mc-test-01".parse().expect("valid"),
                unit: "H49.12.3".parse().expect("valid"),
                db,
                office: motcua_counter::domain::calendar::OfficeDay::default(),
                lookup_url: None,
            },
            writer.handle(),
            rx,
        )
        .expect("kiosk");
        (writer, k)
    }

    fn request(cookie: Option<&str>, csrf: Option<&str>, body: &str) -> Request {
        let mut b = Request::builder().method("POST").uri("/x");
        if let Some(c) = cookie {
            b = b.header("cookie", format!("{}={c}", session::COOKIE));
        }
        if let Some(t) = csrf {
            b = b.header("x-csrf-token", t);
        }
        b.body(Body::from(body.to_owned())).expect("request")
    }

    async fn api_write(k: &Kiosk, req: Request) -> Result<Checked<Api>, Response> {
        let (mut parts, _) = req.into_parts();
        Checked::<Api>::from_request_parts(&mut parts, k).await
    }

    /// Takes every check slot, as logins in progress would.
    async fn hold_every_check(k: &Kiosk) -> tokio::sync::OwnedSemaphorePermit {
        k.logins().hold_every_check().await.expect("permits")
    }

    #[test]
    fn a_flood_of_logins_runs_a_bounded_number_of_checks_and_answers_the_rest_busy() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("staff.toml"), "").expect("an empty staff file");
        let (_writer, k) = kiosk(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            // Every check slot taken, as by logins in progress.
            let held = hold_every_check(&k).await;
            let flood = 3 * LOGIN_QUEUE;
            let tasks: Vec<_> = (0..flood)
                .map(|n| {
                    let k = k.clone();
                    tokio::spawn(async move { attempt(&k, &format!("ke.gian{n}"), "sai").await })
                })
                .collect();
            // Wait for the queue to fill: those beyond it are answered
            // at once, without a check.
            while k.logins().waiting() < LOGIN_QUEUE
                || tasks.iter().filter(|t| t.is_finished()).count() < flood - LOGIN_QUEUE
            {
                tokio::task::yield_now().await;
            }
            assert_eq!(k.logins().running(), LOGIN_CHECKS);
            drop(held);
            let mut busy = 0;
            let mut wrong = 0;
            for t in tasks {
                match t.await.expect("no panic") {
                    LoginOutcome::Busy => busy += 1,
                    LoginOutcome::Wrong | LoginOutcome::Locked(_) => wrong += 1,
                    LoginOutcome::Ok(..) => panic!("an unknown account logged in"),
                }
                assert!(k.logins().running() <= LOGIN_CHECKS);
            }
            assert_eq!(busy, flood - LOGIN_QUEUE);
            assert_eq!(wrong, LOGIN_QUEUE, "each waiting login was checked");
            assert_eq!(k.logins().running(), 0);
            let kept = k.logins().kept();
            assert!(
                kept <= LOGIN_CHECKS,
                "{kept} buffers kept for {LOGIN_CHECKS} checks"
            );
            assert_eq!(k.logins().waiting(), 0);

            // Clients that give up while they wait leave the queue.
            let held = hold_every_check(&k).await;
            let waiting: Vec<_> = (0..LOGIN_QUEUE)
                .map(|n| {
                    let k = k.clone();
                    tokio::spawn(async move { attempt(&k, &format!("bo.di{n}"), "sai").await })
                })
                .collect();
            while k.logins().waiting() < LOGIN_QUEUE {
                tokio::task::yield_now().await;
            }
            for t in &waiting {
                t.abort();
            }
            for t in waiting {
                assert!(t.await.is_err_and(|e| e.is_cancelled()));
            }
            assert_eq!(k.logins().waiting(), 0);
            drop(held);
            assert!(matches!(
                attempt(&k, "ke.sau", "sai").await,
                LoginOutcome::Wrong
            ));
        });
    }

    #[test]
    fn only_a_live_session_with_its_token_gets_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (writer, k) = kiosk(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (token, s) = k.sessions().open(session::Clerk {
            staff: "canbo.an".parse().expect("id"),
            name: "An".into(),
        });
        rt.block_on(async {
            // The API: 401 without a session, 403 without the token.
            let r = api_write(&k, request(None, Some(&s.csrf), "")).await;
            assert_eq!(r.err().map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
            let r = api_write(&k, request(Some(&token), Some("0000"), "")).await;
            assert_eq!(r.err().map(|r| r.status()), Some(StatusCode::FORBIDDEN));
            let ok = api_write(&k, request(Some(&token), Some(&s.csrf), "")).await;
            assert!(ok.is_ok());

            // The pages: the login without a session, 403 without `_csrf`.
            let r = CsrfForm::from_request(request(None, None, "_csrf=x"), &k).await;
            let r = r.err().expect("refused");
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            assert_eq!(r.headers()["location"], "/dang-nhap");
            let body = "a=1&_csrf=0000";
            let r = CsrfForm::from_request(request(Some(&token), None, body), &k).await;
            assert_eq!(r.err().map(|r| r.status()), Some(StatusCode::FORBIDDEN));
            let body = format!("a=1&_csrf={}&a=2", s.csrf);
            let f = CsrfForm::from_request(request(Some(&token), None, &body), &k)
                .await
                .expect("accepted");
            assert_eq!(f.field("a"), "1");

            // Logging out ends the session.
            f.clerk.log_out();
            let r = api_write(&k, request(Some(&token), Some(&s.csrf), "")).await;
            assert_eq!(r.err().map(|r| r.status()), Some(StatusCode::UNAUTHORIZED));
        });
        drop(rt);
        writer.shutdown();
    }

    #[test]
    fn refused_logins_are_worded_once() {
        assert_eq!(
            LoginOutcome::Wrong.message().as_deref(),
            Some("Sai mã cán bộ hoặc mật khẩu.")
        );
        assert!(
            LoginOutcome::Locked(10)
                .message()
                .is_some_and(|m| m.contains("sau 10 phút"))
        );
    }
}
