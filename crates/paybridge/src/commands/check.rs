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
    match api
        .get("/v1/customers", &[("limit".to_owned(), "1".to_owned())])
        .await
    {
        Ok(Some(_)) => report.line(
            "stripe",
            Status::Ok,
            format!("{base}: the API key can read customers"),
        ),
        Ok(None) => report.line(
            "stripe",
            Status::Fail,
            format!("{base}: /v1/customers answered 404 (check stripe.api_base)"),
        ),
        Err(e) => report.line("stripe", Status::Fail, e),
    }
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
