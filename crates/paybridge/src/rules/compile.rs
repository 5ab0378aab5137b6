//! Compiling `[[rules]]` and `[sequences.NAME]` as written into a [`RuleSet`], once at
//! load. Every problem is reported at once, each with its path, e.g.
//! `rules[2].actions[0].workflow_id: missing (…)`; each template and expression is also
//! tried once against a filled-in sample context. Each action kind reads its own keys (in
//! `actions/`) through the helpers here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use minijinja::Environment;
use toml::Value;

use super::actions::{self, ActionTemplate, action_types};
use super::model::{Configured, Rule, RuleSet, Sequence, SequenceStep};
use super::patterns::{TypePatterns, glob_match};
use super::template::{Text, describe_error, environment, is_template, is_unknown_name};
use super::{financial, stripe_types};
use crate::basics::fields::{describe, nearest};
use crate::basics::{At, Fields, Problem, Secret, parse_duration};

const RULE_KEYS: &[&str] = &["name", "on", "if", "actions"];
const SEQUENCE_KEYS: &[&str] = &["cancel_on", "steps"];
const STEP_KEYS: &[&str] = &["after", "actions"];
/// The key every action kind accepts: what it happens once for (a template).
const ONCE_PER: &str = "once_per";

impl RuleSet {
    /// Validates and compiles `[[rules]]` and `[sequences.NAME]` as written. `env` looks up
    /// environment variables for `env:NAME` secrets.
    pub fn compile(
        rules: &[Value],
        sequences: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RuleSet, Vec<Problem>> {
        let mut c = Compiler {
            fields: Fields::new(env),
            env: environment(),
            sequence_names: sequences.keys().cloned().collect(),
            sample: minijinja::Value::from_serialize(super::context::sample()),
        };
        let mut names = BTreeSet::new();
        let mut compiled_rules = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if let Some(rule) = c.rule(i, rule, &mut names) {
                compiled_rules.push(rule);
            }
        }
        let mut compiled_sequences = BTreeMap::new();
        for (name, sequence) in sequences {
            if let Some(sequence) = c.sequence(name, sequence) {
                compiled_sequences.insert(name.clone(), sequence);
            }
        }
        let Compiler { fields, env, .. } = c;
        let problems = fields.into_problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RuleSet {
            rules: compiled_rules,
            sequences: compiled_sequences,
            env,
        })
    }
}

/// Rule and sequence names become part of step keys: `[a-z0-9_-]+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Reads rules and sequences, collecting problems; holds the templates compiled so far.
pub(crate) struct Compiler<'a> {
    /// The shared reader: action kinds read their plain keys through it.
    pub fields: Fields<'a>,
    env: Environment<'static>,
    sequence_names: BTreeSet<String>,
    /// A filled-in context every template and expression is tried against once.
    sample: minijinja::Value,
}

impl Compiler<'_> {
    /// The names of the `[sequences.NAME]` defined (valid or not).
    pub fn sequence_names(&self) -> &BTreeSet<String> {
        &self.sequence_names
    }

    /// A text field, compiled as a template when it holds template syntax.
    pub fn text(&mut self, at: At, key: &str, required: bool, what: &str) -> Option<Text> {
        let source = self.fields.scalar(at, key, required, what)?;
        self.template(&at.path_of(key), source)
    }

    /// A HubSpot id (digits only), as HubSpot shows it in the URL.
    pub fn numeric_id(&mut self, at: At, key: &str, required: bool, what: &str) -> Option<String> {
        let id = self
            .fields
            .scalar(at, key, required, &format!("{what}, e.g. \"123456\""))?;
        let id = id.trim().to_owned();
        if id.bytes().all(|b| b.is_ascii_digit()) {
            Some(id)
        } else {
            self.fields.problem(
                at.path_of(key),
                format!("`{id}` is not {what} (a number, as HubSpot shows it in the URL)"),
            );
            None
        }
    }

    /// A secret an action needs (always required); `what` says what it is for.
    pub fn secret(&mut self, at: At, key: &str, what: &str) -> Option<Secret> {
        let missing = format!("{what}: the value, env:NAME or file:/path");
        self.fields.secret(at, key, Some(&missing))
    }

    /// Compiles `source` under the name `path` (a literal when it has no template syntax);
    /// a template using an unknown filter, test or function is refused at once.
    pub fn template(&mut self, path: &str, source: String) -> Option<Text> {
        if !is_template(&source) {
            return Some(Text::Literal(source));
        }
        if let Err(e) = self.env.add_template_owned(path.to_owned(), source) {
            self.fields.problem(
                path,
                format!("template does not compile: {}", describe_error(&e)),
            );
            return None;
        }
        let trial = self
            .env
            .get_template(path)
            .and_then(|t| t.render(&self.sample));
        if let Err(e) = trial
            && is_unknown_name(&e)
        {
            self.env.remove_template(path);
            self.fields.problem(
                path,
                format!("template does not compile: {}", describe_error(&e)),
            );
            return None;
        }
        Some(Text::Template(path.to_owned()))
    }

    fn unknown_keys(&mut self, at: At, known: &[&str], what: &str) {
        let list = known.join(", ");
        self.fields
            .unknown_keys(at.path, at.table.keys(), known, |hint| {
                format!("unknown key in {what} ({hint}known: {list})")
            });
    }

    fn rule(&mut self, index: usize, value: &Value, names: &mut BTreeSet<String>) -> Option<Rule> {
        let path = format!("rules[{index}]");
        let Some(t) = value.as_table() else {
            self.fields
                .problem(path, "must be a table: [[rules]] with name, on and actions");
            return None;
        };
        let at = At::new(t, &path);
        let before = self.fields.count();
        self.unknown_keys(at, RULE_KEYS, "a rule");
        let name = self.rule_name(at, names);
        let on = self.event_types(&at.path_of("on"), at.get("on"), true);
        let condition = match at.get("if") {
            None => None,
            Some(Value::String(source)) => {
                self.expression(&at.path_of("if"), source);
                Some(source.clone())
            }
            Some(other) => {
                self.fields.problem(
                    at.path_of("if"),
                    format!(
                        "must be a string expression, e.g. \"invoice.billing_reason == \
                         'subscription_create'\", found {}",
                        describe(other)
                    ),
                );
                None
            }
        };
        let actions = self.actions(&at.path_of("actions"), at.get("actions"), false);
        (self.fields.count() == before).then_some(Rule {
            name,
            on,
            condition,
            actions,
        })
    }

    /// A rule's `name`: valid, not reserved, and unique among the rules (`names`).
    fn rule_name(&mut self, at: At, names: &mut BTreeSet<String>) -> String {
        let path = at.path_of("name");
        match at.get("name") {
            None => {
                self.fields
                    .problem(path, "missing (a unique name such as \"onboarding\")");
                String::new()
            }
            Some(Value::String(name)) => {
                if !valid_name(name) {
                    self.fields.problem(
                        path,
                        format!("`{name}` must be lowercase letters, digits, `_` or `-`"),
                    );
                } else if name == financial::RULE {
                    self.fields.problem(
                        path,
                        format!("`{name}` is reserved for the built-in financial tagging"),
                    );
                } else if !names.insert(name.clone()) {
                    self.fields.problem(
                        path,
                        format!(
                            "`{name}` is already the name of an earlier rule (names are part of \
                             every step key, so they must be unique)"
                        ),
                    );
                }
                name.clone()
            }
            Some(other) => {
                self.fields
                    .problem(path, format!("must be a string, found {}", describe(other)));
                String::new()
            }
        }
    }

    fn sequence(&mut self, name: &str, value: &Value) -> Option<Sequence> {
        let path = format!("sequences.{name}");
        let before = self.fields.count();
        if !valid_name(name) {
            self.fields.problem(
                path.clone(),
                "the name must be lowercase letters, digits, `_` or `-`",
            );
        }
        let Some(t) = value.as_table() else {
            self.fields.problem(
                path,
                "must be a table: [sequences.NAME] with cancel_on and steps",
            );
            return None;
        };
        let at = At::new(t, &path);
        self.unknown_keys(at, SEQUENCE_KEYS, "a sequence");
        let cancel_on = self.event_types(&at.path_of("cancel_on"), at.get("cancel_on"), false);
        let steps_path = at.path_of("steps");
        let mut steps: Vec<SequenceStep> = Vec::new();
        match at.get("steps") {
            None => self.fields.problem(
                steps_path,
                "missing (e.g. steps = [{ after = \"0h\", actions = [...] }])",
            ),
            Some(Value::Array(items)) if items.is_empty() => self
                .fields
                .problem(steps_path, "is empty (give at least one step)"),
            Some(Value::Array(items)) => {
                let mut previous: Option<Duration> = None;
                for (i, item) in items.iter().enumerate() {
                    let step_path = format!("{steps_path}[{i}]");
                    if let Some(step) = self.step(&step_path, item, &mut previous) {
                        steps.push(step);
                    }
                }
            }
            Some(other) => self.fields.problem(
                steps_path,
                format!("must be an array of steps, found {}", describe(other)),
            ),
        }
        (self.fields.count() == before).then(|| Sequence {
            name: name.to_owned(),
            cancel_on,
            steps,
        })
    }

    /// One step of a sequence; `previous` is the last step's `after`, which this one must
    /// not come before.
    fn step(
        &mut self,
        path: &str,
        value: &Value,
        previous: &mut Option<Duration>,
    ) -> Option<SequenceStep> {
        let Some(t) = value.as_table() else {
            self.fields.problem(
                path,
                "must be a table, e.g. { after = \"3d\", actions = [...] }",
            );
            return None;
        };
        let at = At::new(t, path);
        self.unknown_keys(at, STEP_KEYS, "a sequence step");
        let after_path = at.path_of("after");
        let after = match at.get("after") {
            None => {
                self.fields.problem(
                    after_path.clone(),
                    "missing (time since the sequence started, e.g. \"0h\" or \"3d\")",
                );
                None
            }
            Some(Value::String(text)) => match parse_duration(text) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.fields.problem(after_path.clone(), e);
                    None
                }
            },
            Some(other) => {
                self.fields.problem(
                    after_path.clone(),
                    format!(
                        "must be a duration such as \"3d\", found {}",
                        describe(other)
                    ),
                );
                None
            }
        };
        if let (Some(after), Some(previous)) = (after, *previous)
            && after < previous
        {
            self.fields.problem(
                after_path,
                format!(
                    "comes before the previous step ({}s < {}s): `after` counts from the start \
                     of the sequence, so steps must be in order",
                    after.as_secs(),
                    previous.as_secs()
                ),
            );
        }
        *previous = after.or(*previous);
        let actions = self.actions(&at.path_of("actions"), at.get("actions"), true);
        Some(SequenceStep {
            after: after.unwrap_or_default(),
            actions,
        })
    }

    fn event_types(&mut self, path: &str, value: Option<&Value>, required: bool) -> TypePatterns {
        let items: Vec<(String, &Value)> = match value {
            None => {
                if required {
                    self.fields.problem(
                        path,
                        "missing (Stripe event types, e.g. [\"invoice.paid\"] or \
                         [\"customer.subscription.*\"])",
                    );
                }
                Vec::new()
            }
            Some(v @ Value::String(_)) => vec![(path.to_owned(), v)],
            Some(Value::Array(items)) => {
                if items.is_empty() && required {
                    self.fields
                        .problem(path, "is empty (name at least one Stripe event type)");
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v))
                    .collect()
            }
            Some(other) => {
                self.fields.problem(
                    path,
                    format!("must be an array of event types, found {}", describe(other)),
                );
                Vec::new()
            }
        };
        let names = items
            .into_iter()
            .filter_map(|(item_path, item)| self.event_type(item_path, item))
            .collect::<Vec<_>>();
        TypePatterns::new(names)
    }

    /// One event type or `*` pattern, which must name (or match) a real Stripe type.
    fn event_type(&mut self, path: String, item: &Value) -> Option<String> {
        let Some(name) = item.as_str() else {
            self.fields
                .problem(path, format!("must be a string, found {}", describe(item)));
            return None;
        };
        if name.contains('*') {
            if !stripe_types::STRIPE_EVENT_TYPES
                .iter()
                .any(|t| glob_match(name, t))
            {
                self.fields
                    .problem(path, format!("`{name}` matches no Stripe event type"));
                return None;
            }
        } else if !stripe_types::is_stripe_type(name) {
            let hint = stripe_types::hint(name)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            self.fields
                .problem(path, format!("`{name}` is not a Stripe event type{hint}"));
            return None;
        }
        Some(name.to_owned())
    }

    fn expression(&mut self, path: &str, source: &str) {
        let result = match self.env.compile_expression_owned(source.to_owned()) {
            Err(e) => Err(e),
            Ok(expr) => match expr.eval(&self.sample) {
                Err(e) if is_unknown_name(&e) => Err(e),
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            self.fields.problem(
                path,
                format!("expression does not compile: {}", describe_error(&e)),
            );
        }
    }

    fn actions(&mut self, path: &str, value: Option<&Value>, in_sequence: bool) -> Vec<Configured> {
        let mut out = Vec::new();
        match value {
            None => self.fields.problem(
                path,
                "missing (a list of actions, e.g. [{ type = \"create_task\", subject = \"…\" }])",
            ),
            Some(Value::Array(items)) if items.is_empty() => self
                .fields
                .problem(path, "is empty (give at least one action)"),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(action) = self.action(&format!("{path}[{i}]"), item, in_sequence) {
                        out.push(action);
                    }
                }
            }
            Some(other) => self.fields.problem(
                path,
                format!(
                    "must be an array of action tables, found {}",
                    describe(other)
                ),
            ),
        }
        out
    }

    /// One action: its `type`, no unknown keys, then the kind's own keys and `once_per`
    /// (every kind takes it). None when anything about it is wrong.
    fn action(&mut self, p: &str, value: &Value, in_sequence: bool) -> Option<Configured> {
        let known_types = || action_types().collect::<Vec<_>>().join(", ");
        let Some(t) = value.as_table() else {
            self.fields.problem(
                p,
                "must be a table, e.g. { type = \"create_task\", subject = \"…\" }",
            );
            return None;
        };
        let at = At::new(t, p);
        let kind = match at.get("type") {
            None => {
                self.fields.problem(
                    at.path_of("type"),
                    format!("missing (one of: {})", known_types()),
                );
                return None;
            }
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => {
                self.fields.problem(
                    at.path_of("type"),
                    format!(
                        "must be a string (one of: {}), found {}",
                        known_types(),
                        describe(other)
                    ),
                );
                return None;
            }
        };
        let Some(keys) = actions::keys(kind) else {
            let hint = nearest(kind, action_types())
                .map(|k| format!("did you mean {k}? "))
                .unwrap_or_default();
            self.fields.problem(
                at.path_of("type"),
                format!(
                    "`{kind}` is not an action type ({hint}known: {})",
                    known_types()
                ),
            );
            return None;
        };
        let before = self.fields.count();
        let list = keys.join(", ");
        self.fields.unknown_keys(
            p,
            t.keys().filter(|k| *k != "type" && *k != ONCE_PER),
            keys,
            |hint| format!("unknown key for {kind} ({hint}known: type, once_per, {list})"),
        );
        let action = ActionTemplate::parse(self, kind, at, in_sequence);
        let once_per = self.text(at, ONCE_PER, false, "what the action happens once for");
        (self.fields.count() == before)
            .then_some(action)
            .flatten()
            .map(|action| Configured { action, once_per })
    }
}

#[cfg(test)]
mod tests;
