//! HTTPS on the public listener when `server.tls_cert` / `server.tls_key` are set.

mod common;

use common::{event_json, spawn_app_with};
use paybridge::domain::Clock;

#[tokio::test]
async fn webhooks_are_received_over_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (c, k) = (cert.clone(), key.clone());
    let app = spawn_app_with(
        move |s| {
            s.server.tls_cert = Some(c);
            s.server.tls_key = Some(k);
        },
        Clock::system(),
    )
    .await;
    let https = app.url.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let body = event_json("evt_tls_1", "invoice.paid", "cus_TLS", app.clock.now_secs());
    let header = paybridge::stripe::sign(common::SECRET, app.clock.now_secs(), &body);
    let r = client
        .post(format!("{https}/webhooks/stripe"))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .expect("answered over TLS");
    assert_eq!(r.status(), 200);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", app.url))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    assert_eq!(app.store.count_events().await.expect("count"), 1);
    app.stop().await;

    // A key that is not a key is refused at start, naming the setting.
    std::fs::write(&key, "not a key").expect("write");
    let mut settings = common::test_settings(dir.path());
    settings.server.tls_cert = Some(cert);
    settings.server.tls_key = Some(key);
    let err = paybridge::app::Application::build(settings.into(), Clock::system())
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("server.tls_key"), "{err:#}");
}
