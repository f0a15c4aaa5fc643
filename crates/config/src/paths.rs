//! The configuration-side rule for paths that name a place in the image.
//!
//! A `files:` entry's `path` (and the bundle and volume directories derived
//! from container and volume names) becomes the name of an entry in the
//! output: a tar member, an initrd record, a file of an ISO or disk. A name
//! with `..` components that climb above the root would make extractors
//! write outside their destination (and change the VM's `/` at boot), and
//! `/`, `.`, an empty path or a NUL byte make malformed entries. So such
//! paths are refused where the configuration names them, with the YAML
//! line, before anything is pulled or written.
//!
//! This is deliberately the *configuration-side* rule (it explains a
//! problem in the terms of the YAML); the image-side normalisation of layer
//! entries lives with the layer reader. The two agree on what a clean path
//! is: relative, `/`-separated, no empty, `.` or `..` components.

use std::fmt;

/// Why a configuration path cannot name an entry of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// The path contains a NUL byte, which no output format can store.
    Nul,
    /// The path names the image's root (`/`, `.`, `a/..`), not an entry.
    Root,
    /// A `..` component climbs above the image's root.
    Escapes,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::Empty => "is empty",
            PathProblem::Nul => "contains a NUL byte",
            PathProblem::Root => "names the root directory of the image, not an entry in it",
            PathProblem::Escapes => "climbs above the root of the image with `..`",
        })
    }
}

/// Configuration-side rule for a path in the image (`files[].path`): the
/// clean relative form of `path` (leading `/` dropped, `.` and empty
/// components removed, `a/..` folded), or why it cannot name an entry.
///
/// A path may be written absolute or relative (`/etc/x` and `etc/x` are the
/// same entry, as in the reference). `..` is allowed only where it stays
/// inside the image (`etc/../x` is `x`); `../x` and `/etc/../../x` are
/// refused, and so are `/`, `.`, the empty path and a NUL byte.
///
/// ```
/// use linuxkit_config::{PathProblem, image_path};
/// assert_eq!(image_path("/etc//ssh/./sshd_config").unwrap(), "etc/ssh/sshd_config");
/// assert_eq!(image_path("../../../victim/canary"), Err(PathProblem::Escapes));
/// assert_eq!(image_path("/"), Err(PathProblem::Root));
/// ```
pub fn image_path(path: &str) -> Result<String, PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathProblem::Root);
    }
    Ok(parts.join("/"))
}

/// Configuration-side rule for a name that becomes one directory of the
/// image (a container's bundle `containers/SECTION/NAME`, a volume's
/// `containers/volumes/NAME`): exactly one clean path component.
pub(crate) fn single_component(name: &str) -> Result<(), String> {
    match image_path(name) {
        Err(p) => Err(p.to_string()),
        Ok(clean) if clean != name || clean.contains('/') => Err(
            "must be a single directory name (no `/`, and not `.` or `..`): it becomes a directory of the image"
                .into(),
        ),
        Ok(_) => Ok(()),
    }
}

/// Whether a relative runtime path (`runtime.mkdir`, `runtime.mounts[].destination`),
/// which the in-VM init takes relative to the container's `rootfs`, climbs
/// out of it with `..`. Absolute ones are the VM's own paths by design.
pub(crate) fn relative_escapes(path: &str) -> bool {
    !path.starts_with('/') && matches!(image_path(path), Err(PathProblem::Escapes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_pass_and_are_normalised() {
        assert_eq!(image_path("etc/hosts").unwrap(), "etc/hosts");
        assert_eq!(image_path("/etc/hosts").unwrap(), "etc/hosts");
        assert_eq!(image_path("//etc///hosts/").unwrap(), "etc/hosts");
        assert_eq!(image_path("./etc/./hosts").unwrap(), "etc/hosts");
        assert_eq!(image_path("etc/../hosts").unwrap(), "hosts");
        assert_eq!(image_path("a/b/../../c").unwrap(), "c");
        assert_eq!(image_path("..a/b..").unwrap(), "..a/b..");
    }

    #[test]
    fn escapes_root_and_malformed_paths_are_refused() {
        for p in [
            "..",
            "../x",
            "../../../victim/canary",
            "/etc/../../x",
            "a/../../b",
            "/..",
        ] {
            assert_eq!(image_path(p), Err(PathProblem::Escapes), "{p}");
        }
        for p in ["/", ".", "//", "./", "a/..", "/a/b/../.."] {
            assert_eq!(image_path(p), Err(PathProblem::Root), "{p}");
        }
        assert_eq!(image_path(""), Err(PathProblem::Empty));
        assert_eq!(image_path("etc/a\0b"), Err(PathProblem::Nul));
    }

    #[test]
    fn single_components() {
        assert!(single_component("getty").is_ok());
        assert!(single_component("a.b-c_d").is_ok());
        for n in ["", ".", "..", "a/b", "/a", "a/", "x\0"] {
            assert!(single_component(n).is_err(), "{n:?}");
        }
    }

    #[test]
    fn relative_runtime_paths() {
        assert!(relative_escapes("../../etc"));
        assert!(!relative_escapes("var/lib/x"));
        assert!(!relative_escapes("/var/../../x"));
    }
}
