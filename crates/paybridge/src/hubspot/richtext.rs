//! What of a rich-text body survives HubSpot's sanitiser. Notes' and tasks' bodies
//! (`hs_note_body`, `hs_task_body`) are html properties; HubSpot stores its own editor
//! markup (the Using Object APIs guide shows
//! `<div style="" dir="auto" data-top-level="true"><p style="margin:0;">…</p></div>`), and
//! whether an API-written body comes back byte for byte, wrapped, or without its comments
//! is not published. What every HTML sanitiser keeps is the text: tags, attributes and
//! comments may be rewritten or dropped, entities re-encoded, but a text node stays a text
//! node. So a body is recognised by a marker in its *text*, written only with characters no
//! HTML encoding changes (letters, digits, `_ : . -` and square brackets), and compared
//! with the body's text content (tags and comments removed, entities decoded).

/// The text content of an HTML fragment: tags and comments removed, the usual entities
/// decoded, runs of whitespace (including non-breaking spaces) made one space.
pub fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
        } else if rest.starts_with('<') {
            out.push(' ');
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push_str(&decode(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let entity = tail
            .find(';')
            .map(|end| &tail[1..end])
            .filter(|e| e.len() <= 8);
        let decoded = entity.and_then(|e| match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => e
                .strip_prefix("#x")
                .or_else(|| e.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        });
        match (decoded, entity) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &tail[e.len() + 2..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `html`'s text carries `marker` (see the module's note on why this survives).
pub fn has_marker(html: &str, marker: &str) -> bool {
    text_of(html).contains(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &str = "[paybridge:evt_1:refund:0]";

    #[test]
    fn the_marker_survives_every_rewriting_we_know_of() {
        let written = format!("Ask why &amp; when.<p>{MARK}</p>");
        for stored in [
            written.clone(),
            format!(
                "<div style=\"\" dir=\"auto\" data-top-level=\"true\"><p style=\"margin:0;\">{written}</p></div>"
            ),
            format!("<!-- x -->Ask why &#38; when.<P class=x>{MARK}</P>"),
            format!("Ask why &amp;&nbsp;when.<br/>{MARK}"),
        ] {
            assert!(has_marker(&stored, MARK), "{stored}");
        }
        assert_eq!(text_of(&written), format!("Ask why & when. {MARK}"));
    }

    #[test]
    fn another_steps_marker_does_not_match() {
        assert!(!has_marker("<p>[paybridge:evt_1:refund:01]</p>", MARK));
        assert!(!has_marker("<!-- [paybridge:evt_1:refund:0] -->", MARK));
        assert!(!has_marker("&lt;broken &amp", MARK));
    }
}
