//! Test helpers: a sandbox on 127.0.0.1:0 and a tiny HTTP client around reqwest.
//!
//! Tests about time run on a paused clock (`#[tokio::test(start_paused = true)]`)
//! and move it with `tokio::time::advance`. The sandbox and the client share the
//! test's current-thread runtime, and the client arms no timer (no pool idle
//! timeout), so while a request waits on loopback I/O there is no timer for
//! tokio to auto-advance to: time moves only when the test says so (or when the
//! sandbox sleeps for injected latency).
#![allow(dead_code)]

use hubspot_sandbox::{Sandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "sandbox-token";

pub struct Api {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn spawn() -> Api {
    spawn_with(SandboxConfig::default()).await
}

pub async fn spawn_with(config: SandboxConfig) -> Api {
    let token = config.token.clone();
    let sandbox = Sandbox::spawn(config).await.expect("sandbox starts");
    Api {
        sandbox,
        http: client(),
        token,
    }
}

/// reqwest's default client, minus the idle-connection sweep: that sweep is a
/// timer, which a paused runtime would auto-advance to while a request waits.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .expect("the HTTP client builds")
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sandbox.url(), path)
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the sandbox");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body is readable");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let token = self.token.clone();
        self.call_as(Some(&token), method, path, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// Creates a contact and returns its id.
    pub async fn contact(&self, props: Value) -> String {
        let r = self
            .post(
                "/crm/v3/objects/contacts",
                serde_json::json!({ "properties": props }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().expect("id is a string").to_owned()
    }

    /// A control-API call (no token).
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(None, method, path, body).await
    }
}

/// Limits raised out of the way, for tests about something else.
pub fn unlimited() -> SandboxConfig {
    SandboxConfig {
        requests_per_10s: 1_000_000,
        search_per_s: 1_000_000,
        ..SandboxConfig::default()
    }
}
