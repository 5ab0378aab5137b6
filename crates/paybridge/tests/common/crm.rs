//! Reading the sandbox's CRM state in assertions: records of a kind, and what paybridge
//! (or a seed) wrote on a record.

use std::collections::BTreeMap;

use serde_json::Value;

/// The records of `kind` (`contacts`, `tasks`, …) in the sandbox's state.
pub fn records(state: &Value, kind: &str) -> Vec<Value> {
    state[kind].as_array().cloned().unwrap_or_default()
}

/// What paybridge (or the seed) wrote on a record: its properties without those HubSpot
/// maintains.
pub fn written(record: &Value) -> BTreeMap<String, String> {
    const MAINTAINED: &[&str] = &[
        "hs_object_id",
        "createdate",
        "hs_createdate",
        "lastmodifieddate",
        "hs_lastmodifieddate",
    ];
    record["properties"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !MAINTAINED.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Expected properties, written as pairs.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
