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
//! The rules themselves live in `linuxkit_base::path` (one home for what a
//! clean image path is: relative, `/`-separated, no empty, `.` or `..`
//! components); this module applies them to the configuration's names and
//! explains a problem in the terms of the YAML.

pub use linuxkit_base::path::PathError as PathProblem;

/// Configuration-side rule for a path in the image (`files[].path`): the
/// clean relative form of `path`, or why it cannot name an entry. This is
/// [`linuxkit_base::path::fold`], the workspace's one rule for such paths:
/// `/etc/x` and `etc/x` are the same entry (as in the reference), `..` is
/// allowed only where it stays inside the image (`etc/../x` is `x`), and
/// `../x`, `/etc/../../x`, `/`, `.`, the empty path and a NUL byte are
/// refused.
///
/// ```
/// use linuxkit_config::{PathProblem, image_path};
/// assert_eq!(image_path("/etc//ssh/./sshd_config").unwrap(), "etc/ssh/sshd_config");
/// assert_eq!(image_path("../../../victim/canary"), Err(PathProblem::Escapes));
/// assert_eq!(image_path("/"), Err(PathProblem::Root));
/// ```
pub fn image_path(path: &str) -> Result<String, PathProblem> {
    linuxkit_base::path::fold(path)
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
