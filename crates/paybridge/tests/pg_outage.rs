//! Postgres away (issue 16, bad conditions), against the real binary: unreachable at start
//! is a clear error naming the URL without its password (exit 2); lost at run time, intake
//! answers 503 (Stripe retries), `/readyz` fails, workers back off, and once the database
//! is back everything acknowledged is done, by itself.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::process::{binary, start_serve};
use common::{SECRET, event_json, pg};
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A TCP relay to Postgres that the test can cut (every connection reset, new ones
/// refused) and restore: a database that vanishes from the network and comes back.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Relay {
    async fn to(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let (target, cut) = (target.clone(), cut2.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` (postgres://user@host:port/db) through `port` on loopback.
fn through(url: &str, port: u16) -> String {
    let mut u = reqwest::Url::parse(url).expect("url");
    u.set_host(Some("127.0.0.1")).expect("host");
    u.set_port(Some(port)).expect("port");
    u.to_string()
}

fn host_port(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("url");
    format!(
        "{}:{}",
        u.host_str().unwrap_or("127.0.0.1"),
        u.port().unwrap_or(5432)
    )
}

fn config(dir: &std::path::Path, store_url: &str, hubspot: &str) -> std::path::PathBuf {
    let path = dir.join("paybridge.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [store]\nurl = \"{store_url}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n\
             [hubspot]\ntoken = \"sandbox-token\"\napi_base = \"{hubspot}\"\n\
             [worker]\nbackoff_base = \"100ms\"\nbackoff_max = \"2s\"\n"
        ),
    )
    .expect("config");
    path
}

#[tokio::test]
async fn postgres_unreachable_at_start_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgres://paybridge:hunter2-secret@127.0.0.1:{port}/paybridge");
    let config = config(dir.path(), &url, "http://127.0.0.1:9");
    let out = binary()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("PAYBRIDGE_CONFIG")
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "cannot connect to Postgres at postgres://paybridge:***@127.0.0.1:{port}/paybridge"
        )),
        "{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "the password was printed: {text}"
    );
}

// Multi-threaded: the relay and the sandbox keep answering while `start_serve` blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_at_run_time_answers_503_and_recovers_by_itself() {
    let sandbox = common::spawn_sandbox(hubspot_sandbox::SandboxConfig::default()).await;
    let db = pg::database().await;
    let relay = Relay::to(host_port(db.url())).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), &through(db.url(), relay.port), &sandbox.url());
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let post = |id: &str, customer: &str| {
        let now = chrono::Utc::now().timestamp();
        let body = event_json(id, "invoice.paid", customer, now);
        client
            .post(format!("{}/webhooks/stripe", server.url))
            .header(
                "Stripe-Signature",
                paybridge::stripe::sign(SECRET, now, &body),
            )
            .body(body)
            .send()
    };
    let ready = || client.get(format!("{}/readyz", server.url)).send();
    assert_eq!(
        post("evt_before", "cus_a")
            .await
            .expect("answered")
            .status(),
        200
    );
    assert_eq!(ready().await.expect("answered").status(), 200);
    // Acknowledged, then the database goes away before (or while) it is worked on.
    assert_eq!(
        post("evt_acked", "cus_b").await.expect("answered").status(),
        200
    );
    relay.cut();
    let r = post("evt_during", "cus_c").await.expect("answered");
    assert_eq!(r.status(), 503, "intake refuses what it cannot store");
    assert!(r.headers().contains_key("retry-after"));
    let started = Instant::now();
    let r = ready().await.expect("answered");
    assert_eq!(r.status(), 503, "not ready without the database");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "readiness is bounded"
    );
    // Back: ready again within seconds, Stripe's retry is stored, everything is done.
    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        post("evt_during", "cus_c")
            .await
            .expect("answered")
            .status(),
        200
    );
    let store = Store::open(db.url(), Clock::system()).await.expect("store");
    let ids = ["evt_before", "evt_acked", "evt_during"];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut statuses = Vec::new();
        for id in ids {
            let s = store.get_event_summary(id).await.expect("read");
            statuses.push(s.map(|s| s.status));
        }
        if statuses.iter().all(|s| *s == Some(EventStatus::Done)) {
            break;
        }
        assert!(Instant::now() < deadline, "not all done: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        server
            .output_text()
            .contains("claiming jobs failed; backing off")
            || server.output_text().contains("webhook not stored"),
        "the outage was noticed: {}",
        server.output_text()
    );
    // One contact per customer: nothing done twice across the outage.
    let contacts = common::crm::records(&sandbox.state(), "contacts");
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    store.close().await;
    server.sigterm();
}
