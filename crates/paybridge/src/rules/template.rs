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

/// The environment every template and expression of a rule set is compiled into.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // `none` (a JSON null in the context) prints as nothing, like an undefined value.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
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
