//! `paybridge reconcile [--fix] [--customer cus_…] [--json] [--resume]`: compare Stripe's
//! current state with the contacts' `stripe_*` properties and report every drift (see
//! `crate::catchup::reconcile`); with `--fix`, repair it through the pipeline.
//!
//! Who runs the repairs: a `paybridge serve` answering on `server.listen` does (its limiter
//! shares HubSpot's budget with live webhooks, and this run's reads take at most
//! `reconcile_budget_share` of this process's window); otherwise this process runs the
//! workers, as `backfill` does. Either way the command waits until every repair is finished, then
//! prints the report. Interrupted, it is continued with `--resume`.

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Loaded, Options, services};
use crate::basics::printable;
use crate::catchup::reconcile::{
    ReconcileError, ReconcileOptions, ReconcileProgress, Reconciler, Repairs, repair_prefix,
};
use crate::cli::ReconcileArgs;
use crate::commands::progress::Progress;
use crate::domain::{Clock, CustomerId, time};
use crate::hubspot::limiter::in_background;
use crate::store::{Finding, FindingKind, Store};

pub async fn run(args: ReconcileArgs, config: Loaded) -> anyhow::Result<()> {
    let settings = &config.settings;
    let api = services::require_stripe(settings, "reconcile")?;
    if let Some(c) = &args.customer {
        CustomerId::parse(c).map_err(|e| crate::UsageError(format!("--customer: {e}")))?;
    }
    if settings.hubspot.token.is_none() {
        return Err(crate::UsageError(
            "hubspot.token is not set: reconcile reads your HubSpot contacts (in sandbox mode the embedded HubSpot lives inside `paybridge serve`; point hubspot.api_base and hubspot.token at a sandbox to reconcile against it)".into(),
        )
        .into());
    }
    let server = crate::commands::backfill::running_server(settings).await;
    let options = Options {
        run_workers: args.fix && server.is_none(),
        listen: false,
    };
    let app = Application::build_with(config.clone(), Clock::system(), options).await?;
    let services = app.services().clone();
    if let Some(url) = &server {
        eprintln!(
            "a paybridge server answers at {url}: it runs the repairs, and this run's HubSpot reads take at most stripe.reconcile_budget_share of the request budget"
        );
    }
    let stop = CancellationToken::new();
    let workers = args
        .fix
        .then(|| tokio::spawn(app.run_until_stopped(stop.clone())));
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let repairs = args
        .fix
        .then(|| Repairs::new(services.intake.clone(), settings.contacts.follow_email));
    let reconciler = Reconciler::new(
        api,
        services.hubspot().clone(),
        services.store.clone(),
        &settings.contacts.id_property,
        repairs,
    );
    let reconcile_options = ReconcileOptions {
        customer: args.customer.clone(),
        resume: args.resume,
        fix: args.fix,
        trigger: "command",
    };
    let mut progress = Progress::new();
    let calls = services.hubspot().call_counts();
    let mut on_progress = |p: &ReconcileProgress| progress.update(&line(p, calls.totals().0));
    let run = reconciler.run(&reconcile_options, &cancel, &mut on_progress);
    // Beside a live server, this run's reads are background work within the budget share.
    let result = match server {
        Some(_) => in_background(run).await,
        None => run.await,
    };
    let result = match result {
        Ok(state) if args.fix => wait_for_repairs(&services.store, state, &cancel).await,
        other => other,
    };
    // The report is read before the workers stop (stopping the application closes the
    // store).
    let findings = match &result {
        Ok(state) => Some(services.store.reconcile_findings(&state.run).await),
        Err(_) => None,
    };
    stop.cancel();
    match workers {
        Some(task) => {
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %format!("{e:#}"), "the repairs' workers stopped badly");
            }
        }
        None => services.store.close().await,
    }
    let state = match result {
        Ok(state) => state,
        Err(ReconcileError::NothingToResume(message)) => {
            return Err(crate::UsageError(message).into());
        }
        Err(ReconcileError::Cancelled) => {
            progress.finish("reconcile: interrupted");
            eprintln!(
                "interrupted; what was compared is kept. Continue with `paybridge reconcile --resume`"
            );
            return Err(anyhow::anyhow!("interrupted"));
        }
        Err(e) => {
            progress.finish("reconcile: failed");
            return Err(anyhow::Error::new(e).context(
                "the reconcile stopped; what was compared is kept. Continue with `paybridge reconcile --resume`",
            ));
        }
    };
    progress.finish(&line(&state, calls.totals().0));
    let findings = findings.unwrap_or_else(|| Ok(Vec::new()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&as_json(&state, &findings))?
        )?;
    } else {
        out.write_all(report(&state, &findings).as_bytes())?;
    }
    Ok(())
}

/// With `--fix`: waits until every repair of the run is finished.
async fn wait_for_repairs(
    store: &Store,
    state: ReconcileProgress,
    cancel: &CancellationToken,
) -> Result<ReconcileProgress, ReconcileError> {
    let prefix = repair_prefix(&state.run);
    loop {
        if store.run_progress(&prefix).await?.waiting == 0 {
            return Ok(state);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = cancel.cancelled() => return Err(ReconcileError::Cancelled),
        }
    }
}

fn line(p: &ReconcileProgress, hubspot_calls: u64) -> String {
    let repairs = if p.repairs_queued > 0 {
        format!(" · {} repairs queued", p.repairs_queued)
    } else {
        String::new()
    };
    format!(
        "reconcile ({}): {} subscriptions, {} charges read · {} customers compared ({} before) · {} drift{repairs} · {} claims read · Stripe {} requests · HubSpot {} calls",
        p.phase,
        p.subscriptions,
        p.charges,
        p.customers,
        p.customers_before,
        p.drift,
        p.claims_read,
        p.stripe_requests,
        hubspot_calls,
    )
}

fn kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Drift => "drift",
        FindingKind::NoContact => "no contact",
        FindingKind::UnknownCustomer => "unknown customer",
        FindingKind::ClaimedTwice => "claimed twice",
    }
}

fn cell(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => printable(v).into_owned(),
        _ => "—".to_owned(),
    }
}

/// The human report: a summary, then one line per finding, every outside value made
/// printable.
pub fn report(state: &ReconcileProgress, findings: &[Finding]) -> String {
    let count = |k: FindingKind| findings.iter().filter(|f| f.kind == k).count();
    let repaired = findings.iter().filter(|f| f.repair_event.is_some()).count();
    let mut out = format!(
        "reconcile run {}: {} customers compared · {} drift · {} customers without a contact · {} contacts claiming an unknown customer · {} contacts claiming a customer another contact claims{}\n",
        printable(&state.run),
        state.customers + state.customers_before,
        count(FindingKind::Drift),
        count(FindingKind::NoContact),
        count(FindingKind::UnknownCustomer),
        count(FindingKind::ClaimedTwice),
        if repaired > 0 {
            format!(" · {repaired} repaired")
        } else {
            String::new()
        },
    );
    if findings.is_empty() {
        out.push_str("HubSpot agrees with Stripe.\n");
        return out;
    }
    let rows: Vec<[String; 8]> = findings
        .iter()
        .map(|f| {
            let last = f.last_event.as_deref().map(|e| {
                let at = f
                    .last_event_created
                    .map(|c| format!(" ({})", time::seconds(c)))
                    .unwrap_or_default();
                format!("{e}{at}")
            });
            let note = match (&f.repair_event, &f.detail) {
                (Some(e), _) => format!("repair {e}"),
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            };
            [
                kind_label(f.kind).to_owned(),
                cell(Some(&f.customer)),
                cell(Some(&f.contact_id)),
                cell(Some(&f.property)),
                cell(f.stripe_value.as_deref()),
                cell(f.hubspot_value.as_deref()),
                cell(last.as_deref()),
                cell(Some(&note)),
            ]
        })
        .collect();
    let header = [
        "FINDING",
        "CUSTOMER",
        "CONTACT",
        "PROPERTY",
        "STRIPE",
        "HUBSPOT",
        "LAST EVENT",
        "NOTE",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut push = |cells: Vec<&str>| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push(header.to_vec());
    for row in &rows {
        push(row.iter().map(String::as_str).collect());
    }
    out
}

/// `--json`: the run's counts and every finding.
fn as_json(state: &ReconcileProgress, findings: &[Finding]) -> serde_json::Value {
    json!({
        "run": state.run,
        "customers_compared": state.customers + state.customers_before,
        "drift": findings.iter().filter(|f| f.kind == FindingKind::Drift).count(),
        "repairs_queued": state.repairs_queued,
        "stripe_requests": state.stripe_requests,
        "findings": findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        kind: FindingKind,
        property: &str,
        stripe: Option<&str>,
        hubspot: Option<&str>,
    ) -> Finding {
        Finding {
            kind,
            customer: "cus_1".into(),
            contact_id: "1001".into(),
            property: property.into(),
            stripe_value: stripe.map(str::to_owned),
            hubspot_value: hubspot.map(str::to_owned),
            last_event: None,
            last_event_created: None,
            detail: None,
            repair_event: None,
        }
    }

    #[test]
    fn the_table_lines_up_and_prints_outside_text_as_text() {
        let state = ReconcileProgress {
            run: "r1".into(),
            customers: 2,
            ..ReconcileProgress::default()
        };
        let mut drift = finding(
            FindingKind::Drift,
            "stripe_subscription_tier",
            Some("Pro"),
            Some("Pro\u{1b}[2J\u{202e}"),
        );
        drift.last_event = Some("evt_1".into());
        drift.last_event_created = Some(1_788_257_651);
        let mut gone = finding(FindingKind::UnknownCustomer, "", None, Some("cus_1"));
        gone.detail = Some("deleted in Stripe".into());
        let text = report(&state, &[drift, gone]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("reconcile run r1: 2 customers compared · 1 drift"),
            "{text}"
        );
        assert!(lines[1].starts_with("FINDING"), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert!(lines[2].contains("Pro\\u{1b}[2J\\u{202e}"), "{text}");
        assert!(lines[2].contains("evt_1 ("), "{text}");
        assert!(lines[3].starts_with("unknown customer"), "{text}");
        assert!(lines[3].ends_with("deleted in Stripe"), "{text}");
        // Columns line up: each column starts (in characters) where its header does.
        let chars = |line: &str, byte: usize| line[..byte].chars().count();
        let at = |line: &str, what: &str| chars(line, line.find(what).expect(what));
        assert_eq!(
            at(lines[1], "PROPERTY"),
            at(lines[2], "stripe_subscription_tier")
        );
        let hubspot_column = chars(lines[3], lines[3].rfind("cus_1").expect("HubSpot's value"));
        assert_eq!(at(lines[1], "HUBSPOT"), hubspot_column, "{text}");
        assert_eq!(
            report(&state, &[]).lines().nth(1),
            Some("HubSpot agrees with Stripe.")
        );
    }
}
