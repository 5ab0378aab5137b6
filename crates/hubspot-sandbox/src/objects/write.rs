//! The write rules HubSpot applies to records: validation, unique values,
//! pipelines, create and update, associations, archiving.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Changes, Link, ObjectType, Record, association_target, association_type, not_found};
use crate::behaviour::{BackwardLifecycle, RichText, UniqueClash};
use crate::clock;
use crate::error::ApiError;
use crate::properties::{PropIssue, issues_error};
use crate::state::Crm;

impl Crm {
    fn unique_props(&self, ty: ObjectType) -> Vec<String> {
        let mut props: Vec<String> = self.properties[&ty]
            .values()
            .filter(|d| d.has_unique_value)
            .map(|d| d.name.clone())
            .collect();
        if ty == ObjectType::Contacts {
            props.push("email".to_owned());
        }
        props
    }

    /// `idProperty` must be a unique-value property, or `email` for contacts.
    pub fn check_id_property(&self, ty: ObjectType, prop: &str) -> Result<(), ApiError> {
        let unique = prop == "hs_object_id"
            || (ty == ObjectType::Contacts && prop == "email")
            || self.properties[&ty]
                .get(prop)
                .is_some_and(|d| d.has_unique_value);
        if unique {
            Ok(())
        } else {
            // [?] wording; HubSpot documents that idProperty must be unique.
            Err(ApiError::validation(format!(
                "{prop} is not a unique identifier property for {}; use a property with hasUniqueValue=true",
                ty.name()
            )))
        }
    }

    /// Finds a record by id, or by the value of `id_property`. The id of a record merged
    /// into another finds the survivor: "you can use the previous record ID values stored
    /// in the `hs_merged_object_ids` field to update a record using the basic update
    /// endpoint" (Using Object APIs).
    pub fn resolve(&self, ty: ObjectType, id: &str, id_property: Option<&str>) -> Option<u64> {
        self.resolve_live(ty, id, id_property).or_else(|| {
            let old: u64 = id.trim().parse().ok()?;
            match id_property {
                None | Some("hs_object_id") => self.store(ty).survivor(old),
                Some(_) => None,
            }
        })
    }

    /// [`Self::resolve`] without following merges: "these values are not supported when
    /// updating records using the batch update endpoint" (same guide).
    pub fn resolve_live(&self, ty: ObjectType, id: &str, id_property: Option<&str>) -> Option<u64> {
        match id_property {
            None | Some("hs_object_id") => {
                let id: u64 = id.trim().parse().ok()?;
                self.store(ty).records.contains_key(&id).then_some(id)
            }
            Some(prop) => self.store(ty).find_unique(prop, id),
        }
    }

    /// Checks every input value against its definition. All problems are
    /// reported at once, as HubSpot does.
    pub fn validate(
        &self,
        ty: ObjectType,
        input: &Map<String, Value>,
        creating: bool,
    ) -> Result<Changes, ApiError> {
        let mut issues = Vec::new();
        let mut changes = Changes::new();
        for (name, value) in input {
            let Some(def) = self.properties[&ty].get(name) else {
                issues.push(PropIssue::doesnt_exist(name));
                continue;
            };
            let raw = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                other => {
                    issues.push(PropIssue {
                        name: name.clone(),
                        error: "INVALID_PROPERTY_VALUE",
                        message: format!("{other} is not a valid property value"),
                    });
                    continue;
                }
            };
            if raw.is_empty() {
                changes.insert(name.clone(), None);
                continue;
            }
            let raw = if name == "email" {
                raw.trim().to_ascii_lowercase()
            } else {
                raw
            };
            match def.normalise(&raw) {
                Ok(v) if def.field_type == "html" => {
                    changes.insert(name.clone(), Some(sanitise(self.behaviour.rich_text, &v)));
                }
                Ok(v) => {
                    changes.insert(name.clone(), Some(v));
                }
                Err(issue) => issues.push(issue),
            }
        }
        if creating {
            for required in ty.required_properties() {
                if !matches!(changes.get(*required), Some(Some(_))) {
                    issues.push(PropIssue::required(required));
                }
            }
        }
        if issues.is_empty() {
            Ok(changes)
        } else {
            Err(issues_error(&issues))
        }
    }

    /// Inline associations of a create: each type id must be a HUBSPOT_DEFINED
    /// type from this object type, and each target must exist.
    pub fn validate_links(&self, ty: ObjectType, input: &[Value]) -> Result<Vec<Link>, ApiError> {
        let mut links = Vec::new();
        for item in input {
            let to_id = item
                .pointer("/to/id")
                .and_then(|v| match v {
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    Value::Number(n) => n.as_u64(),
                    _ => None,
                })
                .ok_or_else(|| ApiError::validation("Each association needs to.id, a record id"))?;
            let types = item
                .get("types")
                .and_then(Value::as_array)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::validation("Each association needs a non-empty types list")
                })?;
            for spec in types {
                let category = spec
                    .get("associationCategory")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let type_id = spec
                    .get("associationTypeId")
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok());
                // Only HubSpot's own (unlabelled) types exist in the sandbox; labels
                // (USER_DEFINED) are portal-specific and none are seeded.
                let target = type_id.and_then(|id| association_target(ty, id));
                let (Some(type_id), Some(target), "HUBSPOT_DEFINED") = (type_id, target, category)
                else {
                    // [?] HubSpot's exact wording for a bad association type is not captured.
                    return Err(ApiError::validation(format!(
                        "Invalid association type {category}/{} for {} objects",
                        spec.get("associationTypeId")
                            .cloned()
                            .unwrap_or(Value::Null),
                        ty.singular()
                    )));
                };
                if !self.store(target).records.contains_key(&to_id) {
                    // [?] wording not captured.
                    return Err(ApiError::validation(format!(
                        "Cannot associate to {} {to_id}: it does not exist",
                        target.singular()
                    ))
                    .with_context("ids", vec![to_id.to_string()]));
                }
                links.push((target, to_id, type_id));
            }
        }
        Ok(links)
    }

    /// Unique values (email, hasUniqueValue properties) may not be taken by another record.
    fn check_unique(
        &self,
        ty: ObjectType,
        id: Option<u64>,
        changes: &Changes,
    ) -> Result<(), ApiError> {
        for prop in self.unique_props(ty) {
            let Some(Some(value)) = changes.get(&prop) else {
                continue;
            };
            if let Some(existing) = self.store(ty).find_unique(&prop, value)
                && Some(existing) != id
            {
                if prop == "email" {
                    // Captured (hubspot-api-python#51 and later): 409 CONFLICT naming the id.
                    return Err(ApiError::conflict(format!(
                        "Contact already exists. Existing ID: {existing}"
                    ))
                    .with_context("existingId", vec![existing.to_string()]));
                }
                return Err(unique_clash(
                    self.behaviour.unique_clash,
                    ty,
                    &prop,
                    value,
                    existing,
                ));
            }
        }
        Ok(())
    }

    /// Ticket stages must belong to the ticket's pipeline; deal stages likewise.
    fn check_pipeline(
        &self,
        ty: ObjectType,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let (pipeline_prop, stage_prop) = match ty {
            ObjectType::Tickets => ("hs_pipeline", "hs_pipeline_stage"),
            ObjectType::Deals => ("pipeline", "dealstage"),
            _ => return Ok(()),
        };
        let (Some(pipeline), Some(stage)) = (props.get(pipeline_prop), props.get(stage_prop))
        else {
            return Ok(());
        };
        let pipelines = self.pipelines.get(&ty).map(Vec::as_slice).unwrap_or(&[]);
        let Some(p) = pipelines.iter().find(|p| &p.id == pipeline) else {
            return Err(issues_error(&[PropIssue {
                name: pipeline_prop.to_owned(),
                error: "INVALID_OPTION",
                message: format!("{pipeline} is not a valid pipeline"),
            }]));
        };
        if p.stages.iter().any(|s| &s.id == stage) {
            Ok(())
        } else {
            // [?] wording not captured.
            Err(issues_error(&[PropIssue {
                name: stage_prop.to_owned(),
                error: "INVALID_OPTION",
                message: format!(
                    "{stage} was not one of the allowed options: [{}]",
                    p.stages
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }]))
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Creates a record from validated changes. Checks uniqueness and pipelines.
    pub fn create(
        &mut self,
        ty: ObjectType,
        changes: &Changes,
        links: &[Link],
    ) -> Result<u64, ApiError> {
        self.create_as(ty, None, changes, links)
    }

    /// `create` with a chosen id (seeds); `None` takes the next id.
    pub fn create_as(
        &mut self,
        ty: ObjectType,
        fixed_id: Option<u64>,
        changes: &Changes,
        links: &[Link],
    ) -> Result<u64, ApiError> {
        self.check_unique(ty, None, changes)?;
        let mut props: BTreeMap<String, String> = changes
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        self.check_pipeline(ty, &props)?;
        let id = match fixed_id {
            Some(id) => {
                if self.store(ty).records.contains_key(&id) {
                    return Err(ApiError::conflict(format!(
                        "{} {id} already exists",
                        ty.singular()
                    )));
                }
                self.next_id = self.next_id.max(id);
                id
            }
            None => self.next_id(),
        };
        let now = clock::wall();
        props.insert("hs_object_id".into(), id.to_string());
        props
            .entry(ty.created_prop().to_owned())
            .or_insert_with(|| clock::iso(now));
        props.insert(ty.modified_prop().into(), clock::iso(now));
        let mut record = Record {
            id,
            props,
            created_at: now,
            updated_at: now,
            assoc: BTreeMap::new(),
            index: Vec::new(),
        };
        record.push_snapshot(clock::now(), self.search_lag);
        let unique = self.unique_props(ty);
        let store = self.store_mut(ty);
        for prop in unique {
            if let Some(value) = record.props.get(&prop) {
                store.reindex(id, &prop, None, Some(value));
            }
        }
        store.records.insert(id, record);
        for (to_ty, to_id, type_id) in links {
            self.associate(ty, id, *to_ty, *to_id, *type_id);
        }
        Ok(id)
    }

    /// Applies validated changes to an existing record. A `lifecyclestage` earlier than the
    /// current one: HubSpot's tools only move it forward and v1 ignored backward API
    /// writes (knowledge base "Use lifecycle stages"; HubSpot staff on the v1 API), while
    /// whether v3/2026-09 ignore, apply or refuse one is not settled: switch
    /// `backward_lifecycle` (default: applied).
    pub fn update(&mut self, ty: ObjectType, id: u64, changes: &Changes) -> Result<(), ApiError> {
        self.check_unique(ty, Some(id), changes)?;
        let stage_order = |crm: &Crm, value: &str| {
            crm.properties[&ty]
                .get("lifecyclestage")
                .and_then(|d| d.options.iter().find(|o| o.value == value))
                .map(|o| o.display_order)
        };
        let Some(current) = self.store(ty).records.get(&id) else {
            return Err(not_found(ty, id));
        };
        let mut props = current.props.clone();
        for (name, value) in changes {
            match value {
                None => {
                    props.remove(name);
                }
                Some(v) => {
                    if name == "lifecyclestage"
                        && let Some(old) = props.get(name)
                    {
                        let backward = match (stage_order(self, old), stage_order(self, v)) {
                            (Some(o), Some(n)) => n < o,
                            _ => false,
                        };
                        match (backward, self.behaviour.backward_lifecycle) {
                            (false, _) | (true, BackwardLifecycle::Apply) => {}
                            (true, BackwardLifecycle::Ignore) => continue,
                            (true, BackwardLifecycle::Reject) => {
                                return Err(ApiError::validation(format!(
                                    "lifecyclestage cannot move backward from {old} to {v}; \
                                     clear it first"
                                )));
                            }
                        }
                    }
                    props.insert(name.clone(), v.clone());
                }
            }
        }
        self.check_pipeline(ty, &props)?;
        let now = clock::wall();
        props.insert(ty.modified_prop().into(), clock::iso(now));
        let unique = self.unique_props(ty);
        let lag = self.search_lag;
        let store = self.store_mut(ty);
        let Some(record) = store.records.get_mut(&id) else {
            return Err(not_found(ty, id));
        };
        let old = std::mem::replace(&mut record.props, props);
        record.updated_at = now;
        record.push_snapshot(clock::now(), lag);
        let new = record.props.clone();
        for prop in unique {
            let (o, n) = (old.get(&prop), new.get(&prop));
            if o != n {
                store.reindex(id, &prop, o.map(String::as_str), n.map(String::as_str));
            }
        }
        Ok(())
    }

    /// Adds an association and its reverse.
    pub fn associate(
        &mut self,
        from: ObjectType,
        from_id: u64,
        to: ObjectType,
        to_id: u64,
        type_id: u32,
    ) {
        if let Some(r) = self.store_mut(from).records.get_mut(&from_id) {
            r.assoc
                .entry(to)
                .or_default()
                .entry(to_id)
                .or_default()
                .insert(type_id);
        }
        if let Some(reverse) = association_type(to, from)
            && let Some(r) = self.store_mut(to).records.get_mut(&to_id)
        {
            r.assoc
                .entry(from)
                .or_default()
                .entry(from_id)
                .or_default()
                .insert(reverse);
        }
    }

    /// Removes an association in both directions.
    pub fn dissociate(&mut self, from: ObjectType, from_id: u64, to: ObjectType, to_id: u64) {
        for (a, a_id, b, b_id) in [(from, from_id, to, to_id), (to, to_id, from, from_id)] {
            if let Some(m) = self
                .store_mut(a)
                .records
                .get_mut(&a_id)
                .and_then(|r| r.assoc.get_mut(&b))
            {
                m.remove(&b_id);
            }
        }
    }

    /// Archives a record and drops its associations on both sides.
    pub fn archive(&mut self, ty: ObjectType, id: u64) -> bool {
        let unique = self.unique_props(ty);
        let store = self.store_mut(ty);
        let Some(record) = store.records.remove(&id) else {
            return false;
        };
        for prop in unique {
            if let Some(v) = record.props.get(&prop) {
                store.reindex(id, &prop, Some(v), None);
            }
        }
        for (to, ids) in &record.assoc {
            for to_id in ids.keys() {
                if let Some(r) = self.store_mut(*to).records.get_mut(to_id)
                    && let Some(m) = r.assoc.get_mut(&ty)
                {
                    m.remove(&id);
                }
            }
        }
        for list in self.lists.values_mut() {
            if ty == ObjectType::Contacts {
                list.members.remove(&id);
            }
        }
        true
    }
}

/// The answer to a duplicate unique value, as switched (research: CONFLICT for contacts'
/// email; an `OBJECT_ALREADY_EXISTS` body with `errors[].in`; a 400 "already has that
/// value" modelled by an integrator). None is documented for custom unique properties.
fn unique_clash(
    how: UniqueClash,
    ty: ObjectType,
    prop: &str,
    value: &str,
    existing: u64,
) -> ApiError {
    match how {
        UniqueClash::Conflict => ApiError::conflict(format!(
            "A {} with the value \"{value}\" already exists for the unique property \"{prop}\". Existing ID: {existing}",
            ty.singular()
        )),
        UniqueClash::ObjectAlreadyExists => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("{} already exists", capitalised(ty.singular())),
        )
        .with_extra(
            "errors",
            serde_json::json!([{
                "message": format!("A {} with {prop} {value} already exists", ty.singular()),
                "in": prop,
            }]),
        ),
        UniqueClash::Validation => ApiError::validation(format!(
            "Property values were not valid: [{{\"isValid\":false,\"message\":\"propertyValue: already has that value {prop}\",\"name\":\"{prop}\"}}]"
        )),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// What the rich-text sanitiser does to an html property, as switched. The wrapper is the
/// markup HubSpot's own editor writes (the Using Object APIs guide shows
/// `<div style="" dir="auto" data-top-level="true"><p style="margin:0;">New meeting</p></div>`).
pub(crate) fn sanitise(how: RichText, html: &str) -> String {
    match how {
        RichText::Verbatim => html.to_owned(),
        RichText::Wrap => format!(
            "<div style=\"\" dir=\"auto\" data-top-level=\"true\"><p style=\"margin:0;\">{html}</p></div>"
        ),
        RichText::StripComments => {
            let mut out = String::with_capacity(html.len());
            let mut rest = html;
            while let Some(start) = rest.find("<!--") {
                out.push_str(&rest[..start]);
                match rest[start..].find("-->") {
                    Some(end) => rest = &rest[start + end + 3..],
                    None => rest = "",
                }
            }
            out.push_str(rest);
            out
        }
    }
}
