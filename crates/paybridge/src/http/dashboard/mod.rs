//! The dashboard on the admin listener (SPEC §4 `GET /`): one server-rendered page that
//! answers "is it healthy, what happened to this payment, what failed and why, what is it
//! worth", and one page per event with its steps, timeline and a Retry button.
//!
//! Routes: `GET /` (health strip, charts, impact, event log with filters and paging),
//! `GET /health.json` (the strip, polled by the page), `GET /events/{id}`,
//! `POST /events/{id}/retry`, `GET|POST /login`, `POST /logout`. Templates are compiled into
//! the binary (`templates/`, HTML auto-escaped); CSS and the few lines of script are inline
//! and allowed by a per-response CSP nonce, so the page needs nothing from the network.

mod auth;
pub mod chart;
mod health;
mod views;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};

use crate::config::Settings;
use crate::domain::Clock;
use crate::http::throttle::Throttle;
use crate::hubspot::CallCounts;
use crate::store::Store;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("event.html", include_str!("../templates/event.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("message.html", include_str!("../templates/message.html")),
];

/// How often the HubSpot client's call counts are read in the background (the budget needs readings
/// about 10 s apart even when no page is open).
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// What the dashboard needs; cheap to clone.
#[derive(Clone)]
pub struct DashboardState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    auth: auth::Auth,
    /// Wrong tokens per client address (shared with the admin API).
    throttle: Arc<Throttle>,
    /// The HubSpot client's counts of calls and 429s.
    calls: Arc<CallCounts>,
    portal_id: Option<u64>,
    requests_per_10s: u32,
    minutes_per_action: std::collections::BTreeMap<String, f64>,
    templates: Environment<'static>,
    samples: Mutex<health::Samples>,
    started: Instant,
    /// The impact section, computed at most once a minute.
    report: Mutex<Option<(Instant, Value)>>,
}

impl DashboardState {
    /// The dashboard of `settings` (admin token, sandbox mode, `hubspot.portal_id` and
    /// `requests_per_10s`, `[report]`), reading the HubSpot client's `calls`. Starts a
    /// sampler of those counts that ends when the last clone of the state is dropped.
    pub fn new(
        store: Store,
        settings: &Settings,
        calls: Arc<CallCounts>,
        throttle: Arc<Throttle>,
    ) -> Self {
        let state = Self {
            inner: Arc::new(Inner {
                clock: store.clock().clone(),
                store,
                auth: auth::Auth::new(settings.server.admin_token.clone(), settings.sandbox_mode),
                throttle,
                calls,
                portal_id: settings.hubspot.portal_id,
                requests_per_10s: settings.hubspot.requests_per_10s,
                minutes_per_action: settings.report.minutes_per_action.clone(),
                templates: templates(),
                samples: Mutex::new(health::Samples::default()),
                started: Instant::now(),
                report: Mutex::new(None),
            }),
        };
        state.sample();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(sample_until_dropped(Arc::downgrade(&state.inner)));
        }
        state
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn auth(&self) -> &auth::Auth {
        &self.inner.auth
    }

    fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Reads the HubSpot call counts now and returns what they say over the recent windows.
    fn sample(&self) -> health::HubspotUsage {
        let (calls, rate_limited) = self.inner.calls.totals();
        let at = self.inner.started.elapsed().as_millis() as u64;
        match self.inner.samples.lock() {
            Ok(mut samples) => {
                samples.record(at, calls as f64, rate_limited as f64);
                samples.usage()
            }
            Err(_) => health::HubspotUsage::default(),
        }
    }

    /// A page from a template, with the security headers every dashboard page carries.
    fn render(&self, name: &str, status: StatusCode, ctx: Value) -> Response {
        let nonce = crate::domain::random_hex(16);
        let ctx = context! { nonce => nonce, ..ctx };
        let html = self
            .inner
            .templates
            .get_template(name)
            .and_then(|t| t.render(ctx));
        match html {
            Ok(html) => {
                let mut response = (status, Html(html)).into_response();
                secure(&mut response, Some(&nonce));
                response
            }
            Err(e) => {
                tracing::error!(template = name, error = %format!("{e:#}"), "a dashboard page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response()
            }
        }
    }

    fn login_page(&self, status: StatusCode, next: &str, error: Option<&str>) -> Response {
        self.render(
            "login.html",
            status,
            context! {
                next => next,
                error => error,
                enabled => self.auth().enabled(),
            },
        )
    }

    fn message(&self, status: StatusCode, title: &str, text: &str) -> Response {
        self.render(
            "message.html",
            status,
            context! { title => title, text => text },
        )
    }

    fn forbidden(&self) -> Response {
        self.message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was not sent from this dashboard, or it has expired. Reload the page and try again.",
        )
    }
}

async fn sample_until_dropped(state: Weak<Inner>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = state.upgrade() else {
            return;
        };
        DashboardState { inner }.sample();
    }
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    // Names end in .html: minijinja's default callback auto-escapes them as HTML.
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %format!("{e:#}"), "a dashboard template does not compile");
        }
    }
    env
}

/// Headers of every dashboard response: nothing from elsewhere may load or run (the
/// inline style and script carry the nonce), no framing, no caching, no referrer to other
/// sites (`same-origin`, not `no-referrer`: with that, browsers send `Origin: null` on the
/// page's own form posts).
fn secure(response: &mut Response, nonce: Option<&str>) {
    let csp = match nonce {
        Some(n) => format!(
            "default-src 'none'; style-src 'nonce-{n}'; script-src 'nonce-{n}'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        None => "default-src 'none'; frame-ancestors 'none'".to_owned(),
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The dashboard's routes, to be merged into the admin router. Every route but `/login`
/// requires the admin token: as `Authorization: Bearer`, or as a signed-in browser.
pub fn router(state: DashboardState) -> Router {
    let protected = Router::new()
        .route("/", get(views::index))
        .route("/health.json", get(views::health_json))
        .route("/events/{id}", get(views::event))
        .route("/events/{id}/retry", post(views::retry))
        .route("/logout", post(auth::logout))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_login,
        ));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .merge(protected)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let env = templates();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
