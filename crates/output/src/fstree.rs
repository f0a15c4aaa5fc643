//! The root filesystem stream gathered into a tree, for the file system
//! image formats (squashfs, EROFS, ISO 9660), which need whole directories
//! before they can write them.
//!
//! Only metadata stays in memory: file contents are spooled to an anonymous
//! temporary file and read back when the image is written. Entries under
//! `boot/` are kept aside (the kernel and command line become files of
//! their own), as for `kernel+initrd`.
//!
//! The stream may name a path more than once; as when a tar is extracted,
//! the last entry wins, except that a directory entry over a directory only
//! changes its metadata, and nothing replaces a non-empty directory (the
//! kernel's initramfs unpacker and tar both leave it in place). Missing
//! parent directories are created (0755, root, [`DEFAULT_MTIME`]), and
//! symbolic links among the parents are followed, as extraction would.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use linuxkit_rootfs::{DEFAULT_MTIME, Entry, EntryKind, EntrySink};

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Children by name (bytewise order).
    Dir(BTreeMap<String, usize>),
    /// Content at `offset` in the spool (`source` 0) or in the external
    /// source `source` - 1 (see [`FsTree::add_external`],
    /// [`FsTree::add_shared`]), `Entry::size` bytes long.
    File {
        offset: u64,
        source: usize,
    },
    Symlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

/// One inode. Hard links are several directory entries naming one node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Permission bits only.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub size: u64,
    /// Directory entries naming this node (for directories: 1).
    pub links: u32,
}

impl Node {
    fn dir(mtime: u64) -> Node {
        Node {
            kind: Kind::Dir(BTreeMap::new()),
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime,
            size: 0,
            links: 1,
        }
    }

    /// The `st_mode` file type bits.
    pub fn type_bits(&self) -> u32 {
        match self.kind {
            Kind::Dir(_) => 0o040000,
            Kind::File { .. } => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::Char(..) => 0o020000,
            Kind::Block(..) => 0o060000,
            Kind::Fifo => 0o010000,
        }
    }

    pub fn children(&self) -> Option<&BTreeMap<String, usize>> {
        match &self.kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        }
    }
}

/// The Linux `new_encode_dev` encoding of a device number, which both
/// squashfs and EROFS store.
pub(crate) fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// The gathered tree; node 0 is the root directory.
pub struct FsTree {
    pub(crate) nodes: Vec<Node>,
    spool: File,
    spool_len: u64,
    /// Contents used in place, not spooled.
    external: Vec<External>,
    /// Contents of the `boot/` files, by path.
    pub boot: HashMap<String, Vec<u8>>,
}

/// A content used in place.
enum External {
    File(File),
    /// Already in memory (a kernel): spooling it would write and read it
    /// once more.
    Shared(Arc<Vec<u8>>),
}

fn other(msg: String) -> linuxkit_rootfs::Error {
    linuxkit_rootfs::Error::Other(msg)
}

impl FsTree {
    /// A tree spooling file contents to an unnamed temporary file in
    /// `spool_dir` (the system's temporary directory when `None`).
    pub fn new(spool_dir: Option<&Path>) -> io::Result<FsTree> {
        let spool = match spool_dir {
            Some(d) => tempfile::tempfile_in(d)?,
            None => tempfile::tempfile()?,
        };
        Ok(FsTree {
            nodes: vec![Node::dir(DEFAULT_MTIME)],
            spool,
            spool_len: 0,
            external: Vec::new(),
            boot: HashMap::new(),
        })
    }

    /// A reader over a file node's content.
    pub(crate) fn content(&self, node: &Node) -> SpoolReader<'_> {
        let (offset, source) = match node.kind {
            Kind::File { offset, source } => (offset, source),
            _ => (0, 0),
        };
        SpoolReader {
            source: match source {
                0 => Source::File(&self.spool),
                n => match &self.external[n - 1] {
                    External::File(f) => Source::File(f),
                    External::Shared(b) => Source::Bytes(b),
                },
            },
            offset,
            remaining: if matches!(node.kind, Kind::File { .. }) {
                node.size
            } else {
                0
            },
        }
    }

    /// The node at `path`, without following symbolic links.
    pub(crate) fn find(&self, path: &str) -> Option<usize> {
        let mut n = 0;
        for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            n = *self.nodes[n].children()?.get(c)?;
        }
        Some(n)
    }

    /// The latest modification time in the tree (the image's build time).
    pub fn max_mtime(&self) -> u64 {
        self.nodes.iter().map(|n| n.mtime).max().unwrap_or(0)
    }

    /// Resolves `path` to a node, following symbolic links among the
    /// parents (and the last component too when `follow_last`); with
    /// `create`, missing directories are made.
    fn lookup(&mut self, path: &str, follow_last: bool, create: bool) -> Result<usize, String> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .rev()
            .map(str::to_string)
            .collect();
        let mut stack = vec![0usize];
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            let cur = *stack.last().expect("root stays");
            if comp == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Kind::Dir(children) = &self.nodes[cur].kind else {
                return Err(format!("{path}: a parent is not a directory"));
            };
            let next = match children.get(&comp) {
                Some(&n) => n,
                None if create => {
                    let n = self.nodes.len();
                    self.nodes.push(Node::dir(DEFAULT_MTIME));
                    if let Kind::Dir(c) = &mut self.nodes[cur].kind {
                        c.insert(comp, n);
                    }
                    n
                }
                None => return Err(format!("{path}: no such file or directory")),
            };
            if let Kind::Symlink(target) = &self.nodes[next].kind
                && (!pending.is_empty() || follow_last)
            {
                hops += 1;
                if hops > 40 {
                    return Err(format!("{path}: too many levels of symbolic links"));
                }
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .rev()
                        .map(str::to_string),
                );
                continue;
            }
            stack.push(next);
        }
        Ok(*stack.last().expect("root stays"))
    }

    /// Puts `node` under `name` in directory `parent` (see the module docs
    /// for what replaces what).
    fn place(&mut self, parent: usize, name: &str, node: usize) {
        let Kind::Dir(children) = &self.nodes[parent].kind else {
            unreachable!("parents are directories")
        };
        if let Some(&old) = children.get(name) {
            if old == node {
                return;
            }
            if let Kind::Dir(c) = &self.nodes[old].kind
                && !c.is_empty()
            {
                return;
            }
            self.nodes[old].links -= 1;
        }
        self.nodes[node].links += 1;
        if let Kind::Dir(children) = &mut self.nodes[parent].kind {
            children.insert(name.to_string(), node);
        }
    }

    /// Adds an entry as it is (`boot/` included, unlike [`EntrySink::add`]).
    pub(crate) fn add_entry(
        &mut self,
        e: &Entry,
        data: &mut dyn Read,
    ) -> linuxkit_rootfs::Result<()> {
        // squashfs, EROFS and ISO 9660 alike: Linux reads no longer names.
        crate::error::check_limits(e, "image", false)?;
        let path = e.path.trim_matches('/');
        let (parent_path, name) = match path.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", path),
        };
        if name.is_empty() || name == "." {
            // The root itself.
            if e.kind == EntryKind::Dir {
                let r = &mut self.nodes[0];
                (r.mode, r.uid, r.gid, r.mtime) = (e.mode & 0o7777, e.uid, e.gid, e.mtime);
            }
            return Ok(());
        }
        if name == ".." {
            return Err(other(format!("{}: invalid path", e.path)));
        }
        let parent = self
            .lookup(parent_path, true, true)
            .map_err(|m| other(format!("{}: {m}", e.path)))?;
        let existing = match &self.nodes[parent].kind {
            Kind::Dir(c) => c.get(name).copied(),
            _ => {
                return Err(other(format!("{}: the parent is not a directory", e.path)));
            }
        };
        let kind = match &e.kind {
            EntryKind::Dir => {
                if let Some(old) = existing
                    && matches!(self.nodes[old].kind, Kind::Dir(_))
                {
                    let n = &mut self.nodes[old];
                    (n.mode, n.uid, n.gid, n.mtime) = (e.mode & 0o7777, e.uid, e.gid, e.mtime);
                    return Ok(());
                }
                Kind::Dir(BTreeMap::new())
            }
            EntryKind::Hardlink { target } => {
                let t = self
                    .lookup(target.trim_matches('/'), false, false)
                    .map_err(|m| other(format!("{}: hard link to {m}", e.path)))?;
                if matches!(self.nodes[t].kind, Kind::Dir(_)) {
                    return Err(other(format!(
                        "{}: hard link to the directory {target}",
                        e.path
                    )));
                }
                self.place(parent, name, t);
                return Ok(());
            }
            EntryKind::File => {
                let offset = self.spool_len;
                let copied =
                    io::copy(&mut data.take(e.size), &mut &self.spool).map_err(|source| {
                        linuxkit_rootfs::Error::Io {
                            context: format!("cannot spool {}", e.path),
                            source,
                        }
                    })?;
                if copied != e.size {
                    return Err(other(format!(
                        "{}: {copied} bytes of content, expected {}",
                        e.path, e.size
                    )));
                }
                self.spool_len += copied;
                Kind::File { offset, source: 0 }
            }
            EntryKind::Symlink { target } => Kind::Symlink(target.clone()),
            EntryKind::Char { major, minor } => Kind::Char(*major, *minor),
            EntryKind::Block { major, minor } => Kind::Block(*major, *minor),
            EntryKind::Fifo => Kind::Fifo,
        };
        let n = self.nodes.len();
        self.nodes.push(Node {
            size: if matches!(kind, Kind::File { .. }) {
                e.size
            } else {
                0
            },
            kind,
            mode: e.mode & 0o7777,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            links: 0,
        });
        self.place(parent, name, n);
        Ok(())
    }

    /// Adds a regular file (0644, root) at `path` whose content is all of
    /// `file`, `len` bytes, read in place when the image is written rather
    /// than copied to the spool (an initrd, an ESP image). Returns the
    /// file's source number, for [`FsTree::add_external_part`].
    pub(crate) fn add_external(&mut self, path: &str, file: File, len: u64) -> io::Result<usize> {
        self.external.push(External::File(file));
        let source = self.external.len();
        self.add_external_part(path, source, 0, len)?;
        Ok(source)
    }

    /// Adds a regular file (0644, root) at `path` whose content is `data`,
    /// shared rather than copied to the spool.
    pub(crate) fn add_shared(&mut self, path: &str, data: Arc<Vec<u8>>) -> io::Result<()> {
        let len = data.len() as u64;
        self.external.push(External::Shared(data));
        self.add_external_part(path, self.external.len(), 0, len)
    }

    /// Adds a regular file (0644, root) at `path` whose content is `len`
    /// bytes at `offset` of an external file added before.
    pub(crate) fn add_external_part(
        &mut self,
        path: &str,
        source: usize,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        if source == 0 || source > self.external.len() {
            return Err(io::Error::other(format!(
                "{path}: no external file {source}"
            )));
        }
        self.add_entry(&Entry::file(path, 0), &mut io::empty())
            .map_err(io::Error::other)?;
        let n = self
            .find(path)
            .ok_or_else(|| io::Error::other(format!("{path}: not added")))?;
        let node = &mut self.nodes[n];
        node.kind = Kind::File { offset, source };
        node.size = len;
        Ok(())
    }

    /// Visits every directory entry depth-first in name order, parents
    /// before children: `f(path, node index)`; the root is not visited.
    pub(crate) fn walk(&self, mut f: impl FnMut(&str, usize) -> io::Result<()>) -> io::Result<()> {
        let mut stack: Vec<(String, usize)> = Vec::new();
        let push_children = |stack: &mut Vec<(String, usize)>, prefix: &str, dir: usize| {
            if let Some(c) = self.nodes[dir].children() {
                for (name, &n) in c.iter().rev() {
                    let p = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    stack.push((p, n));
                }
            }
        };
        push_children(&mut stack, "", 0);
        while let Some((path, n)) = stack.pop() {
            f(&path, n)?;
            push_children(&mut stack, &path, n);
        }
        Ok(())
    }
}

impl EntrySink for FsTree {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        if crate::cpio::divert_boot(e, data, &mut self.boot)? {
            return Ok(());
        }
        self.add_entry(e, data)
    }
}

/// Reads a stretch of the spool without moving a shared file position, so
/// any number of readers can be open at once on one descriptor.
pub(crate) struct SpoolReader<'a> {
    source: Source<'a>,
    offset: u64,
    remaining: u64,
}

enum Source<'a> {
    File(&'a File),
    Bytes(&'a [u8]),
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = match self.source {
            Source::File(f) => f.read_at(&mut buf[..want], self.offset)?,
            Source::Bytes(b) => {
                let at = usize::try_from(self.offset)
                    .unwrap_or(usize::MAX)
                    .min(b.len());
                let n = want.min(b.len() - at);
                buf[..n].copy_from_slice(&b[at..at + n]);
                n
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spooled content is shorter than expected",
            ));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn add(t: &mut FsTree, e: Entry, data: &[u8]) {
        t.add(&e, &mut Cursor::new(data.to_vec())).unwrap();
    }

    fn find(t: &mut FsTree, p: &str) -> Option<usize> {
        t.lookup(p, false, false).ok()
    }

    #[test]
    fn last_entry_wins_and_parents_are_made() {
        let mut t = FsTree::new(None).unwrap();
        add(&mut t, Entry::file("a/b/c", 1), b"x");
        add(&mut t, Entry::file("a/b/c", 2), b"yz");
        let c = find(&mut t, "a/b/c").unwrap();
        let mut s = String::new();
        t.content(&t.nodes[c]).read_to_string(&mut s).unwrap();
        assert_eq!(s, "yz");
        let a = find(&mut t, "a").unwrap();
        assert_eq!(t.nodes[a].mode, 0o755);
        // A symlink does not replace a non-empty directory.
        add(&mut t, Entry::symlink("a", "elsewhere"), b"");
        let a = find(&mut t, "a").unwrap();
        assert!(matches!(t.nodes[a].kind, Kind::Dir(_)));
    }

    #[test]
    fn symlinked_parents_are_followed_and_boot_is_kept_aside() {
        let mut t = FsTree::new(None).unwrap();
        add(&mut t, Entry::dir("usr/lib"), b"");
        add(&mut t, Entry::symlink("lib", "usr/lib"), b"");
        add(&mut t, Entry::file("lib/x", 0), b"");
        assert!(find(&mut t, "usr/lib/x").is_some());
        add(&mut t, Entry::file("boot/kernel", 3), b"krn");
        assert_eq!(t.boot["boot/kernel"], b"krn");
        assert!(find(&mut t, "boot").is_none());
    }

    #[test]
    fn hard_links_share_a_node() {
        let mut t = FsTree::new(None).unwrap();
        add(&mut t, Entry::file("f", 1), b"x");
        add(
            &mut t,
            Entry {
                kind: EntryKind::Hardlink { target: "f".into() },
                ..Entry::file("g", 0)
            },
            b"",
        );
        let f = find(&mut t, "f").unwrap();
        assert_eq!(find(&mut t, "g"), Some(f));
        assert_eq!(t.nodes[f].links, 2);
    }

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        assert_eq!(encode_dev(1, 3), 0x103);
        assert_eq!(encode_dev(259, 0x12345), 0x12310345);
    }
}
