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
    let body = fixture("invoice.paid.json");
    assert_eq!(app.post_signed(&body).await.status(), 200);
    app.drain().await;
    let id = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
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
    let body = fixture("invoice.paid.json");
    let id = serde_json::from_slice::<serde_json::Value>(&body).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
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
    let received = inside.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].path.starts_with("/provision/cus_"),
        "{}",
        received[0].path
    );
    app.stop().await;
}
