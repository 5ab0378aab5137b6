//! One limiter for every HubSpot call of the process: a sliding 10-second window of
//! `requests_per_10s`, a separate per-second window for search (HubSpot counts search
//! outside the 10-second bucket), and pauses: a 429, or `X-HubSpot-RateLimit-Remaining: 0`,
//! stops *every* caller until the window allows again.
//!
//! Background work (a scheduled reconcile) runs inside [`in_background`]: its calls count
//! in the same window, and may take at most `background_share` of it, so live events keep
//! the rest.
//!
//! Several replicas share one budget through Postgres ([`Limiter::share`], see
//! `shared_budget.rs`): a call this limiter admits then takes a token from the shared
//! bucket, pauses reach every replica, and `is_tight` and `ready` see the shared pressure.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::shared_budget::SharedBudget;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Everything but search: the rolling 10-second budget.
    Standard,
    /// CRM search: its own per-second budget.
    Search,
}

/// How much longer than the window a background call is counted (see `wait_needed`).
const BACKGROUND_MARGIN: Duration = Duration::from_millis(250);

tokio::task_local! {
    static BACKGROUND: bool;
}

/// Runs `work` as background work: its HubSpot calls use at most the limiter's
/// background share of the window.
pub async fn in_background<F: Future>(work: F) -> F::Output {
    BACKGROUND.scope(true, work).await
}

fn is_background() -> bool {
    BACKGROUND.try_with(|b| *b).unwrap_or(false)
}

pub struct Limiter {
    state: Mutex<State>,
    standard_max: usize,
    /// The calls of the window background work may take.
    background_max: AtomicUsize,
    standard_window: Duration,
    search_max: usize,
    search_window: Duration,
    /// The budget every replica shares, when there are several (set once).
    shared: OnceLock<Arc<SharedBudget>>,
}

struct State {
    standard: VecDeque<Instant>,
    /// The background calls among `standard`.
    background: VecDeque<Instant>,
    search: VecDeque<Instant>,
    paused_until: Option<Instant>,
    /// Pacing tokens: the window's budget spread evenly (see `pace`).
    tokens: f64,
    refilled: Instant,
}

impl Limiter {
    pub fn new(requests_per_10s: u32, search_per_s: u32) -> Self {
        Self {
            state: Mutex::new(State {
                standard: VecDeque::new(),
                background: VecDeque::new(),
                search: VecDeque::new(),
                paused_until: None,
                tokens: 1.0,
                refilled: Instant::now(),
            }),
            standard_max: requests_per_10s.max(1) as usize,
            background_max: AtomicUsize::new(requests_per_10s.max(1) as usize),
            standard_window: Duration::from_secs(10),
            search_max: search_per_s.max(1) as usize,
            search_window: Duration::from_secs(1),
            shared: OnceLock::new(),
        }
    }

    /// From now on every call admitted here also takes a token from the budget all replicas
    /// share in `pool` (the table `hubspot_budget`); a pause reaches every replica. The
    /// first pool given stays.
    pub fn share(&self, pool: sqlx::PgPool) {
        let budget = SharedBudget::new(pool, self.standard_max, self.search_max);
        if self.shared.set(Arc::new(budget)).is_err() {
            tracing::warn!("the HubSpot limiter shares a budget already; the second is ignored");
        }
    }

    /// The budget shared with other replicas, if any.
    pub fn shared_budget(&self) -> Option<&SharedBudget> {
        self.shared.get().map(|s| &**s)
    }

    /// Background work may take at most `share` (0–1) of the window's calls (at least one).
    pub fn set_background_share(&self, share: f64) {
        let max = (self.standard_max as f64 * share.clamp(0.0, 1.0)).floor() as usize;
        self.background_max.store(max.max(1), Ordering::Relaxed);
    }

    /// How long until a call in `bucket` may start, or None if it may start now.
    fn wait_needed(
        &self,
        state: &mut State,
        bucket: Bucket,
        background: bool,
        now: Instant,
    ) -> Option<Duration> {
        if let Some(until) = state.paused_until {
            if until > now {
                return Some(until - now);
            }
            state.paused_until = None;
        }
        if background && bucket == Bucket::Standard {
            // HubSpot counts a call when it arrives, a little after it was admitted here: a
            // background call is counted in its window for a quarter second longer, so the
            // share holds in HubSpot's window too.
            let window = self.standard_window + BACKGROUND_MARGIN;
            while state.background.front().is_some_and(|t| *t + window <= now) {
                state.background.pop_front();
            }
            if state.background.len() >= self.background_max.load(Ordering::Relaxed) {
                return state.background.front().map(|t| *t + window - now);
            }
        }
        if bucket == Bucket::Standard {
            // Pacing: the budget is spent evenly (a token every window/max, a small burst).
            // Without it, calls made in one burst leave the window in one burst 10 s later,
            // and every burst after the first carries near-empty batches.
            let rate = self.standard_max as f64 / self.standard_window.as_secs_f64();
            let burst = (self.standard_max as f64 / 10.0).max(1.0);
            state.tokens = (state.tokens + (now - state.refilled).as_secs_f64() * rate).min(burst);
            state.refilled = now;
            if state.tokens < 1.0 {
                return Some(Duration::from_secs_f64((1.0 - state.tokens) / rate));
            }
        }
        let (queue, max, window) = match bucket {
            Bucket::Standard => (&mut state.standard, self.standard_max, self.standard_window),
            Bucket::Search => (&mut state.search, self.search_max, self.search_window),
        };
        while queue.front().is_some_and(|t| *t + window <= now) {
            queue.pop_front();
        }
        if queue.len() < max {
            None
        } else {
            queue.front().map(|t| *t + window - now)
        }
    }

    /// Waits for room in `bucket` and takes it, here and then in the shared budget if there
    /// is one. Returns the time spent waiting.
    pub async fn acquire(&self, bucket: Bucket) -> Duration {
        let started = Instant::now();
        self.acquire_here(bucket).await;
        if let Some(shared) = self.shared.get() {
            shared.take(bucket).await;
        }
        started.elapsed()
    }

    /// Waits for room in this process's windows and takes it.
    async fn acquire_here(&self, bucket: Bucket) {
        let background = is_background();
        loop {
            let wait = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                let now = Instant::now();
                match self.wait_needed(&mut state, bucket, background, now) {
                    None => {
                        match bucket {
                            Bucket::Standard => {
                                state.standard.push_back(now);
                                if background {
                                    state.background.push_back(now);
                                }
                                state.tokens -= 1.0;
                            }
                            Bucket::Search => state.search.push_back(now),
                        }
                        None
                    }
                    Some(wait) => Some(wait),
                }
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait + Duration::from_millis(1)).await,
            }
        }
    }

    /// Waits until a call in `bucket` could start, without taking the room (batchers wait
    /// here, then gather everything queued meanwhile into one call).
    pub async fn ready(&self, bucket: Bucket) {
        loop {
            let wait = match self.state.lock() {
                Ok(mut state) => {
                    self.wait_needed(&mut state, bucket, is_background(), Instant::now())
                }
                Err(_) => None,
            };
            match wait {
                None => break,
                Some(wait) => tokio::time::sleep(wait + Duration::from_millis(1)).await,
            }
        }
        if let Some(shared) = self.shared.get() {
            shared.ready(bucket).await;
        }
    }

    /// Whether the budget is what paces the calls now: less than half the pacing burst is
    /// left. Then a batcher gathers before calling (a fuller batch saves a call the budget
    /// would make everyone wait for); otherwise a call goes out at once (latency first).
    /// With a shared budget, also while the shared bucket is short (see `shared_budget.rs`).
    pub fn is_tight(&self) -> bool {
        if self.shared.get().is_some_and(|s| s.is_tight()) {
            return true;
        }
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        let rate = self.standard_max as f64 / self.standard_window.as_secs_f64();
        let burst = (self.standard_max as f64 / 10.0).max(1.0);
        state.tokens = (state.tokens + (now - state.refilled).as_secs_f64() * rate).min(burst);
        state.refilled = now;
        state.tokens < burst / 2.0
    }

    /// Stops every caller for `duration` (after a 429, or when HubSpot says nothing remains),
    /// here at once and in every replica sharing the budget as soon as it is written.
    pub fn pause(&self, duration: Duration) {
        self.pause_here(duration);
        if let Some(shared) = self.shared.get().cloned()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { shared.pause(duration).await });
        }
    }

    /// [`pause`](Self::pause), returning once every replica sharing the budget will see it.
    pub async fn pause_everywhere(&self, duration: Duration) {
        self.pause_here(duration);
        if let Some(shared) = self.shared.get() {
            shared.pause(duration).await;
        }
    }

    fn pause_here(&self, duration: Duration) {
        if let Ok(mut state) = self.state.lock() {
            let until = Instant::now() + duration;
            if state.paused_until.is_none_or(|p| p < until) {
                state.paused_until = Some(until);
            }
        }
    }

    /// After a 429: no call until the oldest call of the window has left it (at least `min`),
    /// in every replica sharing the budget.
    pub async fn pause_for_window(&self, bucket: Bucket, min: Duration) {
        let wait = match self.state.lock() {
            Ok(state) => {
                let now = Instant::now();
                let (queue, window) = match bucket {
                    Bucket::Standard => (&state.standard, self.standard_window),
                    Bucket::Search => (&state.search, self.search_window),
                };
                queue
                    .front()
                    .map(|t| (*t + window).saturating_duration_since(now))
                    .unwrap_or(window)
                    .max(min)
            }
            Err(_) => min,
        };
        self.pause_everywhere(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_in_any_window() {
        let limiter = std::sync::Arc::new(Limiter::new(10, 2));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..35 {
            let l = limiter.clone();
            handles.push(tokio::spawn(async move {
                l.acquire(Bucket::Standard).await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for h in handles {
            times.push(h.await.expect("join") - start);
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(10))
                .count();
            assert!(in_window <= 10, "{in_window} calls within 10 s of {t:?}");
        }
        // 35 calls at 10 per 10 s, paced about a second apart: the last starts after ~34 s.
        let last = times[34];
        assert!(
            last >= Duration::from_secs(30) && last < Duration::from_secs(36),
            "{last:?}"
        );
        // Evenly spread: once the one-call burst is spent, calls are ~1 s apart.
        for pair in times[1..].windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(990), "{pair:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_takes_at_most_its_share_and_live_calls_the_rest() {
        let limiter = std::sync::Arc::new(Limiter::new(20, 2));
        limiter.set_background_share(0.3);
        let start = Instant::now();
        let mut handles = Vec::new();
        for i in 0..60 {
            let l = limiter.clone();
            let background = i % 2 == 0;
            handles.push(tokio::spawn(async move {
                if background {
                    in_background(l.acquire(Bucket::Standard)).await;
                } else {
                    l.acquire(Bucket::Standard).await;
                }
                (Instant::now() - start, background)
            }));
        }
        let mut calls = Vec::new();
        for h in handles {
            calls.push(h.await.expect("join"));
        }
        calls.sort();
        for (i, (t, _)) in calls.iter().enumerate() {
            let window: Vec<bool> = calls[i..]
                .iter()
                .take_while(|(u, _)| *u < *t + Duration::from_secs(10))
                .map(|(_, b)| *b)
                .collect();
            assert!(window.len() <= 20, "{} calls within 10 s", window.len());
            let background = window.iter().filter(|b| **b).count();
            assert!(
                background <= 6,
                "{background} background calls within 10 s of {t:?}"
            );
        }
        // The live calls were not held behind the background ones: all 30 are done by the
        // time the window has served 30 calls at 2 per second (~15 s), while background
        // work at 6 per 10 s needs ~50 s for its 30.
        let last_live = calls.iter().filter(|(_, b)| !b).map(|(t, _)| *t).max();
        let last_background = calls.iter().filter(|(_, b)| *b).map(|(t, _)| *t).max();
        assert!(last_live < Some(Duration::from_secs(20)), "{last_live:?}");
        assert!(
            last_background >= Some(Duration::from_secs(40)),
            "{last_background:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn search_has_its_own_budget_and_pauses_stop_everyone() {
        let limiter = Limiter::new(100, 2);
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire(Bucket::Search).await;
        }
        assert!(start.elapsed() >= Duration::from_secs(1));
        // Search did not use the standard budget.
        let before = Instant::now();
        limiter.acquire(Bucket::Standard).await;
        assert!(before.elapsed() < Duration::from_millis(5));
        limiter.pause(Duration::from_secs(3));
        let before = Instant::now();
        limiter.acquire(Bucket::Standard).await;
        assert!(before.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn tight_once_the_pacing_burst_is_half_spent_and_loose_again_after_a_pause() {
        // 100 per 10 s: a pacing burst of 10, refilled at 10 a second.
        let limiter = Limiter::new(100, 5);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!limiter.is_tight(), "a full burst");
        for _ in 0..5 {
            limiter.acquire(Bucket::Standard).await;
        }
        assert!(!limiter.is_tight(), "half the burst left");
        limiter.acquire(Bucket::Standard).await;
        assert!(limiter.is_tight(), "less than half left");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!limiter.is_tight(), "two tokens back in 200 ms");
    }
}
