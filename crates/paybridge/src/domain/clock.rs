//! The clock every time-dependent decision reads: the system clock in production, a
//! manual clock in tests (sequences jump days in microseconds, reports replay history).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start_ms` (unix milliseconds) until advanced.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => Utc::now().timestamp_millis(),
        }
    }

    /// Unix time in seconds.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default()
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance_ms(&self, ms: i64) {
        if let Some(now) = &self.manual {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn set_ms(&self, ms: i64) {
        if let Some(now) = &self.manual {
            now.store(ms, Ordering::SeqCst);
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}
