//! The files a FAT image is made of, as the builder gathers them: a tree
//! of directories by name, and where each file's content comes from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Where a file's content comes from.
#[derive(Debug, Clone)]
pub(super) enum Content {
    /// Shared, so that a large content made elsewhere (a kernel) is not
    /// copied.
    Bytes(Arc<Vec<u8>>),
    Path(PathBuf, u64),
    /// An open file (the staged initrd), read by position.
    Open(Arc<std::fs::File>, u64),
}

impl Content {
    pub(super) fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Path(_, l) | Content::Open(_, l) => *l,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum FatNode {
    Dir(BTreeMap<String, FatNode>),
    File(Content),
}

/// The first key of `dir` equal to `name` ignoring case.
pub(super) fn find_key(dir: &BTreeMap<String, FatNode>, name: &str) -> Option<String> {
    let up = name.to_uppercase();
    dir.keys().find(|k| k.to_uppercase() == up).cloned()
}

pub(super) fn hash_dir(d: &BTreeMap<String, FatNode>, h: &mut Sha256) {
    for (name, node) in d {
        h.update(name.as_bytes());
        h.update([0]);
        match node {
            FatNode::Dir(c) => {
                h.update(b"d");
                hash_dir(c, h);
                h.update(b"e");
            }
            FatNode::File(Content::Bytes(b)) => {
                h.update(b"b");
                h.update((b.len() as u64).to_le_bytes());
                h.update(&b[..]);
            }
            FatNode::File(Content::Path(_, len) | Content::Open(_, len)) => {
                h.update(b"p");
                h.update(len.to_le_bytes());
            }
        }
    }
}
