//! Dead-letter alerts to a Slack incoming webhook, at most one per event.

use std::time::Duration;

use serde_json::json;

use super::outbound::Policy;
use crate::basics::Secret;
use crate::rules::template::Escape;

#[derive(Clone)]
pub struct Alerter {
    http: reqwest::Client,
    url: Secret,
    policy: Policy,
}

impl Alerter {
    /// An alerter posting to `url` under the outbound `policy` (no redirects, address
    /// checks).
    pub fn new(url: Secret, policy: &Policy) -> anyhow::Result<Self> {
        Ok(Self {
            http: policy.client()?,
            url,
            policy: policy.clone(),
        })
    }

    /// Posts Slack's incoming-webhook JSON; a few tries, then logged and dropped (the
    /// event itself is safe in the store as a dead letter).
    pub async fn dead_letter(&self, event_id: &str, event_type: &str, customer: &str, error: &str) {
        if let Err(why) = self.policy.check(self.url.expose()) {
            tracing::warn!(event_id, reason = %why, "dead-letter alert not sent: alerts.slack_webhook_url is refused");
            return;
        }
        // The values come from outside (event ids, customer ids, error text that may echo
        // a customer's data): escaped for Slack, so they cannot ping or link.
        let slack = |s: &str| Escape::Slack.apply(s);
        let (event_id_s, event_type_s) = (slack(event_id), slack(event_type));
        let (customer_s, error_s) = (slack(customer), slack(error));
        let text = format!(
            ":rotating_light: paybridge gave up on Stripe event `{event_id_s}` ({event_type_s}, customer {customer_s}): {error_s}\nRun `paybridge events show {event_id_s}`, fix the cause, then `paybridge events retry {event_id_s}`."
        );
        self.post(event_id, &text).await;
    }

    /// HubSpot's daily limit is spent: nothing is lost, everything waits until `until`.
    pub async fn daily_limit(&self, until: &str, zone: &str) {
        let text = format!(
            ":hourglass: HubSpot's daily API limit is spent. paybridge holds every HubSpot call until {until} ({zone}); events keep arriving and wait, none is lost."
        );
        self.post("hubspot-daily-limit", &text).await;
    }

    async fn post(&self, event_id: &str, text: &str) {
        let body = json!({ "text": text });
        for attempt in 1..=3u32 {
            match self.http.post(self.url.expose()).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(event_id, "dead-letter alert sent to Slack");
                    return;
                }
                Ok(r) => tracing::warn!(
                    event_id,
                    status = r.status().as_u16(),
                    attempt,
                    "Slack refused the alert"
                ),
                Err(e) => {
                    tracing::warn!(event_id, error = %e.without_url(), attempt, "Slack alert failed")
                }
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }
}
