//! Shared test wiring: spawn the real application on port 0 with its own SQLite file,
//! sign webhooks like Stripe, read the fixtures.
#![allow(dead_code)]

pub mod crm;
pub mod delivery;
pub mod network;
pub mod pg;
pub mod process;
pub mod receiver;
pub mod story;
pub mod tls;

use std::path::{Path, PathBuf};

use paybridge::app::{Application, Loaded};
use paybridge::basics::Secret;
use paybridge::config::Settings;
use paybridge::domain::Clock;
use paybridge::store::Store;
use paybridge::stripe;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "whsec_test_paybridge_0123456789";
/// The admin token of every test configuration ([`test_settings`], [`test_config_text`]).
pub const ADMIN_TOKEN: &str = "admin-test-token-0123456789abcdef";
/// What the tests sign provisioning calls with, in place of the starter's example secret
/// (which paybridge refuses next to a real HubSpot token, as the tests' sandbox token is).
pub const PROVISIONING_SECRET: &str = "test-provisioning-secret-0123456789";
const STARTER_PROVISIONING_SECRET: &str = "replace-me-provisioning-secret";

pub struct TestApp {
    pub pipeline: paybridge::worker::Pipeline,
    pub url: String,
    pub admin_url: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub clock: Clock,
    pub db_path: PathBuf,
    pub dir: tempfile::TempDir,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Settings for a test: loopback port 0, a fresh SQLite file, one known secret.
pub fn test_settings(dir: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.server.listen = "127.0.0.1:0".parse().expect("addr");
    s.server.admin_listen = "127.0.0.1:0".parse().expect("addr");
    s.server.admin_token = Some(Secret::new(ADMIN_TOKEN.into()));
    s.store.url = pg::store_url_for(dir);
    s.stripe.webhook_secrets = vec![Secret::new(SECRET.into())];
    // Receivers of Slack and provisioning calls listen on loopback.
    s.outbound.allow_hosts = vec!["127.0.0.1".into()];
    // Until a test points it at a sandbox, HubSpot and Stripe are the network guard's
    // tripwire: a call there fails the test when it stops its app.
    s.hubspot.api_base = network::tripwire().url();
    s.stripe.api_base = network::tripwire().url();
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Clock::system()).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings), clock: Clock) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(dir.path());
    customise(&mut settings);
    spawn_app_in(dir, settings.into(), clock).await
}

/// The app of a config text (rules, sequences, `[worker] mode`…), as `paybridge --config`
/// would run it, against `sandbox` (whose properties for it are created first, as
/// `paybridge setup` would). Its own temp dir and SQLite file; workers driven by `drain`.
pub async fn spawn_app_with_config(
    text: &str,
    sandbox: &hubspot_sandbox::Sandbox,
    clock: Clock,
) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    restart_app_with_config(dir, text, sandbox, clock).await
}

/// [`spawn_app_with_config`] on an existing temp dir: after `TestApp::stop`, the same
/// SQLite file, as a restarted process would find it.
pub async fn restart_app_with_config(
    dir: tempfile::TempDir,
    text: &str,
    sandbox: &hubspot_sandbox::Sandbox,
    clock: Clock,
) -> TestApp {
    let config = settings_from_config(text, dir.path(), sandbox);
    setup_loaded_properties(sandbox, &config).await;
    spawn_app_in(dir, config, clock).await
}

/// `text` with the starter's example secrets replaced by the tests' own (paybridge refuses
/// the examples next to a real HubSpot token).
pub fn without_example_secrets(text: &str) -> String {
    text.replace(STARTER_PROVISIONING_SECRET, PROVISIONING_SECRET)
        .replace(
            "example-admin-token-change-me-before-going-live",
            "admin-test-token-0123456789abcdef0123456789",
        )
        .replace("whsec_replace_me_with_your_endpoint_secret", SECRET)
}

/// Settings and rules loaded from a config text, with the test's overrides merged in:
/// listeners on port 0, the SQLite file in `dir`, the test webhook secret, the sandbox's URL
/// and app token (`[hubspot] sandbox = true` is dropped), test-sized retry delays.
pub fn settings_from_config(text: &str, dir: &Path, sandbox: &hubspot_sandbox::Sandbox) -> Loaded {
    let merged = test_config_text(text, dir, sandbox);
    paybridge::app::load::load_from_str(
        Some(&merged),
        Some(dir.join("paybridge.toml")),
        &std::collections::HashMap::new(),
    )
    .unwrap_or_else(|e| panic!("the test config loads: {e}"))
}

/// The config text [`settings_from_config`] loads, for the real binary (`--config`).
pub fn test_config_text(text: &str, dir: &Path, sandbox: &hubspot_sandbox::Sandbox) -> String {
    use toml::{Table, Value};
    let text = without_example_secrets(text);
    let mut root: Table = toml::from_str(&text).expect("the config text is TOML");
    let stripe_base = root
        .get("stripe")
        .and_then(|s| s.get("api_base"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut set = |section: &str, key: &str, value: Value| {
        let table = root
            .entry(section)
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = table {
            t.insert(key.to_owned(), value);
        }
    };
    set("server", "listen", "127.0.0.1:0".into());
    set("server", "admin_listen", "127.0.0.1:0".into());
    set("server", "admin_token", ADMIN_TOKEN.into());
    set("store", "url", pg::store_url_for(dir).into());
    set(
        "stripe",
        "webhook_secrets",
        Value::Array(vec![SECRET.into()]),
    );
    set("hubspot", "api_base", sandbox.url().into());

    set(
        "hubspot",
        "token",
        hubspot_sandbox::SandboxConfig::default().token.into(),
    );
    set(
        "outbound",
        "allow_hosts",
        Value::Array(vec!["127.0.0.1".into()]),
    );
    // A Stripe API the config does not put on loopback is the network guard's tripwire.
    if stripe_base.is_none_or(|b| !is_loopback_url(&b)) {
        set("stripe", "api_base", network::tripwire().url().into());
    }
    set("worker", "backoff_base", "100ms".into());
    set("worker", "backoff_max", "2s".into());
    if let Some(Value::Table(hubspot)) = root.get_mut("hubspot") {
        hubspot.remove("sandbox");
    }
    toml::to_string(&root).expect("TOML")
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds and starts the app on `config` in `dir` (its SQLite file may already exist).
/// Its HubSpot and Stripe must be local (a sandbox, a receiver or the tripwire).
pub async fn spawn_app_in(dir: tempfile::TempDir, config: Loaded, clock: Clock) -> TestApp {
    for (what, base) in [
        ("hubspot", &config.settings.hubspot.api_base),
        ("stripe", &config.settings.stripe.api_base),
    ] {
        assert!(
            is_loopback_url(base),
            "{what}.api_base is {base}: tests point at a local sandbox"
        );
    }
    let db_path = dir.path().join("paybridge.db");
    let app = Application::build_with(
        config,
        clock.clone(),
        paybridge::app::Options {
            run_workers: false,
            ..Default::default()
        },
    )
    .await
    .expect("the application builds");
    let pipeline = app.pipeline().clone();
    let url = format!("http://{}", app.public_addr());
    let admin_url = format!("http://{}", app.admin_addr());
    let store = app.store().clone();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(cancel.clone()));
    TestApp {
        pipeline,
        url,
        admin_url,
        client: reqwest::Client::new(),
        store,
        clock,
        db_path,
        dir,
        cancel,
        task,
    }
}

/// A HubSpot sandbox with paybridge's properties created (as `paybridge setup` would).
/// Setup runs with its own token, so its calls do not spend the app token's rate budget.
pub async fn spawn_sandbox(config: hubspot_sandbox::SandboxConfig) -> hubspot_sandbox::Sandbox {
    spawn_sandbox_with(
        config,
        paybridge::rules::properties::builtin("stripe_customer_id"),
    )
    .await
}

/// A sandbox with only the given properties created.
pub async fn spawn_sandbox_with(
    config: hubspot_sandbox::SandboxConfig,
    defs: Vec<paybridge::rules::PropertyNeed>,
) -> hubspot_sandbox::Sandbox {
    let sandbox = hubspot_sandbox::Sandbox::spawn(config)
        .await
        .expect("sandbox starts");
    setup_properties(&sandbox, defs).await;
    sandbox
}

/// Creates properties in a sandbox as `paybridge setup` would (idempotent), with a token of
/// its own so that its calls do not spend the app token's rate budget.
pub async fn setup_properties(
    sandbox: &hubspot_sandbox::Sandbox,
    needs: Vec<paybridge::rules::PropertyNeed>,
) {
    let setup_token = "setup-token";
    sandbox
        .merge_seed(hubspot_sandbox::Seed {
            tokens: vec![hubspot_sandbox::SeedToken {
                token: setup_token.into(),
                scopes: [
                    "crm.schemas.contacts.read",
                    "crm.schemas.contacts.write",
                    "crm.schemas.deals.read",
                    "crm.schemas.deals.write",
                    "tickets",
                ]
                .map(String::from)
                .to_vec(),
            }],
            ..Default::default()
        })
        .expect("seed the setup token");
    let hubspot = paybridge::hubspot::HubSpot::new(
        &sandbox.url(),
        Secret::new(setup_token.into()),
        paybridge::hubspot::ApiVersion::Dated2026_09,
        1_000,
        10,
        "stripe_customer_id",
    )
    .expect("client");
    let defs: Vec<_> = needs
        .iter()
        .map(paybridge::ops::setup::definition)
        .collect();
    paybridge::ops::setup::ensure(&hubspot, &defs, false)
        .await
        .expect("setup creates the properties");
}

/// Loads a config text as `paybridge --config path` would, and creates the properties its
/// rules need in `sandbox` as `paybridge setup` would.
pub async fn setup_config_properties(
    sandbox: &hubspot_sandbox::Sandbox,
    text: &str,
    path: PathBuf,
) -> Loaded {
    let loaded = paybridge::app::load::load_from_str(
        Some(text),
        Some(path),
        &std::collections::HashMap::new(),
    )
    .unwrap_or_else(|e| panic!("the config loads: {e}"));
    setup_loaded_properties(sandbox, &loaded).await;
    loaded
}

/// Creates the properties a loaded config's rules need in `sandbox`, as `paybridge setup`
/// would.
pub async fn setup_loaded_properties(sandbox: &hubspot_sandbox::Sandbox, loaded: &Loaded) {
    setup_properties(
        sandbox,
        loaded
            .rules
            .properties_needed(&loaded.settings.contacts.id_property),
    )
    .await;
}

/// paybridge's HubSpot client on its own (no pipeline), with the app token a sandbox
/// grants every scope and a budget of `requests_per_10s`.
pub fn hubspot_client(
    sandbox: &hubspot_sandbox::Sandbox,
    requests_per_10s: u32,
) -> paybridge::hubspot::HubSpot {
    paybridge::hubspot::HubSpot::new(
        &sandbox.url(),
        Secret::new(hubspot_sandbox::SandboxConfig::default().token),
        paybridge::hubspot::ApiVersion::Dated2026_09,
        requests_per_10s,
        5,
        "stripe_customer_id",
    )
    .expect("client")
}

/// Points settings at a sandbox, with test-sized retry delays.
pub fn use_sandbox(s: &mut Settings, sandbox: &hubspot_sandbox::Sandbox) {
    s.hubspot.api_base = sandbox.url();
    s.hubspot.token = Some(Secret::new(hubspot_sandbox::SandboxConfig::default().token));
    s.worker.backoff_base = std::time::Duration::from_millis(100);
    s.worker.backoff_max = std::time::Duration::from_secs(2);
}

impl TestApp {
    /// Runs the workers until no job is left (retries included).
    pub async fn drain(&self) -> usize {
        paybridge::worker::drain(&self.pipeline)
            .await
            .expect("drain")
    }

    /// POSTs `body` signed now (by the app's clock) with the test secret.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        let header = stripe::sign(SECRET, self.clock.now_secs(), body);
        self.post_with_header(body, Some(&header)).await
    }

    pub async fn post_with_header(&self, body: &[u8], header: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhooks/stripe", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(h) = header {
            request = request.header("Stripe-Signature", h);
        }
        request.send().await.expect("the request is answered")
    }

    /// Stops gracefully (checking that nothing tried to leave loopback); returns the temp
    /// dir so the caller can reopen the database.
    pub async fn stop(self) -> tempfile::TempDir {
        self.cancel.cancel();
        self.task
            .await
            .expect("the app task joins")
            .expect("the app stops cleanly");
        network::assert_untouched();
        self.dir
    }
}

/// POSTs `body` to `{base}/webhooks/stripe` (a server of its own, such as the real binary),
/// signed now with the test secret.
pub async fn post_signed_to(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    let header = stripe::sign(SECRET, chrono::Utc::now().timestamp(), &body);
    client
        .post(format!("{base}/webhooks/stripe"))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
}

/// An event that is not done yet: its id, status and last error.
pub type OpenEvent = (String, paybridge::domain::EventStatus, Option<String>);

/// Every stored event's id, and the events not done yet.
pub async fn events_not_done(store: &Store) -> (Vec<String>, Vec<OpenEvent>) {
    let events = store
        .list_events(&paybridge::store::EventFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .expect("list the events");
    let open = events
        .iter()
        .filter(|e| e.status != paybridge::domain::EventStatus::Done)
        .map(|e| (e.id.clone(), e.status, e.last_error.clone()))
        .collect();
    (events.into_iter().map(|e| e.id).collect(), open)
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/stripe")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Every current-shape fixture file name (`*.json` except the vectors).
pub fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "signature-vectors.json")
        .collect();
    names.sort();
    names
}

/// A minimal, valid Stripe event for a customer, with a unique id.
pub fn event_json(id: &str, kind: &str, customer: &str, created: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2026-08-26.dahlia",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
        "data": {"object": {"id": format!("sub_{id}"), "object": "subscription", "customer": customer, "status": "active"}}
    }))
    .expect("json")
}

/// The starter config (`paybridge init`) with its example Slack and provisioning URLs (the
/// embedded sandbox's inbox on 8089) replaced by the given ones.
pub fn starter_with_receivers(slack_url: &str, provisioning_url: &str) -> String {
    let slack_example = "http://127.0.0.1:8089/_sandbox/inbox/slack-finance";
    let provisioning_example = "http://127.0.0.1:8089/_sandbox/inbox/provisioning";
    let starter = paybridge::config::STARTER;
    assert!(starter.contains(slack_example) && starter.contains(provisioning_example));
    let text = starter
        .replace(slack_example, slack_url)
        .replace(provisioning_example, provisioning_url);
    assert!(
        !text.contains("8089/_sandbox/inbox"),
        "every example URL replaced"
    );
    text
}
