//! Property definitions and groups: the Properties API, and the validation of
//! every value written to a record (research/hubspot.md §4, §11).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, HsJson};
use crate::objects::ObjectType;
use crate::state::Shared;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PropOption {
    pub label: String,
    pub value: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub display_order: i64,
    #[serde(default)]
    pub hidden: bool,
}

impl PropOption {
    pub(crate) fn new(value: &str, label: &str, order: i64) -> Self {
        PropOption {
            label: label.to_owned(),
            value: value.to_owned(),
            description: String::new(),
            display_order: order,
            hidden: false,
        }
    }

    fn json(&self) -> Value {
        json!({
            "label": self.label,
            "value": self.value,
            "description": self.description,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
        })
    }
}

/// A property as HubSpot describes it; also the body of `POST /crm/v3/properties/{type}`
/// and the format of properties in a seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub prop_type: String,
    pub field_type: String,
    pub group_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub options: Vec<PropOption>,
    #[serde(default)]
    pub display_order: i64,
    #[serde(default)]
    pub has_unique_value: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default = "yes")]
    pub form_field: bool,
    #[serde(skip)]
    pub hubspot_defined: bool,
    #[serde(skip)]
    pub read_only_value: bool,
    #[serde(skip)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub updated_at: Option<DateTime<Utc>>,
}

fn yes() -> bool {
    true
}

impl PropertyDef {
    /// A HubSpot-defined property (seeded, not archivable).
    pub(crate) fn builtin(
        name: &str,
        label: &str,
        prop_type: &str,
        field_type: &str,
        group: &str,
    ) -> Self {
        PropertyDef {
            name: name.to_owned(),
            label: label.to_owned(),
            prop_type: prop_type.to_owned(),
            field_type: field_type.to_owned(),
            group_name: group.to_owned(),
            description: String::new(),
            options: Vec::new(),
            display_order: -1,
            has_unique_value: false,
            hidden: false,
            form_field: false,
            hubspot_defined: true,
            read_only_value: false,
            created_at: None,
            updated_at: None,
        }
    }

    pub(crate) fn options(mut self, options: &[(&str, &str)]) -> Self {
        self.options = options
            .iter()
            .zip(0..)
            .map(|((value, label), order)| PropOption::new(value, label, order))
            .collect();
        self
    }

    pub(crate) fn read_only(mut self) -> Self {
        self.read_only_value = true;
        self
    }

    pub(crate) fn json(&self) -> Value {
        let at = clock::iso(self.created_at.unwrap_or_else(epoch));
        let updated = clock::iso(self.updated_at.or(self.created_at).unwrap_or_else(epoch));
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.prop_type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": self.options.iter().map(PropOption::json).collect::<Vec<_>>(),
            "displayOrder": self.display_order,
            "calculated": false,
            "externalOptions": false,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": self.form_field,
            "createdAt": at,
            "updatedAt": updated,
            "archived": false,
        })
    }

    /// Checks a value against this definition and returns it as HubSpot stores
    /// it (always a string). `""` is handled by the caller (it clears).
    pub(crate) fn normalise(&self, raw: &str) -> Result<String, PropIssue> {
        let issue = |error: &'static str, message: String| PropIssue {
            name: self.name.clone(),
            error,
            message,
        };
        if self.read_only_value {
            // [?] error code and wording not captured this session.
            return Err(issue(
                "READ_ONLY_VALUE",
                format!(
                    "\"{}\" is a read only property; its value cannot be set.",
                    self.name
                ),
            ));
        }
        match self.prop_type.as_str() {
            "enumeration" => {
                let allowed: Vec<&str> = self.options.iter().map(|o| o.value.as_str()).collect();
                let values: Vec<&str> = if self.field_type == "checkbox" {
                    raw.split(';').collect()
                } else {
                    vec![raw]
                };
                for value in values {
                    if !allowed.contains(&value) {
                        return Err(issue(
                            "INVALID_OPTION",
                            format!(
                                "{value} was not one of the allowed options: [{}]",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
                Ok(raw.to_owned())
            }
            "number" => {
                if is_number(raw.trim()) {
                    Ok(raw.trim().to_owned())
                } else {
                    // [?] INVALID_FLOAT is the code integrators report; wording is ours.
                    Err(issue(
                        "INVALID_FLOAT",
                        format!("{raw} is not a valid number"),
                    ))
                }
            }
            "bool" => match raw.to_ascii_lowercase().as_str() {
                "true" => Ok("true".to_owned()),
                "false" => Ok("false".to_owned()),
                // [?] code not captured; HubSpot only documents "true"/"false".
                _ => Err(issue(
                    "INVALID_BOOLEAN",
                    format!("{raw} is not a valid boolean value; use \"true\" or \"false\""),
                )),
            },
            "date" => normalise_date(raw).map_err(|m| issue("INVALID_DATE", m)),
            "datetime" => parse_datetime(raw)
                .map(clock::iso)
                .ok_or_else(|| issue("INVALID_DATE", format!("{raw} is not a valid datetime"))),
            _ => {
                if raw.chars().count() > 65_536 {
                    // [?] code not captured; the 65,536-character limit is documented.
                    Err(issue(
                        "INVALID_LENGTH",
                        format!(
                            "Value for {} exceeds the maximum length of 65536 characters",
                            self.name
                        ),
                    ))
                } else {
                    Ok(raw.to_owned())
                }
            }
        }
    }
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    all_digits(whole)
        && frac.is_none_or(|f| all_digits(f) && !f.is_empty())
        && (!whole.is_empty() || frac.is_some())
}

/// Date properties: midnight-UTC epoch ms or an ISO date. Stored and returned
/// as `YYYY-MM-DD` — how v3 renders date (not datetime) properties [?].
fn normalise_date(raw: &str) -> Result<String, String> {
    if let Ok(ms) = raw.trim().parse::<i64>() {
        let at = Utc
            .timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| format!("{raw} is not a valid date"))?;
        let t = at.time();
        if t.num_seconds_from_midnight() != 0 || t.nanosecond() != 0 {
            // HubSpot's message for this case, as integrators quote it.
            return Err(format!(
                "{raw} is at {}:{}:{}.{} UTC, not midnight!",
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond() / 1_000_000
            ));
        }
        return Ok(at.date_naive().to_string());
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        return Ok(date.to_string());
    }
    match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(at) => {
            let at = at.with_timezone(&Utc);
            if at.time().num_seconds_from_midnight() == 0 && at.time().nanosecond() == 0 {
                Ok(at.date_naive().to_string())
            } else {
                Err(format!("{raw} is not at midnight UTC"))
            }
        }
        Err(_) => Err(format!("{raw} is not a valid date")),
    }
}

/// Epoch ms, RFC 3339, or a bare date (midnight UTC).
pub(crate) fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// One entry of the "Property values were not valid" list.
#[derive(Debug, Clone)]
pub(crate) struct PropIssue {
    pub name: String,
    pub error: &'static str,
    pub message: String,
}

impl PropIssue {
    pub(crate) fn doesnt_exist(name: &str) -> Self {
        PropIssue {
            name: name.to_owned(),
            error: "PROPERTY_DOESNT_EXIST",
            message: format!("Property \"{name}\" does not exist"),
        }
    }

    pub(crate) fn required(name: &str) -> Self {
        // [?] code and wording for a missing required property are not captured.
        PropIssue {
            name: name.to_owned(),
            error: "REQUIRED_FIELD",
            message: format!("Property \"{name}\" is required"),
        }
    }
}

/// HubSpot's 400: the message embeds a JSON array whose keys come in this order
/// (`isValid, message, error, name, localizedErrorMessage`), hence hand-built.
pub(crate) fn issues_error(issues: &[PropIssue]) -> ApiError {
    let items: Vec<String> = issues
        .iter()
        .map(|i| {
            let message = json!(i.message).to_string();
            format!(
                "{{\"isValid\":false,\"message\":{message},\"error\":{},\"name\":{},\"localizedErrorMessage\":{message}}}",
                json!(i.error),
                json!(i.name)
            )
        })
        .collect();
    ApiError::validation(format!(
        "Property values were not valid: [{}]",
        items.join(",")
    ))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub label: String,
    #[serde(default = "minus_one")]
    pub display_order: i64,
}

fn minus_one() -> i64 {
    -1
}

impl Group {
    pub(crate) fn new(name: &str, label: &str) -> Self {
        Group {
            name: name.to_owned(),
            label: label.to_owned(),
            display_order: -1,
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!({"name": self.name, "label": self.label, "displayOrder": self.display_order, "archived": false})
    }
}

/// Valid `type` → `fieldType` pairs (properties guide).
fn pair_is_valid(prop_type: &str, field_type: &str) -> bool {
    match prop_type {
        "bool" => field_type == "booleancheckbox",
        "enumeration" => matches!(
            field_type,
            "booleancheckbox" | "checkbox" | "radio" | "select"
        ),
        "date" | "datetime" => field_type == "date",
        "string" => matches!(
            field_type,
            "text" | "textarea" | "file" | "html" | "phonenumber"
        ),
        "number" => matches!(field_type, "number" | "calculation_equation"),
        "phone_number" => field_type == "phonenumber",
        _ => false,
    }
}

fn check_new_property(def: &PropertyDef, groups_exist: bool) -> Result<(), ApiError> {
    let valid_name = def
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && def
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ApiError::validation(format!(
            "Property name '{}' is invalid: use lowercase letters, digits and underscores, starting with a letter",
            def.name
        )));
    }
    if def.label.trim().is_empty() {
        return Err(ApiError::validation("label is required"));
    }
    if !pair_is_valid(&def.prop_type, &def.field_type) {
        return Err(ApiError::validation(format!(
            "Invalid fieldType '{}' for property type '{}'",
            def.field_type, def.prop_type
        )));
    }
    if def.prop_type == "enumeration" && def.options.is_empty() {
        return Err(ApiError::validation(
            "Enumeration properties must have options",
        ));
    }
    if def.has_unique_value && !matches!(def.prop_type.as_str(), "string" | "number") {
        return Err(ApiError::validation(
            "hasUniqueValue is only supported for string and number properties",
        ));
    }
    if !groups_exist {
        return Err(ApiError::validation(format!(
            "Property group '{}' does not exist",
            def.group_name
        )));
    }
    Ok(())
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{objectType}", get(list).post(create))
        .route("/{objectType}/groups", get(list_groups).post(create_group))
        .route("/{objectType}/groups/{groupName}", get(get_group))
        .route("/{objectType}/{propertyName}", get(get_one).patch(update))
}

async fn list(State(s): State<Arc<Shared>>, Path(t): Path<String>) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let crm = s.crm();
    let results: Vec<Value> = crm.properties[&ty]
        .values()
        .map(PropertyDef::json)
        .collect();
    Ok(axum::Json(json!({ "results": results })).into_response())
}

async fn get_one(
    State(s): State<Arc<Shared>>,
    Path((t, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let crm = s.crm();
    match crm.properties[&ty].get(&name) {
        Some(def) => Ok(axum::Json(def.json()).into_response()),
        None => Err(ApiError::not_found(format!(
            "Unable to find property {name} for object type {}",
            ty.type_id()
        ))),
    }
}

async fn create(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    HsJson(mut def): HsJson<PropertyDef>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let mut crm = s.crm();
    if crm.properties[&ty].contains_key(&def.name) {
        // [?] 409 CONFLICT is expected but no captured body this session.
        return Err(ApiError::conflict(format!(
            "Property named '{}' already exists.",
            def.name
        )));
    }
    let group_exists = crm.groups[&ty].contains_key(&def.group_name);
    check_new_property(&def, group_exists)?;
    let now = clock::wall();
    def.created_at = Some(now);
    def.updated_at = Some(now);
    let body = def.json();
    crm.add_property(ty, def);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The fields `PATCH …/properties/{type}/{name}` may change (`hasUniqueValue`
/// and `type`-changing are not emulated: HubSpot treats uniqueness as immutable).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyUpdate {
    label: Option<String>,
    description: Option<String>,
    group_name: Option<String>,
    options: Option<Vec<PropOption>>,
    display_order: Option<i64>,
    hidden: Option<bool>,
    form_field: Option<bool>,
}

async fn update(
    State(s): State<Arc<Shared>>,
    Path((t, name)): Path<(String, String)>,
    HsJson(patch): HsJson<PropertyUpdate>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let mut crm = s.crm();
    if let Some(group) = &patch.group_name
        && !crm.groups[&ty].contains_key(group)
    {
        return Err(ApiError::validation(format!(
            "Property group '{group}' does not exist"
        )));
    }
    let Some(def) = crm.properties.get_mut(&ty).and_then(|p| p.get_mut(&name)) else {
        return Err(ApiError::not_found(format!(
            "Unable to find property {name} for object type {}",
            ty.type_id()
        )));
    };
    if def.hubspot_defined {
        return Err(ApiError::validation(format!(
            "Property {name} is HubSpot-defined and its definition is read-only"
        )));
    }
    if let Some(options) = patch.options {
        if def.prop_type == "enumeration" && options.is_empty() {
            return Err(ApiError::validation(
                "Enumeration properties must have options",
            ));
        }
        def.options = options;
    }
    if let Some(v) = patch.label {
        def.label = v;
    }
    if let Some(v) = patch.description {
        def.description = v;
    }
    if let Some(v) = patch.group_name {
        def.group_name = v;
    }
    if let Some(v) = patch.display_order {
        def.display_order = v;
    }
    if let Some(v) = patch.hidden {
        def.hidden = v;
    }
    if let Some(v) = patch.form_field {
        def.form_field = v;
    }
    def.updated_at = Some(clock::wall());
    Ok(axum::Json(def.json()).into_response())
}

async fn list_groups(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let crm = s.crm();
    let results: Vec<Value> = crm.groups[&ty].values().map(Group::json).collect();
    Ok(axum::Json(json!({ "results": results })).into_response())
}

async fn get_group(
    State(s): State<Arc<Shared>>,
    Path((t, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let crm = s.crm();
    match crm.groups[&ty].get(&name) {
        Some(g) => Ok(axum::Json(g.json()).into_response()),
        None => Err(ApiError::not_found(format!(
            "Unable to find property group {name} for object type {}",
            ty.type_id()
        ))),
    }
}

async fn create_group(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    HsJson(group): HsJson<Group>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    if group.name.trim().is_empty() || group.label.trim().is_empty() {
        return Err(ApiError::validation(
            "Property groups need a name and a label",
        ));
    }
    let mut crm = s.crm();
    let groups: &mut BTreeMap<String, Group> = crm.groups.entry(ty).or_default();
    if groups.contains_key(&group.name) {
        // [?] wording not captured.
        return Err(ApiError::conflict(format!(
            "Property group named '{}' already exists.",
            group.name
        )));
    }
    let body = group.json();
    groups.insert(group.name.clone(), group);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(prop_type: &str, field_type: &str) -> PropertyDef {
        PropertyDef::builtin("p", "P", prop_type, field_type, "g")
    }

    #[test]
    fn numbers_follow_hubspot_format() {
        for ok in ["1", "-2", "1500.00", ".5", "0"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["", "-", "1.", "1.2.3", "abc", "1e3", "12a"] {
            assert!(!is_number(bad), "{bad}");
        }
    }

    #[test]
    fn dates_must_be_midnight() {
        let d = def("date", "date");
        assert_eq!(
            d.normalise("1430438400000").ok().as_deref(),
            Some("2015-05-01")
        );
        assert_eq!(
            d.normalise("2015-05-01").ok().as_deref(),
            Some("2015-05-01")
        );
        let err = d.normalise("1430438401000").err().map(|e| e.error);
        assert_eq!(err, Some("INVALID_DATE"));
    }

    #[test]
    fn datetimes_normalise_to_iso_millis() {
        let d = def("datetime", "date");
        assert_eq!(
            d.normalise("1430438401000").ok().as_deref(),
            Some("2015-05-01T00:00:01.000Z")
        );
    }

    #[test]
    fn checkbox_enumerations_take_several_values() {
        let d = def("enumeration", "checkbox").options(&[("a", "A"), ("b", "B")]);
        assert!(d.normalise("a;b").is_ok());
        assert!(d.normalise("a;c").is_err());
        let single = def("enumeration", "select").options(&[("a", "A"), ("b", "B")]);
        assert!(single.normalise("a;b").is_err());
    }
}
