//! Deterministic rendering of a configuration, for `build --dry-run`.
//! (`files: [{metadata: yaml|json}]` writes the reference's rendering
//! instead, from [`crate::metadata_yaml`].)
//!
//! Keys come out in schema order (struct field order) and maps (`sysctl`,
//! `annotations`) sorted, so the same configuration always renders to the
//! same bytes. Strings are written plain only when YAML would read them back
//! as the same string; otherwise they are double-quoted with JSON escapes,
//! which YAML accepts. Rendering then parsing gives back an equal config
//! (property-tested).

use serde::Serialize;
use serde_json::Value;

use crate::yaml::{Resolved, Scalar, resolve};

/// The YAML form of `value` (normally a [`crate::Moby`]).
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    let v = serde_json::to_value(value).expect("config values are always representable");
    let mut out = String::new();
    match &v {
        Value::Object(m) if m.is_empty() => out.push_str("{}\n"),
        Value::Object(m) => emit_map(m, 0, &mut out),
        Value::Array(a) if a.is_empty() => out.push_str("[]\n"),
        Value::Array(a) => emit_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// The JSON form of `value`, indented by four spaces as the reference's
/// `metadata: json` (Go's `json.MarshalIndent`) writes it.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value
        .serialize(&mut ser)
        .expect("config values are always representable");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Longest key written as `key: value`, with a margin below YAML's 1024.
const MAX_IMPLICIT_KEY: usize = 1000;

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn emit_map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in m.iter().enumerate() {
        // The first key of a map inside a list shares the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        let key = string(k);
        // YAML allows at most 1024 characters in an implicit (`key: value`)
        // key; longer keys must be explicit (`? key` then `: value`).
        if key.chars().count() > MAX_IMPLICIT_KEY {
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            pad(out, indent);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        emit_value(v, indent, out);
    }
}

fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    for v in a {
        pad(out, indent);
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => emit_map(m, indent + 2, out),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_seq(inner, indent + 2, out);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Writes what follows `key:`.
fn emit_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

fn plain_is_safe(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    let first_ok = first.is_ascii_alphanumeric()
        || matches!(first, b'/' | b'.' | b'_')
        || (first == b'-' && b.len() > 1 && b[1] != b' ');
    let body_ok = b.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'+' | b',' | b'@' | b'%' | b' '
            )
    });
    first_ok
        && body_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && matches!(
            resolve(&Scalar {
                text: s.to_string(),
                plain: true
            }),
            Resolved::Str(_)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_yaml_would_misread() {
        for s in [
            "yes", "0755", "", "~", "a: b", "@pkg:x", "- x", "1.5", "x #y", "a\nb", "null", "on",
        ] {
            assert!(!plain_is_safe(s), "{s:?} must be quoted");
        }
        for s in [
            "linuxkit/init:v1",
            "CAP_SYS_ADMIN",
            "console=ttyS0 quiet",
            "/etc/x:/etc/x:ro",
            "--nobackground",
            "nofile,1024,2048",
        ] {
            assert!(plain_is_safe(s), "{s:?} can be plain");
        }
    }
}
