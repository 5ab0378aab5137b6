//! The portal's own rules for writing records, enforced on API writes from the 2026-09
//! API version on (HubSpot changelog "Breaking Change: CRM API Write Validation Enforcement
//! Starting with the 2026-09 API Version", 2026-08-11): a property required on the
//! create-record form (creates only), and a property required when another one has a given
//! value (conditional property rules, every write). Both answer 400 `VALIDATION_ERROR` with
//! `errors[].code` `MISSING_REQUIRED_PROPERTY` / `MISSING_CONDITIONAL_REQUIRED_PROPERTY` and
//! `context.propertyName`, as in the changelog's examples.
//!
//! Reading them: HubSpot has no API for conditional rules. The object schema
//! (`GET /crm-object-schemas/{v3|2026-09}/schemas/{objectType}`) has `requiredProperties`,
//! "the names of properties that should be required when creating an object of this type";
//! whether it lists the create form's requirements for HubSpot's own types is not settled
//! (switch `schema_lists_requirements`). Reading a schema needs `crm.schemas.custom.read`
//! (a 403 naming the custom-object read scope was captured for `contacts`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::objects::{Changes, ObjectType};
use crate::seed::SeedRequirement;
use crate::state::{Crm, Shared};

#[derive(Debug, Clone)]
pub(crate) struct Requirement {
    pub property: String,
    /// `(property, value)`: required only while that property has that value.
    pub when: Option<(String, String)>,
}

impl Requirement {
    pub(crate) fn from_seed(seed: &SeedRequirement) -> Self {
        Requirement {
            property: seed.property.clone(),
            when: seed
                .when
                .as_ref()
                .map(|w| (w.property.clone(), w.value.clone())),
        }
    }
}

/// Which path family a request came in on (set by the gate): the dated paths enforce the
/// portal's rules; the v3 ones only when `requirements_on_v3` is on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dated(pub bool);

impl Crm {
    /// Checks a write against the portal's rules: `before` is the record's current
    /// properties (None on create), `changes` what the write sets.
    pub fn enforce_requirements(
        &self,
        ty: ObjectType,
        before: Option<&BTreeMap<String, String>>,
        changes: &Changes,
        dated: Dated,
    ) -> Result<(), ApiError> {
        if !dated.0 && !self.behaviour.requirements_on_v3 {
            return Ok(());
        }
        let Some(rules) = self.requirements.get(&ty) else {
            return Ok(());
        };
        let mut after: BTreeMap<String, String> = before.cloned().unwrap_or_default();
        for (name, value) in changes {
            match value {
                Some(v) => after.insert(name.clone(), v.clone()),
                None => after.remove(name),
            };
        }
        let has = |p: &str| after.get(p).is_some_and(|v| !v.is_empty());
        let mut errors = Vec::new();
        for rule in rules {
            if has(&rule.property) {
                continue;
            }
            match &rule.when {
                None if before.is_none() => errors.push(json!({
                    "code": "MISSING_REQUIRED_PROPERTY",
                    "message": format!("A value for {} must be provided", rule.property),
                    "context": {"propertyName": [rule.property]},
                })),
                Some((p, v)) if after.get(p) == Some(v) => errors.push(json!({
                    "code": "MISSING_CONDITIONAL_REQUIRED_PROPERTY",
                    "message": format!(
                        "{} is required because of a conditional property rule based on [{p}]",
                        rule.property
                    ),
                    "context": {"propertyName": [rule.property]},
                })),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(
                ApiError::validation("The property values provided are invalid")
                    .with_extra("errors", Value::Array(errors)),
            )
        }
    }

    /// The create-form requirements, as the object schema lists them.
    fn required_on_create(&self, ty: ObjectType) -> Vec<String> {
        let mut names: Vec<String> = ty
            .required_properties()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if self.behaviour.schema_lists_requirements {
            for r in self.requirements.get(&ty).into_iter().flatten() {
                if r.when.is_none() && !names.contains(&r.property) {
                    names.push(r.property.clone());
                }
            }
        }
        names
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/schemas/{objectType}", get(schema))
        .route("/2026-09/schemas/{objectType}", get(schema))
}

/// An `ObjectSchema` with the fields a reader of requirements needs.
async fn schema(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&raw)?;
    let crm = s.crm();
    let properties: Vec<Value> = crm.properties[&ty].values().map(|p| p.json()).collect();
    Ok(axum::Json(json!({
        "id": ty.type_id(),
        "objectTypeId": ty.type_id(),
        "name": ty.name(),
        "fullyQualifiedName": ty.name(),
        "labels": {"singular": ty.singular(), "plural": ty.name()},
        "requiredProperties": crm.required_on_create(ty),
        "searchableProperties": [],
        "secondaryDisplayProperties": [],
        "properties": properties,
        "associations": [],
        "archived": false,
    }))
    .into_response())
}
