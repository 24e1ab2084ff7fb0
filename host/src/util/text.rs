//! Text that came from elsewhere (a provider, a plugin, a callback) made safe to show.

/// Whether a character must never reach a terminal from outside: C0 and C1 controls (ESC
/// included), bidirectional overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069,
/// U+200E, U+200F, U+061C), zero-width and invisible characters (U+200B–U+200D, U+2060–U+2065,
/// U+206A–U+206F, U+FEFF, the soft hyphen U+00AD, the tag characters U+E0000–U+E007F: they hide
/// or fake what a name shows), and the line and paragraph separators (U+2028, U+2029).
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{00AD}'
                | '\u{2060}'..='\u{2065}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// The known name nearest to a misspelt `name` (Jaro–Winkler above 0.8), for a "did you mean"
/// in an error.
pub(crate) fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(k, name), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Strips every [unsafe character](is_unsafe_char) (ANSI escapes lose their ESC and become
/// harmless text) and caps the length at `max_chars` characters. Applied to every text that
/// came from a server or a plugin before it is printed.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    clean(text, max_chars, false)
}

/// A multi-line text from a server or plugin (an API's error body) made safe to print: what
/// the single-line sanitizer strips is stripped, newlines and tabs are kept, the length is
/// capped.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn terminal_text(text: &str, max_chars: usize) -> String {
    clean(text, max_chars, true)
}

fn clean(text: &str, max_chars: usize, keep_lines: bool) -> String {
    let kept = |c: &char| (keep_lines && matches!(c, '\n' | '\t')) || !is_unsafe_char(*c);
    let mut out = String::new();
    for (n, c) in text.chars().filter(kept).enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// An error and its causes on one line, `outer: inner: innermost`, each cause once (a
/// driver's error often ends with its cause's text, and `#[error(transparent)]` layers always
/// do): for a log line or an error message. Not sanitized (see [`terminal_text`]).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        // `#[error(transparent)]` layers repeat their cause's text.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_escapes_and_caps() {
        assert_eq!(sanitize("a\u{1b}[31mred\r\nx", 100), "a[31mredx");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        // Bidi overrides, zero-width characters, separators, C1 controls.
        assert_eq!(
            sanitize("a\u{202E}b\u{2066}c\u{200B}d\u{2028}e\u{85}f\u{9b}g", 100),
            "abcdefg"
        );
        // Marks and invisible characters that hide or fake what a name shows; letters of
        // other scripts stay.
        assert_eq!(
            sanitize(
                "a\u{61C}b\u{2060}c\u{FEFF}d\u{AD}e\u{206A}f\u{E0041}g\u{200D}h ü ж 日",
                100
            ),
            "abcdefgh ü ж 日"
        );
        assert_eq!(
            terminal_text("a\n\tb\u{1b}[2J\u{202e}c\r", 100),
            "a\n\tb[2Jc"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot refresh")]
    struct Outer(#[source] Transparent);

    /// Says exactly what its cause says, as `#[error(transparent)]` layers do.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Transparent(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Inner;

    #[test]
    fn an_error_chain_names_each_cause_once() {
        assert_eq!(
            error_chain(&Outer(Transparent(Inner))),
            "cannot refresh: connection refused"
        );
        assert_eq!(error_chain(&Inner), "connection refused");
    }

    #[test]
    fn the_nearest_known_name_is_offered_only_when_close() {
        let known = ["timeout_secs", "proxy", "max_body_bytes"];
        assert_eq!(nearest("timeout_sec", known), Some("timeout_secs"));
        assert_eq!(nearest("proxxy", known), Some("proxy"));
        assert_eq!(nearest("colour", known), None);
    }
}
