//! Bytes someone else chose (an API's answer), made safe to show on a terminal: what a
//! terminal would act on is written as a visible escape instead, so an answer cannot set the
//! clipboard (OSC 52), the window title, clear the screen, move the cursor or reorder the text.

/// Escapes a stream of bytes for a terminal, chunk by chunk (a character or a `\r\n` split
/// between two chunks is kept whole):
/// - text, newlines and tabs as they are, and a carriage return that ends a line (`\r\n`);
/// - C0 controls (ESC included), DEL and a lone carriage return as `\xNN`;
/// - C1 controls, bidirectional overrides and isolates, zero-width and invisible characters,
///   line and paragraph separators as `\u{NNNN}` (the characters [`crate::util::text::is_unsafe_char`]
///   names);
/// - bytes that are not UTF-8 as `\xNN`.
#[derive(Debug, Default)]
pub(crate) struct Escaper {
    /// The end of the last chunk that could not be decided yet: an incomplete character, or a
    /// carriage return whose next byte is still to come.
    held: Vec<u8>,
}

impl Escaper {
    /// Escapes `chunk` (after whatever the last chunk left undecided) into `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let joined;
        let mut input = chunk;
        if !self.held.is_empty() {
            self.held.extend_from_slice(chunk);
            joined = std::mem::take(&mut self.held);
            input = &joined;
        }
        let used = escape(input, out, false);
        self.held.extend_from_slice(&input[used..]);
    }

    /// Escapes what is still held (the stream ended): an incomplete character's bytes as
    /// `\xNN`, a final carriage return as `\x0d`.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        escape(&held, out, true);
    }
}

/// Escapes `input` into `out`; returns how many bytes were used. Unless `last`, an incomplete
/// character or a carriage return at the very end is left for the next chunk.
fn escape(input: &[u8], out: &mut Vec<u8>, last: bool) -> usize {
    let mut rest = input;
    while !rest.is_empty() {
        // The plain run (printable ASCII, `\n`, `\t`) goes out in one copy.
        let plain = rest
            .iter()
            .position(|&b| !(b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)))
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..plain]);
        rest = &rest[plain..];
        let Some(&b) = rest.first() else {
            break;
        };
        if b == b'\r' {
            match rest.get(1) {
                Some(b'\n') => {
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[2..];
                }
                None if !last => break,
                _ => {
                    hex(b, out);
                    rest = &rest[1..];
                }
            }
            continue;
        }
        if b < 0x80 {
            hex(b, out);
            rest = &rest[1..];
            continue;
        }
        // One character, decoded by itself (never the rest of the body again: linear time).
        let width = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        let take = width.min(rest.len());
        let c = match std::str::from_utf8(&rest[..take]) {
            Ok(text) => text.chars().next().expect("not empty"),
            // An incomplete character at the end: the next chunk may complete it.
            Err(e) if e.error_len().is_none() && !last => break,
            Err(e) => {
                let bad = e.error_len().unwrap_or(take);
                for &b in &rest[..bad] {
                    hex(b, out);
                }
                rest = &rest[bad..];
                continue;
            }
        };
        if crate::util::text::is_unsafe_char(c) {
            out.extend_from_slice(format!("\\u{{{:04x}}}", u32::from(c)).as_bytes());
        } else {
            out.extend_from_slice(&rest[..take]);
        }
        rest = &rest[take..];
    }
    input.len() - rest.len()
}

fn hex(b: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(chunks: &[&[u8]]) -> String {
        let mut escaper = Escaper::default();
        let mut out = Vec::new();
        for chunk in chunks {
            escaper.push(chunk, &mut out);
        }
        escaper.finish(&mut out);
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn what_a_terminal_acts_on_is_shown_not_obeyed() {
        // OSC 52 (clipboard), a title, clear-screen, a C1 CSI, a bidi override, a zero-width
        // space, DEL, a lone carriage return.
        let input = "a\x1b]52;c;aGk=\x07b\x1b]0;title\x07\x1b[2J\u{9b}31m\u{202e}x\u{200b}\x7f\rz";
        assert_eq!(
            escaped(&[input.as_bytes()]),
            "a\\x1b]52;c;aGk=\\x07b\\x1b]0;title\\x07\\x1b[2J\\u{009b}31m\\u{202e}x\\u{200b}\\x7f\\x0dz"
        );
    }

    #[test]
    fn text_lines_and_characters_split_between_chunks_are_kept() {
        let text = "{\"name\": \"Zoë — 東京 😀\"}\r\n\tnext\n";
        let bytes = text.as_bytes();
        // Every split point, through the middle of each multi-byte character and the `\r\n`.
        for at in 0..=bytes.len() {
            assert_eq!(
                escaped(&[&bytes[..at], &bytes[at..]]),
                text,
                "split at {at}"
            );
        }
        // A byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(escaped(&singles), text);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_as_bytes() {
        assert_eq!(escaped(&[b"a\xffb\xc3"]), "a\\xffb\\xc3");
        assert_eq!(escaped(&[b"\xe6\x9d", b"x"]), "\\xe6\\x9dx");
        assert_eq!(escaped(&[b"end\r"]), "end\\x0d");
    }
}
