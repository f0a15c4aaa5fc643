//! The root filesystem stream.

use std::io::Read;

use crate::error::Result;

/// The modification time of every entry we generate (2017-04-18 16:30 UTC),
/// the reference's choice, so generated content is reproducible. Content
/// taken from images keeps its own times.
pub const DEFAULT_MTIME: u64 = 1_492_533_000;

/// The type of a file system object, with what each type needs besides its
/// metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its content follows in the stream (`Entry::size` bytes).
    File,
    /// A directory; its children are separate, later entries.
    Dir,
    /// A symbolic link.
    Symlink {
        /// What the link points to, stored as is (absolute or relative,
        /// never resolved here).
        target: String,
    },
    /// A hard link to an earlier entry of the same stream.
    Hardlink {
        /// The stream path (relative, like `Entry::path`) of the entry
        /// linked to.
        target: String,
    },
    /// A character device node.
    Char {
        /// The device's major number.
        major: u32,
        /// The device's minor number.
        minor: u32,
    },
    /// A block device node.
    Block {
        /// The device's major number.
        major: u32,
        /// The device's minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One file system object. `path` is relative (no leading `/`), uses `/`,
/// and never contains `..` or empty components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where the object sits in the root filesystem (`etc/hostname`).
    pub path: String,
    /// The object's type and type-specific data (link target, device numbers).
    pub kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky), without file type.
    pub mode: u32,
    /// Numeric owner (no name lookup happens anywhere in the stream).
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time in seconds since the Unix epoch; generated entries
    /// carry [`DEFAULT_MTIME`].
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

    /// A generated symbolic link to `target` (mode 0777, root-owned, fixed
    /// time).
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
    /// Takes the next entry and its content. Entries come in stream order
    /// (parents before children, a hard link after its target); an error
    /// ends the stream.
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<()>;
}
