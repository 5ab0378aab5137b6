//! Reading the settings: find the file, parse it, apply the `PAYBRIDGE_<SECTION>__<KEY>`
//! overrides, read each section. Every problem is collected, none stops the reading, so an
//! operator fixes the whole file in one go.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::safety::{REAL_DEPLOYMENT_VARS, check_secrets, outbound};
use super::{Settings, WorkerMode};
use crate::basics::{At, ConfigError, Fields, Problem};
use crate::hubspot::ApiVersion;

/// What a config file says: the settings (defaults where a problem was), every problem
/// found in them, and the `[[rules]]` and `[sequences.NAME]` as written, left to the rules.
#[derive(Debug, Clone)]
pub struct Read {
    pub settings: Settings,
    pub problems: Vec<Problem>,
    pub rules: Vec<Value>,
    pub sequences: BTreeMap<String, Value>,
}

/// Finds the file (`--config`, then `$PAYBRIDGE_CONFIG`, then `./paybridge.toml`) and reads
/// it: its path and text, or None when there is no file at all (sandbox mode).
pub fn locate(
    explicit: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Option<(PathBuf, String)>, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_owned(),
        None => match env.get("PAYBRIDGE_CONFIG").filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None if Path::new("paybridge.toml").exists() => PathBuf::from("paybridge.toml"),
            None => return Ok(None),
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) => Err(ConfigError {
            problems: vec![Problem {
                path: path.display().to_string(),
                message: format!(
                    "cannot read the config file: {e} (check --config / PAYBRIDGE_CONFIG)"
                ),
            }],
        }),
    }
}

/// Reads TOML text (None = no file) with an environment map's overrides and secrets.
/// Only text that is not TOML at all is an error here; everything else wrong is in
/// [`Read::problems`]. Sandbox mode when there is no file and no secret in the
/// environment ([`read_as`] with `sandbox` for `serve --sandbox`).
pub fn read(
    text: Option<&str>,
    file: Option<PathBuf>,
    env: &HashMap<String, String>,
) -> Result<Read, ConfigError> {
    read_as(text, file, env, false)
}

/// [`read`], in sandbox mode when `sandbox` (`serve --sandbox`) whatever the file says.
pub fn read_as(
    text: Option<&str>,
    file: Option<PathBuf>,
    env: &HashMap<String, String>,
    sandbox: bool,
) -> Result<Read, ConfigError> {
    let mut root = match text {
        Some(text) => toml::from_str::<Table>(text).map_err(|e| ConfigError {
            problems: vec![Problem {
                path: file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "config".into()),
                message: format!("is not valid TOML: {}", e.to_string().trim()),
            }],
        })?,
        None => Table::new(),
    };
    let lookup = |name: &str| env.get(name).cloned();
    let mut f = Fields::new(&lookup);
    let from_env = apply_env_overrides(&mut f, env, &mut root);
    let mut read = Read {
        settings: Settings::defaults(),
        problems: Vec::new(),
        rules: Vec::new(),
        sequences: BTreeMap::new(),
    };
    // Never sandbox mode by accident: a deployment configured through the environment
    // alone is a real one (SPEC §3).
    let real_vars: Vec<&str> = REAL_DEPLOYMENT_VARS
        .iter()
        .copied()
        .filter(|v| env.get(*v).is_some_and(|x| !x.is_empty()))
        .collect();
    read.settings.sandbox_mode = sandbox || (text.is_none() && real_vars.is_empty());
    if text.is_none() && !read.settings.sandbox_mode {
        tracing::debug!(vars = ?real_vars, "no config file, but secrets in the environment: not sandbox mode");
    }
    read.settings.file = file;
    read_root(&mut f, &root, &mut read);
    let empty = Table::new();
    for section in SECTIONS {
        let table = match root.get(section.name) {
            Some(Value::Table(t)) => t,
            _ => &empty,
        };
        (section.read)(&mut f, At::new(table, section.name), &mut read.settings);
    }
    check_secrets(&mut f, &read.settings, sandbox);
    read.problems = f.into_problems();
    if text.is_none() && !read.settings.sandbox_mode && !read.problems.is_empty() {
        read.problems.push(Problem {
            path: "config".into(),
            message: format!(
                "no config file, and the environment sets {}: this is a real deployment, not sandbox mode (give every required key as PAYBRIDGE_<SECTION>__<KEY>, write a config file, or run `paybridge serve --sandbox` to try paybridge locally)",
                real_vars.join(", ")
            ),
        });
    }
    // A value that came from the environment says so: the file is not where to fix it.
    for p in &mut read.problems {
        if let Some(var) = from_env.get(&p.path) {
            p.message = format!("{} (set by {var})", p.message);
        }
    }
    Ok(read)
}

/// A section of the file: its keys, and the function that reads them into the settings.
/// The one list of known keys (unknown ones are refused; `init`'s starter explains each).
pub(super) struct Section {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    read: fn(&mut Fields, At, &mut Settings),
}

pub(super) const SECTIONS: &[Section] = &[
    Section {
        name: "server",
        keys: &[
            "listen",
            "admin_listen",
            "admin_token",
            "max_body_bytes",
            "tls_cert",
            "tls_key",
            "max_connections",
            "admin_tls",
        ],
        read: server,
    },
    Section {
        name: "store",
        keys: &["url", "payload_retention_days", "pool_size"],
        read: store,
    },
    Section {
        name: "stripe",
        keys: &[
            "webhook_secrets",
            "tolerance_secs",
            "api_key",
            "api_base",
            "replay_every",
            "api_version",
            "requests_per_s",
            "reconcile_every",
            "reconcile_budget_share",
        ],
        read: stripe,
    },
    Section {
        name: "hubspot",
        keys: &[
            "token",
            "api_base",
            "api_version",
            "requests_per_10s",
            "search_per_s",
            "portal_id",
            "sandbox",
        ],
        read: hubspot,
    },
    Section {
        name: "contacts",
        keys: &[
            "id_property",
            "match_email",
            "create_missing",
            "lifecycle_stages",
            "follow_email",
        ],
        read: contacts,
    },
    Section {
        name: "worker",
        keys: &[
            "concurrency",
            "max_attempts",
            "mode",
            "backoff_base",
            "backoff_max",
            "lease",
        ],
        read: worker,
    },
    Section {
        name: "alerts",
        keys: &["slack_webhook_url"],
        read: alerts,
    },
    Section {
        name: "report",
        keys: &["minutes_per_action"],
        read: report,
    },
    Section {
        name: "outbound",
        keys: &["allow_hosts"],
        read: outbound,
    },
];

/// `PAYBRIDGE_<SECTION>__<KEY>=value` replaces `section.key`. Values are read as TOML when
/// they parse (numbers, booleans, arrays), else as plain strings. Returns `section.key` →
/// the variable that set it, for messages.
fn apply_env_overrides(
    f: &mut Fields,
    env: &HashMap<String, String>,
    root: &mut Table,
) -> BTreeMap<String, String> {
    let mut from_env = BTreeMap::new();
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("PAYBRIDGE_") && k.contains("__"))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let rest = &var["PAYBRIDGE_".len()..];
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let value = toml::from_str::<Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        from_env.insert(format!("{section}.{key}"), var.clone());
        let entry = root
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        match entry {
            Value::Table(t) => {
                t.insert(key, value);
            }
            _ => f.problem(
                section,
                format!("{var} overrides a key of `{rest}`, which is not a section"),
            ),
        }
    }
    from_env
}

/// The top level: known sections are tables, `rules` and `sequences` are handed on as
/// written, anything else is refused; then each section's unknown keys.
fn read_root(f: &mut Fields, root: &Table, read: &mut Read) {
    for (key, value) in root {
        let known_section = SECTIONS.iter().any(|s| s.name == key);
        match key.as_str() {
            "rules" => match value {
                Value::Array(rules) => read.rules = rules.clone(),
                _ => f.problem("rules", "must be an array of tables: [[rules]]"),
            },
            "sequences" => match value {
                Value::Table(t) => {
                    read.sequences = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
                _ => f.problem("sequences", "must be a table: [sequences.NAME]"),
            },
            _ if known_section => {
                if !value.is_table() {
                    f.problem(key.clone(), "must be a table, e.g. [section]");
                }
            }
            other => f.problem(
                other,
                format!(
                    "unknown section (known: {}, rules, sequences)",
                    SECTIONS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    for section in SECTIONS {
        if let Some(Value::Table(t)) = root.get(section.name) {
            let known = section.keys.join(", ");
            f.unknown_keys(section.name, t.keys(), section.keys, |hint| {
                format!("unknown key ({hint}known in [{}]: {known})", section.name)
            });
        }
    }
}

fn server(f: &mut Fields, at: At, s: &mut Settings) {
    let server = &mut s.server;
    if let Some(v) = f.parsed::<SocketAddr>(at, "listen", "an address like 0.0.0.0:8080") {
        server.listen = v;
    }
    if let Some(v) = f.parsed::<SocketAddr>(at, "admin_listen", "an address like 127.0.0.1:9090") {
        server.admin_listen = v;
    }
    server.admin_token = f.secret(at, "admin_token", None);
    if let Some(v) = f.int(at, "max_body_bytes", 1024..=64 * 1024 * 1024) {
        server.max_body_bytes = v as usize;
    }
    server.tls_cert = f.string(at, "tls_cert").map(PathBuf::from);
    server.tls_key = f.string(at, "tls_key").map(PathBuf::from);
    if server.tls_cert.is_some() != server.tls_key.is_some() {
        f.problem(
            "server.tls_cert",
            "tls_cert and tls_key must be given together (or neither, for plain HTTP)",
        );
    }
    if let Some(v) = f.int(at, "max_connections", 16..=1_000_000) {
        server.max_connections = v as usize;
    }
    if let Some(v) = f.bool(at, "admin_tls") {
        server.admin_tls = v;
        if v && server.tls_cert.is_none() {
            f.problem(
                "server.admin_tls",
                "needs server.tls_cert and server.tls_key (the admin listener serves the same certificate)",
            );
        }
    }
    if server.admin_token.is_none() && !server.admin_listen.ip().is_loopback() {
        f.problem(
            "server.admin_listen",
            format!(
                "{} is not a loopback address, and server.admin_token is not set: the admin listener holds customer data (set server.admin_token to a random value of 32+ characters, or listen on 127.0.0.1)",
                server.admin_listen
            ),
        );
    }
}

fn store(f: &mut Fields, at: At, s: &mut Settings) {
    if let Some(url) = f.string(at, "url") {
        if url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://")
        {
            s.store.url = url;
        } else {
            f.problem(
                "store.url",
                format!(
                    "`{}` is neither sqlite://PATH nor postgres://USER@HOST/DATABASE",
                    crate::store::redacted_url(&url)
                ),
            );
        }
    }
    if let Some(v) = f.int(at, "payload_retention_days", 1..=3650) {
        s.store.payload_retention_days = v as u32;
    }
    if let Some(v) = f.int(at, "pool_size", 1..=200) {
        s.store.pool_size = v as u32;
    }
}

fn stripe(f: &mut Fields, at: At, s: &mut Settings) {
    let stripe = &mut s.stripe;
    match at.get("webhook_secrets") {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                f.problem(
                    "stripe.webhook_secrets",
                    "is empty (give at least one whsec_… secret)",
                );
            }
            for (i, item) in items.iter().enumerate() {
                let path = format!("stripe.webhook_secrets[{i}]");
                match item.as_str() {
                    Some(reference) => stripe.webhook_secrets.extend(f.resolve(path, reference)),
                    None => f.problem(path, "must be a string (whsec_…, env:NAME or file:/path)"),
                }
            }
        }
        // One secret given as a plain string (handy from the environment).
        Some(Value::String(reference)) => stripe
            .webhook_secrets
            .extend(f.resolve("stripe.webhook_secrets", reference)),
        Some(_) => f.problem("stripe.webhook_secrets", "must be an array of strings"),
        None if s.sandbox_mode => {}
        None => f.problem(
            "stripe.webhook_secrets",
            "missing (add webhook_secrets = [\"env:STRIPE_WEBHOOK_SECRET\"] to [stripe])",
        ),
    }
    if let Some(v) = f.int(at, "tolerance_secs", 1..=86_400) {
        stripe.tolerance_secs = v;
    }
    stripe.api_key = f.secret(at, "api_key", None);
    if let Some(v) = f.url(at, "api_base") {
        stripe.api_base = v;
    }
    match f.duration(at, "replay_every", "a duration such as \"1h\"") {
        Some(d) if d.as_secs() >= 60 => stripe.replay_every = Some(d),
        Some(_) => f.problem("stripe.replay_every", "must be at least 1m"),
        None => {}
    }
    if at.has("replay_every") && !at.has("api_key") {
        f.problem(
            "stripe.replay_every",
            "needs stripe.api_key: the replay reads Stripe's Events API",
        );
    }
    stripe_api(f, at, stripe);
}

/// `api_version` (sent as `Stripe-Version`) and `requests_per_s`.
fn stripe_api(f: &mut Fields, at: At, stripe: &mut super::StripeSettings) {
    if let Some(v) = f.string(at, "api_version") {
        if is_stripe_version(&v) {
            stripe.api_version = v;
        } else {
            f.problem(
                "stripe.api_version",
                format!(
                    "`{v}` is not a Stripe API version (YYYY-MM-DD.name such as \"{}\", or YYYY-MM-DD)",
                    crate::stripe::api::DEFAULT_API_VERSION
                ),
            );
        }
    }
    if let Some(v) = f.int(at, "requests_per_s", 1..=100) {
        stripe.requests_per_s = v as u32;
    }
    stripe_reconcile(f, at, stripe);
}

/// `reconcile_every` (off by default) and `reconcile_budget_share` of HubSpot's budget.
fn stripe_reconcile(f: &mut Fields, at: At, stripe: &mut super::StripeSettings) {
    match f.duration(at, "reconcile_every", "a duration such as \"24h\"") {
        Some(d) if d.as_secs() >= 3_600 => stripe.reconcile_every = Some(d),
        Some(_) => f.problem(
            "stripe.reconcile_every",
            "must be at least 1h (a run reads every customer)",
        ),
        None => {}
    }
    if at.has("reconcile_every") && !at.has("api_key") {
        f.problem(
            "stripe.reconcile_every",
            "needs stripe.api_key: reconcile reads Stripe's customers, subscriptions and charges",
        );
    }
    let share = f
        .string(at, "reconcile_budget_share")
        .map(|v| (v.trim().parse::<f64>(), v));
    match share {
        Some((Ok(v), _)) if v > 0.0 && v <= 1.0 => stripe.reconcile_budget_share = v,
        Some((_, v)) => f.problem(
            "stripe.reconcile_budget_share",
            format!("must be a share of HubSpot's request budget above 0 and at most 1, such as 0.3 (found {v})"),
        ),
        None => {}
    }
}

/// Stripe's version names: `2026-08-26.dahlia`, and the older bare dates (`2024-06-20`).
fn is_stripe_version(v: &str) -> bool {
    let (date, name) = v.split_once('.').unwrap_or((v, "a"));
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        && date.len() == 10
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase())
}

fn hubspot(f: &mut Fields, at: At, s: &mut Settings) {
    // `sandbox = true`: no token, the embedded HubSpot sandbox (what `init` writes).
    let embedded = f.bool(at, "sandbox").unwrap_or(false);
    let required = !s.sandbox_mode && !embedded;
    let hubspot = &mut s.hubspot;
    hubspot.token = f.secret(
        at,
        "token",
        required.then_some("add token = \"env:NAME\" to [hubspot]"),
    );
    if embedded && hubspot.token.is_some() {
        f.problem(
            "hubspot.sandbox",
            "cannot be combined with hubspot.token (remove sandbox = true to use your HubSpot account)",
        );
    }
    if let Some(v) = f.url(at, "api_base") {
        hubspot.api_base = v;
    }
    if let Some(v) = f.string(at, "api_version") {
        match v.as_str() {
            "2026-09" => hubspot.api_version = ApiVersion::Dated2026_09,
            "v3" => hubspot.api_version = ApiVersion::V3,
            other => f.problem(
                "hubspot.api_version",
                format!("`{other}` is not supported (use \"2026-09\" or \"v3\")"),
            ),
        }
    }
    if let Some(v) = f.int(at, "requests_per_10s", 1..=1_000) {
        hubspot.requests_per_10s = v as u32;
    }
    if let Some(v) = f.int(at, "search_per_s", 1..=100) {
        hubspot.search_per_s = v as u32;
    }
    if let Some(v) = f.int(at, "portal_id", 1..=i64::MAX) {
        hubspot.portal_id = Some(v as u64);
    }
}

fn contacts(f: &mut Fields, at: At, s: &mut Settings) {
    if let Some(v) = f.string(at, "id_property")
        && f.property_name("contacts.id_property", &v)
    {
        s.contacts.id_property = v;
    }
    if let Some(v) = f.bool(at, "match_email") {
        s.contacts.match_email = v;
    }
    if let Some(v) = f.bool(at, "create_missing") {
        s.contacts.create_missing = v;
    }
    if let Some(stages) = f.typed::<Vec<String>>(
        at,
        "lifecycle_stages",
        "an array of lifecycle stage ids in their forward order",
    ) {
        let mut seen = std::collections::BTreeSet::new();
        if stages.is_empty() {
            f.problem(
                "contacts.lifecycle_stages",
                "is empty (list every stage, in order)",
            );
        } else if let Some(dup) = stages.iter().find(|s| !seen.insert(s.as_str())) {
            f.problem(
                "contacts.lifecycle_stages",
                format!("`{dup}` is listed twice"),
            );
        } else {
            s.contacts.lifecycle_stages = stages;
        }
    }
    if let Some(v) = f.bool(at, "follow_email") {
        s.contacts.follow_email = v;
    }
}

fn worker(f: &mut Fields, at: At, s: &mut Settings) {
    let worker = &mut s.worker;
    let durations: [(&str, &mut Duration); 3] = [
        ("backoff_base", &mut worker.backoff_base),
        ("backoff_max", &mut worker.backoff_max),
        ("lease", &mut worker.lease),
    ];
    for (key, slot) in durations {
        match f.duration(at, key, "a duration such as \"5s\"") {
            Some(d) if !d.is_zero() => *slot = d,
            Some(_) => f.problem(at.path_of(key), "must be longer than 0s"),
            None => {}
        }
    }
    if let Some(v) = f.int(at, "concurrency", 1..=1_000) {
        worker.concurrency = v as usize;
    }
    if let Some(v) = f.int(at, "max_attempts", 1..=100) {
        worker.max_attempts = v as u32;
    }
    if let Some(v) = f.string(at, "mode") {
        match v.as_str() {
            "live" => worker.mode = WorkerMode::Live,
            "shadow" => worker.mode = WorkerMode::Shadow,
            other => f.problem(
                "worker.mode",
                format!("`{other}` is not a mode (use \"live\" or \"shadow\")"),
            ),
        }
    }
}

fn alerts(f: &mut Fields, at: At, s: &mut Settings) {
    s.alerts.slack_webhook_url = f.secret(at, "slack_webhook_url", None);
}

fn report(f: &mut Fields, at: At, s: &mut Settings) {
    if let Some(v) = f.typed::<BTreeMap<String, f64>>(
        at,
        "minutes_per_action",
        "a table of numbers, e.g. { default = 3, create_ticket = 5 }",
    ) {
        s.report.minutes_per_action.extend(v);
    }
}

#[cfg(test)]
mod exposure_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::STARTER;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// The settings of a text, or every problem found in it.
    fn load_from_str(
        text: Option<&str>,
        file: Option<PathBuf>,
        e: &HashMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let read = read(text, file, e)?;
        if read.problems.is_empty() {
            Ok(read.settings)
        } else {
            Err(ConfigError {
                problems: read.problems,
            })
        }
    }

    fn problems(text: &str, e: &HashMap<String, String>) -> Vec<String> {
        match load_from_str(Some(text), None, e) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems.iter().map(ToString::to_string).collect(),
        }
    }

    const MINIMAL: &str = r#"
[stripe]
webhook_secrets = ["env:STRIPE_WEBHOOK_SECRET"]
[hubspot]
token = "env:HUBSPOT_TOKEN"
"#;

    #[test]
    fn minimal_file_with_env_secrets_loads() {
        let e = env(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("HUBSPOT_TOKEN", "pat-1"),
        ]);
        let s = load_from_str(Some(MINIMAL), None, &e).expect("loads");
        assert_eq!(s.stripe.webhook_secrets.len(), 1);
        assert_eq!(s.hubspot.requests_per_10s, 90);
        assert!(!s.sandbox_mode);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
[server]
listen = "nowhere"
colour = "blue"
[stripe]
webhook_secrets = ["env:STRIPE_WEBHOOK_SECRET", 3]
[hubspot]
api_version = "v9"
requests_per_10s = 0
[worker]
concurrency = "many"
[nonsense]
"#;
        let found = problems(text, &env(&[]));
        let expected = [
            "server.listen: `nowhere` is not an address like 0.0.0.0:8080",
            "server.colour: unknown key",
            "stripe.webhook_secrets[0]: env var STRIPE_WEBHOOK_SECRET is not set",
            "stripe.webhook_secrets[1]: must be a string",
            "hubspot.token: missing",
            "hubspot.api_version: `v9` is not supported",
            "hubspot.requests_per_10s: 0 is out of range",
            "worker.concurrency: must be a whole number, found a string",
            "nonsense: unknown section",
        ];
        for want in expected {
            assert!(
                found.iter().any(|f| f.starts_with(want)),
                "missing `{want}` in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn env_overrides_replace_file_values_and_are_validated() {
        let e = env(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("HUBSPOT_TOKEN", "pat-1"),
            ("PAYBRIDGE_WORKER__CONCURRENCY", "3"),
            ("PAYBRIDGE_HUBSPOT__API_VERSION", "v3"),
            ("PAYBRIDGE_SERVER__LISTEN", "127.0.0.1:1234"),
        ]);
        let s = load_from_str(Some(MINIMAL), None, &e).expect("loads");
        assert_eq!(s.worker.concurrency, 3);
        assert_eq!(s.hubspot.api_version, ApiVersion::V3);
        assert_eq!(s.server.listen.port(), 1234);

        let bad = env(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("HUBSPOT_TOKEN", "pat-1"),
            ("PAYBRIDGE_WORKER__CONCURENCY", "3"),
        ]);
        let found = problems(MINIMAL, &bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("worker.concurency: unknown key"));
        assert!(found[0].contains("PAYBRIDGE_WORKER__CONCURENCY"));
    }

    #[test]
    fn no_file_means_sandbox_mode_with_defaults() {
        let s = load_from_str(None, None, &env(&[])).expect("loads");
        assert!(s.sandbox_mode);
        assert!(s.stripe.webhook_secrets.is_empty());
        assert_eq!(s.store.url, "sqlite://paybridge.db");
    }

    #[test]
    fn secret_values_never_appear_in_problems() {
        let text = r#"
[stripe]
webhook_secrets = ["whsec_topsecretvalue"]
tolerance_secs = "whsec_topsecretvalue"
[hubspot]
token = "pat-topsecretvalue"
api_base = "ftp://x"
"#;
        let found = problems(text, &env(&[])).join("\n");
        assert!(found.contains("hubspot.api_base"));
        assert!(!found.contains("topsecretvalue"), "{found}");
    }

    #[test]
    fn the_reader_reads_every_known_key() {
        // A value no key accepts: each known key must report it, so no key is known to the
        // table and then never read.
        for section in SECTIONS {
            for key in section.keys {
                let text = format!("[{}]\n{key} = {{ wrong = \"kind\" }}\n", section.name);
                let found = problems(&text, &env(&[]));
                let path = format!("{}.{key}", section.name);
                assert!(
                    found.iter().any(|f| f.starts_with(&path)),
                    "{path} is known but not read: {found:#?}"
                );
            }
        }
    }

    #[test]
    fn the_starter_explains_every_known_key_in_its_section() {
        for section in SECTIONS {
            let header = format!("\n[{}]\n", section.name);
            let start = STARTER
                .find(&header)
                .unwrap_or_else(|| panic!("the starter has no [{}]", section.name));
            let body = &STARTER[start + header.len()..];
            let body = &body[..body.find("\n[").unwrap_or(body.len())];
            for key in section.keys {
                assert!(
                    body.lines().any(|l| {
                        let l = l.trim_start_matches(['#', ' ']);
                        l.starts_with(&format!("{key} ="))
                    }),
                    "[{}] {key} is not in the starter",
                    section.name
                );
            }
        }
    }
}
