//! Safe to expose (issue 13): the listeners against slow and hostile clients, the admin
//! side's sign-in and sessions, a deployment configured through the environment alone.
//! Timeouts are shortened through the settings (production: 10 s headers, 15 s bodies) so
//! each test takes well under a second of waiting; the assertions are about what happens,
//! with generous bounds, never about how fast.

mod common;

use std::time::Duration;

use common::{SECRET, event_json, spawn_app_with};
use paybridge::domain::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "admin-test-token-0123456789abcdef";
/// How long a test waits for something the server must do on its own.
const PATIENCE: Duration = Duration::from_secs(20);

fn short_timeouts(s: &mut paybridge::config::Settings) {
    s.server.timeouts.header = Duration::from_millis(300);
    s.server.timeouts.body = Duration::from_millis(500);
    s.server.timeouts.idle = Duration::from_millis(500);
    s.server.timeouts.shutdown = Duration::from_millis(500);
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Everything the server sends until it closes the connection (or PATIENCE runs out:
/// then the test fails, the server having kept the connection open).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut all)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn half_sent_headers_are_cut_off_and_a_trickling_body_gets_408() {
    let app = spawn_app_with(short_timeouts, Clock::system()).await;
    // Headers that never end.
    let mut slow = TcpStream::connect(addr(&app.url)).await.expect("connect");
    slow.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Sig")
        .await
        .expect("write");
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A body that trickles: a tenth of what it declares, then nothing.
    let body = event_json(
        "evt_slow_1",
        "invoice.paid",
        "cus_SLOW",
        app.clock.now_secs(),
    );
    let header = paybridge::stripe::sign(SECRET, app.clock.now_secs(), &body);
    let mut trickle = TcpStream::connect(addr(&app.url)).await.expect("connect");
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: {header}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    trickle.write_all(head.as_bytes()).await.expect("write");
    trickle
        .write_all(&body[..body.len() / 10])
        .await
        .expect("write");
    let answer = read_until_closed(&mut trickle).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");

    // A connection that says nothing at all is closed too.
    let mut idle = TcpStream::connect(addr(&app.url)).await.expect("connect");
    assert_eq!(read_until_closed(&mut idle).await, "");

    assert_eq!(app.store.count_events().await.expect("count"), 0);
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503_with_retry_after() {
    let app = spawn_app_with(
        |s| {
            s.server.max_connections = 16;
            s.server.timeouts.header = Duration::from_secs(60);
        },
        Clock::system(),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(TcpStream::connect(addr(&app.url)).await.expect("connect"));
    }
    // The 16 are accepted before the next one (one accept loop, in order); prove it by a
    // request on one of them.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = held[0].read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let mut over = TcpStream::connect(addr(&app.url)).await.expect("connect");
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = read_until_closed(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");

    // Once connections close, new ones are served again.
    drop(held);
    let served = async {
        loop {
            match app.client.get(format!("{}/healthz", app.url)).send().await {
                Ok(r) if r.status() == 200 => return,
                _ => tokio::task::yield_now().await,
            }
        }
    };
    assert!(tokio::time::timeout(PATIENCE, served).await.is_ok());
    app.stop().await;
}

#[tokio::test]
async fn shutdown_is_bounded_even_with_a_client_that_never_finishes() {
    let app = spawn_app_with(
        |s| {
            // Only the shutdown grace can end this client's connection.
            s.server.timeouts.header = Duration::from_secs(600);
            s.server.timeouts.idle = Duration::from_secs(600);
            s.server.timeouts.shutdown = Duration::from_millis(300);
        },
        Clock::system(),
    )
    .await;
    let mut slow = TcpStream::connect(addr(&app.url)).await.expect("connect");
    slow.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("write");
    // The handler is reading the body when shutdown starts.
    let stopped = tokio::time::timeout(PATIENCE, app.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the slow client");
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_short_and_plain() {
    let app = spawn_app_with(|_| {}, Clock::system()).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let plain = "req-0123_abc.9";
    let r = app
        .client
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", plain)
        .send()
        .await
        .expect("answered");
    assert_eq!(id_of(&r), plain);
    let forged = format!("{} event_id=evt_forged outcome=accepted", "x".repeat(4_000));
    for hostile in [forged.as_str(), "abc def", "a\"b", &"y".repeat(65)] {
        let r = app
            .client
            .get(format!("{}/healthz", app.url))
            .header("x-request-id", hostile)
            .send()
            .await
            .expect("answered");
        let id = id_of(&r);
        assert_ne!(id, hostile);
        assert_eq!(id.len(), 36, "a generated UUID: {id}");
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_admin_tokens_are_throttled_per_address() {
    let app = spawn_app_with(|_| {}, Clock::manual(1_790_000_000_000)).await;
    let api = format!("{}/api/events", app.admin_url);
    let with = |token: &str| {
        app.client
            .get(&api)
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    // The scheme is case-insensitive.
    let r = app
        .client
        .get(&api)
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            with(&format!("wrong-{i}"))
                .await
                .expect("answered")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // Locked out: even the right token waits, and is told how long.
    let r = with(TOKEN).await.expect("answered");
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(wait >= 1);
    // The dashboard's sign-in form shares the lockout.
    let sign_in_form = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(format!("{}/login", app.admin_url))
            .form(&[("token", TOKEN), ("next", "/")])
            .send()
            .await
            .expect("answered")
            .status()
    };
    assert_eq!(sign_in_form().await, 429);
    // Once the lockout is over, the right token works (and clears the address).
    app.clock.advance_ms(wait as i64 * 1_000);
    assert_eq!(with(TOKEN).await.expect("answered").status(), 200);
    assert_eq!(sign_in_form().await, 303);
    app.stop().await;
}

/// Signs in; returns the session cookie pair and the whole Set-Cookie header.
async fn sign_in(http: &reqwest::Client, base: &str, next: &str) -> (String, String, String) {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN), ("next", next)])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().expect("ascii").to_owned();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let pair = cookie.split(';').next().expect("pair").to_owned();
    (pair, cookie, location)
}

#[tokio::test]
async fn sign_out_ends_the_session_for_good_and_sign_in_stays_on_this_listener() {
    let app = spawn_app_with(|_| {}, Clock::system()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = app.admin_url.clone();
    // `/\t/evil.example` is `//evil.example` to a browser.
    let (session, cookie, location) = sign_in(&http, &base, "/\t/evil.example").await;
    assert_eq!(location, "/");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &session)
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("body");
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the sign-out form carries a CSRF token")
        .to_owned();
    let r = http
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 303);
    // The browser forgot the cookie; someone who copied it cannot use it.
    let r = http
        .get(format!("{base}/health.json"))
        .header("cookie", &session)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 401, "a revoked session is refused");

    // Behind a TLS-terminating proxy that says so, the cookie is Secure.
    let r = http
        .post(format!("{base}/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", TOKEN), ("next", "/")])
        .send()
        .await
        .expect("answered");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn the_dashboard_served_over_tls_sets_a_secure_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = common::tls::self_signed(dir.path(), "localhost");
    let app = spawn_app_with(
        move |s| {
            s.server.tls_cert = Some(cert);
            s.server.tls_key = Some(key);
            s.server.admin_tls = true;
        },
        Clock::system(),
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let base = app.admin_url.replace("http://", "https://");
    let (_, cookie, _) = sign_in(&http, &base, "/").await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test]
async fn an_environment_only_deployment_keeps_its_secret_and_its_admin_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "whsec_from_the_environment_only_0123";
    let env = [
        ("PAYBRIDGE_SERVER__LISTEN", "127.0.0.1:0"),
        ("PAYBRIDGE_SERVER__ADMIN_LISTEN", "127.0.0.1:0"),
        ("PAYBRIDGE_STRIPE__WEBHOOK_SECRETS", secret),
        ("PAYBRIDGE_HUBSPOT__TOKEN", "pat-na1-from-the-environment"),
        ("PAYBRIDGE_HUBSPOT__API_BASE", "http://127.0.0.1:9"),
    ];
    let mut server = common::process::start_serve(dir.path(), None, &env);
    let admin = server
        .wait_for_line("dashboard):")
        .split("dashboard):")
        .nth(1)
        .map(|u| u.trim().to_owned())
        .expect("the admin URL");
    let http = reqwest::Client::new();
    for path in ["metrics", "api/events"] {
        let r = http
            .get(format!("{admin}{path}"))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 401, "{path} without a token");
    }
    let r = http
        .get(&admin)
        .header("accept", "text/html")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 401, "the dashboard is disabled without a token");
    // The configured secret verifies webhooks and is never printed.
    let now = chrono::Utc::now().timestamp();
    let body = event_json("evt_env_1", "invoice.paid", "cus_ENV", now);
    let r = http
        .post(format!("{}/webhooks/stripe", server.url))
        .header(
            "Stripe-Signature",
            paybridge::stripe::sign(secret, now, &body),
        )
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    server.sigterm();
    let output = server.output_text();
    assert!(!output.contains(secret), "{output}");
    assert!(!output.contains("sandbox"), "{output}");
}

#[tokio::test]
async fn events_show_and_list_print_customer_text_without_terminal_escapes() {
    let app = spawn_app_with(|_| {}, Clock::system()).await;
    let mut event: serde_json::Value =
        serde_json::from_slice(&common::fixture("customer.created.json")).expect("json");
    event["id"] = "evt_escape_1".into();
    event["data"]["object"]["name"] = "\u{1b}]0;pwned\u{7}Ada\u{1b}[2J\u{202e}".into();
    let body = serde_json::to_vec(&event).expect("json");
    assert_eq!(app.post_signed(&body).await.status(), 200);
    let db = app.db_path.clone();
    let dir = app.stop().await;
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\nsandbox = true\n",
            db.display()
        ),
    )
    .expect("config");
    for args in [
        &["events", "show", "evt_escape_1"][..],
        &["events", "list"][..],
    ] {
        let out = common::process::binary()
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(
            !text
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}'),
            "{args:?} printed a control character: {text:?}"
        );
        if args[1] == "show" {
            assert!(
                text.contains("\\u{1b}]0;pwned\\u{7}Ada\\u{1b}[2J\\u{202e}"),
                "{text}"
            );
        }
    }
}

/// The hostile mix of `examples/hostile_bench.rs`, small: each kind refused (or cut off),
/// nothing stored, the health check answering all along.
#[tokio::test]
async fn a_mix_of_hostile_requests_is_refused_and_nothing_is_stored() {
    let app = spawn_app_with(short_timeouts, Clock::system()).await;
    let now = app.clock.now_secs();
    let body = event_json("evt_hostile_1", "invoice.paid", "cus_HOSTILE", now);
    let sign = |t: i64, secret: &str, body: &[u8]| paybridge::stripe::sign(secret, t, body);
    let request = |signature: &[u8], body: &[u8], declared: usize| {
        let mut r = format!(
            "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {declared}\r\nStripe-Signature: "
        )
        .into_bytes();
        r.extend_from_slice(signature);
        r.extend_from_slice(b"\r\n\r\n");
        r.extend_from_slice(body);
        r
    };
    let mut non_utf8 = body.clone();
    non_utf8.splice(5..5, [0xff, 0xfe]);
    let junk = b"{\"id\": \"evt_x\", \"type\": ";
    let full = |r: Vec<u8>| {
        let n = r.len();
        (r, n)
    };
    let signed = request(sign(now, SECRET, &body).as_bytes(), &body, body.len());
    let head = signed.len() - body.len();
    // (what, (bytes, how many to send), the statuses allowed; "" = closed without one)
    type Case<'a> = (&'a str, (Vec<u8>, usize), &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "forged",
            full(request(
                sign(now, "whsec_wrong", &body).as_bytes(),
                &body,
                body.len(),
            )),
            &["400"],
        ),
        (
            "stale",
            full(request(
                sign(now - 3_600, SECRET, &body).as_bytes(),
                &body,
                body.len(),
            )),
            &["400"],
        ),
        (
            "future",
            full(request(
                sign(now + 3_600, SECRET, &body).as_bytes(),
                &body,
                body.len(),
            )),
            &["400"],
        ),
        (
            "oversized",
            full(request(
                sign(now, SECRET, &body).as_bytes(),
                &[b'x'; 4096],
                2 << 20,
            )),
            &["413", ""],
        ),
        (
            "malformed",
            full(request(
                sign(now, SECRET, junk).as_bytes(),
                junk,
                junk.len(),
            )),
            &["400"],
        ),
        (
            "non-UTF-8 body",
            full(request(
                sign(now, SECRET, &non_utf8).as_bytes(),
                &non_utf8,
                non_utf8.len(),
            )),
            &["400"],
        ),
        (
            "non-UTF-8 header",
            full(request(b"t=1,v1=\xff\xfe", &body, body.len())),
            &["400"],
        ),
        ("slow header", (signed.clone(), 30), &[""]),
        ("slow body", (signed.clone(), head + 10), &["408"]),
    ];
    for (name, (bytes, send), allowed) in &cases {
        let mut stream = TcpStream::connect(addr(&app.url)).await.expect("connect");
        stream.write_all(&bytes[..*send]).await.expect("write");
        let answer = read_until_closed(&mut stream).await;
        let status = answer.get(9..12).unwrap_or("");
        assert!(allowed.contains(&status), "{name}: {answer}");
        let health = app
            .client
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .expect("answered");
        assert_eq!(health.status(), 200, "after {name}");
    }
    assert_eq!(
        app.store.count_events().await.expect("count"),
        0,
        "none stored"
    );
    app.stop().await;
}
