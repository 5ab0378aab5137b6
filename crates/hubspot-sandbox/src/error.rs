//! HubSpot's error bodies. Handlers return [`ApiError`]; the gate middleware
//! (`auth::gate`) turns it into JSON with the request's correlation id, so the
//! body and the `X-HubSpot-Correlation-Id` header always agree.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A HubSpot `Error` (top level) or `StandardError` (an item of a batch's `errors`).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub category: &'static str,
    pub message: String,
    pub sub_category: Option<String>,
    pub context: Map<String, Value>,
    /// Extra top-level fields (`errors`, `links`, …) for the rare bodies that carry them.
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            category,
            message: message.into(),
            sub_category: None,
            context: Map::new(),
            extra: Map::new(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// 404 for a record, list, workflow… that does not exist. HubSpot's category
    /// for this is OBJECT_NOT_FOUND [? research §11].
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn with_context(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert(key.to_owned(), json!(values));
        self
    }

    pub fn with_sub_category(mut self, sub: &str) -> Self {
        self.sub_category = Some(sub.to_owned());
        self
    }

    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The top-level body: `{"status":"error","message","correlationId","category",…}`.
    pub fn body(&self, correlation_id: &str) -> Value {
        let mut body = Map::new();
        body.insert("status".into(), json!("error"));
        body.insert("message".into(), json!(self.message));
        body.insert("correlationId".into(), json!(correlation_id));
        if let Some(sub) = &self.sub_category {
            body.insert("subCategory".into(), json!(sub));
        }
        if !self.context.is_empty() {
            body.insert("context".into(), Value::Object(self.context.clone()));
        }
        for (k, v) in &self.extra {
            body.insert(k.clone(), v.clone());
        }
        body.insert("category".into(), json!(self.category));
        Value::Object(body)
    }

    /// A batch item error (`StandardError`): `status` is the string `"error"` and
    /// `category` carries the meaning, as in every captured 207 body and in HubSpot's
    /// "Multi-status errors for batch create requests" example. Real bodies often omit
    /// `context`, `errors` and `links`; the sandbox sends them (empty when there is nothing
    /// to say) because the generated clients insist on the schema's required fields.
    pub fn standard(&self) -> Value {
        let mut body = json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": Value::Object(self.context.clone()),
            "errors": self.extra.get("errors").cloned().unwrap_or_else(|| json!([])),
            "links": {},
        });
        if let (Some(sub), Some(obj)) = (&self.sub_category, body.as_object_mut()) {
            obj.insert("subCategory".into(), json!(sub));
        }
        body
    }
}

impl IntoResponse for ApiError {
    /// The body is written by the gate, which knows the correlation id.
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// A JSON body whose parse errors come back in HubSpot's shape.
pub(crate) struct HsJson<T>(pub T);

impl<S, T> FromRequest<S> for HsJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(HsJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // HubSpot answers malformed bodies with "Invalid input JSON on line L, column C: …".
    let detail = rejection.body_text();
    ApiError::validation(format!("Invalid input JSON: {detail}"))
}

/// A random UUID v4, the format of HubSpot's correlation ids.
pub(crate) fn correlation_id() -> String {
    let a: u32 = rand::random();
    let b: u16 = rand::random();
    let c: u16 = rand::random::<u16>() & 0x0fff;
    let d: u16 = (rand::random::<u16>() & 0x3fff) | 0x8000;
    let e: u64 = rand::random::<u64>() & 0xffff_ffff_ffff;
    format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
}
