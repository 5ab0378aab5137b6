//! HubSpot's daily limit. Its 429 says `"policyName":"DAILY"` ("The `message` and
//! `policyName` will indicate which limit you hit (either daily or secondly)"), and "the
//! daily limit resets at midnight based on your time zone setting" (usage guidelines).
//! Retrying every minute until then would only pile up errors ("Requests resulting in an
//! error response shouldn't exceed 5% of your total daily requests"), so after a DAILY 429
//! every call is held, without reaching HubSpot, until the reset:
//!
//! 1. `resetsAt` of `GET /account-info/…/api-usage/daily/private-apps`, when it answers;
//! 2. else the next midnight at the account's `utcOffsetMilliseconds`
//!    (`GET /account-info/…/details`), read while calls were still allowed — once the day's
//!    remaining calls (`X-HubSpot-RateLimit-Daily-Remaining`) fall to a tenth — since the
//!    account-info calls may count against the spent budget too;
//! 3. else an hour from now. An hour too is what a second DAILY 429 within two hours of
//!    a reset gets: the offset was wrong (a daylight-saving change, say).
//!
//! The hold and the one alert it owes are process-wide (each replica alerts once).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::domain::Clock;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The account's time zone as HubSpot's account details give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountZone {
    /// e.g. `US/Eastern`.
    pub name: String,
    /// The offset from UTC now, in milliseconds (`utcOffsetMilliseconds`).
    pub offset_ms: i64,
}

impl AccountZone {
    /// From `GET /account-info/…/details`.
    pub fn from_details(body: &Value) -> Option<Self> {
        Some(Self {
            name: body
                .get("timeZone")
                .and_then(Value::as_str)
                .unwrap_or("UTC")
                .to_owned(),
            offset_ms: body.get("utcOffsetMilliseconds")?.as_i64()?,
        })
    }

    /// The first midnight in this zone after `now_ms`.
    pub fn next_midnight(&self, now_ms: i64) -> i64 {
        let local = now_ms + self.offset_ms;
        (local.div_euclid(DAY_MS) + 1) * DAY_MS - self.offset_ms
    }
}

/// `resetsAt` of an api-usage answer, when it is after `now_ms`.
pub fn resets_at(body: &Value, now_ms: i64) -> Option<i64> {
    body.get("results")?
        .as_array()?
        .iter()
        .filter_map(|r| r.get("resetsAt")?.as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .find(|ms| *ms > now_ms)
}

/// The hold after a DAILY 429, the account's zone, and the alert owed.
#[derive(Default)]
pub struct Daily {
    clock: Mutex<Clock>,
    /// Unix ms until which no call is made; 0 when not holding.
    until_ms: AtomicI64,
    /// When the last hold ended (to tell a wrong reset time).
    last_until_ms: AtomicI64,
    alert_owed: AtomicBool,
    zone: Mutex<Option<(AccountZone, i64)>>,
    /// The day's remaining calls fell low: read the account's zone while it can be read.
    want_zone: AtomicBool,
}

impl Daily {
    pub fn use_clock(&self, clock: Clock) {
        if let Ok(mut c) = self.clock.lock() {
            *c = clock;
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.lock().map(|c| c.now_ms()).unwrap_or_default()
    }

    /// How long calls are still held, if they are.
    pub fn held_for(&self) -> Option<Duration> {
        let left = self.until_ms.load(Ordering::SeqCst) - self.now_ms();
        (left > 0).then(|| Duration::from_millis(left as u64))
    }

    /// The account's zone, if read in the last day.
    pub fn zone(&self) -> Option<AccountZone> {
        let now = self.now_ms();
        let zone = self.zone.lock().ok()?;
        zone.as_ref()
            .filter(|(_, at)| now - at < DAY_MS)
            .map(|(z, _)| z.clone())
    }

    pub fn remember_zone(&self, zone: AccountZone) {
        let now = self.now_ms();
        if let Ok(mut z) = self.zone.lock() {
            *z = Some((zone, now));
        }
        self.want_zone.store(false, Ordering::SeqCst);
    }

    /// From the rate-limit headers of an answer: `X-HubSpot-RateLimit-Daily` and
    /// `-Daily-Remaining` (not sent to OAuth apps).
    pub fn observe(&self, daily: Option<i64>, remaining: Option<i64>) {
        if let (Some(daily), Some(remaining)) = (daily, remaining)
            && remaining <= (daily / 10).max(2)
            && self.zone().is_none()
        {
            self.want_zone.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the zone should be read now (once per want).
    pub fn take_want_zone(&self) -> bool {
        self.want_zone.swap(false, Ordering::SeqCst)
    }

    /// When calls may start again after a DAILY 429 now, from what is known; see the
    /// module's note. `resets_at` is the api-usage answer's, if it came.
    pub fn reset_time(&self, resets_at: Option<i64>) -> i64 {
        let now = self.now_ms();
        let recently_reset = now - self.last_until_ms.load(Ordering::SeqCst) < 2 * HOUR_MS;
        if recently_reset {
            return now + HOUR_MS;
        }
        resets_at
            .or_else(|| self.zone().map(|z| z.next_midnight(now)))
            .filter(|at| *at > now && *at <= now + DAY_MS + HOUR_MS)
            .unwrap_or(now + HOUR_MS)
    }

    /// Holds every call until `until_ms`; the first hold of a new reset time owes an alert.
    pub fn hold_until(&self, until_ms: i64) {
        let previous = self.until_ms.swap(until_ms, Ordering::SeqCst);
        if previous != until_ms {
            self.alert_owed.store(true, Ordering::SeqCst);
        }
        self.last_until_ms.store(until_ms, Ordering::SeqCst);
    }

    /// The reset time, once per hold, for the one alert.
    pub fn take_alert(&self) -> Option<i64> {
        self.alert_owed
            .swap(false, Ordering::SeqCst)
            .then(|| self.until_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ms(t: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn midnight_is_the_accounts_as_hubspot_reports_it() {
        // The account-info spec's example: US/Eastern, -04:00, -14400000.
        let zone = AccountZone::from_details(&json!({"timeZone": "US/Eastern",
            "utcOffset": "-04:00", "utcOffsetMilliseconds": -14_400_000}))
        .expect("zone");
        assert_eq!(zone.name, "US/Eastern");
        // 22:00 in New York on the 9th → midnight there is 04:00Z on the 10th, as in the
        // api-usage example's `resetsAt: 2020-04-10T04:00:00Z`.
        assert_eq!(
            zone.next_midnight(ms("2020-04-10T02:00:00Z")),
            ms("2020-04-10T04:00:00Z")
        );
        assert_eq!(
            zone.next_midnight(ms("2020-04-10T04:00:00Z")),
            ms("2020-04-11T04:00:00Z")
        );
        let tokyo = AccountZone {
            name: "Asia/Tokyo".into(),
            offset_ms: 9 * HOUR_MS,
        };
        assert_eq!(
            tokyo.next_midnight(ms("2020-04-10T02:00:00Z")),
            ms("2020-04-10T15:00:00Z")
        );
    }

    #[test]
    fn the_reset_comes_from_resets_at_then_the_zone_then_an_hour() {
        let clock = Clock::manual(ms("2020-04-10T02:00:00Z"));
        let daily = Daily::default();
        daily.use_clock(clock.clone());
        let usage = json!({"results": [{"name": "private-apps-api-calls-daily",
            "usageLimit": 500000, "currentUsage": 500000, "fetchStatus": "SUCCESS",
            "resetsAt": "2020-04-10T04:00:00Z"}]});
        assert_eq!(
            resets_at(&usage, clock.now_ms()),
            Some(ms("2020-04-10T04:00:00Z"))
        );
        assert_eq!(
            daily.reset_time(None),
            ms("2020-04-10T03:00:00Z"),
            "nothing known: an hour"
        );
        daily.remember_zone(AccountZone {
            name: "US/Eastern".into(),
            offset_ms: -4 * HOUR_MS,
        });
        assert_eq!(daily.reset_time(None), ms("2020-04-10T04:00:00Z"));
        daily.hold_until(ms("2020-04-10T04:00:00Z"));
        assert_eq!(daily.take_alert(), Some(ms("2020-04-10T04:00:00Z")));
        assert_eq!(daily.take_alert(), None, "one alert per hold");
        assert_eq!(daily.held_for(), Some(Duration::from_secs(7200)));
        clock.set_ms(ms("2020-04-10T04:00:00Z"));
        assert_eq!(daily.held_for(), None);
        assert_eq!(
            daily.reset_time(None),
            ms("2020-04-10T05:00:00Z"),
            "limited again right after the reset: the zone was wrong, an hour"
        );
    }

    #[test]
    fn the_zone_is_wanted_when_a_tenth_of_the_day_is_left() {
        let daily = Daily::default();
        daily.observe(Some(250_000), Some(30_000));
        assert!(!daily.take_want_zone());
        daily.observe(Some(250_000), Some(25_000));
        assert!(daily.take_want_zone());
        assert!(!daily.take_want_zone(), "once");
    }
}
