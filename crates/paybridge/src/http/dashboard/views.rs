//! The dashboard's handlers: each reads the store, shapes plain view values (strings
//! formatted here, so the templates only lay out), and renders a template.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::auth::{CsrfForm, Principal, encode_component, same_origin};
use super::chart::{Chart, Kind, Series, count_ticks, duration_ticks, fmt_count};
use super::health::{self, INTAKE_WINDOW_MS, Tile};
use super::{DashboardState, secure};
use crate::domain::latency::percentile;
use crate::domain::{EventId, EventStatus, Latency, time};
use crate::store::{DoneEvent, FailedInvoice, LogFilter, LogRow, OutcomeCount, StoreError};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Events per page of the log.
const PAGE: u32 = 50;

const GREEN: &str = "#1a7f37";
const RED: &str = "#cf222e";
const AMBER: &str = "#9a6700";
const PURPLE: &str = "#8250df";
const GREY: &str = "#6e7781";
const BLUE: &str = "#0969da";
const ORANGE: &str = "#bc4c00";

pub fn status_label(s: EventStatus) -> &'static str {
    match s {
        EventStatus::NeedsAttention => "needs attention",
        other => other.as_str(),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn store_error(state: &DashboardState, e: StoreError) -> Response {
    tracing::error!(error = %e, "the dashboard could not read the store");
    state.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "The store could not be read",
        "paybridge could not read its database just now. Reload the page in a moment; the logs say why.",
    )
}

/// The strip as the page and `/health.json` show it.
#[derive(Debug, Serialize)]
pub struct HealthView {
    tiles: Vec<Tile>,
    at: String,
    attention: bool,
    source: String,
}

async fn health_view(state: &DashboardState) -> Result<HealthView, StoreError> {
    let now = state.now_ms();
    let counts = state
        .store()
        .health_counts(now - INTAKE_WINDOW_MS, now)
        .await?;
    let usage = state.sample();
    let tiles = health::tiles(&counts, &usage, now, state.inner.requests_per_10s);
    let uptime = state.inner.started.elapsed().as_millis() as f64;
    Ok(HealthView {
        attention: tiles.iter().any(|t| t.state == health::State::Alert),
        tiles,
        at: time::pattern(now, "%H:%M:%S UTC"),
        source: format!(
            "HubSpot budget and 429s: this process's own counters (its Prometheus recorder, /metrics), kept since it started {} ago; queue and events: the store.",
            time::duration_ms(uptime)
        ),
    })
}

pub async fn health_json(State(state): State<DashboardState>) -> Response {
    match health_view(&state).await {
        Ok(view) => {
            let mut response = Json(view).into_response();
            secure(&mut response, None);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "health.json could not read the store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": "store_unavailable" })),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    customer: Option<String>,
    email: Option<String>,
    after: Option<String>,
}

#[derive(Debug, Serialize)]
struct LogRowView {
    id: String,
    href: String,
    kind: String,
    status: &'static str,
    status_label: &'static str,
    customer: String,
    email: String,
    received: String,
    attempts: i64,
    error: String,
}

fn log_row(r: &LogRow) -> LogRowView {
    let mut error = r.last_error.clone().unwrap_or_default();
    if error.chars().count() > 140 {
        error = error.chars().take(139).collect::<String>() + "…";
    }
    LogRowView {
        href: format!("/events/{}", encode_component(&r.id)),
        id: r.id.clone(),
        kind: r.kind.clone(),
        status: r.status.as_str(),
        status_label: status_label(r.status),
        customer: r.customer.clone().unwrap_or_default(),
        email: r.email.clone().unwrap_or_default(),
        received: time::readable(r.received_at),
        attempts: r.attempts,
        error,
    }
}

/// `?a=b&c=d` of the non-empty pairs.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode_component(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub async fn index(
    State(state): State<DashboardState>,
    Extension(principal): Extension<Principal>,
    Query(q): Query<LogQuery>,
) -> Response {
    match index_page(&state, &principal, q).await {
        Ok(r) => r,
        Err(e) => store_error(&state, e),
    }
}

async fn index_page(
    state: &DashboardState,
    principal: &Principal,
    q: LogQuery,
) -> Result<Response, StoreError> {
    let now = state.now_ms();
    let status_text = non_empty(q.status);
    let status = status_text
        .as_deref()
        .and_then(|s| s.parse::<EventStatus>().ok());
    let notice = match (&status_text, status) {
        (Some(s), None) => Some(format!("`{s}` is not a status; showing every status.")),
        _ => None,
    };
    let filter = LogFilter {
        status,
        kind: non_empty(q.kind),
        customer: non_empty(q.customer),
        email: non_empty(q.email),
        after: non_empty(q.after),
        limit: PAGE,
    };
    let store = state.store();
    // 15-minute buckets over 24 h, hourly latency, daily payments over 30 days; each
    // window ends at the end of the current bucket.
    let outcome_end = (now.div_euclid(15 * MINUTE) + 1) * 15 * MINUTE;
    let outcome_since = outcome_end - DAY;
    let hour_end = (now.div_euclid(HOUR) + 1) * HOUR;
    let hour_since = hour_end - DAY;
    let day_end = (now.div_euclid(DAY) + 1) * DAY;
    let day_since = day_end - 30 * DAY;
    let (health, impact, outcomes, latencies, invoices, rows, types) = tokio::try_join!(
        health_view(state),
        impact(state, now),
        store.outcomes_by_bucket(outcome_since, 15 * MINUTE),
        store.latencies_since(hour_since),
        store.failed_invoices_since(day_since),
        store.event_log(&filter),
        store.event_types_since(now - 7 * DAY),
    )?;
    let has_more = rows.len() > PAGE as usize;
    let rows: Vec<LogRowView> = rows.iter().take(PAGE as usize).map(log_row).collect();
    let filters = [
        ("status", status.map(EventStatus::as_str)),
        ("type", filter.kind.as_deref()),
        ("customer", filter.customer.as_deref()),
        ("email", filter.email.as_deref()),
    ];
    let older = has_more.then(|| rows.last()).flatten().map(|last| {
        let mut pairs = filters.to_vec();
        pairs.push(("after", Some(last.id.as_str())));
        format!("/{}#log", query_string(&pairs))
    });
    let newest = filter
        .after
        .is_some()
        .then(|| format!("/{}#log", query_string(&filters)));
    let statuses: Vec<Value> = EventStatus::ALL
        .iter()
        .map(|s| {
            context! {
                value => s.as_str(),
                label => status_label(*s),
                selected => Some(*s) == status,
            }
        })
        .collect();
    let chart = |c: Chart| {
        context! {
            svg => Value::from_safe_string(c.render()),
            legend => Value::from_safe_string(c.legend_html()),
        }
    };
    let charts = context! {
        outcomes => chart(outcomes_chart(&outcomes, outcome_since)),
        latency => chart(latency_chart(&latencies, hour_since)),
        payments => chart(payments_chart(&invoices, day_since)),
    };
    let filtered = filters.iter().any(|(_, v)| v.is_some());
    Ok(state.render(
        "index.html",
        StatusCode::OK,
        context! {
            signed_in => matches!(principal, Principal::Session { .. }),
            csrf => state.auth().csrf_token(principal),
            health => Value::from_serialize(&health),
            charts => charts,
            log => context! {
                rows => rows,
                status => status.map(EventStatus::as_str),
                kind => filter.kind,
                customer => filter.customer,
                email => filter.email,
                filtered => filtered,
                older => older,
                newest => newest,
                paged => filter.after.is_some(),
            },
            statuses => statuses,
            types => types,
            notice => notice,
            impact => impact,
        },
    ))
}

/// How far back the impact numbers look, and how long one computation is shown.
const REPORT_DAYS: i64 = 30;
const REPORT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The numbers of `paybridge report --since 30d` (the same computation), at most a minute old.
async fn impact(state: &DashboardState, now: i64) -> Result<Value, StoreError> {
    if let Ok(cache) = state.inner.report.lock()
        && let Some((at, view)) = cache.as_ref()
        && at.elapsed() < REPORT_TTL
    {
        return Ok(view.clone());
    }
    let report = crate::ops::report::build(
        state.store(),
        now - REPORT_DAYS * DAY,
        now,
        &state.inner.minutes_per_action,
    )
    .await?;
    let view = impact_view(&report, now);
    if let Ok(mut cache) = state.inner.report.lock() {
        *cache = Some((std::time::Instant::now(), view.clone()));
    }
    Ok(view)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn impact_view(r: &crate::ops::report::Report, now: i64) -> Value {
    let ms = |v: Option<i64>| {
        v.map(|v| time::duration_ms(v as f64))
            .unwrap_or_else(|| "–".into())
    };
    let secs = |v: Option<i64>| v.map(|v| v * 1000);
    let l = &r.payment_to_crm;
    let p = &r.payments;
    let mut kinds: Vec<(&String, &u64)> = r.actions.by_kind.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = kinds
        .iter()
        .take(2)
        .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
        .collect();
    let hours = r.minutes_saved / 60.0;
    let item = |label: &str, value: String, detail: String| {
        context! { label => label, value => value, detail => detail }
    };
    let items = vec![
        item(
            "Payment → CRM (median)",
            ms(l.p50_ms),
            format!(
                "p95 {} · p99 {} · {} events",
                ms(l.p95_ms),
                ms(l.p99_ms),
                l.count
            ),
        ),
        item(
            "Payments failed",
            p.failed.to_string(),
            format!(
                "invoices ({} failed attempt{})",
                p.failed_events,
                plural(p.failed_events)
            ),
        ),
        item(
            "Payments recovered",
            p.recovered.to_string(),
            match p.recovery_rate {
                Some(rate) => format!(
                    "{:.0}% of failed · after {} (median)",
                    rate * 100.0,
                    ms(secs(p.time_to_recover.p50_secs))
                ),
                None => "no failed payment".into(),
            },
        ),
        item(
            "Involuntary churn",
            r.churn.involuntary.to_string(),
            format!(
                "of {} cancellations ({} voluntary)",
                r.churn.cancelled, r.churn.voluntary
            ),
        ),
        item(
            "Actions performed",
            r.actions.total.to_string(),
            if top.is_empty() {
                "none yet".into()
            } else {
                top.join(", ")
            },
        ),
        item(
            "Time saved",
            if hours >= 1.0 {
                format!("{} h", fmt_count((hours * 10.0).round() / 10.0))
            } else {
                format!("{:.0} min", r.minutes_saved)
            },
            "at [report] minutes_per_action".into(),
        ),
        item(
            "HubSpot calls",
            fmt_count(r.hubspot.calls as f64),
            format!("{} answered 429 (rate limited)", r.hubspot.rate_limited),
        ),
        item(
            "Retries",
            r.retries.to_string(),
            format!(
                "{} dead, {} needing attention",
                r.dead_letters, r.needs_attention
            ),
        ),
    ];
    context! {
        period => format!("last {REPORT_DAYS} days"),
        items => items,
        note => format!(
            "The numbers of paybridge report --since {REPORT_DAYS}d, computed at {} (at most once a minute). Its HubSpot calls and 429s are what every worker process flushed to the store; the health strip's are this process's own.",
            time::pattern(now, "%H:%M UTC")
        ),
    }
}

/// Events per minute by outcome (the event's status now), 96 buckets of 15 minutes.
pub fn outcomes_chart(rows: &[OutcomeCount], since: i64) -> Chart {
    const N: usize = 96;
    let bucket = 15 * MINUTE;
    let groups: [(&str, &str, &[EventStatus]); 5] = [
        ("done", GREEN, &[EventStatus::Done]),
        (
            "in progress",
            AMBER,
            &[EventStatus::Pending, EventStatus::Retrying],
        ),
        ("needs attention", PURPLE, &[EventStatus::NeedsAttention]),
        ("dead", RED, &[EventStatus::Dead]),
        ("ignored", GREY, &[EventStatus::Ignored]),
    ];
    let mut totals = [0i64; 5];
    let series = groups
        .iter()
        .enumerate()
        .map(|(g, (name, colour, statuses))| {
            let mut values = vec![None; N];
            for r in rows.iter().filter(|r| statuses.contains(&r.status)) {
                if let Some(slot) = usize::try_from(r.bucket)
                    .ok()
                    .and_then(|b| values.get_mut(b))
                {
                    *slot = Some(slot.unwrap_or(0.0) + r.count as f64 / 15.0);
                    totals[g] += r.count;
                }
            }
            Series {
                name: (*name).to_owned(),
                colour,
                values,
            }
        })
        .collect();
    let total: i64 = totals.iter().sum();
    let parts: Vec<String> = groups
        .iter()
        .zip(totals)
        .filter(|(_, n)| *n > 0)
        .map(|((name, _, _), n)| format!("{n} {name}"))
        .collect();
    Chart {
        id: "chart-outcomes".into(),
        title: "Events per minute by outcome, last 24 hours".into(),
        description: if total == 0 {
            "No events were received in the last 24 hours.".into()
        } else {
            format!(
                "{total} events received in the last 24 hours: {}.",
                parts.join(", ")
            )
        },
        kind: Kind::StackedBars,
        buckets: (0..N)
            .map(|i| {
                let start = since + i as i64 * bucket;
                format!(
                    "{}–{} UTC (per minute)",
                    time::pattern(start, "%H:%M"),
                    time::pattern(start + bucket, "%H:%M")
                )
            })
            .collect(),
        // A label every 2 hours, on the hour.
        x_ticks: (0..N)
            .filter(|i| (since + *i as i64 * bucket).rem_euclid(2 * HOUR) == 0)
            .map(|i| (i, time::pattern(since + i as i64 * bucket, "%H:%M")))
            .collect(),
        series,
        format: fmt_count,
        ticks: count_ticks,
        width: 1100.0,
        empty_message: "No events in the last 24 hours".into(),
    }
}

/// p50 and p95 of payment → CRM time per hour (nearest rank), over 24 hours.
pub fn latency_chart(rows: &[DoneEvent], since: i64) -> Chart {
    const N: usize = 24;
    let mut per_hour: Vec<Vec<i64>> = vec![Vec::new(); N];
    for r in rows {
        let b = (r.finished_at - since).div_euclid(HOUR);
        if let Some(v) = usize::try_from(b).ok().and_then(|b| per_hour.get_mut(b)) {
            v.push(r.ms);
        }
    }
    for v in &mut per_hour {
        v.sort_unstable();
    }
    let pick = |p: u32| -> Vec<Option<f64>> {
        per_hour
            .iter()
            .map(|v| percentile(v, p).map(|ms| ms as f64))
            .collect()
    };
    let all = Latency::of(rows.iter().map(|r| r.ms).collect());
    Chart {
        id: "chart-latency".into(),
        title: "Payment to CRM time, last 24 hours".into(),
        description: match (all.p50_ms, all.p95_ms) {
            (Some(p50), Some(p95)) => format!(
                "{} events done in the last 24 hours: median {}, 95th percentile {}.",
                all.count,
                time::duration_ms(p50 as f64),
                time::duration_ms(p95 as f64)
            ),
            _ => "No payment reached the CRM in the last 24 hours.".into(),
        },
        kind: Kind::Lines,
        buckets: (0..N)
            .map(|i| {
                let start = since + i as i64 * HOUR;
                format!(
                    "{}–{} UTC ({} events)",
                    time::pattern(start, "%H:%M"),
                    time::pattern(start + HOUR, "%H:%M"),
                    per_hour[i].len()
                )
            })
            .collect(),
        // A label every 4 hours (00:00, 04:00…).
        x_ticks: (0..N)
            .filter(|i| (since + *i as i64 * HOUR).rem_euclid(4 * HOUR) == 0)
            .map(|i| (i, time::pattern(since + i as i64 * HOUR, "%H:%M")))
            .collect(),
        series: vec![
            Series {
                name: "median".into(),
                colour: BLUE,
                values: pick(50),
            },
            Series {
                name: "95th percentile".into(),
                colour: ORANGE,
                values: pick(95),
            },
        ],
        format: time::duration_ms,
        ticks: duration_ticks,
        width: 540.0,
        empty_message: "No payment reached the CRM in the last 24 hours".into(),
    }
}

/// The smallest value with at least p% of the values at or below it.
/// Invoices that failed (on the day of their first failure) and those recovered (on the
/// day they were paid), per day over 30 days.
pub fn payments_chart(rows: &[FailedInvoice], since: i64) -> Chart {
    const N: usize = 30;
    let mut failed = vec![0.0; N];
    let mut recovered = vec![0.0; N];
    let day_of = |secs: i64| usize::try_from((secs * 1000 - since).div_euclid(DAY)).ok();
    let (mut total_failed, mut total_recovered) = (0, 0);
    for r in rows {
        if let Some(slot) = day_of(r.failed_at).and_then(|d| failed.get_mut(d)) {
            *slot += 1.0;
            total_failed += 1;
        }
        if let Some(slot) = r
            .recovered_at
            .and_then(day_of)
            .and_then(|d| recovered.get_mut(d))
        {
            *slot += 1.0;
            total_recovered += 1;
        }
    }
    let some = |v: Vec<f64>| v.into_iter().map(Some).collect();
    Chart {
        id: "chart-payments".into(),
        title: "Failed and recovered payments per day, last 30 days".into(),
        description: format!(
            "{total_failed} invoice payments failed and {total_recovered} were recovered in the last 30 days."
        ),
        kind: Kind::GroupedBars,
        buckets: (0..N)
            .map(|i| time::pattern(since + i as i64 * DAY, "%a %b %-d"))
            .collect(),
        x_ticks: (0..N)
            .step_by(6)
            .map(|i| (i, time::pattern(since + i as i64 * DAY, "%b %-d")))
            .collect(),
        series: vec![
            Series {
                name: "failed".into(),
                colour: RED,
                values: some(failed),
            },
            Series {
                name: "recovered".into(),
                colour: GREEN,
                values: some(recovered),
            },
        ],
        format: fmt_count,
        ticks: count_ticks,
        width: 540.0,
        empty_message: "No failed payments in the last 30 days".into(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    retried: Option<String>,
}

#[derive(Debug, Serialize)]
struct StepView {
    key: String,
    rule: String,
    kind: String,
    status: String,
    call: String,
    result: String,
    error: String,
    started: String,
    took: String,
}

/// A step's detail or result as a person reads it: `key: value` pairs, nested objects as
/// `name=value`, the action's `type` (already in the Step column) and empty values left out.
fn readable(v: Option<&serde_json::Value>, max: usize) -> String {
    use serde_json::Value as J;
    fn scalar(v: &J) -> String {
        match v {
            J::String(s) => s.clone(),
            J::Object(o) => o
                .iter()
                .filter(|(_, v)| !is_empty(v))
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect::<Vec<_>>()
                .join(", "),
            J::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    fn is_empty(v: &J) -> bool {
        match v {
            J::Null => true,
            J::Object(o) => o.is_empty(),
            J::Array(a) => a.is_empty(),
            J::String(s) => s.is_empty(),
            _ => false,
        }
    }
    let Some(v) = v else {
        return String::new();
    };
    let text = match v {
        J::Object(o) => o
            .iter()
            .filter(|(k, v)| k.as_str() != "type" && !is_empty(v))
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), scalar(v)))
            .collect::<Vec<_>>()
            .join("; "),
        other => scalar(other),
    };
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text
    }
}

pub async fn event(
    State(state): State<DashboardState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<EventQuery>,
) -> Response {
    match event_page(&state, &principal, &id, q).await {
        Ok(r) => r,
        Err(e) => store_error(&state, e),
    }
}

fn not_found(state: &DashboardState, id: &str) -> Response {
    state.message(
        StatusCode::NOT_FOUND,
        "No such event",
        &format!("paybridge has no event {id}."),
    )
}

async fn event_page(
    state: &DashboardState,
    principal: &Principal,
    id: &str,
    q: EventQuery,
) -> Result<Response, StoreError> {
    let Ok(event_id) = EventId::parse(id) else {
        return Ok(not_found(state, id));
    };
    let store = state.store();
    let Some(record) = store.get_event(&event_id).await? else {
        return Ok(not_found(state, id));
    };
    let (steps, timeline) = tokio::try_join!(store.steps_of(id), store.timeline(id))?;
    let e = &record.summary;
    // The event's own contact once applied; else the one its customer resolved to.
    let (email, contact_id) = match &e.customer {
        Some(c) => {
            let (email, known) = tokio::try_join!(store.customer_email(c), store.contact_for(c))?;
            let contact = e.contact_id.clone().or(known.as_ref().map(|k| k.0.clone()));
            (email.or(known.and_then(|k| k.1)), contact)
        }
        None => (None, e.contact_id.clone()),
    };
    let payload: Option<Vec<(String, String)>> = record.payload.as_deref().map(|p| {
        let summary = crate::stripe::summary::summarise(p);
        summary
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.replace('_', " "),
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let contact_url = match (state.inner.portal_id, &contact_id) {
        (Some(portal), Some(contact)) => Some(format!(
            "https://app.hubspot.com/contacts/{portal}/record/0-1/{}",
            encode_component(contact)
        )),
        _ => None,
    };
    let steps: Vec<StepView> = steps
        .iter()
        .map(|s| StepView {
            key: s.key.clone(),
            rule: s.rule.clone(),
            kind: s.kind.replace('_', " "),
            status: s.status.clone(),
            call: readable(s.detail.as_ref(), 400),
            result: readable(s.result.as_ref(), 300),
            error: s.error.clone().unwrap_or_default(),
            started: time::pattern(s.started_at, "%H:%M:%S%.3f"),
            // A step recorded only when it finished has no duration of its own (the
            // timeline's times tell how long its attempt took).
            took: s
                .finished_at
                .filter(|f| *f > s.started_at)
                .map(|f| time::duration_ms((f - s.started_at) as f64))
                .unwrap_or_else(|| "–".into()),
        })
        .collect();
    let timeline: Vec<Value> = timeline
        .iter()
        .map(|t| {
            context! {
                at => time::pattern(t.at, "%Y-%m-%d %H:%M:%S%.3f"),
                attempt => t.attempt,
                message => t.message,
            }
        })
        .collect();
    let flash = match (q.retried.as_deref(), e.status) {
        (Some("1"), EventStatus::Pending | EventStatus::Retrying) => Some(
            "Queued again: the workers will run it shortly (steps already done are skipped). Reload to see the outcome.",
        ),
        (Some("1"), EventStatus::Done) => Some("Retried: done."),
        (Some("1"), _) => Some("Retried, and it failed again: see the timeline."),
        (Some(_), _) => {
            Some("Not queued again: the event is already waiting for a run, or it is ignored.")
        }
        (None, _) => None,
    };
    let can_retry = matches!(
        e.status,
        EventStatus::Dead | EventStatus::Retrying | EventStatus::NeedsAttention
    );
    Ok(state.render(
        "event.html",
        StatusCode::OK,
        context! {
            signed_in => matches!(principal, Principal::Session { .. }),
            csrf => state.auth().csrf_token(principal),
            event => context! {
                id => e.id,
                retry_action => format!("/events/{}/retry", encode_component(&e.id)),
                kind => e.kind,
                status => e.status.as_str(),
                status_label => status_label(e.status),
                customer => e.customer,
                customer_href => e.customer.as_ref().map(|c| format!("/?customer={}#log", encode_component(c))),
                email => email,
                contact_id => contact_id,
                contact_url => contact_url,
                portal_configured => state.inner.portal_id.is_some(),
                created => time::readable(e.created * 1000),
                received => time::readable(e.received_at),
                finished => e.finished_at.map(time::readable),
                to_crm => e.finished_at.filter(|_| e.status == EventStatus::Done).map(|f| time::duration_ms((f - e.created * 1000).max(0) as f64)),
                attempts => e.attempts,
                last_error => e.last_error,
                source => e.source,
                livemode => e.livemode,
            },
            payload => payload,
            steps => steps,
            timeline => timeline,
            can_retry => can_retry,
            flash => flash,
        },
    ))
}

pub async fn retry(
    State(state): State<DashboardState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !state.auth().csrf_ok(&principal, &form.csrf) {
        tracing::warn!(event_id = %id, "dashboard retry refused: not from this dashboard");
        return state.forbidden();
    }
    let Ok(event_id) = EventId::parse(&id) else {
        return not_found(&state, &id);
    };
    match state.store().retry_events(&[event_id.to_string()]).await {
        Ok(back) => {
            let retried = !back.is_empty();
            tracing::info!(event_id = %event_id, retried, "dashboard retry");
            let mut response = Redirect::to(&format!(
                "/events/{}?retried={}",
                encode_component(event_id.as_str()),
                u8::from(retried)
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => store_error(&state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_buckets_become_rates_per_minute() {
        let rows = vec![
            OutcomeCount {
                bucket: 0,
                status: EventStatus::Done,
                count: 30,
            },
            OutcomeCount {
                bucket: 0,
                status: EventStatus::Retrying,
                count: 3,
            },
            OutcomeCount {
                bucket: 0,
                status: EventStatus::Pending,
                count: 12,
            },
            OutcomeCount {
                bucket: 500,
                status: EventStatus::Done,
                count: 1,
            },
        ];
        let c = outcomes_chart(&rows, 0);
        assert_eq!(c.series[0].values[0], Some(2.0));
        assert_eq!(c.series[1].values[0], Some(1.0), "pending + retrying");
        assert!(c.description.starts_with("45 events"), "{}", c.description);
        assert_eq!(c.buckets[0], "00:00–00:15 UTC (per minute)");
        assert_eq!(c.x_ticks.len(), 12, "every 2 h over 24 h");
        assert_eq!(c.x_ticks[1], (8, "02:00".to_owned()));
    }

    #[test]
    fn latency_and_payments_land_in_their_buckets() {
        let rows = vec![
            DoneEvent {
                finished_at: 10,
                ms: 100,
            },
            DoneEvent {
                finished_at: 20,
                ms: 300,
            },
            DoneEvent {
                finished_at: HOUR + 1,
                ms: 5_000,
            },
        ];
        let c = latency_chart(&rows, 0);
        assert_eq!(c.series[0].values[0], Some(100.0));
        assert_eq!(c.series[1].values[0], Some(300.0));
        assert_eq!(c.series[0].values[1], Some(5_000.0));
        assert_eq!(c.series[0].values[2], None);
        let invoices = vec![
            FailedInvoice {
                invoice: "in_1".into(),
                failed_at: 10,
                recovered_at: Some(2 * 86_400 + 5),
            },
            FailedInvoice {
                invoice: "in_2".into(),
                failed_at: 86_400,
                recovered_at: None,
            },
        ];
        let c = payments_chart(&invoices, 0);
        assert_eq!(c.series[0].values[0], Some(1.0));
        assert_eq!(c.series[0].values[1], Some(1.0));
        assert_eq!(c.series[1].values[2], Some(1.0));
        assert!(c.description.starts_with("2 invoice payments failed and 1"));
    }

    #[test]
    fn step_details_read_as_pairs() {
        let detail = serde_json::json!({
            "type": "update_contact",
            "aggregates": {},
            "properties": {"stripe_delinquent": "false", "lifecyclestage": "customer"},
        });
        assert_eq!(
            readable(Some(&detail), 400),
            "properties: lifecyclestage=customer, stripe_delinquent=false"
        );
        let result = serde_json::json!({"id": "42", "recovered": true});
        assert_eq!(readable(Some(&result), 400), "id: 42; recovered: true");
        assert_eq!(readable(None, 10), "");
        assert_eq!(
            readable(Some(&serde_json::json!("x".repeat(20))), 5),
            "xxxx…"
        );
    }

    #[test]
    fn query_strings_keep_only_given_filters() {
        assert_eq!(query_string(&[("a", None)]), "");
        assert_eq!(
            query_string(&[("status", Some("dead")), ("email", Some("a+b@x.io"))]),
            "?status=dead&email=a%2Bb%40x.io"
        );
    }
}
