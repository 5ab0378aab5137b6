//! Signing in to the dashboard from a browser, which cannot send `Authorization` on
//! navigation: `POST /login` compares the admin token in constant time and sets an
//! `HttpOnly; SameSite=Strict` session cookie that holds an expiry, a random nonce and an
//! HMAC over them, keyed by a key derived from the token (never the token itself). The
//! session ends after [`SESSION_TTL_MS`], at sign-out, or for every browser at once when
//! the token changes. The bearer header is accepted alongside, for scripts.
//!
//! Forms that change something (Retry, sign out) carry a CSRF token, an HMAC of the
//! session's nonce, checked in constant time, and must come from this origin when the
//! browser says where they come from (`Origin`). Sandbox mode without a token is open, as
//! the admin API is, to loopback hosts only; its forms carry a token keyed by a per-process
//! random key.
//!
//! Sessions are also kept on the server (`sessions`, by a hash of the nonce): sign-out
//! revokes one for good. Wrong tokens (form or bearer) slow their address down; the cookie
//! is `Secure` when the dashboard is reached over TLS (or through a proxy that says so).

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::DashboardState;
use crate::basics::Secret;
use crate::http::admin::{bearer, client_ip, loopback_host, not_loopback, too_many_attempts};
use crate::http::listener::Tls;

type HmacSha256 = Hmac<Sha256>;

pub const COOKIE: &str = "paybridge_session";
/// How long a browser stays signed in.
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;

/// Who is asking, as the middleware found out (in the request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `Authorization: Bearer <admin token>`: not ambient, so no CSRF check is needed.
    Bearer,
    /// A signed-in browser.
    Session { nonce: String },
    /// Sandbox mode without a token.
    Open,
}

pub struct Auth {
    token: Option<Secret>,
    open: bool,
    key: [u8; 32],
}

fn mac(key: &[u8], parts: &[&str]) -> [u8; 32] {
    let mut m = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            m.update(b"|");
        }
        m.update(p.as_bytes());
    }
    m.finalize().into_bytes().into()
}

impl Auth {
    pub fn new(token: Option<Secret>, open: bool) -> Self {
        let key = match &token {
            Some(t) => mac(t.expose().as_bytes(), &["paybridge dashboard key v1"]),
            None => {
                use rand::RngCore;
                let mut k = [0u8; 32];
                rand::rng().fill_bytes(&mut k);
                k
            }
        };
        Self { token, open, key }
    }

    /// Whether the dashboard can be used at all (a token, or sandbox mode).
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.open
    }

    pub fn needs_login(&self) -> bool {
        self.token.is_some()
    }

    pub fn token_matches(&self, presented: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(t.expose().as_bytes().ct_eq(presented.as_bytes())))
    }

    /// A new session cookie value: `v1.<expires ms>.<nonce>.<hmac>`.
    pub fn issue_session(&self, now_ms: i64) -> String {
        let expires = (now_ms + SESSION_TTL_MS).to_string();
        let nonce = crate::domain::random_hex(16);
        let sig = hex::encode(mac(&self.key, &["session", &expires, &nonce]));
        format!("v1.{expires}.{nonce}.{sig}")
    }

    /// The session's nonce if `value` is a cookie this key signed and it has not expired.
    pub fn verify_session(&self, value: &str, now_ms: i64) -> Option<String> {
        self.token.as_ref()?;
        let mut parts = value.split('.');
        let (v, expires, nonce, sig) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if v != "v1" || parts.next().is_some() {
            return None;
        }
        let expected = hex::encode(mac(&self.key, &["session", expires, nonce]));
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let expires: i64 = expires.parse().ok()?;
        (now_ms < expires).then(|| nonce.to_owned())
    }

    /// Who the request comes from, if anyone allowed.
    pub fn authenticate(&self, headers: &HeaderMap, now_ms: i64) -> Option<Principal> {
        if self.token.is_none() {
            return self.open.then_some(Principal::Open);
        }
        if let Some(presented) = bearer(headers) {
            return self.token_matches(presented).then_some(Principal::Bearer);
        }
        cookie(headers, COOKIE)
            .and_then(|value| self.verify_session(value, now_ms))
            .map(|nonce| Principal::Session { nonce })
    }

    /// The CSRF token the forms of this principal carry.
    pub fn csrf_token(&self, principal: &Principal) -> String {
        let nonce = match principal {
            Principal::Session { nonce } => nonce.as_str(),
            Principal::Open => "open",
            Principal::Bearer => "bearer",
        };
        hex::encode(mac(&self.key, &["csrf", nonce]))
    }

    /// A form post is genuine: bearer requests always (a browser never adds the header on
    /// its own), sessions and the open sandbox with their CSRF token.
    pub fn csrf_ok(&self, principal: &Principal, presented: &str) -> bool {
        match principal {
            Principal::Bearer => true,
            _ => bool::from(
                self.csrf_token(principal)
                    .as_bytes()
                    .ct_eq(presented.as_bytes()),
            ),
        }
    }
}

/// The server-side id of a session: a hash of its nonce (the table never holds what a
/// browser presents).
pub fn session_id(nonce: &str) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(
        format!("paybridge session|{nonce}").as_bytes(),
    ))
}

/// The nonce of a cookie value this code issued (not verified).
fn nonce_of(value: &str) -> Option<&str> {
    value.split('.').nth(2)
}

/// Whether the browser reached the dashboard over TLS: this listener's own, or a proxy's
/// (`X-Forwarded-Proto: https`; trusting it can only add the `Secure` flag).
fn over_tls(headers: &HeaderMap, extensions: &axum::http::Extensions) -> bool {
    extensions.get::<Tls>().is_some_and(|t| t.0)
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A form post comes from this origin when the browser names one (`Origin` is sent with
/// every cross-site and same-site POST by current browsers).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Where to go after signing in: only a path on this listener. Control characters are
/// removed first, as browsers drop tab and newline from URLs (`/\t/evil.example` would
/// otherwise become `//evil.example`, another site).
pub fn safe_next(next: Option<&str>) -> String {
    let cleaned: Option<String> = next.map(|n| n.chars().filter(|c| !c.is_control()).collect());
    match cleaned {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_whitespace) =>
        {
            n
        }
        _ => "/".to_owned(),
    }
}

/// Percent-encodes everything but unreserved characters (for a query value).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every dashboard route but the login page: a browser without a session goes to
/// `/login` (and comes back after), anything asking for JSON gets 401.
pub async fn require_login(
    State(state): State<DashboardState>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = state.now_ms();
    let ip = client_ip(request.extensions());
    if state.auth().needs_login()
        && let Some(wait) = state.throttle().locked(ip, now)
    {
        return too_many_attempts(wait);
    }
    match state.auth().authenticate(request.headers(), now) {
        Some(Principal::Open) if !loopback_host(request.headers()) => return not_loopback(),
        Some(Principal::Session { nonce }) => {
            match state.store().session_active(&session_id(&nonce), now).await {
                Ok(true) => {
                    request
                        .extensions_mut()
                        .insert(Principal::Session { nonce });
                    return next.run(request).await;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "the session store cannot be read");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the session store cannot be read",
                    )
                        .into_response();
                }
            }
        }
        Some(principal) => {
            if principal == Principal::Bearer {
                state.throttle().succeeded(ip);
            }
            request.extensions_mut().insert(principal);
            return next.run(request).await;
        }
        None => {
            if state.auth().needs_login() && bearer(request.headers()).is_some() {
                state.throttle().failed(ip, now);
            }
        }
    }
    let wants_html = !request.uri().path().ends_with(".json")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_html && !state.auth().enabled() {
        return state.message(
            StatusCode::UNAUTHORIZED,
            "The dashboard is disabled",
            "Set server.admin_token (for example PAYBRIDGE_SERVER__ADMIN_TOKEN) and restart paybridge.",
        );
    }
    if wants_html {
        let target = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        return Redirect::to(&format!("/login?next={}", encode_component(&target))).into_response();
    }
    let message = if state.auth().enabled() {
        "sign in at /login, or send Authorization: Bearer <server.admin_token>"
    } else {
        "the dashboard is disabled: set server.admin_token"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({ "error": "unauthorized", "message": message })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn login_page(
    State(state): State<DashboardState>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if !state.auth().needs_login() && state.auth().enabled() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    state.login_page(StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

pub async fn login(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (ip, now) = (client_ip(&extensions), state.now_ms());
    if let Some(wait) = state.throttle().locked(ip, now) {
        let secs = (wait.max(0) as u64).div_ceil(1_000).max(1);
        let mut page = state.login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(&format!(
                "Too many wrong tokens from this address: try again in {secs} s."
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return page;
    }
    if !same_origin(&headers) {
        return state.login_page(
            StatusCode::FORBIDDEN,
            &next,
            Some("This sign-in came from another site and was refused."),
        );
    }
    if !state.auth().token_matches(form.token.trim()) {
        let locked_ms = state.throttle().failed(ip, now);
        tracing::warn!(client = %ip, locked_ms, "dashboard sign-in refused: wrong admin token");
        let message = if state.auth().needs_login() {
            "That is not the admin token (server.admin_token)."
        } else {
            "The dashboard is disabled: set server.admin_token."
        };
        return state.login_page(StatusCode::UNAUTHORIZED, &next, Some(message));
    }
    state.throttle().succeeded(ip);
    let value = state.auth().issue_session(now);
    let Some(nonce) = nonce_of(&value) else {
        return state.forbidden();
    };
    if let Err(e) = state
        .store()
        .session_create(&session_id(nonce), now, now + SESSION_TTL_MS)
        .await
    {
        tracing::error!(error = %e, "the session could not be stored");
        return state.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "The session could not be stored; try again in a moment.",
        );
    }
    let secure = if over_tls(&headers, &extensions) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL_MS / 1000
    );
    tracing::info!("dashboard sign-in");
    let mut response = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(
    State(state): State<DashboardState>,
    axum::Extension(principal): axum::Extension<Principal>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !state.auth().csrf_ok(&principal, &form.csrf) {
        return state.forbidden();
    }
    if let Principal::Session { nonce } = &principal
        && let Err(e) = state
            .store()
            .session_revoke(&session_id(nonce), state.now_ms())
            .await
    {
        tracing::error!(error = %e, "the session could not be revoked");
        return state.message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not signed out",
            "The session could not be revoked; try again in a moment.",
        );
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "paybridge_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(Some(Secret::new("s3cret-admin-token".into())), false)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn a_session_is_signed_expires_and_never_holds_the_token() {
        let a = auth();
        let value = a.issue_session(1_000);
        assert!(!value.contains("s3cret-admin-token"));
        assert!(a.verify_session(&value, 1_000).is_some());
        assert!(a.verify_session(&value, 1_000 + SESSION_TTL_MS).is_none());
        // Tampering with the expiry breaks the signature.
        let mut parts: Vec<&str> = value.split('.').collect();
        let later = (SESSION_TTL_MS * 10).to_string();
        parts[1] = &later;
        assert!(a.verify_session(&parts.join("."), 2_000).is_none());
        assert!(a.verify_session("v1.1.2", 0).is_none());
        assert!(a.verify_session("", 0).is_none());
        // Another token (a rotated one) signs other sessions.
        let other = Auth::new(Some(Secret::new("another".into())), false);
        assert!(other.verify_session(&value, 1_000).is_none());
        // Sessions of the same token survive a restart (same derived key).
        assert!(auth().verify_session(&value, 1_000).is_some());
    }

    #[test]
    fn bearer_or_cookie_or_nothing() {
        let a = auth();
        let session = a.issue_session(0);
        assert_eq!(
            a.authenticate(
                &headers(&[("authorization", "Bearer s3cret-admin-token")]),
                0
            ),
            Some(Principal::Bearer)
        );
        assert_eq!(
            a.authenticate(&headers(&[("authorization", "Bearer nope")]), 0),
            None
        );
        let cookie_header = format!("theme=dark; {COOKIE}={session}");
        assert!(matches!(
            a.authenticate(&headers(&[("cookie", &cookie_header)]), 0),
            Some(Principal::Session { .. })
        ));
        assert_eq!(
            a.authenticate(&headers(&[("cookie", "paybridge_session=forged")]), 0),
            None
        );
        assert_eq!(a.authenticate(&HeaderMap::new(), 0), None);
        let open = Auth::new(None, true);
        assert_eq!(
            open.authenticate(&HeaderMap::new(), 0),
            Some(Principal::Open)
        );
        let disabled = Auth::new(None, false);
        assert_eq!(disabled.authenticate(&HeaderMap::new(), 0), None);
        assert!(!disabled.enabled());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let a = auth();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} s3cret-admin-token");
            assert_eq!(
                a.authenticate(&headers(&[("authorization", &value)]), 0),
                Some(Principal::Bearer),
                "{scheme}"
            );
        }
        assert_eq!(
            a.authenticate(
                &headers(&[("authorization", "Basic s3cret-admin-token")]),
                0
            ),
            None
        );
    }

    #[test]
    fn csrf_tokens_are_per_session() {
        let a = auth();
        let s1 = Principal::Session { nonce: "n1".into() };
        let s2 = Principal::Session { nonce: "n2".into() };
        let t1 = a.csrf_token(&s1);
        assert!(a.csrf_ok(&s1, &t1));
        assert!(!a.csrf_ok(&s2, &t1));
        assert!(!a.csrf_ok(&s1, ""));
        assert!(a.csrf_ok(&Principal::Bearer, ""));
        let open = Auth::new(None, true);
        assert!(!open.csrf_ok(&Principal::Open, ""));
        assert!(open.csrf_ok(&Principal::Open, &open.csrf_token(&Principal::Open)));
    }

    #[test]
    fn origins_and_redirect_targets() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9090")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "http://127.0.0.1:9090")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:9090"),
            ("origin", "null")
        ])));
        assert_eq!(safe_next(Some("/events/evt_1?x=1")), "/events/evt_1?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        // Browsers drop tab and newline: `/\t/evil.example` is `//evil.example` to them.
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/\r\n/\x0b/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
        assert_eq!(safe_next(Some("/events\t/evt_1")), "/events/evt_1");
        assert_eq!(safe_next(None), "/");
        assert_eq!(encode_component("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
    }
}
