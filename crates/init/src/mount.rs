//! Mounting by fstab-style option words, as `runtime.json` and the init's
//! own mount table describe mounts.
//!
//! An option list such as `["rbind", "ro", "mode=755"]` splits into mount
//! flags, propagation flags and filesystem data. The kernel does not accept
//! propagation flags together with other flags in one `mount(2)` call, so a
//! mount that has both is done as two calls: the mount itself, then the
//! propagation change. (The reference passes them in one call, where
//! `MS_REMOUNT` silently wins and `remount,private` never makes anything
//! private.)

use std::io;
use std::path::Path;

use nix::mount::MsFlags;

/// A path as `/proc/mounts` and `/proc/self/mountinfo` print it, with the
/// kernel's octal escapes (`\\040` for a space; tab, newline and backslash
/// likewise) undone.
pub fn unescape_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a list of fstab option words mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Flags of the mount call itself.
    pub flags: MsFlags,
    /// Propagation flags (`MS_SHARED`, `MS_PRIVATE`, ... maybe with
    /// `MS_REC`), applied by a second call.
    pub propagation: MsFlags,
    /// Everything else, comma-joined: the filesystem's own options.
    pub data: String,
}

/// Splits fstab option words into flags, propagation and data.
pub fn parse_options<S: AsRef<str>>(words: &[S]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for w in words {
        let w = w.as_ref();
        let (set, clear) = match w {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                let p = match w.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                o.propagation |= p;
                if w.starts_with('r') {
                    o.propagation |= MsFlags::MS_REC;
                }
                continue;
            }
            _ => {
                data.push(w);
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o.data = data.join(",");
    o
}

/// Mounts `source` of type `fstype` on `target` with fstab option words.
/// An empty `fstype`/`source` is passed as NULL (remounts, binds).
pub fn mount_words<S: AsRef<str>>(
    source: &str,
    target: &Path,
    fstype: &str,
    words: &[S],
) -> io::Result<()> {
    let o = parse_options(words);
    let only_propagation = o.flags.is_empty() && o.data.is_empty() && fstype.is_empty();
    if !only_propagation {
        mount(source, target, fstype, o.flags, &o.data)?;
    }
    if !o.propagation.is_empty() {
        mount("", target, "", o.propagation, "")?;
    }
    Ok(())
}

/// `mount(2)` with the target named in the error.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> io::Result<()> {
    let opt = |s: &str| {
        if s.is_empty() {
            None
        } else {
            Some(s.to_string())
        }
    };
    nix::mount::mount(
        opt(source).as_deref(),
        target,
        opt(fstype).as_deref(),
        flags,
        opt(data).as_deref(),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "mount {} on {} (type {}, options {data:?}): {e}",
                if source.is_empty() { "-" } else { source },
                target.display(),
                if fstype.is_empty() { "-" } else { fstype },
            ),
        )
    })
}

/// Whether `path` is a mount point (its device differs from its parent's,
/// or it is `/`).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return false;
    };
    match std::fs::symlink_metadata(path.join("..")) {
        Ok(p) => p.dev() != m.dev() || p.ino() == m.ino(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = parse_options(&["rbind", "ro", "mode=755", "rshared", "size=10%"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(o.propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(o.data, "mode=755,size=10%");
    }

    #[test]
    fn later_words_win() {
        assert_eq!(parse_options(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(
            parse_options(&["nosuid", "suid", "nodev"]).flags,
            MsFlags::MS_NODEV
        );
    }

    #[test]
    fn remount_private_is_two_calls_worth() {
        let o = parse_options(&["remount", "private"]);
        assert_eq!(o.flags, MsFlags::MS_REMOUNT);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE);
        assert!(o.data.is_empty());
    }

    #[test]
    fn overlay_options_are_data() {
        let o = parse_options(&["lowerdir=/a", "upperdir=/b/upper", "workdir=/b/work"]);
        assert!(o.flags.is_empty());
        assert_eq!(o.data, "lowerdir=/a,upperdir=/b/upper,workdir=/b/work");
    }
}
