//! `[[rules]]` and `[sequences.NAME]`: validated and compiled once at start, then turned
//! into keyed steps for each event. Pure: no store, no HubSpot, no clock (callers pass
//! `now_ms`).
//!
//! Templates (text fields) and expressions (`if`) share one minijinja environment with
//! lenient undefined values: a missing value renders as an empty string, and `none` too.
//! Every problem in the configuration is reported at once, each with its path, e.g.
//! `rules[2].actions[0].workflow_id: missing (…)`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value as Json;
use toml::{Table, Value};

use super::patterns::{TypePatterns, glob_match};
use super::plan::{Action, Owner, Step, step_key};
use super::{financial, stripe_types};
use crate::basics::{Problem, Secret, parse_duration, resolve_secret};
use crate::domain::Money;

/// Action types and the keys each accepts (besides `type`).
const ACTIONS: &[(&str, &[&str])] = &[
    ("update_contact", &["properties"]),
    (
        "enroll_workflow",
        &["workflow_id", "trigger_property", "trigger_value"],
    ),
    ("add_to_list", &["list_id"]),
    ("remove_from_list", &["list_id"]),
    (
        "create_task",
        &[
            "subject",
            "body",
            "due_in",
            "priority",
            "task_type",
            "owner",
        ],
    ),
    (
        "create_ticket",
        &[
            "subject", "content", "pipeline", "stage", "priority", "category", "owner",
        ],
    ),
    (
        "create_deal",
        &["name", "amount", "pipeline", "stage", "close_date", "owner"],
    ),
    ("create_note", &["body"]),
    ("notify_slack", &["url", "text"]),
    ("call_webhook", &["url", "secret", "payload"]),
    ("start_sequence", &["sequence"]),
    ("stop_sequence", &["sequence"]),
];

const RULE_KEYS: &[&str] = &["name", "on", "if", "actions"];
const SEQUENCE_KEYS: &[&str] = &["cancel_on", "steps"];
const STEP_KEYS: &[&str] = &["after", "actions"];

/// HubSpot's default lifecycle stages, in their forward order.
const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

/// HubSpot's own contact properties: `setup` never creates these.
const HUBSPOT_CONTACT_DEFAULTS: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "website",
    "jobtitle",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
];

/// Every action type of SPEC §5.
pub fn action_types() -> impl Iterator<Item = &'static str> {
    ACTIONS.iter().map(|(name, _)| *name)
}

/// The compiled rules and sequences of a configuration.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// In config order: plans list their steps in this order.
    pub rules: Vec<Rule>,
    pub sequences: BTreeMap<String, Sequence>,
    /// Holds every compiled template (named by its config path).
    env: Environment<'static>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub on: TypePatterns,
    /// The `if` expression's source (compiled and checked at load).
    pub condition: Option<String>,
    pub actions: Vec<ActionTemplate>,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    pub name: String,
    /// Event types (of the same customer) that cancel the pending steps.
    pub cancel_on: TypePatterns,
    /// Non-empty; `after` never decreases. The last step is where a human takes over.
    pub steps: Vec<SequenceStep>,
}

#[derive(Debug, Clone)]
pub struct SequenceStep {
    /// Counted from the start of the sequence (the triggering event), not from the
    /// previous step: `0h`, `3d`, `7d` run on day 0, 3 and 7.
    pub after: Duration,
    pub actions: Vec<ActionTemplate>,
}

impl Sequence {
    /// When the first step runs, counted from the triggering event.
    pub fn first_after(&self) -> Duration {
        self.steps.first().map_or(Duration::ZERO, |s| s.after)
    }

    /// The wait between step `index` and the next one (None after the last step).
    pub fn delay_after(&self, index: usize) -> Option<Duration> {
        let this = self.steps.get(index)?;
        let next = self.steps.get(index + 1)?;
        Some(next.after.saturating_sub(this.after))
    }
}

/// A text field: literal, or a template compiled into the rule set's environment under
/// the field's config path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Literal(String),
    Template(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerSpec {
    None,
    ContactOwner,
    Email(String),
    Id(String),
    /// Rendered, then read as `contact_owner`, an email or an id (empty = unassigned).
    Template(Text),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseDate {
    /// `now` or a duration from the time of planning.
    In(Duration),
    /// A fixed `YYYY-MM-DD` (midnight UTC), unix ms.
    At(i64),
}

/// A `call_webhook` payload: a TOML value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadValue {
    Text(Text),
    Literal(Json),
    Array(Vec<PayloadValue>),
    Object(BTreeMap<String, PayloadValue>),
}

/// One configured action, before rendering. Rendering fills the templates from an
/// event's context and yields a [`super::plan::Action`].
#[derive(Debug, Clone, PartialEq)]
pub enum ActionTemplate {
    /// The worker keeps `lifecyclestage` moving forward only.
    UpdateContact {
        properties: BTreeMap<String, Text>,
    },
    EnrollWorkflow {
        workflow_id: Option<String>,
        trigger_property: Option<(String, Text)>,
    },
    AddToList {
        list_id: String,
    },
    RemoveFromList {
        list_id: String,
    },
    CreateTask {
        subject: Text,
        body: Option<Text>,
        due_in: Duration,
        priority: Option<String>,
        task_type: Option<String>,
        owner: OwnerSpec,
    },
    CreateTicket {
        subject: Text,
        content: Option<Text>,
        pipeline: String,
        stage: String,
        priority: Option<String>,
        category: Option<String>,
        owner: OwnerSpec,
    },
    CreateDeal {
        name: Text,
        /// None: the payment's amount in major units.
        amount: Option<Text>,
        pipeline: String,
        stage: String,
        close_date: Option<CloseDate>,
        owner: OwnerSpec,
    },
    CreateNote {
        body: Text,
    },
    NotifySlack {
        url: Secret,
        text: Text,
    },
    CallWebhook {
        url: Text,
        secret: Secret,
        /// None: the whole (sanitised) context.
        payload: Option<PayloadValue>,
    },
    StartSequence {
        name: String,
    },
    StopSequence {
        name: String,
    },
}

/// Steps planned for an event, with what went wrong on the way (an `if` that failed to
/// evaluate counts as false; an action whose template failed to render is left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Planned {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            sequences: BTreeMap::new(),
            env: environment(),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // `none` (a JSON null in the context) prints as nothing, like an undefined value.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

impl RuleSet {
    /// Validates and compiles `[[rules]]` and `[sequences.NAME]` as written. `env` looks up
    /// environment variables for `env:NAME` secrets.
    pub fn compile(
        rules: &[Value],
        sequences: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RuleSet, Vec<Problem>> {
        let mut c = Compiler {
            problems: Vec::new(),
            env: environment(),
            lookup: env,
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
        if !c.problems.is_empty() {
            return Err(c.problems);
        }
        Ok(RuleSet {
            rules: compiled_rules,
            sequences: compiled_sequences,
            env: c.env,
        })
    }

    /// Every event type a rule or a sequence's `cancel_on` names (intake stores the others
    /// as `ignored`, unless the built-in financial tagging wants them).
    pub fn handled_types(&self) -> TypePatterns {
        let mut types = TypePatterns::default();
        for rule in &self.rules {
            types.extend(&rule.on);
        }
        for sequence in self.sequences.values() {
            types.extend(&sequence.cancel_on);
        }
        types
    }

    /// The steps of the rules that match `event_type` and whose `if` holds, in config
    /// order; keys `{event_id}:{rule}:{action_index}`.
    pub fn plan(&self, event_id: &str, event_type: &str, context: &Json, now_ms: i64) -> Planned {
        let ctx = minijinja::Value::from_serialize(context);
        let mut out = Planned::default();
        for rule in &self.rules {
            if !rule.on.matches(event_type) {
                continue;
            }
            if let Some(condition) = &rule.condition {
                match self.eval(condition, &ctx) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        out.warnings.push(format!(
                            "rule {}: `if` could not be evaluated ({e}); counted as false",
                            rule.name
                        ));
                        continue;
                    }
                }
            }
            self.render_actions(
                &rule.name,
                &rule.actions,
                event_id,
                context,
                &ctx,
                now_ms,
                &mut out,
            );
        }
        out
    }

    pub fn sequence(&self, name: &str) -> Option<&Sequence> {
        self.sequences.get(name)
    }

    /// The sequences an event of this type cancels.
    pub fn sequences_cancelled_by(&self, event_type: &str) -> Vec<&str> {
        self.sequences
            .values()
            .filter(|s| s.cancel_on.matches(event_type))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Step `step_index` of a sequence, rendered from the triggering event's context, and
    /// the wait until the next step (relative to this step's scheduled time; None after the
    /// last step). Keys `{trigger_event_id}:seq:{name}:{step_index}:{action_index}`.
    /// None: no such sequence or step.
    pub fn sequence_step(
        &self,
        name: &str,
        step_index: usize,
        trigger_event_id: &str,
        context: &Json,
        now_ms: i64,
    ) -> Option<(Vec<Step>, Option<Duration>)> {
        self.sequence_step_planned(name, step_index, trigger_event_id, context, now_ms)
            .map(|(planned, next)| (planned.steps, next))
    }

    /// [`Self::sequence_step`], with the warnings of actions that failed to render.
    pub fn sequence_step_planned(
        &self,
        name: &str,
        step_index: usize,
        trigger_event_id: &str,
        context: &Json,
        now_ms: i64,
    ) -> Option<(Planned, Option<Duration>)> {
        let sequence = self.sequences.get(name)?;
        let step = sequence.steps.get(step_index)?;
        let rule = format!("seq:{name}:{step_index}");
        let ctx = minijinja::Value::from_serialize(context);
        let mut out = Planned::default();
        self.render_actions(
            &rule,
            &step.actions,
            trigger_event_id,
            context,
            &ctx,
            now_ms,
            &mut out,
        );
        Some((out, sequence.delay_after(step_index)))
    }

    /// Contact properties the actions write that are neither HubSpot's defaults nor
    /// paybridge's built-in `stripe_*` properties: `paybridge setup` creates them (as text).
    pub fn custom_properties(&self) -> Vec<(&'static str, String)> {
        let builtin: BTreeSet<String> = super::properties::builtin("stripe_customer_id")
            .into_iter()
            .map(|d| d.name)
            .collect();
        let mut names = BTreeSet::new();
        for action in self.all_actions() {
            match action {
                ActionTemplate::UpdateContact { properties } => {
                    names.extend(properties.keys().cloned());
                }
                ActionTemplate::EnrollWorkflow {
                    trigger_property: Some((name, _)),
                    ..
                } => {
                    names.insert(name.clone());
                }
                _ => {}
            }
        }
        names
            .into_iter()
            .filter(|n| !HUBSPOT_CONTACT_DEFAULTS.contains(&n.as_str()) && !builtin.contains(n))
            .map(|n| ("contacts", n))
            .collect()
    }

    /// The HubSpot scopes the configured actions need (research/hubspot.md §1). Contacts
    /// read/write always (tasks and notes need no scope of their own).
    pub fn scopes_needed(&self) -> BTreeSet<&'static str> {
        let mut scopes =
            BTreeSet::from(["crm.objects.contacts.read", "crm.objects.contacts.write"]);
        for action in self.all_actions() {
            let owner = match action {
                ActionTemplate::AddToList { .. } | ActionTemplate::RemoveFromList { .. } => {
                    scopes.extend(["crm.lists.read", "crm.lists.write"]);
                    None
                }
                ActionTemplate::EnrollWorkflow {
                    workflow_id: Some(_),
                    ..
                } => {
                    scopes.insert("automation");
                    None
                }
                ActionTemplate::CreateTicket { owner, .. } => {
                    scopes.insert("tickets");
                    Some(owner)
                }
                ActionTemplate::CreateDeal { owner, .. } => {
                    // Read too: a retried create finds its deal by `paybridge_key`.
                    scopes.extend(["crm.objects.deals.read", "crm.objects.deals.write"]);
                    Some(owner)
                }
                ActionTemplate::CreateTask { owner, .. } => Some(owner),
                _ => None,
            };
            // Owner emails are resolved through the owners API.
            if matches!(owner, Some(OwnerSpec::Email(_) | OwnerSpec::Template(_))) {
                scopes.insert("crm.objects.owners.read");
            }
        }
        scopes
    }

    /// The object types the actions create records of (`tasks`, `notes`, `tickets`,
    /// `deals`).
    pub fn created_object_types(&self) -> BTreeSet<&'static str> {
        self.all_actions()
            .filter_map(|action| match action {
                ActionTemplate::CreateTask { .. } => Some("tasks"),
                ActionTemplate::CreateNote { .. } => Some("notes"),
                ActionTemplate::CreateTicket { .. } => Some("tickets"),
                ActionTemplate::CreateDeal { .. } => Some("deals"),
                _ => None,
            })
            .collect()
    }

    fn all_actions(&self) -> impl Iterator<Item = &ActionTemplate> {
        self.rules.iter().flat_map(|r| r.actions.iter()).chain(
            self.sequences
                .values()
                .flat_map(|s| s.steps.iter().flat_map(|step| step.actions.iter())),
        )
    }

    fn eval(&self, condition: &str, ctx: &minijinja::Value) -> Result<bool, String> {
        let expr = self
            .env
            .compile_expression_owned(condition.to_owned())
            .map_err(|e| describe(&e))?;
        expr.eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| describe(&e))
    }

    #[allow(clippy::too_many_arguments)]
    fn render_actions(
        &self,
        rule: &str,
        actions: &[ActionTemplate],
        event_id: &str,
        context: &Json,
        ctx: &minijinja::Value,
        now_ms: i64,
        out: &mut Planned,
    ) {
        for (index, action) in actions.iter().enumerate() {
            match self.render_action(action, context, ctx, now_ms) {
                Ok(action) => out.steps.push(Step {
                    key: step_key(event_id, rule, index),
                    rule: rule.to_owned(),
                    index,
                    action,
                }),
                Err(e) => out.warnings.push(format!(
                    "rule {rule}, action {index}: {e}; the action was left out"
                )),
            }
        }
    }

    fn render(&self, text: &Text, ctx: &minijinja::Value) -> Result<String, String> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => self
                .env
                .get_template(name)
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("{name}: {}", describe(&e))),
        }
    }

    /// An optional text; rendering to nothing counts as absent.
    fn render_opt(
        &self,
        text: Option<&Text>,
        ctx: &minijinja::Value,
    ) -> Result<Option<String>, String> {
        let Some(text) = text else {
            return Ok(None);
        };
        let rendered = self.render(text, ctx)?;
        Ok((!rendered.trim().is_empty()).then_some(rendered))
    }

    fn render_owner(&self, owner: &OwnerSpec, ctx: &minijinja::Value) -> Result<Owner, String> {
        Ok(match owner {
            OwnerSpec::None => Owner::None,
            OwnerSpec::ContactOwner => Owner::ContactOwner,
            OwnerSpec::Email(e) => Owner::Email(e.clone()),
            OwnerSpec::Id(id) => Owner::Id(id.clone()),
            OwnerSpec::Template(t) => {
                let rendered = self.render(t, ctx)?;
                match parse_owner(rendered.trim()) {
                    Some(OwnerSpec::ContactOwner) => Owner::ContactOwner,
                    Some(OwnerSpec::Email(e)) => Owner::Email(e),
                    Some(OwnerSpec::Id(id)) => Owner::Id(id),
                    _ if rendered.trim().is_empty() => Owner::None,
                    _ => {
                        return Err(format!(
                            "owner `{}` is not contact_owner, an email or an owner id",
                            rendered.trim()
                        ));
                    }
                }
            }
        })
    }

    fn render_payload(&self, value: &PayloadValue, ctx: &minijinja::Value) -> Result<Json, String> {
        Ok(match value {
            PayloadValue::Text(t) => Json::String(self.render(t, ctx)?),
            PayloadValue::Literal(v) => v.clone(),
            PayloadValue::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.render_payload(v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            PayloadValue::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_payload(v, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    fn render_action(
        &self,
        action: &ActionTemplate,
        context: &Json,
        ctx: &minijinja::Value,
        now_ms: i64,
    ) -> Result<Action, String> {
        Ok(match action {
            ActionTemplate::UpdateContact { properties } => Action::UpdateContact {
                properties: properties
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v, ctx)?)))
                    .collect::<Result<_, String>>()?,
                aggregates: BTreeMap::new(),
            },
            ActionTemplate::EnrollWorkflow {
                workflow_id,
                trigger_property,
            } => Action::EnrollWorkflow {
                workflow_id: workflow_id.clone(),
                trigger_property: match trigger_property {
                    Some((name, value)) => Some((name.clone(), self.render(value, ctx)?)),
                    None => None,
                },
            },
            ActionTemplate::AddToList { list_id } => Action::AddToList {
                list_id: list_id.clone(),
            },
            ActionTemplate::RemoveFromList { list_id } => Action::RemoveFromList {
                list_id: list_id.clone(),
            },
            ActionTemplate::CreateTask {
                subject,
                body,
                due_in,
                priority,
                task_type,
                owner,
            } => Action::CreateTask {
                subject: self.render(subject, ctx)?,
                body: self.render_opt(body.as_ref(), ctx)?,
                due_at_ms: now_ms.saturating_add(millis(*due_in)),
                priority: priority.clone(),
                task_type: task_type.clone(),
                owner: self.render_owner(owner, ctx)?,
            },
            ActionTemplate::CreateTicket {
                subject,
                content,
                pipeline,
                stage,
                priority,
                category,
                owner,
            } => Action::CreateTicket {
                subject: self.render(subject, ctx)?,
                content: self.render_opt(content.as_ref(), ctx)?,
                pipeline: pipeline.clone(),
                stage: stage.clone(),
                priority: priority.clone(),
                category: category.clone(),
                owner: self.render_owner(owner, ctx)?,
            },
            ActionTemplate::CreateDeal {
                name,
                amount,
                pipeline,
                stage,
                close_date,
                owner,
            } => Action::CreateDeal {
                name: self.render(name, ctx)?,
                amount: match amount {
                    Some(t) => self.render_opt(Some(t), ctx)?.map(|a| a.trim().to_owned()),
                    None => payment_amount(context),
                },
                pipeline: pipeline.clone(),
                stage: stage.clone(),
                close_date_ms: close_date.as_ref().map(|d| match d {
                    CloseDate::In(d) => now_ms.saturating_add(millis(*d)),
                    CloseDate::At(ms) => *ms,
                }),
                owner: self.render_owner(owner, ctx)?,
            },
            ActionTemplate::CreateNote { body } => Action::CreateNote {
                body: self.render(body, ctx)?,
            },
            ActionTemplate::NotifySlack { url, text } => Action::NotifySlack {
                url: url.clone(),
                text: self.render(text, ctx)?,
            },
            ActionTemplate::CallWebhook {
                url,
                secret,
                payload,
            } => {
                let url = self.render(url, ctx)?.trim().to_owned();
                if !is_http_url(&url) {
                    return Err(format!("call_webhook url `{url}` is not an http(s):// URL"));
                }
                Action::CallWebhook {
                    url,
                    secret: secret.clone(),
                    payload: match payload {
                        Some(p) => self.render_payload(p, ctx)?,
                        None => context.clone(),
                    },
                }
            }
            ActionTemplate::StartSequence { name } => Action::StartSequence { name: name.clone() },
            ActionTemplate::StopSequence { name } => Action::StopSequence { name: name.clone() },
        })
    }
}

/// The payment's amount in major units (`49.00`), from the context.
fn payment_amount(context: &Json) -> Option<String> {
    let minor = context.get("amount_minor")?.as_i64()?;
    let currency = context.get("currency")?.as_str()?;
    Some(Money::new(minor, currency).major_string())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len()
}

fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// A minijinja error in one line: kind, detail and (for multi-line sources) the line.
fn describe(e: &minijinja::Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line().filter(|l| *l > 1) {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// Errors a trial render finds that no event could fix.
fn is_unknown_name(e: &minijinja::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
    )
}

/// Rule and sequence names become part of step keys: `[a-z0-9_-]+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_property_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_owner(text: &str) -> Option<OwnerSpec> {
    if text == "contact_owner" {
        Some(OwnerSpec::ContactOwner)
    } else if text.contains('@') && !text.contains(char::is_whitespace) {
        Some(OwnerSpec::Email(text.to_ascii_lowercase()))
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Some(OwnerSpec::Id(text.to_owned()))
    } else {
        None
    }
}

fn describe_value(value: &Value) -> &'static str {
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

fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (c, stripe_types::edit_distance(name, c)))
        .filter(|(_, d)| *d <= 3)
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

struct Compiler<'a> {
    problems: Vec<Problem>,
    env: Environment<'static>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    sequence_names: BTreeSet<String>,
    /// A filled-in context every template and expression is tried against once.
    sample: minijinja::Value,
}

impl Compiler<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, path: &str, table: &Table, known: &[&str], what: &str) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let hint = nearest(key, known.iter().copied())
                    .map(|k| format!("did you mean {k}? "))
                    .unwrap_or_default();
                self.problem(
                    format!("{path}.{key}"),
                    format!("unknown key in {what} ({hint}known: {})", known.join(", ")),
                );
            }
        }
    }

    fn rule(&mut self, index: usize, value: &Value, names: &mut BTreeSet<String>) -> Option<Rule> {
        let path = format!("rules[{index}]");
        let Some(t) = value.as_table() else {
            self.problem(path, "must be a table: [[rules]] with name, on and actions");
            return None;
        };
        let before = self.problems.len();
        self.unknown_keys(&path, t, RULE_KEYS, "a rule");
        let name_path = format!("{path}.name");
        let name = match t.get("name") {
            None => {
                self.problem(name_path, "missing (a unique name such as \"onboarding\")");
                String::new()
            }
            Some(Value::String(name)) => {
                if !valid_name(name) {
                    self.problem(
                        name_path,
                        format!("`{name}` must be lowercase letters, digits, `_` or `-`"),
                    );
                } else if name == financial::RULE {
                    self.problem(
                        name_path,
                        format!("`{name}` is reserved for the built-in financial tagging"),
                    );
                } else if !names.insert(name.clone()) {
                    self.problem(
                        name_path,
                        format!(
                            "`{name}` is already the name of an earlier rule (names are part of \
                             every step key, so they must be unique)"
                        ),
                    );
                }
                name.clone()
            }
            Some(other) => {
                self.problem(
                    name_path,
                    format!("must be a string, found {}", describe_value(other)),
                );
                String::new()
            }
        };
        let on = self.event_types(&format!("{path}.on"), t.get("on"), true);
        let condition = match t.get("if") {
            None => None,
            Some(Value::String(source)) => {
                self.expression(&format!("{path}.if"), source);
                Some(source.clone())
            }
            Some(other) => {
                self.problem(
                    format!("{path}.if"),
                    format!(
                        "must be a string expression, e.g. \"invoice.billing_reason == \
                         'subscription_create'\", found {}",
                        describe_value(other)
                    ),
                );
                None
            }
        };
        let actions = self.actions(&format!("{path}.actions"), t.get("actions"), None);
        (self.problems.len() == before).then_some(Rule {
            name,
            on,
            condition,
            actions,
        })
    }

    fn sequence(&mut self, name: &str, value: &Value) -> Option<Sequence> {
        let path = format!("sequences.{name}");
        let before = self.problems.len();
        if !valid_name(name) {
            self.problem(
                path.clone(),
                "the name must be lowercase letters, digits, `_` or `-`",
            );
        }
        let Some(t) = value.as_table() else {
            self.problem(
                path,
                "must be a table: [sequences.NAME] with cancel_on and steps",
            );
            return None;
        };
        self.unknown_keys(&path, t, SEQUENCE_KEYS, "a sequence");
        let cancel_on = self.event_types(&format!("{path}.cancel_on"), t.get("cancel_on"), false);
        let steps_path = format!("{path}.steps");
        let mut steps: Vec<SequenceStep> = Vec::new();
        match t.get("steps") {
            None => self.problem(
                steps_path,
                "missing (e.g. steps = [{ after = \"0h\", actions = [...] }])",
            ),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem(steps_path, "is empty (give at least one step)")
            }
            Some(Value::Array(items)) => {
                let mut previous: Option<Duration> = None;
                for (i, item) in items.iter().enumerate() {
                    let step_path = format!("{steps_path}[{i}]");
                    let Some(st) = item.as_table() else {
                        self.problem(
                            step_path,
                            "must be a table, e.g. { after = \"3d\", actions = [...] }",
                        );
                        continue;
                    };
                    self.unknown_keys(&step_path, st, STEP_KEYS, "a sequence step");
                    let after_path = format!("{step_path}.after");
                    let after = match st.get("after") {
                        None => {
                            self.problem(
                                after_path,
                                "missing (time since the sequence started, e.g. \"0h\" or \"3d\")",
                            );
                            None
                        }
                        Some(Value::String(text)) => match parse_duration(text) {
                            Ok(d) => Some(d),
                            Err(e) => {
                                self.problem(after_path, e);
                                None
                            }
                        },
                        Some(other) => {
                            self.problem(
                                after_path,
                                format!(
                                    "must be a duration such as \"3d\", found {}",
                                    describe_value(other)
                                ),
                            );
                            None
                        }
                    };
                    if let (Some(after), Some(previous)) = (after, previous)
                        && after < previous
                    {
                        self.problem(
                            format!("{step_path}.after"),
                            format!(
                                "comes before the previous step ({}s < {}s): `after` counts \
                                 from the start of the sequence, so steps must be in order",
                                after.as_secs(),
                                previous.as_secs()
                            ),
                        );
                    }
                    previous = after.or(previous);
                    let actions = self.actions(
                        &format!("{step_path}.actions"),
                        st.get("actions"),
                        Some(name),
                    );
                    steps.push(SequenceStep {
                        after: after.unwrap_or_default(),
                        actions,
                    });
                }
            }
            Some(other) => self.problem(
                steps_path,
                format!("must be an array of steps, found {}", describe_value(other)),
            ),
        }
        (self.problems.len() == before).then(|| Sequence {
            name: name.to_owned(),
            cancel_on,
            steps,
        })
    }

    fn event_types(&mut self, path: &str, value: Option<&Value>, required: bool) -> TypePatterns {
        let items: Vec<(String, &Value)> = match value {
            None => {
                if required {
                    self.problem(
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
                    self.problem(path, "is empty (name at least one Stripe event type)");
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v))
                    .collect()
            }
            Some(other) => {
                self.problem(
                    path,
                    format!(
                        "must be an array of event types, found {}",
                        describe_value(other)
                    ),
                );
                Vec::new()
            }
        };
        let mut names = Vec::new();
        for (item_path, item) in items {
            let Some(name) = item.as_str() else {
                self.problem(
                    item_path,
                    format!("must be a string, found {}", describe_value(item)),
                );
                continue;
            };
            if name.contains('*') {
                if !stripe_types::STRIPE_EVENT_TYPES
                    .iter()
                    .any(|t| glob_match(name, t))
                {
                    self.problem(item_path, format!("`{name}` matches no Stripe event type"));
                    continue;
                }
            } else if !stripe_types::is_stripe_type(name) {
                let hint = stripe_types::hint(name)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                self.problem(
                    item_path,
                    format!("`{name}` is not a Stripe event type{hint}"),
                );
                continue;
            }
            names.push(name.to_owned());
        }
        TypePatterns::new(names)
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
            self.problem(
                path,
                format!("expression does not compile: {}", describe(&e)),
            );
        }
    }

    fn template(&mut self, path: &str, source: String) -> Option<Text> {
        if !is_template(&source) {
            return Some(Text::Literal(source));
        }
        if let Err(e) = self.env.add_template_owned(path.to_owned(), source) {
            self.problem(path, format!("template does not compile: {}", describe(&e)));
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
            self.problem(path, format!("template does not compile: {}", describe(&e)));
            return None;
        }
        Some(Text::Template(path.to_owned()))
    }

    fn actions(
        &mut self,
        path: &str,
        value: Option<&Value>,
        sequence: Option<&str>,
    ) -> Vec<ActionTemplate> {
        let mut out = Vec::new();
        match value {
            None => self.problem(
                path,
                "missing (a list of actions, e.g. [{ type = \"create_task\", subject = \"…\" }])",
            ),
            Some(Value::Array(items)) if items.is_empty() => {
                self.problem(path, "is empty (give at least one action)")
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(action) = self.action(&format!("{path}[{i}]"), item, sequence) {
                        out.push(action);
                    }
                }
            }
            Some(other) => self.problem(
                path,
                format!(
                    "must be an array of action tables, found {}",
                    describe_value(other)
                ),
            ),
        }
        out
    }

    fn action(&mut self, p: &str, value: &Value, sequence: Option<&str>) -> Option<ActionTemplate> {
        let known_types = || action_types().collect::<Vec<_>>().join(", ");
        let Some(t) = value.as_table() else {
            self.problem(
                p,
                "must be a table, e.g. { type = \"create_task\", subject = \"…\" }",
            );
            return None;
        };
        let kind = match t.get("type") {
            None => {
                self.problem(
                    format!("{p}.type"),
                    format!("missing (one of: {})", known_types()),
                );
                return None;
            }
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => {
                self.problem(
                    format!("{p}.type"),
                    format!(
                        "must be a string (one of: {}), found {}",
                        known_types(),
                        describe_value(other)
                    ),
                );
                return None;
            }
        };
        let Some((_, keys)) = ACTIONS.iter().find(|(name, _)| *name == kind) else {
            let hint = nearest(kind, action_types())
                .map(|k| format!("did you mean {k}? "))
                .unwrap_or_default();
            self.problem(
                format!("{p}.type"),
                format!(
                    "`{kind}` is not an action type ({hint}known: {})",
                    known_types()
                ),
            );
            return None;
        };
        let before = self.problems.len();
        for key in t.keys() {
            if key != "type" && !keys.contains(&key.as_str()) {
                let hint = nearest(key, keys.iter().copied())
                    .map(|k| format!("did you mean {k}? "))
                    .unwrap_or_default();
                self.problem(
                    format!("{p}.{key}"),
                    format!(
                        "unknown key for {kind} ({hint}known: type, {})",
                        keys.join(", ")
                    ),
                );
            }
        }
        let action = match kind {
            "update_contact" => self.update_contact(p, t),
            "enroll_workflow" => self.enroll_workflow(p, t),
            "add_to_list" | "remove_from_list" => {
                let list_id = self.numeric_id(p, t, "list_id", "the list's id, e.g. \"1\"");
                list_id.map(|list_id| {
                    if kind == "add_to_list" {
                        ActionTemplate::AddToList { list_id }
                    } else {
                        ActionTemplate::RemoveFromList { list_id }
                    }
                })
            }
            "create_task" => {
                let subject = self.text(p, t, "subject", true, "the task's title");
                let body = self.text(p, t, "body", false, "the task's notes");
                let due_in = self.duration(p, t, "due_in").unwrap_or_default();
                let priority = self.choice(p, t, "priority", &["LOW", "MEDIUM", "HIGH"]);
                let task_type = self.choice(p, t, "task_type", &["EMAIL", "CALL", "TODO"]);
                let owner = self.owner(p, t);
                subject.map(|subject| ActionTemplate::CreateTask {
                    subject,
                    body,
                    due_in,
                    priority,
                    task_type,
                    owner,
                })
            }
            "create_ticket" => {
                let subject = self.text(p, t, "subject", true, "the ticket's name");
                let content = self.text(p, t, "content", false, "the ticket's description");
                let pipeline = self.scalar(p, t, "pipeline", false, "a ticket pipeline id");
                let stage = self.scalar(p, t, "stage", false, "a ticket stage id");
                let priority = self.choice(p, t, "priority", &["LOW", "MEDIUM", "HIGH"]);
                let category = self.scalar(p, t, "category", false, "e.g. BILLING_ISSUE");
                let owner = self.owner(p, t);
                subject.map(|subject| ActionTemplate::CreateTicket {
                    subject,
                    content,
                    pipeline: pipeline.unwrap_or_else(|| "0".into()),
                    stage: stage.unwrap_or_else(|| "1".into()),
                    priority,
                    category,
                    owner,
                })
            }
            "create_deal" => {
                let name = self.text(p, t, "name", true, "the deal's name");
                let amount = self.text(p, t, "amount", false, "major units, e.g. \"49.00\"");
                let pipeline = self.scalar(p, t, "pipeline", false, "a deal pipeline id");
                let stage = self.scalar(p, t, "stage", false, "a deal stage id");
                let close_date = self.close_date(p, t);
                let owner = self.owner(p, t);
                name.map(|name| ActionTemplate::CreateDeal {
                    name,
                    amount,
                    pipeline: pipeline.unwrap_or_else(|| "default".into()),
                    stage: stage.unwrap_or_else(|| "closedwon".into()),
                    close_date,
                    owner,
                })
            }
            "create_note" => self
                .text(p, t, "body", true, "the note's text")
                .map(|body| ActionTemplate::CreateNote { body }),
            "notify_slack" => {
                let url = self.secret(p, t, "url", "a Slack incoming-webhook URL");
                if let Some(url) = &url
                    && !is_http_url(url.expose())
                {
                    // The URL is the secret: never echo it.
                    self.problem(
                        format!("{p}.url"),
                        "is not an http(s):// URL (value not shown: it is a secret)",
                    );
                }
                let text = self.text(p, t, "text", true, "the message");
                url.zip(text)
                    .map(|(url, text)| ActionTemplate::NotifySlack { url, text })
            }
            "call_webhook" => {
                let url = self.text(p, t, "url", true, "your app's endpoint, https://…");
                if let Some(Text::Literal(u)) = &url
                    && !is_http_url(u)
                {
                    self.problem(
                        format!("{p}.url"),
                        format!("`{u}` is not an http(s):// URL"),
                    );
                }
                let secret = self.secret(p, t, "secret", "the key the request is signed with");
                let payload = match t.get("payload") {
                    None => None,
                    Some(v @ Value::Table(_)) => self.payload(&format!("{p}.payload"), v),
                    Some(other) => {
                        self.problem(
                            format!("{p}.payload"),
                            format!("must be a table, found {}", describe_value(other)),
                        );
                        None
                    }
                };
                url.zip(secret)
                    .map(|(url, secret)| ActionTemplate::CallWebhook {
                        url,
                        secret,
                        payload,
                    })
            }
            "start_sequence" | "stop_sequence" => {
                let name = self.scalar(p, t, "sequence", true, "the name of a [sequences.NAME]");
                if let Some(name) = &name
                    && !self.sequence_names.contains(name)
                {
                    let defined = if self.sequence_names.is_empty() {
                        "no [sequences.NAME] is defined".to_owned()
                    } else {
                        format!(
                            "defined: {}",
                            self.sequence_names
                                .iter()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    self.problem(
                        format!("{p}.sequence"),
                        format!("`{name}` is not a defined sequence ({defined})"),
                    );
                }
                if kind == "start_sequence" && sequence.is_some() {
                    self.problem(
                        format!("{p}.type"),
                        "start_sequence cannot be used inside a sequence (start sequences from \
                         rules)",
                    );
                }
                name.map(|name| {
                    if kind == "start_sequence" {
                        ActionTemplate::StartSequence { name }
                    } else {
                        ActionTemplate::StopSequence { name }
                    }
                })
            }
            _ => None,
        };
        if self.problems.len() > before {
            return None;
        }
        action
    }

    fn update_contact(&mut self, p: &str, t: &Table) -> Option<ActionTemplate> {
        let path = format!("{p}.properties");
        let table = match t.get("properties") {
            None => {
                self.problem(
                    path,
                    "missing (a table of HubSpot property names and values, e.g. \
                     { lifecyclestage = \"customer\" })",
                );
                return None;
            }
            Some(Value::Table(table)) if table.is_empty() => {
                self.problem(path, "is empty (name at least one property)");
                return None;
            }
            Some(Value::Table(table)) => table,
            Some(other) => {
                self.problem(
                    path,
                    format!("must be a table, found {}", describe_value(other)),
                );
                return None;
            }
        };
        let mut properties = BTreeMap::new();
        for name in table.keys() {
            let prop_path = format!("{path}.{name}");
            if !valid_property_name(name) {
                self.problem(
                    prop_path,
                    "must be a HubSpot internal property name (lowercase letters, digits, _)",
                );
                continue;
            }
            let Some(text) = self.text(&path, table, name, true, "the value") else {
                continue;
            };
            if name == "lifecyclestage"
                && let Text::Literal(stage) = &text
                && !LIFECYCLE_STAGES.contains(&stage.as_str())
                && !stage.bytes().all(|b| b.is_ascii_digit())
            {
                self.problem(
                    prop_path,
                    format!(
                        "`{stage}` is not a lifecycle stage (HubSpot's: {}, or a custom stage's \
                         numeric id)",
                        LIFECYCLE_STAGES.join(", ")
                    ),
                );
                continue;
            }
            properties.insert(name.clone(), text);
        }
        Some(ActionTemplate::UpdateContact { properties })
    }

    fn enroll_workflow(&mut self, p: &str, t: &Table) -> Option<ActionTemplate> {
        let workflow_id = self.numeric_id(p, t, "workflow_id", "the workflow's id");
        let property = self.scalar(p, t, "trigger_property", false, "a contact property name");
        let value = self.text(p, t, "trigger_value", false, "the value to set");
        if let Some(name) = &property
            && !valid_property_name(name)
        {
            self.problem(
                format!("{p}.trigger_property"),
                "must be a HubSpot internal property name (lowercase letters, digits, _)",
            );
        }
        match (
            t.contains_key("workflow_id"),
            t.contains_key("trigger_property"),
        ) {
            (false, false) => self.problem(
                format!("{p}.workflow_id"),
                "missing (the workflow's id, e.g. \"123456\"; or trigger_property = \"name\" \
                 for a workflow that enrols contacts on a property)",
            ),
            (true, true) => self.problem(
                format!("{p}.trigger_property"),
                "give workflow_id or trigger_property, not both",
            ),
            (true, false) if t.contains_key("trigger_value") => self.problem(
                format!("{p}.trigger_value"),
                "only goes with trigger_property",
            ),
            _ => {}
        }
        Some(ActionTemplate::EnrollWorkflow {
            workflow_id,
            trigger_property: property
                .map(|name| (name, value.unwrap_or_else(|| Text::Literal("true".into())))),
        })
    }

    /// A string; numbers and booleans are accepted as their text.
    fn scalar(
        &mut self,
        p: &str,
        t: &Table,
        key: &str,
        required: bool,
        what: &str,
    ) -> Option<String> {
        let path = format!("{p}.{key}");
        match t.get(key) {
            None => {
                if required {
                    self.problem(path, format!("missing ({what})"));
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(path, format!("is empty ({what})"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Integer(i)) => Some(i.to_string()),
            Some(Value::Float(f)) => Some(f.to_string()),
            Some(Value::Boolean(b)) => Some(b.to_string()),
            Some(other) => {
                self.problem(
                    path,
                    format!("must be a string ({what}), found {}", describe_value(other)),
                );
                None
            }
        }
    }

    fn text(&mut self, p: &str, t: &Table, key: &str, required: bool, what: &str) -> Option<Text> {
        let source = self.scalar(p, t, key, required, what)?;
        self.template(&format!("{p}.{key}"), source)
    }

    fn numeric_id(&mut self, p: &str, t: &Table, key: &str, what: &str) -> Option<String> {
        let required = key != "workflow_id";
        let id = self.scalar(p, t, key, required, &format!("{what}, e.g. \"123456\""))?;
        let id = id.trim().to_owned();
        if id.bytes().all(|b| b.is_ascii_digit()) {
            Some(id)
        } else {
            self.problem(
                format!("{p}.{key}"),
                format!("`{id}` is not {what} (a number, as HubSpot shows it in the URL)"),
            );
            None
        }
    }

    fn duration(&mut self, p: &str, t: &Table, key: &str) -> Option<Duration> {
        let text = self.scalar(p, t, key, false, "a duration such as \"1d\"")?;
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(format!("{p}.{key}"), e);
                None
            }
        }
    }

    /// One of `options`, case-insensitive; normalised to upper case.
    fn choice(&mut self, p: &str, t: &Table, key: &str, options: &[&str]) -> Option<String> {
        let what = options.join(", ");
        let text = self.scalar(p, t, key, false, &format!("one of {what}"))?;
        let upper = text.trim().to_ascii_uppercase();
        if options.contains(&upper.as_str()) {
            Some(upper)
        } else {
            self.problem(
                format!("{p}.{key}"),
                format!("`{text}` is not one of {what}"),
            );
            None
        }
    }

    fn owner(&mut self, p: &str, t: &Table) -> OwnerSpec {
        let what = "contact_owner, an owner's email or an owner id";
        let Some(text) = self.scalar(p, t, "owner", false, what) else {
            return OwnerSpec::None;
        };
        let path = format!("{p}.owner");
        if is_template(&text) {
            return self
                .template(&path, text)
                .map_or(OwnerSpec::None, OwnerSpec::Template);
        }
        match parse_owner(text.trim()) {
            Some(owner) => owner,
            None => {
                self.problem(path, format!("`{text}` is not {what}"));
                OwnerSpec::None
            }
        }
    }

    fn close_date(&mut self, p: &str, t: &Table) -> Option<CloseDate> {
        let text = self.scalar(
            p,
            t,
            "close_date",
            false,
            "\"now\", a duration from now such as \"30d\", or a date YYYY-MM-DD",
        )?;
        let text = text.trim();
        if text == "now" {
            return Some(CloseDate::In(Duration::ZERO));
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let ms = date
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis();
            return Some(CloseDate::At(ms));
        }
        match parse_duration(text) {
            Ok(d) => Some(CloseDate::In(d)),
            Err(_) => {
                self.problem(
                    format!("{p}.close_date"),
                    format!(
                        "`{text}` is not \"now\", a duration from now such as \"30d\", or a \
                         date YYYY-MM-DD"
                    ),
                );
                None
            }
        }
    }

    fn secret(&mut self, p: &str, t: &Table, key: &str, what: &str) -> Option<Secret> {
        let path = format!("{p}.{key}");
        match t.get(key) {
            None => {
                self.problem(
                    path,
                    format!("missing ({what}: the value, env:NAME or file:/path)"),
                );
                None
            }
            Some(Value::String(reference)) => match resolve_secret(reference, self.lookup) {
                Ok(secret) => Some(secret),
                Err(e) => {
                    self.problem(path, e.to_string());
                    None
                }
            },
            Some(other) => {
                self.problem(
                    path,
                    format!(
                        "must be a string (the value, env:NAME or file:/path), found {}",
                        describe_value(other)
                    ),
                );
                None
            }
        }
    }

    fn payload(&mut self, path: &str, value: &Value) -> Option<PayloadValue> {
        Some(match value {
            Value::String(s) => PayloadValue::Text(self.template(path, s.clone())?),
            Value::Integer(i) => PayloadValue::Literal(Json::from(*i)),
            Value::Float(f) => PayloadValue::Literal(Json::from(*f)),
            Value::Boolean(b) => PayloadValue::Literal(Json::from(*b)),
            Value::Datetime(d) => PayloadValue::Literal(Json::from(d.to_string())),
            Value::Array(items) => PayloadValue::Array(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| self.payload(&format!("{path}[{i}]"), v))
                    .collect(),
            ),
            Value::Table(table) => PayloadValue::Object(
                table
                    .iter()
                    .filter_map(|(k, v)| {
                        self.payload(&format!("{path}.{k}"), v)
                            .map(|v| (k.clone(), v))
                    })
                    .collect(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{STARTER, load_from_str};
    use crate::domain::{CustomerProfile, PaymentFact};
    use crate::rules::context::context;
    use crate::stripe::normalise;

    const NOW: i64 = 1_790_000_000_000;
    const DAY_MS: i64 = 86_400_000;

    fn compile_with_env(text: &str, env: &[(&str, &str)]) -> Result<RuleSet, Vec<String>> {
        let table: Table = toml::from_str(text).expect("test TOML is valid");
        let rules = match table.get("rules") {
            Some(Value::Array(rules)) => rules.clone(),
            _ => Vec::new(),
        };
        let sequences: BTreeMap<String, Value> = match table.get("sequences") {
            Some(Value::Table(t)) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => BTreeMap::new(),
        };
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RuleSet::compile(&rules, &sequences, &|n| env.get(n).cloned())
            .map_err(|problems| problems.iter().map(ToString::to_string).collect())
    }

    fn compile(text: &str) -> Result<RuleSet, Vec<String>> {
        compile_with_env(text, &[])
    }

    fn problems(text: &str) -> Vec<String> {
        compile(text).err().unwrap_or_default()
    }

    /// One rule `a` on invoice.paid with the given actions, and a sequence `recover`.
    fn rule_with(actions: &str) -> String {
        format!(
            "[[rules]]\nname = \"a\"\non = [\"invoice.paid\"]\nactions = [{actions}]\n\
             [sequences.recover]\nsteps = [{{ after = \"0h\", actions = [{{ type = \
             \"create_note\", body = \"x\" }}] }}]\n"
        )
    }

    fn fact(name: &str) -> PaymentFact {
        let path = format!("{}/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
        normalise(&std::fs::read(path).expect("fixture")).expect("normalises")
    }

    fn starter() -> std::sync::Arc<RuleSet> {
        load_from_str(Some(STARTER), None, &HashMap::new())
            .expect("the starter loads")
            .ruleset
    }

    fn keys(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.key.as_str()).collect()
    }

    #[test]
    fn bad_configs_are_refused_with_their_path() {
        let no_sequence = "[[rules]]\nname = \"a\"\non = [\"invoice.paid\"]\n";
        let cases: Vec<(String, &str)> = vec![
            (
                rule_with(r#"{ type = "send_email", subject = "x" }"#),
                "rules[0].actions[0].type: `send_email` is not an action type",
            ),
            (
                rule_with(r#"{ subject = "x" }"#),
                "rules[0].actions[0].type: missing",
            ),
            (
                rule_with(r#"{ type = "enroll_workflow" }"#),
                "rules[0].actions[0].workflow_id: missing",
            ),
            (
                rule_with(r#"{ type = "create_task", priority = "HIGH" }"#),
                "rules[0].actions[0].subject: missing",
            ),
            (
                rule_with(r#"{ type = "create_task", subject = "Hi {{ customer.name" }"#),
                "rules[0].actions[0].subject: template does not compile: syntax error",
            ),
            (
                rule_with(r#"{ type = "create_note", body = "{{ customer.name | shout }}" }"#),
                "rules[0].actions[0].body: template does not compile: unknown filter",
            ),
            (
                format!("{no_sequence}if = \"amount >= \"\nactions = [{{ type = \"create_note\", body = \"x\" }}]"),
                "rules[0].if: expression does not compile: syntax error",
            ),
            (
                format!("{no_sequence}if = \"customer.name | shout\"\nactions = [{{ type = \"create_note\", body = \"x\" }}]"),
                "rules[0].if: expression does not compile: unknown filter",
            ),
            (
                "[[rules]]\nname = \"a\"\non = [\"invoice.paid\", \"invoice.payed\"]\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].on[1]: `invoice.payed` is not a Stripe event type (did you mean invoice.paid?)",
            ),
            (
                "[[rules]]\nname = \"a\"\non = [\"subscription.payment_failed\"]\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].on[0]: `subscription.payment_failed` is not a Stripe event type (did you mean invoice.payment_failed?",
            ),
            (
                "[[rules]]\nname = \"a\"\non = [\"invoices.*\"]\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].on[0]: `invoices.*` matches no Stripe event type",
            ),
            (
                "[[rules]]\nname = \"a\"\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].on: missing",
            ),
            (
                rule_with(r#"{ type = "start_sequence", sequence = "recovery" }"#),
                "rules[0].actions[0].sequence: `recovery` is not a defined sequence (defined: recover)",
            ),
            (
                format!(
                    "{}[[rules]]\nname = \"a\"\non = [\"charge.refunded\"]\nactions = [{{ type = \"create_note\", body = \"x\" }}]",
                    rule_with(r#"{ type = "create_note", body = "x" }"#)
                ),
                "rules[1].name: `a` is already the name of an earlier rule",
            ),
            (
                "[[rules]]\nname = \"On Boarding\"\non = [\"invoice.paid\"]\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].name: `On Boarding` must be lowercase letters, digits, `_` or `-`",
            ),
            (
                "[[rules]]\nname = \"financial\"\non = [\"invoice.paid\"]\nactions = [{ type = \"create_note\", body = \"x\" }]".into(),
                "rules[0].name: `financial` is reserved",
            ),
            (
                rule_with(r#"{ type = "create_task", subject = "x", colour = "red" }"#),
                "rules[0].actions[0].colour: unknown key for create_task",
            ),
            (
                format!("{no_sequence}when = \"x\"\nactions = [{{ type = \"create_note\", body = \"x\" }}]"),
                "rules[0].when: unknown key in a rule",
            ),
            (
                rule_with(r#"{ type = "create_task", subject = "x", due_in = "tomorrow" }"#),
                "rules[0].actions[0].due_in: `tomorrow` does not start with a whole number",
            ),
            (
                "[sequences.payment_recovery]\nsteps = [{ after = \"0h\", actions = [{ type = \"create_note\", body = \"x\" }] }, { after = \"3 days\", actions = [{ type = \"create_note\", body = \"y\" }] }]".into(),
                "sequences.payment_recovery.steps[1].after: `3 days`",
            ),
            (
                "[sequences.payment_recovery]\nsteps = [{ after = \"3d\", actions = [{ type = \"create_note\", body = \"x\" }] }, { after = \"1d\", actions = [{ type = \"create_note\", body = \"y\" }] }]".into(),
                "sequences.payment_recovery.steps[1].after: comes before the previous step",
            ),
            (
                "[sequences.payment_recovery]\nsteps = [{ after = \"0h\", actions = [{ type = \"start_sequence\", sequence = \"payment_recovery\" }] }]".into(),
                "sequences.payment_recovery.steps[0].actions[0].type: start_sequence cannot be used inside a sequence",
            ),
            (
                "[sequences.payment_recovery]\ncancel_on = [\"invoice.paid\"]".into(),
                "sequences.payment_recovery.steps: missing",
            ),
            (
                rule_with(r#"{ type = "notify_slack", url = "env:SLACK_URL", text = "x" }"#),
                "rules[0].actions[0].url: env var SLACK_URL is not set",
            ),
            (
                rule_with(r#"{ type = "create_task", subject = "x", priority = "urgent" }"#),
                "rules[0].actions[0].priority: `urgent` is not one of LOW, MEDIUM, HIGH",
            ),
            (
                rule_with(r#"{ type = "create_task", subject = "x", owner = "bob" }"#),
                "rules[0].actions[0].owner: `bob` is not contact_owner, an owner's email or an owner id",
            ),
            (
                rule_with(r#"{ type = "enroll_workflow", workflow_id = "1", trigger_property = "x" }"#),
                "rules[0].actions[0].trigger_property: give workflow_id or trigger_property, not both",
            ),
            (
                rule_with(r#"{ type = "add_to_list", list_id = "cross-sell" }"#),
                "rules[0].actions[0].list_id: `cross-sell` is not the list's id",
            ),
            (
                rule_with(r#"{ type = "update_contact", properties = { lifecyclestage = "customers" } }"#),
                "rules[0].actions[0].properties.lifecyclestage: `customers` is not a lifecycle stage",
            ),
            (
                rule_with(r#"{ type = "call_webhook", url = "app.example.com/hook", secret = "s" }"#),
                "rules[0].actions[0].url: `app.example.com/hook` is not an http(s):// URL",
            ),
            (
                rule_with(r#"{ type = "create_deal", name = "x", close_date = "soon" }"#),
                "rules[0].actions[0].close_date: `soon` is not \"now\"",
            ),
        ];
        for (text, want) in cases {
            let found = problems(&text);
            assert_eq!(
                found.len(),
                1,
                "want `{want}` only, got {found:#?}\nfrom:\n{text}"
            );
            assert!(
                found[0].starts_with(want),
                "want `{want}`, got `{}`\nfrom:\n{text}",
                found[0]
            );
        }
    }

    #[test]
    fn every_problem_of_a_file_is_reported_together() {
        let text = r#"
[[rules]]
name = "one"
on = ["invoice.payed"]
if = "amount >="
actions = [{ type = "send_email" }]

[[rules]]
name = "two"
on = ["invoice.paid"]
actions = [{ type = "create_task", subject = "{{ oops", owner = "someone" }]

[[rules]]
name = "three"
on = ["charge.refunded"]
actions = [{ type = "enroll_workflow" }, { type = "start_sequence", sequence = "nope" }]

[sequences.payment_recovery]
cancel_on = ["invoice.paid"]
colour = "red"
steps = [{ after = "soon", actions = [{ type = "create_note" }] }]
"#;
        let found = problems(text);
        let expected = [
            "rules[0].on[0]: `invoice.payed` is not a Stripe event type",
            "rules[0].if: expression does not compile",
            "rules[0].actions[0].type: `send_email` is not an action type",
            "rules[1].actions[0].subject: template does not compile",
            "rules[1].actions[0].owner: `someone` is not",
            "rules[2].actions[0].workflow_id: missing",
            "rules[2].actions[1].sequence: `nope` is not a defined sequence",
            "sequences.payment_recovery.colour: unknown key in a sequence",
            "sequences.payment_recovery.steps[0].after: `soon`",
            "sequences.payment_recovery.steps[0].actions[0].body: missing",
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
    fn a_subscription_payment_failed_rule_is_refused_with_the_real_type() {
        let found = problems(
            "[[rules]]\nname = \"dunning\"\non = [\"subscription.payment_failed\"]\n\
             actions = [{ type = \"create_note\", body = \"x\" }]",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("use") || found[0].contains("did you mean"));
        assert!(found[0].contains("invoice.payment_failed"), "{}", found[0]);
    }

    #[test]
    fn the_starter_onboards_a_new_subscriber() {
        let ruleset = starter();
        let f = fact("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned = ruleset.plan(f.event_id.as_str(), &f.event_type, &ctx, NOW);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        let id = f.event_id.as_str();
        assert_eq!(
            keys(&planned.steps),
            [
                format!("{id}:onboarding:0"),
                format!("{id}:onboarding:1"),
                format!("{id}:onboarding:2"),
                format!("{id}:onboarding:3"),
                format!("{id}:upsell-product-b:0"),
                format!("{id}:provisioning:0"),
            ]
        );
        let actions: Vec<&Action> = planned.steps.iter().map(|s| &s.action).collect();
        assert_eq!(
            actions[0],
            &Action::UpdateContact {
                properties: BTreeMap::from([("lifecyclestage".into(), "customer".into())]),
                aggregates: BTreeMap::new(),
            }
        );
        assert_eq!(
            actions[1],
            &Action::EnrollWorkflow {
                workflow_id: Some("123456".into()),
                trigger_property: None,
            }
        );
        assert_eq!(
            actions[2],
            &Action::CreateTask {
                subject: "Thank-you call: Ada Lovelace".into(),
                body: Some("New subscription customer, first payment $49.00.".into()),
                due_at_ms: NOW + DAY_MS,
                priority: Some("HIGH".into()),
                task_type: Some("CALL".into()),
                owner: Owner::ContactOwner,
            }
        );
        assert_eq!(
            actions[3],
            &Action::CreateDeal {
                name: "Ada Lovelace: new subscription".into(),
                amount: Some("49.00".into()),
                pipeline: "default".into(),
                stage: "closedwon".into(),
                close_date_ms: Some(NOW),
                owner: Owner::ContactOwner,
            }
        );
        let Action::CallWebhook { url, payload, .. } = actions[5] else {
            panic!("provisioning calls the app: {:?}", actions[5]);
        };
        assert_eq!(url, "http://127.0.0.1:8089/_sandbox/inbox/provisioning");
        assert_eq!(payload["customer"], "cus_T7aLp4qZ9cXn2W");
        assert_eq!(payload["subscription"], "sub_1S4kPqQmT3xK8rLv0cH2mN5a");
        assert_eq!(
            actions[4],
            &Action::AddToList {
                list_id: "1".into()
            }
        );

        // invoice.payment_succeeded for the same invoice is not a rule trigger.
        let other = fact("invoice.payment_succeeded.json");
        let ctx = context(&other, &CustomerProfile::default());
        assert!(
            ruleset
                .plan(other.event_id.as_str(), &other.event_type, &ctx, NOW)
                .steps
                .is_empty()
        );
    }

    #[test]
    fn an_enterprise_failure_goes_to_the_account_manager_not_to_dunning() {
        let ruleset = starter();
        let f = fact("invoice.payment_failed.json");
        let id = f.event_id.as_str();

        let ordinary = context(&f, &CustomerProfile::default());
        let planned = ruleset.plan(id, &f.event_type, &ordinary, NOW);
        assert_eq!(
            keys(&planned.steps),
            [format!("{id}:dunning:0"), format!("{id}:dunning:1")]
        );
        assert!(matches!(
            &planned.steps[0].action,
            Action::CreateTicket { priority: Some(p), owner: Owner::ContactOwner, .. } if p == "HIGH"
        ));
        assert_eq!(
            planned.steps[1].action,
            Action::StartSequence {
                name: "payment_recovery".into()
            }
        );

        let enterprise = CustomerProfile {
            metadata: BTreeMap::from([("tier".to_owned(), "enterprise".to_owned())]),
            ..CustomerProfile::default()
        };
        let ctx = context(&f, &enterprise);
        let planned = ruleset.plan(id, &f.event_type, &ctx, NOW);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        assert_eq!(keys(&planned.steps), [format!("{id}:dunning-enterprise:0")]);
        let Action::CreateTask {
            subject,
            owner,
            priority,
            due_at_ms,
            ..
        } = &planned.steps[0].action
        else {
            panic!("a task: {:?}", planned.steps[0].action);
        };
        assert_eq!(owner, &Owner::Email("ada.manager@example.com".into()));
        assert_eq!(priority.as_deref(), Some("HIGH"));
        assert_eq!(*due_at_ms, NOW + 4 * 3_600_000);
        assert!(
            subject.starts_with("Enterprise payment failed: call "),
            "{subject}"
        );
        assert!(!planned.steps.iter().any(|s| matches!(
            s.action,
            Action::CreateTicket { .. } | Action::StartSequence { .. }
        )));
    }

    #[test]
    fn the_payment_recovery_sequence_steps_and_delays() {
        let ruleset = starter();
        let sequence = ruleset.sequence("payment_recovery").expect("defined");
        assert_eq!(sequence.first_after(), Duration::ZERO);
        assert!(sequence.cancel_on.matches("invoice.paid"));
        assert_eq!(
            ruleset.sequences_cancelled_by("invoice.paid"),
            ["payment_recovery"]
        );
        let f = fact("invoice.payment_failed.json");
        let ctx = context(&f, &CustomerProfile::default());
        let trigger = f.event_id.as_str();

        let (steps, next) = ruleset
            .sequence_step("payment_recovery", 0, trigger, &ctx, NOW)
            .expect("step 0");
        assert_eq!(
            keys(&steps),
            [format!("{trigger}:seq:payment_recovery:0:0")]
        );
        assert_eq!(steps[0].rule, "seq:payment_recovery:0");
        assert_eq!(next, Some(Duration::from_secs(3 * 86_400)));

        let (steps, next) = ruleset
            .sequence_step("payment_recovery", 1, trigger, &ctx, NOW)
            .expect("step 1");
        assert_eq!(
            keys(&steps),
            [
                format!("{trigger}:seq:payment_recovery:1:0"),
                format!("{trigger}:seq:payment_recovery:1:1"),
            ]
        );
        assert_eq!(next, Some(Duration::from_secs(4 * 86_400)), "day 3 → day 7");

        let (steps, next) = ruleset
            .sequence_step("payment_recovery", 2, trigger, &ctx, NOW)
            .expect("the last step");
        assert_eq!(next, None);
        assert!(matches!(
            &steps[0].action,
            Action::CreateTask {
                owner: Owner::ContactOwner,
                ..
            }
        ));
        assert!(
            ruleset
                .sequence_step("payment_recovery", 3, trigger, &ctx, NOW)
                .is_none()
        );
        assert!(
            ruleset
                .sequence_step("nope", 0, trigger, &ctx, NOW)
                .is_none()
        );
    }

    #[test]
    fn the_financial_step_comes_first() {
        let ruleset = starter();
        let f = fact("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned =
            crate::rules::plan_event(&ruleset, &f, &crate::rules::Extras::default(), &ctx, NOW);
        assert_eq!(planned.steps[0].rule, "financial");
        assert_eq!(planned.steps[1].rule, "onboarding");
        assert_eq!(planned.steps.len(), 7);
    }

    #[test]
    fn handled_types_scopes_and_custom_properties_of_the_starter() {
        let ruleset = starter();
        let handled = ruleset.handled_types();
        for t in [
            "invoice.paid",
            "invoice.payment_failed",
            "charge.refunded",
            "customer.subscription.deleted",
        ] {
            assert!(handled.matches(t), "{t}");
        }
        assert!(!handled.matches("customer.created"));
        assert_eq!(
            ruleset.scopes_needed().into_iter().collect::<Vec<_>>(),
            [
                "automation",
                "crm.lists.read",
                "crm.lists.write",
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.objects.deals.read",
                "crm.objects.deals.write",
                "crm.objects.owners.read",
                "tickets",
            ]
        );
        assert_eq!(
            ruleset
                .created_object_types()
                .into_iter()
                .collect::<Vec<_>>(),
            ["deals", "notes", "tasks", "tickets"]
        );
        assert!(
            ruleset.custom_properties().is_empty(),
            "lifecyclestage is HubSpot's"
        );
        assert_eq!(
            RuleSet::default().scopes_needed().len(),
            2,
            "contacts read and write only"
        );
    }

    #[test]
    fn custom_properties_are_those_hubspot_and_paybridge_do_not_have() {
        let ruleset = compile(&rule_with(
            r#"{ type = "update_contact", properties = { lifecyclestage = "customer", stripe_refund_issued = "true", vip_level = "{{ customer.metadata.tier }}" } },
               { type = "enroll_workflow", trigger_property = "welcome_trigger" }"#,
        ))
        .expect("compiles");
        assert_eq!(
            ruleset.custom_properties(),
            [
                ("contacts", "vip_level".to_owned()),
                ("contacts", "welcome_trigger".to_owned())
            ]
        );
        assert!(
            !ruleset.scopes_needed().contains("automation"),
            "by property"
        );
        let f = fact("invoice.paid.json");
        let profile = CustomerProfile {
            metadata: BTreeMap::from([("tier".to_owned(), "gold".to_owned())]),
            ..CustomerProfile::default()
        };
        let planned = ruleset.plan("evt_1", "invoice.paid", &context(&f, &profile), NOW);
        assert_eq!(
            planned.steps[1].action,
            Action::EnrollWorkflow {
                workflow_id: None,
                trigger_property: Some(("welcome_trigger".into(), "true".into())),
            }
        );
        let Action::UpdateContact { properties, .. } = &planned.steps[0].action else {
            panic!("update");
        };
        assert_eq!(
            properties.get("vip_level").map(String::as_str),
            Some("gold")
        );
    }

    #[test]
    fn missing_values_render_empty_and_failed_conditions_are_reported() {
        let text = r#"
[[rules]]
name = "greet"
on = ["charge.*"]
actions = [{ type = "create_note", body = "Hi {{ customer.name }}{{ nothing }}|{{ invoice.billing_reason }}|{{ customer.metadata.plan }}!" }]

[[rules]]
name = "deep"
on = ["charge.refunded"]
if = "customer.metadata.plan.level == 1"
actions = [{ type = "create_note", body = "never" }]

[[rules]]
name = "amounts"
on = ["charge.refunded"]
if = "refund.amount >= 10 and refund.amount < 11"
actions = [{ type = "create_note", body = "refund {{ refund.amount_formatted }}" }]
"#;
        let ruleset = compile(text).expect("compiles");
        let f = fact("charge.refunded.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned = ruleset.plan(f.event_id.as_str(), &f.event_type, &ctx, NOW);
        assert_eq!(planned.steps.len(), 2, "{planned:#?}");
        assert_eq!(
            planned.steps[0].action,
            Action::CreateNote {
                body: "Hi ||!".into()
            },
            "a charge event has no name, no invoice: empty, never `none`"
        );
        assert_eq!(
            planned.steps[1].action,
            Action::CreateNote {
                body: "refund $10.00".into()
            }
        );
        assert_eq!(
            planned.steps[1].key,
            format!("{}:amounts:0", f.event_id.as_str())
        );
        assert_eq!(planned.warnings.len(), 1, "{:?}", planned.warnings);
        assert!(
            planned.warnings[0].starts_with("rule deep: `if` could not be evaluated"),
            "{:?}",
            planned.warnings
        );
    }

    #[test]
    fn secrets_resolve_from_the_environment_and_stay_redacted() {
        let text = rule_with(
            r#"{ type = "notify_slack", url = "env:SLACK_URL", text = "{{ amount_formatted }} paid" },
               { type = "call_webhook", url = "https://app.example.com/hooks/{{ customer.id }}", secret = "env:PROVISIONING_SECRET" }"#,
        );
        let ruleset = compile_with_env(
            &text,
            &[
                (
                    "SLACK_URL",
                    "https://hooks.slack.com/services/T0/B0/topsecret",
                ),
                ("PROVISIONING_SECRET", "provisioning-topsecret"),
            ],
        )
        .expect("compiles");
        assert!(!format!("{ruleset:?}").contains("topsecret"));
        let f = fact("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned = ruleset.plan("evt_1", "invoice.paid", &ctx, NOW);
        let Action::NotifySlack { url, text } = &planned.steps[0].action else {
            panic!("slack");
        };
        assert_eq!(
            url.expose(),
            "https://hooks.slack.com/services/T0/B0/topsecret"
        );
        assert_eq!(text, "$49.00 paid");
        let Action::CallWebhook {
            url,
            secret,
            payload,
        } = &planned.steps[1].action
        else {
            panic!("webhook");
        };
        assert_eq!(url, "https://app.example.com/hooks/cus_T7aLp4qZ9cXn2W");
        assert_eq!(secret.expose(), "provisioning-topsecret");
        assert_eq!(
            payload, &ctx,
            "the default payload is the sanitised context"
        );
        assert!(
            !serde_json::to_string(&planned)
                .expect("json")
                .contains("topsecret")
        );

        // A Slack URL that is not a URL is refused without echoing it.
        let found = problems(&rule_with(
            r#"{ type = "notify_slack", url = "hooks.slack.com/topsecret", text = "x" }"#,
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("rules[0].actions[0].url: is not an http(s):// URL"));
        assert!(!found[0].contains("topsecret"));
    }

    #[test]
    fn owners_and_defaults() {
        let ruleset = compile(&rule_with(
            r#"{ type = "create_ticket", subject = "s" },
               { type = "create_task", subject = "t", owner = "{{ customer.metadata.manager }}" },
               { type = "create_task", subject = "t", owner = "102" },
               { type = "create_deal", name = "d", amount = "{{ amount * 12 }}", close_date = "2026-12-31", owner = "Grace.Success@Example.com" }"#,
        ))
        .expect("compiles");
        let f = fact("invoice.paid.json");
        let profile = CustomerProfile {
            metadata: BTreeMap::from([(
                "manager".to_owned(),
                "ada.manager@example.com".to_owned(),
            )]),
            ..CustomerProfile::default()
        };
        let planned = ruleset.plan("evt_1", "invoice.paid", &context(&f, &profile), NOW);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        assert_eq!(
            planned.steps[0].action,
            Action::CreateTicket {
                subject: "s".into(),
                content: None,
                pipeline: "0".into(),
                stage: "1".into(),
                priority: None,
                category: None,
                owner: Owner::None,
            }
        );
        assert!(matches!(
            &planned.steps[1].action,
            Action::CreateTask { owner: Owner::Email(e), due_at_ms, .. }
                if e == "ada.manager@example.com" && *due_at_ms == NOW
        ));
        assert!(matches!(
            &planned.steps[2].action,
            Action::CreateTask { owner: Owner::Id(id), .. } if id == "102"
        ));
        assert_eq!(
            planned.steps[3].action,
            Action::CreateDeal {
                name: "d".into(),
                amount: Some("588".into()),
                pipeline: "default".into(),
                stage: "closedwon".into(),
                close_date_ms: Some(1_798_675_200_000),
                owner: Owner::Email("grace.success@example.com".into()),
            }
        );
        // A template owner that renders to nothing leaves the task unassigned.
        let planned = ruleset.plan(
            "evt_1",
            "invoice.paid",
            &context(&f, &CustomerProfile::default()),
            NOW,
        );
        assert!(matches!(
            &planned.steps[1].action,
            Action::CreateTask {
                owner: Owner::None,
                ..
            }
        ));
    }

    #[test]
    fn the_rule_set_can_be_shared_across_workers() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<RuleSet>();
        let empty = RuleSet::default();
        assert!(
            empty
                .plan("evt_1", "invoice.paid", &Json::Null, NOW)
                .steps
                .is_empty()
        );
        assert!(empty.handled_types().as_slice().is_empty());
    }
}
