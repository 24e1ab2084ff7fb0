//! Text that came from elsewhere (a provider, a plugin, a callback) made safe to show.

/// Strips control characters (ANSI escapes lose their ESC and become harmless text) and caps
/// the length at `max_chars` characters. Apply it to every text that came from a server or a
/// plugin before it is printed.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().filter(|c| !c.is_control()).enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// An error and its causes on one line, `outer: inner: innermost`, for a log line.
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
    }
}
