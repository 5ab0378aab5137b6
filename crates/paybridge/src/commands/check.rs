//! `paybridge check`: the config is valid (loading it checked that), HubSpot and Stripe
//! answer, the properties exist, the token's scopes are exactly what the configured
//! rules need: the missing ones (a failure) and those granted beyond need (least privilege),
//! and every HubSpot object the rules name exists (`ops::verify`), each finding with the
//! config path of the rule's key.

use std::collections::BTreeSet;
use std::fmt::Display;

use crate::app::Loaded;
use crate::config::Settings;
use crate::hubspot::HubSpot;
use crate::hubspot::properties::PropertyDef;
use crate::ops::setup::{Outcome, definitions, ensure, scopes_needed};
use crate::ops::verify::{Level, verify};
use crate::rules::RuleSet;
use crate::rules::needs::{describe_scope, scope_family, scope_granted};

struct Report {
    failures: Vec<String>,
}

impl Report {
    fn line(&mut self, what: &str, status: Status, detail: impl Display) {
        let detail = detail.to_string();
        println!("{what:<11}{:<5} {detail}", status.label());
        if status == Status::Fail {
            self.failures.push(format!("{what}: {detail}"));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Skip,
    /// Worth acting on, but not a failure.
    Warn,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Warn => "WARN",
        }
    }
}

pub async fn run(config: Loaded) -> anyhow::Result<()> {
    let Loaded { settings, rules } = config;
    let mut report = Report {
        failures: Vec::new(),
    };
    let source = settings.file.as_ref().map_or_else(
        || "no config file (sandbox mode)".to_owned(),
        |f| f.display().to_string(),
    );
    report.line(
        "config",
        Status::Ok,
        format!(
            "{source}: valid, {} rule(s), {} sequence(s)",
            rules.rules.len(),
            rules.sequences.len()
        ),
    );
    let defs = definitions(&settings, &rules);
    // Contacts read and write among them: every event needs those.
    let needed: BTreeSet<&str> = rules.scopes_needed();
    let for_setup: BTreeSet<&str> = scopes_needed(&defs)
        .into_iter()
        .filter(|s| !needed.contains(s))
        .collect();
    match crate::app::services::hubspot(&settings)? {
        None => {
            report.line(
                "hubspot",
                Status::Skip,
                "sandbox mode (no hubspot.token): the embedded sandbox grants every scope",
            );
            println!("scopes a token will need: {}", list(&needed));
            println!("needed only by `paybridge setup`: {}", list(&for_setup));
        }
        Some(hubspot) => {
            check_hubspot(&settings, &hubspot, &defs, &needed, &for_setup, &mut report).await;
            check_portal(&settings, &rules, &hubspot, &mut report).await;
        }
    }
    check_stripe(&settings, &mut report).await;
    stripe_events(&settings, &rules, &mut report).await;
    if report.failures.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        anyhow::bail!(
            "check failed ({} problem{}):\n  {}",
            report.failures.len(),
            if report.failures.len() == 1 { "" } else { "s" },
            report.failures.join("\n  ")
        )
    }
}

async fn check_hubspot(
    settings: &Settings,
    hubspot: &HubSpot,
    defs: &[PropertyDef],
    needed: &BTreeSet<&str>,
    for_setup: &BTreeSet<&str>,
    report: &mut Report,
) {
    let base = &settings.hubspot.api_base;
    let granted = match &settings.hubspot.token {
        Some(token) => match hubspot.token_scopes(token.expose()).await {
            Ok(scopes) => {
                report.line(
                    "hubspot",
                    Status::Ok,
                    format!("{base}: the token is valid ({} scopes)", scopes.len()),
                );
                Some(scopes.into_iter().collect::<BTreeSet<String>>())
            }
            Err(e) => {
                report.line(
                    "hubspot",
                    Status::Fail,
                    format!("{base}: cannot introspect the token: {e}"),
                );
                None
            }
        },
        None => None,
    };
    check_properties(hubspot, defs, report).await;
    match granted {
        Some(granted) => check_scopes(&granted, needed, for_setup, report),
        None => println!("scopes the rules need: {}", list(needed)),
    }
}

/// The cheap read: the properties paybridge writes, as `setup --dry-run` sees them.
async fn check_properties(hubspot: &HubSpot, defs: &[PropertyDef], report: &mut Report) {
    let mut object_types: Vec<&str> = Vec::new();
    for d in defs {
        if !object_types.contains(&d.object_type) {
            object_types.push(d.object_type);
        }
    }
    let (mut present, mut missing, mut differing, mut unreadable) =
        (0, Vec::new(), Vec::new(), Vec::new());
    for object_type in object_types {
        let of_type: Vec<_> = defs
            .iter()
            .filter(|d| d.object_type == object_type)
            .cloned()
            .collect();
        match ensure(hubspot, &of_type, true).await {
            Ok(found) => {
                for entry in found.entries {
                    match entry.outcome {
                        Outcome::Exists | Outcome::Created => present += 1,
                        Outcome::WouldCreate => missing.push(entry.property),
                        Outcome::Differs(why) => {
                            differing.push(format!("{} ({})", entry.property, why.join("; ")))
                        }
                    }
                }
            }
            Err(e) => unreadable.push(format!("{object_type}: {e}")),
        }
    }
    if missing.is_empty() && differing.is_empty() && unreadable.is_empty() {
        report.line(
            "properties",
            Status::Ok,
            format!("all {present} exist as paybridge writes them"),
        );
    } else {
        if !missing.is_empty() {
            report.line(
                "properties",
                Status::Fail,
                format!("missing: {} (run `paybridge setup`)", missing.join(", ")),
            );
        }
        if !differing.is_empty() {
            report.line(
                "properties",
                Status::Fail,
                format!("not as paybridge writes them: {}", differing.join(", ")),
            );
        }
        for e in unreadable {
            report.line("properties", Status::Fail, format!("cannot read {e}"));
        }
    }
}

/// The token's scopes against the rules' (and setup's) needs: what it lacks fails the
/// check; what it has beyond need is listed (least privilege).
fn check_scopes(
    granted: &BTreeSet<String>,
    needed: &BTreeSet<&str>,
    for_setup: &BTreeSet<&str>,
    report: &mut Report,
) {
    let has = |s: &&str| scope_granted(s, granted);
    let lacking: Vec<String> = needed
        .iter()
        .filter(|s| !has(s))
        .map(|s| describe_scope(s))
        .collect();
    if lacking.is_empty() {
        report.line(
            "scopes",
            Status::Ok,
            "the token has every scope the configured rules need",
        );
    } else {
        report.line(
            "scopes",
            Status::Fail,
            format!(
                "the token lacks {} (add them to the private app or service key)",
                lacking.join(", ")
            ),
        );
    }
    println!("scopes the rules need: {}", list(needed));
    println!(
        "missing scopes: {}",
        join_or_none(&lacking.iter().map(String::as_str).collect::<Vec<_>>())
    );
    let setup_state: Vec<String> = for_setup
        .iter()
        .map(|s| {
            format!(
                "{} ({})",
                describe_scope(s),
                if has(s) { "granted" } else { "not granted" }
            )
        })
        .collect();
    println!(
        "needed only by `paybridge setup`: {}",
        if setup_state.is_empty() {
            "none".to_owned()
        } else {
            setup_state.join(", ")
        }
    );
    // A scope of a needed one's family (the legacy ticket scope or the granular ones) and
    // those `check` itself reads with are never beyond need.
    let wanted = |s: &str| {
        needed
            .iter()
            .chain(for_setup)
            .any(|n| *n == s || scope_family(n).contains(&s))
            || CHECK_READS.contains(&s)
    };
    let beyond: Vec<&str> = granted
        .iter()
        .map(String::as_str)
        .filter(|s| !wanted(s))
        .collect();
    println!(
        "granted beyond need: {}{}",
        join_or_none(&beyond),
        if beyond.is_empty() {
            ""
        } else {
            " (this config never uses them: remove them for least privilege)"
        }
    );
}

/// Every HubSpot object the rules name, each finding with its config path.
async fn check_portal(
    settings: &Settings,
    rules: &RuleSet,
    hubspot: &HubSpot,
    report: &mut Report,
) {
    if let Some(zone) = hubspot.account_zone().await {
        println!(
            "account    time zone {} (HubSpot's daily limit resets at midnight there)",
            zone.name
        );
    }
    for f in verify(hubspot, settings, rules).await {
        let status = match f.level {
            Level::Ok => Status::Ok,
            Level::Warn => Status::Warn,
            Level::Fail => Status::Fail,
            Level::Skip => Status::Skip,
        };
        report.line(f.topic, status, format!("{}: {}", f.path, f.message));
    }
}

async fn check_stripe(settings: &Settings, report: &mut Report) {
    let base = &settings.stripe.api_base;
    let api = match crate::app::services::stripe(settings) {
        Ok(Some(api)) => api,
        Ok(None) => {
            report.line(
                "stripe",
                Status::Skip,
                "no stripe.api_key (optional: replay, backfill and the emails of charge events use it)",
            );
            return;
        }
        Err(e) => {
            report.line("stripe", Status::Fail, format!("{e:#}"));
            return;
        }
    };
    let probe = api
        .request(
            "/v1/customers",
            &[("limit".to_owned(), "1".to_owned())],
            None,
        )
        .await;
    match &probe {
        Ok(a) if (200..300).contains(&a.status) => report.line(
            "stripe",
            Status::Ok,
            format!(
                "{base}: the API key can read customers (Stripe-Version {})",
                api.version()
            ),
        ),
        Ok(a) if a.status == 404 => report.line(
            "stripe",
            Status::Fail,
            format!("{base}: /v1/customers answered 404 (check stripe.api_base)"),
        ),
        Ok(a) => report.line(
            "stripe",
            Status::Fail,
            format!(
                "{base}: /v1/customers answered {}: {}",
                a.status,
                a.body
                    .pointer("/error/message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("no message")
            ),
        ),
        Err(e) => report.line("stripe", Status::Fail, e),
    }
    if let Ok(answer) = &probe {
        check_clock(answer.date, chrono::Utc::now(), report);
    }
}

/// The largest difference between this host's clock and Stripe's that `check` accepts
/// quietly: Stripe signs each delivery with its time, refused beyond `tolerance_secs`.
const CLOCK_WARN_SECS: i64 = 60;

/// This host's clock against the `Date` header of Stripe's answer (RFC 9110 §6.6.1; Stripe's
/// own material does not document it, so a missing header is only reported).
fn check_clock(
    stripe: Option<chrono::DateTime<chrono::Utc>>,
    here: chrono::DateTime<chrono::Utc>,
    report: &mut Report,
) {
    let (status, detail) = clock_status(stripe, here);
    report.line("clock", status, detail);
}

fn clock_status(
    stripe: Option<chrono::DateTime<chrono::Utc>>,
    here: chrono::DateTime<chrono::Utc>,
) -> (Status, String) {
    let Some(stripe) = stripe else {
        return (
            Status::Skip,
            "Stripe's answer has no Date header; cannot compare clocks".into(),
        );
    };
    let skew = here.signed_duration_since(stripe).num_seconds();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
    if skew.abs() > CLOCK_WARN_SECS {
        (
            Status::Warn,
            format!(
                "this host's clock ({}) is {} s {} Stripe's ({}): signed webhooks are refused beyond stripe.tolerance_secs; synchronise the clock (NTP)",
                fmt(here),
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" },
                fmt(stripe)
            ),
        )
    } else {
        (
            Status::Ok,
            format!(
                "within {CLOCK_WARN_SECS} s of Stripe's ({} s apart)",
                skew.abs()
            ),
        )
    }
}

/// Which Stripe events the endpoint should send (what the rules handle, as exact names),
/// which payload style suits the config, what product names will show, and thin events
/// that wait for an API key.
async fn stripe_events(settings: &Settings, rules: &crate::rules::RuleSet, report: &mut Report) {
    let types = rules.event_types_to_send();
    println!(
        "Stripe events this config handles ({}; subscribe the endpoint to these, not to every type): {}",
        types.len(),
        types.join(", ")
    );
    if !types.iter().any(|t| t == "invoice.created") {
        println!(
            "  not needed: invoice.created (Stripe waits for the endpoint's 2xx before finalising a renewal, up to 72 h)"
        );
    }
    let has_key = settings.stripe.api_key.is_some();
    println!(
        "Payload style: {}",
        if has_key {
            "snapshot or thin both work (thin events are fetched with stripe.api_key; choose one style per endpoint, not both)"
        } else {
            "snapshot (thin events need stripe.api_key to fetch their object and would wait as needs_attention)"
        }
    );
    if !has_key {
        report.line(
            "products",
            Status::Warn,
            "no stripe.api_key: the subscription tier shows the price's nickname or lookup key, else the product id (with a key, the product's name)",
        );
    }
    // A SQLite store that does not exist yet is not created by `check`; a Postgres one is
    // read where it is.
    if let Some(path) = settings.store.url.strip_prefix("sqlite://")
        && !std::path::Path::new(path).exists()
    {
        return;
    }
    let Ok(store) =
        crate::store::Store::open(&settings.store.url, crate::domain::Clock::system()).await
    else {
        return;
    };
    let waiting = store.thin_waiting_for_key().await.unwrap_or_default();
    store.close().await;
    if waiting.is_empty() {
        return;
    }
    let (status, what) = if has_key {
        (
            Status::Warn,
            "they run again when `paybridge serve` next starts",
        )
    } else {
        (
            Status::Fail,
            "set [stripe] api_key (a restricted key that can read them), then restart `paybridge serve`",
        )
    };
    report.line(
        "waiting",
        status,
        format!(
            "{} thin event(s) wait for stripe.api_key (e.g. {}): {what}",
            waiting.len(),
            waiting[0]
        ),
    );
}

/// Optional scopes `check` reads with: the object schemas' create-record requirements.
const CHECK_READS: &[&str] = &["crm.schemas.custom.read"];

fn list(scopes: &BTreeSet<&str>) -> String {
    join_or_none(
        &scopes
            .iter()
            .map(|s| describe_scope(s))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
}

fn join_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(secs, 0).expect("time")
    }

    #[test]
    fn clocks_more_than_a_minute_apart_are_a_warning_not_a_failure() {
        assert_eq!(clock_status(Some(at(1_000)), at(1_060)).0, Status::Ok);
        let (status, detail) = clock_status(Some(at(1_000)), at(1_061));
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("61 s ahead of Stripe's"), "{detail}");
        let (status, detail) = clock_status(Some(at(1_000)), at(900));
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("100 s behind Stripe's"), "{detail}");
        assert_eq!(clock_status(None, at(900)).0, Status::Skip);
    }
}
