//! Text from outside (a tar entry's name, a registry's answer, a YAML key)
//! quoted in a message.
//!
//! An error is one line: a terminal, a log line and `grep` all rely on it,
//! and a name with a line break or an escape sequence in it must not be
//! able to forge a second message or repaint the terminal. [`OneLine`]
//! shows such text with its control characters escaped the way Rust
//! escapes them (`\n`, `\u{1b}`), and leaves every other character as it
//! is, so ordinary names read unchanged.

use std::fmt::{self, Display, Write};

/// Shows `T` on one line: its control characters (and the Unicode line and
/// paragraph separators) escaped as `\n`, `\u{1}`, the rest unchanged.
///
/// ```
/// use linuxkit_base::text::OneLine;
/// assert_eq!(OneLine("oci\n-layout\u{1}").to_string(), r"oci\n-layout\u{1}");
/// assert_eq!(OneLine("plain name").to_string(), "plain name");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OneLine<T>(pub T);

impl<T: Display> Display for OneLine<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaping(f), "{}", self.0)
    }
}

/// Whether `c` would break a message's single line or drive the terminal.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Passes text through, escaping what [`needs_escape`].
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..]
                .chars()
                .next()
                .expect("find returned a char boundary");
            write!(self.0, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_break_the_line_and_nothing_else() {
        let cases = [
            ("", ""),
            ("image:tag", "image:tag"),
            ("a\nb", r"a\nb"),
            ("\r\t\u{1b}[2J", r"\r\t\u{1b}[2J"),
            ("é ü 日本", "é ü 日本"),
            ("x\u{2028}y\u{85}", r"x\u{2028}y\u{85}"),
        ];
        for (raw, shown) in cases {
            let got = OneLine(raw).to_string();
            assert_eq!(got, shown, "{raw:?}");
            assert!(!got.chars().any(needs_escape), "{got:?}");
        }
    }

    #[test]
    fn escapes_through_nested_display() {
        let e = std::io::Error::other("entry\nname");
        assert_eq!(OneLine(&e).to_string(), r"entry\nname");
    }
}
