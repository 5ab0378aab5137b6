//! `paybridge simulate`: like `stripe trigger`, sends realistic, correctly signed test
//! events (see `stripe::simulate`) to a running server and prints what it answered.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::UsageError;
use crate::basics::Secret;
use crate::cli::SimulateArgs;
use crate::config::Settings;
use crate::domain::Clock;
use crate::store::Store;
use crate::stripe::sign;
use crate::stripe::simulate::{SimOptions, build_event, story};

/// Where `serve` keeps the webhook secret it generates in sandbox mode (see `app.rs`).
const SANDBOX_SECRET_KEY: &str = "sandbox_webhook_secret";

pub async fn run(args: SimulateArgs, settings: Settings) -> anyhow::Result<()> {
    let opts = SimOptions::new(args.customer, args.email, args.amount, args.product)
        .map_err(UsageError)?;
    let clock = Clock::system();
    let now = clock.now_secs();
    let events = match (&args.event_type, args.story) {
        (None, true) => story(&opts, args.outcome.unwrap_or_default(), now),
        (Some(kind), false) => vec![build_event(kind, &opts, now).map_err(UsageError)?],
        _ => {
            return Err(UsageError("give one event type, or --story".into()).into());
        }
    };
    let url = endpoint(args.url.as_deref(), &settings)?;
    let secret = secret(&settings).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let mut refused = 0;
    for event in &events {
        let body = serde_json::to_vec(event).context("cannot serialise the event")?;
        let kind = event["type"].as_str().unwrap_or("?");
        let id = event["id"].as_str().unwrap_or("?");
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "Stripe-Signature",
                sign(secret.expose(), clock.now_secs(), &body),
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}: is `paybridge serve` running?"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let answer = describe_answer(&text);
        println!("{kind:<32} {id:<28} {} {answer}", status.as_u16());
        if status != reqwest::StatusCode::OK {
            refused += 1;
        }
    }
    if refused > 0 {
        anyhow::bail!(
            "{refused} of {} event{} not accepted by {url}",
            events.len(),
            if events.len() == 1 { " was" } else { "s were" }
        );
    }
    Ok(())
}

/// The response body's `status` (`pending`, `ignored`, `duplicate`), or its error.
fn describe_answer(text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        let text = text.trim();
        return if text.is_empty() {
            "-".into()
        } else {
            text.chars().take(200).collect()
        };
    };
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        return status.to_owned();
    }
    match (
        body.get("error").and_then(Value::as_str),
        body.get("message").and_then(Value::as_str),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => body.to_string().chars().take(200).collect(),
    }
}

/// `--url` as a base (`http://host:port`) or the full webhook URL; by default the local
/// server of these settings.
fn endpoint(url: Option<&str>, settings: &Settings) -> anyhow::Result<String> {
    const PATH: &str = "/webhooks/stripe";
    let Some(url) = url else {
        return Ok(format!(
            "http://127.0.0.1:{}{PATH}",
            settings.server.listen.port()
        ));
    };
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| UsageError(format!("--url: `{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(UsageError(format!(
            "--url: `{url}` must be an http(s) URL, e.g. http://127.0.0.1:8080"
        ))
        .into());
    }
    Ok(if url.ends_with(PATH) {
        url.to_owned()
    } else {
        format!("{url}{PATH}")
    })
}

/// The configured secret, or in sandbox mode the one `serve` generated into its store.
async fn secret(settings: &Settings) -> anyhow::Result<Secret> {
    if let Some(secret) = settings.stripe.webhook_secrets.first() {
        return Ok(secret.clone());
    }
    let url = &settings.store.url;
    if let Some(path) = sqlite_path(url) {
        // Opening would create an empty database; there is nothing to read before `serve`.
        if !path.exists() {
            anyhow::bail!(
                "no webhook secret: no config file and no database at {} yet; start `paybridge serve` first (in this directory), or set stripe.webhook_secrets",
                path.display()
            );
        }
    }
    let store = Store::open(url, Clock::system()).await?;
    let kept = store.meta_get(SANDBOX_SECRET_KEY).await;
    store.close().await;
    match kept.context("cannot read the sandbox webhook secret from the store")? {
        Some(secret) => Ok(Secret::new(secret)),
        None => anyhow::bail!(
            "no webhook secret: no config file and none generated in {url} yet; start `paybridge serve` first, or set stripe.webhook_secrets"
        ),
    }
}

/// The file of a `sqlite://PATH` / `sqlite:PATH` URL (None for memory and other stores).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_may_be_a_base_or_the_webhook_url() {
        let mut settings = Settings::defaults();
        settings.server.listen = "0.0.0.0:8181".parse().expect("addr");
        assert_eq!(
            endpoint(None, &settings).expect("default"),
            "http://127.0.0.1:8181/webhooks/stripe"
        );
        for given in [
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9000/",
            "http://127.0.0.1:9000/webhooks/stripe",
        ] {
            assert_eq!(
                endpoint(Some(given), &settings).expect(given),
                "http://127.0.0.1:9000/webhooks/stripe"
            );
        }
        assert!(endpoint(Some("127.0.0.1:9000"), &settings).is_err());
        assert!(endpoint(Some("ftp://example.com"), &settings).is_err());
    }

    #[test]
    fn answers_are_summarised() {
        assert_eq!(
            describe_answer(
                r#"{"received":true,"id":"evt_1","duplicate":false,"status":"pending"}"#
            ),
            "pending"
        );
        assert_eq!(
            describe_answer(r#"{"error":"bad_signature","message":"no match"}"#),
            "bad_signature: no match"
        );
        assert_eq!(describe_answer(""), "-");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://paybridge.db"),
            Some("paybridge.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
    }
}
