//! The real binary's `sandbox` and `simulate` commands.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::process::{binary, start_serve};
use common::{SECRET, spawn_app};
use paybridge::store::EventFilter;

/// A config file whose only job here is to give `simulate` the test app's secret.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("paybridge.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
url = "sqlite://{db}"
[stripe]
webhook_secrets = ["{SECRET}"]
[hubspot]
token = "not-used-by-simulate"
"#,
            db = dir.join("simulate-side.db").display()
        ),
    )
    .expect("write config");
    path
}

/// Runs `paybridge [--config FILE] simulate ARGS…` in `dir` without blocking the runtime
/// (the app under test runs on it).
async fn simulate(dir: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = binary();
    cmd.current_dir(dir).env_remove("PAYBRIDGE_CONFIG");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("simulate").args(args);
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `(type, id, http status, answer)` of each line `simulate` printed.
fn printed_events(out: &Output) -> Vec<(String, String, u16, String)> {
    text(&out.stdout)
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            assert!(parts.len() >= 4, "type, id, status, answer: {line}");
            (
                parts[0].to_owned(),
                parts[1].to_owned(),
                parts[2].parse().expect("an HTTP status"),
                parts[3..].join(" "),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sandbox_runs_on_its_own_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = binary()
        .current_dir(dir.path())
        .env_remove("PAYBRIDGE_CONFIG")
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the sandbox prints its URL");
    assert!(
        line.starts_with("HubSpot sandbox listening on http://127.0.0.1:")
            && line.ends_with("(token sandbox-token)"),
        "{line}"
    );
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");

    let client = reqwest::Client::new();
    let owners = client
        .get(format!("{url}/crm/v3/owners"))
        .bearer_auth("sandbox-token")
        .send()
        .await
        .expect("answered");
    assert_eq!(owners.status(), 200);
    let body: serde_json::Value = owners.json().await.expect("JSON");
    assert!(
        body["results"].as_array().is_some_and(|r| !r.is_empty()),
        "the standard seed's owners: {body}"
    );
    let unauthenticated = client
        .get(format!("{url}/crm/v3/owners"))
        .send()
        .await
        .expect("answered");
    assert_eq!(unauthenticated.status(), 401);

    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joins")
        .expect("the process exits");
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
    assert!(
        !dir.path().join("paybridge.db").exists(),
        "the sandbox needs no store"
    );
}

#[test]
fn a_bad_seed_file_exits_2_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, "{ \"owners\": [ oops ] }").expect("write seed");
    let out = binary()
        .current_dir(dir.path())
        .args(["sandbox", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&seed)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("seed.json") && stderr.contains("line 1"),
        "{stderr}"
    );

    let missing = dir.path().join("nowhere.json");
    let out = binary()
        .args(["sandbox", "--listen", "127.0.0.1:0", "--seed"])
        .arg(&missing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nowhere.json"), "{stderr}");
}

#[tokio::test]
async fn simulate_sends_a_signed_event_the_server_stores_for_the_customer() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let out = simulate(
        dir.path(),
        Some(&config),
        &[
            "invoice.paid",
            "--customer",
            "cus_simCmd42",
            "--email",
            "Grace@Example.org",
            "--amount",
            "9900",
            "--url",
            &app.url,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = printed_events(&out);
    assert_eq!(printed.len(), 1);
    let (kind, id, status, answer) = &printed[0];
    assert_eq!(kind, "invoice.paid");
    assert!(id.starts_with("evt_"), "{id}");
    assert_eq!((*status, answer.as_str()), (200, "pending"));

    let stored = app
        .store
        .get_event_summary(id)
        .await
        .expect("store")
        .expect("the event is stored");
    assert_eq!(stored.kind, "invoice.paid");
    assert_eq!(stored.customer.as_deref(), Some("cus_simCmd42"));
    let payload = app
        .store
        .payload(id)
        .await
        .expect("store")
        .expect("payload kept");
    let fact = paybridge::stripe::normalise(&payload).expect("a Stripe event");
    assert_eq!(fact.email.as_deref(), Some("grace@example.org"));
    assert_eq!(
        fact.amount,
        Some(paybridge::domain::Money::new(9_900, "usd"))
    );
    app.stop().await;
}

#[tokio::test]
async fn simulate_refuses_unknown_types_and_bad_options_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let out = simulate(dir.path(), Some(&config), &["invoice.exploded"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invoice.exploded")
            && stderr.contains("invoice.paid")
            && stderr.contains("customer.subscription.deleted"),
        "the supported types are listed: {stderr}"
    );
    for args in [
        &["invoice.paid", "--amount", "0"][..],
        &["invoice.paid", "--customer", "bob"],
        &["invoice.paid", "--story"],
        &["--outcome", "cancelled"],
        &["--story", "--outcome", "maybe"],
        &["invoice.paid", "--url", "not a url"],
    ] {
        let out = simulate(dir.path(), Some(&config), args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_refused_event_exits_1() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wrong-secret.toml");
    std::fs::write(
        &config,
        "[stripe]\nwebhook_secrets = [\"whsec_not_the_servers\"]\n[hubspot]\ntoken = \"x\"\n",
    )
    .expect("write config");
    let out = simulate(
        dir.path(),
        Some(&config),
        &[
            "customer.created",
            "--url",
            &format!("{}/webhooks/stripe", app.url),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let printed = printed_events(&out);
    assert_eq!(printed[0].2, 400);
    assert!(printed[0].3.starts_with("bad_signature"), "{printed:?}");
    assert_eq!(app.store.count_events().await.expect("count"), 0);
    app.stop().await;
}

#[tokio::test]
async fn simulate_story_stores_a_whole_customer_life_in_order() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    for (outcome, last) in [
        (
            "recovered",
            &["invoice.paid", "customer.subscription.updated"][..],
        ),
        ("cancelled", &["customer.subscription.deleted"]),
    ] {
        let customer = format!("cus_simStory{outcome}");
        let out = simulate(
            dir.path(),
            Some(&config),
            &[
                "--story",
                "--outcome",
                outcome,
                "--customer",
                &customer,
                "--url",
                &app.url,
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut expected = vec![
            "customer.created",
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid",
            "charge.succeeded",
            "charge.refunded",
            "invoice.payment_failed",
            "customer.subscription.updated",
        ];
        expected.extend_from_slice(last);
        let printed = printed_events(&out);
        let printed_kinds: Vec<&str> = printed.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(printed_kinds, expected);
        assert!(printed.iter().all(|p| p.2 == 200 && p.3 == "pending"));

        let mut stored = app
            .store
            .list_events(&EventFilter {
                customer: Some(customer.clone()),
                limit: 100,
                ..EventFilter::default()
            })
            .await
            .expect("list");
        stored.sort_by_key(|e| e.created);
        let stored_kinds: Vec<&str> = stored.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(stored_kinds, expected, "every event, in order of `created`");
        let ids: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
        let printed_ids: Vec<&str> = printed.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(ids, printed_ids, "sent in the order they happened");
        assert!(
            stored.windows(2).all(|w| w[1].created == w[0].created + 1),
            "a second apart"
        );
    }
    assert_eq!(app.store.count_events().await.expect("count"), 19);
    app.stop().await;
}

#[tokio::test]
async fn in_sandbox_mode_simulate_signs_with_the_secret_serve_generated() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Before any `serve`: nothing to sign with, and no database is created.
    let out = simulate(
        dir.path(),
        None,
        &["customer.created", "--url", "http://127.0.0.1:9"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("start `paybridge serve` first"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("paybridge.db").exists());

    let mut server = start_serve(
        dir.path(),
        None,
        &[
            ("PAYBRIDGE_SERVER__LISTEN", "127.0.0.1:0"),
            ("PAYBRIDGE_SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    );
    let out = simulate(
        dir.path(),
        None,
        &[
            "customer.created",
            "--customer",
            "cus_simSandbox1",
            "--url",
            &server.url,
        ],
    )
    .await;
    let status = server.sigterm();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nserver:\n{}",
        text(&out.stderr),
        server.output_text()
    );
    let printed = printed_events(&out);
    assert_eq!(printed[0].0, "customer.created");
    assert_eq!(printed[0].2, 200);
    assert!(status.success(), "{status:?}");
}
