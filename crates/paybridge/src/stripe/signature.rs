//! Stripe's webhook signature scheme (research/stripe.md §1), verified exactly as the
//! official libraries do, plus a future-timestamp check they lack.
//!
//! Header: `t=<unix secs>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`. Signed payload:
//! `"{t}.{raw body bytes}"`, HMAC-SHA256 keyed by the secret string as UTF-8 bytes
//! (including the `whsec_` prefix), lowercase hex. Only `v1` counts; any `v1` matching any
//! configured secret accepts (secret rotation, Connect endpoints).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::basics::Secret;

type HmacSha256 = Hmac<Sha256>;

/// A webhook endpoint secret (`whsec_…`). Never printed.
pub type WebhookSecret = Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header could not be parsed: {0}")]
    MalformedHeader(&'static str),
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches the payload for any configured secret")]
    NoMatch,
    /// The signature is valid but its time is too far from this server's clock: either the
    /// delivery is a replay, or this server's clock is wrong. The message gives both times.
    #[error(
        "the signature's timestamp t={timestamp} ({}) is {} s {} this server's clock ({now}, {}), beyond the tolerance of {tolerance_secs} s; if every delivery is refused like this, this server's clock is wrong (synchronise it with NTP)",
        crate::domain::time::seconds(*timestamp),
        age_secs.abs(),
        if *age_secs >= 0 { "behind" } else { "ahead of" },
        crate::domain::time::seconds(*now)
    )]
    OutsideTolerance {
        age_secs: i64,
        tolerance_secs: i64,
        /// The header's `t`.
        timestamp: i64,
        /// This server's clock when it checked.
        now: i64,
    },
}

impl SignatureError {
    /// A short machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature",
            Self::MalformedHeader(_) | Self::NoV1Signature => "malformed_signature",
            Self::NoMatch => "bad_signature",
            Self::OutsideTolerance { .. } => "signature_expired",
        }
    }
}

struct Parsed<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

/// Parses like stripe-node: split on `,`, each item on its first `=`, no trimming.
fn parse_header(header: &str) -> Result<Parsed<'_>, SignatureError> {
    if header.is_empty() {
        return Err(SignatureError::MissingHeader);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::MalformedHeader("t is not an integer"))?,
                )
            }
            "v1" => v1.push(value),
            _ => {} // v0 (test-mode fake) and unknown schemes are ignored: downgrade protection
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader("no t= timestamp"))?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(Parsed { timestamp, v1 })
}

/// Lowercase hex HMAC-SHA256 of `"{t}.{body}"`.
fn compute(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a `Stripe-Signature` header against the raw body.
///
/// Order: parse → HMAC → time (as stripe-node), so a forged header learns nothing
/// about our clock. Rejects timestamps older than `tolerance_secs` (300 s edge accepted,
/// 301 s refused, like the official libraries) and, unlike them, also more than
/// `tolerance_secs` in the future, so a captured header cannot be replayed forever.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[WebhookSecret],
    tolerance_secs: i64,
    now_secs: i64,
) -> Result<i64, SignatureError> {
    let parsed = parse_header(header)?;
    let mut matched = false;
    for secret in secrets {
        let expected = compute(secret.expose(), parsed.timestamp, body);
        for candidate in &parsed.v1 {
            // Compare the hex strings: Stripe signs lowercase; an uppercase copy is refused
            // as the official libraries refuse it.
            if bool::from(expected.as_bytes().ct_eq(candidate.as_bytes())) {
                matched = true;
            }
        }
    }
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    let age = now_secs - parsed.timestamp;
    if age > tolerance_secs || -age > tolerance_secs {
        return Err(SignatureError::OutsideTolerance {
            age_secs: age,
            tolerance_secs,
            timestamp: parsed.timestamp,
            now: now_secs,
        });
    }
    Ok(parsed.timestamp)
}

/// Builds a `Stripe-Signature` header as Stripe does (used by `simulate`, tests and benchmarks).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", compute(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> WebhookSecret {
        Secret::new(s.to_owned())
    }

    #[test]
    fn signs_and_verifies_round_trip() {
        let header = sign("whsec_test", 1_000, b"{}");
        assert_eq!(
            verify(&header, b"{}", &[secret("whsec_test")], 300, 1_000),
            Ok(1_000)
        );
    }

    #[test]
    fn refuses_future_beyond_tolerance() {
        let header = sign("whsec_test", 2_000, b"{}");
        assert!(verify(&header, b"{}", &[secret("whsec_test")], 300, 1_700).is_ok());
        assert!(matches!(
            verify(&header, b"{}", &[secret("whsec_test")], 300, 1_699),
            Err(SignatureError::OutsideTolerance { .. })
        ));
    }

    #[test]
    fn a_refused_timestamp_names_both_clocks() {
        let header = sign("whsec_test", 1_791_112_808, b"{}");
        let e = verify(&header, b"{}", &[secret("whsec_test")], 300, 1_791_113_208)
            .expect_err("400 s old");
        assert_eq!(
            e.to_string(),
            "the signature's timestamp t=1791112808 (2026-10-04 11:20:08Z) is 400 s behind this server's clock (1791113208, 2026-10-04 11:26:48Z), beyond the tolerance of 300 s; if every delivery is refused like this, this server's clock is wrong (synchronise it with NTP)"
        );
        let ahead = verify(&header, b"{}", &[secret("whsec_test")], 300, 1_791_112_000)
            .expect_err("808 s in the future");
        assert!(
            ahead
                .to_string()
                .contains("808 s ahead of this server's clock"),
            "{ahead}"
        );
    }

    #[test]
    fn any_configured_secret_accepts() {
        let header = sign("whsec_new", 1_000, b"x");
        let secrets = [secret("whsec_old"), secret("whsec_new")];
        assert!(verify(&header, b"x", &secrets, 300, 1_000).is_ok());
        assert_eq!(
            verify(&header, b"x", &secrets[..1], 300, 1_000),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let s = [secret("whsec_test")];
        assert_eq!(
            verify("", b"x", &s, 300, 0),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify("t=abc,v1=00", b"x", &s, 300, 0),
            Err(SignatureError::MalformedHeader("t is not an integer"))
        );
        assert_eq!(
            verify("t=1,v0=00", b"x", &s, 300, 0),
            Err(SignatureError::NoV1Signature)
        );
    }
}
