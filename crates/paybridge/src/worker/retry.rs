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
            assert!(b.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        }
        // The ceiling doubles per failure up to the cap: the longest of 200 draws lies in its
        // upper half (all 200 below it has odds of 2^-200), never above it. A backoff that
        // never grew would fail at attempt 2.
        for (attempt, ceiling) in [(1, 1), (2, 2), (4, 8), (6, 32), (7, 60), (20, 60)] {
            let ceiling = Duration::from_secs(ceiling);
            let longest = (0..200)
                .map(|_| b.delay(attempt, None))
                .max()
                .unwrap_or_default();
            assert!(
                longest <= ceiling && longest > ceiling / 2,
                "attempt {attempt}: longest {longest:?}, ceiling {ceiling:?}"
            );
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| b.delay(6, None)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }
}
