//! Paths inside an image: one rule for what names a file below the root.
//!
//! Image paths come from tar entries (`./usr/bin/`, `/etc//passwd`),
//! `build.yml` keys and a LinuxKit YAML's `files:`. They are compared and
//! stored in one form, relative and clean (`usr/bin`, `etc/passwd`), and a
//! path that could climb out of the root or cannot be a file name is
//! refused where it is read, not where it is written. The crates used to
//! normalise each in their own way, and one of the copies let `..`
//! through; [`normalize`] is the one rule.

use std::fmt;

/// Why a path does not name an entry below the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The empty string.
    Empty,
    /// Only the root (`/`, `.`, `./`): callers that walk a whole tree skip
    /// it, callers that want a file refuse it.
    Root,
    /// A `..` component: the path could leave the root ([`normalize`]).
    DotDot,
    /// A `..` component that climbs above the root ([`fold`], which
    /// folds the ones that stay inside).
    Escapes,
    /// A NUL byte, which no file name may hold.
    Nul,
}

impl fmt::Display for PathError {
    /// Reads after the path: "`a/../b` has a `..` component".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Empty => "is empty",
            PathError::Root => "names the root directory of the image, not an entry in it",
            PathError::DotDot => "has a `..` component",
            PathError::Escapes => "climbs above the root of the image with `..`",
            PathError::Nul => "contains a NUL byte",
        })
    }
}

impl std::error::Error for PathError {}

/// `./usr//bin/` → `usr/bin`, `/etc/passwd` → `etc/passwd`: the clean,
/// relative form of an image path. Empty and `.` components are dropped;
/// the result is never empty. Refuses the empty string, the root alone,
/// `..` anywhere and NUL bytes (see [`PathError`]).
pub fn normalize(p: &str) -> Result<String, PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.contains('\0') {
        return Err(PathError::Nul);
    }
    let mut out = String::with_capacity(p.len());
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(PathError::DotDot),
            c => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err(PathError::Root);
    }
    Ok(out)
}

/// The rule for a path a configuration writes (a LinuxKit YAML's
/// `files[].path`): [`normalize`], except that a `..` which stays inside
/// the image folds the component before it (`etc/../x` is `x`), as the
/// kernel would resolve it, while one that climbs above the root
/// (`../x`, `/etc/../../x`) is refused ([`PathError::Escapes`]). Layer
/// entries and `build.yml` keys keep the stricter [`normalize`]: no tool
/// writes `..` there on purpose.
pub fn fold(p: &str) -> Result<String, PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.contains('\0') {
        return Err(PathError::Nul);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes);
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Root);
    }
    Ok(parts.join("/"))
}

/// [`normalize`], with the root (and the empty path, which tar archives
/// use for it too) as `Ok("")`: for walking a whole tree, where the root
/// is an entry to skip rather than an error.
pub fn normalize_or_root(p: &str) -> Result<String, PathError> {
    match normalize(p) {
        Err(PathError::Empty | PathError::Root) => Ok(String::new()),
        r => r,
    }
}

/// The longest file name (one path component) Linux file systems take, in
/// bytes: ext4, squashfs, EROFS and ISO 9660's Rock Ridge names as Linux
/// reads them. EROFS's format stores longer ones, which its readers take
/// for corruption.
pub const NAME_MAX: usize = 255;

/// The longest path the kernel takes, in bytes with its NUL: the initramfs
/// unpacker skips an entry whose name is longer, and a symbolic link's
/// target is at most `PATH_MAX - 1` bytes.
pub const PATH_MAX: usize = 4096;

/// Why Linux cannot create the entry `path` (a symbolic link to `target`
/// when given): a component longer than [`NAME_MAX`], a target longer than
/// `PATH_MAX - 1`, and with `whole_path`, a path longer than `PATH_MAX - 1`
/// (for the formats whose reader takes the whole path at once).
pub fn beyond_limits(path: &str, target: Option<&str>, whole_path: bool) -> Option<String> {
    if let Some(c) = path.split('/').find(|c| c.len() > NAME_MAX) {
        let start: String = c.chars().take(32).collect();
        return Some(format!(
            "its name `{start}…` is {} bytes long, and Linux file names are at most {NAME_MAX} bytes",
            c.len()
        ));
    }
    if whole_path && path.len() >= PATH_MAX {
        return Some(format!(
            "the path is {} bytes long, and the kernel takes paths of at most {} bytes",
            path.len(),
            PATH_MAX - 1
        ));
    }
    if let Some(t) = target.filter(|t| t.len() >= PATH_MAX) {
        return Some(format!(
            "its link target is {} bytes long, and the kernel takes targets of at most {} bytes",
            t.len(),
            PATH_MAX - 1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_limits() {
        let long = "n".repeat(256);
        assert_eq!(beyond_limits(&"n".repeat(255), None, true), None);
        let why = beyond_limits(&format!("a/{long}/b"), None, false).unwrap();
        assert!(why.contains("is 256 bytes long"), "{why}");
        let deep = "d/".repeat(2048);
        assert_eq!(beyond_limits(&deep, None, false), None);
        assert!(beyond_limits(&deep, None, true).is_some());
        assert!(beyond_limits(&deep[..4095], None, true).is_none());
        assert!(beyond_limits("l", Some(&"t".repeat(4096)), false).is_some());
        assert!(beyond_limits("l", Some(&"t".repeat(4095)), false).is_none());
    }

    #[test]
    fn clean_relative_form() {
        for (given, want) in [
            ("usr/bin", "usr/bin"),
            ("./usr/bin/", "usr/bin"),
            ("/a//b", "a/b"),
            ("/etc/passwd", "etc/passwd"),
            ("a/./b/.", "a/b"),
            ("...", "..."),
            ("a/..b/c..", "a/..b/c.."),
        ] {
            assert_eq!(normalize(given).as_deref(), Ok(want), "{given:?}");
        }
    }

    #[test]
    fn refusals() {
        for (given, why) in [
            ("", PathError::Empty),
            ("/", PathError::Root),
            (".", PathError::Root),
            ("./", PathError::Root),
            ("//./", PathError::Root),
            ("..", PathError::DotDot),
            ("./a/../../etc", PathError::DotDot),
            ("a/..", PathError::DotDot),
            ("/../a", PathError::DotDot),
            ("a\0b", PathError::Nul),
        ] {
            assert_eq!(normalize(given), Err(why), "{given:?}");
        }
        assert_eq!(
            format!("path {}", PathError::DotDot),
            "path has a `..` component"
        );
    }

    #[test]
    fn folding() {
        for (given, want) in [
            ("/etc//ssh/./sshd_config", "etc/ssh/sshd_config"),
            ("etc/../hosts", "hosts"),
            ("a/b/../../c", "c"),
            ("..a/b..", "..a/b.."),
        ] {
            assert_eq!(fold(given).as_deref(), Ok(want), "{given:?}");
        }
        for p in [
            "..",
            "../x",
            "../../../victim/canary",
            "/etc/../../x",
            "a/../../b",
            "/..",
        ] {
            assert_eq!(fold(p), Err(PathError::Escapes), "{p}");
        }
        for p in ["/", ".", "//", "./", "a/..", "/a/b/../.."] {
            assert_eq!(fold(p), Err(PathError::Root), "{p}");
        }
        assert_eq!(fold(""), Err(PathError::Empty));
        assert_eq!(fold("etc/a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn the_root_for_tree_walks() {
        assert_eq!(normalize_or_root("./").as_deref(), Ok(""));
        assert_eq!(normalize_or_root("").as_deref(), Ok(""));
        assert_eq!(normalize_or_root("./a/").as_deref(), Ok("a"));
        assert_eq!(normalize_or_root("a/../b"), Err(PathError::DotDot));
        assert_eq!(normalize_or_root("\0"), Err(PathError::Nul));
    }
}
