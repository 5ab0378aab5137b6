//! The real binary: exit codes, config errors, secrets kept out of output, the events
//! commands working against the store with the server down.

mod common;

use common::process::{binary, start_serve};
use common::{SECRET, event_json};
use serde_json::Value;

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("paybridge.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn a_bad_config_exits_2_listing_every_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        r#"
[server]
listen = "not-an-address"
[stripe]
webhook_secrets = ["env:STRIPE_WEBHOOK_SECRET"]
[hubspot]
token = "env:HUBSPOT_TOKEN"
requests_per_10s = 5000
[worker]
concurency = 4
"#,
    );
    let out = binary()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env_remove("HUBSPOT_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "server.listen: `not-an-address` is not an address",
        "stripe.webhook_secrets[0]: env var STRIPE_WEBHOOK_SECRET is not set",
        "hubspot.token: env var HUBSPOT_TOKEN is not set",
        "hubspot.requests_per_10s: 5000 is out of range",
        "worker.concurency: unknown key",
        "the configuration has 5 problems",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_help_works() {
    let out = binary().arg("serve").arg("--bogus").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    for cmd in [
        &["--help"][..],
        &["serve", "--help"],
        &["events", "list", "--help"],
    ] {
        let out = binary().args(cmd).output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = binary()
        .current_dir(dir.path())
        .env_remove("PAYBRIDGE_CONFIG")
        .args(["events", "list", "--status", "finished"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--status: `finished` is not a status"));
}

#[tokio::test]
async fn secrets_never_appear_in_output_and_events_commands_work_with_the_server_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hubspot_token = "pat-na1-verysecrettoken-0000";
    let admin_token = "admin-verysecret-1111-2222-3333-4444";
    // A local HubSpot that knows this token: the workers use it, and it is never printed.
    let sandbox = common::spawn_sandbox(hubspot_sandbox::SandboxConfig {
        token: hubspot_token.into(),
        ..Default::default()
    })
    .await;
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_token = "{admin_token}"
[store]
url = "sqlite://{db}"
[stripe]
webhook_secrets = ["env:TEST_WHSEC"]
[hubspot]
token = "env:TEST_HUBSPOT_TOKEN"
api_base = "{hubspot}"
"#,
            db = dir.path().join("p.db").display(),
            hubspot = sandbox.url(),
        ),
    );
    let mut server = start_serve(
        dir.path(),
        Some(&config),
        &[
            ("TEST_WHSEC", SECRET),
            ("TEST_HUBSPOT_TOKEN", hubspot_token),
        ],
    );
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    for (i, kind) in ["invoice.paid", "payout.created", "invoice.paid"]
        .iter()
        .enumerate()
    {
        let body = event_json(&format!("evt_cli_{i}"), kind, "cus_CLI", now);
        let header = paybridge::stripe::sign(SECRET, now, &body);
        let r = client
            .post(format!("{}/webhooks/stripe", server.url))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 200);
    }
    // A forged one, logged as refused.
    let r = client
        .post(format!("{}/webhooks/stripe", server.url))
        .header("Stripe-Signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 400);
    let status = server.sigterm();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    let output = server.output_text();
    assert!(
        output.contains("received"),
        "the intake step is logged:\n{output}"
    );
    assert!(output.contains("webhook refused"));
    for secret in [SECRET, hubspot_token, admin_token] {
        assert!(
            !output.contains(secret),
            "a secret leaked into the output:\n{output}"
        );
    }

    let out = binary()
        .arg("--config")
        .arg(&config)
        .args(["events", "list", "--json"])
        .env("TEST_WHSEC", SECRET)
        .env("TEST_HUBSPOT_TOKEN", hubspot_token)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(list.len(), 3);
    for e in &list {
        for field in [
            "id",
            "type",
            "status",
            "customer",
            "created",
            "received_at",
            "attempts",
            "last_error",
        ] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
    }
    let ignored: Vec<&Value> = list.iter().filter(|e| e["status"] == "ignored").collect();
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0]["type"], "payout.created");

    let out = binary()
        .arg("--config")
        .arg(&config)
        .args(["events", "list", "--status", "ignored", "--json"])
        .env("TEST_WHSEC", SECRET)
        .env("TEST_HUBSPOT_TOKEN", hubspot_token)
        .output()
        .expect("runs");
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(list.len(), 1);

    let out = binary()
        .arg("--config")
        .arg(&config)
        .args(["events", "show", "evt_cli_0"])
        .env("TEST_WHSEC", SECRET)
        .env("TEST_HUBSPOT_TOKEN", hubspot_token)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("invoice.paid") && text.contains("cus_CLI"),
        "{text}"
    );
}

#[tokio::test]
async fn sandbox_mode_generates_a_webhook_secret_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("PAYBRIDGE_SERVER__LISTEN", "127.0.0.1:0"),
        ("PAYBRIDGE_SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
    ];
    let secret_of = |text: &str| {
        text.lines()
            .find_map(|l| l.split("webhook signing secret ").nth(1))
            .map(|s| s.trim().to_owned())
            .expect("the secret is printed")
    };
    let mut first = start_serve(dir.path(), None, &env);
    // The secret line follows the endpoint line; wait for the process to print it.
    let mut printed = String::new();
    for _ in 0..100 {
        printed = first.output_text();
        if printed.contains("webhook signing secret") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let secret = secret_of(&printed);
    assert!(secret.starts_with("whsec_"));
    assert!(
        dir.path().join("paybridge.db").exists(),
        "SQLite at ./paybridge.db"
    );
    // The printed secret verifies webhooks.
    let now = chrono::Utc::now().timestamp();
    let body = event_json("evt_sandbox_1", "invoice.paid", "cus_S", now);
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", first.url))
        .header(
            "Stripe-Signature",
            paybridge::stripe::sign(&secret, now, &body),
        )
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    first.sigterm();

    let mut second = start_serve(dir.path(), None, &env);
    for _ in 0..100 {
        printed = second.output_text();
        if printed.contains("webhook signing secret") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        secret_of(&printed),
        secret,
        "the same secret after a restart"
    );
    second.sigterm();
}

/// The network guard itself (issue 17): a server left pointing at the real HubSpot (no
/// `api_base`) tries to reach `api.hubapi.com:443` through the proxy the tests give every
/// child, and the tripwire records it, with or without internet on the machine. (This
/// test uses a tripwire of its own, so the shared one stays clean.)
#[tokio::test]
async fn the_network_guard_catches_a_call_beyond_loopback() {
    use common::network::Tripwire;

    let tripwire = Tripwire::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\ntoken = \"pat-guard-test\"\n",
            dir.path().join("p.db").display()
        ),
    );
    let env: Vec<(&str, String)> = tripwire.proxy_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = start_serve(dir.path(), Some(&config), &env);
    let now = chrono::Utc::now().timestamp();
    let body = event_json("evt_guard", "invoice.paid", "cus_guard", now);
    let r = common::post_signed_to(&reqwest::Client::new(), &server.url, body)
        .await
        .expect("answered");
    assert_eq!(r.status(), 200, "loopback is not proxied");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tripwire.attempts().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker's call to HubSpot never reached the tripwire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.sigterm();
    assert_eq!(tripwire.attempts()[0], "CONNECT api.hubapi.com:443");
}
