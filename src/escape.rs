//! The one escaping function for text from outside the program: process names
//! and command lines, snapshot metadata, namespace names and paths.
//!
//! Any user can name a process `\x1b]0;owned\x07` or put a newline in it, and
//! whoever wrote a snapshot chose its host name. Printed raw, such text moves
//! the cursor, retitles the terminal or forges report lines. [`visible`] shows
//! every control character as an escape instead: C0 (`\x00`-`\x1f`, with `\n`,
//! `\r` and `\t` by name), DEL (`\x7f`) and C1 (U+0080-U+009F, `\x80`-`\x9f`).
//! A backslash is doubled, so the shown text maps back to exactly one original.
//! Tables, CSV, `check`, stderr and the Prometheus labels use it; JSON needs
//! nothing more than serde's own escaping.

use std::borrow::Cow;
use std::fmt;

/// True for the characters [`visible`] rewrites.
fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control()
}

/// `s` with control characters shown as escapes and backslashes doubled.
/// Borrows when there is nothing to escape (the common case).
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_visible(&mut out, s);
    Cow::Owned(out)
}

/// Appends `s` to `out` as [`visible`] shows it.
pub fn push_visible(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // char::is_control is exactly C0, DEL and C1 (Unicode category Cc).
            c if c.is_control() => {
                use fmt::Write as _;
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Formats as [`visible`] does, for `format!` and `write!`.
pub struct Visible<'a>(pub &'a str);

impl fmt::Display for Visible<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&visible(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["nginx", "pid:12 (python3)", "", "héllo wörld ✓", "a b,c\"d"] {
            assert!(matches!(visible(s), Cow::Borrowed(x) if x == s), "{s:?}");
        }
    }

    #[test]
    fn every_control_character_is_shown() {
        assert_eq!(visible("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(
            visible("h\n\nDiagnoses:\n  [OK]"),
            "h\\n\\nDiagnoses:\\n  [OK]"
        );
        assert_eq!(visible("a\tb\rc\0d\x7f"), "a\\tb\\rc\\x00d\\x7f");
        // C1: U+009B is a one-character CSI on some terminals.
        assert_eq!(visible("\u{9b}2J\u{85}"), "\\x9b2J\\x85");
        assert_eq!(visible("back\\slash"), "back\\\\slash");
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let s = char::from_u32(c).unwrap().to_string();
            let v = visible(&s);
            assert!(v.chars().all(|c| !c.is_control()), "{c:#x}: {v:?}");
            assert!(v.starts_with('\\'), "{c:#x}: {v:?}");
        }
        // Beyond C1 nothing changes.
        assert_eq!(visible("\u{a0}\u{200b}"), "\u{a0}\u{200b}");
    }

    #[test]
    fn distinct_texts_stay_distinct() {
        // A name that spells an escape is not confused with the control character.
        assert_ne!(visible("\\x1b"), visible("\x1b"));
        assert_ne!(visible("\\n"), visible("\n"));
        assert_eq!(format!("[{}]", Visible("a\nb")), "[a\\nb]");
    }
}
