//! A local HTTP receiver for outbound calls (Slack incoming webhooks, provisioning
//! endpoints): records every request, answers with a status the test chooses.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer in turn; 200 once they run out.
    script: Arc<Mutex<Vec<u16>>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
}

impl Receiver {
    pub async fn start(script: Vec<u16>) -> Self {
        let shared = Shared {
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.into_iter().rev().collect())),
        };
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The distinct values of header `name` among the requests received (e.g. the
    /// provisioning calls' `idempotency-key`s).
    pub fn distinct_header(&self, name: &str) -> std::collections::BTreeSet<String> {
        self.received()
            .iter()
            .filter_map(|r| r.headers.get(name)?.to_str().ok().map(str::to_owned))
            .collect()
    }
}

async fn record(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if let Ok(mut r) = s.received.lock() {
        r.push(Received {
            path: uri.path().to_owned(),
            headers,
            body,
        });
    }
    let status = s
        .script
        .lock()
        .ok()
        .and_then(|mut s| s.pop())
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
