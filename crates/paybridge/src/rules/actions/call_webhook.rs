//! `call_webhook url secret [payload]`: a signed JSON POST to the customer's own app
//! (provisioning), retried until it answers 2xx. Templates fill the URL and the payload's
//! strings; the payload defaults to the whole (sanitised) context.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use toml::Value;

use super::is_http_url;
use crate::basics::fields::describe;
use crate::basics::{At, Secret};
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::Text;

pub const KEYS: &[&str] = &["url", "secret", "payload"];

#[derive(Debug, Clone, PartialEq)]
pub struct CallWebhook {
    pub url: Text,
    pub secret: Secret,
    /// None: the whole (sanitised) context.
    pub payload: Option<PayloadValue>,
}

/// A `call_webhook` payload: a TOML value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadValue {
    Text(Text),
    Literal(Json),
    Array(Vec<PayloadValue>),
    Object(BTreeMap<String, PayloadValue>),
}

impl CallWebhook {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let url = c.text(at, "url", true, "your app's endpoint, https://…");
        if let Some(Text::Literal(u)) = &url
            && !is_http_url(u)
        {
            c.fields
                .problem(at.path_of("url"), format!("`{u}` is not an http(s):// URL"));
        }
        let secret = c.secret(at, "secret", "the key the request is signed with");
        let payload = match at.get("payload") {
            None => None,
            Some(v @ Value::Table(_)) => payload(c, &at.path_of("payload"), v),
            Some(other) => {
                c.fields.problem(
                    at.path_of("payload"),
                    format!("must be a table, found {}", describe(other)),
                );
                None
            }
        };
        url.zip(secret).map(|(url, secret)| Self {
            url,
            secret,
            payload,
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        let url = r.text(&self.url)?.trim().to_owned();
        if !is_http_url(&url) {
            return Err(format!("call_webhook url `{url}` is not an http(s):// URL"));
        }
        Ok(Action::CallWebhook {
            url,
            secret: self.secret.clone(),
            payload: match &self.payload {
                Some(p) => render_payload(p, r)?,
                None => r.context().clone(),
            },
        })
    }

    /// The customer's app is not HubSpot: nothing.
    pub(crate) fn needs(&self, _: &mut Needs) {}
}

fn payload(c: &mut Compiler, path: &str, value: &Value) -> Option<PayloadValue> {
    Some(match value {
        Value::String(s) => PayloadValue::Text(c.template(path, s.clone())?),
        Value::Integer(i) => PayloadValue::Literal(Json::from(*i)),
        Value::Float(f) => PayloadValue::Literal(Json::from(*f)),
        Value::Boolean(b) => PayloadValue::Literal(Json::from(*b)),
        Value::Datetime(d) => PayloadValue::Literal(Json::from(d.to_string())),
        Value::Array(items) => PayloadValue::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| payload(c, &format!("{path}[{i}]"), v))
                .collect(),
        ),
        Value::Table(table) => PayloadValue::Object(
            table
                .iter()
                .filter_map(|(k, v)| payload(c, &format!("{path}.{k}"), v).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

fn render_payload(value: &PayloadValue, r: &Renderer) -> Result<Json, String> {
    Ok(match value {
        PayloadValue::Text(t) => Json::String(r.text(t)?),
        PayloadValue::Literal(v) => v.clone(),
        PayloadValue::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| render_payload(v, r))
                .collect::<Result<_, _>>()?,
        ),
        PayloadValue::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_payload(v, r)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}
