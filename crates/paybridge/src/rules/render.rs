//! Planning at run time: the rules an event matches, their `if` evaluated and their
//! actions rendered from the event's context into keyed steps. Pure: no store, no
//! HubSpot, no clock (callers pass `now_ms`).

use std::time::Duration;

use minijinja::Environment;
use serde_json::Value as Json;

use super::model::{Configured, RuleSet};
use super::plan::{Planned, Step, step_key};
use super::template::{Escape, Text, describe_error};

impl RuleSet {
    /// The steps of the rules that match `event_type` and whose `if` holds, in config
    /// order; keys `{event_id}:{rule}:{action_index}` (the event's own lane).
    pub fn plan(&self, event_id: &str, event_type: &str, context: &Json, now_ms: i64) -> Planned {
        self.plan_in_lane(event_id, event_id, event_type, context, now_ms)
    }

    /// [`Self::plan`] for an event of `lane` (its customer): an action with `once_per` is
    /// keyed `{lane}:{rule}:{action_index}:{rendered once_per}`.
    pub fn plan_in_lane(
        &self,
        event_id: &str,
        lane: &str,
        event_type: &str,
        context: &Json,
        now_ms: i64,
    ) -> Planned {
        let r = Renderer::new(&self.env, context, now_ms, lane);
        let mut out = Planned::default();
        for rule in &self.rules {
            if !rule.on.matches(event_type) {
                continue;
            }
            if let Some(condition) = &rule.condition {
                match r.eval(condition) {
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
            r.render_actions(&rule.name, &rule.actions, event_id, &mut out);
        }
        out
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
        let mut out = Planned::default();
        Renderer::new(&self.env, context, now_ms, trigger_event_id).render_actions(
            &rule,
            &step.actions,
            trigger_event_id,
            &mut out,
        );
        Some((out, sequence.delay_after(step_index)))
    }
}

/// One event's context, ready to fill templates in: what each action kind renders with.
pub(crate) struct Renderer<'a> {
    env: &'a Environment<'static>,
    /// The context as JSON (a `call_webhook` payload defaults to it).
    context: &'a Json,
    /// The same, as minijinja reads it.
    ctx: minijinja::Value,
    now_ms: i64,
    /// What `once_per` keys are scoped to: the customer's lane.
    lane: &'a str,
}

/// The longest `once_per` value kept as is in a step key; longer ones are hashed.
const MAX_ONCE_PER: usize = 200;

impl<'a> Renderer<'a> {
    fn new(env: &'a Environment<'static>, context: &'a Json, now_ms: i64, lane: &'a str) -> Self {
        Self {
            env,
            context,
            ctx: minijinja::Value::from_serialize(context),
            now_ms,
            lane,
        }
    }

    /// The step key of action `index` of `rule`: per event, or per rendered `once_per`.
    /// A `once_per` that renders empty falls back to the event (with a warning): an
    /// action is never skipped for want of a value.
    fn key(
        &self,
        configured: &Configured,
        rule: &str,
        index: usize,
        event_id: &str,
    ) -> Result<(String, Option<String>), String> {
        let Some(once_per) = &configured.once_per else {
            return Ok((step_key(event_id, rule, index), None));
        };
        let value = self.text(once_per)?;
        let value = value.trim();
        if value.is_empty() {
            return Ok((
                step_key(event_id, rule, index),
                Some(format!(
                    "rule {rule}, action {index}: once_per rendered empty; keyed by the event instead"
                )),
            ));
        }
        let value = if value.len() > MAX_ONCE_PER {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(value.as_bytes()))
        } else {
            value.to_owned()
        };
        Ok((
            format!("{}:{value}", step_key(self.lane, rule, index)),
            None,
        ))
    }

    pub fn context(&self) -> &Json {
        self.context
    }

    /// The time `d` after planning, unix ms.
    pub fn after(&self, d: Duration) -> i64 {
        let millis = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.now_ms.saturating_add(millis)
    }

    pub fn text(&self, text: &Text) -> Result<String, String> {
        self.text_for(text, Escape::Plain)
    }

    /// A text whose filled-in values are escaped for `escape`'s destination (the literal
    /// parts are kept as written).
    pub fn text_for(&self, text: &Text, escape: Escape) -> Result<String, String> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => {
                let template = self.env.get_template(name);
                let rendered = match escape {
                    Escape::Plain => template.and_then(|t| t.render(&self.ctx)),
                    _ => template.and_then(|t| {
                        t.render(minijinja::context! { __paybridge_escape => escape.name(), ..self.ctx.clone() })
                    }),
                };
                rendered.map_err(|e| format!("{name}: {}", describe_error(&e)))
            }
        }
    }

    /// An optional text; rendering to nothing counts as absent.
    pub fn optional(&self, text: Option<&Text>) -> Result<Option<String>, String> {
        self.optional_for(text, Escape::Plain)
    }

    /// [`Self::optional`], escaped for `escape`'s destination.
    pub fn optional_for(
        &self,
        text: Option<&Text>,
        escape: Escape,
    ) -> Result<Option<String>, String> {
        let Some(text) = text else {
            return Ok(None);
        };
        let rendered = self.text_for(text, escape)?;
        Ok((!rendered.trim().is_empty()).then_some(rendered))
    }

    fn eval(&self, condition: &str) -> Result<bool, String> {
        let expr = self
            .env
            .compile_expression_owned(condition.to_owned())
            .map_err(|e| describe_error(&e))?;
        expr.eval(&self.ctx)
            .map(|v| v.is_true())
            .map_err(|e| describe_error(&e))
    }

    /// Renders `actions` as steps of `rule` into `out`; an action whose template fails is
    /// left out with a warning.
    fn render_actions(
        &self,
        rule: &str,
        actions: &[Configured],
        event_id: &str,
        out: &mut Planned,
    ) {
        for (index, configured) in actions.iter().enumerate() {
            let rendered = configured
                .action
                .render(self)
                .and_then(|action| Ok((action, self.key(configured, rule, index, event_id)?)));
            match rendered {
                Ok((action, (key, warning))) => {
                    out.warnings.extend(warning);
                    out.steps.push(Step {
                        key,
                        rule: rule.to_owned(),
                        index,
                        action,
                    });
                }
                Err(e) => out.warnings.push(format!(
                    "rule {rule}, action {index}: {e}; the action was left out"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde_json::Value as Json;

    use super::*;
    use crate::domain::CustomerProfile;
    use crate::rules::context::context;
    use crate::rules::testing::{
        DAY_MS, NOW, compile, compile_with_env, fact, keys, problems, rule_with, starter,
    };
    use crate::rules::{Action, Owner};

    /// The fixture's invoice, as the worker sees a subscription's first paying invoice.
    fn first_payment(name: &str) -> crate::domain::PaymentFact {
        let mut f = fact(name);
        if let Some(invoice) = &mut f.invoice {
            invoice.first_payment = true;
        }
        f
    }

    #[test]
    fn the_starter_onboards_a_new_subscriber() {
        let ruleset = starter();
        let f = first_payment("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let lane = crate::rules::lane_of_fact(&f);
        assert_eq!(lane, "cus_T7aLp4qZ9cXn2W");
        let planned = ruleset.plan_in_lane(f.event_id.as_str(), &lane, &f.event_type, &ctx, NOW);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        let id = f.event_id.as_str();
        let sub = "sub_1S4kPqQmT3xK8rLv0cH2mN5a";
        assert_eq!(
            keys(&planned.steps),
            [
                format!("{lane}:onboarding:0:{sub}"),
                format!("{lane}:onboarding:1:{sub}"),
                format!("{lane}:onboarding:2:{sub}"),
                format!("{lane}:onboarding:3:{sub}"),
                format!("{id}:upsell-product-b:0"),
                format!("{lane}:provisioning:0:{sub}"),
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

        // Not the subscription's first payment (a renewal, a trial's $0 invoice): no
        // onboarding; and invoice.payment_succeeded is not a rule trigger.
        let renewal = fact("invoice.paid.json");
        let ctx = context(&renewal, &CustomerProfile::default());
        let rules: Vec<String> = ruleset
            .plan(renewal.event_id.as_str(), &renewal.event_type, &ctx, NOW)
            .steps
            .into_iter()
            .map(|s| s.rule)
            .collect();
        assert_eq!(rules, ["upsell-product-b", "provisioning"]);
        let trial = fact("story-2/invoice.paid.trial.json");
        let ctx = context(&trial, &CustomerProfile::default());
        let rules: Vec<String> = ruleset
            .plan(trial.event_id.as_str(), &trial.event_type, &ctx, NOW)
            .steps
            .into_iter()
            .map(|s| s.rule)
            .collect();
        assert_eq!(
            rules,
            ["provisioning"],
            "a trial is provisioned, not onboarded or upsold"
        );
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
        let planned = ruleset.plan_in_lane(id, "cus_T7aLp4qZ9cXn2W", &f.event_type, &ordinary, NOW);
        let invoice = "in_1SBxE9QmT3xK8rLvR3tY6uIo";
        assert_eq!(
            keys(&planned.steps),
            [
                format!("cus_T7aLp4qZ9cXn2W:dunning:0:{invoice}"),
                format!("cus_T7aLp4qZ9cXn2W:dunning:1:{invoice}")
            ]
        );
        // The same invoice's second failed attempt: a new event, the same keys.
        let second = fact("story-2/invoice.payment_failed.attempt-2.json");
        assert_ne!(second.event_id, f.event_id);
        let ctx = context(&second, &CustomerProfile::default());
        let again = ruleset.plan_in_lane(
            second.event_id.as_str(),
            "cus_T7aLp4qZ9cXn2W",
            &second.event_type,
            &ctx,
            NOW,
        );
        assert_eq!(keys(&again.steps), keys(&planned.steps));
        let Action::CreateTicket { content, .. } = &again.steps[0].action else {
            panic!("a ticket");
        };
        assert!(
            content
                .as_deref()
                .is_some_and(|c| c.starts_with("Attempt 2 failed")),
            "{content:?}"
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
        assert_eq!(
            keys(&planned.steps),
            [format!("{id}:dunning-enterprise:0:{invoice}")]
        );
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
        let f = first_payment("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned =
            crate::rules::plan_event(&ruleset, &f, &crate::rules::Extras::default(), &ctx, NOW);
        assert_eq!(planned.steps[0].rule, "financial");
        assert_eq!(planned.steps[1].rule, "onboarding");
        assert_eq!(planned.steps.len(), 7);
    }

    #[test]
    fn once_per_that_renders_empty_falls_back_to_the_event_with_a_warning() {
        let ruleset = compile(&rule_with(
            r#"{ type = "create_note", body = "x", once_per = "{{ charge.id }}" }"#,
        ))
        .expect("compiles");
        let f = fact("invoice.paid.json");
        let ctx = context(&f, &CustomerProfile::default());
        let planned = ruleset.plan_in_lane(f.event_id.as_str(), "cus_x", &f.event_type, &ctx, NOW);
        assert_eq!(keys(&planned.steps).len(), 1);
        assert!(keys(&planned.steps)[0].starts_with(f.event_id.as_str()));
        assert!(
            planned
                .warnings
                .iter()
                .any(|w| w.contains("once_per rendered empty")),
            "{:?}",
            planned.warnings
        );
        let long = compile(&rule_with(
            r#"{ type = "create_note", body = "x", once_per = "{{ range(100) | join(',') }}" }"#,
        ))
        .expect("compiles");
        let planned = long.plan_in_lane(f.event_id.as_str(), "cus_x", &f.event_type, &ctx, NOW);
        let key = &keys(&planned.steps)[0];
        assert!(key.len() < 120, "a long value is hashed: {key}");
        assert!(
            problems(&rule_with(
                r#"{ type = "create_note", body = "x", once_per = "{{ nope(" }"#
            ))
            .iter()
            .any(|p| p.contains("once_per"))
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
        assert!(empty.rule_types().as_slice().is_empty());
    }
}
