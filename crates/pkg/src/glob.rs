//! Wildcard globs: `*` (any run of characters) and `?` (one character),
//! everything else literal — the dialect of `concat.sources` and
//! `kernel.modules`.
//!
//! They go through `globset` (as `debian.exclude`'s richer globs do, see
//! [`crate::filter`]) rather than a hand-written matcher: its matching is
//! linear in the input, where backtracking over `*` is exponential in the
//! number of stars. The translation keeps the dialect exact: the
//! characters `globset` would read as syntax (`[`, `]`, `{`, `}`, `\`) are
//! escaped, and a run of stars is one star (`**` spans no more than `*`
//! here).

use globset::{GlobBuilder, GlobMatcher};

/// A compiled wildcard glob.
#[derive(Debug, Clone)]
pub struct Wildcard {
    matcher: GlobMatcher,
}

impl Wildcard {
    /// A glob over names, in which `/` is an ordinary character.
    pub fn name(glob: &str) -> Wildcard {
        Wildcard::build(glob, false)
    }

    /// A glob over image paths: leading and trailing `/` are ignored, and
    /// `*` and `?` stay within one path component (`usr/share/*.crt`
    /// matches `usr/share/a.crt`, not `usr/share/mozilla/a.crt`).
    pub fn path(glob: &str) -> Wildcard {
        Wildcard::build(glob.trim_matches('/'), true)
    }

    fn build(glob: &str, literal_separator: bool) -> Wildcard {
        let mut pattern = String::with_capacity(glob.len() + 8);
        let mut star = false;
        for c in glob.chars() {
            match c {
                '*' if star => {}
                '*' | '?' => pattern.push(c),
                '[' | ']' | '{' | '}' | '\\' => {
                    pattern.push('[');
                    pattern.push(c);
                    pattern.push(']');
                }
                c => pattern.push(c),
            }
            star = c == '*';
        }
        let matcher = GlobBuilder::new(&pattern)
            .literal_separator(literal_separator)
            .backslash_escape(false)
            .build()
            .expect("a wildcard glob with its syntax characters escaped is valid")
            .compile_matcher();
        Wildcard { matcher }
    }

    /// Whether `s` matches (for a path glob, `s` is a clean image path).
    pub fn is_match(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_globs_stay_in_their_component() {
        let g = Wildcard::path("usr/share/ca-certificates/mozilla/*.crt");
        assert!(g.is_match("usr/share/ca-certificates/mozilla/A.crt"));
        assert!(!Wildcard::path("usr/share/*.crt").is_match("usr/share/mozilla/A.crt"));
        assert!(Wildcard::path("/etc/?.conf").is_match("etc/a.conf"));
        assert!(!Wildcard::path("etc/*.conf").is_match("etc/a.conf.d"));
        assert!(!Wildcard::path("etc/?").is_match("etc/ab"));
        assert!(
            Wildcard::path("usr/**/x").is_match("usr/a/x")
                && !Wildcard::path("usr/**/x").is_match("usr/a/b/x"),
            "`**` is `*`"
        );
        assert!(Wildcard::path("a/b**").is_match("a/bc"));
    }

    #[test]
    fn only_star_and_question_mark_are_special() {
        for (glob, name) in [
            ("a[b]", "a[b]"),
            ("{a,b}", "{a,b}"),
            ("x\\y", "x\\y"),
            ("[!a]", "[!a]"),
        ] {
            assert!(Wildcard::name(glob).is_match(name), "{glob}");
        }
        assert!(!Wildcard::name("a[b]").is_match("ab"));
        assert!(!Wildcard::name("{a,b}").is_match("a"));
        assert!(
            Wildcard::name("a*").is_match("a/b"),
            "names: `/` is a character"
        );
        assert!(Wildcard::name("*").is_match(""));
        assert!(!Wildcard::name("?").is_match(""));
    }

    #[test]
    fn many_stars_match_in_linear_time() {
        // Backtracking would take 2^30 steps here.
        let glob = "*a".repeat(30) + "b";
        let name = "a".repeat(60);
        assert!(!Wildcard::name(&glob).is_match(&name));
        assert!(Wildcard::name(&glob).is_match(&(name + "b")));
    }
}
