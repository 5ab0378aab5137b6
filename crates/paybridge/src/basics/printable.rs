//! Text from outside (customer names, error messages, event fields) made safe for a
//! terminal: control characters (C0, DEL, C1: escape sequences that move the cursor, clear
//! the screen, set the window title or hyperlinks) and the Unicode bidirectional controls
//! that reorder what is shown (the "Trojan Source" characters) are written as `\u{…}`.

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character escaped (borrowed when there is none).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_reach_the_terminal_as_text() {
        assert_eq!(printable("Ada Lovelace"), "Ada Lovelace");
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(printable("a\nb\tc\rd"), "a\\u{a}b\\u{9}c\\u{d}d");
        assert_eq!(printable("x\u{9b}31m"), "x\\u{9b}31m", "C1 CSI");
        assert_eq!(printable("admin\u{202e}gnp.exe"), "admin\\u{202e}gnp.exe");
        assert_eq!(printable("café ✓"), "café ✓");
    }
}
