//! The Stripe API reads paybridge makes (research/stripe.md §3–§4): events (30-day
//! window, filters, cursor paging), customers, subscriptions, invoices, and (`objects`) a
//! thin event's related object, products, charges, and `/v2/core/events/{id}`. Lists are
//! newest first; unknown parameters are refused as Stripe does. Every request passes
//! [`gate`]: faults, the API key, the `Stripe-Version` header, Stripe's rate limit, then
//! the handler; the `Date` header follows Stripe's clock (see `behaviour`).

mod behaviour;
mod gate;
mod objects;

use gate::gate;

pub use behaviour::{StripeBehaviour, WildcardTypes};

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::clock;
use crate::search::glob;
use crate::seed::SeedStripe;
use crate::state::Shared;

const THIRTY_DAYS: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone)]
pub(crate) struct Stored {
    object: Value,
    /// Events only: delivered to every endpoint.
    delivered: bool,
    /// Insertion order, to break ties between equal `created`.
    seq: u64,
}

impl Stored {
    fn id(&self) -> &str {
        self.object.get("id").and_then(Value::as_str).unwrap_or("")
    }

    fn created(&self) -> i64 {
        self.object
            .get("created")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.object.get(name).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StripeStore {
    customers: Vec<Stored>,
    subscriptions: Vec<Stored>,
    invoices: Vec<Stored>,
    events: Vec<Stored>,
    /// Other objects by resource path (`charges`, `products`, `checkout/sessions`…).
    objects: BTreeMap<String, Vec<Stored>>,
    thin_events: Vec<Stored>,
    seq: u64,
    /// The switches, the rate window and the request log.
    pub traffic: behaviour::StripeTraffic,
}

pub(crate) fn upsert(items: &mut Vec<Stored>, seq: &mut u64, object: Value, delivered: bool) {
    *seq += 1;
    let item = Stored {
        object,
        delivered,
        seq: *seq,
    };
    match items.iter_mut().find(|s| s.id() == item.id()) {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
}

fn check(kind: &str, object: &Value, prefix: &str) -> Result<(), String> {
    let id = object.get("id").and_then(Value::as_str).unwrap_or("");
    if !id.starts_with(prefix) {
        return Err(format!(
            "stripe {kind}: every object needs an id starting with {prefix}"
        ));
    }
    if object.get("created").and_then(Value::as_i64).is_none() {
        return Err(format!(
            "stripe {kind} {id}: `created` (unix seconds) is required"
        ));
    }
    Ok(())
}

impl StripeStore {
    pub fn apply(&mut self, seed: &SeedStripe) -> Result<(), String> {
        for c in &seed.customers {
            check("customers", c, "cus_")?;
        }
        for s in &seed.subscriptions {
            check("subscriptions", s, "sub_")?;
        }
        for i in &seed.invoices {
            check("invoices", i, "in_")?;
        }
        for e in &seed.events {
            check("events", &e.event, "evt_")?;
        }
        for c in &seed.customers {
            upsert(&mut self.customers, &mut self.seq, c.clone(), true);
        }
        for s in &seed.subscriptions {
            upsert(&mut self.subscriptions, &mut self.seq, s.clone(), true);
        }
        for i in &seed.invoices {
            upsert(&mut self.invoices, &mut self.seq, i.clone(), true);
        }
        for e in &seed.events {
            upsert(
                &mut self.events,
                &mut self.seq,
                e.event.clone(),
                e.delivered,
            );
        }
        for o in &seed.objects {
            self.put_object(o.clone())?;
        }
        for e in &seed.thin_events {
            self.put_thin_event(e.clone())?;
        }
        Ok(())
    }

    pub fn with_behaviour(behaviour: StripeBehaviour) -> Self {
        Self {
            traffic: behaviour::StripeTraffic::new(behaviour),
            ..Self::default()
        }
    }

    pub fn record_event(&mut self, event: Value, delivered: bool) {
        upsert(&mut self.events, &mut self.seq, event, delivered);
    }

    pub fn json(&self) -> Value {
        let all = |items: &[Stored]| items.iter().map(|s| s.object.clone()).collect::<Vec<_>>();
        json!({
            "customers": all(&self.customers),
            "subscriptions": all(&self.subscriptions),
            "invoices": all(&self.invoices),
            "events": self.events.iter().map(|e| json!({"event": e.object, "delivered": e.delivered})).collect::<Vec<_>>(),
            "objects": self.objects.iter().map(|(k, v)| (k.clone(), json!(all(v)))).collect::<serde_json::Map<_, _>>(),
            "thin_events": all(&self.thin_events),
            "traffic": self.traffic.json(),
        })
    }
}

/// Stripe's error body: `{"error":{"type","message","code"?,"param"?,"doc_url"?}}`.
#[derive(Debug)]
pub(crate) struct StripeError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    code: Option<&'static str>,
    param: Option<String>,
}

impl StripeError {
    fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        StripeError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            code: None,
            param: param.map(str::to_owned),
        }
    }

    fn missing(what: &str, id: &str, param: &str, status: StatusCode) -> Self {
        StripeError {
            status,
            kind: "invalid_request_error",
            message: format!("No such {what}: '{id}'"),
            code: Some("resource_missing"),
            param: Some(param.to_owned()),
        }
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        let mut error = json!({"type": self.kind, "message": self.message});
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = self.param {
            error["param"] = json!(param);
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let v1 = Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/customers", get(list_customers))
        .route("/customers/{id}", get(get_customer))
        .route("/subscriptions", get(list_subscriptions))
        .route("/subscriptions/{id}", get(get_subscription))
        .route("/invoices/{id}", get(get_invoice));
    objects::routes(v1)
        .layer(middleware::from_fn_with_state(
            (shared.clone(), "/v1"),
            gate,
        ))
        .with_state(shared)
}

/// `/v2/…`: the thin events (`GET /v2/core/events/{id}`).
pub(crate) fn v2_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/core/events/{id}", get(objects::get_thin_event))
        .layer(middleware::from_fn_with_state(
            (shared.clone(), "/v2"),
            gate,
        ))
        .with_state(shared)
}

/// A list request's parameters, checked against what the endpoint allows.
struct Params(Vec<(String, String)>);

impl Params {
    /// `allowed` names may appear as `name`, `name[]`, `name[N]` or `name[key]`.
    fn new(raw: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, StripeError> {
        for (k, _) in &raw {
            let base = k.split('[').next().unwrap_or(k);
            if !allowed.contains(&base) && base != "expand" {
                return Err(StripeError {
                    code: Some("parameter_unknown"),
                    ..StripeError::invalid(format!("Received unknown parameter: {k}"), Some(k))
                });
            }
        }
        Ok(Params(raw))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key`, `key[]`, `key[0]`…
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k == key
                    || k.strip_prefix(key).is_some_and(|r| {
                        r.starts_with('[')
                            && r.ends_with(']')
                            && r[1..r.len() - 1].chars().all(|c| c.is_ascii_digit())
                    })
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn int(&self, key: &str) -> Result<Option<i64>, StripeError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| StripeError::invalid(format!("Invalid integer: {v}"), Some(key)))
            })
            .transpose()
    }

    fn limit(&self) -> Result<usize, StripeError> {
        let limit = self.int("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(StripeError::invalid(
                "This value must be between 1 and 100 (inclusive).",
                Some("limit"),
            ));
        }
        Ok(usize::try_from(limit).unwrap_or(10))
    }

    /// `created=N` or `created[gt|gte|lt|lte]=N`.
    fn created_ok(&self, created: i64) -> Result<bool, StripeError> {
        if let Some(exact) = self.int("created")? {
            return Ok(created == exact);
        }
        let bound = |op: &str| self.int(&format!("created[{op}]"));
        Ok(bound("gt")?.is_none_or(|b| created > b)
            && bound("gte")?.is_none_or(|b| created >= b)
            && bound("lt")?.is_none_or(|b| created < b)
            && bound("lte")?.is_none_or(|b| created <= b))
    }
}

/// Newest first, cursor paging with `starting_after` / `ending_before` (a
/// cursor keeps its place even if it does not match the filters).
fn page(
    items: &[Stored],
    params: &Params,
    url: &str,
    what: &str,
    keep: impl Fn(&Stored) -> Result<bool, StripeError>,
) -> Result<Response, StripeError> {
    let limit = params.limit()?;
    let (after, before) = (params.get("starting_after"), params.get("ending_before"));
    if after.is_some() && before.is_some() {
        return Err(StripeError::invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            None,
        ));
    }
    let mut sorted: Vec<&Stored> = items.iter().collect();
    sorted.sort_by(|a, b| b.created().cmp(&a.created()).then(b.seq.cmp(&a.seq)));
    let cursor = |id: &str, param: &str| {
        sorted
            .iter()
            .position(|s| s.id() == id)
            .ok_or_else(|| StripeError::missing(what, id, param, StatusCode::BAD_REQUEST))
    };
    let mut matching = Vec::new();
    for (i, s) in sorted.iter().enumerate() {
        if keep(s)? {
            matching.push((i, *s));
        }
    }
    let (data, has_more): (Vec<&Stored>, bool) = if let Some(id) = before {
        let at = cursor(id, "ending_before")?;
        let newer: Vec<&Stored> = matching
            .iter()
            .filter(|(i, _)| *i < at)
            .map(|(_, s)| *s)
            .collect();
        let start = newer.len().saturating_sub(limit);
        (newer[start..].to_vec(), start > 0)
    } else {
        let at = match after {
            Some(id) => Some(cursor(id, "starting_after")?),
            None => None,
        };
        let older: Vec<&Stored> = matching
            .iter()
            .filter(|(i, _)| at.is_none_or(|a| *i > a))
            .map(|(_, s)| *s)
            .collect();
        (
            older.iter().take(limit).copied().collect(),
            older.len() > limit,
        )
    };
    Ok(axum::Json(json!({
        "object": "list",
        "url": url,
        "has_more": has_more,
        "data": data.iter().map(|s| s.object.clone()).collect::<Vec<_>>(),
    }))
    .into_response())
}

fn wildcard_answer(s: &Shared) -> WildcardTypes {
    s.crm().stripe.traffic.behaviour.wildcard_types
}

fn recent(e: &Stored) -> bool {
    e.created() >= clock::wall().timestamp() - THIRTY_DAYS
}

async fn list_events(
    State(s): State<Arc<Shared>>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, StripeError> {
    let params = Params::new(
        raw,
        &[
            "created",
            "type",
            "types",
            "delivery_success",
            "limit",
            "starting_after",
            "ending_before",
        ],
    )?;
    let types = params.all("types");
    let one = params.get("type").map(str::to_owned);
    if one.is_some() && !types.is_empty() {
        return Err(StripeError::invalid(
            "You may only specify one of these parameters: type, types.",
            None,
        ));
    }
    if types.len() > 20 {
        return Err(StripeError::invalid(
            "You may pass at most 20 types.",
            Some("types"),
        ));
    }
    let wildcard = wildcard_answer(&s);
    if let Some(i) = types.iter().position(|t| t.contains('*'))
        && wildcard == WildcardTypes::Refuse
    {
        return Err(StripeError {
            code: Some("parameter_invalid"),
            ..StripeError::invalid(
                format!(
                    "Invalid types[{i}]: must be an exact event type name (wildcards are only allowed in `type`)."
                ),
                Some(&format!("types[{i}]")),
            )
        });
    }
    let delivered = match params.get("delivery_success") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(StripeError::invalid(
                format!("Invalid boolean: {other}"),
                Some("delivery_success"),
            ));
        }
    };
    let crm = s.crm();
    page(&crm.stripe.events, &params, "/v1/events", "event", |e| {
        let ty = e.field("type").unwrap_or("");
        Ok(recent(e)
            && params.created_ok(e.created())?
            && one.as_deref().is_none_or(|p| glob(p, ty))
            && (types.is_empty() || types.iter().any(|p| p == ty))
            && delivered.is_none_or(|d| e.delivered == d))
    })
}

async fn get_event(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, StripeError> {
    let crm = s.crm();
    crm.stripe
        .events
        .iter()
        .find(|e| e.id() == id && recent(e))
        .map(|e| axum::Json(e.object.clone()).into_response())
        .ok_or_else(|| StripeError::missing("event", &id, "id", StatusCode::NOT_FOUND))
}

fn is_deleted(c: &Stored) -> bool {
    c.object.get("deleted").and_then(Value::as_bool) == Some(true)
}

async fn list_customers(
    State(s): State<Arc<Shared>>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, StripeError> {
    let params = Params::new(
        raw,
        &[
            "created",
            "email",
            "limit",
            "starting_after",
            "ending_before",
        ],
    )?;
    let email = params.get("email").map(str::to_owned);
    let crm = s.crm();
    page(
        &crm.stripe.customers,
        &params,
        "/v1/customers",
        "customer",
        |c| {
            Ok(!is_deleted(c)
                && params.created_ok(c.created())?
                && email.as_deref().is_none_or(|e| c.field("email") == Some(e)))
        },
    )
}

/// A deleted customer is retrieved as `{id, object: "customer", deleted: true}`.
async fn get_customer(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, StripeError> {
    let crm = s.crm();
    let c = crm
        .stripe
        .customers
        .iter()
        .find(|c| c.id() == id)
        .ok_or_else(|| StripeError::missing("customer", &id, "id", StatusCode::NOT_FOUND))?;
    if is_deleted(c) {
        return Ok(
            axum::Json(json!({"id": id, "object": "customer", "deleted": true})).into_response(),
        );
    }
    Ok(axum::Json(c.object.clone()).into_response())
}

const SUBSCRIPTION_STATUSES: &[&str] = &[
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
    "all",
    "ended",
];

/// Without `status`, canceled subscriptions are left out, as Stripe documents.
async fn list_subscriptions(
    State(s): State<Arc<Shared>>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, StripeError> {
    let params = Params::new(
        raw,
        &[
            "created",
            "customer",
            "price",
            "status",
            "limit",
            "starting_after",
            "ending_before",
        ],
    )?;
    let status = params.get("status").map(str::to_owned);
    if let Some(st) = &status
        && !SUBSCRIPTION_STATUSES.contains(&st.as_str())
    {
        return Err(StripeError::invalid(
            format!(
                "Invalid status: must be one of {}",
                SUBSCRIPTION_STATUSES.join(", ")
            ),
            Some("status"),
        ));
    }
    let customer = params.get("customer").map(str::to_owned);
    let price = params.get("price").map(str::to_owned);
    let crm = s.crm();
    page(
        &crm.stripe.subscriptions,
        &params,
        "/v1/subscriptions",
        "subscription",
        |sub| {
            let st = sub.field("status").unwrap_or("");
            let status_ok = match status.as_deref() {
                None => st != "canceled",
                Some("all") => true,
                Some("ended") => matches!(st, "canceled" | "incomplete_expired"),
                Some(want) => st == want,
            };
            let price_ok = price.as_deref().is_none_or(|p| {
                sub.object
                    .pointer("/items/data")
                    .and_then(Value::as_array)
                    .is_some_and(|items| {
                        items
                            .iter()
                            .any(|i| i.pointer("/price/id").and_then(Value::as_str) == Some(p))
                    })
            });
            Ok(status_ok
                && price_ok
                && params.created_ok(sub.created())?
                && customer
                    .as_deref()
                    .is_none_or(|c| sub.field("customer") == Some(c)))
        },
    )
}

async fn get_subscription(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, StripeError> {
    let crm = s.crm();
    crm.stripe
        .subscriptions
        .iter()
        .find(|x| x.id() == id)
        .map(|x| axum::Json(x.object.clone()).into_response())
        .ok_or_else(|| StripeError::missing("subscription", &id, "id", StatusCode::NOT_FOUND))
}

async fn get_invoice(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, StripeError> {
    let crm = s.crm();
    crm.stripe
        .invoices
        .iter()
        .find(|x| x.id() == id)
        .map(|x| axum::Json(x.object.clone()).into_response())
        .ok_or_else(|| StripeError::missing("invoice", &id, "id", StatusCode::NOT_FOUND))
}
