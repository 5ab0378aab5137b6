//! Reading many contacts at once, for `paybridge reconcile`: a batch read by an id property
//! with the properties asked for (one call per 100 values), and a pass over every contact
//! that has a property (CRM search, outside the 10-second budget).
//!
//! Batch read: `POST /crm/v3/objects/contacts/batch/read` with `idProperty` and at most 100
//! `inputs` (HubSpot's batch limit, see [`super::MAX_BATCH`]); values HubSpot does not know
//! come back as one `OBJECT_NOT_FOUND` error item, not as a failure of the call
//! (research/hubspot.md §3).
//!
//! Search: `POST /crm/v3/objects/contacts/search` "limit up to 200", "10,000 results per
//! query — paging beyond → 400", and search is outside the ten-secondly bucket with its own
//! per-second limit (research/hubspot.md §3, quoting HubSpot's search guide and the
//! spec's `x-hubspot-rate-limit-exemptions: ["ten-secondly"]`). To go past 10,000 the pass
//! never pages with `after`: each page asks for the records whose `hs_object_id` is greater
//! than the last one seen, sorted by it.

use reqwest::Method;
use serde_json::{Value, json};

use super::contacts::Contact;
use super::{HubSpot, HubspotError, MAX_BATCH};

/// Records per search page (HubSpot's maximum).
pub const SEARCH_PAGE: usize = 200;

impl HubSpot {
    /// The contacts whose `id_property` is one of `values` (at most [`MAX_BATCH`]), with
    /// `properties`: one batch read. Values no contact has are simply absent.
    pub async fn read_contacts_by(
        &self,
        id_property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<Contact>, HubspotError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.transport();
        let mut found = Vec::new();
        for chunk in values.chunks(MAX_BATCH) {
            let body = json!({
                "idProperty": id_property,
                "inputs": chunk.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
                "properties": properties,
            });
            let path = format!("{}/batch/read", t.objects("contacts"));
            let answer = t
                .call("contacts_batch_read", Method::POST, &path, Some(&body))
                .await?;
            found.extend(records(&answer.body));
        }
        Ok(found)
    }

    /// One page of the contacts that have `property`, in `hs_object_id` order after
    /// `after_id` (None: from the first), with `properties`. An empty page is the end.
    pub async fn contacts_having(
        &self,
        property: &str,
        properties: &[String],
        after_id: Option<&str>,
    ) -> Result<Vec<Contact>, HubspotError> {
        let mut filters = vec![json!({"propertyName": property, "operator": "HAS_PROPERTY"})];
        if let Some(after) = after_id {
            filters.push(json!({"propertyName": "hs_object_id", "operator": "GT", "value": after}));
        }
        let body = json!({
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_PAGE,
        });
        let t = self.transport();
        let path = format!("{}/search", t.objects("contacts"));
        let answer = t
            .call("contacts_search", Method::POST, &path, Some(&body))
            .await?;
        Ok(records(&answer.body))
    }
}

fn records(body: &Value) -> Vec<Contact> {
    body.get("results")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Contact::from_record).collect())
        .unwrap_or_default()
}
