//! `notify_slack url text`: a message to a Slack incoming webhook (the URL is a secret).

use super::is_http_url;
use crate::basics::{At, Secret};
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::{Escape, Text};

pub const KEYS: &[&str] = &["url", "text"];

#[derive(Debug, Clone, PartialEq)]
pub struct NotifySlack {
    pub url: Secret,
    pub text: Text,
}

impl NotifySlack {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let url = c.secret(at, "url", "a Slack incoming-webhook URL");
        if let Some(url) = &url
            && !is_http_url(url.expose())
        {
            // The URL is the secret: never echo it.
            c.fields.problem(
                at.path_of("url"),
                "is not an http(s):// URL (value not shown: it is a secret)",
            );
        }
        let text = c.text(at, "text", true, "the message");
        url.zip(text).map(|(url, text)| Self { url, text })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::NotifySlack {
            url: self.url.clone(),
            text: r.text_for(&self.text, Escape::Slack)?,
        })
    }

    /// Slack is not HubSpot: nothing.
    pub(crate) fn needs(&self, _: &mut Needs) {}
}
