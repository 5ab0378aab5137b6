//! The HubSpot router and its gate: correlation id → faults → bearer token →
//! rate limits → scope → handler → rate-limit headers, and statistics for
//! every call. Scopes per operation follow research §1.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::behaviour::TicketScopes;
use crate::error::{ApiError, HsJson, correlation_id};
use crate::faults::{Injected, Lost};
use crate::limits::{Budget, Policy};
use crate::objects::ObjectType;
use crate::requirements::Dated;
use crate::state::{APP_ID, HUB_ID, Shared, USER_ID};
use crate::{
    account, associations, lists, objects, owners, pipelines, properties, requirements, search,
    workflows,
};

const TOKEN_INFO: &str = "/oauth/v2/private-apps/get/access-token-info";

/// Every HubSpot path family: v3/v4 and the date-versioned 2026-09 paths.
pub(crate) fn hubspot_router(shared: Arc<Shared>) -> Router {
    let objects = || objects::router().merge(search::router());
    Router::new()
        .nest("/crm/v3/objects", objects())
        .nest(
            "/crm/objects/2026-09",
            objects().merge(associations::object_router()),
        )
        .nest("/crm/v4/objects", associations::object_router())
        .nest("/crm/v4/associations", associations::batch_router())
        .nest("/crm/associations/2026-09", associations::batch_router())
        .nest("/crm/v3/properties", properties::router())
        .nest("/crm/properties/2026-09", properties::router())
        .nest("/crm/v3/lists", lists::router())
        .nest("/crm/lists/2026-09", lists::router())
        .nest("/crm/v3/owners", owners::router())
        .nest("/crm/owners/2026-09", owners::router())
        .nest("/crm/v3/pipelines", pipelines::router())
        .nest("/crm/pipelines/2026-09", pipelines::router())
        .nest("/automation", workflows::router())
        .nest("/account-info", account::router())
        .nest("/crm-object-schemas", requirements::router())
        .route(TOKEN_INFO, post(token_info))
        // The official Python client asks for `/crm/v3/owners/` with a slash.
        .route("/crm/v3/owners/", get(owners::list))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

async fn unknown_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "No route matches this path in the sandbox",
    )
}

/// What an operation needs: its stats key, whether it is a search, and its
/// scopes — every group must be satisfied by at least one scope of the group.
struct Operation {
    route: String,
    search: bool,
    /// A write: POST, PUT, PATCH or DELETE other than a search or a batch read.
    write: bool,
    scopes: Vec<&'static [&'static str]>,
}

/// Ticket routes: HubSpot's spec files (v3, 2026-03, 2026-09) list only the legacy
/// `tickets` scope; its app settings offer the granular `crm.objects.tickets.*` and
/// `crm.schemas.tickets.*`. Which a portal accepts is switched (`ticket_scopes`).
fn tickets(t: TicketScopes, either: &'static [&'static str]) -> &'static [&'static str] {
    match t {
        TicketScopes::Either => either,
        TicketScopes::Legacy => &either[..1],
        TicketScopes::Granular => &either[1..],
    }
}

fn read_scope(ty: ObjectType, t: TicketScopes) -> &'static [&'static str] {
    match ty {
        ObjectType::Contacts | ObjectType::Tasks | ObjectType::Notes => {
            &["crm.objects.contacts.read"]
        }
        ObjectType::Deals => &["crm.objects.deals.read"],
        ObjectType::Tickets => tickets(t, &["tickets", "crm.objects.tickets.read"]),
    }
}

fn write_scope(ty: ObjectType, t: TicketScopes) -> &'static [&'static str] {
    match ty {
        ObjectType::Contacts | ObjectType::Tasks | ObjectType::Notes => {
            &["crm.objects.contacts.write"]
        }
        ObjectType::Deals => &["crm.objects.deals.write"],
        ObjectType::Tickets => tickets(t, &["tickets", "crm.objects.tickets.write"]),
    }
}

/// Property reads accept any of ~100 scopes in the spec; we accept the schema
/// and object read scopes of the type. Writes need the schema write scope.
/// Tasks and notes use the contacts schema scopes [?].
fn schema_scope(ty: ObjectType, write: bool, t: TicketScopes) -> &'static [&'static str] {
    match (ty, write) {
        (ObjectType::Deals, false) => &["crm.schemas.deals.read", "crm.objects.deals.read"],
        (ObjectType::Deals, true) => &["crm.schemas.deals.write"],
        (ObjectType::Tickets, false) => tickets(
            t,
            &[
                "tickets",
                "crm.schemas.tickets.read",
                "crm.objects.tickets.read",
            ],
        ),
        (ObjectType::Tickets, true) => tickets(t, &["tickets", "crm.schemas.tickets.write"]),
        (_, false) => &["crm.schemas.contacts.read", "crm.objects.contacts.read"],
        (_, true) => &["crm.schemas.contacts.write"],
    }
}

fn classify(
    method: &Method,
    template: &str,
    params: &[(String, String)],
    t: TicketScopes,
) -> Operation {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let ty_of = |name: &str| param(name).and_then(|v| ObjectType::parse(v).ok());
    // Route key: the template with object types and batch ops filled in, ids kept as {id}.
    let mut route = template.to_owned();
    for key in ["type", "objectType", "fromType", "toType", "op"] {
        if let Some(v) = param(key) {
            let shown = ObjectType::parse(v)
                .map(|t| t.name().to_owned())
                .unwrap_or_else(|_| v.to_owned());
            route = route.replace(&format!("{{{key}}}"), &shown);
        }
    }
    let route = format!("{method} {route}");
    let read = !matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    );
    let batch_read = template.contains("/batch/") && param("op") == Some("read");
    let mut op = Operation {
        route,
        search: false,
        write: !read && !template.ends_with("/search") && !batch_read && template != TOKEN_INFO,
        scopes: Vec::new(),
    };
    let is = |prefixes: &[&str]| prefixes.iter().any(|p| template.starts_with(p));
    if template == TOKEN_INFO {
        return op;
    }
    if is(&[
        "/crm/v3/objects/",
        "/crm/objects/2026-09/",
        "/crm/v4/objects/",
    ]) {
        let Some(ty) = ty_of("type") else { return op };
        if template.contains("/associations/") {
            op.scopes.push(if read {
                read_scope(ty, t)
            } else {
                write_scope(ty, t)
            });
            if let Some(to) = ty_of("toType") {
                op.scopes.push(read_scope(to, t));
            }
        } else if template.ends_with("/search") {
            op.search = true;
            op.scopes.push(read_scope(ty, t));
        } else if template.contains("/batch/") {
            let reading = param("op") == Some("read");
            op.scopes.push(if reading {
                read_scope(ty, t)
            } else {
                write_scope(ty, t)
            });
        } else {
            op.scopes.push(if read {
                read_scope(ty, t)
            } else {
                write_scope(ty, t)
            });
        }
    } else if is(&["/crm/v4/associations/", "/crm/associations/2026-09/"]) {
        for key in ["fromType", "toType"] {
            if let Some(ty) = ty_of(key) {
                op.scopes.push(read_scope(ty, t));
            }
        }
    } else if is(&["/crm/v3/properties/", "/crm/properties/2026-09/"]) {
        if let Some(ty) = ty_of("objectType") {
            op.scopes.push(schema_scope(ty, !read, t));
        }
    } else if is(&["/crm/v3/lists/", "/crm/lists/2026-09/"]) {
        op.scopes.push(&["crm.lists.read"]);
        if !read {
            op.scopes.push(&["crm.lists.write"]);
        }
    } else if is(&["/crm/v3/owners", "/crm/owners/2026-09"]) {
        op.scopes.push(&["crm.objects.owners.read", "automation"]);
    } else if is(&["/crm/v3/pipelines/", "/crm/pipelines/2026-09/"]) {
        if let Some(ty) = ty_of("objectType") {
            op.scopes.push(read_scope(ty, t));
        }
    } else if is(&["/automation/"]) {
        op.scopes.push(&["automation"]);
    } else if is(&["/crm-object-schemas/"]) {
        op.scopes.push(&["crm.schemas.custom.read"]);
    }
    op
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Static tokens never expire here, so `EXPIRED_AUTHENTICATION` [?] is not emulated.
fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

fn missing_scopes(required: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
    )
    .with_extra(
        "errors",
        json!([{
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": required},
        }]),
    )
    .with_extra("links", json!({"scopes": "https://developers.hubspot.com/scopes"}))
}

/// A 429 body (research §10). The group names follow the captured
/// `publicapi:hapikey-api-calls-ten-secondly:<portal>` and
/// `publicapi:hapikey-secondly:<portal>` with `private-app` in place of
/// `hapikey` — the private-app spelling is not captured [?].
fn rate_limited(policy: Policy, correlation: &str) -> Value {
    let (message, name, group) = match policy {
        Policy::TenSecondly => (
            "You have reached your ten_secondly_rolling limit.",
            "TEN_SECONDLY_ROLLING",
            format!("publicapi:private-app-api-calls-ten-secondly:{HUB_ID}"),
        ),
        Policy::Secondly => (
            "You have reached your secondly limit.",
            "SECONDLY",
            format!("publicapi:private-app-api-calls-search-secondly:{HUB_ID}"),
        ),
        Policy::Daily => (
            "You have reached your daily limit.",
            "DAILY",
            format!("publicapi:private-app-api-calls-daily:{HUB_ID}"),
        ),
    };
    json!({
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": correlation,
        "policyName": name,
        "groupName": group,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body.clone())).into_response()
}

fn set_header(response: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        response.headers_mut().insert(name, v);
    }
}

/// The documented headers. The legacy `-Secondly` pair is described as
/// deprecated and not enforced [?], so it is not sent; nor is `Retry-After`,
/// which HubSpot does not document for CRM 429s (research §10).
fn rate_headers(response: &mut Response, b: &Budget) {
    set_header(response, "X-HubSpot-RateLimit-Daily", b.daily);
    set_header(
        response,
        "X-HubSpot-RateLimit-Daily-Remaining",
        b.daily_remaining,
    );
    set_header(
        response,
        "X-HubSpot-RateLimit-Interval-Milliseconds",
        10_000,
    );
    set_header(response, "X-HubSpot-RateLimit-Max", b.max);
    set_header(response, "X-HubSpot-RateLimit-Remaining", b.remaining);
}

/// The 5xx bodies of faults. Real outages answer from HubSpot's edge, sometimes
/// with HTML; the sandbox answers JSON in HubSpot's error shape so that a
/// client's error path is exercised without an HTML parser.
fn fault_response(status: u16, correlation: &str) -> Response {
    let (code, message) = match status {
        502 => (StatusCode::BAD_GATEWAY, "Bad Gateway"),
        504 => (StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
    };
    let body = ApiError::new(code, "SERVICE_UNAVAILABLE", message).body(correlation);
    json_response(code, &body)
}

/// An answer that never arrives: its body fails before a byte of it is sent, and the
/// server closes the connection.
fn severed() -> Response {
    Response::new(axum::body::Body::new(Severed))
}

struct Severed;

impl http_body::Body for Severed {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the sandbox drops this answer",
        ))))
    }
}

async fn gate(
    State(s): State<Arc<Shared>>,
    matched: Option<MatchedPath>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let correlation = correlation_id();
    let template = matched
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "{unmatched}".to_owned());
    let params: Vec<(String, String)> = params
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let ticket_scopes = s.crm().behaviour.ticket_scopes;
    let op = classify(req.method(), &template, &params, ticket_scopes);
    let mut req = req;
    req.extensions_mut()
        .insert(Dated(template.starts_with("/crm/objects/2026-09")));
    let token = bearer(req.headers());
    let known = token.as_ref().and_then(|t| {
        s.crm()
            .tokens
            .get(t)
            .cloned()
            .map(|scopes| (t.clone(), scopes))
    });
    let token_key = known.as_ref().map(|(t, _)| t.clone());

    let mut response = 'answer: {
        match s.faults.roll(true) {
            Injected::None => {}
            Injected::Outage => break 'answer (fault_response(503, &correlation), true, None),
            Injected::Error(code) => {
                break 'answer (fault_response(code, &correlation), true, None);
            }
            Injected::Storm => {
                let body = rate_limited(Policy::TenSecondly, &correlation);
                let mut r = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
                if let Some(secs) = s.faults.get().storm_retry_after_s {
                    set_header(&mut r, "Retry-After", secs);
                }
                break 'answer (r, true, None);
            }
        }
        let latency = s.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if template == TOKEN_INFO {
            break 'answer (next.run(req).await, false, None);
        }
        let Some((token, scopes)) = &known else {
            let mut r = json_response(StatusCode::UNAUTHORIZED, &unauthorized().body(&correlation));
            set_header(&mut r, "x-hubspot-auth-failure", "401 Unauthorized");
            break 'answer (r, false, None);
        };
        let budget = match s.limiter.admit(token, op.search) {
            Ok(b) => b,
            Err(policy) => {
                let mut r = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &rate_limited(policy, &correlation),
                );
                if policy != Policy::Secondly {
                    let b = s.limiter.peek(token);
                    rate_headers(&mut r, &b);
                }
                break 'answer (r, false, None);
            }
        };
        let budget = (!op.search).then_some(budget);
        if let Some(group) = op
            .scopes
            .iter()
            .find(|g| !g.iter().any(|need| scopes.iter().any(|have| have == need)))
        {
            break 'answer (
                json_response(
                    StatusCode::FORBIDDEN,
                    &missing_scopes(group).body(&correlation),
                ),
                false,
                budget,
            );
        }
        let answer = next.run(req).await;
        let delay = s.faults.answer_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let lost = answer
            .status()
            .is_success()
            .then(|| s.faults.lose_answer(&op.route, op.write))
            .flatten();
        if let Some(lost) = lost {
            tracing::debug!(route = %op.route, ?lost, "the write happened; its answer is lost");
            s.limiter.record_lost_answer();
            let r = match lost {
                Lost::Gateway(status) => fault_response(status, &correlation),
                Lost::Dropped => severed(),
            };
            break 'answer (r, true, budget);
        }
        (answer, false, budget)
    };
    let (ref mut r, fault, budget) = response;
    if let Some(error) = r.extensions_mut().remove::<ApiError>() {
        let status = r.status();
        *r = json_response(status, &error.body(&correlation));
    }
    if let Some(b) = budget {
        rate_headers(r, &b);
    }
    set_header(r, "X-HubSpot-Correlation-Id", &correlation);
    let status = r.status().as_u16();
    s.limiter
        .record(token_key.as_deref(), &op.route, op.search, status, fault);
    tracing::debug!(route = %op.route, status, fault, correlation_id = %correlation, "HubSpot call answered");
    response.0
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenInfoRequest {
    token_key: String,
}

/// Private-app token introspection (research §1): needs no scope, and the
/// token to inspect is in the body.
async fn token_info(
    State(s): State<Arc<Shared>>,
    HsJson(body): HsJson<TokenInfoRequest>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    let Some(scopes) = crm.tokens.get(&body.token_key) else {
        // [?] HubSpot's answer for an unknown token key is not captured.
        return Err(unauthorized());
    };
    Ok(axum::Json(json!({
        "userId": USER_ID,
        "hubId": HUB_ID,
        "appId": APP_ID,
        "scopes": scopes,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn route_keys_fill_types_and_keep_ids() {
        let op = classify(
            &Method::POST,
            "/crm/v3/objects/{type}/batch/{op}",
            &params(&[("type", "0-1"), ("op", "upsert")]),
            TicketScopes::Either,
        );
        assert_eq!(op.route, "POST /crm/v3/objects/contacts/batch/upsert");
        assert_eq!(op.scopes, vec![&["crm.objects.contacts.write"][..]]);
        let op = classify(
            &Method::PATCH,
            "/crm/v3/objects/{type}/{id}",
            &params(&[("type", "contacts"), ("id", "7")]),
            TicketScopes::Either,
        );
        assert_eq!(op.route, "PATCH /crm/v3/objects/contacts/{id}");
    }

    #[test]
    fn search_is_its_own_bucket() {
        let op = classify(
            &Method::POST,
            "/crm/v3/objects/{type}/search",
            &params(&[("type", "tickets")]),
            TicketScopes::Legacy,
        );
        assert!(op.search);
        assert_eq!(op.scopes, vec![&["tickets"][..]]);
    }

    #[test]
    fn ticket_routes_take_the_switched_scopes() {
        let read = |t| {
            classify(
                &Method::GET,
                "/crm/objects/2026-09/{type}/{id}",
                &params(&[("type", "tickets"), ("id", "1")]),
                t,
            )
            .scopes
        };
        assert_eq!(
            read(TicketScopes::Either),
            vec![&["tickets", "crm.objects.tickets.read"][..]]
        );
        assert_eq!(read(TicketScopes::Legacy), vec![&["tickets"][..]]);
        assert_eq!(
            read(TicketScopes::Granular),
            vec![&["crm.objects.tickets.read"][..]]
        );
        let create_property = classify(
            &Method::POST,
            "/crm/v3/properties/{objectType}",
            &params(&[("objectType", "tickets")]),
            TicketScopes::Granular,
        );
        assert_eq!(
            create_property.scopes,
            vec![&["crm.schemas.tickets.write"][..]]
        );
    }

    #[test]
    fn list_writes_need_read_and_write() {
        let op = classify(
            &Method::PUT,
            "/crm/v3/lists/{listId}/memberships/add",
            &params(&[("listId", "1")]),
            TicketScopes::Either,
        );
        assert_eq!(
            op.scopes,
            vec![&["crm.lists.read"][..], &["crm.lists.write"][..]]
        );
    }
}
