//! The compiler's refusals: every problem, with its path.

use crate::rules::testing::{problems, rule_with};

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
fn a_subscription_payment_failed_rule_is_refused_with_the_real_type() {
    let found = problems(
        "[[rules]]\nname = \"dunning\"\non = [\"subscription.payment_failed\"]\n\
         actions = [{ type = \"create_note\", body = \"x\" }]",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("use") || found[0].contains("did you mean"));
    assert!(found[0].contains("invoice.payment_failed"), "{}", found[0]);
}
