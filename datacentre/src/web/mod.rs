//! What `motcua-dc run` serves over HTTP, read-only (`[http] bind`), each
//! route to the operators holding its role ([`auth`], crate::rights):
//!
//! - `/healthz`: 200 when the database answers (no login);
//! - `/dang-nhap`, `/dang-xuat`: the operators' login and logout ([`login`]);
//! - `/` (fleet): the fleet dashboard: counters needing a technician first, then
//!   charts of dossiers per day per unit and of sync lag, as SVG drawn on
//!   the server; refreshes itself every 30 s; no script, no CDN;
//! - `/api/v1/fleet` (fleet): the same rows as `motcua-dc fleet --json`;
//! - `/api/v1/records?from=&to=&unit=&after=&limit=&purpose=` (records):
//!   stored records as `motcua-dc export` writes them, a page at a time,
//!   each page recorded in the access log with its purpose before it is
//!   sent;
//! - `/metrics` (fleet): Prometheus text format ([`crate::metrics`]).
//!
//! Every page reads the database on a blocking thread through one
//! connection of its own. Nothing here writes but the access log.

pub mod auth;
pub mod login;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use motcua_protocol::UtcTime;
use serde::Deserialize;
use tokio::sync::Mutex;

use self::auth::{Allowed, Fleet, Records, Via};
use crate::export::{self, Exported, Filter};
use crate::fleet::{self, Counter, Thresholds};
use crate::metrics::{self, Metrics};
use crate::store::Store;

/// Days shown in the charts.
const CHART_DAYS: i64 = 14;

/// What the handlers share.
#[derive(Clone)]
pub struct Web {
    store: Arc<Mutex<Box<dyn Store>>>,
    metrics: Arc<Metrics>,
    thresholds: Thresholds,
    /// The DC's receipt key: the published units' names are read back
    /// only when they verify with it.
    dc_key: Option<ed25519_dalek::VerifyingKey>,
    /// Logins and sessions.
    auth: Arc<auth::Auth>,
}

/// The answer when the database cannot be read.
pub fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the database could not be read; see the receiver's log\n",
    )
        .into_response()
}

impl Web {
    /// Serves from `store` (a connection of its own) and `metrics`.
    pub fn new(store: Box<dyn Store>, metrics: Arc<Metrics>) -> Web {
        Web {
            store: Arc::new(Mutex::new(store)),
            metrics,
            thresholds: Thresholds::default(),
            dc_key: None,
            auth: Arc::new(auth::Auth::new(
                std::time::Duration::from_secs(30 * 60),
                5,
                std::time::Duration::from_secs(15 * 60),
                false,
            )),
        }
    }

    /// Logins with these sessions and lockout.
    pub fn with_auth(mut self, auth: auth::Auth) -> Web {
        self.auth = Arc::new(auth);
        self
    }

    /// Shows the units' names published with `motcua-dc publish units`
    /// beside their codes (those signed by `dc_key`).
    pub fn with_unit_names(mut self, dc_key: ed25519_dalek::VerifyingKey) -> Web {
        self.dc_key = Some(dc_key);
        self
    }

    /// Runs `f` on the store on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, Response> {
        let store = self.store.clone().lock_owned().await;
        let joined = tokio::task::spawn_blocking(move || {
            let mut store = store;
            f(&mut **store)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "dashboard: reading the database failed");
                Err(unavailable())
            }
            Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()),
        }
    }
}

/// The routes.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/dang-nhap", get(login::login_form).post(login::login))
        .route("/dang-xuat", axum::routing::post(login::logout))
        .route("/", get(dashboard))
        .route("/api/v1/fleet", get(fleet_json))
        .route("/api/v1/records", get(records))
        .route("/metrics", get(metrics_text))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    header::HeaderValue::from_static(
                        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'",
                    ),
                );
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    header::HeaderValue::from_static("nosniff"),
                );
                r
            },
        ))
        .with_state(web)
}

async fn fleet_rows(web: &Web) -> Result<(Vec<Counter>, UtcTime), Response> {
    let t = web.thresholds;
    let now = crate::receiver::now();
    let rows = web.read(move |s| fleet::collect(s, &now, t)).await?;
    Ok((rows, now))
}

/// `/healthz`: whether the database answers; no login, no data.
async fn healthz(State(web): State<Web>) -> Response {
    match web.read(|s| s.schema_version()).await {
        Ok(_) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            "ok\n",
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn fleet_json(_: Allowed<Fleet>, State(web): State<Web>) -> Response {
    match fleet_rows(&web).await {
        Ok((rows, _)) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(rows)).into_response(),
        Err(r) => r,
    }
}

async fn metrics_text(_: Allowed<Fleet>, State(web): State<Web>) -> Response {
    match fleet_rows(&web).await {
        Ok((rows, _)) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            web.metrics.render(&rows),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    from: String,
    to: Option<String>,
    unit: Option<String>,
    /// `device:seq` of the previous page's last record.
    after: Option<String>,
    limit: Option<u32>,
    /// Why these records are read: recorded in the access log.
    purpose: Option<String>,
}

async fn records(
    who: Allowed<Records>,
    State(web): State<Web>,
    q: Result<Query<RecordsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "error": m })),
        )
            .into_response()
    };
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad(e.body_text()),
    };
    let from = match crate::cli::parse_day(&q.from) {
        Ok(d) => d,
        Err(e) => return bad(e),
    };
    let to = match q.to.as_deref().map(crate::cli::parse_day).transpose() {
        Ok(d) => d.unwrap_or(from),
        Err(e) => return bad(e),
    };
    let after = match q.after.as_deref().map(|a| {
        a.rsplit_once(':').and_then(|(d, s)| {
            let device: motcua_protocol::DeviceId = d.parse().ok()?;
            Some((device.to_string(), s.parse::<u64>().ok()?))
        })
    }) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return bad("after is device:seq".into()),
    };
    let purpose = match crate::rights::purpose(q.purpose.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    if to < from {
        return bad("to is before from".into());
    }
    if q.unit.as_ref().is_some_and(|u| {
        u.is_empty() || u.len() > 64 || !u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
    }) {
        return bad(
            "unit is a unit code such as H49.12.3 (letters, digits and dots, at most 64)".into(),
        );
    }
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let what = format!(
        "GET /api/v1/records from={from} to={to}{}{} limit={limit}",
        q.unit
            .as_deref()
            .map(|u| format!(" unit={u}"))
            .unwrap_or_default(),
        after
            .as_ref()
            .map(|(d, s)| format!(" after={d}:{s}"))
            .unwrap_or_default(),
    );
    let filter = Filter {
        unit: q.unit.clone(),
        from,
        to,
    };
    let operator = who.operator.name.clone();
    let page = web
        .read(move |s| {
            let mut r = export::Reader::new(s, filter, after);
            let records: Vec<Exported> = r.page(limit)?;
            let next = (!r.done())
                .then(|| r.cursor().map(|(d, s)| format!("{d}:{s}")))
                .flatten();
            if !records.is_empty() {
                // Recorded before the page leaves: a page that cannot be
                // logged is not sent.
                let read: Vec<_> = records.iter().map(|e| (e.device.clone(), e.seq)).collect();
                let entry = crate::rights::NewAccess {
                    who: format!("operator:{operator}"),
                    what,
                    purpose,
                    records: crate::rights::records_text(&read),
                    count: records.len() as u64,
                };
                r.store().access_append(&entry, &crate::receiver::now())?;
            }
            Ok((records, next))
        })
        .await;
    match page {
        Ok((records, next)) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "records": records, "next": next })),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// The chart data: dossiers per day per unit, and lag per day.
struct Charts {
    days: Vec<String>,
    dossiers: BTreeMap<String, BTreeMap<String, u64>>,
    lag: BTreeMap<String, (f64, f64)>,
    /// Units' names by code, as published.
    names: BTreeMap<String, String>,
}

impl Charts {
    /// A unit's code with its name when one was published.
    fn unit_label(&self, code: &str) -> String {
        match self.names.get(code) {
            Some(name) => format!("{code} · {name}"),
            None => code.to_owned(),
        }
    }
}

async fn dashboard(who: Allowed<Fleet>, State(web): State<Web>) -> Response {
    let (rows, now) = match fleet_rows(&web).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let today = now
        .get()
        .to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC))
        .date();
    let first = today - time::Duration::days(CHART_DAYS - 1);
    let since = UtcTime::new(
        first
            .with_time(time::Time::MIDNIGHT)
            .assume_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC))
            .to_offset(time::UtcOffset::UTC),
    );
    let key = web.dc_key;
    let data = match web
        .read(move |s| {
            let names = match &key {
                Some(k) => crate::publish::unit_names(s, k)
                    .map_err(|e| crate::store::StoreError::Other(e.to_string()))?,
                None => BTreeMap::new(),
            };
            Ok((s.daily_dossiers(&since)?, s.daily_lag(&since)?, names))
        })
        .await
    {
        Ok(d) => d,
        Err(r) => return r,
    };
    let unit_of: BTreeMap<&str, String> = rows
        .iter()
        .map(|r| {
            (
                r.device.as_str(),
                r.unit.clone().unwrap_or_else(|| r.device.clone()),
            )
        })
        .collect();
    let mut dossiers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (device, day, n) in data.0 {
        let unit = unit_of
            .get(device.as_str())
            .cloned()
            .unwrap_or_else(|| device.to_string());
        *dossiers.entry(unit).or_default().entry(day).or_default() += n;
    }
    let days: Vec<String> = (0..CHART_DAYS)
        .map(|i| (first + time::Duration::days(i)).to_string())
        .collect();
    let charts = Charts {
        days,
        dossiers,
        lag: data.1.into_iter().map(|(d, a, m)| (d, (a, m))).collect(),
        names: data.2,
    };
    let page = page(&rows, &now, &charts, &who);
    ([(header::CACHE_CONTROL, "no-store")], page).into_response()
}

pub(crate) const CSS: &str = "
header .who{float:right;font-size:.9rem}header .who form{display:inline;margin-left:.6rem}
header .who button{font:inherit;background:#fff;color:#0b5cad;border:0;border-radius:4px;padding:.15rem .6rem;cursor:pointer}
form.login{background:#fff;border:1px solid #ccc;border-radius:6px;padding:1rem 1.2rem;max-width:26rem;margin:2rem auto}
form.login label{display:block;margin:.6rem 0;font-weight:600}form.login input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.4rem;margin-top:.2rem}
form.login button{font:inherit;font-weight:700;background:#0b5cad;color:#fff;border:0;border-radius:4px;padding:.5rem 1.2rem;margin-top:.4rem}
.error{color:#b3261e;font-weight:600}
@media print{header .who form{display:none}}
body{font:15px/1.4 'Noto Sans','DejaVu Sans',sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4}
header{background:#0b5cad;color:#fff;padding:.6rem 1rem}header h1{font-size:1.25rem;margin:0}
main{padding:1rem;max-width:90rem}
.totals{display:flex;gap:1rem;flex-wrap:wrap;margin:.5rem 0 1rem}
.totals div{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.5rem .9rem}
.totals b{display:block;font-size:1.4rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
tr.attention td{background:#fff0ef}tr.attention td.why{color:#b3261e;font-weight:600}
.online{color:#1e6b2e;font-weight:600}.offline,.unknown{color:#b3261e;font-weight:600}.revoked{color:#5b5b5b}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem;margin-top:1.5rem}
figure{margin:0;background:#fff;border:1px solid #ccc;border-radius:6px;padding:.5rem}
figcaption{font-weight:700;margin-bottom:.3rem}
.note{color:#5b5b5b;font-size:.9rem}
.empty{color:#5b5b5b;max-width:560px;margin:1rem .5rem}
";

const COLOURS: [&str; 8] = [
    "#0b5cad", "#e07b00", "#1e6b2e", "#8e3ab5", "#b3261e", "#00838f", "#6d4c41", "#546e7a",
];

fn state_vi(state: &str) -> &'static str {
    match state {
        "online" => "trực tuyến",
        "offline" => "mất kết nối",
        "revoked" => "đã thu hồi",
        _ => "chưa kết nối",
    }
}

fn attention_vi(a: &str) -> &'static str {
    match a {
        "offline" => "mất kết nối",
        "never connected" => "chưa từng kết nối",
        "no status received" => "chưa nhận trạng thái",
        "no health report" => "không gửi báo cáo tình trạng",
        "sync lagging" => "đồng bộ chậm",
        "disk nearly full" => "sắp đầy bộ nhớ",
        "clock not synchronised" => "đồng hồ chưa đồng bộ",
        "clock derived from the DC" => "giờ lấy theo Trung tâm (chưa có NTP)",
        "submissions not arriving" => "hồ sơ gửi lên không đến Trung tâm",
        "alerts" => "có cảnh báo",
        _ => "cần kiểm tra",
    }
}

fn page<R: auth::Required>(
    rows: &[Counter],
    now: &UtcTime,
    charts: &Charts,
    who: &Allowed<R>,
) -> Markup {
    let needing = rows.iter().filter(|r| !r.attention.is_empty()).count();
    let online = rows.iter().filter(|r| r.state == "online").count();
    let backlog: u64 = rows.iter().filter_map(|r| r.backlog).sum();
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content="30";
                title { "motcua — Trung tâm dữ liệu: các quầy Một cửa" }
                style { (CSS) }
            }
            body {
                header {
                    div.who {
                        (who.operator.name) " · quyền: " (who.operator.roles)
                        @if let Via::Session { csrf } = &who.via {
                            form method="post" action="/dang-xuat" {
                                input type="hidden" name="_csrf" value=(csrf);
                                button type="submit" { "Đăng xuất" }
                            }
                        }
                    }
                    h1 { "motcua — các quầy Một cửa" }
                }
                main {
                    div.totals {
                        div #tong-quay { b { (rows.len()) } "quầy" }
                        div #truc-tuyen { b { (online) } "trực tuyến" }
                        div #can-xu-ly { b { (needing) } "cần kỹ thuật viên" }
                        div #ton-dong { b { (backlog) } "bản ghi chờ đồng bộ" }
                    }
                    table #doi-may {
                        thead { tr {
                            th { "Đơn vị" } th { "Quầy" } th { "Trạng thái" } th { "Lần cuối" }
                            th { "Chuỗi" } th { "Chờ đồng bộ" } th { "Độ trễ" } th { "Cảnh báo" } th { "Cần xử lý" }
                        } }
                        tbody {
                            @for r in rows {
                                tr class=[(!r.attention.is_empty()).then_some("attention")] data-device=(r.device) {
                                    td { (r.unit.as_deref().map_or_else(|| "-".to_owned(), |u| charts.unit_label(u))) }
                                    td { (r.device) }
                                    td class=(r.state) { (state_vi(r.state)) }
                                    td { (fleet::ago(r.last_seen.as_ref(), now)) }
                                    td { (r.head_seq) }
                                    td { (r.backlog.map_or("-".into(), |b| b.to_string())) }
                                    td { (r.lag_s.map_or("-".into(), fleet::duration)) }
                                    td { (r.alerts.values().sum::<u64>()) }
                                    td.why {
                                        @if r.attention.is_empty() { "—" }
                                        @else { (r.attention.iter().map(|a| attention_vi(a)).collect::<Vec<_>>().join(", ")) }
                                    }
                                }
                            }
                        }
                    }
                    div.charts {
                        figure #bieu-do-ho-so {
                            figcaption { "Hồ sơ tiếp nhận mỗi ngày, theo đơn vị (14 ngày)" }
                            (dossier_chart(charts))
                        }
                        figure #bieu-do-do-tre {
                            figcaption { "Độ trễ đồng bộ mỗi ngày (ký tại quầy → lưu tại trung tâm): trung bình và lớn nhất" }
                            (lag_chart(charts))
                        }
                    }
                    p.note { "Tự làm mới mỗi 30 giây. Dữ liệu: " a href="/api/v1/fleet" { "/api/v1/fleet" } ", " a href="/metrics" { "/metrics" } "." }
                }
            }
        }
    }
}

const W: f64 = 560.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
/// Room above the plot for the value axis's unit.
const TOP: f64 = 22.0;
const BOTTOM: f64 = 36.0;
const PLOT_H: f64 = H - BOTTOM - TOP;

/// A value axis has at most this many intervals between its ticks.
const MAX_INTERVALS: u64 = 5;

/// A chart's value axis from 0: whole ticks at a "nice" step, the last
/// one the axis's top (the largest value rounded up to a whole step).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scale {
    /// The ticks, in the values' own unit (a count, milliseconds), from 0.
    ticks: Vec<u64>,
    /// The labels' unit, written once above the axis.
    unit: &'static str,
    /// Values per label unit: every tick is a whole multiple of it.
    per: u64,
}

impl Scale {
    /// The axis's top: the last tick.
    fn top(&self) -> u64 {
        self.ticks.last().copied().unwrap_or(0)
    }

    /// The ticks' labels, in `unit`.
    fn labels(&self) -> Vec<String> {
        self.ticks
            .iter()
            .map(|t| (t / self.per.max(1)).to_string())
            .collect()
    }

    /// The height of `v` on a plot `h` high (0 below 0, `h` above the top).
    fn height(&self, v: f64, h: f64) -> f64 {
        let top = self.top() as f64;
        if top > 0.0 && v.is_finite() {
            (v / top).clamp(0.0, 1.0) * h
        } else {
            0.0
        }
    }
}

/// 0, `step`, 2 × `step`... through the first multiple of `step` at or
/// above `max`.
fn ticks(max: u64, step: u64) -> Vec<u64> {
    let step = step.max(1);
    (0..=max.div_ceil(step))
        .map(|i| i.saturating_mul(step))
        .collect()
}

/// The smallest step of 1, 2 or 5 × 10^k that reaches `max` in at most
/// [`MAX_INTERVALS`] intervals.
fn nice_step(max: u64) -> u64 {
    let mut power: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let step = power.saturating_mul(m);
            if max.div_ceil(step) <= MAX_INTERVALS {
                return step;
            }
        }
        power = power.saturating_mul(10);
    }
}

/// The axis of a count (dossiers): whole ticks 1, 2 or 5 × 10^k apart;
/// just 0 when `max` is 0.
fn count_scale(max: u64) -> Scale {
    Scale {
        ticks: ticks(max, nice_step(max)),
        unit: "hồ sơ",
        per: 1,
    }
}

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Steps of a duration axis below a day, in milliseconds, with the unit
/// their ticks are written in.
const DURATION_STEPS: [(u64, &str, u64); 26] = [
    (1, "ms", 1),
    (2, "ms", 1),
    (5, "ms", 1),
    (10, "ms", 1),
    (20, "ms", 1),
    (50, "ms", 1),
    (100, "ms", 1),
    (200, "ms", 1),
    (500, "ms", 1),
    (SECOND, "giây", SECOND),
    (2 * SECOND, "giây", SECOND),
    (5 * SECOND, "giây", SECOND),
    (10 * SECOND, "giây", SECOND),
    (15 * SECOND, "giây", SECOND),
    (30 * SECOND, "giây", SECOND),
    (MINUTE, "phút", MINUTE),
    (2 * MINUTE, "phút", MINUTE),
    (5 * MINUTE, "phút", MINUTE),
    (10 * MINUTE, "phút", MINUTE),
    (15 * MINUTE, "phút", MINUTE),
    (30 * MINUTE, "phút", MINUTE),
    (HOUR, "giờ", HOUR),
    (2 * HOUR, "giờ", HOUR),
    (3 * HOUR, "giờ", HOUR),
    (6 * HOUR, "giờ", HOUR),
    (12 * HOUR, "giờ", HOUR),
];

/// The axis of a duration of `max_ms` milliseconds: the smallest step of
/// [`DURATION_STEPS`] (then 1, 2 or 5 × 10^k days) reaching it in at most
/// [`MAX_INTERVALS`] intervals, labelled in the step's unit; just 0 when
/// `max_ms` is 0.
fn duration_scale(max_ms: u64) -> Scale {
    let (step, unit, per) = DURATION_STEPS
        .iter()
        .copied()
        .find(|(step, _, _)| max_ms.div_ceil(*step) <= MAX_INTERVALS)
        .unwrap_or_else(|| {
            let days = nice_step(max_ms.div_ceil(DAY));
            (days.saturating_mul(DAY), "ngày", DAY)
        });
    Scale {
        ticks: ticks(max_ms, step),
        unit,
        per,
    }
}

/// Seconds as whole milliseconds, rounded up; 0 for negative or unknown.
fn millis(seconds: f64) -> u64 {
    // `as` saturates: NaN and negatives give 0.
    (seconds * 1000.0).ceil() as u64
}

/// Seconds to a tenth, as written in Vietnamese: "1,5 giây".
fn seconds_vi(s: f64) -> String {
    format!("{s:.1} giây").replace('.', ",")
}

/// The value axis, its grid lines and the unit above it; the frame.
fn axis(scale: &Scale) -> Markup {
    html! {
        text x="4" y=(TOP - 10.0) font-size="10" fill="#555" { (scale.unit) }
        @for (t, label) in scale.ticks.iter().zip(scale.labels()) {
            @let y = H - BOTTOM - scale.height(*t as f64, PLOT_H);
            @if *t > 0 {
                line x1=(LEFT) y1=(y) x2=(W - 4.0) y2=(y) stroke="#e6e6e6" {}
            }
            text x=(LEFT - 4.0) y=(y + 4.0) text-anchor="end" font-size="10" { (label) }
        }
        line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 4.0) y2=(H - BOTTOM) stroke="#888" {}
        line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#888" {}
    }
}

fn day_labels(days: &[String], slot: f64) -> Markup {
    html! {
        @for (i, d) in days.iter().enumerate() {
            @if i % 2 == 0 {
                text x=(LEFT + slot * (i as f64 + 0.5)) y=(H - BOTTOM + 14.0) text-anchor="middle" font-size="10" {
                    (d.get(8..10).unwrap_or("")) "/" (d.get(5..7).unwrap_or(""))
                }
            }
        }
    }
}

/// Said in place of a chart with nothing to draw.
fn empty(text: String) -> Markup {
    html! { p.empty { (text) } }
}

fn dossier_chart(c: &Charts) -> Markup {
    let units: BTreeSet<&String> = c.dossiers.keys().collect();
    let max = c
        .days
        .iter()
        .flat_map(|d| {
            c.dossiers
                .values()
                .map(move |m| m.get(d).copied().unwrap_or(0))
        })
        .max()
        .unwrap_or(0);
    if max == 0 {
        return empty(format!(
            "Trung tâm chưa nhận được hồ sơ nào tiếp nhận trong {CHART_DAYS} ngày qua. \
             Hồ sơ còn chờ đồng bộ tại quầy chưa được tính."
        ));
    }
    let scale = count_scale(max);
    let slot = (W - LEFT - 4.0) / c.days.len() as f64;
    let bar = (slot - 4.0) / units.len().max(1) as f64;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + 16.0 * units.len() as f64) role="img" {
            (axis(&scale))
            @for (i, d) in c.days.iter().enumerate() {
                @for (u, unit) in units.iter().enumerate() {
                    @let n = c.dossiers.get(*unit).and_then(|m| m.get(d)).copied().unwrap_or(0);
                    @if n > 0 {
                        @let h = scale.height(n as f64, PLOT_H);
                        rect x=(LEFT + slot * i as f64 + 2.0 + bar * u as f64) y=(H - BOTTOM - h) width=(bar.max(1.0)) height=(h) fill=(COLOURS[u % COLOURS.len()]) {
                            title { (c.unit_label(unit)) " " (d) ": " (n) }
                        }
                    }
                }
            }
            (day_labels(&c.days, slot))
            @for (u, unit) in units.iter().enumerate() {
                rect x=(LEFT) y=(H + 16.0 * u as f64 - 8.0) width="10" height="10" fill=(COLOURS[u % COLOURS.len()]) {}
                text x=(LEFT + 14.0) y=(H + 16.0 * u as f64 + 1.0) font-size="11" { (c.unit_label(unit)) }
            }
        }
    }
}

fn lag_chart(c: &Charts) -> Markup {
    let shown: Vec<(usize, &String, f64, f64)> = c
        .days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| c.lag.get(d).map(|(avg, mx)| (i, d, *avg, *mx)))
        .collect();
    if shown.is_empty() {
        return empty(format!(
            "Chưa đo được độ trễ đồng bộ: trung tâm chưa lưu bản ghi nào được ký \
             trong {CHART_DAYS} ngày qua khi đồng hồ của quầy đã đồng bộ."
        ));
    }
    let max = shown.iter().map(|s| millis(s.3)).max().unwrap_or(0);
    let scale = duration_scale(max);
    let slot = (W - LEFT - 4.0) / c.days.len() as f64;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + 20.0) role="img" {
            (axis(&scale))
            @for (i, d, avg, mx) in shown {
                @let hm = scale.height(mx * 1000.0, PLOT_H);
                @let ha = scale.height(avg * 1000.0, PLOT_H);
                rect x=(LEFT + slot * i as f64 + 2.0) y=(H - BOTTOM - hm) width=((slot - 4.0).max(1.0)) height=(hm) fill="#f3c4bf" {
                    title { (d) ": lớn nhất " (seconds_vi(mx)) }
                }
                rect x=(LEFT + slot * i as f64 + 2.0) y=(H - BOTTOM - ha) width=((slot - 4.0).max(1.0)) height=(ha) fill="#b3261e" {
                    title { (d) ": trung bình " (seconds_vi(avg)) }
                }
            }
            (day_labels(&c.days, slot))
            rect x=(LEFT) y=(H + 4.0) width="10" height="10" fill="#b3261e" {}
            text x=(LEFT + 14.0) y=(H + 13.0) font-size="11" { "trung bình" }
            rect x=(LEFT + 90.0) y=(H + 4.0) width="10" height="10" fill="#f3c4bf" {}
            text x=(LEFT + 104.0) y=(H + 13.0) font-size="11" { "lớn nhất" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(scale: &Scale, max: u64) {
        let t = &scale.ticks;
        assert_eq!(t.first(), Some(&0), "{scale:?}");
        assert!(t.windows(2).all(|w| w[0] < w[1]), "{scale:?}");
        assert!(scale.top() >= max, "{max}: {scale:?}");
        assert!(t.len() as u64 <= MAX_INTERVALS + 1, "{max}: {scale:?}");
        assert!(t.iter().all(|v| v % scale.per == 0), "{scale:?}");
        if max > 0 {
            let step = t[1] - t[0];
            assert!(t.windows(2).all(|w| w[1] - w[0] == step), "{scale:?}");
            assert!(scale.top() - max < step, "{max}: {scale:?}");
        }
        let labels = scale.labels();
        let distinct: BTreeSet<&String> = labels.iter().collect();
        assert_eq!(distinct.len(), labels.len(), "{max}: {labels:?}");
    }

    #[test]
    fn counts_get_whole_nice_ticks_up_to_a_whole_step() {
        let cases: [(u64, &[u64]); 10] = [
            (0, &[0]),
            (1, &[0, 1]),
            (2, &[0, 1, 2]),
            (3, &[0, 1, 2, 3]),
            (5, &[0, 1, 2, 3, 4, 5]),
            (6, &[0, 2, 4, 6]),
            (7, &[0, 2, 4, 6, 8]),
            (11, &[0, 5, 10, 15]),
            (42, &[0, 10, 20, 30, 40, 50]),
            (180, &[0, 50, 100, 150, 200]),
        ];
        for (max, want) in cases {
            let s = count_scale(max);
            assert_eq!(s.ticks, want, "max {max}");
            assert_eq!(
                s.labels(),
                want.iter().map(u64::to_string).collect::<Vec<_>>()
            );
            check(&s, max);
        }
        for max in (0..=2000).chain([99_999, 1_000_001, u64::MAX / 3]) {
            check(&count_scale(max), max);
        }
    }

    #[test]
    fn durations_get_steps_of_the_clock() {
        let s = duration_scale(45 * SECOND);
        assert_eq!(s.unit, "giây");
        assert_eq!(s.labels(), ["0", "10", "20", "30", "40", "50"]);
        let s = duration_scale(300);
        assert_eq!(
            (s.unit, s.labels()),
            (
                "ms",
                vec!["0", "100", "200", "300"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
        let s = duration_scale(90 * SECOND);
        assert_eq!(
            (s.unit, s.labels().join(" ")),
            ("giây", "0 30 60 90".into())
        );
        let s = duration_scale(7 * MINUTE + 1);
        assert_eq!((s.unit, s.labels().join(" ")), ("phút", "0 2 4 6 8".into()));
        let s = duration_scale(40 * MINUTE);
        assert_eq!(
            (s.unit, s.labels().join(" ")),
            ("phút", "0 10 20 30 40".into())
        );
        let s = duration_scale(5 * HOUR);
        assert_eq!(
            (s.unit, s.labels().join(" ")),
            ("giờ", "0 1 2 3 4 5".into())
        );
        let s = duration_scale(20 * HOUR);
        assert_eq!(
            (s.unit, s.labels().join(" ")),
            ("giờ", "0 6 12 18 24".into())
        );
        let s = duration_scale(61 * HOUR);
        assert_eq!((s.unit, s.labels().join(" ")), ("ngày", "0 1 2 3".into()));
        let s = duration_scale(9 * DAY);
        assert_eq!(
            (s.unit, s.labels().join(" ")),
            ("ngày", "0 2 4 6 8 10".into())
        );
        assert_eq!(duration_scale(0).ticks, [0]);
        let mut max = 1;
        while max < 400 * DAY {
            for m in [max, max + 1, max * 3 / 2, max * 7 / 4] {
                check(&duration_scale(m), m);
            }
            max *= 2;
        }
    }

    #[test]
    fn seconds_become_whole_milliseconds() {
        assert_eq!(millis(0.0004), 1);
        assert_eq!(millis(1.5), 1500);
        assert_eq!(millis(-3.0), 0);
        assert_eq!(millis(f64::NAN), 0);
        assert_eq!(seconds_vi(1.25), "1,2 giây");
    }

    fn charts(dossiers: &[(&str, &str, u64)], lag: &[(&str, f64, f64)]) -> Charts {
        let days = (1..=CHART_DAYS)
            .map(|d| format!("2026-11-{d:02}"))
            .collect();
        let mut by_unit: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (unit, day, n) in dossiers {
            by_unit
                .entry((*unit).into())
                .or_default()
                .insert((*day).into(), *n);
        }
        Charts {
            days,
            dossiers: by_unit,
            lag: lag
                .iter()
                .map(|(d, a, m)| ((*d).to_string(), (*a, *m)))
                .collect(),
            names: BTreeMap::from([("H49.12.3".to_owned(), "UBND xã Tam Thăng".to_owned())]),
        }
    }

    /// The value axis's labels, in order from 0.
    fn axis_labels(svg: &str) -> Vec<String> {
        svg.split(r#"text-anchor="end" font-size="10">"#)
            .skip(1)
            .filter_map(|s| s.split_once("</text>").map(|(l, _)| l.to_owned()))
            .collect()
    }

    #[test]
    fn charts_with_nothing_to_draw_say_why() {
        // Nothing, or only days outside the 14 shown.
        let c = charts(
            &[("H49.12.3", "2026-10-01", 4)],
            &[("2026-10-01", 1.0, 2.0)],
        );
        let d = dossier_chart(&c).into_string();
        assert!(!d.contains("<svg"), "{d}");
        assert!(
            d.contains("chưa nhận được hồ sơ nào tiếp nhận trong 14 ngày qua"),
            "{d}"
        );
        let l = lag_chart(&c).into_string();
        assert!(!l.contains("<svg"), "{l}");
        assert!(l.contains("Chưa đo được độ trễ đồng bộ"), "{l}");
    }

    #[test]
    fn charts_label_their_axes_once_each() {
        let c = charts(
            &[("H49.12.3", "2026-11-03", 1), ("H49.12.4", "2026-11-05", 1)],
            &[("2026-11-03", 0.2, 0.35), ("2026-11-05", -0.5, -0.1)],
        );
        let d = dossier_chart(&c).into_string();
        assert_eq!(axis_labels(&d), ["0", "1"], "{d}");
        assert!(d.contains(">hồ sơ</text>"), "{d}");
        let l = lag_chart(&c).into_string();
        assert_eq!(axis_labels(&l), ["0", "100", "200", "300", "400"], "{l}");
        assert!(l.contains(">ms</text>"), "{l}");
        assert!(!l.contains("height=\"-"), "no negative bars: {l}");
    }
}
