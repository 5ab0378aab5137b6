//! What the sandbox starts with: HubSpot's own defaults (properties, groups,
//! pipelines — always present) and a [`Seed`] (tokens, owners, lists, workflows,
//! records, Stripe data) loaded from JSON or [`Seed::standard`].

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::objects::ObjectType;
use crate::properties::{Group, PropertyDef};

/// A seed file. Every field is optional, e.g.
///
/// ```json
/// {
///   "tokens": [{"token": "pat-na1-readonly", "scopes": ["crm.objects.contacts.read"]}],
///   "owners": [{"id": "101", "email": "ada.manager@example.com", "firstName": "Ada", "lastName": "Manager"}],
///   "lists": [{"listId": "1", "name": "Product B cross-sell", "processingType": "MANUAL", "members": []}],
///   "workflows": [{"id": "123456", "name": "Welcome", "flowId": "9123456"}],
///   "requirements": {"tickets": [{"property": "region"}],
///                    "deals": [{"property": "closedate", "when": {"property": "dealstage", "value": "closedwon"}}]},
///   "groups": {"contacts": [{"name": "stripe", "label": "Stripe"}]},
///   "properties": {"contacts": [{"name": "stripe_customer_id", "label": "Stripe Customer ID", "type": "string",
///                                "fieldType": "text", "groupName": "stripe", "hasUniqueValue": true}]},
///   "contacts": [{"id": "5001", "properties": {"email": "ada@example.com"}}],
///   "tasks": [{"properties": {"hs_timestamp": "2026-10-01T09:00:00Z"},
///              "associations": [{"to": {"id": "5001"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]}],
///   "stripe": {"customers": [{"id": "cus_1", "object": "customer", "created": 1788257644, "email": "ada@example.com"}],
///              "subscriptions": [], "invoices": [],
///              "events": [{"event": {"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1788257651, "data": {"object": {}}}, "delivered": false}]}
/// }
/// ```
///
/// A seed given in [`crate::SandboxConfig::seed`] replaces [`Seed::standard`];
/// HubSpot's own default properties, groups and pipelines are always present.
/// Loaded with [`Seed::from_file`], merged at run time with `POST /_sandbox/seed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Seed {
    /// Extra bearer tokens, each with its own scopes (the configured token has them all).
    pub tokens: Vec<SeedToken>,
    pub owners: Vec<SeedOwner>,
    pub lists: Vec<SeedList>,
    pub workflows: Vec<SeedWorkflow>,
    /// Object type (`tickets`, `deals`) → its pipelines, replacing HubSpot's default ones:
    /// `[{"id": "0", "label": "Support", "stages": [{"id": "1", "label": "New"}]}]`.
    pub pipelines: BTreeMap<String, Vec<SeedPipeline>>,
    /// Object type → the portal's rules for writing records: a property required on the
    /// create-record form, or required when another property has a value (2026-09 write
    /// validation, issue 12 H2).
    pub requirements: BTreeMap<String, Vec<SeedRequirement>>,
    /// Object type (`contacts`, `0-1`, …) → property groups (`{name, label}`).
    pub groups: BTreeMap<String, Vec<Value>>,
    /// Object type → properties, in the body format of `POST /crm/v3/properties/{type}`.
    pub properties: BTreeMap<String, Vec<Value>>,
    pub contacts: Vec<SeedRecord>,
    pub deals: Vec<SeedRecord>,
    pub tickets: Vec<SeedRecord>,
    pub tasks: Vec<SeedRecord>,
    pub notes: Vec<SeedRecord>,
    pub stripe: SeedStripe,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedToken {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeedOwner {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub user_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeedList {
    pub list_id: String,
    pub name: String,
    /// `MANUAL`, `SNAPSHOT` or `DYNAMIC`.
    #[serde(default = "manual")]
    pub processing_type: String,
    #[serde(default = "contact_type_id")]
    pub object_type_id: String,
    /// Record ids of the initial members.
    #[serde(default)]
    pub members: Vec<String>,
}

fn manual() -> String {
    "MANUAL".to_owned()
}

fn contact_type_id() -> String {
    "0-1".to_owned()
}

/// A workflow: its legacy (v2) `id`, and the v4 `flowId` the same workflow has in the
/// automation v4 API (default: `9` followed by the v2 id).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeedWorkflow {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub flow_id: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The object type it enrols (default `0-1`, contacts).
    #[serde(default)]
    pub object_type_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedPipeline {
    pub id: String,
    #[serde(default)]
    pub label: String,
    pub stages: Vec<SeedStage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedStage {
    pub id: String,
    #[serde(default)]
    pub label: String,
    /// e.g. `{"ticketState": "OPEN"}` or `{"probability": "0.2"}`.
    #[serde(default)]
    pub metadata: Value,
}

/// A required property: always on create (`when` absent: the create-record form), or on
/// any write that leaves `when.property` at `when.value` (a conditional property rule).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedRequirement {
    pub property: String,
    #[serde(default)]
    pub when: Option<SeedCondition>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedCondition {
    pub property: String,
    pub value: String,
}

/// A record in HubSpot's create format, optionally with a fixed id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedRecord {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// `[{"to":{"id"},"types":[{"associationCategory","associationTypeId"}]}]`.
    #[serde(default)]
    pub associations: Vec<Value>,
}

/// Stripe objects as Stripe renders them (`id`, `object`, `created`, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SeedStripe {
    pub customers: Vec<Value>,
    pub subscriptions: Vec<Value>,
    pub invoices: Vec<Value>,
    pub events: Vec<SeedStripeEvent>,
    /// Any other object Stripe retrieves by id (charges, products, prices, refunds,
    /// disputes, Checkout sessions, payment intents; customers, subscriptions and invoices
    /// too), filed by its `object`.
    pub objects: Vec<Value>,
    /// Thin events (`"object": "v2.core.event"`), for `GET /v2/core/events/{id}`.
    pub thin_events: Vec<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SeedStripeEvent {
    pub event: Value,
    /// Whether every webhook endpoint received it (`delivery_success`).
    #[serde(default = "delivered")]
    pub delivered: bool,
}

fn delivered() -> bool {
    true
}

impl Seed {
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Seed> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the seed file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("parsing the seed file {}", path.display()))
    }

    /// The default seed: three owners, lists 1 and 2 (MANUAL) and 3 (DYNAMIC),
    /// workflows 123456, 222 and 333, paybridge's `paybridge_key` property on
    /// tickets and deals is NOT included (`paybridge setup` creates it).
    pub fn standard() -> Seed {
        let owner = |id: &str, email: &str, first: &str, last: &str, user: u64| SeedOwner {
            id: id.to_owned(),
            email: email.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            user_id: Some(user),
        };
        let list = |id: &str, name: &str, kind: &str| SeedList {
            list_id: id.to_owned(),
            name: name.to_owned(),
            processing_type: kind.to_owned(),
            object_type_id: contact_type_id(),
            members: Vec::new(),
        };
        let workflow = |id: &str, name: &str| SeedWorkflow {
            id: id.to_owned(),
            name: name.to_owned(),
            ..SeedWorkflow::default()
        };
        Seed {
            owners: vec![
                owner("101", "ada.manager@example.com", "Ada", "Manager", 9101),
                owner("102", "grace.success@example.com", "Grace", "Success", 9102),
                owner("103", "finance@example.com", "Finance", "Team", 9103),
            ],
            lists: vec![
                list("1", "Product B cross-sell", "MANUAL"),
                list("2", "Refund follow-up", "MANUAL"),
                list("3", "Active customers", "DYNAMIC"),
            ],
            workflows: vec![
                workflow("123456", "Welcome new customers"),
                workflow("222", "Payment recovery"),
                workflow("333", "Win-back"),
            ],
            ..Seed::default()
        }
    }

    pub(crate) fn records(&self) -> [(ObjectType, &Vec<SeedRecord>); 5] {
        // Contacts first so that the others can associate to them.
        [
            (ObjectType::Contacts, &self.contacts),
            (ObjectType::Deals, &self.deals),
            (ObjectType::Tickets, &self.tickets),
            (ObjectType::Tasks, &self.tasks),
            (ObjectType::Notes, &self.notes),
        ]
    }
}

/// Every scope the configured token holds (and that the sandbox checks).
pub(crate) const ALL_SCOPES: &[&str] = &[
    "automation",
    "crm.lists.read",
    "crm.lists.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.owners.read",
    "crm.objects.tickets.read",
    "crm.objects.tickets.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.custom.read",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.schemas.tickets.read",
    "crm.schemas.tickets.write",
    "tickets",
];

/// HubSpot's default property groups per object type.
pub(crate) fn builtin_groups(ty: ObjectType) -> Vec<Group> {
    match ty {
        ObjectType::Contacts => vec![Group::new("contactinformation", "Contact information")],
        ObjectType::Deals => vec![Group::new("dealinformation", "Deal information")],
        ObjectType::Tickets => vec![Group::new("ticketinformation", "Ticket information")],
        ObjectType::Tasks => vec![Group::new("taskinformation", "Task information")],
        ObjectType::Notes => vec![Group::new("engagement", "Engagement information")],
    }
}

/// HubSpot's default properties (the subset paybridge and its users touch).
/// Enumerations over owners and pipelines get their options from the seed
/// (`State::refresh_dynamic_options`).
pub(crate) fn builtin_properties(ty: ObjectType) -> Vec<PropertyDef> {
    let p = PropertyDef::builtin;
    let owner = |g: &str| p("hubspot_owner_id", "Owner", "enumeration", "select", g);
    match ty {
        ObjectType::Contacts => {
            let g = "contactinformation";
            vec![
                p("email", "Email", "string", "text", g),
                p("firstname", "First Name", "string", "text", g),
                p("lastname", "Last Name", "string", "text", g),
                p("phone", "Phone Number", "string", "phonenumber", g),
                p(
                    "mobilephone",
                    "Mobile Phone Number",
                    "string",
                    "phonenumber",
                    g,
                ),
                p("company", "Company Name", "string", "text", g),
                p("website", "Website URL", "string", "text", g),
                p("jobtitle", "Job Title", "string", "text", g),
                p("address", "Street Address", "string", "text", g),
                p("city", "City", "string", "text", g),
                p("state", "State/Region", "string", "text", g),
                p("zip", "Postal Code", "string", "text", g),
                p("country", "Country/Region", "string", "text", g),
                // Default lifecycle stages in forward order (research §4).
                p(
                    "lifecyclestage",
                    "Lifecycle Stage",
                    "enumeration",
                    "radio",
                    g,
                )
                .options(&[
                    ("subscriber", "Subscriber"),
                    ("lead", "Lead"),
                    ("marketingqualifiedlead", "Marketing Qualified Lead"),
                    ("salesqualifiedlead", "Sales Qualified Lead"),
                    ("opportunity", "Opportunity"),
                    ("customer", "Customer"),
                    ("evangelist", "Evangelist"),
                    ("other", "Other"),
                ]),
                p("hs_lead_status", "Lead Status", "enumeration", "radio", g).options(&[
                    ("NEW", "New"),
                    ("OPEN", "Open"),
                    ("IN_PROGRESS", "In Progress"),
                    ("OPEN_DEAL", "Open Deal"),
                    ("UNQUALIFIED", "Unqualified"),
                    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
                    ("CONNECTED", "Connected"),
                    ("BAD_TIMING", "Bad Timing"),
                ]),
                owner(g),
                p("createdate", "Create Date", "datetime", "date", g),
                p(
                    "lastmodifieddate",
                    "Last Modified Date",
                    "datetime",
                    "date",
                    g,
                )
                .read_only(),
                p("hs_object_id", "Record ID", "number", "number", g).read_only(),
                // Ids of the contacts merged into this one, `;`-separated (Using Object APIs).
                p(
                    "hs_merged_object_ids",
                    "Merged Record IDs",
                    "string",
                    "text",
                    g,
                )
                .read_only(),
            ]
        }
        ObjectType::Deals => {
            let g = "dealinformation";
            vec![
                p("dealname", "Deal Name", "string", "text", g),
                p("amount", "Amount", "number", "number", g),
                p("pipeline", "Pipeline", "enumeration", "select", g),
                p("dealstage", "Deal Stage", "enumeration", "radio", g),
                p("closedate", "Close Date", "datetime", "date", g),
                p("dealtype", "Deal Type", "enumeration", "radio", g).options(&[
                    ("newbusiness", "New Business"),
                    ("existingbusiness", "Existing Business"),
                ]),
                p("description", "Deal Description", "string", "textarea", g),
                owner(g),
                p("createdate", "Create Date", "datetime", "date", g),
                p(
                    "hs_lastmodifieddate",
                    "Last Modified Date",
                    "datetime",
                    "date",
                    g,
                )
                .read_only(),
                p("hs_object_id", "Record ID", "number", "number", g).read_only(),
            ]
        }
        ObjectType::Tickets => {
            let g = "ticketinformation";
            vec![
                p("subject", "Ticket name", "string", "text", g),
                p("content", "Ticket description", "string", "textarea", g),
                p("hs_pipeline", "Pipeline", "enumeration", "select", g),
                p(
                    "hs_pipeline_stage",
                    "Ticket status",
                    "enumeration",
                    "select",
                    g,
                ),
                p("hs_ticket_priority", "Priority", "enumeration", "select", g).options(&[
                    ("LOW", "Low"),
                    ("MEDIUM", "Medium"),
                    ("HIGH", "High"),
                ]),
                // Defaults as seen in a real 400 (research §5).
                p("hs_ticket_category", "Category", "enumeration", "select", g).options(&[
                    ("PRODUCT_ISSUE", "Product issue"),
                    ("BILLING_ISSUE", "Billing issue"),
                    ("FEATURE_REQUEST", "Feature request"),
                    ("GENERAL_INQUIRY", "General inquiry"),
                ]),
                owner(g),
                p("createdate", "Create date", "datetime", "date", g),
                p(
                    "hs_lastmodifieddate",
                    "Last modified date",
                    "datetime",
                    "date",
                    g,
                )
                .read_only(),
                p("hs_object_id", "Record ID", "number", "number", g).read_only(),
            ]
        }
        ObjectType::Tasks => {
            let g = "taskinformation";
            vec![
                p("hs_timestamp", "Due date", "datetime", "date", g),
                p("hs_task_subject", "Task Title", "string", "text", g),
                p("hs_task_body", "Notes", "string", "html", g),
                // IN_PROGRESS/DEFERRED exist [?]; WAITING is in the doc example.
                p("hs_task_status", "Task Status", "enumeration", "select", g).options(&[
                    ("NOT_STARTED", "Not Started"),
                    ("IN_PROGRESS", "In Progress"),
                    ("WAITING", "Waiting"),
                    ("COMPLETED", "Completed"),
                    ("DEFERRED", "Deferred"),
                ]),
                p("hs_task_priority", "Priority", "enumeration", "select", g).options(&[
                    ("NONE", "None"),
                    ("LOW", "Low"),
                    ("MEDIUM", "Medium"),
                    ("HIGH", "High"),
                ]),
                p("hs_task_type", "Task Type", "enumeration", "select", g).options(&[
                    ("EMAIL", "Email"),
                    ("CALL", "Call"),
                    ("TODO", "To-do"),
                ]),
                p("hs_task_reminders", "Reminder", "string", "text", g),
                owner(g),
                p("hs_createdate", "Create date", "datetime", "date", g),
                p(
                    "hs_lastmodifieddate",
                    "Last modified date",
                    "datetime",
                    "date",
                    g,
                )
                .read_only(),
                p("hs_object_id", "Record ID", "number", "number", g).read_only(),
            ]
        }
        ObjectType::Notes => {
            let g = "engagement";
            vec![
                p("hs_timestamp", "Activity date", "datetime", "date", g),
                p("hs_note_body", "Note body", "string", "html", g),
                p(
                    "hs_attachment_ids",
                    "Attached file IDs",
                    "string",
                    "text",
                    g,
                ),
                owner(g),
                p("hs_createdate", "Create date", "datetime", "date", g),
                p(
                    "hs_lastmodifieddate",
                    "Last modified date",
                    "datetime",
                    "date",
                    g,
                )
                .read_only(),
                p("hs_object_id", "Record ID", "number", "number", g).read_only(),
            ]
        }
    }
}
