//! HubSpot's error bodies read as HubSpot sends them.
//!
//! A batch's `errors[]` items (`StandardError`): `status` is the string `"error"`, never an
//! HTTP code, and `category` carries the meaning (`OBJECT_NOT_FOUND`, `CONFLICT`,
//! `VALIDATION_ERROR`, …); `context` maps names to lists: `ids` (the inputs not found, one
//! error for all of them), `objectWriteTraceId` (the batch-create input it is about),
//! `existingId`; `errors[]` holds details (`code`, `message`, `in`, `context.propertyName`).
//! Sources: HubSpot's objects spec (`BatchResponseSimplePublicObjectWithErrors`,
//! `StandardError`), the "Multi-status errors for batch create requests" example of the
//! Using Object APIs guide, and captured 207 bodies; the error-handling guide: "the fields
//! … should all be treated as optional in any error parsing".

use serde_json::Value;

use super::HubspotError;

/// One item of a batch answer's `errors[]`.
#[derive(Debug, Clone)]
pub(crate) struct ItemError {
    /// `context.ids`: the inputs (record ids or id-property values) it is about.
    pub ids: Vec<String>,
    /// `context.objectWriteTraceId`: the batch-create inputs it is about.
    pub trace_ids: Vec<String>,
    pub error: HubspotError,
}

/// The strings of `context.<key>` (values may be strings or numbers).
fn context_list(e: &Value, key: &str) -> Vec<String> {
    e.pointer(&format!("/context/{key}"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(text).collect())
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The HTTP status a category stands for, for a per-item error (whose `status` is `"error"`).
fn status_of(category: &str) -> u16 {
    match category {
        "OBJECT_NOT_FOUND" => 404,
        "CONFLICT" | "OBJECT_ALREADY_EXISTS" => 409,
        "MISSING_SCOPES" => 403,
        _ => 400,
    }
}

/// HubSpot's words for an error: its `message`, then each detail of `errors[]` that adds
/// something (the 2026-09 validation errors say what is missing only there).
pub(crate) fn words(body: &Value) -> String {
    let top = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let details: Vec<String> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|e| {
                    let m = e.get("message").and_then(Value::as_str)?;
                    // A 403's detail names the scopes, any one of which would do.
                    let scopes: Vec<&str> = e
                        .pointer("/context/requiredGranularScopes")
                        .and_then(Value::as_array)
                        .map(|l| l.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    Some(match e.get("code").and_then(Value::as_str) {
                        Some(code) => format!("{m} ({code})"),
                        None if !scopes.is_empty() => format!("{m} {}", scopes.join(", ")),
                        None => m.to_owned(),
                    })
                })
                .filter(|m| !top.contains(m.as_str()))
                .collect()
        })
        .unwrap_or_default();
    match (top.is_empty(), details.is_empty()) {
        (_, true) => top,
        (true, false) => details.join("; "),
        (false, false) => format!("{top}: {}", details.join("; ")),
    }
}

/// The items of a batch answer's `errors[]`, each as a terminal error in HubSpot's words.
pub(crate) fn item_errors(route: &'static str, body: &Value) -> Vec<ItemError> {
    body.get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let category = e
                        .get("category")
                        .and_then(Value::as_str)
                        .unwrap_or("UNKNOWN")
                        .to_owned();
                    ItemError {
                        ids: context_list(e, "ids"),
                        trace_ids: context_list(e, "objectWriteTraceId"),
                        error: HubspotError::Terminal {
                            route,
                            status: status_of(&category),
                            category,
                            message: words(e),
                            correlation_id: None,
                        },
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn item_errors_are_read_as_hubspot_sends_them() {
        // The Using Object APIs guide's multi-status example, and a captured batch update.
        let body = json!({"status": "COMPLETE", "results": [], "numErrors": 2, "errors": [
            {"status": "error", "category": "VALIDATION_ERROR",
             "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"missing\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"missing\"}]",
             "context": {"objectWriteTraceId": ["549b1c2a9351"]}},
            {"status": "error", "category": "OBJECT_NOT_FOUND",
             "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
             "context": {"ids": ["101", 102]}},
        ]});
        let errors = item_errors("r", &body);
        assert_eq!(errors[0].trace_ids, ["549b1c2a9351"]);
        assert_eq!(errors[0].error.status(), Some(400));
        assert_eq!(errors[1].ids, ["101", "102"]);
        assert_eq!(errors[1].error.status(), Some(404));
        assert_eq!(errors[1].error.category(), Some("OBJECT_NOT_FOUND"));
    }

    #[test]
    fn words_add_the_details_of_a_2026_09_validation_error() {
        // HubSpot changelog, CRM API write validation enforcement (2026-09).
        let body = json!({"status": "error", "category": "VALIDATION_ERROR",
            "message": "The property values provided are invalid",
            "errors": [{"code": "MISSING_REQUIRED_PROPERTY",
                        "message": "A value for firstname must be provided",
                        "context": {"propertyName": ["firstname"]}}]});
        assert_eq!(
            words(&body),
            "The property values provided are invalid: A value for firstname must be provided \
             (MISSING_REQUIRED_PROPERTY)"
        );
        assert_eq!(words(&json!({"message": "plain"})), "plain");
    }
}
