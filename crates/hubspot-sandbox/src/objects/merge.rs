//! Merging two contacts, as a person does in HubSpot's UI (control API only: the public
//! merge endpoint is not something paybridge calls). The primary keeps its values and
//! takes the merged record's where it has none; it records the merged id in
//! `hs_merged_object_ids` (`;`-separated, as HubSpot stores it: "you can use the previous
//! record ID values stored in the `hs_merged_object_ids` field", Using Object APIs); the
//! merged record's associations and list memberships move to the primary; the merged id
//! keeps answering single reads and updates (see `Crm::resolve`).

use super::{Changes, ObjectType};
use crate::state::Crm;

impl Crm {
    pub fn merge_contacts(&mut self, primary: &str, merged: &str) -> Result<(), String> {
        let ty = ObjectType::Contacts;
        let parse = |raw: &str| {
            raw.trim()
                .parse::<u64>()
                .ok()
                .filter(|id| self.store(ty).records.contains_key(id))
                .ok_or_else(|| format!("no contact {raw} to merge"))
        };
        let (keep, gone) = (parse(primary)?, parse(merged)?);
        if keep == gone {
            return Err("a contact cannot be merged into itself".into());
        }
        let (kept_props, gone_record) = {
            let store = &self.objects[&ty];
            (
                store.records[&keep].props.clone(),
                store.records[&gone].clone(),
            )
        };
        let lists: Vec<String> = self
            .lists
            .values()
            .filter(|l| l.members.contains_key(&gone))
            .map(|l| l.list_id.clone())
            .collect();
        // Archive first, so that the merged record's unique values are free to move.
        self.archive(ty, gone);
        let mut changes = Changes::new();
        for (name, value) in &gone_record.props {
            if !kept_props.contains_key(name) {
                changes.insert(name.clone(), Some(value.clone()));
            }
        }
        let mut merged_ids: Vec<String> = kept_props
            .get("hs_merged_object_ids")
            .map(|v| v.split(';').map(str::to_owned).collect())
            .unwrap_or_default();
        merged_ids.push(gone.to_string());
        changes.insert("hs_merged_object_ids".into(), Some(merged_ids.join(";")));
        self.update(ty, keep, &changes).map_err(|e| e.message)?;
        for (to, ids) in &gone_record.assoc {
            for (to_id, types) in ids {
                for type_id in types {
                    self.associate(ty, keep, *to, *to_id, *type_id);
                }
            }
        }
        let now = crate::clock::wall();
        for id in lists {
            if let Some(list) = self.lists.get_mut(&id) {
                list.members.entry(keep).or_insert(now);
            }
        }
        self.objects
            .get_mut(&ty)
            .ok_or("no contacts store")?
            .merged
            .insert(gone, keep);
        Ok(())
    }
}
