//! How a HubSpot call failed, classified for the retry policy.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubspotError {
    /// HubSpot said 429 for longer than we were willing to wait; not a failed attempt.
    #[error("HubSpot rate limit ({policy}); still limited after waiting")]
    RateLimited {
        policy: String,
        retry_after: Option<Duration>,
    },
    /// 408, 5xx, timeouts, connection errors: worth retrying.
    #[error("HubSpot {route}: {message}")]
    Retryable {
        route: &'static str,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// HubSpot is failing broadly and the circuit breaker is open (`breaker.rs`): the call
    /// was not made. Not a failed attempt: the job waits for HubSpot to come back.
    #[error("HubSpot is failing broadly (5xx or no answer); call not made, next probe in {} ms", retry_after.as_millis())]
    Unavailable { retry_after: Duration },
    /// Other 4xx: retrying will not help; kept with HubSpot's own words for the operator.
    #[error("HubSpot {route} answered {status} {category}: {message}")]
    Terminal {
        route: &'static str,
        status: u16,
        category: String,
        message: String,
        correlation_id: Option<String>,
    },
}

impl HubspotError {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Terminal { .. })
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::RateLimited { .. } => Some(429),
            Self::Retryable { status, .. } => *status,
            Self::Unavailable { .. } => None,
            Self::Terminal { status, .. } => Some(*status),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Retryable { retry_after, .. } => {
                *retry_after
            }
            Self::Unavailable { retry_after } => Some(*retry_after),
            Self::Terminal { .. } => None,
        }
    }

    /// A failure that says HubSpot is down or broken (5xx, 408, no answer), not that the
    /// request was wrong: what the circuit breaker counts.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Retryable { status, .. } => {
                status.is_none_or(|s| s == 408 || (500..600).contains(&s))
            }
            _ => false,
        }
    }

    /// HubSpot's error category (`VALIDATION_ERROR`, `CONFLICT`, `MISSING_SCOPES`, …).
    pub fn category(&self) -> Option<&str> {
        match self {
            Self::Terminal { category, .. } => Some(category),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::RateLimited { policy, .. } => policy,
            Self::Unavailable { .. } => "unavailable",
            Self::Retryable { message, .. } | Self::Terminal { message, .. } => message,
        }
    }
}
