//! The whole root filesystem stream made safe to extract: no entry of it
//! is written through, or over, a symbolic link an earlier entry made.
//!
//! # Why
//!
//! Each image is checked on its own ([`crate::flatten_layers`] refuses a
//! layer that writes through its own links), but the stream is several
//! images, generated files and `files:` one after another, and the
//! reference concatenates them as they are. So an `init` image can ship
//! `lib -> /somewhere` (or `lib -> ../..`) and a later image or a `files:`
//! entry `lib/x`; or the standard `etc/resolv.conf` link is followed by a
//! `files:` entry that makes `etc/resolv.conf` a file. An extractor that
//! follows links it has just created (Python's `tarfile` without a filter,
//! `cpio -i`) then writes outside its destination: through `lib` for
//! `lib/x`, and through the old link for a directory or file that replaces
//! it (it creates the directory's children, or opens the file, through the
//! link instead of removing it).
//!
//! # What the booted VM sees, and what we write
//!
//! The kernel's initramfs unpacker (`init/initramfs.c`) creates each entry
//! with the ordinary system calls, from the root of the VM: the parents of
//! a name are resolved following links, inside the VM (an absolute target
//! starts at its root, `..` stops there); a missing or non-directory parent
//! makes it skip the entry. Before creating an entry it removes what is at
//! the name when the file types differ (`clean_path`: `unlink`, or `rmdir`,
//! which fails on a non-empty directory, and then so does the creation);
//! a link always replaces a link. Docker's extraction (chrooted) and
//! overlayfs, for a bundle's image, give the same tree. So this sink keeps
//! the tree the kernel would have built so far and, per entry:
//!
//! - **beneath a link**: writes it at the path the kernel would create it
//!   at (`lib/x` as `somewhere/x`), or leaves it out where the kernel would
//!   skip it (the link dangles, loops, or ends at a non-directory), with a
//!   warning naming the link, the entry and where each came from;
//! - **replacing a link** with a directory, file or other non-link: first
//!   writes a link of the name to itself (`lib -> lib`), which every
//!   extractor replaces as it replaces any link, and which leads nowhere:
//!   one that would follow the old link now fails on a loop (the name
//!   itself stays inside the destination) instead of writing outside. The
//!   kernel, GNU tar and Docker remove it and create the entry, as they
//!   would have removed the old link. Where the paths of the whole stream
//!   are known beforehand ([`Resolve::with_lookahead`], the initrd), a
//!   link that a later entry replaces is left out instead: GNU `cpio -i`
//!   replaces no entry by one as old, so a breaker would not help it;
//! - **a link over a non-empty directory**: left out, with a warning (the
//!   kernel cannot remove the directory, so keeps it; an extractor that
//!   removes it would make the directory's later entries go through the
//!   link).
//!
//! Everything else passes unchanged, so a stream without such
//! combinations, which is every stream the reference's examples build, is
//! written byte for byte as before. The boot test
//! `the_kernel_unpacks_links_in_the_stream_as_resolve_writes_them`
//! (`crates/output/tests/boot.rs`) checks in QEMU that the kernel makes
//! the same tree of a stream written as it is and through this sink. The reference writes these
//! combinations as they are (`--input-tar` and Python users of its tars
//! write through the links); the booted VM is the same either way.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use crate::entry::{Entry, EntryKind, EntrySink};
use crate::error::Result;

/// The most links one path may go through (the kernel's `MAXSYMLINKS`).
const MAX_HOPS: usize = 40;

#[derive(Debug)]
enum Kind {
    Dir(HashMap<String, usize>),
    Link(String),
    Other,
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Where the entry came from, for warnings.
    provenance: Option<(String, String)>,
    /// Whether it was passed on (a link the lookahead knows to be replaced
    /// is not).
    emitted: bool,
}

/// The paths still to come, for [`Resolve::with_lookahead`]: how many
/// entries each path has still to come. (An entry beneath a link always
/// comes after one replacing it, in the stream assembly makes: every part
/// writes the parents of its entries.)
#[derive(Default)]
struct Lookahead(HashMap<String, u32>);

impl Lookahead {
    fn add(&mut self, path: &str) {
        *self.0.entry(path.to_string()).or_default() += 1;
    }

    fn take(&mut self, path: &str) {
        if let Some(n) = self.0.get_mut(path) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether an entry still to come replaces `path`.
    fn replaced(&self, path: &str) -> bool {
        self.0.get(path).is_some_and(|n| *n > 0)
    }
}

/// Where a parent path leads.
enum Walk {
    /// Through no link: the path as written (`node` is `None` where it
    /// leaves the tree, which only a stream without parent directories
    /// does).
    Literal(Option<usize>),
    /// Through the link `via`, to the directory `node` at `path`.
    Resolved {
        node: usize,
        path: Vec<String>,
        via: usize,
    },
    /// Through the link `via`, to nothing the kernel could create in.
    Fails { via: usize, why: &'static str },
}

/// The sink (see the module docs). It holds nothing back: every entry is
/// passed on (or left out) when it comes.
pub struct Resolve<'a> {
    inner: &'a mut dyn EntrySink,
    nodes: Vec<Node>,
    /// Paths of the links a warning was given for.
    warned: HashSet<String>,
    lookahead: Option<Lookahead>,
}

impl<'a> Resolve<'a> {
    /// A sink passing the stream on to `inner`, made safe.
    pub fn new(inner: &'a mut dyn EntrySink) -> Resolve<'a> {
        Resolve {
            inner,
            nodes: vec![Node {
                kind: Kind::Dir(HashMap::new()),
                provenance: None,
                emitted: true,
            }],
            warned: HashSet::new(),
            lookahead: None,
        }
    }

    /// A sink that knows the paths of the whole stream beforehand, in
    /// order (as written, without a trailing `/`; others are taken as
    /// unknown): it leaves out a link that a later entry at its path
    /// replaces, rather than break it (module docs). Needed where extractors
    /// do not replace what they find (GNU `cpio -i` keeps an entry as new
    /// as the one replacing it); the initrd, which has its parts' paths
    /// beforehand, is written so.
    pub fn with_lookahead<'p>(
        inner: &'a mut dyn EntrySink,
        paths: impl IntoIterator<Item = &'p str>,
    ) -> Resolve<'a> {
        let mut l = Lookahead::default();
        for p in paths {
            l.add(p);
        }
        Resolve {
            lookahead: Some(l),
            ..Resolve::new(inner)
        }
    }

    fn children(&self, n: usize) -> Option<&HashMap<String, usize>> {
        match &self.nodes[n].kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        }
    }

    /// Follows `components` from the root as the kernel would.
    fn walk(&self, components: &[&str]) -> Walk {
        let mut pending: Vec<String> = components.iter().rev().map(|c| c.to_string()).collect();
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut via = None;
        let mut hops = 0;
        let here = |stack: &[(usize, String)]| stack.last().map_or(0, |(n, _)| *n);
        while let Some(comp) = pending.pop() {
            if comp.is_empty() || comp == "." {
                continue;
            }
            if comp == ".." {
                stack.pop();
                continue;
            }
            let next = self
                .children(here(&stack))
                .and_then(|c| c.get(&comp).copied());
            let Some(next) = next else {
                return match via {
                    None => Walk::Literal(None),
                    Some(via) => Walk::Fails {
                        via,
                        why: if self.children(here(&stack)).is_some() {
                            "it leads to a directory that does not exist (yet)"
                        } else {
                            "it leads through something that is not a directory"
                        },
                    },
                };
            };
            if let Kind::Link(target) = &self.nodes[next].kind {
                via.get_or_insert(next);
                hops += 1;
                if hops > MAX_HOPS {
                    return Walk::Fails {
                        via: via.unwrap_or(next),
                        why: "it goes through too many levels of symbolic links",
                    };
                }
                if target.starts_with('/') {
                    stack.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
                continue;
            }
            stack.push((next, comp));
        }
        let node = here(&stack);
        match via {
            None => Walk::Literal(Some(node)),
            Some(via) if self.children(node).is_none() => Walk::Fails {
                via,
                why: "it leads to something that is not a directory",
            },
            Some(via) => Walk::Resolved {
                node,
                path: stack.into_iter().map(|(_, c)| c).collect(),
                via,
            },
        }
    }

    /// What node `n` is and where it came from, for messages.
    fn describe(&self, n: usize) -> String {
        let prov = match &self.nodes[n].provenance {
            Some((source, location)) => format!(" ({location}, {source})"),
            None => String::new(),
        };
        match &self.nodes[n].kind {
            Kind::Link(t) => format!("-> `{t}`{prov}"),
            _ => prov,
        }
    }

    /// Warns once per `key` and sink, and once per message in the
    /// process (each output of a build resolves the same stream).
    fn warn_once(&mut self, key: &str, msg: impl FnOnce() -> String) {
        static SAID: std::sync::Mutex<Option<HashSet<String>>> = std::sync::Mutex::new(None);
        if self.warned.insert(key.to_string()) {
            let msg = msg();
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if said.get_or_insert_default().insert(msg.clone()) {
                tracing::warn!("{msg}");
            }
        }
    }
}

fn from(e: &Entry) -> String {
    match &e.provenance {
        Some((source, location)) => format!(" ({location}, {source})"),
        None => String::new(),
    }
}

impl EntrySink for Resolve<'_> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        let trimmed = e.path.trim_end_matches('/');
        let slash = &e.path[trimmed.len()..];
        let comps: Vec<&str> = trimmed.split('/').filter(|c| !c.is_empty()).collect();
        if let Some(l) = &mut self.lookahead {
            l.take(trimmed);
        }
        let Some((name, parents)) = comps.split_last() else {
            return self.inner.add(e, data);
        };
        if *name == "." || *name == ".." {
            return self.inner.add(e, data);
        }
        let (parent, new_path) = match self.walk(parents) {
            Walk::Literal(Some(p)) if self.children(p).is_some() => (p, None),
            // Outside what the stream made: nothing to resolve or record.
            Walk::Literal(_) => return self.inner.add(e, data),
            Walk::Fails { via, why } => {
                let link = self.describe(via);
                self.warn_once(&e.path, || {
                    format!(
                        "`{}`{} is left out: a parent of it is a symbolic link {link}, and {why}, so the VM's kernel would not create it",
                        e.path,
                        from(e)
                    )
                });
                return Ok(());
            }
            Walk::Resolved { node, path, via } => {
                let mut p = path.join("/");
                if !p.is_empty() {
                    p.push('/');
                }
                p.push_str(name);
                let link = self.describe(via);
                let (what, at) = (e.path.clone(), p.clone());
                self.warn_once(&format!("link {via}"), || {
                    format!(
                        "`{what}`{} is beneath a symbolic link {link}: it is written at `{at}`, where the VM's kernel creates it (and so are other entries beneath that link)",
                        from(e)
                    )
                });
                (node, Some(p))
            }
        };
        // A hard link names its target by the path it was written as.
        let mut target_path = None;
        let mut link_copy = None;
        if let EntryKind::Hardlink { target } = &e.kind {
            let t: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
            if let Some((tname, tparents)) = t.split_last() {
                match self.walk(tparents) {
                    Walk::Resolved { node, path, .. }
                        if self.children(node).is_some_and(|c| c.contains_key(*tname)) =>
                    {
                        let mut p = path.join("/");
                        if !p.is_empty() {
                            p.push('/');
                        }
                        p.push_str(tname);
                        target_path = Some(p);
                    }
                    Walk::Resolved { .. } | Walk::Fails { .. } => {
                        self.warn_once(&e.path, || {
                            format!(
                                "`{}`{} is left out: it is a hard link to `{target}`, which is not there",
                                e.path,
                                from(e)
                            )
                        });
                        return Ok(());
                    }
                    Walk::Literal(_) => {}
                }
                // A hard link to a link that was left out is a copy of it.
                if let Walk::Literal(Some(node)) | Walk::Resolved { node, .. } = self.walk(tparents)
                    && let Some(&t) = self.children(node).and_then(|c| c.get(*tname))
                    && let Kind::Link(target) = &self.nodes[t].kind
                    && !self.nodes[t].emitted
                {
                    link_copy = Some(target.clone());
                }
            }
        }
        let path = match &new_path {
            Some(p) => format!("{p}{slash}"),
            None => e.path.clone(),
        };
        let existing = self.children(parent).and_then(|c| c.get(*name).copied());
        let is_link = matches!(e.kind, EntryKind::Symlink { .. }) || link_copy.is_some();
        let existing_emitted = existing.is_some_and(|x| self.nodes[x].emitted);
        match existing.map(|x| &self.nodes[x].kind) {
            Some(Kind::Link(_)) if !is_link && existing_emitted => {
                // The breaker (module docs): a link of the name to itself.
                let breaker = Entry {
                    provenance: e.provenance.clone(),
                    ..Entry::symlink(path.trim_end_matches('/'), *name)
                };
                tracing::debug!(
                    "`{path}` replaces a symbolic link; a link to itself is written first"
                );
                self.inner.add(&breaker, &mut std::io::empty())?;
            }
            Some(Kind::Dir(c)) if is_link && !c.is_empty() => {
                let dir = existing.expect("matched");
                let before = self.describe(dir);
                self.warn_once(&e.path, || {
                    format!(
                        "`{}`{} is left out: it is a symbolic link, but `{path}` is already a directory with entries{before}, which the VM's kernel keeps",
                        e.path,
                        from(e)
                    )
                });
                return Ok(());
            }
            _ => {}
        }
        let rewritten;
        let out = if new_path.is_some() || target_path.is_some() || link_copy.is_some() {
            rewritten = Entry {
                path,
                kind: match (&e.kind, target_path, link_copy) {
                    (_, _, Some(target)) => EntryKind::Symlink { target },
                    (EntryKind::Hardlink { .. }, Some(target), None) => {
                        EntryKind::Hardlink { target }
                    }
                    (k, _, None) => k.clone(),
                },
                ..e.clone()
            };
            &rewritten
        } else {
            e
        };
        let emitted = !(is_link && self.lookahead.as_ref().is_some_and(|l| l.replaced(trimmed)));
        if emitted {
            self.inner.add(out, data)?;
        }
        // Record what the kernel now has at the name.
        let kind = match &out.kind {
            EntryKind::Dir => {
                if let Some(x) = existing
                    && matches!(self.nodes[x].kind, Kind::Dir(_))
                {
                    return Ok(());
                }
                Kind::Dir(HashMap::new())
            }
            EntryKind::Symlink { target } => Kind::Link(target.clone()),
            _ => {
                if let Some(x) = existing
                    && matches!(&self.nodes[x].kind, Kind::Dir(c) if !c.is_empty())
                {
                    // The kernel cannot replace a non-empty directory.
                    return Ok(());
                }
                Kind::Other
            }
        };
        let n = self.nodes.len();
        self.nodes.push(Node {
            kind,
            provenance: e.provenance.clone(),
            emitted,
        });
        if let Kind::Dir(c) = &mut self.nodes[parent].kind {
            c.insert(name.to_string(), n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(String, EntryKind)>);

    impl EntrySink for Collect {
        fn add(&mut self, e: &Entry, _: &mut dyn Read) -> Result<()> {
            self.0.push((e.path.clone(), e.kind.clone()));
            Ok(())
        }
    }

    fn run(entries: &[Entry]) -> Vec<String> {
        let mut out = Collect::default();
        let mut r = Resolve::new(&mut out);
        for e in entries {
            r.add(e, &mut std::io::empty()).unwrap();
        }
        out.0
            .into_iter()
            .map(|(p, k)| match k {
                EntryKind::Symlink { target } => format!("{p} -> {target}"),
                EntryKind::Hardlink { target } => format!("{p} => {target}"),
                _ => p,
            })
            .collect()
    }

    #[test]
    fn a_stream_without_links_in_the_way_is_unchanged() {
        let entries = [
            Entry::dir("etc/"),
            Entry::symlink("etc/resolv.conf", "/run/resolv.conf"),
            Entry::symlink("etc/resolv.conf", "/run/other"),
            Entry::dir("etc/"),
            Entry::file("etc/hosts", 0),
            Entry::symlink("usr", "/"),
        ];
        let want: Vec<String> = entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Symlink { target } => format!("{} -> {target}", e.path),
                _ => e.path.clone(),
            })
            .collect();
        assert_eq!(run(&entries), want);
    }

    #[test]
    fn entries_beneath_a_link_go_where_the_kernel_puts_them() {
        let got = run(&[
            Entry::dir("usr/"),
            Entry::dir("usr/lib/"),
            Entry::symlink("lib", "usr/lib"),
            Entry::symlink("up", "../../.."),
            Entry::symlink("abs", "/usr/./lib/"),
            Entry::file("lib/a", 0),
            Entry::file("up/b", 0),
            Entry::dir("abs/c/"),
            Entry::file("abs/c/d", 0),
            Entry {
                kind: EntryKind::Hardlink {
                    target: "lib/a".into(),
                },
                ..Entry::file("e", 0)
            },
        ]);
        assert_eq!(
            got,
            [
                "usr/",
                "usr/lib/",
                "lib -> usr/lib",
                "up -> ../../..",
                "abs -> /usr/./lib/",
                "usr/lib/a",
                "b",
                "usr/lib/c/",
                "usr/lib/c/d",
                "e => usr/lib/a",
            ]
        );
    }

    #[test]
    fn what_the_kernel_would_skip_is_left_out() {
        let got = run(&[
            Entry::symlink("dangling", "/nowhere"),
            Entry::file("dangling/x", 0),
            Entry::symlink("loop", "loop"),
            Entry::file("loop/x", 0),
            Entry::file("f", 0),
            Entry::symlink("tofile", "f"),
            Entry::file("tofile/x", 0),
            Entry::dir("d/"),
            Entry::file("d/x", 0),
            Entry::symlink("d", "/"),
            Entry::file("d/y", 0),
        ]);
        assert_eq!(
            got,
            [
                "dangling -> /nowhere",
                "loop -> loop",
                "f",
                "tofile -> f",
                "d/",
                "d/x",
                "d/y"
            ]
        );
    }

    #[test]
    fn with_lookahead_a_replaced_link_is_left_out() {
        let entries = [
            Entry::dir("etc/"),
            Entry::symlink("etc/resolv.conf", "/run/resolv.conf"),
            Entry::file("etc/resolv.conf", 0),
            Entry::symlink("lib", "/outside"),
            Entry::symlink("up", "usr"),
            Entry::dir("usr/"),
            Entry::file("up/y", 0),
            Entry::dir("lib/"),
            Entry::file("lib/x", 0),
            Entry::symlink("kept", "/anywhere"),
        ];
        let paths: Vec<String> = entries
            .iter()
            .map(|e| e.path.trim_end_matches('/').to_string())
            .collect();
        let mut out = Collect::default();
        let mut r = Resolve::with_lookahead(&mut out, paths.iter().map(String::as_str));
        for e in &entries {
            r.add(e, &mut std::io::empty()).unwrap();
        }
        let got: Vec<String> = out.0.into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            got,
            [
                "etc/",
                "etc/resolv.conf",
                "up",
                "usr/",
                "usr/y",
                "lib/",
                "lib/x",
                "kept"
            ]
        );
    }

    #[test]
    fn replacing_a_link_breaks_it_first() {
        let got = run(&[
            Entry::dir("etc/"),
            Entry::symlink("etc/resolv.conf", "/run/resolv.conf"),
            Entry::file("etc/resolv.conf", 0),
            Entry::symlink("lib", "/outside"),
            Entry::dir("lib/"),
            Entry::file("lib/x", 0),
        ]);
        assert_eq!(
            got,
            [
                "etc/",
                "etc/resolv.conf -> /run/resolv.conf",
                "etc/resolv.conf -> resolv.conf",
                "etc/resolv.conf",
                "lib -> /outside",
                "lib -> lib",
                "lib/",
                "lib/x",
            ]
        );
    }
}
