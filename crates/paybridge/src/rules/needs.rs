//! What the configured rules need from HubSpot, as plain data: the token's scopes, the
//! object types they create records of, and the properties they write. `paybridge setup`
//! turns the properties into HubSpot definitions; `check` compares the scopes with the
//! token's. Each action kind says what it needs (`actions/`); this adds them up.

use std::collections::BTreeSet;

use super::model::RuleSet;
use super::properties::builtin;

/// What a set of actions needs; filled by each action's `needs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// HubSpot token scopes.
    pub scopes: BTreeSet<&'static str>,
    /// Object types records are created of (`tasks`, `notes`, `tickets`, `deals`).
    pub objects: BTreeSet<&'static str>,
    /// Contact properties written (HubSpot's own among them).
    pub contact_properties: BTreeSet<String>,
}

/// A property paybridge writes, in its own words (`ops::setup` turns it into HubSpot's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyNeed {
    /// `contacts`, `tickets` or `deals`.
    pub object_type: &'static str,
    pub name: String,
    pub label: String,
    pub kind: PropertyKind,
    /// No two records may hold the same value.
    pub unique: bool,
}

/// What a property holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyKind {
    Text,
    Number,
    /// A day (midnight UTC).
    Date,
    /// true or false.
    Checkbox,
    /// One of these values.
    Select(Vec<String>),
}

/// HubSpot's own contact properties: `setup` never creates these.
const HUBSPOT_CONTACT_DEFAULTS: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "website",
    "jobtitle",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
];

/// Scopes HubSpot takes in place of a needed one: each alternative is a set of scopes that
/// together stand in for it. HubSpot's spec files (tickets v3, 2026-03, 2026-09) ask ticket
/// calls for the legacy `tickets` scope, while its app settings offer the granular
/// `crm.objects.tickets.read/write` and `crm.schemas.tickets.read/write`; which a portal
/// grants and accepts is not settled, so either does (issue 12, H1).
pub fn scope_alternatives(scope: &str) -> &'static [&'static [&'static str]] {
    match scope {
        "tickets" => &[&["crm.objects.tickets.read", "crm.objects.tickets.write"]],
        "crm.schemas.tickets.write" => &[&["tickets"]],
        _ => &[],
    }
}

/// Scopes of the same family as a needed one: a token holding them holds nothing beyond
/// need (the legacy ticket scope and all four granular ones, whichever the portal uses).
pub fn scope_family(scope: &str) -> &'static [&'static str] {
    match scope {
        "tickets" | "crm.schemas.tickets.write" => &[
            "tickets",
            "crm.objects.tickets.read",
            "crm.objects.tickets.write",
            "crm.schemas.tickets.read",
            "crm.schemas.tickets.write",
        ],
        _ => &[],
    }
}

/// Whether `granted` covers the needed `scope`, itself or by an alternative.
pub fn scope_granted(scope: &str, granted: &BTreeSet<String>) -> bool {
    granted.contains(scope)
        || scope_alternatives(scope)
            .iter()
            .any(|alt| alt.iter().all(|s| granted.contains(*s)))
}

/// A needed scope as `check` and `setup` show it: `tickets (or crm.objects.tickets.read +
/// crm.objects.tickets.write)`.
pub fn describe_scope(scope: &str) -> String {
    let alternatives: Vec<String> = scope_alternatives(scope)
        .iter()
        .map(|alt| alt.join(" + "))
        .collect();
    if alternatives.is_empty() {
        scope.to_owned()
    } else {
        format!("{scope} (or {})", alternatives.join(" or "))
    }
}

impl RuleSet {
    /// What every configured action needs, added up. Contacts are read and written for
    /// every event (tasks and notes need no scope of their own).
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        needs
            .scopes
            .extend(["crm.objects.contacts.read", "crm.objects.contacts.write"]);
        for action in self.all_actions() {
            action.needs(&mut needs);
        }
        needs
    }

    /// The HubSpot scopes the configured actions need (research/hubspot.md §1).
    pub fn scopes_needed(&self) -> BTreeSet<&'static str> {
        self.needs().scopes
    }

    /// The object types the actions create records of (`tasks`, `notes`, `tickets`,
    /// `deals`).
    pub fn created_object_types(&self) -> BTreeSet<&'static str> {
        self.needs().objects
    }

    /// Contact properties the actions write that are neither HubSpot's defaults nor
    /// paybridge's built-in `stripe_*` properties: `paybridge setup` creates them (as text).
    pub fn custom_properties(&self) -> Vec<(&'static str, String)> {
        let builtin: BTreeSet<String> = builtin("stripe_customer_id")
            .into_iter()
            .map(|d| d.name)
            .collect();
        self.needs()
            .contact_properties
            .into_iter()
            .filter(|n| !HUBSPOT_CONTACT_DEFAULTS.contains(&n.as_str()) && !builtin.contains(n))
            .map(|n| ("contacts", n))
            .collect()
    }

    /// Every property the configuration writes: the built-in contact properties
    /// (`id_property` being the configured Stripe Customer ID one), the `paybridge_key` of
    /// tickets and deals when the rules create them, then the rules' own contact
    /// properties, as text.
    pub fn properties_needed(&self, id_property: &str) -> Vec<PropertyNeed> {
        let created = self.created_object_types();
        let mut needs: Vec<PropertyNeed> = builtin(id_property)
            .into_iter()
            .filter(|d| d.object_type == "contacts" || created.contains(d.object_type))
            .collect();
        for (object_type, name) in self.custom_properties() {
            if !needs
                .iter()
                .any(|d| d.object_type == object_type && d.name == name)
            {
                needs.push(PropertyNeed {
                    object_type,
                    label: name.replace('_', " "),
                    name,
                    kind: PropertyKind::Text,
                    unique: false,
                });
            }
        }
        needs
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::CustomerProfile;
    use crate::rules::Action;
    use crate::rules::context::context;
    use crate::rules::testing::{NOW, compile, fact, rule_with, starter};

    #[test]
    fn handled_types_scopes_and_custom_properties_of_the_starter() {
        let ruleset = starter();
        let handled = ruleset.rule_types();
        for t in [
            "invoice.paid",
            "invoice.payment_failed",
            "charge.refunded",
            "customer.subscription.deleted",
        ] {
            assert!(handled.matches(t), "{t}");
        }
        assert!(!handled.matches("customer.created"));
        assert_eq!(
            ruleset.scopes_needed().into_iter().collect::<Vec<_>>(),
            [
                "automation",
                "crm.lists.read",
                "crm.lists.write",
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.objects.deals.read",
                "crm.objects.deals.write",
                "crm.objects.owners.read",
                "tickets",
            ]
        );
        assert_eq!(
            ruleset
                .created_object_types()
                .into_iter()
                .collect::<Vec<_>>(),
            ["deals", "notes", "tasks", "tickets"]
        );
        assert!(
            ruleset.custom_properties().is_empty(),
            "lifecyclestage is HubSpot's"
        );
        assert_eq!(
            RuleSet::default().scopes_needed().len(),
            2,
            "contacts read and write only"
        );
    }

    #[test]
    fn ticket_scopes_are_the_legacy_one_or_the_granular_ones() {
        let granted = |scopes: &[&str]| -> BTreeSet<String> {
            scopes.iter().map(|s| (*s).to_owned()).collect()
        };
        assert!(scope_granted("tickets", &granted(&["tickets"])));
        assert!(scope_granted(
            "tickets",
            &granted(&["crm.objects.tickets.read", "crm.objects.tickets.write"])
        ));
        assert!(!scope_granted(
            "tickets",
            &granted(&["crm.objects.tickets.read"])
        ));
        assert!(scope_granted(
            "crm.schemas.tickets.write",
            &granted(&["tickets"])
        ));
        assert_eq!(
            describe_scope("tickets"),
            "tickets (or crm.objects.tickets.read + crm.objects.tickets.write)"
        );
        assert_eq!(describe_scope("automation"), "automation");
    }

    #[test]
    fn custom_properties_are_those_hubspot_and_paybridge_do_not_have() {
        let ruleset = compile(&rule_with(
            r#"{ type = "update_contact", properties = { lifecyclestage = "customer", stripe_refund_issued = "true", vip_level = "{{ customer.metadata.tier }}" } },
               { type = "enroll_workflow", trigger_property = "welcome_trigger" }"#,
        ))
        .expect("compiles");
        assert_eq!(
            ruleset.custom_properties(),
            [
                ("contacts", "vip_level".to_owned()),
                ("contacts", "welcome_trigger".to_owned())
            ]
        );
        assert!(
            !ruleset.scopes_needed().contains("automation"),
            "by property"
        );
        let f = fact("invoice.paid.json");
        let profile = CustomerProfile {
            metadata: BTreeMap::from([("tier".to_owned(), "gold".to_owned())]),
            ..CustomerProfile::default()
        };
        let planned = ruleset.plan("evt_1", "invoice.paid", &context(&f, &profile), NOW);
        assert_eq!(
            planned.steps[1].action,
            Action::EnrollWorkflow {
                workflow_id: None,
                trigger_property: Some(("welcome_trigger".into(), "true".into())),
            }
        );
        let Action::UpdateContact { properties, .. } = &planned.steps[0].action else {
            panic!("update");
        };
        assert_eq!(
            properties.get("vip_level").map(String::as_str),
            Some("gold")
        );
    }
}
