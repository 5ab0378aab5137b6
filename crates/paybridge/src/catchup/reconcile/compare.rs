//! Pure comparisons: what Stripe's state gives against what a contact shows, and which
//! contacts claim customers Stripe does not have or that another contact claims too.
//!
//! Values are compared as HubSpot stores their type (`rules::properties::builtin`): dates
//! are written as midnight-UTC epoch ms and read back as `YYYY-MM-DD` (research/hubspot.md
//! §3 "date properties"), numbers may come back without trailing zeros, booleans as
//! `true`/`false`, emails in any case.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::rules::PropertyKind;
use crate::rules::properties::builtin;

/// One property whose contact value differs from Stripe's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub property: String,
    pub stripe: String,
    pub hubspot: Option<String>,
}

/// How HubSpot stores `property`.
fn kind_of(property: &str) -> Option<PropertyKind> {
    builtin("stripe_customer_id")
        .into_iter()
        .find(|n| n.object_type == "contacts" && n.name == property)
        .map(|n| n.kind)
}

/// A date value (epoch ms, `YYYY-MM-DD`, or RFC 3339) as its UTC day.
fn day(value: &str) -> Option<NaiveDate> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Utc
            .timestamp_millis_opt(ms)
            .single()
            .map(|t| t.date_naive());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(value)
                .ok()
                .map(|t| t.with_timezone(&Utc).date_naive())
        })
}

/// A number value in thousandths (the finest currency unit Stripe has).
fn thousandths(value: &str) -> Option<i64> {
    let n: f64 = value.trim().parse().ok()?;
    n.is_finite().then(|| (n * 1000.0).round() as i64)
}

/// Whether HubSpot's `hubspot` value is the value `stripe` of `property`.
pub fn same(property: &str, stripe: &str, hubspot: &str) -> bool {
    if property == "email" {
        return stripe.trim().eq_ignore_ascii_case(hubspot.trim());
    }
    match kind_of(property) {
        Some(PropertyKind::Date) => match (day(stripe), day(hubspot)) {
            (Some(a), Some(b)) => a == b,
            _ => stripe == hubspot,
        },
        Some(PropertyKind::Number) => match (thousandths(stripe), thousandths(hubspot)) {
            (Some(a), Some(b)) => a == b,
            _ => stripe == hubspot,
        },
        Some(PropertyKind::Checkbox) => stripe.trim().eq_ignore_ascii_case(hubspot.trim()),
        _ => stripe == hubspot,
    }
}

/// Every property of `expected` the contact does not show (an empty value is no value).
pub fn differences(
    expected: &BTreeMap<String, String>,
    contact: &BTreeMap<String, String>,
) -> Vec<Difference> {
    expected
        .iter()
        .filter_map(|(property, stripe)| {
            let hubspot = contact
                .get(property)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty());
            match hubspot {
                Some(h) if same(property, stripe, h) => None,
                _ => Some(Difference {
                    property: property.clone(),
                    stripe: stripe.clone(),
                    hubspot: hubspot.map(str::to_owned),
                }),
            }
        })
        .collect()
}

/// What the contacts' claims (contact id, Stripe Customer ID) show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Contacts claiming a customer Stripe does not have alive: (contact, customer).
    pub unknown: Vec<(String, String)>,
    /// Customers several contacts claim, with those contacts.
    pub twice: Vec<(String, Vec<String>)>,
}

/// Sorts the contacts' claims: `alive` says whether Stripe has the customer.
pub fn claims(pairs: &[(String, String)], alive: impl Fn(&str) -> bool) -> Claims {
    let mut by_customer: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (contact, customer) in pairs {
        by_customer
            .entry(customer.as_str())
            .or_default()
            .insert(contact.as_str());
    }
    let mut out = Claims::default();
    for (customer, contacts) in by_customer {
        if !alive(customer) {
            out.unknown.extend(
                contacts
                    .iter()
                    .map(|c| ((*c).to_owned(), customer.to_owned())),
            );
        }
        if contacts.len() > 1 {
            out.twice.push((
                customer.to_owned(),
                contacts.iter().map(|c| (*c).to_owned()).collect(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_compared_as_hubspot_stores_their_type() {
        assert!(same(
            "stripe_last_payment_date",
            "1788220800000",
            "2026-09-01"
        ));
        assert!(!same(
            "stripe_last_payment_date",
            "1788220800000",
            "2026-09-02"
        ));
        assert!(same("stripe_lifetime_value", "49.00", "49"));
        assert!(!same("stripe_lifetime_value", "49.00", "49.01"));
        assert!(same("stripe_delinquent", "false", "FALSE"));
        assert!(same("email", "ada@example.com", "Ada@Example.com"));
        assert!(!same("stripe_subscription_status", "active", "Active"));
    }

    #[test]
    fn a_difference_names_the_property_and_both_values() {
        let expected = map(&[
            ("stripe_subscription_status", "canceled"),
            ("stripe_lifetime_value", "49.00"),
            ("stripe_refund_issued", "true"),
        ]);
        let contact = map(&[
            ("stripe_subscription_status", "active"),
            ("stripe_lifetime_value", "49"),
            ("stripe_refund_issued", ""),
            ("stripe_tier_we_do_not_expect", "x"),
        ]);
        assert_eq!(
            differences(&expected, &contact),
            vec![
                Difference {
                    property: "stripe_refund_issued".into(),
                    stripe: "true".into(),
                    hubspot: None,
                },
                Difference {
                    property: "stripe_subscription_status".into(),
                    stripe: "canceled".into(),
                    hubspot: Some("active".into()),
                },
            ]
        );
    }

    #[test]
    fn claims_find_unknown_customers_and_customers_claimed_twice() {
        let pairs: Vec<(String, String)> = [
            ("1", "cus_a"),
            ("2", "cus_gone"),
            ("3", "cus_b"),
            ("4", "cus_b"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        let found = claims(&pairs, |c| c != "cus_gone");
        assert_eq!(found.unknown, vec![("2".to_owned(), "cus_gone".to_owned())]);
        assert_eq!(
            found.twice,
            vec![("cus_b".to_owned(), vec!["3".to_owned(), "4".to_owned()])]
        );
    }
}
