//! The lifecycle stage only moves forward, and paybridge itself sees to it: whether HubSpot
//! ignores, applies or refuses an API write of an earlier stage is not settled (v1 ignored
//! it; HubSpot's own tools "can only move it forward" — knowledge base "Use lifecycle
//! stages"), so before writing `lifecyclestage` the worker reads the contact's current
//! stage and drops a value that is not later in the order. The order is HubSpot's default
//! one, or `[contacts] lifecycle_stages` for portals with custom stages (their internal
//! ids, in the portal's order).

use std::collections::BTreeMap;

use super::WorkError;
use super::resolve::{Resolved, vanished};
use super::step::StepContext;

pub const PROPERTY: &str = "lifecyclestage";

/// Removes `lifecyclestage` from `write` unless it moves the contact forward; says why.
pub(crate) async fn forward_only(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    write: &mut BTreeMap<String, String>,
) -> Result<(), WorkError> {
    let Some(wanted) = write.get(PROPERTY).cloned() else {
        return Ok(());
    };
    let current = match cx
        .p
        .inner
        .hubspot
        .contact_by("hs_object_id", &contact.id)
        .await?
    {
        Some(c) => c.get(PROPERTY).map(str::to_owned),
        None => return Err(vanished(cx, &contact.id).await),
    };
    let order = &cx.p.inner.lifecycle_stages;
    let rank = |stage: &str| order.iter().position(|s| s == stage);
    let why = match current.as_deref() {
        None if wanted.is_empty() => Some("it is already empty".to_owned()),
        None => None,
        Some(now) if wanted.is_empty() => Some(format!("clearing {now} would move it backward")),
        Some(now) => match (rank(now), rank(&wanted)) {
            (Some(a), Some(b)) if b > a => None,
            (Some(_), Some(_)) if now == wanted => Some(format!("it is already {now}")),
            (Some(_), Some(_)) => Some(format!(
                "{wanted} comes before {now}: the lifecycle stage only moves forward"
            )),
            _ => Some(format!(
                "paybridge cannot tell whether {wanted} comes after {now} (list every stage, in \
                 the portal's order, in [contacts] lifecycle_stages)"
            )),
        },
    };
    if let Some(why) = why {
        write.remove(PROPERTY);
        cx.say(format!(
            "{PROPERTY} of contact {} left as it is: {why}",
            contact.id
        ));
    }
    Ok(())
}
