//! Layered loading and validation. Every problem is collected, none stops the reading,
//! so an operator fixes the whole file in one go.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::{Settings, WorkerMode};
use crate::basics::{self, ConfigError, Problem, Secret, parse_duration};
use crate::hubspot::ApiVersion;

/// Where the settings come from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// No file anywhere: sandbox mode.
    None,
}

/// Finds the file (`--config`, then `$PAYBRIDGE_CONFIG`, then `./paybridge.toml`) and loads it
/// with the process environment's overrides. No file at all means sandbox mode.
pub fn load(explicit: Option<&Path>) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let source = match explicit {
        Some(p) => Source::File(p.to_owned()),
        None => match env.get("PAYBRIDGE_CONFIG").filter(|v| !v.is_empty()) {
            Some(p) => Source::File(PathBuf::from(p)),
            None if Path::new("paybridge.toml").exists() => {
                Source::File(PathBuf::from("paybridge.toml"))
            }
            None => Source::None,
        },
    };
    let text = match &source {
        Source::File(path) => Some(std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                path: path.display().to_string(),
                message: format!(
                    "cannot read the config file: {e} (check --config / PAYBRIDGE_CONFIG)"
                ),
            }],
        })?),
        Source::None => None,
    };
    let file = match source {
        Source::File(p) => Some(p),
        Source::None => None,
    };
    load_from_str(text.as_deref(), file, &env)
}

/// Loads from TOML text (None = no file, sandbox mode) and an environment map.
pub fn load_from_str(
    text: Option<&str>,
    file: Option<PathBuf>,
    env: &HashMap<String, String>,
) -> Result<Settings, ConfigError> {
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
    let mut reader = Reader {
        problems: Vec::new(),
        env,
        from_env: BTreeMap::new(),
    };
    reader.apply_env_overrides(&mut root);
    let mut settings = Settings::defaults();
    settings.sandbox_mode = text.is_none();
    settings.file = file;
    reader.read(&root, &mut settings);
    // Rules are checked with the rest, so one run lists every problem of the file.
    match crate::rules::RuleSet::compile(&settings.rules, &settings.sequences, &|n| {
        env.get(n).cloned()
    }) {
        Ok(ruleset) => settings.ruleset = std::sync::Arc::new(ruleset),
        Err(problems) => reader.problems.extend(problems),
    }
    if reader.problems.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigError {
            problems: reader.problems,
        })
    }
}

struct Reader<'e> {
    problems: Vec<Problem>,
    env: &'e HashMap<String, String>,
    /// `section.key` → the environment variable that set it, for messages.
    from_env: BTreeMap<String, String>,
}

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "listen",
            "admin_listen",
            "admin_token",
            "max_body_bytes",
            "tls_cert",
            "tls_key",
        ],
    ),
    ("store", &["url", "payload_retention_days"]),
    (
        "stripe",
        &[
            "webhook_secrets",
            "tolerance_secs",
            "api_key",
            "api_base",
            "replay_every",
        ],
    ),
    (
        "hubspot",
        &[
            "token",
            "api_base",
            "api_version",
            "requests_per_10s",
            "search_per_s",
            "portal_id",
            "sandbox",
        ],
    ),
    (
        "contacts",
        &["id_property", "match_email", "create_missing"],
    ),
    (
        "worker",
        &[
            "concurrency",
            "max_attempts",
            "mode",
            "backoff_base",
            "backoff_max",
            "lease",
        ],
    ),
    ("alerts", &["slack_webhook_url"]),
    ("report", &["minutes_per_action"]),
];

impl Reader<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let message = match self.from_env.get(&path) {
            Some(var) => format!("{} (set by {var})", message.into()),
            None => message.into(),
        };
        self.problems.push(Problem { path, message });
    }

    /// `PAYBRIDGE_<SECTION>__<KEY>=value` replaces `section.key`. Values are read as TOML
    /// when they parse (numbers, booleans, arrays), else as plain strings.
    fn apply_env_overrides(&mut self, root: &mut Table) {
        let mut vars: Vec<(&String, &String)> = self
            .env
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
            self.from_env
                .insert(format!("{section}.{key}"), var.clone());
            let entry = root
                .entry(section.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(t) => {
                    t.insert(key, value);
                }
                _ => self.problem(
                    section,
                    format!("{var} overrides a key of `{rest}`, which is not a section"),
                ),
            }
        }
    }

    fn read(&mut self, root: &Table, s: &mut Settings) {
        for (key, value) in root {
            let known_section = SECTIONS.iter().any(|(name, _)| name == key);
            match key.as_str() {
                "rules" => match value {
                    Value::Array(rules) => s.rules = rules.clone(),
                    _ => self.problem("rules", "must be an array of tables: [[rules]]"),
                },
                "sequences" => match value {
                    Value::Table(t) => {
                        s.sequences = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                    }
                    _ => self.problem("sequences", "must be a table: [sequences.NAME]"),
                },
                _ if known_section => match value {
                    Value::Table(_) => {}
                    _ => self.problem(key.clone(), "must be a table, e.g. [section]"),
                },
                other => self.problem(
                    other,
                    format!(
                        "unknown section (known: {}, rules, sequences)",
                        SECTIONS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            }
        }
        for (name, keys) in SECTIONS {
            let Some(Value::Table(t)) = root.get(*name) else {
                continue;
            };
            for key in t.keys() {
                if !keys.contains(&key.as_str()) {
                    self.problem(
                        format!("{name}.{key}"),
                        format!("unknown key (known in [{name}]: {})", keys.join(", ")),
                    );
                }
            }
        }
        let empty = Table::new();
        let section = |name: &str| match root.get(name) {
            Some(Value::Table(t)) => t,
            _ => &empty,
        };

        let t = section("server");
        if let Some(v) =
            self.parsed::<SocketAddr>(t, "server", "listen", "an address like 0.0.0.0:8080")
        {
            s.server.listen = v;
        }
        if let Some(v) = self.parsed::<SocketAddr>(
            t,
            "server",
            "admin_listen",
            "an address like 127.0.0.1:9090",
        ) {
            s.server.admin_listen = v;
        }
        s.server.admin_token = self.secret(t, "server", "admin_token", false);
        if let Some(v) = self.int(t, "server", "max_body_bytes", 1024, 64 * 1024 * 1024) {
            s.server.max_body_bytes = v as usize;
        }
        s.server.tls_cert = self.string(t, "server", "tls_cert").map(PathBuf::from);
        s.server.tls_key = self.string(t, "server", "tls_key").map(PathBuf::from);
        if s.server.tls_cert.is_some() != s.server.tls_key.is_some() {
            self.problem(
                "server.tls_cert",
                "tls_cert and tls_key must be given together (or neither, for plain HTTP)",
            );
        }

        let t = section("store");
        if let Some(url) = self.string(t, "store", "url") {
            if url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://")
            {
                s.store.url = url;
            } else {
                self.problem(
                    "store.url",
                    format!("`{url}` is neither sqlite://PATH nor postgres://…"),
                );
            }
        }
        if let Some(v) = self.int(t, "store", "payload_retention_days", 1, 3650) {
            s.store.payload_retention_days = v as u32;
        }

        let t = section("stripe");
        match t.get("webhook_secrets") {
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.problem(
                        "stripe.webhook_secrets",
                        "is empty (give at least one whsec_… secret)",
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let path = format!("stripe.webhook_secrets[{i}]");
                    match item.as_str() {
                        Some(r) => match basics::resolve_secret(r, &|n| self.env.get(n).cloned()) {
                            Ok(secret) => s.stripe.webhook_secrets.push(secret),
                            Err(e) => self.problem(path, e.to_string()),
                        },
                        None => {
                            self.problem(path, "must be a string (whsec_…, env:NAME or file:/path)")
                        }
                    }
                }
            }
            Some(Value::String(r)) => {
                match basics::resolve_secret(r, &|n| self.env.get(n).cloned()) {
                    // One secret given as a plain string (handy from the environment).
                    Ok(secret) => s.stripe.webhook_secrets.push(secret),
                    Err(e) => self.problem("stripe.webhook_secrets", e.to_string()),
                }
            }
            Some(_) => self.problem("stripe.webhook_secrets", "must be an array of strings"),
            None if s.sandbox_mode => {}
            None => self.problem(
                "stripe.webhook_secrets",
                "missing (add webhook_secrets = [\"env:STRIPE_WEBHOOK_SECRET\"] to [stripe])",
            ),
        }
        if let Some(v) = self.int(t, "stripe", "tolerance_secs", 1, 86_400) {
            s.stripe.tolerance_secs = v;
        }
        s.stripe.api_key = self.secret(t, "stripe", "api_key", false);
        if let Some(v) = self.url(t, "stripe", "api_base") {
            s.stripe.api_base = v;
        }
        if let Some(v) = self.string(t, "stripe", "replay_every") {
            match parse_duration(&v) {
                Ok(d) if d.as_secs() >= 60 => s.stripe.replay_every = Some(d),
                Ok(_) => self.problem("stripe.replay_every", "must be at least 1m"),
                Err(e) => self.problem("stripe.replay_every", e),
            }
            if !t.contains_key("api_key") {
                self.problem(
                    "stripe.replay_every",
                    "needs stripe.api_key: the replay reads Stripe's Events API",
                );
            }
        }

        let t = section("hubspot");
        // `sandbox = true`: no token, the embedded HubSpot sandbox (what `init` writes).
        let embedded = self
            .typed::<bool>(t, "hubspot", "sandbox", "true or false")
            .unwrap_or(false);
        s.hubspot.token = self.secret(t, "hubspot", "token", !s.sandbox_mode && !embedded);
        if embedded && s.hubspot.token.is_some() {
            self.problem(
                "hubspot.sandbox",
                "cannot be combined with hubspot.token (remove sandbox = true to use your HubSpot account)",
            );
        }
        if let Some(v) = self.url(t, "hubspot", "api_base") {
            s.hubspot.api_base = v;
        }
        if let Some(v) = self.string(t, "hubspot", "api_version") {
            match v.as_str() {
                "2026-09" => s.hubspot.api_version = ApiVersion::Dated2026_09,
                "v3" => s.hubspot.api_version = ApiVersion::V3,
                other => self.problem(
                    "hubspot.api_version",
                    format!("`{other}` is not supported (use \"2026-09\" or \"v3\")"),
                ),
            }
        }
        if let Some(v) = self.int(t, "hubspot", "requests_per_10s", 1, 1_000) {
            s.hubspot.requests_per_10s = v as u32;
        }
        if let Some(v) = self.int(t, "hubspot", "search_per_s", 1, 100) {
            s.hubspot.search_per_s = v as u32;
        }
        if let Some(v) = self.int(t, "hubspot", "portal_id", 1, i64::MAX) {
            s.hubspot.portal_id = Some(v as u64);
        }

        let t = section("contacts");
        if let Some(v) = self.string(t, "contacts", "id_property") {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                self.problem(
                    "contacts.id_property",
                    "must be a HubSpot internal property name (lowercase, digits, _)",
                );
            } else {
                s.contacts.id_property = v;
            }
        }
        if let Some(v) = self.typed::<bool>(t, "contacts", "match_email", "true or false") {
            s.contacts.match_email = v;
        }
        if let Some(v) = self.typed::<bool>(t, "contacts", "create_missing", "true or false") {
            s.contacts.create_missing = v;
        }

        let t = section("worker");
        for (key, slot) in [
            ("backoff_base", &mut s.worker.backoff_base),
            ("backoff_max", &mut s.worker.backoff_max),
            ("lease", &mut s.worker.lease),
        ] {
            if let Some(v) = self.string(t, "worker", key) {
                match parse_duration(&v) {
                    Ok(d) if !d.is_zero() => *slot = d,
                    Ok(_) => self.problem(format!("worker.{key}"), "must be longer than 0s"),
                    Err(e) => self.problem(format!("worker.{key}"), e),
                }
            }
        }
        if let Some(v) = self.int(t, "worker", "concurrency", 1, 1_000) {
            s.worker.concurrency = v as usize;
        }
        if let Some(v) = self.int(t, "worker", "max_attempts", 1, 100) {
            s.worker.max_attempts = v as u32;
        }
        if let Some(v) = self.string(t, "worker", "mode") {
            match v.as_str() {
                "live" => s.worker.mode = WorkerMode::Live,
                "shadow" => s.worker.mode = WorkerMode::Shadow,
                other => self.problem(
                    "worker.mode",
                    format!("`{other}` is not a mode (use \"live\" or \"shadow\")"),
                ),
            }
        }

        let t = section("alerts");
        s.alerts.slack_webhook_url = self.secret(t, "alerts", "slack_webhook_url", false);

        let t = section("report");
        if let Some(v) = self.typed::<BTreeMap<String, f64>>(
            t,
            "report",
            "minutes_per_action",
            "a table of numbers, e.g. { default = 3, create_ticket = 5 }",
        ) {
            s.report.minutes_per_action.extend(v);
        }
    }

    fn typed<T: DeserializeOwned>(
        &mut self,
        t: &Table,
        section: &str,
        key: &str,
        expected: &str,
    ) -> Option<T> {
        let value = t.get(key)?;
        match T::deserialize(value.clone()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    format!("{section}.{key}"),
                    format!("must be {expected}, found {}", describe(value)),
                );
                None
            }
        }
    }

    /// Strings; numbers and booleans are accepted as their text (environment values).
    fn string(&mut self, t: &Table, section: &str, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Boolean(b) => Some(b.to_string()),
            other => {
                let found = describe(other);
                self.problem(
                    format!("{section}.{key}"),
                    format!("must be a string, found {found}"),
                );
                None
            }
        }
    }

    fn parsed<T: FromStr>(
        &mut self,
        t: &Table,
        section: &str,
        key: &str,
        expected: &str,
    ) -> Option<T> {
        let text = self.string(t, section, key)?;
        match text.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    format!("{section}.{key}"),
                    format!("`{text}` is not {expected}"),
                );
                None
            }
        }
    }

    fn url(&mut self, t: &Table, section: &str, key: &str) -> Option<String> {
        let text = self.string(t, section, key)?;
        if text.starts_with("http://") || text.starts_with("https://") {
            Some(text.trim_end_matches('/').to_owned())
        } else {
            self.problem(
                format!("{section}.{key}"),
                format!("`{text}` is not an http(s):// URL"),
            );
            None
        }
    }

    fn int(&mut self, t: &Table, section: &str, key: &str, min: i64, max: i64) -> Option<i64> {
        let path = format!("{section}.{key}");
        match t.get(key)? {
            Value::Integer(i) if (min..=max).contains(i) => Some(*i),
            Value::Integer(i) => {
                self.problem(path, format!("{i} is out of range ({min}..={max})"));
                None
            }
            other => {
                let found = describe(other);
                self.problem(path, format!("must be a whole number, found {found}"));
                None
            }
        }
    }

    fn secret(&mut self, t: &Table, section: &str, key: &str, required: bool) -> Option<Secret> {
        let path = format!("{section}.{key}");
        let Some(value) = t.get(key) else {
            if required {
                self.problem(
                    path,
                    format!("missing (add {key} = \"env:NAME\" to [{section}])"),
                );
            }
            return None;
        };
        let Some(reference) = value.as_str() else {
            self.problem(path, "must be a string (the value, env:NAME or file:/path)");
            return None;
        };
        match basics::resolve_secret(reference, &|n| self.env.get(n).cloned()) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(path, e.to_string());
                None
            }
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
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
}
