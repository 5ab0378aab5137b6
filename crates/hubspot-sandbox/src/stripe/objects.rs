//! The Stripe objects paybridge reads one by one: a thin event's related object
//! (`related_object.url`, e.g. `/v1/invoices/{id}`), a product's name
//! (`GET /v1/products/{id}`), a disputed charge (`GET /v1/charges/{id}`), and the thin
//! events themselves (`GET /v2/core/events/{id}`, stripe-node 23.1.0
//! `V2/Core/Events.d.ts` `retrieve`: "Retrieves the details of an event if it was created
//! in the last 30 days"); and the list of charges `paybridge reconcile` reads
//! (`GET /v1/charges`, newest first, by customer).
//!
//! Seeded as `stripe.objects` (any object with `id` and `object`, routed by `object`) and
//! `stripe.thin_events`. A missing object answers 404 `resource_missing` ("No such …"), as
//! Stripe's retrieve endpoints do; that includes a deleted product (Stripe only deletes a
//! product without prices, `Products.d.ts` `del`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::{Params, Stored, StripeError, StripeStore, page, upsert};
use crate::state::Shared;

/// Stripe's `object` tag → the resource path it is retrieved under, and its name in
/// Stripe's "No such …" message.
const RESOURCES: &[(&str, &str, &str)] = &[
    ("charge", "charges", "charge"),
    ("product", "products", "product"),
    ("price", "prices", "price"),
    ("refund", "refunds", "refund"),
    ("dispute", "disputes", "dispute"),
    ("checkout.session", "checkout/sessions", "checkout session"),
    ("payment_intent", "payment_intents", "payment_intent"),
];

impl StripeStore {
    /// Files `object` under its resource (customers, subscriptions and invoices keep their
    /// own lists).
    pub(crate) fn put_object(&mut self, object: Value) -> Result<(), String> {
        let tag = object.get("object").and_then(Value::as_str).unwrap_or("");
        let id = object.get("id").and_then(Value::as_str).unwrap_or("");
        if id.is_empty() {
            return Err(format!("stripe object `{tag}`: `id` is required"));
        }
        match tag {
            "customer" => upsert(&mut self.customers, &mut self.seq, object, true),
            "subscription" => upsert(&mut self.subscriptions, &mut self.seq, object, true),
            "invoice" => upsert(&mut self.invoices, &mut self.seq, object, true),
            _ => {
                let Some((_, resource, _)) = RESOURCES.iter().find(|(t, _, _)| *t == tag) else {
                    return Err(format!(
                        "stripe object {id}: `object` must be one of customer, subscription, invoice, {}",
                        RESOURCES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                    ));
                };
                let items = self.objects.entry((*resource).to_owned()).or_default();
                upsert(items, &mut self.seq, object, true);
            }
        }
        Ok(())
    }

    pub(crate) fn put_thin_event(&mut self, event: Value) -> Result<(), String> {
        let ok = event.get("object").and_then(Value::as_str) == Some("v2.core.event")
            && event
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with("evt_"));
        if !ok {
            return Err(
                "stripe thin_events: each needs `object: v2.core.event` and an evt_ id".into(),
            );
        }
        upsert(&mut self.thin_events, &mut self.seq, event, true);
        Ok(())
    }
}

pub(crate) fn routes(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    let mut router = router.route("/charges", get(list_charges));
    for (tag, resource, _) in RESOURCES {
        let tag = *tag;
        router = router.route(
            &format!("/{resource}/{{id}}"),
            get(
                move |State(s): State<Arc<Shared>>,
                      Path(id): Path<String>,
                      Query(q): Query<Vec<(String, String)>>| async move {
                    retrieve(&s, tag, &id, &q)
                },
            ),
        );
    }
    router
}

fn retrieve(s: &Shared, tag: &str, id: &str, query: &[(String, String)]) -> Response {
    let Some((_, resource, name)) = RESOURCES.iter().find(|(t, _, _)| *t == tag) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let crm = s.crm();
    let found = crm
        .stripe
        .objects
        .get(*resource)
        .and_then(|items| items.iter().find(|o| o.id() == id))
        .map(|o: &Stored| o.object.clone());
    match found {
        Some(mut object) => {
            // A price's tiers come only when asked for (`expand[]=tiers`).
            let expanded = query
                .iter()
                .any(|(k, v)| k.starts_with("expand") && v == "tiers");
            if tag == "price"
                && !expanded
                && let Some(o) = object.as_object_mut()
            {
                o.remove("tiers");
            }
            axum::Json(object).into_response()
        }
        None => StripeError::missing(name, id, "id", StatusCode::NOT_FOUND).into_response(),
    }
}

/// `GET /v1/charges`: "Returns a list of charges you've previously created. The charges
/// are returned in sorted order, with the most recent charges appearing first" (Stripe API
/// reference, "List all charges"; stripe-node `ChargeListParams`: `created`, `customer`,
/// `payment_intent`, `transfer_group`, `limit`, `starting_after`, `ending_before`).
async fn list_charges(
    State(s): State<Arc<Shared>>,
    Query(raw): Query<Vec<(String, String)>>,
) -> Result<Response, StripeError> {
    let params = Params::new(
        raw,
        &[
            "created",
            "customer",
            "payment_intent",
            "transfer_group",
            "limit",
            "starting_after",
            "ending_before",
        ],
    )?;
    let field = |name: &str| params.get(name).map(str::to_owned);
    let (customer, intent, group) = (
        field("customer"),
        field("payment_intent"),
        field("transfer_group"),
    );
    let crm = s.crm();
    let none = Vec::new();
    let charges = crm.stripe.objects.get("charges").unwrap_or(&none);
    page(charges, &params, "/v1/charges", "charge", |c| {
        let matches = |want: &Option<String>, name: &str| {
            want.as_deref().is_none_or(|w| c.field(name) == Some(w))
        };
        Ok(params.created_ok(c.created())?
            && matches(&customer, "customer")
            && matches(&intent, "payment_intent")
            && matches(&group, "transfer_group"))
    })
}

/// `GET /v2/core/events/{id}`: the delivery's fields and `changes`, `data`,
/// `snapshot_event` as seeded.
pub(crate) async fn get_thin_event(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let crm = s.crm();
    match crm.stripe.thin_events.iter().find(|e| e.id() == id) {
        Some(e) => axum::Json(e.object.clone()).into_response(),
        None => StripeError::missing("event", &id, "id", StatusCode::NOT_FOUND).into_response(),
    }
}
