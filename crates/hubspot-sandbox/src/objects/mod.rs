//! CRM records (contacts, deals, tickets, tasks, notes): the store and how
//! records are rendered. Object and association types live in `object_type.rs`,
//! the write rules HubSpot applies in `write.rs`, HTTP handlers in `handlers.rs`;
//! search in `crate::search`.

mod handlers;
mod merge;
mod object_type;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::clock;
use crate::error::ApiError;
use crate::state::Crm;

pub(crate) use handlers::router;
pub(crate) use object_type::{ObjectType, association_label, association_target, association_type};

/// What search sees of a record: a copy of its state that becomes visible
/// `search_lag` after the write that produced it.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub visible_at: Instant,
    pub props: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub id: u64,
    pub props: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// to-type → to-id → association type ids.
    pub assoc: BTreeMap<ObjectType, BTreeMap<u64, BTreeSet<u32>>>,
    /// Search-index versions, oldest first.
    pub index: Vec<Snapshot>,
}

impl Record {
    /// The version search sees at `now`, if any.
    pub fn indexed(&self, now: Instant) -> Option<&Snapshot> {
        self.index.iter().rev().find(|s| s.visible_at <= now)
    }

    fn push_snapshot(&mut self, now: Instant, lag: Duration) {
        // Keep only the newest version already visible plus the pending ones.
        if let Some(visible) = self.index.iter().rposition(|s| s.visible_at <= now) {
            self.index.drain(..visible);
        }
        self.index.push(Snapshot {
            visible_at: now + lag,
            props: self.props.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        });
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectStore {
    pub records: BTreeMap<u64, Record>,
    /// Unique-value index: property → normalised value → record id.
    unique: HashMap<String, HashMap<String, u64>>,
    /// Ids of records merged away → the record they were merged into.
    merged: HashMap<u64, u64>,
}

/// Email is matched case-insensitively; other unique values exactly.
fn unique_key(prop: &str, value: &str) -> String {
    if prop == "email" {
        value.to_ascii_lowercase()
    } else {
        value.to_owned()
    }
}

impl ObjectStore {
    pub fn find_unique(&self, prop: &str, value: &str) -> Option<u64> {
        self.unique
            .get(prop)?
            .get(&unique_key(prop, value))
            .copied()
    }

    /// The record a merged-away id lives on in (following merges of merges).
    pub fn survivor(&self, old: u64) -> Option<u64> {
        let mut id = *self.merged.get(&old)?;
        for _ in 0..self.merged.len() {
            if self.records.contains_key(&id) {
                return Some(id);
            }
            id = *self.merged.get(&id)?;
        }
        None
    }

    fn reindex(&mut self, id: u64, prop: &str, old: Option<&str>, new: Option<&str>) {
        let index = self.unique.entry(prop.to_owned()).or_default();
        if let Some(old) = old {
            index.remove(&unique_key(prop, old));
        }
        if let Some(new) = new {
            index.insert(unique_key(prop, new), id);
        }
    }
}

/// Validated property changes: `None` clears the property.
pub(crate) type Changes = BTreeMap<String, Option<String>>;

/// An inline association of a create: (target type, target id, type id).
pub(crate) type Link = (ObjectType, u64, u32);

/// Which properties to render.
pub(crate) enum Wanted<'a> {
    /// The request named some (`properties=`): those, with `null` for unset ones.
    Listed(&'a [String]),
    /// The request named none: the type's defaults, with `null` for unset ones.
    Defaults,
    /// Create/update answers: the defaults plus what was written, set values only.
    Written(&'a Changes),
}

impl Crm {
    pub fn store(&self, ty: ObjectType) -> &ObjectStore {
        &self.objects[&ty]
    }

    fn store_mut(&mut self, ty: ObjectType) -> &mut ObjectStore {
        self.objects.entry(ty).or_default()
    }

    /// A record as HubSpot returns it.
    pub fn render(
        &self,
        ty: ObjectType,
        id: u64,
        props: &BTreeMap<String, String>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        wanted: Wanted<'_>,
    ) -> Value {
        let mut out = Map::new();
        let known = &self.properties[&ty];
        let put_listed = |name: &str, out: &mut Map<String, Value>| {
            if let Some(v) = props.get(name) {
                out.insert(name.to_owned(), json!(v));
            } else if known.contains_key(name) {
                out.insert(name.to_owned(), Value::Null);
            }
        };
        match wanted {
            Wanted::Listed(names) => names.iter().for_each(|n| put_listed(n, &mut out)),
            Wanted::Defaults => ty
                .default_properties()
                .iter()
                .for_each(|n| put_listed(n, &mut out)),
            Wanted::Written(changes) => {
                let names = ty
                    .default_properties()
                    .iter()
                    .map(|s| s.to_string())
                    .chain(changes.keys().cloned());
                for name in names {
                    if let Some(v) = props.get(&name) {
                        out.insert(name, json!(v));
                    }
                }
            }
        }
        json!({
            "id": id.to_string(),
            "properties": Value::Object(out),
            "createdAt": clock::iso(created_at),
            "updatedAt": clock::iso(updated_at),
            "archived": false,
        })
    }

    pub fn render_record(&self, ty: ObjectType, record: &Record, wanted: Wanted<'_>) -> Value {
        self.render(
            ty,
            record.id,
            &record.props,
            record.created_at,
            record.updated_at,
            wanted,
        )
    }
}

pub(crate) fn not_found(ty: ObjectType, id: impl std::fmt::Display) -> ApiError {
    // [?] the body of a v3 single-record 404 is not captured this session; the
    // category follows research §11, the wording is ours.
    ApiError::not_found(format!(
        "resource not found: {} {id} does not exist",
        ty.singular()
    ))
}
