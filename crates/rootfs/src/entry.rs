//! The root filesystem stream.

use std::io::Read;

use crate::error::Result;

/// The modification time of every entry we generate (2017-04-18 16:30 UTC),
/// the reference's choice, so generated content is reproducible. Content
/// taken from images keeps its own times.
pub const DEFAULT_MTIME: u64 = 1_492_533_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink {
        target: String,
    },
    /// A hard link to an earlier entry of the same stream.
    Hardlink {
        target: String,
    },
    Char {
        major: u32,
        minor: u32,
    },
    Block {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One file system object. `path` is relative (no leading `/`), uses `/`,
/// and never contains `..` or empty components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky), without file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    /// Content length for `File`, else 0.
    pub size: u64,
    /// Extended attributes (`security.capability`, ...), in name order.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Provenance records the reference writes as PAX headers:
    /// `LINUXKIT.source` and `LINUXKIT.location`.
    pub provenance: Option<(String, String)>,
}

impl Entry {
    /// A generated directory (mode 0755, root-owned, fixed time).
    pub fn dir(path: impl Into<String>) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            size: 0,
            xattrs: Vec::new(),
            provenance: None,
        }
    }

    /// A generated regular file (mode 0644, root-owned, fixed time).
    pub fn file(path: impl Into<String>, size: u64) -> Entry {
        Entry {
            kind: EntryKind::File,
            mode: 0o644,
            size,
            ..Entry::dir(path)
        }
    }

    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Entry {
        Entry {
            kind: EntryKind::Symlink {
                target: target.into(),
            },
            mode: 0o777,
            ..Entry::dir(path)
        }
    }
}

/// Where the root filesystem stream goes. `data` holds exactly
/// `entry.size` bytes for files and nothing otherwise.
pub trait EntrySink {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<()>;
}
