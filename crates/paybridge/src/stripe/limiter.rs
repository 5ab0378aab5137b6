//! Paybridge's own budget for Stripe's API: at most `per_second` requests in any rolling
//! second, shared by every caller of one client (backfill, replay, the worker's reads).
//!
//! Stripe's limits (docs.stripe.com/rate-limits): "Live mode: 100 operations; Sandbox: 25
//! operations … API endpoints have a default limit of 25 requests per second", shared with
//! the merchant's own application. The default, 20 per second, leaves room for it.
//! On tokio's clock, so tests move it with paused time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct StripeLimiter {
    per_second: usize,
    sent: Arc<Mutex<VecDeque<Instant>>>,
}

impl StripeLimiter {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1) as usize,
            sent: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Waits until one more request fits in the rolling second, and counts it.
    pub async fn acquire(&self) {
        loop {
            let wait_until = {
                let mut sent = self.sent.lock().await;
                let now = Instant::now();
                while sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    sent.pop_front();
                }
                if sent.len() < self.per_second {
                    sent.push_back(now);
                    return;
                }
                match sent.front() {
                    Some(first) => *first + WINDOW,
                    None => now,
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_in_any_second() {
        let limiter = StripeLimiter::new(20);
        let start = Instant::now();
        let mut times = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..95 {
            let l = limiter.clone();
            tasks.spawn(async move {
                l.acquire().await;
                Instant::now()
            });
        }
        while let Some(t) = tasks.join_next().await {
            times.push(t.expect("task"));
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < WINDOW)
                .count();
            assert!(in_window <= 20, "{in_window} requests within one second");
        }
        // 95 requests at 20 per second need four full seconds of waiting, not more.
        let last = times.last().expect("times").duration_since(start);
        assert_eq!(last, Duration::from_secs(4));
    }
}
