//! Text from outside made safe to show: what a registry, an image or a file says may
//! reach a terminal, a log line or `bootsource status`, and must do nothing there.
//!
//! Control characters (but tab) and Unicode's bidi overrides are shown as escapes
//! (`\u{1b}`, `\u{a}`): nothing can move the cursor, retitle the window, start a line
//! of its own or reorder what is shown. [`printable`] also cuts long text.

/// `text` with control characters and bidi overrides escaped.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text.chars());
    out
}

/// `text` escaped as [`escape_controls`] does, cut to `max` characters with `…`.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    push_escaped(&mut out, chars.by_ref().take(max));
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

fn push_escaped(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        match c {
            '\t' => out.push(c),
            c if c.is_control() || is_bidi_control(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
}

/// Unicode's explicit direction formatting characters (embeddings, overrides, isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_keeps_tabs_and_cuts() {
        assert_eq!(
            escape_controls("a\u{1b}[31mred\nx\ty\u{202e}z\u{9b}"),
            "a\\u{1b}[31mred\\u{a}x\ty\\u{202e}z\\u{9b}"
        );
        let cut = printable(&"x".repeat(1000), 10);
        assert_eq!(cut, format!("{}…", "x".repeat(10)));
        assert_eq!(printable("short", 10), "short");
    }
}
