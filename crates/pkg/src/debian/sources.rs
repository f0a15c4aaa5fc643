//! Finding a Debian mirror in apt's configuration.
//!
//! The mirror is *configuration*: which one is reachable, fast or allowed
//! differs per machine and per CI, so nothing here names one. The host's
//! apt sources already say which mirror works here, so they are the
//! default; the `LINUXKIT_DEBIAN_MIRROR` environment variable overrides
//! them (a base URI such as the `URIs:` value of a `.sources` file).
//!
//! Both formats apt reads are supported:
//!
//! * deb822 `/etc/apt/sources.list.d/*.sources` paragraphs with `Types`,
//!   `URIs`, `Suites`, `Components`, `Signed-By` and `Enabled`;
//! * one-line `sources.list` entries, `deb [signed-by=… arch=…] URI SUITE COMPONENT…`.

use std::path::{Path, PathBuf};

use super::control;
use super::error::{DebianError, Result, io_err, parse_err};

/// The environment variable that overrides the mirror's base URI.
pub const MIRROR_ENV: &str = "LINUXKIT_DEBIAN_MIRROR";

/// One apt source entry (a deb822 paragraph, or one `sources.list` line).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// `deb` and/or `deb-src`.
    pub types: Vec<String>,
    /// Base URIs of the archive.
    pub uris: Vec<String>,
    /// Suites (`bookworm`, `bookworm-updates`, …).
    pub suites: Vec<String>,
    /// Components (`main`, `contrib`, …).
    pub components: Vec<String>,
    /// The keyring (a path, or an inline key block) that signs the archive.
    pub signed_by: Option<String>,
    /// The file this entry came from, for messages.
    pub file: Option<PathBuf>,
}

/// What a fetch needs: where the archive is and which suite to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Base URI, without a trailing slash.
    pub uri: String,
    /// The suite (codename or alias).
    pub suite: String,
    /// Components to index.
    pub components: Vec<String>,
    /// The keyring from the source entry, if any.
    pub signed_by: Option<String>,
}

/// Parses a deb822 `.sources` file. Paragraphs with `Enabled: no` are dropped.
pub fn parse_deb822(text: &str) -> Result<Vec<Source>> {
    let paragraphs = control::parse(text).map_err(|m| parse_err("deb822 sources", m))?;
    let mut out = Vec::new();
    for p in paragraphs {
        if p.get("Enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let src = Source {
            types: control::words(p.get("Types")),
            uris: control::words(p.get("URIs")),
            suites: control::words(p.get("Suites")),
            components: control::words(p.get("Components")),
            signed_by: p.get("Signed-By").map(str::to_owned),
            file: None,
        };
        if src.types.is_empty() || src.uris.is_empty() || src.suites.is_empty() {
            return Err(parse_err(
                "deb822 sources",
                "a paragraph needs Types, URIs and Suites",
            ));
        }
        out.push(src);
    }
    Ok(out)
}

/// Parses one-line `sources.list` entries; comments and blank lines are skipped.
pub fn parse_one_line(text: &str) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: &str| parse_err(format!("sources.list line {}", n + 1), m);
        let (ty, mut rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("too short"))?;
        rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(opts) = rest.strip_prefix('[') {
            let (opts, after) = opts.split_once(']').ok_or_else(|| err("unclosed `[`"))?;
            for opt in opts.split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_owned());
                }
            }
            rest = after.trim_start();
        }
        let mut fields = rest.split_whitespace();
        let uri = fields.next().ok_or_else(|| err("missing URI"))?;
        let suite = fields.next().ok_or_else(|| err("missing suite"))?;
        out.push(Source {
            types: vec![ty.to_owned()],
            uris: vec![uri.to_owned()],
            suites: vec![suite.to_owned()],
            components: fields.map(str::to_owned).collect(),
            signed_by,
            file: None,
        });
    }
    Ok(out)
}

/// Reads every source under `root` (`/` for the host): `etc/apt/sources.list`,
/// then `etc/apt/sources.list.d/*.list` and `*.sources` in name order, as apt does.
pub fn load(root: &Path) -> Result<Vec<Source>> {
    let apt = root.join("etc/apt");
    let mut files = vec![apt.join("sources.list")];
    let dir = apt.join("sources.list.d");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        files.extend(names);
    }
    let mut out = Vec::new();
    for f in files {
        let ext = f.extension().and_then(|e| e.to_str());
        let parse: fn(&str) -> Result<Vec<Source>> = match ext {
            Some("sources") => parse_deb822,
            Some("list") => parse_one_line,
            _ => continue,
        };
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&f)(e)),
        };
        let parsed = parse(&text).map_err(|e| match e {
            DebianError::Parse { what, message } => {
                parse_err(format!("{} ({what})", f.display()), message)
            }
            other => other,
        })?;
        out.extend(parsed.into_iter().map(|mut s| {
            s.file = Some(f.clone());
            s
        }));
    }
    Ok(out)
}

/// Picks the first `deb` source serving `suite` (or, with no suite, the
/// first `deb` source's first suite). First, because apt's order is the
/// administrator's order of preference.
pub fn select(sources: &[Source], suite: Option<&str>) -> Option<Mirror> {
    sources
        .iter()
        .filter(|s| s.types.iter().any(|t| t == "deb"))
        .find_map(|s| {
            let chosen = match suite {
                Some(want) => s.suites.iter().find(|x| *x == want)?,
                None => s.suites.first()?,
            };
            Some(Mirror {
                uri: s.uris.first()?.trim_end_matches('/').to_owned(),
                suite: chosen.clone(),
                components: if s.components.is_empty() {
                    vec!["main".to_owned()]
                } else {
                    s.components.clone()
                },
                signed_by: s.signed_by.clone(),
            })
        })
}

/// [`select`], with an override URI (the value of [`MIRROR_ENV`]) winning
/// over the sources' URI. The suite still comes from `suite` or the
/// sources, and the components default to `main`.
pub fn select_with_override(
    sources: &[Source],
    suite: Option<&str>,
    override_uri: Option<&str>,
) -> Result<Mirror> {
    let from_sources = select(sources, suite);
    if let Some(uri) = override_uri.map(str::trim).filter(|u| !u.is_empty()) {
        let suite = suite
            .map(str::to_owned)
            .or_else(|| from_sources.as_ref().map(|m| m.suite.clone()))
            .ok_or_else(|| {
                DebianError::NoMirror(format!("{MIRROR_ENV} is set but no suite was given"))
            })?;
        return Ok(Mirror {
            uri: uri.trim_end_matches('/').to_owned(),
            suite,
            components: from_sources
                .map(|m| m.components)
                .unwrap_or_else(|| vec!["main".to_owned()]),
            signed_by: None,
        });
    }
    from_sources.ok_or_else(|| {
        DebianError::NoMirror(match suite {
            Some(s) => {
                format!("no `deb` source in the apt sources serves suite {s:?}; set {MIRROR_ENV}")
            }
            None => format!("no `deb` source in the apt sources; set {MIRROR_ENV}"),
        })
    })
}

/// The host's mirror for `suite`: [`MIRROR_ENV`] if set, else `/etc/apt`'s sources.
pub fn find_mirror(suite: Option<&str>) -> Result<Mirror> {
    let sources = load(Path::new("/"))?;
    select_with_override(&sources, suite, std::env::var(MIRROR_ENV).ok().as_deref())
}
