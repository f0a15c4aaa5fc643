//! Directories as lists of directory records, and where the records fall
//! in a directory's sectors (no record crosses one).

use super::encode::{SECTOR, sectors};
use super::rock_ridge::SystemUse;

/// One directory record.
pub(super) struct Record {
    /// The ISO 9660 identifier (`\0` and `\x01` for `.` and `..`).
    pub(super) ident: Vec<u8>,
    pub(super) node: usize,
    pub(super) su: SystemUse,
}

impl Record {
    pub(super) fn len(&self) -> usize {
        let base = 33 + self.ident.len() + (1 - self.ident.len() % 2);
        let len = base + self.su.bytes.len();
        len + len % 2
    }
}

pub(super) struct Dir {
    pub(super) node: usize,
    /// Index of the parent in `IsoLayout::dirs` (the root is its own).
    pub(super) parent: usize,
    pub(super) ident: Vec<u8>,
    pub(super) records: Vec<Record>,
    pub(super) sector: u32,
    pub(super) sectors: u32,
}

/// Offsets of records of the given lengths in a directory (no record
/// crosses a sector), and the directory's length in sectors.
pub(super) fn place_records(lens: impl Iterator<Item = usize>) -> (Vec<usize>, u32) {
    let mut offsets = Vec::new();
    let mut at = 0;
    for len in lens {
        if at % SECTOR + len > SECTOR {
            at = at.next_multiple_of(SECTOR);
        }
        offsets.push(at);
        at += len;
    }
    (offsets, sectors(at as u64).max(1))
}
