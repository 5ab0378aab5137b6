//! The loader above config and rules: the config file's settings and its compiled rules,
//! with every problem of both reported together in one [`ConfigError`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::basics::{ConfigError, Problem};
use crate::config::{self, Settings};
use crate::rules::RuleSet;

/// A configuration, loaded: what the application and the commands run on.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    /// `[[rules]]` and `[sequences.NAME]`, compiled (empty when there are none).
    pub rules: Arc<RuleSet>,
}

/// Settings alone: no configured rules, only the built-in financial tagging.
impl From<Settings> for Loaded {
    fn from(settings: Settings) -> Self {
        Self {
            settings,
            rules: Arc::default(),
        }
    }
}

/// Finds the file (`--config`, then `$PAYBRIDGE_CONFIG`, then `./paybridge.toml`) and loads
/// it with the process environment's overrides and secrets. No file at all means sandbox
/// mode.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_as(explicit, false)
}

/// [`load`]; with `sandbox` (`serve --sandbox`), in sandbox mode whatever the file says.
pub fn load_as(explicit: Option<&Path>, sandbox: bool) -> Result<Loaded, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match config::locate(explicit, &env)? {
        Some((path, text)) => load_from_str_as(Some(&text), Some(path), &env, sandbox),
        None => load_from_str_as(None, None, &env, sandbox),
    }
}

/// Loads from TOML text (None = no file) and an environment map.
pub fn load_from_str(
    text: Option<&str>,
    file: Option<PathBuf>,
    env: &HashMap<String, String>,
) -> Result<Loaded, ConfigError> {
    load_from_str_as(text, file, env, false)
}

/// [`load_from_str`], in sandbox mode when `sandbox`.
pub fn load_from_str_as(
    text: Option<&str>,
    file: Option<PathBuf>,
    env: &HashMap<String, String>,
    sandbox: bool,
) -> Result<Loaded, ConfigError> {
    let read = config::read_as(text, file, env, sandbox)?;
    let mut problems = read.problems;
    // Rules are checked with the rest, so one run lists every problem of the file.
    let rules = match RuleSet::compile(&read.rules, &read.sequences, &|n| env.get(n).cloned()) {
        Ok(rules) => Some(rules),
        Err(rule_problems) => {
            problems.extend(rule_problems);
            None
        }
    };
    if let Some(rules) = &rules {
        problems.extend(example_secrets_in_rules(&read.settings, rules));
    }
    match rules {
        Some(rules) if problems.is_empty() => Ok(Loaded {
            settings: read.settings,
            rules: Arc::new(rules),
        }),
        _ => Err(ConfigError { problems }),
    }
}

/// The starter's example secrets left in rules (`call_webhook` secrets) next to a real
/// HubSpot token: each is a problem naming the action.
fn example_secrets_in_rules(settings: &Settings, rules: &RuleSet) -> Vec<Problem> {
    use crate::rules::ActionTemplate;
    if settings.sandbox_mode || settings.hubspot.token.is_none() {
        return Vec::new();
    }
    rules
        .actions_with_paths()
        .into_iter()
        .filter_map(|(path, action)| match action {
            ActionTemplate::CallWebhook(a) if config::EXAMPLE_SECRETS.contains(&a.secret.expose()) => {
                Some(Problem {
                    path: format!("{path}.secret"),
                    message: "is the starter's example value, and hubspot.token is a real token: replace it with your own secret, e.g. secret = \"env:PROVISIONING_SECRET\"".into(),
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_problems_come_with_the_rest_of_the_config() {
        let text = r#"
[stripe]
webhook_secrets = ["whsec_x"]
[hubspot]
sandbox = true
colour = "blue"
[[rules]]
name = "a"
on = ["invoice.paid"]
actions = [{ type = "enroll_workflow" }]
"#;
        let err = load_from_str(Some(text), None, &HashMap::new()).expect_err("refused");
        let found: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("hubspot.colour: unknown key"))
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("rules[0].actions[0].workflow_id: missing"))
        );
        assert_eq!(found.len(), 2, "{found:#?}");
    }

    #[test]
    fn the_starter_goes_live_only_without_its_example_secrets() {
        let env = HashMap::from([("HUBSPOT_TOKEN".to_owned(), "pat-na1-real".to_owned())]);
        // As written (embedded sandbox), the starter loads.
        load_from_str(Some(config::STARTER), None, &env).expect("the starter loads");
        // With a real token and nothing else changed, each example secret is named.
        let live = config::STARTER.replace("sandbox = true", "token = \"env:HUBSPOT_TOKEN\"");
        let err = load_from_str(Some(&live), None, &env).expect_err("refused");
        let found: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        for path in [
            "server.admin_token",
            "stripe.webhook_secrets[0]",
            "rules[2].actions[0].secret",
        ] {
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with(&format!("{path}: is the starter's example value"))),
                "{path}: {found:#?}"
            );
        }
        assert_eq!(found.len(), 3, "{found:#?}");
    }
}
