//! What `motcua-dc run` serves over HTTP, read-only (`[http] bind`):
//!
//! - `/`: the fleet dashboard: counters needing a technician first, then
//!   charts of dossiers per day per unit and of sync lag, as SVG drawn on
//!   the server; refreshes itself every 30 s; no script, no CDN;
//! - `/api/v1/fleet`: the same rows as `motcua-dc fleet --json`;
//! - `/api/v1/records?from=&to=&unit=&after=&limit=`: stored records as
//!   `motcua-dc export` writes them, a page at a time;
//! - `/metrics`: Prometheus text format ([`crate::metrics`]).
//!
//! Every page reads the database on a blocking thread through one
//! connection of its own. Nothing here writes.

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
}

impl Web {
    /// Serves from `store` (a connection of its own) and `metrics`.
    pub fn new(store: Box<dyn Store>, metrics: Arc<Metrics>) -> Web {
        Web {
            store: Arc::new(Mutex::new(store)),
            metrics,
            thresholds: Thresholds::default(),
        }
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
                Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database could not be read; see the receiver's log\n",
                )
                    .into_response())
            }
            Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()),
        }
    }
}

/// The routes.
pub fn router(web: Web) -> Router {
    Router::new()
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

async fn fleet_json(State(web): State<Web>) -> Response {
    match fleet_rows(&web).await {
        Ok((rows, _)) => axum::Json(rows).into_response(),
        Err(r) => r,
    }
}

async fn metrics_text(State(web): State<Web>) -> Response {
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
}

async fn records(State(web): State<Web>, Query(q): Query<RecordsQuery>) -> Response {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": m })),
        )
            .into_response()
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
        a.rsplit_once(':')
            .and_then(|(d, s)| Some((d.to_owned(), s.parse::<u64>().ok()?)))
    }) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return bad("after is device:seq".into()),
    };
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let filter = Filter {
        unit: q.unit.clone(),
        from,
        to,
    };
    let page = web
        .read(move |s| {
            let mut r = export::Reader::new(s, filter, after);
            let records: Vec<Exported> = r.page(limit)?;
            let next = (!r.done())
                .then(|| r.cursor().map(|(d, s)| format!("{d}:{s}")))
                .flatten();
            Ok((records, next))
        })
        .await;
    match page {
        Ok((records, next)) => {
            axum::Json(serde_json::json!({ "records": records, "next": next })).into_response()
        }
        Err(r) => r,
    }
}

/// The chart data: dossiers per day per unit, and lag per day.
struct Charts {
    days: Vec<String>,
    dossiers: BTreeMap<String, BTreeMap<String, u64>>,
    lag: BTreeMap<String, (f64, f64)>,
}

async fn dashboard(State(web): State<Web>) -> Response {
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
    let data = match web
        .read(move |s| Ok((s.daily_dossiers(&since)?, s.daily_lag(&since)?)))
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
    };
    let page = page(&rows, &now, &charts);
    ([(header::CACHE_CONTROL, "no-store")], page).into_response()
}

const CSS: &str = "
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
        "alerts" => "có cảnh báo",
        _ => "cần kiểm tra",
    }
}

fn page(rows: &[Counter], now: &UtcTime, charts: &Charts) -> Markup {
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
                header { h1 { "motcua — các quầy Một cửa" } }
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
                                    td { (r.unit.as_deref().unwrap_or("-")) }
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
const BOTTOM: f64 = 36.0;

fn axis(max: f64, label: fn(f64) -> String) -> Markup {
    let plot_h = H - BOTTOM - 10.0;
    html! {
        line x1=(LEFT) y1=(H - BOTTOM) x2=(W - 4.0) y2=(H - BOTTOM) stroke="#888" {}
        line x1=(LEFT) y1="10" x2=(LEFT) y2=(H - BOTTOM) stroke="#888" {}
        @for i in 0..=4 {
            @let v = max * f64::from(i) / 4.0;
            @let y = H - BOTTOM - plot_h * f64::from(i) / 4.0;
            text x=(LEFT - 4.0) y=(y + 4.0) text-anchor="end" font-size="10" { (label(v)) }
        }
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
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (W - LEFT - 4.0) / c.days.len() as f64;
    let bar = (slot - 4.0) / units.len().max(1) as f64;
    let plot_h = H - BOTTOM - 10.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + 16.0 * units.len() as f64) role="img" {
            (axis(max, |v| format!("{v:.0}")))
            @for (i, d) in c.days.iter().enumerate() {
                @for (u, unit) in units.iter().enumerate() {
                    @let n = c.dossiers.get(*unit).and_then(|m| m.get(d)).copied().unwrap_or(0);
                    @if n > 0 {
                        @let h = plot_h * n as f64 / max;
                        rect x=(LEFT + slot * i as f64 + 2.0 + bar * u as f64) y=(H - BOTTOM - h) width=(bar.max(1.0)) height=(h) fill=(COLOURS[u % COLOURS.len()]) {
                            title { (unit) " " (d) ": " (n) }
                        }
                    }
                }
            }
            (day_labels(&c.days, slot))
            @for (u, unit) in units.iter().enumerate() {
                rect x=(LEFT) y=(H + 16.0 * u as f64 - 8.0) width="10" height="10" fill=(COLOURS[u % COLOURS.len()]) {}
                text x=(LEFT + 14.0) y=(H + 16.0 * u as f64 + 1.0) font-size="11" { (unit) }
            }
        }
    }
}

fn lag_chart(c: &Charts) -> Markup {
    let max = c.lag.values().map(|(_, m)| *m).fold(1.0_f64, f64::max);
    let slot = (W - LEFT - 4.0) / c.days.len() as f64;
    let plot_h = H - BOTTOM - 10.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(W) height=(H + 20.0) role="img" {
            (axis(max, |v| fleet::duration(v.round() as u64)))
            @for (i, d) in c.days.iter().enumerate() {
                @if let Some((avg, mx)) = c.lag.get(d) {
                    @let hm = plot_h * mx / max;
                    @let ha = plot_h * avg / max;
                    rect x=(LEFT + slot * i as f64 + 2.0) y=(H - BOTTOM - hm) width=((slot - 4.0).max(1.0)) height=(hm) fill="#f3c4bf" {
                        title { (d) ": lớn nhất " (format!("{mx:.1}")) " s" }
                    }
                    rect x=(LEFT + slot * i as f64 + 2.0) y=(H - BOTTOM - ha) width=((slot - 4.0).max(1.0)) height=(ha) fill="#b3261e" {
                        title { (d) ": trung bình " (format!("{avg:.1}")) " s" }
                    }
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
