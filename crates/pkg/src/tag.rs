//! Tag templates and reference expansion.
//!
//! The reference renders a package's tag with Go's `text/template`, given a
//! map with one key, `Hash`. In practice the only useful template is literal
//! text around `{{.Hash}}` (`v1-{{.Hash}}`, `{{.Hash}}-debug`), so that is
//! the subset implemented here: a tiny, total parser instead of a template
//! engine. Everything else inside `{{ }}` is rejected up front with an
//! "invalid tag template" error, rather than being rendered into a tag that
//! would silently differ from the reference's.

use std::fmt;

/// A parsed tag template: literal text with `{{.Hash}}` holes.
///
/// ```
/// let t = linuxkit_pkg::TagTemplate::parse("v1-{{ .Hash }}").unwrap();
/// assert_eq!(t.render("abc"), "v1-abc");
/// assert!(linuxkit_pkg::TagTemplate::parse("{{.Tag}}").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hash,
}

/// Why a tag template was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl TagTemplate {
    /// Parses `template`. Actions are `{{.Hash}}`, optionally with
    /// whitespace inside the braces; `{{` anywhere else is an error. A `}}`
    /// outside an action is literal text, as in Go.
    pub fn parse(template: &str) -> Result<TagTemplate, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError(format!(
                    "unclosed action `{}`",
                    &rest[open..]
                )));
            };
            let action = &after[..close];
            if action.trim() != ".Hash" {
                return Err(TemplateError(format!(
                    "unsupported action `{{{{{action}}}}}`; only `{{{{.Hash}}}}` is supported"
                )));
            }
            pieces.push(Piece::Hash);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(TagTemplate { pieces })
    }

    /// The tag for a package whose hash is `hash`.
    pub fn render(&self, hash: &str) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Hash => hash,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_literal_text_and_hash() {
        for (tmpl, want) in [
            ("{{.Hash}}", "h"),
            ("{{ .Hash }}", "h"),
            ("{{\t.Hash\n}}", "h"),
            ("v1-{{.Hash}}", "v1-h"),
            ("{{.Hash}}-{{.Hash}}", "h-h"),
            ("fixed", "fixed"),
            ("", ""),
            ("a}}b", "a}}b"),
        ] {
            assert_eq!(
                TagTemplate::parse(tmpl).unwrap().render("h"),
                want,
                "{tmpl}"
            );
        }
    }

    #[test]
    fn rejects_everything_else() {
        for tmpl in [
            "{{.Hash",
            "{{}}",
            "{{.hash}}",
            "{{.Tag}}",
            "{{- .Hash}}",
            "{{.Hash | printf \"%s\"}}",
            "{{/* c */}}",
            "x{{",
        ] {
            assert!(TagTemplate::parse(tmpl).is_err(), "{tmpl}");
        }
        assert_eq!(
            TagTemplate::parse("{{.Tag}}").unwrap_err().to_string(),
            "unsupported action `{{.Tag}}`; only `{{.Hash}}` is supported"
        );
        assert_eq!(
            TagTemplate::parse("a-{{.Hash").unwrap_err().to_string(),
            "unclosed action `{{.Hash`"
        );
    }
}
