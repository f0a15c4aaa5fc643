//! What the daemonless builder must know of a Dockerfile before it runs:
//! the images it starts from (`FROM`, `COPY --from=`, `RUN
//! --mount=from=`), so they can be loaded from our cache first, and
//! whether it runs anything (`RUN`), which decides whether a foreign
//! platform needs emulation.
//!
//! Only instructions are split out (continuation lines joined, comments
//! and parser directives skipped); the builder itself parses the file for
//! real. `$VAR`/`${VAR}` in a `FROM` line is expanded from the global
//! `ARG`s before the first `FROM` and the build arguments, as BuildKit
//! does; `${VAR:-default}` takes its default.

use std::collections::BTreeMap;

/// The parts of a Dockerfile the builder prepares for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerfileInfo {
    /// The images named by `FROM` and `--from=` that are not stage names
    /// nor `scratch`, each once, in order, with the line that names it.
    pub images: Vec<(String, usize)>,
    /// Whether some stage has a `RUN` instruction.
    pub runs: bool,
}

/// Instructions as (1-based line of their first line, keyword upper-cased,
/// the rest).
fn instructions(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut escape = '\\';
    let mut directives = true;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if pending.is_none() {
            if directives && let Some(d) = trimmed.strip_prefix('#') {
                if let Some((k, v)) = d.split_once('=')
                    && k.trim().eq_ignore_ascii_case("escape")
                {
                    escape = v.trim().chars().next().unwrap_or('\\');
                }
                continue;
            }
            directives = false;
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
        } else if trimmed.starts_with('#') {
            continue; // comments inside a continued instruction
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = trimmed.strip_suffix(escape) {
            acc.push_str(body);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(trimmed);
        push(&mut out, start, &acc);
    }
    if let Some((start, acc)) = pending {
        push(&mut out, start, &acc);
    }
    out
}

fn push(out: &mut Vec<(usize, String, String)>, line: usize, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    out.push((line, kw.to_ascii_uppercase(), rest.trim().to_string()));
}

/// `$VAR`, `${VAR}`, `${VAR:-default}` from `vars`; unknown ones are empty.
fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut inner = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                inner.push(c);
            }
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner, None),
            };
            match (vars.get(&name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(&d),
                (None, None) => {}
            }
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
            } else if let Some(v) = vars.get(&name) {
                out.push_str(v);
            }
        }
    }
    out
}

/// Reads `text` with the build arguments `args` (`KEY=VALUE`).
pub fn read(text: &str, args: &[(String, String)]) -> DockerfileInfo {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut info = DockerfileInfo::default();
    let mut seen_from = false;
    let add = |info: &mut DockerfileInfo, stages: &[String], name: String, line: usize| {
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || lower == "scratch"
            || stages.contains(&lower)
            || name.chars().all(|c| c.is_ascii_digit())
            || info.images.iter().any(|(n, _)| *n == name)
        {
            return;
        }
        info.images.push((name, line));
    };
    for (line, kw, rest) in instructions(text) {
        match kw.as_str() {
            "ARG" if !seen_from => {
                for a in rest.split_whitespace() {
                    let (k, v) = a.split_once('=').unwrap_or((a, ""));
                    let v = v.trim_matches('"');
                    let given = args.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                    vars.insert(k.to_string(), given.unwrap_or_else(|| v.to_string()));
                }
            }
            "FROM" => {
                seen_from = true;
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if let Some(image) = words.first() {
                    add(&mut info, &stages, expand(image, &vars), line);
                }
                if words.len() >= 3 && words[1].eq_ignore_ascii_case("as") {
                    stages.push(words[2].to_ascii_lowercase());
                }
            }
            "COPY" | "ADD" | "RUN" => {
                if kw == "RUN" {
                    info.runs = true;
                }
                for w in rest.split_whitespace().take_while(|w| w.starts_with("--")) {
                    if let Some(from) = w.strip_prefix("--from=") {
                        add(&mut info, &stages, from.to_string(), line);
                    }
                    if let Some(m) = w.strip_prefix("--mount=") {
                        for kv in m.split(',') {
                            if let Some(from) = kv.strip_prefix("from=") {
                                add(&mut info, &stages, from.to_string(), line);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_those_not_stages_nor_scratch() {
        let text = "# syntax=docker/dockerfile:1\n\
            ARG BASE=linuxkit/base:1\n\
            FROM ${BASE} AS build\n\
            RUN cc -o /x \\\n  x.c\n\
            FROM --platform=$BUILDPLATFORM scratch\n\
            COPY --from=build /x /x\n\
            COPY --from=linuxkit/ca-certificates:2 /etc/ssl /etc/ssl\n\
            FROM build\n";
        let info = read(text, &[]);
        assert_eq!(
            info.images,
            [
                ("linuxkit/base:1".to_string(), 3),
                ("linuxkit/ca-certificates:2".to_string(), 8)
            ]
        );
        assert!(info.runs);
        let info = read(text, &[("BASE".into(), "other:2".into())]);
        assert_eq!(info.images[0], ("other:2".to_string(), 3));
    }

    #[test]
    fn a_copy_only_file_runs_nothing() {
        let info = read("FROM scratch\n# RUN no\nCOPY a /a\n", &[]);
        assert!(info.images.is_empty());
        assert!(!info.runs);
    }

    #[test]
    fn defaults_in_from_are_expanded() {
        let info = read("ARG T\nFROM img:${T:-3}\n", &[]);
        assert_eq!(info.images, [("img:3".to_string(), 2)]);
    }
}
