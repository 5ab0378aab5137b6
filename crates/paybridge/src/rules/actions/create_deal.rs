//! `create_deal name [amount] [pipeline] [stage] [close_date] [owner]`: a deal associated
//! with the contact, created once per step key (`paybridge_key`).

use std::time::Duration;

use serde_json::Value as Json;

use super::owner::OwnerSpec;
use crate::basics::{At, parse_duration};
use crate::domain::Money;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::Text;

pub const KEYS: &[&str] = &["name", "amount", "pipeline", "stage", "close_date", "owner"];

#[derive(Debug, Clone, PartialEq)]
pub struct CreateDeal {
    pub name: Text,
    /// None: the payment's amount in major units.
    pub amount: Option<Text>,
    pub pipeline: String,
    pub stage: String,
    pub close_date: Option<CloseDate>,
    pub owner: OwnerSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseDate {
    /// `now` or a duration from the time of planning.
    In(Duration),
    /// A fixed `YYYY-MM-DD` (midnight UTC), unix ms.
    At(i64),
}

const CLOSE_DATE_FORMS: &str = "\"now\", a duration from now such as \"30d\", or a date YYYY-MM-DD";

impl CreateDeal {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let name = c.text(at, "name", true, "the deal's name");
        let amount = c.text(at, "amount", false, "major units, e.g. \"49.00\"");
        let pipeline = c.fields.scalar(at, "pipeline", false, "a deal pipeline id");
        let stage = c.fields.scalar(at, "stage", false, "a deal stage id");
        let close_date = close_date(c, at);
        let owner = OwnerSpec::parse(c, at);
        name.map(|name| Self {
            name,
            amount,
            pipeline: pipeline.unwrap_or_else(|| "default".into()),
            stage: stage.unwrap_or_else(|| "closedwon".into()),
            close_date,
            owner,
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::CreateDeal {
            name: r.text(&self.name)?,
            amount: match &self.amount {
                Some(t) => r.optional(Some(t))?.map(|a| a.trim().to_owned()),
                None => payment_amount(r.context()),
            },
            pipeline: self.pipeline.clone(),
            stage: self.stage.clone(),
            close_date_ms: self.close_date.as_ref().map(|d| match d {
                CloseDate::In(d) => r.after(*d),
                CloseDate::At(ms) => *ms,
            }),
            owner: self.owner.render(r)?,
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        // Read too: a retried create finds its deal by `paybridge_key`.
        n.scopes
            .extend(["crm.objects.deals.read", "crm.objects.deals.write"]);
        n.objects.insert("deals");
        self.owner.needs(n);
    }
}

fn close_date(c: &mut Compiler, at: At) -> Option<CloseDate> {
    let text = c.fields.scalar(at, "close_date", false, CLOSE_DATE_FORMS)?;
    let text = text.trim();
    if text == "now" {
        return Some(CloseDate::In(Duration::ZERO));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let ms = date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis();
        return Some(CloseDate::At(ms));
    }
    match parse_duration(text) {
        Ok(d) => Some(CloseDate::In(d)),
        Err(_) => {
            c.fields.problem(
                at.path_of("close_date"),
                format!("`{text}` is not {CLOSE_DATE_FORMS}"),
            );
            None
        }
    }
}

/// The payment's amount in major units (`49.00`), from the context.
fn payment_amount(context: &Json) -> Option<String> {
    let minor = context.get("amount_minor")?.as_i64()?;
    let currency = context.get("currency")?.as_str()?;
    Some(Money::new(minor, currency).major_string())
}
