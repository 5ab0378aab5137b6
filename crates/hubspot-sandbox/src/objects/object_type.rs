//! The object types the sandbox stores and the association types between them.

use crate::error::ApiError;

/// The object types the sandbox stores. Names and ids are interchangeable in
/// paths; tasks 0-27 and notes 0-46 are marked [?] in research §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ObjectType {
    Contacts,
    Deals,
    Tickets,
    Tasks,
    Notes,
}

impl ObjectType {
    pub const ALL: [ObjectType; 5] = [
        ObjectType::Contacts,
        ObjectType::Deals,
        ObjectType::Tickets,
        ObjectType::Tasks,
        ObjectType::Notes,
    ];

    /// Accepts `contacts`, `contact`, `0-1` (any case). Anything else is HubSpot's
    /// 400 for an unknown type [? wording].
    pub fn parse(raw: &str) -> Result<ObjectType, ApiError> {
        let lower = raw.to_ascii_lowercase();
        ObjectType::ALL
            .into_iter()
            .find(|t| lower == t.name() || lower == t.singular() || lower == t.type_id())
            .ok_or_else(|| ApiError::validation(format!("Unable to infer object type from: {raw}")))
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Deals => "deals",
            ObjectType::Tickets => "tickets",
            ObjectType::Tasks => "tasks",
            ObjectType::Notes => "notes",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contact",
            ObjectType::Deals => "deal",
            ObjectType::Tickets => "ticket",
            ObjectType::Tasks => "task",
            ObjectType::Notes => "note",
        }
    }

    pub fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Deals => "0-3",
            ObjectType::Tickets => "0-5",
            ObjectType::Tasks => "0-27",
            ObjectType::Notes => "0-46",
        }
    }

    /// Property holding the creation time.
    pub fn created_prop(self) -> &'static str {
        match self {
            ObjectType::Tasks | ObjectType::Notes => "hs_createdate",
            _ => "createdate",
        }
    }

    /// Property holding the last modification time.
    pub fn modified_prop(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// Properties returned when the request names none. Contacts per the search
    /// guide; the other types are what HubSpot returns in practice [?].
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectType::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
            ObjectType::Tickets => &[
                "content",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ],
            ObjectType::Tasks | ObjectType::Notes => {
                &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
            }
        }
    }

    /// Properties a create must carry (tasks/notes: hs_timestamp; tickets and
    /// deals: their pipeline fields, as the brief for paybridge requires).
    pub fn required_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[],
            ObjectType::Tasks | ObjectType::Notes => &["hs_timestamp"],
            ObjectType::Tickets => &["hs_pipeline", "hs_pipeline_stage", "subject"],
            ObjectType::Deals => &["pipeline", "dealstage", "dealname"],
        }
    }
}

/// HUBSPOT_DEFINED association type ids, both directions (research §5 table,
/// from the Node client's `AssociationTypes`).
const ASSOCIATION_TYPES: &[(ObjectType, ObjectType, u32)] = &[
    (ObjectType::Deals, ObjectType::Contacts, 3),
    (ObjectType::Contacts, ObjectType::Deals, 4),
    (ObjectType::Contacts, ObjectType::Tickets, 15),
    (ObjectType::Tickets, ObjectType::Contacts, 16),
    (ObjectType::Deals, ObjectType::Tickets, 27),
    (ObjectType::Tickets, ObjectType::Deals, 28),
    (ObjectType::Contacts, ObjectType::Notes, 201),
    (ObjectType::Notes, ObjectType::Contacts, 202),
    (ObjectType::Contacts, ObjectType::Tasks, 203),
    (ObjectType::Tasks, ObjectType::Contacts, 204),
    (ObjectType::Deals, ObjectType::Notes, 213),
    (ObjectType::Notes, ObjectType::Deals, 214),
    (ObjectType::Deals, ObjectType::Tasks, 215),
    (ObjectType::Tasks, ObjectType::Deals, 216),
    (ObjectType::Tickets, ObjectType::Notes, 227),
    (ObjectType::Notes, ObjectType::Tickets, 228),
    (ObjectType::Tickets, ObjectType::Tasks, 229),
    (ObjectType::Tasks, ObjectType::Tickets, 230),
];

pub(crate) fn association_type(from: ObjectType, to: ObjectType) -> Option<u32> {
    ASSOCIATION_TYPES
        .iter()
        .find(|(f, t, _)| *f == from && *t == to)
        .map(|(_, _, id)| *id)
}

/// The target type an association type id implies for records of type `from`.
pub(crate) fn association_target(from: ObjectType, type_id: u32) -> Option<ObjectType> {
    ASSOCIATION_TYPES
        .iter()
        .find(|(f, _, id)| *f == from && *id == type_id)
        .map(|(_, t, _)| *t)
}

/// The v3 `type` label of an association, e.g. `task_to_contact`.
pub(crate) fn association_label(from: ObjectType, to: ObjectType) -> String {
    format!("{}_to_{}", from.singular(), to.singular())
}
