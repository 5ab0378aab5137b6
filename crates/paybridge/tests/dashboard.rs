//! The dashboard as a person uses it: Debian's Chromium, headless, driven through
//! `chromedriver` (W3C WebDriver over HTTP) against the real app with seeded events. It
//! signs in, filters the log, opens a dead event, presses Retry once the cause is fixed and
//! sees the status change; screenshots land in target/ for a person to look at.
//! Plus the refusals without the admin token, over plain HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::story::event;
use common::{TestApp, spawn_app_with, use_sandbox};
use hubspot_sandbox::{Sandbox, SandboxConfig};
use paybridge::domain::{Clock, EventId, EventStatus};
use serde_json::{Value, json};

const TOKEN: &str = "admin-test-token-0123456789abcdef";
const PORTAL: u64 = 4_242_424;
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const MISSING_PROPERTY: &str = "stripe_last_payment_amount";

/// The seeded world: a portal without one property the financial plan writes, so the
/// payment of customer Ada dies on a terminal HubSpot error until it is created.
struct World {
    app: TestApp,
    sandbox: Sandbox,
    dead: String,
}

async fn world() -> World {
    let defs: Vec<_> = paybridge::rules::properties::builtin("stripe_customer_id")
        .into_iter()
        .filter(|d| d.name != MISSING_PROPERTY)
        .collect();
    let sandbox = common::spawn_sandbox_with(SandboxConfig::default(), defs).await;
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.hubspot.portal_id = Some(PORTAL);
        },
        Clock::system(),
    )
    .await;
    let now = app.clock.now_secs();
    let ada = ("cus_dash_ada", "ada@example.com");
    let bob = ("cus_dash_bob", "bob@example.com");
    let mut events = vec![
        event(
            "customer.created.json",
            "evt_dash_ada_0",
            ada.0,
            ada.1,
            now - 900,
        ),
        event(
            "customer.subscription.created.json",
            "evt_dash_ada_1",
            ada.0,
            ada.1,
            now - 890,
        ),
        event(
            "invoice.payment_failed.json",
            "evt_dash_ada_2",
            ada.0,
            ada.1,
            now - 600,
        ),
        event(
            "invoice.paid.json",
            "evt_dash_ada_3",
            ada.0,
            ada.1,
            now - 30,
        ),
        event(
            "customer.created.json",
            "evt_dash_bob_0",
            bob.0,
            bob.1,
            now - 800,
        ),
        event(
            "customer.subscription.created.json",
            "evt_dash_bob_1",
            bob.0,
            bob.1,
            now - 790,
        ),
        event(
            "charge.dispute.created.json",
            "evt_dash_bob_2",
            bob.0,
            bob.1,
            now - 100,
        ),
    ];
    // The failed renewal and its recovery are the same invoice.
    events[2]["data"]["object"]["id"] = "in_dash_ada_renewal".into();
    events[3]["data"]["object"]["id"] = "in_dash_ada_renewal".into();
    for e in &events {
        let response = app
            .post_signed(&serde_json::to_vec(e).expect("event JSON"))
            .await;
        assert_eq!(response.status(), 200, "{}", e["id"]);
    }
    app.drain().await;
    let dead = "evt_dash_ada_3".to_owned();
    assert_eq!(status_of(&app, &dead).await, EventStatus::Dead);
    for done in [
        "evt_dash_ada_0",
        "evt_dash_ada_1",
        "evt_dash_ada_2",
        "evt_dash_bob_1",
    ] {
        assert_eq!(status_of(&app, done).await, EventStatus::Done, "{done}");
    }
    World { app, sandbox, dead }
}

async fn status_of(app: &TestApp, id: &str) -> EventStatus {
    app.store
        .get_event(&EventId::parse(id).expect("event id"))
        .await
        .expect("the store reads")
        .expect("the event is stored")
        .summary
        .status
}

/// The property the dead event lacked, created as `paybridge setup` would.
async fn fix_the_portal(sandbox: &Sandbox) {
    let defs: Vec<_> = paybridge::rules::properties::builtin("stripe_customer_id")
        .into_iter()
        .filter(|d| d.name == MISSING_PROPERTY)
        .collect();
    assert_eq!(defs.len(), 1);
    common::setup_properties(sandbox, defs).await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_dashboard_is_refused_without_the_admin_token() {
    let w = world().await;
    let base = &w.app.admin_url;
    let http = no_redirects();
    let event_url = format!("{base}/events/{}", w.dead);
    let html = "text/html,application/xhtml+xml";

    // A browser without a session goes to the sign-in page (and would come back after).
    for url in [format!("{base}/"), event_url.clone()] {
        let r = http
            .get(&url)
            .header("accept", html)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 303, "{url}");
        let location = r.headers()["location"].to_str().expect("ascii");
        assert!(location.starts_with("/login?next=%2F"), "{location}");
        let body = r.text().await.expect("body");
        assert!(
            !body.contains(&w.dead),
            "nothing of the event leaks: {body}"
        );
    }
    // Anything else gets 401, a wrong bearer too.
    for (url, bearer) in [
        (format!("{base}/health.json"), None),
        (format!("{base}/"), None),
        (format!("{base}/"), Some("Bearer wrong-token")),
        (event_url.clone(), Some("Bearer wrong-token")),
    ] {
        let mut request = http.get(&url);
        if let Some(b) = bearer {
            request = request.header("authorization", b);
        }
        let r = request.send().await.expect("answered");
        assert_eq!(r.status(), 401, "{url} {bearer:?}");
    }
    // Retry without the token does nothing.
    let r = http
        .post(format!("{event_url}/retry"))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 401);
    assert_eq!(status_of(&w.app, &w.dead).await, EventStatus::Dead);

    // The bearer header works as for the API.
    let r = http
        .get(format!("{base}/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = r.text().await.expect("body");
    assert!(page.contains(&w.dead) && page.contains("Dead letters"));
    assert_no_external_assets(&page);

    // A wrong token at the sign-in form: 401, no cookie.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("token", "wrong"), ("next", "/")])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // The right one: a session cookie that is HttpOnly, SameSite=Strict, not the token.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/",
        "no redirect off this listener"
    );
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("paybridge_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token");
    let session = cookie.split(';').next().expect("pair").to_owned();

    let r = http
        .get(&event_url)
        .header("cookie", &session)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let page = r.text().await.expect("body");
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the retry form carries a CSRF token")
        .to_owned();
    // Signed in, but without the form's token, or from another site: refused.
    for (form_csrf, origin) in [
        ("", None),
        ("forged", None),
        (csrf.as_str(), Some("http://evil.example")),
    ] {
        let mut request = http
            .post(format!("{event_url}/retry"))
            .header("cookie", &session)
            .form(&[("csrf", form_csrf)]);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let r = request.send().await.expect("answered");
        assert_eq!(r.status(), 403, "{form_csrf} {origin:?}");
    }
    assert_eq!(status_of(&w.app, &w.dead).await, EventStatus::Dead);
    // With it: queued again.
    let r = http
        .post(format!("{event_url}/retry"))
        .header("cookie", &session)
        .header("origin", base.as_str())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 303);
    assert_eq!(status_of(&w.app, &w.dead).await, EventStatus::Pending);
    // The JSON strip answers a session too.
    let r = http
        .get(format!("{base}/health.json"))
        .header("cookie", &session)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 200);
    let health: Value = r.json().await.expect("JSON");
    assert_eq!(
        health["tiles"].as_array().map(Vec::len),
        Some(6),
        "{health}"
    );
    w.app.stop().await;
}

#[tokio::test]
async fn the_log_pages_newest_first_and_filters_by_email_in_any_case() {
    let w = world().await;
    let page = |after: Option<String>| paybridge::store::LogFilter {
        limit: 3,
        after,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let rows = w.app.store.event_log(&page(after)).await.expect("reads");
        assert!(
            rows.len() <= 4,
            "one row more than the page tells about the next"
        );
        let more = rows.len() > 3;
        seen.extend(rows.iter().take(3).map(|r| r.id.clone()));
        if !more {
            break;
        }
        after = seen.last().cloned();
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 7, "no event twice across pages");
    let ada = w
        .app
        .store
        .event_log(&paybridge::store::LogFilter {
            email: Some("Ada@Example.com".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("reads");
    assert_eq!(ada.len(), 4);
    assert!(
        ada.iter()
            .all(|r| r.customer.as_deref() == Some("cus_dash_ada"))
    );
    assert!(
        ada.iter()
            .all(|r| r.email.as_deref() == Some("ada@example.com"))
    );
    w.app.stop().await;
}

/// No script, style sheet, image or font comes from anywhere: the page works offline.
fn assert_no_external_assets(page: &str) {
    for needle in [
        "<script src",
        "<link rel=\"stylesheet",
        "<img",
        "@import",
        "url(http",
    ] {
        assert!(!page.contains(needle), "{needle} in the page");
    }
    for attr in ["src=\"http", "href=\"//"] {
        assert!(!page.contains(attr), "{attr} in the page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_filters_the_log_and_retries_a_dead_event_in_chromium() {
    for (path, what) in [(CHROMIUM, "Chromium"), (CHROMEDRIVER, "ChromeDriver")] {
        assert!(
            Path::new(path).exists(),
            "{what} is not installed at {path}: run scripts/test, which installs Debian's \
             chromium and chromium-driver packages (this test never skips)"
        );
    }
    let w = world().await;
    let base = w.app.admin_url.clone();
    let browser = Browser::start().await;
    let timer = Instant::now();

    // Signing in: the page sends the browser to /login and back.
    browser.goto(&format!("{base}/")).await;
    browser.wait_for_url("/login?next=").await;
    let token = browser.find("#token").await;
    browser.type_into(&token, TOKEN).await;
    browser.click(&browser.find("#login-submit").await).await;
    browser.wait_for_url_not("/login").await;
    assert_eq!(browser.title().await, "Overview · paybridge");

    // The health strip: one dead letter, red.
    let dead_tile = browser.find("#tile-dead").await;
    assert_eq!(browser.attribute(&dead_tile, "class").await, "tile alert");
    assert_eq!(
        browser
            .text(&browser.find("#tile-dead [data-value]").await)
            .await,
        "1"
    );
    assert_eq!(browser.find_all("svg.chart").await.len(), 3);
    assert_eq!(
        browser.find_all("#impact dt").await.len(),
        8,
        "the report's numbers"
    );
    assert_eq!(browser.find_all("#log-table tbody tr").await.len(), 7);
    // Nothing was loaded from anywhere but this listener.
    let loaded = browser
        .execute(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });",
        )
        .await;
    for url in loaded.as_array().into_iter().flatten() {
        let url = url.as_str().unwrap_or_default();
        assert!(url.starts_with(&base), "loaded from elsewhere: {url}");
    }
    browser
        .screenshot_full_page(&target_dir().join("dashboard-main.png"))
        .await;

    // The strip refreshes itself without a reload: a new event shows in the intake tile.
    browser
        .execute("window.__still_the_same_page = true; return null;")
        .await;
    let before = browser
        .text(&browser.find("#tile-intake [data-detail]").await)
        .await;
    assert_eq!(before, "7 events in the last 5 min");
    let now = w.app.clock.now_secs();
    let more = event(
        "customer.updated.json",
        "evt_dash_bob_3",
        "cus_dash_bob",
        "bob@example.com",
        now,
    );
    w.app
        .post_signed(&serde_json::to_vec(&more).expect("JSON"))
        .await;
    browser
        .wait_for_text("#tile-intake [data-detail]", "8 events in the last 5 min")
        .await;
    assert_eq!(
        browser
            .execute("return window.__still_the_same_page === true;")
            .await,
        Value::Bool(true),
        "updated in place, not reloaded"
    );
    w.app.drain().await;

    // Filtering the log: dead events of ada@example.com.
    browser
        .click(&browser.find("#f-status option[value='dead']").await)
        .await;
    browser
        .type_into(&browser.find("#f-email").await, "ADA@example.com")
        .await;
    browser.click(&browser.find("#f-apply").await).await;
    browser.wait_for_url("status=dead").await;
    let rows = browser.find_all("#log-table tbody tr[data-event]").await;
    assert_eq!(rows.len(), 1, "one dead event for Ada");
    assert_eq!(browser.attribute(&rows[0], "data-event").await, w.dead);
    assert!(browser.url().await.contains("email=ADA%40example.com"));

    // Opening it: the error in HubSpot's words, the steps, a Retry button.
    browser
        .click(
            &browser
                .find(&format!("#log-table a[href='/events/{}']", w.dead))
                .await,
        )
        .await;
    browser.wait_for_url(&format!("/events/{}", w.dead)).await;
    let status = browser.find("#event-status").await;
    assert_eq!(browser.text(&status).await, "dead");
    let error = browser.text(&browser.find("#last-error").await).await;
    assert!(error.contains(MISSING_PROPERTY), "{error}");
    assert!(!browser.find_all("#steps tbody tr").await.is_empty());
    assert!(!browser.find_all("#timeline li").await.is_empty());
    browser
        .screenshot_full_page(&target_dir().join("dashboard-event.png"))
        .await;

    // Fix the cause, press Retry: queued again, then done once the workers ran.
    fix_the_portal(&w.sandbox).await;
    browser.click(&browser.find("#retry").await).await;
    browser.wait_for_url("retried=1").await;
    assert_eq!(
        browser.text(&browser.find("#event-status").await).await,
        "pending"
    );
    assert!(
        browser
            .text(&browser.find("#flash").await)
            .await
            .starts_with("Queued again")
    );
    w.app.drain().await;
    browser.refresh().await;
    assert_eq!(
        browser.text(&browser.find("#event-status").await).await,
        "done"
    );
    assert!(
        browser.find_all("#retry").await.is_empty(),
        "nothing to retry"
    );
    let steps = browser.find_all("#steps tbody tr .badge.done").await;
    assert_eq!(steps.len(), 1, "the property write, done");
    let link = browser
        .attribute(&browser.find("#contact-link").await, "href")
        .await;
    assert!(
        link.starts_with(&format!(
            "https://app.hubspot.com/contacts/{PORTAL}/record/0-1/"
        )),
        "{link}"
    );
    browser
        .screenshot_full_page(&target_dir().join("dashboard-event-done.png"))
        .await;

    // Back on the overview, the strip is green again; and the page fits a phone.
    browser.goto(&format!("{base}/")).await;
    assert_eq!(
        browser
            .attribute(&browser.find("#tile-dead").await, "class")
            .await,
        "tile ok"
    );
    browser.set_window(390, 844).await;
    browser.goto(&format!("{base}/")).await;
    browser
        .screenshot_full_page(&target_dir().join("dashboard-phone.png"))
        .await;
    eprintln!("browser part took {:?}", timer.elapsed());
    browser.quit().await;
    w.app.stop().await;
}

/// `target/` of the workspace (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// A headless Chromium behind its own chromedriver, spoken to in W3C WebDriver.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

impl Browser {
    async fn start() -> Self {
        // chromedriver needs a port: take a free one from the OS and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .envs(common::network::tripwire().proxy_env())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("a profile dir");
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({
                "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        // No default search engine to preconnect to (Debian's build
                        // preconnects to start.duckduckgo.com otherwise), no predictions.
                        "prefs": {
                            "net": { "network_prediction_options": 2 },
                            "default_search_provider": { "enabled": false },
                            "default_search_provider_data": { "template_url_data": {
                                "keyword": "loopback", "short_name": "loopback",
                                "url": "http://127.0.0.1:9/?q={searchTerms}",
                            } },
                        },
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--disable-dev-shm-usage", "--hide-scrollbars",
                            "--window-size=1280,900",
                            // Nothing of Google's: no sign-in, sync, component or
                            // safe-browsing updates, autofill or optimisation-guide
                            // downloads, crash or domain-reliability reports, pings.
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--disable-default-apps", "--disable-domain-reliability",
                            "--disable-client-side-phishing-detection", "--disable-breakpad",
                            "--disable-extensions", "--no-pings", "--metrics-recording-only",
                            "--safebrowsing-disable-auto-update", "--no-default-browser-check",
                            "--disable-features=PreconnectToSearch,PreconnectToSearchNonGoogle,PreconnectToSearchWithPrivacyModeEnabled,SearchPrefetchServicePrefetching,NetworkTimeServiceQuerying,OptimizationHints,OptimizationGuideModelDownloading,OptimizationHintsFetching,OptimizationTargetPrediction,AutofillServerCommunication,MediaRouter,Translate,CertificateTransparencyComponentUpdater",
                            // Debian's Chromium 156 still asks accounts.google.com and
                            // update.googleapis.com with every switch above (the guard
                            // caught it): their base URLs point at a closed loopback port.
                            "--gaia-url=http://127.0.0.1:9",
                            "--component-updater=url-source=http://127.0.0.1:9/",
                            // Whatever is left goes to the network guard's tripwire (which
                            // fails the test when the app stops); loopback bypasses it.
                            format!("--proxy-server={}", common::network::tripwire().url()),
                            format!("--user-data-dir={}", profile.path().display()),
                        ],
                    },
                }},
            }))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {created}"))
            .to_owned();
        let browser = Self {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: profile,
        };
        browser
            .call(
                "POST",
                "/timeouts",
                json!({ "implicit": 5_000, "pageLoad": 20_000 }),
            )
            .await;
        browser
    }

    /// One WebDriver command; its `value`, or the test fails with the driver's words.
    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).json(&body),
        };
        let response = request.send().await.expect("chromedriver answers");
        let ok = response.status().is_success();
        let v: Value = response.json().await.expect("WebDriver JSON");
        assert!(ok, "{method} {path} {body}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    async fn refresh(&self) {
        self.call("POST", "/refresh", json!({})).await;
    }

    async fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn title(&self) -> String {
        self.call("GET", "/title", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                "POST",
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
            .collect()
    }

    async fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.call("POST", &format!("/element/{element}/clear"), json!({}))
            .await;
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn attribute(&self, element: &str, name: &str) -> String {
        self.call(
            "GET",
            &format!("/element/{element}/attribute/{name}"),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    async fn set_window(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await;
    }

    /// Waits (bounded) until the URL contains `part`: a form post navigates on its own time.
    async fn wait_for_url(&self, part: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            if Instant::now() >= deadline {
                let page = self.call("GET", "/source", Value::Null).await;
                panic!("never reached {part}; at {url}: {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_url_not(&self, part: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.url().await;
            if !url.contains(part) {
                return;
            }
            if Instant::now() >= deadline {
                let page = self.call("GET", "/source", Value::Null).await;
                panic!("still at {url}: {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the element's text is `expected` (the strip refreshes every 5 s).
    async fn wait_for_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text(&self.find(css).await).await;
            if text == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never showed {expected:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of the whole page: the window is made as tall as the document first.
    async fn screenshot_full_page(&self, path: &Path) {
        let rect = self.call("GET", "/window/rect", Value::Null).await;
        let width = rect["width"].as_u64().unwrap_or(1280) as u32;
        let height = self
            .execute("return Math.ceil(document.documentElement.scrollHeight);")
            .await
            .as_u64()
            .unwrap_or(900) as u32;
        self.set_window(width, height.clamp(400, 6_000)).await;
        let png = self.call("GET", "/screenshot", Value::Null).await;
        let bytes = base64_decode(png.as_str().expect("base64 PNG"));
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("target dir");
        }
        std::fs::write(path, bytes).expect("the screenshot is written");
        eprintln!("screenshot: {}", path.display());
        self.set_window(width, rect["height"].as_u64().unwrap_or(900) as u32)
            .await;
    }

    async fn quit(self) {
        self.call("DELETE", "", Value::Null).await;
    }
}

/// Standard base64 (as WebDriver sends screenshots), padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes_like_the_standard() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ"), b"hello world");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
