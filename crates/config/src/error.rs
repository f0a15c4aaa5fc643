//! Errors that point at the file, line and column a user has to fix.

use linuxkit_base::text::OneLine;
use std::fmt;

/// A position in a configuration file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Mark {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

/// One problem in a configuration. Its `Display` form is a single line,
/// `FILE:LINE:COLUMN: MESSAGE`, the shape editors and CI logs link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<stdin>`, or an image label) the problem is in.
    pub file: Option<String>,
    /// Where in the file, when the problem is at one place.
    pub mark: Option<Mark>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl ConfigError {
    /// A problem not (yet) placed in a file.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            mark: None,
            message: message.into(),
        }
    }

    /// A problem at `mark`; the file is named later ([`ConfigError::in_file`]).
    pub fn at(mark: Mark, message: impl Into<String>) -> Self {
        ConfigError {
            file: None,
            mark: Some(mark),
            message: message.into(),
        }
    }

    /// Names the file, unless an inner step already did.
    pub fn in_file(mut self, file: &str) -> Self {
        if self.file.is_none() {
            self.file = Some(file.to_string());
        }
        self
    }

    /// Places the problem at `mark`, unless an inner step already did.
    pub fn with_mark(mut self, mark: Option<Mark>) -> Self {
        if self.mark.is_none() {
            self.mark = mark;
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.mark) {
            (Some(file), Some(m)) => {
                write!(f, "{}", OneLine(file))?;
                write!(f, ":{}:{}: ", m.line, m.column)?;
            }
            (Some(file), None) => {
                write!(f, "{}", OneLine(file))?;
                f.write_str(": ")?;
            }
            (None, Some(m)) => write!(f, "line {} column {}: ", m.line, m.column)?,
            (None, None) => {}
        }
        write!(f, "{}", OneLine(&self.message))
    }
}

impl std::error::Error for ConfigError {}

/// "did you mean `x`?" for a misspelt name among `candidates`.
pub(crate) fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given_l = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given_l, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["image", "name", "capabilities", "binds.add"];
        assert_eq!(did_you_mean("imgae", fields), Some("image"));
        assert_eq!(did_you_mean("capabilites", fields), Some("capabilities"));
        assert_eq!(did_you_mean("bind.add", fields), Some("binds.add"));
        assert_eq!(did_you_mean("zzz", fields), None);
    }

    #[test]
    fn display_is_one_line_with_location() {
        let e = ConfigError::at(Mark { line: 3, column: 5 }, "boom").in_file("a.yml");
        assert_eq!(e.to_string(), "a.yml:3:5: boom");
    }

    #[test]
    fn display_escapes_line_breaks_in_quoted_text() {
        let e = ConfigError::at(Mark { line: 1, column: 1 }, "unknown field `a\nb\u{85}`")
            .in_file("x\r.yml");
        assert_eq!(e.to_string(), "x\\r.yml:1:1: unknown field `a\\nb\\u{85}`");
    }
}
