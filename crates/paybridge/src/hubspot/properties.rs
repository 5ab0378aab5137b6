//! Property groups and property definitions (what `paybridge setup` creates).

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::{HubSpot, HubspotError};

/// A custom property paybridge writes, with its HubSpot type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyDef {
    pub object_type: &'static str,
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub field_type: &'static str,
    pub unique: bool,
    /// Enumeration options (value = label).
    pub options: Vec<String>,
}

/// A property as the portal has it (the fields `paybridge setup` compares).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingProperty {
    pub name: String,
    /// HubSpot's `type`: string, number, date, datetime, enumeration, bool.
    pub kind: String,
    pub unique: bool,
    /// Enumeration option values.
    pub options: Vec<String>,
}

/// What `ensure_property` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Existed,
    Created,
}

impl HubSpot {
    /// Names of the properties an object type has.
    pub async fn property_names(&self, object_type: &str) -> Result<Vec<String>, HubspotError> {
        Ok(self
            .properties(object_type)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect())
    }

    /// The properties an object type has.
    pub async fn properties(
        &self,
        object_type: &str,
    ) -> Result<Vec<ExistingProperty>, HubspotError> {
        let t = self.transport();
        let path = format!("{}/{object_type}", t.family("properties"));
        let answer = t.call("properties_list", Method::GET, &path, None).await?;
        let text = |p: &Value, key: &str| {
            p.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(answer
            .body
            .get("results")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter(|p| p.get("name").and_then(Value::as_str).is_some())
                    .map(|p| ExistingProperty {
                        name: text(p, "name"),
                        kind: text(p, "type"),
                        unique: p
                            .get("hasUniqueValue")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        options: p
                            .get("options")
                            .and_then(Value::as_array)
                            .map(|o| o.iter().map(|o| text(o, "value")).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn ensure_group(
        &self,
        object_type: &str,
        name: &str,
        label: &str,
    ) -> Result<Ensured, HubspotError> {
        let t = self.transport();
        let path = format!("{}/{object_type}/groups", t.family("properties"));
        let body = json!({ "name": name, "label": label, "displayOrder": -1 });
        match t
            .call("properties_group_create", Method::POST, &path, Some(&body))
            .await
        {
            Ok(_) => Ok(Ensured::Created),
            Err(HubspotError::Terminal { status: 409, .. }) => Ok(Ensured::Existed),
            Err(e) => Err(e),
        }
    }

    /// Creates the property unless it exists (409 is "exists", not a failure).
    pub async fn ensure_property(
        &self,
        def: &PropertyDef,
        group: &str,
    ) -> Result<Ensured, HubspotError> {
        let t = self.transport();
        let path = format!("{}/{}", t.family("properties"), def.object_type);
        let mut body = json!({
            "name": def.name,
            "label": def.label,
            "type": def.kind,
            "fieldType": def.field_type,
            "groupName": group,
            "hasUniqueValue": def.unique,
        });
        if !def.options.is_empty() {
            body["options"] = def
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| json!({ "label": o, "value": o, "displayOrder": i, "hidden": false }))
                .collect();
        }
        if def.kind == "bool" {
            body["options"] = json!([
                { "label": "Yes", "value": "true", "displayOrder": 0, "hidden": false },
                { "label": "No", "value": "false", "displayOrder": 1, "hidden": false }
            ]);
        }
        match t
            .call("properties_create", Method::POST, &path, Some(&body))
            .await
        {
            Ok(_) => Ok(Ensured::Created),
            Err(HubspotError::Terminal { status: 409, .. }) => Ok(Ensured::Existed),
            Err(e) => Err(e),
        }
    }
}
