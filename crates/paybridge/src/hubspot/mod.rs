//! The HubSpot client: hand-written, only the endpoints we use, every call through one
//! limiter, record-level calls transparently batched. Knows nothing of our tables.

mod answer;
mod batch;
mod breaker;
mod contact_scan;
mod contacts;
mod crm;
mod daily;
mod error;
pub mod limiter;
mod objects;
pub mod portal;
pub mod properties;
pub mod richtext;
pub mod shared_budget;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::basics::Secret;
pub use contacts::Contact;
pub use error::HubspotError;
use limiter::Limiter;
pub use objects::{MatchOn, NewRecord, to_contact_type};
pub use transport::CallCounts;
use transport::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// Date-versioned paths, e.g. `/crm/objects/2026-09/contacts`.
    Dated2026_09,
    /// The legacy `/crm/v3/...` paths.
    V3,
}

/// HubSpot's batch endpoints take at most 100 inputs.
pub const MAX_BATCH: usize = 100;

pub type Properties = BTreeMap<String, String>;

#[derive(Clone)]
pub struct HubSpot {
    transport: Arc<Transport>,
    contacts: contacts::Batchers,
    objects: objects::Batchers,
    crm: crm::Batchers,
    owner_cache: Arc<Mutex<HashMap<String, Option<String>>>>,
    /// v4 flowIds a rule named as `workflow_id` → their v2 workflowIds.
    workflow_cache: Arc<Mutex<HashMap<String, String>>>,
}

impl HubSpot {
    pub fn new(
        base: &str,
        token: Secret,
        version: ApiVersion,
        requests_per_10s: u32,
        search_per_s: u32,
        id_property: &str,
    ) -> anyhow::Result<Self> {
        let limiter = Arc::new(Limiter::new(requests_per_10s, search_per_s));
        let transport = Arc::new(Transport::new(base, token, version, limiter)?);
        let read_properties: Arc<Vec<String>> = Arc::new(
            [
                id_property,
                "email",
                "firstname",
                "lastname",
                "hubspot_owner_id",
                "lifecyclestage",
                // A contact merged into this one answers to its old id too.
                "hs_merged_object_ids",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        );
        let contacts = contacts::Batchers::spawn(&transport, read_properties, id_property);
        Ok(Self {
            transport,
            contacts,
            objects: objects::Batchers::default(),
            crm: crm::Batchers::default(),
            owner_cache: Arc::new(Mutex::new(HashMap::new())),
            workflow_cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Whether HubSpot is failing broadly (the circuit breaker is open).
    pub fn is_unavailable(&self) -> bool {
        self.transport.breaker.is_open()
    }

    /// How long until the breaker's next probe (zero when closed).
    pub fn until_probe(&self) -> std::time::Duration {
        self.transport.breaker.until_probe()
    }

    /// How many times HubSpot came back after failing broadly (the breaker closed).
    pub fn recoveries(&self) -> u64 {
        self.transport.breaker.recoveries()
    }

    /// While the breaker is open and a probe is due: one cheap read, whose answer closes
    /// it or pushes the next probe back. Does nothing otherwise.
    pub async fn probe_if_due(&self) {
        if !self.transport.breaker.is_open() || !self.until_probe().is_zero() {
            return;
        }
        let path = format!("{}?limit=1", self.transport.objects("contacts"));
        if let Err(e) = self
            .transport
            .call("probe", reqwest::Method::GET, &path, None)
            .await
        {
            tracing::debug!(error = %e, "HubSpot probe failed");
        }
    }

    /// Makes every call of this client (and of its clones, and every batcher) take from the
    /// HubSpot budget all replicas share in Postgres too (issue 16; the table
    /// `hubspot_budget`, migrations/postgres/0061): the sum of their calls stays within
    /// `requests_per_10s` and `search_per_s`, and a 429 on one pauses all.
    pub fn sharing(self, pool: sqlx::PgPool) -> Self {
        self.transport.limiter.share(pool);
        self
    }

    /// Background work ([`limiter::in_background`]) takes at most `share` of the window.
    pub fn set_background_share(&self, share: f64) {
        self.transport.limiter.set_background_share(share);
    }

    /// This client's counts of calls answered and 429s (for `paybridge report`).
    pub fn call_counts(&self) -> Arc<CallCounts> {
        self.transport.counts.clone()
    }
}

/// A record's string properties from a HubSpot record JSON (`null` values dropped).
pub(crate) fn record_properties(record: &Value) -> BTreeMap<String, String> {
    record
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn record_id(record: &Value) -> Option<String> {
    match record.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
