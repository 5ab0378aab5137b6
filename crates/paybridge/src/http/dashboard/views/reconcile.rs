//! The index page's reconcile card: the last run (when, how it was started, customers
//! compared) and what it found and repaired, drift by property.

use std::collections::BTreeMap;

use minijinja::{Value, context};

use crate::domain::time;
use crate::store::{FindingKind, Store, StoreError};

/// The card's values, or None before the first run.
pub async fn card(store: &Store) -> Result<Option<Value>, StoreError> {
    let Some(run) = store.reconcile_last_run().await? else {
        return Ok(None);
    };
    let counts = store.reconcile_counts(&run.run).await?;
    let total = |kind: FindingKind| -> (i64, i64) {
        counts
            .iter()
            .filter(|((k, _), _)| k == kind.as_str())
            .fold((0, 0), |(f, r), (_, (found, repaired))| {
                (f + found, r + repaired)
            })
    };
    let by_property: BTreeMap<&str, (i64, i64)> = counts
        .iter()
        .filter(|((k, _), _)| k == FindingKind::Drift.as_str())
        .map(|((_, p), n)| (p.as_str(), *n))
        .collect();
    let detail = by_property
        .iter()
        .map(|(p, (found, repaired))| {
            let name = p.strip_prefix("stripe_").unwrap_or(p).replace('_', " ");
            format!("{name} {found} ({repaired} fixed)")
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let item = |label: &str, value: String, detail: String| {
        context! { label => label, value => value, detail => detail }
    };
    let (drift, fixed) = total(FindingKind::Drift);
    let (no_contact, linked) = total(FindingKind::NoContact);
    let items = vec![
        item(
            "Customers checked",
            run.customers.to_string(),
            if run.complete {
                String::new()
            } else {
                " · interrupted; resumes".into()
            },
        ),
        item(
            "Drift found",
            drift.to_string(),
            format!(" · {fixed} fixed"),
        ),
        item(
            "Without a contact",
            no_contact.to_string(),
            format!(" · {linked} linked"),
        ),
        item(
            "Claims Stripe does not back",
            total(FindingKind::UnknownCustomer).0.to_string(),
            String::new(),
        ),
        item(
            "Contacts sharing a customer",
            total(FindingKind::ClaimedTwice).0.to_string(),
            String::new(),
        ),
    ];
    Ok(Some(context! {
        when => time::readable(run.finished_at.unwrap_or(run.started_at)),
        trigger => run.trigger,
        fix => run.fix,
        run => run.run,
        items => items,
        by_property => detail,
    }))
}
