//! Retry policy as data: exponential backoff with full jitter, honouring Retry-After.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before attempt `attempt + 1`, after `attempt` failures (1-based):
    /// uniform in [0, min(max, base·2^(attempt-1))], never less than `retry_after`.
    pub fn delay(&self, attempt: i64, retry_after: Option<Duration>) -> Duration {
        let exp = attempt.clamp(1, 30) as u32 - 1;
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max);
        let jittered =
            Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64));
        jittered.max(retry_after.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        for _ in 0..200 {
            assert!(b.delay(1, None) <= Duration::from_secs(1));
            assert!(b.delay(4, None) <= Duration::from_secs(8));
            assert!(b.delay(20, None) <= Duration::from_secs(60));
            assert!(b.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| b.delay(6, None)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }
}
