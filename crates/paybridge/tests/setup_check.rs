//! `paybridge setup` and `paybridge check`, the real binary against a sandbox: properties
//! created once with their HubSpot types, scopes missing and granted beyond need, and a bad
//! config refused with exit code 2 and every problem's path.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedToken};
use paybridge::config::STARTER;
use serde_json::{Value, json};

/// The starter, pointed at the sandbox (HubSpot and Stripe API) with `token`.
fn write_config(dir: &Path, sandbox: &Sandbox, token: &str, stripe_key: &str) -> PathBuf {
    use toml::{Table, Value};
    // The starter's example secrets are refused next to a real token: the test's own.
    let starter = STARTER.replace(
        "replace-me-provisioning-secret",
        common::PROVISIONING_SECRET,
    );
    let mut root: Table = toml::from_str(&starter).expect("the starter is TOML");
    let section = |root: &mut Table, name: &str| -> Table {
        root.get(name)
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default()
    };
    let mut server = section(&mut root, "server");
    server.insert(
        "admin_token".into(),
        "admin-test-token-0123456789abcdef".into(),
    );
    root.insert("server".into(), Value::Table(server));
    let mut stripe = section(&mut root, "stripe");
    stripe.insert(
        "webhook_secrets".into(),
        Value::Array(vec![common::SECRET.into()]),
    );
    root.insert("stripe".into(), Value::Table(stripe));
    let mut hubspot = section(&mut root, "hubspot");
    hubspot.remove("sandbox");
    hubspot.insert("token".into(), token.into());
    hubspot.insert("api_base".into(), sandbox.url().into());
    root.insert("hubspot".into(), Value::Table(hubspot));
    let mut stripe = section(&mut root, "stripe");
    stripe.insert("api_key".into(), stripe_key.into());
    stripe.insert("api_base".into(), sandbox.url().into());
    root.insert("stripe".into(), Value::Table(stripe));
    let path = dir.join(format!("{token}.toml"));
    std::fs::write(&path, toml::to_string(&root).expect("TOML")).expect("write the config");
    path
}

async fn paybridge(config: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_paybridge"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("PAYBRIDGE_CONFIG")
        .env("PAYBRIDGE_LOG", "warn")
        .output()
        .await
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The line of `text` that starts with `prefix` (after leading spaces).
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with `{prefix}` in:\n{text}"))
}

/// The property `name` of `object_type` in the sandbox's state.
fn property(state: &Value, object_type: &str, name: &str) -> Option<Value> {
    state["properties"][object_type]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

const PROPERTIES: &[(&str, &str, &str, &str, bool)] = &[
    ("contacts", "stripe_customer_id", "string", "text", true),
    (
        "contacts",
        "stripe_subscription_status",
        "enumeration",
        "select",
        false,
    ),
    (
        "contacts",
        "stripe_subscription_tier",
        "string",
        "text",
        false,
    ),
    (
        "contacts",
        "stripe_last_payment_date",
        "date",
        "date",
        false,
    ),
    (
        "contacts",
        "stripe_last_payment_amount",
        "number",
        "number",
        false,
    ),
    (
        "contacts",
        "stripe_last_payment_failed_date",
        "date",
        "date",
        false,
    ),
    (
        "contacts",
        "stripe_lifetime_value",
        "number",
        "number",
        false,
    ),
    (
        "contacts",
        "stripe_refund_issued",
        "bool",
        "booleancheckbox",
        false,
    ),
    (
        "contacts",
        "stripe_delinquent",
        "bool",
        "booleancheckbox",
        false,
    ),
    ("tickets", "paybridge_key", "string", "text", true),
    ("deals", "paybridge_key", "string", "text", true),
];

#[tokio::test]
async fn setup_creates_every_property_once_with_its_hubspot_type() {
    let sandbox = Sandbox::spawn(SandboxConfig::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &sandbox, "sandbox-token", "sk_test_setup");

    let out = paybridge(&config, &["setup", "--dry-run"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for (object_type, name, ..) in PROPERTIES {
        let l = line(&text, &format!("{object_type}.{name} "));
        assert!(l.ends_with("would be created (dry run)"), "{l}");
    }
    assert!(text.contains("dry run: 11 to create, 0 exist; nothing was changed"));
    let state = sandbox.state();
    assert_eq!(property(&state, "contacts", "stripe_customer_id"), None);
    assert!(
        state["groups"]["contacts"]
            .as_array()
            .expect("groups")
            .iter()
            .all(|g| g["name"] != "stripe")
    );

    let out = paybridge(&config, &["setup"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for (object_type, name, ..) in PROPERTIES {
        let l = line(&text, &format!("{object_type}.{name} "));
        assert!(l.ends_with("  created"), "{l}");
    }
    for object_type in ["contacts", "tickets", "deals"] {
        line(&text, &format!("{object_type} group stripe"));
    }
    assert!(text.contains("11 created, 0 existed"), "{text}");

    let state = sandbox.state();
    for (object_type, name, kind, field_type, unique) in PROPERTIES {
        let p = property(&state, object_type, name)
            .unwrap_or_else(|| panic!("{object_type}.{name} was created"));
        assert_eq!(
            (
                &p["type"],
                &p["fieldType"],
                &p["hasUniqueValue"],
                &p["groupName"]
            ),
            (
                &json!(kind),
                &json!(field_type),
                &json!(unique),
                &json!("stripe")
            ),
            "{object_type}.{name}"
        );
    }
    let status = property(&state, "contacts", "stripe_subscription_status").expect("status");
    let options: Vec<&Value> = status["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|o| &o["value"])
        .collect();
    assert_eq!(
        options,
        [
            "active",
            "trialing",
            "past_due",
            "canceled",
            "unpaid",
            "paused",
            "incomplete",
            "incomplete_expired"
        ]
    );
    let stripe_group = state["groups"]["contacts"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "stripe")
        .cloned()
        .expect("the stripe group");
    assert_eq!(stripe_group["label"], "Stripe");

    // Idempotent: a second run creates nothing and says what exists.
    let before = sandbox.state()["properties"].clone();
    let out = paybridge(&config, &["setup"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for (object_type, name, ..) in PROPERTIES {
        let l = line(&text, &format!("{object_type}.{name} "));
        assert!(l.ends_with("  exists"), "{l}");
    }
    assert!(text.contains("0 created, 11 existed"), "{text}");
    assert!(!text.contains("group stripe"), "{text}");
    assert_eq!(sandbox.state()["properties"], before);
}

#[tokio::test]
async fn setup_reports_a_property_of_another_type_and_fails_without_the_schema_scope() {
    let sandbox = Sandbox::spawn(SandboxConfig {
        seed: Some(Seed {
            properties: [(
                "contacts".to_owned(),
                vec![
                    json!({"name": "stripe_lifetime_value", "label": "LTV", "type": "string",
                            "fieldType": "text", "groupName": "contactinformation"}),
                ],
            )]
            .into(),
            tokens: vec![SeedToken {
                token: "pat-no-schema".into(),
                scopes: vec![
                    "crm.objects.contacts.read".into(),
                    "crm.objects.contacts.write".into(),
                ],
            }],
            ..Seed::standard()
        }),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");

    let config = write_config(dir.path(), &sandbox, "pat-no-schema", "sk_test_setup");
    let out = paybridge(&config, &["setup"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("MISSING_SCOPES"), "{err}");
    assert!(
        err.contains(
            "setup needs the scopes crm.schemas.contacts.write, crm.schemas.deals.write, \
             crm.schemas.tickets.write (or tickets)"
        ),
        "{err}"
    );
    assert_eq!(
        property(&sandbox.state(), "contacts", "stripe_customer_id"),
        None
    );

    let config = write_config(dir.path(), &sandbox, "sandbox-token", "sk_test_setup");
    let out = paybridge(&config, &["setup"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        line(&text, "contacts.stripe_lifetime_value ")
            .ends_with("exists, but differs: its type is string, paybridge writes number"),
        "{text}"
    );
    assert!(line(&text, "contacts.stripe_customer_id ").ends_with("  created"));
    assert!(text.contains("10 created, 1 existed"), "{text}");
    assert!(
        stderr(&out).contains("1 property exist in HubSpot but not as paybridge writes them (contacts.stripe_lifetime_value)"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn setup_and_check_in_sandbox_mode_have_nothing_to_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(&config, STARTER).expect("write the starter");
    let out = paybridge(&config, &["setup"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("sandbox mode"), "{}", stdout(&out));

    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(line(&text, "hubspot").contains("SKIP"), "{text}");
    assert_eq!(
        line(&text, "scopes a token will need:"),
        "scopes a token will need: automation, crm.lists.read, crm.lists.write, \
         crm.objects.contacts.read, crm.objects.contacts.write, crm.objects.deals.read, \
         crm.objects.deals.write, crm.objects.owners.read, tickets (or \
         crm.objects.tickets.read + crm.objects.tickets.write)"
    );
    assert_eq!(
        line(&text, "needed only by `paybridge setup`:"),
        "needed only by `paybridge setup`: crm.schemas.contacts.write, crm.schemas.deals.write, \
         crm.schemas.tickets.write (or tickets)"
    );
}

#[tokio::test]
async fn check_lists_missing_scopes_and_scopes_granted_beyond_need() {
    let sandbox = common::spawn_sandbox(SandboxConfig::default()).await;
    sandbox
        .merge_seed(Seed {
            tokens: vec![SeedToken {
                token: "pat-limited".into(),
                scopes: [
                    "crm.objects.contacts.read",
                    "crm.objects.contacts.write",
                    "crm.lists.read",
                    "crm.objects.companies.read",
                    "e-commerce",
                ]
                .map(String::from)
                .to_vec(),
            }],
            ..Seed::default()
        })
        .expect("seed the token");
    let dir = tempfile::tempdir().expect("tempdir");

    let config = write_config(dir.path(), &sandbox, "pat-limited", "sk_test_check");
    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(line(&text, "config").contains("OK"), "{text}");
    assert!(line(&text, "hubspot").contains("OK"), "{text}");
    assert!(line(&text, "stripe").contains("OK"), "{text}");
    assert!(line(&text, "scopes").contains("FAIL"), "{text}");
    assert_eq!(
        line(&text, "missing scopes:"),
        "missing scopes: automation, crm.lists.write, crm.objects.deals.read, \
         crm.objects.deals.write, crm.objects.owners.read, tickets (or \
         crm.objects.tickets.read + crm.objects.tickets.write)"
    );
    assert_eq!(
        line(&text, "granted beyond need:"),
        "granted beyond need: crm.objects.companies.read, e-commerce (this config never uses \
         them: remove them for least privilege)"
    );
    assert_eq!(
        line(&text, "needed only by `paybridge setup`:"),
        "needed only by `paybridge setup`: crm.schemas.contacts.write (not granted), \
         crm.schemas.deals.write (not granted), crm.schemas.tickets.write (or tickets) (not granted)"
    );
    // The contact properties were read (they exist); tickets' and deals' cannot be.
    assert!(
        !text.contains("missing: contacts."),
        "contact properties exist: {text}"
    );
    assert!(text.contains("cannot read tickets:"), "{text}");
    assert!(stderr(&out).contains("check failed"), "{}", stderr(&out));

    // The sandbox's own token has every scope: nothing missing, two schema reads too many.
    let config = write_config(dir.path(), &sandbox, "sandbox-token", "sk_test_check");
    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert_eq!(line(&text, "missing scopes:"), "missing scopes: none");
    assert_eq!(
        line(&text, "granted beyond need:"),
        "granted beyond need: crm.schemas.contacts.read, crm.schemas.deals.read (this config \
         never uses them: remove them for least privilege)"
    );
    assert!(line(&text, "properties").contains("all 11 exist"), "{text}");
    assert!(text.contains("all checks passed"), "{text}");

    // An unknown token and a live-mode key the sandbox refuses: both reported, exit 1.
    let config = write_config(dir.path(), &sandbox, "pat-unknown", "sk_live_wrong");
    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(line(&text, "hubspot").contains("FAIL"), "{text}");
    assert!(line(&text, "stripe").contains("FAIL"), "{text}");
    assert!(line(&text, "stripe").contains("Invalid API Key"), "{text}");
}

#[tokio::test]
async fn a_config_with_bad_rules_is_refused_with_exit_2_and_every_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        r#"
[stripe]
webhook_secrets = ["whsec_test"]
[hubspot]
sandbox = true

[[rules]]
name = "onboarding"
on = ["invoice.payed"]
if = "invoice.billing_reason =="
actions = [{ type = "send_email", to = "x" }]

[[rules]]
name = "dunning"
on = ["invoice.payment_failed"]
actions = [
  { type = "create_task", subject = "Call {{ customer.name", owner = "someone" },
  { type = "enroll_workflow" },
  { type = "start_sequence", sequence = "nope" },
]

[sequences.payment_recovery]
steps = [{ after = "soon", actions = [{ type = "create_note", body = "x" }] }]
"#,
    )
    .expect("write");
    for command in ["check", "serve"] {
        let out = paybridge(&config, &[command]).await;
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let err = stderr(&out);
        for path in [
            "rules[0].on[0]: `invoice.payed` is not a Stripe event type",
            "rules[0].if: expression does not compile",
            "rules[0].actions[0].type: `send_email` is not an action type",
            "rules[1].actions[0].subject: template does not compile",
            "rules[1].actions[0].owner: `someone` is not",
            "rules[1].actions[1].workflow_id: missing",
            "rules[1].actions[2].sequence: `nope` is not a defined sequence",
            "sequences.payment_recovery.steps[0].after:",
        ] {
            assert!(err.contains(path), "{command}: missing `{path}` in:\n{err}");
        }
        assert!(stdout(&out).is_empty(), "{command}: nothing ran");
    }
}

/// `check` says which Stripe events to send (the exact types the rules handle, never
/// invoice.created), which payload style suits the config, and compares the host's clock
/// with the `Date` of Stripe's answers.
#[tokio::test]
async fn check_names_the_events_to_send_the_payload_style_and_clock_skew() {
    let sandbox = common::spawn_sandbox(SandboxConfig {
        stripe: hubspot_sandbox::StripeBehaviour {
            clock_offset_secs: -600,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &sandbox, "sandbox-token", "sk_test_check");
    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning is not a failure: {text}"
    );
    let clock = line(&text, "clock");
    assert!(
        clock.contains("WARN") && clock.contains("ahead of Stripe's") && clock.contains("NTP"),
        "{clock}"
    );
    let loaded =
        paybridge::app::load::load_from_str(Some(STARTER), None, &std::collections::HashMap::new())
            .expect("the starter loads");
    let types = loaded.rules.event_types_to_send();
    assert!(types.iter().any(|t| t == "charge.dispute.created"));
    assert!(types.iter().any(|t| t == "refund.failed"));
    assert!(
        !types
            .iter()
            .any(|t| t == "invoice.created" || t.contains('*'))
    );
    assert_eq!(
        line(&text, "Stripe events this config handles"),
        format!(
            "Stripe events this config handles ({}; subscribe the endpoint to these, not to every type): {}",
            types.len(),
            types.join(", ")
        )
    );
    assert!(text.contains("not needed: invoice.created"), "{text}");
    assert!(
        line(&text, "Payload style:").contains("snapshot or thin both work"),
        "{text}"
    );
    assert!(
        !text.contains("\nproducts"),
        "a key reads product names: {text}"
    );

    // Stripe's clock agrees; and a config without a key: snapshot payloads, and the tier
    // falls back to the price's nickname.
    sandbox.set_stripe_behaviour(hubspot_sandbox::StripeBehaviour::default());
    let keyless = dir.path().join("keyless.toml");
    let written = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&keyless, written.replace("api_key = \"sk_test_check\"", "")).expect("write");
    let out = paybridge(&keyless, &["check"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(line(&text, "stripe").contains("SKIP"), "{text}");
    assert!(
        line(&text, "Payload style:")
            .starts_with("Payload style: snapshot (thin events need stripe.api_key"),
        "{text}"
    );
    assert!(line(&text, "products").contains("WARN"), "{text}");
    let out = paybridge(&config, &["check"]).await;
    let text = stdout(&out);
    assert!(line(&text, "clock").contains("OK"), "{text}");
}
