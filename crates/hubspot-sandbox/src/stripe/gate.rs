//! The gate every Stripe API request passes: faults, the API key (any test-mode secret or
//! restricted key; live keys refused), then `Stripe-Version` and Stripe's rate limit
//! (`behaviour`); the answer gets a `Request-Id` and a `Date` on Stripe's clock.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

use super::{StripeError, behaviour};
use crate::clock;
use crate::faults::Injected;
use crate::state::Shared;

/// Standard base64 (the `Basic` header of `curl -u sk_test_…:`).
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in input.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

fn api_key(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
        return Some(decoded.split(':').next().unwrap_or("").to_owned());
    }
    None
}

/// Any test-mode secret or restricted key is accepted; live keys are refused.
pub(crate) async fn gate(
    State((s, prefix)): State<(Arc<Shared>, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let injected = s.faults.roll(false);
    s.limiter.record_stripe(injected != Injected::None);
    let mut response = if let Injected::Error(code) = injected {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        (
            status,
            axum::Json(json!({"error": {"type": "api_error", "message": "An error occurred with our connection to Stripe."}})),
        )
            .into_response()
    } else {
        let latency = s.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match api_key(&req) {
            None => StripeError {
                status: StatusCode::UNAUTHORIZED,
                kind: "invalid_request_error",
                message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".into(),
                code: None,
                param: None,
            }
            .into_response(),
            Some(key) if key.starts_with("sk_test_") || key.starts_with("rk_test_") => admitted(&s, prefix, req, next).await,
            Some(key) => {
                let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
                let head: String = key.chars().take(8).collect();
                StripeError {
                    status: StatusCode::UNAUTHORIZED,
                    kind: "invalid_request_error",
                    message: format!("Invalid API Key provided: {head}****{tail}"),
                    code: Some("api_key_invalid"),
                    param: None,
                }
                .into_response()
            }
        }
    };
    let request_id = format!("req_{:014x}", rand::random::<u64>() & 0xff_ffff_ffff_ffff);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("Request-Id", v);
    }
    let offset = clock_offset(&s);
    let date = behaviour::http_date(clock::wall().timestamp() + offset);
    if let Ok(v) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(header::DATE, v);
    }
    response
}

fn record(s: &Shared, entry: Value) {
    s.crm().stripe.traffic.record(entry);
}

fn clock_offset(s: &Shared) -> i64 {
    s.crm().stripe.traffic.behaviour.clock_offset_secs
}

/// The answer that refuses a request with a valid key, if any: a malformed
/// `Stripe-Version`, or one request too many for Stripe's rate.
fn refusal(s: &Shared, version: Option<&str>) -> Option<Response> {
    if let Some(v) = version.filter(|v| !behaviour::valid_version(v)) {
        return Some(
            StripeError::invalid(format!("Invalid Stripe API version: {v}"), None).into_response(),
        );
    }
    let mut crm = s.crm();
    let traffic = &mut crm.stripe.traffic;
    if traffic.admit(clock::now()) {
        return None;
    }
    let kind = traffic.behaviour.rate_limit_error_type.clone();
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"error": {
                "type": kind,
                "code": "rate_limit",
                "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
            }})),
        )
            .into_response(),
    )
}

/// A request with a valid key: its `Stripe-Version` checked, Stripe's rate applied, then
/// the handler; recorded in the request log either way.
async fn admitted(s: &Shared, prefix: &str, req: Request, next: Next) -> Response {
    let (version, entry) = {
        let header_text = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let version = header_text("stripe-version");
        let entry = json!({
            "method": req.method().as_str(),
            "path": format!("{prefix}{}", req.uri().path()),
            "query": req.uri().query(),
            "stripe_version": version,
            "stripe_context": header_text("stripe-context"),
        });
        (version, entry)
    };
    let refusal = refusal(s, version.as_deref());
    let response = match refusal {
        Some(r) => r,
        None => next.run(req).await,
    };
    let mut entry = entry;
    entry["status"] = json!(response.status().as_u16());
    record(s, entry);
    response
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn decodes_basic_auth() {
        assert_eq!(
            base64_decode("c2tfdGVzdF9hYmM6").as_deref(),
            Some(&b"sk_test_abc:"[..])
        );
    }
}
