//! The `files:` semantics: what one `files:` entry puts into a tree.
//!
//! Two places read the same schema ([`linuxkit_config::File`]): a LinuxKit
//! YAML's `files:`, added to the root filesystem by [`assemble`](crate::assemble),
//! and a package `build.yml`'s `files:`, added to the image by `linuxkit pkg
//! build`. They must lay an entry out the same way, so the rules live here
//! once and both callers use them. The rules are the reference's: without
//! `mode:` a file is 0600 and a directory 0700; missing parent directories
//! are made with the entry's owner and its mode plus the search bit of
//! every class that may read; the entry is a directory, a symbolic link or
//! a regular file with the given contents. Where the contents come from
//! (`contents:`, `source:` relative to what, `metadata:`) and how owners
//! are named differ between the two callers, so they resolve those
//! themselves and hand the result in.

use linuxkit_config::File as FileSpec;

use crate::entry::{Entry, EntryKind};

/// The mode of a `files:` entry without `mode:`: 0700 for a directory,
/// 0600 for anything else.
pub fn default_mode(directory: bool) -> u32 {
    if directory { 0o700 } else { 0o600 }
}

/// The mode of the parent directories a `files:` entry creates: `mode`
/// plus the search (x) bit of each class (user, group, other) that has any
/// permission.
pub fn parent_mode(mode: u32) -> u32 {
    let mut dir_mode = mode;
    for (r, x) in [(0o700, 0o100), (0o070, 0o010), (0o007, 0o001)] {
        if mode & r != 0 {
            dir_mode |= x;
        }
    }
    dir_mode
}

/// One `files:` entry, resolved by its caller.
#[derive(Debug, Clone)]
pub struct FileEntry<'a> {
    /// The entry as written (for `directory` and `symlink`).
    pub spec: &'a FileSpec,
    /// Its path in the tree, without a leading `/`.
    pub path: &'a str,
    /// The owner's uid and gid.
    pub uid: u32,
    /// The group.
    pub gid: u32,
    /// The mode (see [`default_mode`]).
    pub mode: u32,
    /// The contents of a regular file (ignored for a directory or a
    /// symbolic link).
    pub contents: Vec<u8>,
    /// Where the entries came from, for the tar's PAX records.
    pub provenance: Option<(String, String)>,
}

impl FileEntry<'_> {
    /// The entries to add, in order: each missing parent directory of the
    /// path (those `exists` says are not in the tree yet), then the entry
    /// itself, each with its contents.
    pub fn entries(self, exists: impl Fn(&str) -> bool) -> Vec<(Entry, Vec<u8>)> {
        let dir_mode = parent_mode(self.mode);
        let mut out = Vec::new();
        let mut acc = String::new();
        let parts: Vec<&str> = self.path.split('/').collect();
        for p in &parts[..parts.len() - 1] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            if !exists(&acc) {
                let e = Entry {
                    mode: dir_mode,
                    uid: self.uid,
                    gid: self.gid,
                    provenance: self.provenance.clone(),
                    ..Entry::dir(acc.clone())
                };
                out.push((e, Vec::new()));
            }
        }
        let base = Entry {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            provenance: self.provenance,
            ..Entry::file(self.path, 0)
        };
        out.push(if self.spec.directory {
            let e = Entry {
                kind: EntryKind::Dir,
                ..base
            };
            (e, Vec::new())
        } else if let Some(target) = &self.spec.symlink {
            let e = Entry {
                kind: EntryKind::Symlink {
                    target: target.clone(),
                },
                ..base
            };
            (e, Vec::new())
        } else {
            let e = Entry {
                size: self.contents.len() as u64,
                ..base
            };
            (e, self.contents)
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::DEFAULT_MTIME;

    fn spec(yaml: &str) -> FileSpec {
        linuxkit_config::from_yaml_str("f.yml", yaml).unwrap()
    }

    #[test]
    fn modes() {
        assert_eq!(default_mode(false), 0o600);
        assert_eq!(default_mode(true), 0o700);
        assert_eq!(parent_mode(0o600), 0o700);
        assert_eq!(parent_mode(0o640), 0o750);
        assert_eq!(parent_mode(0o604), 0o705);
        assert_eq!(parent_mode(0o4000), 0o4000);
        assert_eq!(parent_mode(0o755), 0o755);
    }

    #[test]
    fn missing_parents_get_the_owner_and_the_searchable_mode() {
        let f = spec("path: etc/app/conf\ncontents: hi\n");
        let got = FileEntry {
            spec: &f,
            path: "etc/app/conf",
            uid: 7,
            gid: 8,
            mode: 0o640,
            contents: b"hi".to_vec(),
            provenance: Some(("linuxkit.files".into(), "files[0]".into())),
        }
        .entries(|p| p == "etc");
        let [(app, a), (conf, c)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(
            (app.path.as_str(), &app.kind, app.mode, app.uid, app.gid),
            ("etc/app", &EntryKind::Dir, 0o750, 7, 8)
        );
        assert!(a.is_empty());
        assert_eq!(app.provenance, conf.provenance);
        assert_eq!(
            (conf.path.as_str(), &conf.kind, conf.mode, conf.size),
            ("etc/app/conf", &EntryKind::File, 0o640, 2)
        );
        assert_eq!((conf.mtime, app.mtime), (DEFAULT_MTIME, DEFAULT_MTIME));
        assert_eq!(c, b"hi");
    }

    #[test]
    fn directories_and_symlinks_have_no_contents() {
        let d = spec("path: var/lib/x\ndirectory: true\n");
        let got = FileEntry {
            spec: &d,
            path: "var/lib/x",
            uid: 0,
            gid: 0,
            mode: default_mode(true),
            contents: b"ignored".to_vec(),
            provenance: None,
        }
        .entries(|_| true);
        assert_eq!(got.len(), 1);
        assert_eq!((&got[0].0.kind, got[0].0.mode), (&EntryKind::Dir, 0o700));
        assert!(got[0].1.is_empty());

        let l = spec("path: bin/sh\nsymlink: busybox\n");
        let got = FileEntry {
            spec: &l,
            path: "bin/sh",
            uid: 0,
            gid: 0,
            mode: 0o777,
            contents: Vec::new(),
            provenance: None,
        }
        .entries(|_| false);
        assert_eq!(got.len(), 2, "bin, then the link");
        assert_eq!(got[0].0.mode, 0o777);
        assert_eq!(
            got[1].0.kind,
            EntryKind::Symlink {
                target: "busybox".into()
            }
        );
        assert_eq!(got[1].0.size, 0);
    }
}
