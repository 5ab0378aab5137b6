//! What makes a deployment safe to expose (issue 13): sandbox mode only when asked, no
//! example or short secrets next to a real token, an open admin only on loopback, outbound
//! hosts as plain hosts.

use std::collections::HashMap;

use super::*;
use crate::config::STARTER;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn load_from_str(
    text: Option<&str>,
    file: Option<std::path::PathBuf>,
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
fn an_environment_only_deployment_is_a_real_one() {
    // Issue 13: configured through PAYBRIDGE_* alone, it used to run in sandbox mode
    // (admin open, secret printed).
    let e = env(&[
        (
            "PAYBRIDGE_STRIPE__WEBHOOK_SECRETS",
            "whsec_from_the_environment",
        ),
        ("PAYBRIDGE_HUBSPOT__TOKEN", "pat-na1-real"),
    ]);
    let s = load_from_str(None, None, &e).expect("loads");
    assert!(!s.sandbox_mode);
    assert_eq!(s.stripe.webhook_secrets.len(), 1);

    // A secret alone (under the starter's names too) is enough to leave sandbox mode;
    // what is missing is then refused, and the refusal says why.
    for var in [
        "HUBSPOT_TOKEN",
        "PAYBRIDGE_SERVER__ADMIN_TOKEN",
        "STRIPE_WEBHOOK_SECRET",
    ] {
        let found = match load_from_str(None, None, &env(&[(var, "x".repeat(40).as_str())])) {
            Ok(s) => panic!("{var}: loaded, sandbox_mode = {}", s.sandbox_mode),
            Err(e) => e
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        };
        assert!(
            found.iter().any(
                |p| p.starts_with("config: no config file, and the environment sets")
                    && p.contains(var)
                    && p.contains("serve --sandbox")
            ),
            "{var}: {found:#?}"
        );
    }
    // Overrides that are no secret keep the local try-out in sandbox mode.
    let local = env(&[("PAYBRIDGE_SERVER__LISTEN", "127.0.0.1:0")]);
    assert!(
        load_from_str(None, None, &local)
            .expect("loads")
            .sandbox_mode
    );
}

#[test]
fn serve_sandbox_is_sandbox_mode_whatever_the_file() {
    let text = "[server]\nlisten = \"127.0.0.1:0\"\n";
    let read = read_as(Some(text), None, &env(&[]), true).expect("reads");
    assert!(read.problems.is_empty(), "{:?}", read.problems);
    assert!(read.settings.sandbox_mode);
    // …and it does not quietly use a real HubSpot token.
    let read = read_as(
        Some(MINIMAL),
        None,
        &env(&[
            ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ("HUBSPOT_TOKEN", "pat-1"),
        ]),
        true,
    )
    .expect("reads");
    let found: Vec<String> = read.problems.iter().map(ToString::to_string).collect();
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("hubspot.token: cannot be combined with `serve --sandbox`")),
        "{found:#?}"
    );
}

#[test]
fn short_admin_tokens_and_example_secrets_are_refused_with_a_real_token() {
    let e = env(&[
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ("HUBSPOT_TOKEN", "pat-1"),
    ]);
    let short = format!("{MINIMAL}[server]\nadmin_token = \"tooshort-secret\"\n");
    let found = problems(&short, &e);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("server.admin_token: is 15 characters long; use at least 32"),
        "{found:?}"
    );
    assert!(!found[0].contains("tooshort-secret"), "never echoed");

    let examples = r#"
[server]
admin_token = "example-admin-token-change-me-before-going-live"
[stripe]
webhook_secrets = ["whsec_replace_me_with_your_endpoint_secret"]
[hubspot]
token = "env:HUBSPOT_TOKEN"
"#;
    let found = problems(examples, &e);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("server.admin_token: is the starter's example value")),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("stripe.webhook_secrets[0]: is the starter's example value")),
        "{found:#?}"
    );
    // Against the embedded sandbox the examples are what they are for.
    let sandboxed = examples.replace("token = \"env:HUBSPOT_TOKEN\"", "sandbox = true");
    assert_eq!(problems(&sandboxed, &e), Vec::<String>::new());
    // The list names every example secret the starter holds.
    for secret in crate::config::EXAMPLE_SECRETS
        .iter()
        .filter(|s| !s.starts_with("change-me"))
    {
        assert!(STARTER.contains(secret), "{secret}");
    }
}

#[test]
fn an_open_admin_listener_stays_on_loopback() {
    let e = env(&[
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ("HUBSPOT_TOKEN", "pat-1"),
    ]);
    let open = format!("{MINIMAL}[server]\nadmin_listen = \"0.0.0.0:9090\"\n");
    let found = problems(&open, &e);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("server.admin_listen: 0.0.0.0:9090 is not a loopback address, and server.admin_token is not set"));
    let guarded = format!("{open}admin_token = \"{}\"\n", "t".repeat(32));
    assert_eq!(problems(&guarded, &e), Vec::<String>::new());
}

#[test]
fn outbound_hosts_are_plain_hosts() {
    let e = env(&[
        ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
        ("HUBSPOT_TOKEN", "pat-1"),
    ]);
    let text = format!(
        "{MINIMAL}[outbound]\nallow_hosts = [\"Hooks.Slack.com\", \"127.0.0.1:8089\", \"https://evil.example/x\"]\n"
    );
    let found = problems(&text, &e);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("outbound.allow_hosts[2]: `https://evil.example/x` is not a host")
    );
    let ok =
        format!("{MINIMAL}[outbound]\nallow_hosts = [\"Hooks.Slack.com\", \"127.0.0.1:8089\"]\n");
    let s = load_from_str(Some(&ok), None, &e).expect("loads");
    assert_eq!(
        s.outbound.allow_hosts,
        ["hooks.slack.com", "127.0.0.1:8089"]
    );
}
