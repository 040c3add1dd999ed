//! Escaping of text for human output (terminal, log file, stderr). A file
//! name may hold any character but `/` and NUL, so a name printed as is
//! could move the cursor, recolour or clear the terminal (ESC, CSI), or
//! forge a report line of its own (`\n`, `\r`). Every human line passes
//! through [`escape`]; the `--json` report keeps names exact, escaped by JSON
//! itself.
//!
//! Escaped: C0 controls (U+0000–U+001F), DEL (U+007F), C1 controls
//! (U+0080–U+009F, CSI among them) and the bidirectional formatting
//! characters that reorder what a terminal shows (U+061C, U+200E, U+200F,
//! U+202A–U+202E, U+2066–U+2069). A backslash is not escaped, so UNC paths
//! read as usual; a name that really holds `\n` as two characters therefore
//! prints like an escaped newline, which is ambiguous but forges nothing.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True when `c` is shown escaped.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every control and bidi formatting character written as an
/// escape (`\n`, `\r`, `\t`, `\x1b`, `\u{9b}`, `\u{202e}`); borrowed when
/// nothing needs escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "",
            "a/b c.txt",
            "ünïcödé ✓ 文件",
            "\\\\srv\\share\\dir",
            "100%",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        let cases = [
            ("a\nb", "a\\nb"),
            ("a\r\n", "a\\r\\n"),
            ("tab\there", "tab\\there"),
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("\x00\x07\x08\x7f", "\\x00\\x07\\x08\\x7f"),
            ("c1\u{9b}2J", "c1\\u{9b}2J"),
            ("\u{85}", "\\u{85}"),
            ("abc\u{202e}txt.exe", "abc\\u{202e}txt.exe"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn escaped_text_is_one_line_without_controls() {
        let all: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let e = escape(&all);
        assert!(!e.chars().any(needs_escape), "{e:?}");
        assert_eq!(e.lines().count(), 1);
    }
}
