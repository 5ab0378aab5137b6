//! The parts of reading the settings that keep a deployment safe to expose: what makes a
//! deployment real (never sandbox mode by accident), secrets that must not go live, and the
//! hosts rules may call.

use crate::basics::{At, Fields};

use super::Settings;

/// Environment variables that make a deployment a real one: a secret or a HubSpot token
/// given through `PAYBRIDGE_*` overrides, or under the names the starter config reads.
pub(super) const REAL_DEPLOYMENT_VARS: &[&str] = &[
    "PAYBRIDGE_HUBSPOT__TOKEN",
    "PAYBRIDGE_STRIPE__WEBHOOK_SECRETS",
    "PAYBRIDGE_STRIPE__API_KEY",
    "PAYBRIDGE_SERVER__ADMIN_TOKEN",
    "PAYBRIDGE_ALERTS__SLACK_WEBHOOK_URL",
    "HUBSPOT_TOKEN",
    "STRIPE_WEBHOOK_SECRET",
    "PAYBRIDGE_ADMIN_TOKEN",
];

/// Secrets that must not go live: an admin token too short to resist guessing, and the
/// starter's example values next to a real HubSpot token. Values are never echoed.
pub(super) fn check_secrets(f: &mut Fields, s: &Settings, sandbox_flag: bool) {
    use super::{EXAMPLE_SECRETS, MIN_ADMIN_TOKEN_CHARS};
    if let Some(token) = &s.server.admin_token {
        let chars = token.expose().chars().count();
        if chars < MIN_ADMIN_TOKEN_CHARS {
            f.problem(
                "server.admin_token",
                format!(
                    "is {chars} characters long; use at least {MIN_ADMIN_TOKEN_CHARS} random characters (e.g. the output of `openssl rand -hex 32`)"
                ),
            );
        }
    }
    let real_hubspot = s.hubspot.token.is_some() && !s.sandbox_mode;
    if sandbox_flag && s.hubspot.token.is_some() {
        f.problem(
            "hubspot.token",
            "cannot be combined with `serve --sandbox` (which uses the embedded HubSpot sandbox): drop --sandbox to use your HubSpot account",
        );
    }
    if !real_hubspot {
        return;
    }
    let is_example = |secret: &crate::basics::Secret| EXAMPLE_SECRETS.contains(&secret.expose());
    let fix = "is the starter's example value, and hubspot.token is a real token: replace it with your own secret, e.g. env:NAME";
    if s.server.admin_token.as_ref().is_some_and(is_example) {
        f.problem(
            "server.admin_token",
            format!("{fix} (a random value of 32+ characters)"),
        );
    }
    for (i, secret) in s.stripe.webhook_secrets.iter().enumerate() {
        if is_example(secret) {
            f.problem(
                format!("stripe.webhook_secrets[{i}]"),
                format!("{fix} (the endpoint's signing secret from the Stripe dashboard)"),
            );
        }
    }
}

pub(super) fn outbound(f: &mut Fields, at: At, s: &mut Settings) {
    if let Some(hosts) = f.typed::<Vec<String>>(
        at,
        "allow_hosts",
        "a list of hosts, e.g. [\"hooks.slack.com\", \"app.example.com:8443\"]",
    ) {
        for (i, host) in hosts.iter().enumerate() {
            let plain = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            if plain {
                s.outbound.allow_hosts.push(host.to_ascii_lowercase());
            } else {
                f.problem(
                    format!("outbound.allow_hosts[{i}]"),
                    format!("`{host}` is not a host or host:port (no scheme, no path)"),
                );
            }
        }
    }
}
