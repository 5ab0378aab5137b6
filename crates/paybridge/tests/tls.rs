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

#[test]
fn a_renewed_certificate_is_noticed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = common::tls::self_signed(dir.path(), "localhost");
    let loaded = paybridge::http::tls::Certificate::load(&cert, &key).expect("loads");
    assert!(!loaded.changed());
    common::tls::write_self_signed(&cert, &key, "renewed.localhost");
    assert!(loaded.changed(), "a new certificate in place");
    loaded.reload().expect("reloads");
    assert!(!loaded.changed());
    // A half-written renewal is refused and the previous pair stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ntruncated").expect("write");
    let err = loaded.reload().expect_err("refused");
    assert!(format!("{err:#}").contains("server.tls_key"), "{err:#}");
}

/// The real binary serves a renewed certificate after SIGHUP, without a restart.
#[tokio::test]
async fn sighup_makes_the_server_serve_the_renewed_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = common::tls::self_signed(dir.path(), "localhost");
    let renewed = dir.path().join("renewed");
    std::fs::create_dir(&renewed).expect("mkdir");
    let (new_cert, new_key) = common::tls::self_signed(&renewed, "localhost");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{}\"]\n[hubspot]\nsandbox = true\n",
            cert.display(),
            key.display(),
            dir.path().join("tls.db").display(),
            common::SECRET
        ),
    )
    .expect("config");
    let mut server = common::process::start_serve(dir.path(), Some(&config), &[]);
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    let url = format!("https://localhost:{port}/healthz");
    let trusting_only_the_renewal = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&new_cert).expect("read")).expect("PEM"),
        )
        .resolve(
            "localhost",
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )
        .build()
        .expect("client");
    assert!(
        trusting_only_the_renewal.get(&url).send().await.is_err(),
        "the first certificate is served at first"
    );
    std::fs::copy(&new_cert, &cert).expect("copy");
    std::fs::copy(&new_key, &key).expect("copy");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let line = server.wait_for_line("TLS certificate reloaded");
    assert!(!line.contains("ERROR"), "{line}");
    let r = trusting_only_the_renewal
        .get(&url)
        .send()
        .await
        .expect("the renewed certificate is served");
    assert_eq!(r.status(), 200);
    // A SIGHUP with nothing changed reloads the same pair (the signal itself is heard).
    let before = server.count_lines("TLS certificate reloaded");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let line = server.wait_for_nth_line("TLS certificate reloaded", before + 1);
    assert!(line.contains("SIGHUP"), "{line}");
    server.sigterm();
}

/// Out of file descriptors, the HTTPS listener neither spins nor floods the log (it used
/// to log a million lines in 4 s at 44% CPU): the connection cap fits the open-files
/// limit, and failed accepts back off and are logged at most once a second.
#[tokio::test]
async fn out_of_descriptors_the_https_listener_neither_spins_nor_floods_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = common::tls::self_signed(dir.path(), "localhost");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{}\"]\n[hubspot]\ntoken = \"pat-na1-test\"\napi_base = \"http://127.0.0.1:9\"\n",
            cert.display(),
            key.display(),
            dir.path().join("fd.db").display(),
            common::SECRET
        ),
    )
    .expect("config");
    let mut server = common::process::start_serve_with_open_files(dir.path(), &config, 64);
    let addr = server.url.trim_start_matches("https://").to_owned();
    // 300 connections held open: far more than 64 descriptors.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        {
            held.push(s);
        }
    }
    let lines_while_flooded = server.output_text().lines().count();
    drop(held);
    // Still serving once they are gone.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let url = format!("https://{addr}/healthz");
    let mut served = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    server.sigterm();
    assert!(served, "the listener serves again");
    assert!(
        lines_while_flooded < 200,
        "{lines_while_flooded} log lines: {}",
        server.output_text().chars().take(2_000).collect::<String>()
    );
}
