//! What `build.yml` declares on top of the packages and binaries:
//! `files:` (with a LinuxKit YAML's semantics, shared with `linuxkit build`
//! through [`linuxkit_rootfs::files`]), `users:`/`groups:` appended to
//! `/etc/passwd` and `/etc/group`, and `concat:` files made of the image's
//! own.

use std::collections::BTreeSet;

use linuxkit_base::path::normalize;
use linuxkit_config::{File, IdSpec};
use linuxkit_rootfs::{Entry, EntryKind, files};

use crate::error::BuildError;
use crate::glob::Wildcard;
use crate::layer::LayerTree;
use crate::{Concat, Package};

/// One `files:` entry, as a LinuxKit YAML's `files:` would add it (the
/// rules are [`linuxkit_rootfs::files`]'): missing parents get the owner
/// and the file's mode plus search bits. `source` is relative to the
/// package directory.
pub(super) fn add_file(
    layer: &mut LayerTree,
    pkg: &Package,
    i: usize,
    f: &File,
) -> Result<(), BuildError> {
    let info = pkg.build_yml();
    let err = |field: &str, message: String| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message: format!("`files[{i}].{field}`: {message}"),
    };
    let path = normalize(&f.path).expect("checked when parsed");
    let id =
        |s: &Option<IdSpec>, user: bool| s.as_ref().map_or(Some(0), |s| info.resolve_id(s, user));
    let (Some(uid), Some(gid)) = (id(&f.uid, true), id(&f.gid, false)) else {
        return Err(err("uid", "unknown user or group".into()));
    };
    let mode = match &f.mode {
        Some(m) => linuxkit_config::parse_mode(m).expect("checked when parsed"),
        None => files::default_mode(f.directory),
    };
    let contents = if let Some(c) = &f.contents {
        c.clone().into_bytes()
    } else if let Some(src) = &f.source {
        let p = pkg.path().join(src);
        match std::fs::read(&p) {
            Ok(b) => b,
            Err(_) if f.optional => return Ok(()),
            Err(e) => {
                return Err(err(
                    "source",
                    format!(
                        "cannot read {} ({e}); paths are relative to the package directory; fix it or add `optional: true`",
                        p.display()
                    ),
                ));
            }
        }
    } else {
        Vec::new()
    };
    let entry = files::FileEntry {
        spec: f,
        path: &path,
        uid,
        gid,
        mode,
        contents,
        provenance: None,
    };
    for (e, data) in entry.entries(|p| layer.get(p).is_some()) {
        layer.put(e, data);
    }
    Ok(())
}

/// One `concat:` entry (see [`Concat`]).
pub(super) fn add_concat(
    layer: &mut LayerTree,
    pkg: &Package,
    i: usize,
    c: &Concat,
) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message: format!("`concat[{i}]`: {message}"),
    };
    let path = normalize(&c.path).map_err(|_| {
        err(format!(
            "`path` {:?} is not a relative path inside the image",
            c.path
        ))
    })?;
    let mode = match &c.mode {
        Some(m) => linuxkit_config::parse_mode(m).ok_or_else(|| {
            err(format!(
                "`mode` {m:?} is not an octal mode such as \"0644\""
            ))
        })?,
        None => 0o644,
    };
    let globs: Vec<Wildcard> = c.sources.iter().map(|g| Wildcard::path(g)).collect();
    let mut sources: Vec<String> = layer
        .paths()
        .filter(|p| globs.iter().any(|g| g.is_match(p)))
        .map(str::to_string)
        .collect();
    sources.sort();
    let mut data = Vec::new();
    for s in &sources {
        if let Some((e, bytes)) = layer.get(s)
            && matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. })
        {
            data.extend_from_slice(bytes);
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                data.push(b'\n');
            }
        }
    }
    if data.is_empty() {
        return Err(err(format!(
            "no file of the image matches `sources` {:?}; check the globs against the package contents",
            c.sources
        )));
    }
    let entry = Entry {
        mode,
        ..Entry::file(&path, data.len() as u64)
    };
    layer.put(entry, data);
    Ok(())
}

/// `users:` and `groups:` appended to `/etc/passwd` and `/etc/group`
/// (created 0644 if absent), in the order given.
pub(super) fn add_accounts(layer: &mut LayerTree, pkg: &Package) -> Result<(), BuildError> {
    let info = pkg.build_yml();
    let lists = [
        (
            "etc/passwd",
            "users",
            info.users
                .iter()
                .map(|u| (u.name.clone(), u.passwd_line()))
                .collect::<Vec<_>>(),
        ),
        (
            "etc/group",
            "groups",
            info.groups
                .iter()
                .map(|g| (g.name.clone(), g.group_line()))
                .collect(),
        ),
    ];
    for (path, key, lines) in lists {
        if lines.is_empty() {
            continue;
        }
        let err = |message: String| BuildError::Package {
            build_yml: pkg.build_yml_name(),
            message: format!("`{key}`: {message}"),
        };
        let (mut entry, mut text) = match layer.get(path) {
            None => (
                Entry {
                    mode: 0o644,
                    ..Entry::file(path, 0)
                },
                String::new(),
            ),
            Some((e, data)) if matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. }) => {
                let mut e = e.clone();
                e.kind = EntryKind::File;
                (e, String::from_utf8_lossy(data).into_owned())
            }
            Some(_) => return Err(err(format!("/{path} in the image is not a regular file"))),
        };
        let existing: BTreeSet<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        if let Some((n, _)) = lines.iter().find(|(n, _)| existing.contains(n.as_str())) {
            return Err(err(format!(
                "`{n}` is already in /{path} (from the Debian packages or `files:`); remove it from `{key}:`"
            )));
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for (_, l) in &lines {
            text.push_str(l);
            text.push('\n');
        }
        entry.size = text.len() as u64;
        layer.put(entry, text.into_bytes());
    }
    Ok(())
}
