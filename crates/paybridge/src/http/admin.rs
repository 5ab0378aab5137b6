//! The admin listener: every route behind `Authorization: Bearer <server.admin_token>`
//! (compared in constant time; wrong tokens slow their address down); open only in sandbox
//! mode when no token is configured, and then only to requests that name a loopback host
//! (a web page cannot reach it through DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{Extensions, HeaderMap};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;

use super::throttle::Throttle;
use crate::basics::Secret;
use crate::store::Store;

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub token: Option<Secret>,
    /// Sandbox mode without a token: the admin routes are open (local demo only).
    pub open: bool,
    /// `POST /api/replay` (None without `stripe.api_key`).
    pub replayer: Option<crate::catchup::replay::Replayer>,
    /// Wrong tokens per client address (shared with the dashboard's sign-in).
    pub throttle: Arc<Throttle>,
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case, as
/// RFC 9110 §11.1 says auth schemes are case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether the request names this machine as its host (`localhost`, `127.x.x.x`, `[::1]`,
/// with any port): what an open admin listener requires.
pub fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The client's address (as the listener saw it); unspecified when served without one.
pub fn client_ip(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// 429 for an address locked out after wrong tokens.
pub fn too_many_attempts(wait_ms: i64) -> Response {
    let secs = (wait_ms.max(0) as u64).div_ceil(1_000).max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Json(serde_json::json!({
            "error": "too_many_attempts",
            "message": format!("too many wrong admin tokens from this address; retry in {secs} s"),
        })),
    )
        .into_response()
}

/// 403 for an open admin listener reached under another host name.
pub fn not_loopback() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": "forbidden",
            "message": "without server.admin_token the admin listener answers only requests for localhost / 127.0.0.1",
        })),
    )
        .into_response()
}

pub fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .merge(super::api::routes())
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let now = state.store.clock().now_ms();
    let ip = client_ip(request.extensions());
    let allowed = match (&state.token, bearer(request.headers())) {
        (Some(token), presented) => {
            if let Some(wait) = state.throttle.locked(ip, now) {
                return too_many_attempts(wait);
            }
            match presented {
                Some(p) if bool::from(token.expose().as_bytes().ct_eq(p.as_bytes())) => {
                    state.throttle.succeeded(ip);
                    true
                }
                Some(_) => {
                    state.throttle.failed(ip, now);
                    false
                }
                None => false,
            }
        }
        (None, _) if state.open && !loopback_host(request.headers()) => return not_loopback(),
        (None, _) => state.open,
    };
    if allowed {
        return next.run(request).await;
    }
    let message = if state.token.is_none() {
        "the admin API is disabled: set server.admin_token"
    } else {
        "a valid Authorization: Bearer <server.admin_token> header is required"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "unauthorized", "message": message })),
    )
        .into_response()
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // The queue depth is read on scrape: jobs waiting or running now.
    match state.store.queue_depth().await {
        Ok(depth) => metrics::gauge!("paybridge_queue_depth").set(depth as f64),
        Err(e) => tracing::warn!(error = %e, "queue depth unavailable for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "  Bearer   t0k  "] {
            assert_eq!(
                bearer(&headers("authorization", value)),
                Some("t0k"),
                "{value}"
            );
        }
        assert_eq!(bearer(&headers("authorization", "Basic t0k")), None);
        assert_eq!(bearer(&headers("authorization", "Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn an_open_admin_answers_only_to_loopback_hosts() {
        for host in [
            "127.0.0.1:9090",
            "localhost:9090",
            "LOCALHOST",
            "[::1]:9090",
            "127.8.9.10",
        ] {
            assert!(loopback_host(&headers("host", host)), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:9090",
            "10.0.0.1:9090",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(&headers("host", host)), "{host}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }
}
