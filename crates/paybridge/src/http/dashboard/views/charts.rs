//! The index page's three charts, from the store's rows: events by outcome, payment →
//! CRM time, failed and recovered payments.

use super::{AMBER, BLUE, DAY, GREEN, GREY, HOUR, MINUTE, ORANGE, PURPLE, RED};
use crate::domain::latency::percentile;
use crate::domain::{EventStatus, Latency, time};
use crate::http::dashboard::chart::{Chart, Kind, Series, count_ticks, duration_ticks, fmt_count};
use crate::store::{DoneEvent, FailedInvoice, OutcomeCount};

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
}
