//! The deb822 "control" format shared by `Release`, `Packages`, `*.sources`
//! and a package's `control` file.
//!
//! A file is a list of *paragraphs* separated by blank lines; a paragraph is
//! a list of `Name: value` fields; a line starting with a space or tab
//! continues the previous field. Field names are case-insensitive.
//!
//! The parser is zero-copy because a `Packages` file is ~50 MB and ~60 000
//! paragraphs: a field's value is a slice of the input that spans its
//! continuation lines, trimmed. Callers that care about lines (the hash
//! lists in `Release`, multi-line `Signed-By`) split the value themselves;
//! callers that do not (relations such as `Depends`, which may be folded
//! across lines) treat newlines as whitespace.
//!
//! Lines starting with `#` are comments (deb822 `*.sources` files use
//! them); they end the previous field.

/// One paragraph: its fields in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The value of field `name` (case-insensitive), trimmed; multi-line
    /// values keep their inner newlines.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// All fields, in file order.
    pub fn fields(&self) -> &[(&'a str, &'a str)] {
        &self.fields
    }

    /// Whether the paragraph has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Splits `text` into paragraphs.
///
/// Lines that are neither fields, continuations nor comments are errors:
/// silently dropping them would hide a truncated or corrupted index.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, String> {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    // The open field: name, start and end byte offsets of its value.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut pos = 0;
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        let start = pos;
        pos += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim().is_empty() {
            close(&mut current, &mut open, text);
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else if content.starts_with('#') {
            close(&mut current, &mut open, text);
        } else if content.starts_with([' ', '\t']) {
            match open.as_mut() {
                Some((_, _, end)) => *end = start + content.len(),
                None => {
                    return Err(format!(
                        "line {}: continuation line outside a field",
                        lineno + 1
                    ));
                }
            }
        } else {
            close(&mut current, &mut open, text);
            let Some(colon) = content.find(':') else {
                return Err(format!("line {}: expected `Name: value`", lineno + 1));
            };
            let name = &content[..colon];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("line {}: bad field name {name:?}", lineno + 1));
            }
            open = Some((name, start + colon + 1, start + content.len()));
        }
    }
    close(&mut current, &mut open, text);
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn close<'a>(p: &mut Paragraph<'a>, open: &mut Option<(&'a str, usize, usize)>, text: &'a str) {
    if let Some((name, start, end)) = open.take() {
        p.fields.push((name, text[start..end].trim()));
    }
}

/// Splits a whitespace-separated list field (`Suites: a b`, `Architectures`).
pub fn words(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
