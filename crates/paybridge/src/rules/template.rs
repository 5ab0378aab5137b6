//! Templates (text fields) and expressions (`if`): one minijinja environment with lenient
//! undefined values, so a missing value renders as an empty string, and `none` too.

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

/// A text field: literal, or a template compiled into the rule set's environment under
/// the field's config path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Literal(String),
    Template(String),
}

/// Where a rendered text goes, and so how the values filled into it are escaped. Only
/// the values (`{{ … }}`) are escaped: the rule's own literal text is written as the rule's
/// author wrote it (a Slack link or HTML markup they chose stays markup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Property values, subjects, names, JSON payload strings: as they are.
    Plain,
    /// Slack message text: `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`, as Slack's
    /// "Formatting text for app surfaces" (section "Escaping text") asks, so a customer
    /// named `<!channel>` or `<https://evil.example|Approve>` is shown, never a ping or a link.
    Slack,
    /// HubSpot rich-text bodies (`hs_note_body`, `hs_task_body`, ticket `content`: HubSpot
    /// stores and shows them as HTML, see HubSpot's "Using Object APIs" examples of
    /// `hs_meeting_body`): HTML-escaped.
    Html,
    /// A URL's path or query: percent-encoded, every byte but RFC 3986's unreserved ones.
    UrlComponent,
}

/// The context variable that tells the formatter the destination of this render.
pub(crate) const ESCAPE_VAR: &str = "__paybridge_escape";

impl Escape {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Slack => "slack",
            Self::Html => "html",
            Self::UrlComponent => "url",
        }
    }

    fn from_name(name: &str) -> Self {
        match name {
            "slack" => Self::Slack,
            "html" => Self::Html,
            "url" => Self::UrlComponent,
            _ => Self::Plain,
        }
    }

    /// `text` escaped for this destination.
    pub fn apply(self, text: &str) -> String {
        match self {
            Self::Plain => text.to_owned(),
            Self::Slack => text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;"),
            Self::Html => {
                let mut out = String::with_capacity(text.len());
                for c in text.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '"' => out.push_str("&quot;"),
                        '\'' => out.push_str("&#x27;"),
                        c => out.push(c),
                    }
                }
                out
            }
            Self::UrlComponent => {
                let mut out = String::with_capacity(text.len());
                for b in text.bytes() {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                        out.push(b as char);
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
                out
            }
        }
    }
}

/// The environment every template and expression of a rule set is compiled into.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // `none` (a JSON null in the context) prints as nothing, like an undefined value; other
    // values are escaped for where the text goes (see [`Escape`]). `| safe` opts out.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Ok(());
        }
        let escape = state
            .lookup(ESCAPE_VAR)
            .and_then(|v| v.as_str().map(Escape::from_name))
            .unwrap_or(Escape::Plain);
        if escape == Escape::Plain || value.is_safe() {
            return minijinja::escape_formatter(out, state, value);
        }
        let text = value.to_string();
        out.write_str(&escape.apply(&text))
            .map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
    });
    env
}

/// Whether a text field holds template syntax (else it is kept as a literal).
pub(crate) fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// A minijinja error in one line: kind, detail and (for multi-line sources) the line.
pub(crate) fn describe_error(e: &minijinja::Error) -> String {
    let mut text = e.kind().to_string();
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line().filter(|l| *l > 1) {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// Errors a trial render finds that no event could fix.
pub(crate) fn is_unknown_name(e: &minijinja::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
    )
}

#[cfg(test)]
mod tests {
    use super::Escape;
    use crate::domain::CustomerProfile;
    use crate::rules::Action;
    use crate::rules::context::context;
    use crate::rules::testing::{NOW, compile, fact, problems, rule_with};

    const HOSTILE: &str = "<!channel> <https://evil.example|Approve refund> & \"Ada\" <b>";

    fn plan(actions: &str) -> Vec<Action> {
        let ruleset = compile(&rule_with(actions)).expect("compiles");
        let f = fact("invoice.paid.json");
        let profile = CustomerProfile {
            name: Some(HOSTILE.into()),
            ..CustomerProfile::default()
        };
        let planned = ruleset.plan("evt_1", "invoice.paid", &context(&f, &profile), NOW);
        assert!(planned.warnings.is_empty(), "{:?}", planned.warnings);
        planned.steps.into_iter().map(|s| s.action).collect()
    }

    #[test]
    fn slack_text_escapes_the_values_not_the_rule() {
        let actions = plan(
            r#"{ type = "notify_slack", url = "https://hooks.slack.com/services/T/B/x", text = "<!here> Refund for {{ customer.name }} ({{ amount_formatted }}) <https://dash.example|open>" }"#,
        );
        let Action::NotifySlack { text, .. } = &actions[0] else {
            panic!("slack: {actions:?}");
        };
        assert_eq!(
            text,
            "<!here> Refund for &lt;!channel&gt; &lt;https://evil.example|Approve refund&gt; &amp; \"Ada\" &lt;b&gt; ($49.00) <https://dash.example|open>"
        );
    }

    #[test]
    fn hubspot_rich_text_bodies_are_html_escaped_and_plain_fields_are_not() {
        let actions = plan(
            r#"{ type = "create_note", body = "<p>Paid: {{ customer.name }}</p>" },
               { type = "create_task", subject = "Call {{ customer.name }}", body = "<b>{{ customer.name }}</b>" },
               { type = "create_ticket", subject = "s {{ customer.name }}", content = "{{ customer.name }}" },
               { type = "update_contact", properties = { company = "{{ customer.name }}" } }"#,
        );
        let escaped = "&lt;!channel&gt; &lt;https://evil.example|Approve refund&gt; &amp; &quot;Ada&quot; &lt;b&gt;";
        assert_eq!(
            actions[0],
            Action::CreateNote {
                body: format!("<p>Paid: {escaped}</p>")
            }
        );
        let Action::CreateTask { subject, body, .. } = &actions[1] else {
            panic!("task");
        };
        assert_eq!(
            subject,
            &format!("Call {HOSTILE}"),
            "a subject is plain text"
        );
        assert_eq!(body.as_deref(), Some(format!("<b>{escaped}</b>").as_str()));
        let Action::CreateTicket {
            subject, content, ..
        } = &actions[2]
        else {
            panic!("ticket");
        };
        assert_eq!(subject, &format!("s {HOSTILE}"));
        assert_eq!(content.as_deref(), Some(escaped));
        let Action::UpdateContact { properties, .. } = &actions[3] else {
            panic!("update");
        };
        assert_eq!(properties["company"], HOSTILE, "property values are plain");
    }

    #[test]
    fn webhook_urls_keep_their_host_and_encode_their_values() {
        let actions = plan(
            r#"{ type = "call_webhook", url = "https://app.example.com/hooks/{{ customer.name }}?email={{ customer.email }}", secret = "s" }"#,
        );
        let Action::CallWebhook { url, .. } = &actions[0] else {
            panic!("webhook");
        };
        assert!(
            url.starts_with(
                "https://app.example.com/hooks/%3C%21channel%3E%20%3Chttps%3A%2F%2Fevil.example"
            ),
            "{url}"
        );
        assert!(!url[8..].contains("//") && !url.contains(' '), "{url}");

        for bad in [
            "https://{{ customer.metadata.host }}/provision",
            "https://app.example.com{{ customer.metadata.path }}",
            "https://app.example.{{ customer.metadata.tld }}/x",
            "{{ customer.metadata.url }}",
            "https://user@app.example.com/{{ customer.id }}",
        ] {
            let found = problems(&rule_with(&format!(
                r#"{{ type = "call_webhook", url = "{bad}", secret = "s" }}"#
            )));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(
                found[0].starts_with("rules[0].actions[0].url: "),
                "{found:?}"
            );
        }
    }

    #[test]
    fn escapes_by_destination() {
        assert_eq!(
            Escape::Slack.apply("a & <b> \"c\""),
            "a &amp; &lt;b&gt; \"c\""
        );
        assert_eq!(
            Escape::Html.apply("<a href='x'>&"),
            "&lt;a href=&#x27;x&#x27;&gt;&amp;"
        );
        assert_eq!(
            Escape::UrlComponent.apply("a b/c?d=é"),
            "a%20b%2Fc%3Fd%3D%C3%A9"
        );
        assert_eq!(Escape::Plain.apply("<x>"), "<x>");
    }
}
