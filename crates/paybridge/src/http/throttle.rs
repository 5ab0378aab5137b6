//! Two small guards against floods, both pure (the caller passes the time):
//! [`LogLimiter`] lets one log line through per interval and counts what it held back, so a
//! flood of refused requests or failed accepts cannot fill the disk; [`Throttle`] slows
//! down wrong admin tokens per client address, with a backoff that doubles.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most one line per `every_ms`; the line that passes carries how many were suppressed
/// since the previous one.
#[derive(Debug)]
pub struct LogLimiter {
    every_ms: u64,
    /// When the last line passed (ms on the caller's clock; `u64::MAX` = never).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn new(every_ms: u64) -> Self {
        Self {
            every_ms,
            last: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Some(number suppressed before this one) when a line may be logged at `now_ms`.
    pub fn admit(&self, now_ms: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= self.every_ms;
        if due
            && self
                .last
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Milliseconds on a monotonic clock, for [`LogLimiter`] (tokio's, so paused-time tests
/// see it move).
pub fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(tokio::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Wrong admin tokens per client address: the first [`Throttle::FREE`] failures cost
/// nothing, then each failure locks the address out for a time that doubles (1 s, 2 s,
/// 4 s… up to 15 min). A right token clears the address. The table is bounded: when full,
/// addresses whose lockout is over are forgotten first, then the table is cleared (an
/// attacker with that many addresses is not slowed by a per-address table anyway).
#[derive(Debug, Default)]
pub struct Throttle {
    table: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until_ms: i64,
}

impl Throttle {
    pub const FREE: u32 = 5;
    const MAX_LOCK_MS: i64 = 15 * 60 * 1_000;
    const MAX_ADDRESSES: usize = 10_000;

    /// Some(milliseconds to wait) when `ip` is locked out at `now_ms`.
    pub fn locked(&self, ip: IpAddr, now_ms: i64) -> Option<i64> {
        let table = self.table.lock().ok()?;
        let f = table.get(&ip)?;
        (f.locked_until_ms > now_ms).then(|| f.locked_until_ms - now_ms)
    }

    /// Records a wrong token from `ip`; returns the lockout it now has (ms, 0 = none).
    pub fn failed(&self, ip: IpAddr, now_ms: i64) -> i64 {
        let Ok(mut table) = self.table.lock() else {
            return 0;
        };
        if table.len() >= Self::MAX_ADDRESSES && !table.contains_key(&ip) {
            table.retain(|_, f| f.locked_until_ms > now_ms);
            if table.len() >= Self::MAX_ADDRESSES {
                table.clear();
            }
        }
        let f = table.entry(ip).or_insert(Failures {
            count: 0,
            locked_until_ms: 0,
        });
        f.count = f.count.saturating_add(1);
        if f.count <= Self::FREE {
            return 0;
        }
        let doublings = (f.count - Self::FREE - 1).min(20);
        let lock = (1_000i64 << doublings).min(Self::MAX_LOCK_MS);
        f.locked_until_ms = now_ms + lock;
        lock
    }

    /// A right token from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_and_the_next_counts_the_rest() {
        let l = LogLimiter::new(1_000);
        assert_eq!(l.admit(5), Some(0));
        for t in 6..1_004 {
            assert_eq!(l.admit(t), None, "at {t}");
        }
        assert_eq!(l.admit(1_005), Some(998));
        assert_eq!(l.admit(1_006), None);
        assert_eq!(l.admit(2_005), Some(1));
    }

    #[test]
    fn wrong_tokens_lock_an_address_out_for_longer_each_time() {
        let t = Throttle::default();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..Throttle::FREE {
            assert_eq!(t.failed(ip, 0), 0);
            assert_eq!(t.locked(ip, 0), None);
        }
        assert_eq!(t.failed(ip, 0), 1_000);
        assert_eq!(t.locked(ip, 500), Some(500));
        assert_eq!(t.locked(other, 500), None, "per address");
        assert_eq!(t.locked(ip, 1_000), None, "the lockout ends");
        assert_eq!(t.failed(ip, 1_000), 2_000);
        assert_eq!(t.failed(ip, 3_000), 4_000);
        for _ in 0..30 {
            t.failed(ip, 10_000);
        }
        assert_eq!(t.locked(ip, 10_000), Some(Throttle::MAX_LOCK_MS), "capped");
        t.succeeded(ip);
        assert_eq!(t.locked(ip, 10_000), None);
        assert_eq!(
            t.failed(ip, 10_000),
            0,
            "a right token starts the count again"
        );
    }
}
