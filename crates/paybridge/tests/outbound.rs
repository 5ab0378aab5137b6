//! Requests paybridge sends on the rules' behalf (provisioning calls, Slack) go only where
//! the configuration says: redirects are not followed, private addresses are refused unless
//! listed in `[outbound] allow_hosts`, and event data cannot choose the host.

mod common;

use axum::http::{StatusCode, header};
use common::receiver::Receiver;
use common::{fixture, settings_from_config, spawn_app_in, spawn_sandbox};
use hubspot_sandbox::SandboxConfig;
use paybridge::domain::{Clock, EventStatus};

fn config(url: &str) -> String {
    format!(
        r#"
[worker]
max_attempts = 2
[[rules]]
name = "provisioning"
on = ["invoice.paid"]
actions = [{{ type = "call_webhook", url = "{url}/provision/{{{{ customer.id }}}}", secret = "test-provisioning-secret-0123456789" }}]
"#
    )
}

/// A server that answers every POST with a redirect to `to`.
async fn redirector(to: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move { (StatusCode::FOUND, [(header::LOCATION, to)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// The `invoice.paid` fixture and its event id.
fn invoice_paid() -> (Vec<u8>, String) {
    let body = fixture("invoice.paid.json");
    let id = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (body, id)
}

/// `inside` was called once, with the provisioning rule's path.
fn assert_one_provisioning_call(inside: &Receiver) {
    let received = inside.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].path.starts_with("/provision/cus_"),
        "{}",
        received[0].path
    );
}

async fn status_and_error(app: &common::TestApp, id: &str) -> (EventStatus, String) {
    let e = app
        .store
        .get_event_summary(id)
        .await
        .expect("read")
        .expect("stored");
    (e.status, e.last_error.unwrap_or_default())
}

#[tokio::test]
async fn a_redirect_is_an_answer_not_a_new_destination() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let elsewhere = Receiver::start(vec![]).await;
    let redirecting = redirector(format!("{}/stolen", elsewhere.url)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = settings_from_config(&config(&redirecting), dir.path(), &sandbox);
    let app = spawn_app_in(dir, loaded, Clock::system()).await;
    let (body, id) = invoice_paid();
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.drain().await;
    let (status, error) = status_and_error(&app, &id).await;
    assert_eq!(status, EventStatus::Dead, "{error}");
    assert!(
        error.contains("answered 302") && error.contains("redirects are not followed"),
        "{error}"
    );
    assert!(
        elsewhere.received().is_empty(),
        "the signed body went where the redirect pointed"
    );
    app.stop().await;
}

#[tokio::test]
async fn private_addresses_are_called_only_when_listed() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let inside = Receiver::start(vec![]).await;
    let port = inside.url.rsplit(':').next().expect("port").to_owned();
    let (body, id) = invoice_paid();
    // Not listed: neither the address nor a name that resolves to it is called.
    for (url, why) in [
        (inside.url.clone(), "is a private address"),
        (
            format!("http://localhost:{port}"),
            "resolves only to private addresses",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut loaded = settings_from_config(&config(&url), dir.path(), &sandbox);
        loaded.settings.outbound.allow_hosts.clear();
        let app = spawn_app_in(dir, loaded, Clock::system()).await;
        assert_eq!(app.post_signed(&body).await.status(), 200);
        app.drain().await;
        let (status, error) = status_and_error(&app, &id).await;
        assert_eq!(status, EventStatus::Dead, "{url}: {error}");
        assert!(error.contains(why), "{url}: {error}");
        app.stop().await;
    }
    assert!(
        inside.received().is_empty(),
        "nothing reached the private address"
    );

    // Listed (host and port): called.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut loaded = settings_from_config(&config(&inside.url), dir.path(), &sandbox);
    loaded.settings.outbound.allow_hosts = vec![format!("127.0.0.1:{port}")];
    let app = spawn_app_in(dir, loaded, Clock::system()).await;
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.drain().await;
    assert_eq!(status_and_error(&app, &id).await.0, EventStatus::Done);
    assert_one_provisioning_call(&inside);
    app.stop().await;
}

/// The real binary with `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` pointing at `proxy` (loopback
/// addresses, where the sandbox listens, excepted; `localhost` not): runs `config(url)` with
/// `allow` as `[outbound] allow_hosts` on one `invoice.paid` and answers the event's status
/// and last error once it is done or dead.
async fn serve_behind_proxy(
    sandbox: &hubspot_sandbox::Sandbox,
    proxy: &common::network::Tripwire,
    url: &str,
    allow: &[String],
) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut root: toml::Table =
        toml::from_str(&common::test_config_text(&config(url), dir.path(), sandbox)).expect("TOML");
    let mut outbound = toml::Table::new();
    outbound.insert(
        "allow_hosts".into(),
        toml::Value::Array(allow.iter().map(|h| h.as_str().into()).collect()),
    );
    root.insert("outbound".into(), toml::Value::Table(outbound));
    let file = dir.path().join("paybridge.toml");
    std::fs::write(&file, toml::to_string(&root).expect("TOML")).expect("write config");
    let env = proxy.proxy_env_except("127.0.0.1,::1");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = common::process::start_serve(dir.path(), Some(&file), &env);
    let admin = server
        .wait_for_line("dashboard):")
        .split("dashboard):")
        .nth(1)
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .expect("the admin URL");
    let (body, id) = invoice_paid();
    let http = reqwest::Client::new();
    let r = common::post_signed_to(&http, &server.url, body)
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let event = loop {
        let shown: serde_json::Value = http
            .get(format!("{admin}/api/events/{id}"))
            .bearer_auth(common::ADMIN_TOKEN)
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("json");
        let event = shown["event"].clone();
        if matches!(event["status"].as_str(), Some("done" | "dead")) {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event never finished: {shown}\n{}",
            server.output_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    server.sigterm();
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    (text("status"), text("last_error"))
}

/// A deployment with proxy variables: through a proxy, the client would resolve only the
/// proxy's name and the proxy the target's, so a name resolving to a private address would
/// escape the check. Rule calls ignore the variables: `localhost`, not listed, is refused
/// and the proxy sees nothing; listed, it is called directly, still not through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_proxies_do_not_carry_rule_calls() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let inside = Receiver::start(vec![]).await;
    let port = inside.url.rsplit(':').next().expect("port").to_owned();
    let url = format!("http://localhost:{port}");
    let proxy = common::network::Tripwire::start();

    let (status, error) = serve_behind_proxy(&sandbox, &proxy, &url, &[]).await;
    assert_eq!(status, "dead", "{error}");
    assert!(
        error.contains("localhost resolves only to private addresses"),
        "{error}"
    );
    assert_eq!(
        proxy.attempts(),
        Vec::<String>::new(),
        "the proxy was asked"
    );
    assert!(
        inside.received().is_empty(),
        "the private address was called"
    );

    let listed = [format!("localhost:{port}")];
    let (status, error) = serve_behind_proxy(&sandbox, &proxy, &url, &listed).await;
    assert_eq!(status, "done", "{error}");
    assert_eq!(
        proxy.attempts(),
        Vec::<String>::new(),
        "the proxy was asked"
    );
    assert_one_provisioning_call(&inside);
}
