//! The portal's account details and its daily API usage (HubSpot's Account Info API,
//! `GET /account-info/{v3|2026-09}/details` and `…/api-usage/daily/private-apps`).
//!
//! Shapes from HubSpot's account-info spec (v3 and 2026-09): `PortalInformationResponse`
//! with `timeZone` (e.g. `US/Eastern`), `utcOffset` (`-04:00`) and `utcOffsetMilliseconds`;
//! the usage answer's `results[]` with `name`, `usageLimit`, `currentUsage`, `collectedAt`,
//! `fetchStatus` and `resetsAt`. HubSpot's usage guidelines: "The daily limit resets at
//! midnight based on your time zone setting."
//!
//! Scopes: the spec names `oauth`; a service key holding only CRM scopes was observed to
//! read the details (second-hand), so the sandbox asks for none.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::bearer;
use crate::clock;
use crate::error::ApiError;
use crate::state::{HUB_ID, Shared};

/// The portal's time zone setting: a name (shown) and its offset from UTC (used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    /// As HubSpot names it, e.g. `US/Eastern`.
    pub time_zone: String,
    /// Minutes east of UTC (US/Eastern in summer: -240). The sandbox has no DST.
    pub utc_offset_minutes: i32,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            time_zone: "UTC".to_owned(),
            utc_offset_minutes: 0,
        }
    }
}

impl Account {
    fn offset(&self) -> ChronoDuration {
        ChronoDuration::minutes(i64::from(self.utc_offset_minutes))
    }

    /// The account's calendar day at `at`.
    pub(crate) fn day(&self, at: DateTime<Utc>) -> chrono::NaiveDate {
        (at + self.offset()).date_naive()
    }

    /// The next midnight in the account's time zone after `at`.
    pub(crate) fn next_midnight(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let next_day = self.day(at) + ChronoDuration::days(1);
        next_day.and_time(chrono::NaiveTime::MIN).and_utc() - self.offset()
    }

    fn utc_offset(&self) -> String {
        let m = self.utc_offset_minutes;
        let sign = if m < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/details", get(details))
        .route("/2026-09/details", get(details))
        .route("/v3/api-usage/daily/private-apps", get(usage))
        .route("/2026-09/api-usage/daily/private-apps", get(usage))
}

async fn details(State(s): State<Arc<Shared>>) -> Response {
    let a = &s.config.account;
    axum::Json(json!({
        "portalId": HUB_ID,
        "accountType": "STANDARD",
        "timeZone": a.time_zone,
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": a.utc_offset(),
        "utcOffsetMilliseconds": i64::from(a.utc_offset_minutes) * 60_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
        "portalName": "paybridge sandbox",
    }))
    .into_response()
}

async fn usage(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !s.crm().behaviour.api_usage {
        return Err(ApiError::not_found(
            "No API usage is reported for this kind of token",
        ));
    }
    let now = clock::wall();
    let token = bearer(&headers).unwrap_or_default();
    let used = s.limiter.daily_used(&token);
    Ok(axum::Json(json!({"results": [{
        "name": "private-apps-api-calls-daily",
        "usageLimit": s.config.daily_limit,
        "currentUsage": used,
        "collectedAt": clock::iso(now),
        "fetchStatus": "SUCCESS",
        "resetsAt": clock::iso(s.config.account.next_midnight(now)),
    }]}))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_is_the_accounts() {
        let eastern = Account {
            time_zone: "US/Eastern".into(),
            utc_offset_minutes: -240,
        };
        let at = DateTime::parse_from_rfc3339("2020-04-10T02:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        // 02:00Z is 22:00 on the 9th in New York: the day ends at 04:00Z on the 10th, as in
        // HubSpot's own api-usage example (`resetsAt: 2020-04-10T04:00:00Z`).
        assert_eq!(
            clock::iso(eastern.next_midnight(at)),
            "2020-04-10T04:00:00.000Z"
        );
        assert_eq!(eastern.utc_offset(), "-04:00");
        assert_eq!(
            clock::iso(Account::default().next_midnight(at)),
            "2020-04-11T00:00:00.000Z"
        );
    }
}
