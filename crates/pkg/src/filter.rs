//! Which files of a `debian:` image are kept: the `include` and `exclude`
//! entries of its `build.yml`.
//!
//! An entry is either a path prefix (`usr/share/doc`), matched on whole path
//! components, or — in `exclude` only — a glob (`usr/lib/*/gconv`,
//! `usr/lib/**/*.a`) in which `*` stays within one component and `**` spans
//! any number. Either way an entry that matches a directory takes everything
//! below it, so `usr/lib/*/gconv` drops the charset modules wherever the
//! multiarch triplet puts them. Globs exist because what Debian scatters
//! (static libraries, per-architecture data) has no single prefix.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use linuxkit_base::path::{PathError, normalize};

/// The characters that make an entry a glob rather than a prefix.
const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// A compiled list of `include` or `exclude` entries.
#[derive(Debug, Clone)]
pub struct PathPatterns {
    prefixes: Vec<String>,
    globs: GlobSet,
    any_glob: bool,
}

impl PathPatterns {
    /// Compiles `entries`; a glob is refused unless `globs_allowed`, and
    /// the error says which entry and why.
    pub fn new(entries: &[String], globs_allowed: bool) -> Result<Self, String> {
        let mut prefixes = Vec::new();
        let mut set = GlobSetBuilder::new();
        let mut any_glob = false;
        for e in entries {
            let norm = match normalize(e) {
                Ok(n) => n,
                // The root names nothing to keep or drop.
                Err(PathError::Empty | PathError::Root) => continue,
                Err(m) => return Err(format!("{e:?} {m}")),
            };
            if norm.contains(GLOB_CHARS) {
                if !globs_allowed {
                    return Err(format!(
                        "{e:?}: globs are allowed in `exclude` only; give a path prefix"
                    ));
                }
                let glob = GlobBuilder::new(&norm)
                    .literal_separator(true)
                    .build()
                    .map_err(|g| format!("{e:?}: {}", g.kind()))?;
                set.add(glob);
                any_glob = true;
            } else {
                prefixes.push(norm);
            }
        }
        let globs = set.build().map_err(|g| g.to_string())?;
        Ok(PathPatterns {
            prefixes,
            globs,
            any_glob,
        })
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && !self.any_glob
    }

    /// Whether `path` (normalized, relative) or one of its ancestor
    /// directories is named by an entry.
    pub fn covers(&self, path: &str) -> bool {
        if self.prefixes.iter().any(|e| under(path, e)) {
            return true;
        }
        if !self.any_glob {
            return false;
        }
        let mut p = path;
        loop {
            if self.globs.is_match(p) {
                return true;
            }
            match p.rsplit_once('/') {
                Some((parent, _)) => p = parent,
                None => return false,
            }
        }
    }

    /// Whether `path` is a parent directory of a prefix entry (so it stays
    /// when `include` keeps what is below it).
    pub fn is_parent_of_prefix(&self, path: &str) -> bool {
        self.prefixes.iter().any(|e| under(e, path))
    }
}

/// Whether `p` is `e` or below it, on whole components.
fn under(p: &str, e: &str) -> bool {
    p == e || (p.starts_with(e) && p.as_bytes().get(e.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(v: &[&str]) -> PathPatterns {
        PathPatterns::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), true).unwrap()
    }

    #[test]
    fn prefixes_match_whole_components() {
        let p = pats(&["usr/share/doc", "/usr/include/"]);
        assert!(p.covers("usr/share/doc"));
        assert!(p.covers("usr/share/doc/libc6/copyright"));
        assert!(!p.covers("usr/share/doctor"));
        assert!(p.covers("usr/include/stdio.h"));
        assert!(!p.covers("usr/share"));
        assert!(p.is_parent_of_prefix("usr/share"));
        assert!(!p.is_parent_of_prefix("usr/lib"));
    }

    #[test]
    fn globs_take_the_subtree_and_stay_in_one_component() {
        let p = pats(&["usr/lib/*/gconv", "usr/lib/**/*.a"]);
        assert!(p.covers("usr/lib/x86_64-linux-gnu/gconv"));
        assert!(p.covers("usr/lib/x86_64-linux-gnu/gconv/libCNS.so"));
        assert!(!p.covers("usr/lib/a/b/gconv/x"), "`*` spans one component");
        assert!(p.covers("usr/lib/x86_64-linux-gnu/libc_nonshared.a"));
        assert!(p.covers("usr/lib/libfoo.a"));
        assert!(!p.covers("usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!p.covers("lib/libfoo.a"));
    }

    #[test]
    fn empty_and_invalid_entries() {
        assert!(pats(&[]).is_empty());
        assert!(pats(&["/"]).is_empty());
        let e = PathPatterns::new(&["usr/[lib".to_string()], true).unwrap_err();
        assert!(e.contains("usr/[lib"), "{e}");
        let e = PathPatterns::new(&["usr/*/doc".to_string()], false).unwrap_err();
        assert!(e.contains("`exclude` only"), "{e}");
        let e = PathPatterns::new(&["../etc".to_string()], true).unwrap_err();
        assert!(e.contains("../etc"), "{e}");
    }
}
