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
            Self::Terminal { status, .. } => Some(*status),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Retryable { retry_after, .. } => {
                *retry_after
            }
            Self::Terminal { .. } => None,
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
            Self::Retryable { message, .. } | Self::Terminal { message, .. } => message,
        }
    }
}
