//! `GET /`: the health strip, the charts, the impact numbers and the event log with its
//! filters and paging.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::charts::{latency_chart, outcomes_chart, payments_chart};
use super::{DAY, HOUR, MINUTE, health_view, non_empty, status_label, store_error};
use crate::domain::{EventStatus, time};
use crate::http::dashboard::DashboardState;
use crate::http::dashboard::auth::{Principal, encode_component};
use crate::http::dashboard::chart::{Chart, fmt_count};
use crate::store::{LogFilter, LogRow, StoreError};

/// Events per page of the log.
const PAGE: u32 = 50;

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
    let (health, impact, reconcile, outcomes, latencies, invoices, rows, types) = tokio::try_join!(
        health_view(state),
        impact(state, now),
        super::reconcile::card(store),
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
            reconcile => reconcile,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_only_given_filters() {
        assert_eq!(query_string(&[("a", None)]), "");
        assert_eq!(
            query_string(&[("status", Some("dead")), ("email", Some("a+b@x.io"))]),
            "?status=dead&email=a%2Bb%40x.io"
        );
    }
}
