//! What an error message may repeat of what a client sent: enough to
//! recognise it, never the whole of it (a 200 KB model name came back
//! whole in a 400, and every log line and socket event that carried it).

use std::borrow::Cow;

/// Characters of a client's value an error repeats.
pub const ECHO_CHARS: usize = 64;

/// Longest message an error answer carries, whatever produced it (poem's
/// own parse errors quote the value they could not read).
pub const MESSAGE_CHARS: usize = 1024;

/// `value` cut to [`ECHO_CHARS`] characters, with `…` when cut; control
/// characters are shown escaped, so the message stays one plain line.
pub fn clip(value: &str) -> Cow<'_, str> {
    cut(value, ECHO_CHARS)
}

/// A whole message cut to [`MESSAGE_CHARS`] characters.
pub fn message(text: &str) -> Cow<'_, str> {
    cut(text, MESSAGE_CHARS)
}

fn cut(text: &str, max: usize) -> Cow<'_, str> {
    let fits = text.chars().nth(max).is_none();
    if fits && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if !fits {
        out.push('…');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        assert_eq!(clip("small"), "small");
        let long = "x".repeat(200_000);
        let c = clip(&long);
        assert_eq!(c.chars().count(), ECHO_CHARS + 1);
        assert!(c.ends_with('…'));
        // Exactly the limit is not cut.
        assert_eq!(clip(&"y".repeat(ECHO_CHARS)), "y".repeat(ECHO_CHARS));
        // Unicode is cut at characters, never inside one.
        let snow = "☃".repeat(100);
        assert_eq!(clip(&snow).chars().count(), ECHO_CHARS + 1);
        assert_eq!(clip("a\nb"), "a\\nb");
        assert_eq!(message(&long).chars().count(), MESSAGE_CHARS + 1);
    }
}
