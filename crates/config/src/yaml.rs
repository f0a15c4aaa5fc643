//! A small YAML document tree that remembers where every node came from.
//!
//! We build our own tree from `saphyr-parser` events instead of using a YAML
//! DOM crate because every later error ("unknown field", "duplicate name",
//! "volume is read-only") has to point at a line and column, and because we
//! read scalars leniently, the way go-yaml v2 reads them into typed fields
//! (`mode: 0755` is the text `0755`, not the number 493; `readonly: yes` is
//! true), which needs the original scalar text and whether it was quoted.
//! The reference is stricter: it decodes with `yaml.v3` into untyped values
//! and checks them against a JSON schema, which refuses those forms; we
//! accept them and warn ([`resolve_v3`] says what the reference sees).
//!
//! Anchors, aliases and `<<` merge keys are supported. Alias expansion and
//! nesting depth are bounded so hostile input cannot exhaust memory or stack.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

use crate::error::{ConfigError, Mark};

/// Nesting deeper than this is refused; real configs are fewer than 10 deep.
pub(crate) const MAX_DEPTH: usize = 64;
/// Total nodes (after alias expansion) allowed in one document.
pub(crate) const MAX_NODES: usize = 1_000_000;
/// Total scalar text (after alias expansion) allowed in one document: a
/// large scalar repeated by aliases must not exhaust memory either.
pub(crate) const MAX_BYTES: usize = 64 << 20;

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub mark: Mark,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub text: String,
    /// Plain (unquoted, non-block) scalars are the only ones that resolve to
    /// null, booleans or numbers.
    pub plain: bool,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.plain && matches!(s.text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
            Kind::Scalar(_) if self.is_null() => "nothing (null)".into(),
            Kind::Scalar(s) => match resolve(s) {
                Resolved::Bool(b) => format!("the boolean `{b}`"),
                Resolved::Int(_) | Resolved::UInt(_) | Resolved::Float(_) => {
                    format!("the number `{}`", s.text)
                }
                _ => format!("the string {:?}", s.text),
            },
        }
    }
}

/// A plain scalar resolved the way go-yaml v2 does (our lenient reading):
/// YAML 1.1 booleans (`yes`, `off`, ...), and integers in decimal, hex and
/// octal (`0o17` and the 1.1 form `017`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

pub(crate) fn resolve(s: &Scalar) -> Resolved<'_> {
    if !s.plain {
        return Resolved::Str(&s.text);
    }
    let t = s.text.as_str();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        _ => {}
    }
    if let Some(b) = resolve_bool(t) {
        return Resolved::Bool(b);
    }
    if let Some(i) = resolve_int(t) {
        return i;
    }
    if let Some(f) = resolve_float(t) {
        return Resolved::Float(f);
    }
    Resolved::Str(t)
}

pub(crate) fn resolve_bool(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            Some(false)
        }
        _ => None,
    }
}

pub(crate) fn resolve_int(t: &str) -> Option<Resolved<'static>> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return None;
    }
    let digits = body.replace('_', "");
    let parsed = if let Some(h) = digits.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if let Some(b) = digits.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()
    } else if digits.bytes().all(|c| c.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    }?;
    if neg {
        if parsed <= i64::MAX as u64 + 1 {
            Some(Resolved::Int((parsed as i128).wrapping_neg() as i64))
        } else {
            None
        }
    } else {
        Some(Resolved::UInt(parsed))
    }
}

pub(crate) fn resolve_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let ok = t.bytes().any(|c| c.is_ascii_digit())
        && t.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if ok { t.parse().ok() } else { None }
}

/// What the reference's reader (`yaml.v3` decoding into `interface{}`,
/// then a JSON schema) makes of a plain scalar: YAML 1.2 booleans only
/// (`yes` is a string there), numbers in decimal, hex, octal (`0755` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V3 {
    Null,
    Bool,
    Number,
    Str,
}

pub(crate) fn resolve_v3(s: &Scalar) -> V3 {
    if !s.plain {
        return V3::Str;
    }
    let t = s.text.as_str();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => V3::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => V3::Bool,
        _ if resolve_int(t).is_some() || resolve_float(t).is_some() => V3::Number,
        _ => V3::Str,
    }
}

fn mark_of(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// A parsed configuration file: its first YAML document, and where a second
/// document starts if there is one (the reference decodes only the first and
/// ignores the rest of the stream; so do we, with a warning).
pub(crate) struct Parsed {
    pub root: Node,
    pub second_document: Option<Mark>,
}

/// Parses the first YAML document of `text`. An empty document is an empty
/// mapping. Whatever follows a second `---` is not read at all, as with the
/// reference's `yaml.v3` decoder, which stops after one document.
pub(crate) fn parse(text: &str) -> Result<Node, ConfigError> {
    parse_first(text).map(|p| p.root)
}

/// Like [`parse`], also saying where an ignored second document starts.
pub(crate) fn parse_first(text: &str) -> Result<Parsed, ConfigError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut docs = 0usize;
    let mut second_document = None;
    for ev in &mut parser {
        let (ev, span) = match ev {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                let mark = Mark {
                    line: m.line(),
                    column: m.col() + 1,
                };
                return Err(syntax_error(text, &b, mark, m.index(), e.info()));
            }
        };
        let mark = mark_of(&span);
        match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    second_document = Some(mark);
                    break;
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                b.bytes += text.len();
                let plain = matches!(style, ScalarStyle::Plain);
                let node = Node {
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    }),
                    mark,
                };
                b.push_value(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).ok_or_else(|| {
                    ConfigError::at(mark, "alias refers to an anchor that is not defined")
                })?;
                // Check the size before copying the aliased node.
                let (nodes, bytes) = size(node);
                b.count += nodes;
                b.bytes += bytes;
                if b.count > MAX_NODES || b.bytes > MAX_BYTES {
                    return Err(ConfigError::at(
                        mark,
                        "document too large after expanding aliases",
                    ));
                }
                let node = node.clone();
                b.push_value(node, 0)?;
            }
            Event::SequenceStart(anchor, _) => b.open(Open::Seq(Vec::new()), mark, anchor)?,
            Event::MappingStart(anchor, _) => {
                b.open(Open::Map(Vec::new(), None, HashMap::new()), mark, anchor)?
            }
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
        }
    }
    let root = b.root.unwrap_or_else(|| Node {
        kind: Kind::Map(Vec::new()),
        mark: Mark { line: 1, column: 1 },
    });
    Ok(Parsed {
        root,
        second_document,
    })
}

/// Turns the parser's message into one that says what to change, at the
/// place to change it.
fn syntax_error(text: &str, b: &Builder, mark: Mark, index: usize, info: &str) -> ConfigError {
    if info.contains("tab")
        && let Some(at) = tab_in_indentation(text, mark.line)
    {
        return ConfigError::at(
            at,
            "invalid YAML: a tab is used for indentation; indent with spaces only",
        );
    }
    if info.contains("unknown anchor") {
        let name: String = text
            .chars()
            .skip(index)
            .skip_while(|c| *c == '*')
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
            .collect();
        return ConfigError::at(
            mark,
            format!(
                "invalid YAML: alias `*{name}` refers to an anchor that is not defined; define it first with `&{name}`"
            ),
        );
    }
    // Inside `[...]` or `{...}`, most errors are a missing closing bracket.
    let open = b
        .stack
        .last()
        .and_then(|(_, at, _)| match char_at(text, *at)? {
            '[' => Some((*at, "[", "]")),
            '{' => Some((*at, "{", "}")),
            _ => None,
        });
    let about_brackets = !info.contains("quoted scalar");
    if let (Some((at, open, close)), true) = (open, about_brackets) {
        let rest_is_blank = text
            .chars()
            .skip(index)
            .collect::<String>()
            .lines()
            .all(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with('#')
            });
        if rest_is_blank {
            return ConfigError::at(
                at,
                format!("invalid YAML: this `{open}` is never closed; add the missing `{close}`"),
            );
        }
        return ConfigError::at(
            mark,
            format!(
                "invalid YAML: {info} (inside the `{open}` at line {} column {}; is a `{close}` missing?)",
                at.line, at.column
            ),
        );
    }
    if info.contains("quoted scalar") {
        return ConfigError::at(
            mark,
            format!("invalid YAML: {info}; is the closing quote of this string missing?"),
        );
    }
    if info.contains("mapping values are not allowed") {
        return ConfigError::at(
            mark,
            format!("invalid YAML: {info}; put a value that contains `: ` in quotes"),
        );
    }
    ConfigError::at(mark, format!("invalid YAML: {info}"))
}

fn char_at(text: &str, m: Mark) -> Option<char> {
    text.split('\n')
        .nth(m.line.checked_sub(1)?)?
        .chars()
        .nth(m.column.checked_sub(1)?)
}

/// The first tab in the indentation of line `near` (1-based), of the line
/// after it, or else of the closest line before it.
fn tab_in_indentation(text: &str, near: usize) -> Option<Mark> {
    let lines: Vec<&str> = text.split('\n').collect();
    let tab_at = |line: usize| -> Option<Mark> {
        let l = lines.get(line.checked_sub(1)?)?;
        let indent: Vec<char> = l.chars().take_while(|c| matches!(c, ' ' | '\t')).collect();
        if indent.len() == l.trim_end_matches('\r').chars().count() {
            return None; // a blank line
        }
        let col = indent.iter().position(|c| *c == '\t')?;
        Some(Mark {
            line,
            column: col + 1,
        })
    };
    [near, near + 1]
        .into_iter()
        .chain((1..near).rev())
        .find_map(tab_at)
}

/// Nodes in `n`, and bytes of scalar text.
fn size(n: &Node) -> (usize, usize) {
    let add = |a: (usize, usize), b: (usize, usize)| (a.0 + b.0, a.1 + b.1);
    match &n.kind {
        Kind::Scalar(s) => (1, s.text.len()),
        Kind::Seq(v) => v.iter().map(size).fold((1, 0), add),
        Kind::Map(v) => v
            .iter()
            .map(|(k, v)| add(size(k), size(v)))
            .fold((1, 0), add),
    }
}

enum Open {
    Seq(Vec<Node>),
    /// Entries so far, a key waiting for its value, and the line of each
    /// key so far (a hash map: checking each key against all earlier ones
    /// made a mapping with many keys take quadratic time).
    Map(Vec<(Node, Node)>, Option<Node>, HashMap<String, usize>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Open, Mark, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    count: usize,
    bytes: usize,
}

impl Builder {
    fn open(&mut self, open: Open, mark: Mark, anchor: usize) -> Result<(), ConfigError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ConfigError::at(
                mark,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push((open, mark, anchor));
        Ok(())
    }

    fn close(&mut self) -> Result<(), ConfigError> {
        let (open, mark, anchor) = self.stack.pop().expect("parser balances start/end events");
        let kind = match open {
            Open::Seq(v) => Kind::Seq(v),
            Open::Map(entries, _, _) => Kind::Map(apply_merge_keys(entries)?),
        };
        self.push_value(Node { kind, mark }, anchor)
    }

    fn push_value(&mut self, node: Node, anchor: usize) -> Result<(), ConfigError> {
        self.count += 1;
        if self.count > MAX_NODES {
            return Err(ConfigError::at(node.mark, "document too large"));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Open::Seq(v), _, _)) => v.push(node),
            Some((Open::Map(entries, pending, lines), _, _)) => match pending.take() {
                None => {
                    if !matches!(node.kind, Kind::Scalar(_)) {
                        return Err(ConfigError::at(
                            node.mark,
                            "mapping keys must be plain strings, not lists or mappings",
                        ));
                    }
                    *pending = Some(node);
                }
                Some(key) => {
                    let name = key_text(&key);
                    if name != "<<" {
                        if let Some(first) = lines.get(name) {
                            return Err(ConfigError::at(
                                key.mark,
                                format!(
                                    "duplicate key `{name}`: it is already set at line {first}; remove one of them"
                                ),
                            ));
                        }
                        lines.insert(name.to_string(), key.mark.line);
                    }
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }
}

pub(crate) fn key_text(k: &Node) -> &str {
    match &k.kind {
        Kind::Scalar(s) => &s.text,
        _ => "",
    }
}

/// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`): keys of the merged
/// mappings are added unless the mapping already defines them.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, ConfigError> {
    let is_merge = |k: &Node| key_text(k) == "<<" && matches!(&k.kind, Kind::Scalar(s) if s.plain);
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    let mut own_keys = std::collections::HashSet::new();
    for (k, v) in entries {
        if is_merge(&k) {
            let sources = match v.kind {
                Kind::Map(m) => vec![m],
                Kind::Seq(items) => items
                    .into_iter()
                    .map(|i| match i.kind {
                        Kind::Map(m) => Ok(m),
                        _ => Err(ConfigError::at(i.mark, "`<<` merges mappings only")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(ConfigError::at(v.mark, "`<<` merges mappings only")),
            };
            merged.extend(sources.into_iter().flatten());
        } else {
            own_keys.insert(key_text(&k).to_string());
            own.push((k, v));
        }
    }
    for (k, v) in merged {
        if own_keys.insert(key_text(&k).to_string()) {
            own.push((k, v));
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: &str) -> Scalar {
        Scalar {
            text: t.into(),
            plain: true,
        }
    }

    #[test]
    fn resolves_like_go_yaml_v2() {
        assert_eq!(resolve(&scalar("yes")), Resolved::Bool(true));
        assert_eq!(resolve(&scalar("Off")), Resolved::Bool(false));
        assert_eq!(resolve(&scalar("0755")), Resolved::UInt(0o755));
        assert_eq!(resolve(&scalar("0x10")), Resolved::UInt(16));
        assert_eq!(resolve(&scalar("-5")), Resolved::Int(-5));
        assert_eq!(resolve(&scalar("~")), Resolved::Null);
        assert_eq!(resolve(&scalar("1.5")), Resolved::Float(1.5));
        assert_eq!(resolve(&scalar("abc")), Resolved::Str("abc"));
        let quoted = Scalar {
            text: "yes".into(),
            plain: false,
        };
        assert_eq!(resolve(&quoted), Resolved::Str("yes"));
    }

    #[test]
    fn marks_are_one_based() {
        let n = parse("a:\n  b: 1\n").unwrap();
        let Kind::Map(m) = n.kind else { panic!() };
        let Kind::Map(inner) = &m[0].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.mark, Mark { line: 2, column: 3 });
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        let Kind::Map(m) = n.kind else { panic!() };
        let Kind::Map(other) = &m[1].1.kind else {
            panic!()
        };
        let keys: Vec<_> = other.iter().map(|(k, _)| key_text(k)).collect();
        assert_eq!(keys, ["y", "x"]);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let text = "[".repeat(10_000);
        assert!(parse(&text).is_err());
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn large_scalar_repeated_by_aliases_is_bounded() {
        let big = "x".repeat(1 << 20);
        let text = format!("init: [&a \"{big}\"{}]\n", ", *a".repeat(100));
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let text = format!("init: [&a \"{big}\"{}]\n", ", *a".repeat(10));
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn many_keys_are_not_quadratic() {
        let mut text = String::from("m:\n");
        for i in 0..200_000 {
            text.push_str(&format!("  k{i}: v\n"));
        }
        let start = std::time::Instant::now();
        parse(&text).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        text.push_str("  k7: again\n");
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("duplicate key `k7`"), "{err}");
    }
}
