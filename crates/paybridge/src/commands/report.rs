//! `paybridge report [--since 30d] [--json]`: the impact numbers of `crate::ops::report`, read
//! from the store directly (works with the server down).

use std::io::Write;

use crate::catchup::replay::parse_since;
use crate::cli::ReportArgs;
use crate::config::Settings;
use crate::domain::Clock;
use crate::ops::report::{Report, build};
use crate::store::Store;

pub async fn run(args: ReportArgs, settings: Settings) -> anyhow::Result<()> {
    let clock = Clock::system();
    let now_ms = clock.now_ms();
    let since = parse_since(&args.since, now_ms.div_euclid(1000))
        .map_err(|e| crate::UsageError(format!("--since: {e}")))?;
    let store = Store::open(&settings.store.url, clock).await?;
    let report = build(
        &store,
        since * 1000,
        now_ms,
        &settings.report.minutes_per_action,
    )
    .await;
    store.close().await;
    let report = report?;
    let retention = i64::from(settings.store.payload_retention_days) * 86_400_000;
    if now_ms - since * 1000 > retention {
        eprintln!(
            "note: raw payloads are kept {} days (store.payload_retention_days): failed payments and cancellations older than that cannot be linked",
            settings.store.payload_retention_days
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(())
}

fn secs(ms: i64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

fn span(secs: i64) -> String {
    match secs {
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{:.1} h", s as f64 / 3_600.0),
        s => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

fn write_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(out, "paybridge report: {} → {}", r.since, r.until)?;
    writeln!(out)?;
    let l = &r.payment_to_crm;
    match (l.p50_ms, l.p95_ms, l.p99_ms) {
        (Some(p50), Some(p95), Some(p99)) => writeln!(
            out,
            "payment → CRM        p50 {}  p95 {}  p99 {}  ({} events)",
            secs(p50),
            secs(p95),
            secs(p99),
            l.count
        )?,
        _ => writeln!(out, "payment → CRM        no event acted on yet")?,
    }
    let p = &r.payments;
    writeln!(
        out,
        "payments failed      {} invoices ({} failed attempts)",
        p.failed, p.failed_events
    )?;
    if let Some(rate) = p.recovery_rate {
        let after = match (p.time_to_recover.p50_secs, p.time_to_recover.p95_secs) {
            (Some(p50), Some(p95)) => format!(", after {} (p50), {} (p95)", span(p50), span(p95)),
            _ => String::new(),
        };
        writeln!(
            out,
            "  recovered          {} ({:.1}%){after}",
            p.recovered,
            rate * 100.0
        )?;
    }
    writeln!(
        out,
        "involuntary churn    {} subscriptions cancelled after failed payments ({} cancelled in all)",
        r.churn.involuntary, r.churn.cancelled
    )?;
    writeln!(out, "actions performed    {}", r.actions.total)?;
    for (kind, n) in &r.actions.by_kind {
        writeln!(out, "  {kind:<18} {n}")?;
    }
    writeln!(
        out,
        "time saved           {:.1} h ({:.0} min at [report] minutes_per_action)",
        r.minutes_saved / 60.0,
        r.minutes_saved
    )?;
    writeln!(
        out,
        "HubSpot              {} calls, {} answered 429",
        r.hubspot.calls, r.hubspot.rate_limited
    )?;
    writeln!(out, "retries              {}", r.retries)?;
    writeln!(
        out,
        "dead letters         {} ({} need attention)",
        r.dead_letters, r.needs_attention
    )?;
    let statuses: Vec<String> = r
        .events
        .by_status
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    writeln!(
        out,
        "events               {} ({})",
        r.events.total,
        statuses.join(" · ")
    )?;
    if r.unlinkable_payment_events > 0 {
        writeln!(
            out,
            "note: {} payment events had their payload purged and are not linked",
            r.unlinkable_payment_events
        )?;
    }
    Ok(())
}
