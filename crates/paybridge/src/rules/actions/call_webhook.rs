//! `call_webhook url secret [payload]`: a signed JSON POST to the customer's own app
//! (provisioning), retried until it answers 2xx. Templates fill the URL's path and query
//! (never its scheme or host: those are written literally, so event data cannot choose
//! where the signed request goes; the values are percent-encoded) and the payload's
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
use crate::rules::template::{Escape, Text};

pub const KEYS: &[&str] = &["url", "secret", "payload"];

#[derive(Debug, Clone, PartialEq)]
pub struct CallWebhook {
    pub url: Text,
    /// The URL's literal `scheme://host[:port]`, which rendering must keep.
    pub origin: String,
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
        let url = c
            .fields
            .scalar(at, "url", true, "your app's endpoint, https://…")
            .and_then(|source| match fixed_origin(&source) {
                Ok(origin) => {
                    let origin = origin.to_owned();
                    c.template(&at.path_of("url"), source)
                        .map(|url| (url, origin))
                }
                Err(e) => {
                    c.fields.problem(at.path_of("url"), e);
                    None
                }
            });
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
        url.zip(secret).map(|((url, origin), secret)| Self {
            url,
            origin,
            secret,
            payload,
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        let url = r
            .text_for(&self.url, Escape::UrlComponent)?
            .trim()
            .to_owned();
        let keeps_origin = url
            .strip_prefix(self.origin.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']));
        if !is_http_url(&url) || !keeps_origin {
            return Err(format!(
                "call_webhook url `{url}` does not keep the configured scheme and host"
            ));
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

/// The `scheme://host[:port]` a URL template starts with, written literally and followed
/// by a literal `/` or `?` before any template: what keeps the host out of event data's
/// reach (a template right after the host could add `@evil.example` or `.evil.example`).
fn fixed_origin(source: &str) -> Result<&str, String> {
    let cut = ["{{", "{%", "{#"]
        .iter()
        .filter_map(|m| source.find(m))
        .min()
        .unwrap_or(source.len());
    let literal = &source[..cut];
    let scheme_len = if literal.starts_with("https://") {
        "https://".len()
    } else if literal.starts_with("http://") {
        "http://".len()
    } else {
        return Err(format!(
            "`{source}` is not an http(s):// URL (write the scheme and host out: templates may fill the path and query only)"
        ));
    };
    let rest = &literal[scheme_len..];
    let end = match rest.find(['/', '?', '#']) {
        Some(end) => end,
        None if cut == source.len() => rest.len(),
        None => {
            return Err(format!(
                "`{source}`: templates may fill the path and query only; write the host literally, followed by /"
            ));
        }
    };
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') {
        return Err(format!(
            "`{source}` has no plain host (scheme://host[:port]/path, no user@)"
        ));
    }
    Ok(&source[..scheme_len + end])
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
