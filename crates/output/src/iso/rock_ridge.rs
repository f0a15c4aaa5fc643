//! Rock Ridge: the System Use entries that carry what ISO 9660 names
//! cannot (`NM` names, `PX` modes, owners and inode numbers, `PN` device
//! numbers, `SL` symbolic links, `TF` times), and their continuation areas
//! (`CE`) when a directory record has no room for them.

use crate::fstree::Node;

use super::encode::{SECTOR, both32, date7};

/// The length of a `CE` entry.
pub(super) const CE_LEN: usize = 28;

const RRIP_ID: &[u8] = b"RRIP_1991A";

const RRIP_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";

const RRIP_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// A System Use Sharing Protocol entry.
fn su_entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    e.push((4 + body.len()) as u8);
    e.push(1);
    e.extend_from_slice(body);
    e
}

pub(super) fn sp_entry() -> Vec<u8> {
    su_entry(b"SP", &[0xbe, 0xef, 0])
}

pub(super) fn er_entry() -> Vec<u8> {
    let mut body = vec![
        RRIP_ID.len() as u8,
        RRIP_DES.len() as u8,
        RRIP_SRC.len() as u8,
        1,
    ];
    body.extend_from_slice(RRIP_ID);
    body.extend_from_slice(RRIP_DES);
    body.extend_from_slice(RRIP_SRC);
    su_entry(b"ER", &body)
}

pub(super) fn px_entry(node: &Node, nlink: u32, ino: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(40);
    for v in [node.type_bits() | node.mode, nlink, node.uid, node.gid, ino] {
        body.extend_from_slice(&both32(v));
    }
    su_entry(b"PX", &body)
}

pub(super) fn tf_entry(mtime: u64) -> Vec<u8> {
    // Modification, access and attribute change times.
    let mut body = vec![0x0e];
    for _ in 0..3 {
        body.extend_from_slice(&date7(mtime));
    }
    su_entry(b"TF", &body)
}

/// `PN`. Linux reads the high and low words as major and minor (as
/// genisoimage writes them), except that a zero high word with a low word
/// above 255 is the old 8:8 encoding; libisofs reads them as the two halves
/// of a glibc `dev_t`. The 8:8 encoding means the same to both, so it is
/// used when it fits; other numbers are written for Linux.
pub(super) fn pn_entry(major: u32, minor: u32) -> Vec<u8> {
    let (high, low) = if major < 256 && minor < 256 {
        (0, major << 8 | minor)
    } else {
        (major, minor)
    };
    let mut body = both32(high).to_vec();
    body.extend_from_slice(&both32(low));
    su_entry(b"PN", &body)
}

/// `NM` entries for a name, split when longer than one entry holds.
pub(super) fn nm_entries(name: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.chunks(250).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut body = vec![u8::from(i + 1 < chunks.len())];
            body.extend_from_slice(c);
            su_entry(b"NM", &body)
        })
        .collect()
}

/// `SL` entries for a symbolic link target: its components (split when
/// longer than an entry holds), spread over as many entries as needed.
pub(super) fn sl_entries(target: &str) -> Vec<Vec<u8>> {
    // Component records: flags, content.
    let mut comps: Vec<(u8, &[u8])> = Vec::new();
    if target.starts_with('/') {
        comps.push((0x08, b""));
    }
    for c in target.split('/').filter(|c| !c.is_empty()) {
        match c {
            "." => comps.push((0x02, b"")),
            ".." => comps.push((0x04, b"")),
            _ => {
                let chunks: Vec<&[u8]> = c.as_bytes().chunks(248).collect();
                for (i, ch) in chunks.iter().enumerate() {
                    comps.push((u8::from(i + 1 < chunks.len()), ch));
                }
            }
        }
    }
    let mut bodies: Vec<Vec<u8>> = vec![vec![0]];
    for (flags, content) in comps {
        if bodies.last().expect("one body").len() + 2 + content.len() > 251 {
            bodies.push(vec![0]);
        }
        let b = bodies.last_mut().expect("one body");
        b.push(flags);
        b.push(content.len() as u8);
        b.extend_from_slice(content);
    }
    let n = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b[0] = u8::from(i + 1 < n);
            su_entry(b"SL", &b)
        })
        .collect()
}

/// A continuation area: entries, and where it continues (a `CE` at
/// `next_ce` pointing to the following area).
#[derive(Default)]
pub(super) struct Area {
    pub(super) data: Vec<u8>,
    pub(super) next_ce: Option<usize>,
    pub(super) sector: u32,
    pub(super) offset: u32,
}

/// System use bytes of a record, with a `CE` at `ce.0` to area `ce.1`.
pub(super) struct SystemUse {
    pub(super) bytes: Vec<u8>,
    pub(super) ce: Option<(usize, usize)>,
}

/// Puts `entries` in a record with room for `cap` bytes, the rest in
/// chained continuation areas appended to `areas`.
pub(super) fn pack(entries: Vec<Vec<u8>>, cap: usize, areas: &mut Vec<Area>) -> SystemUse {
    let total: usize = entries.iter().map(Vec::len).sum();
    if total <= cap {
        return SystemUse {
            bytes: entries.concat(),
            ce: None,
        };
    }
    let mut rest = entries.into_iter().peekable();
    let mut bytes = Vec::new();
    while let Some(e) = rest.peek() {
        if bytes.len() + e.len() + CE_LEN > cap {
            break;
        }
        bytes.extend(rest.next().expect("peeked"));
    }
    let ce = Some((bytes.len(), areas.len()));
    bytes.resize(bytes.len() + CE_LEN, 0);
    let mut rest: Vec<Vec<u8>> = rest.collect();
    loop {
        let remaining: usize = rest.iter().map(Vec::len).sum();
        let mut area = Area::default();
        if remaining <= SECTOR {
            area.data = rest.concat();
            areas.push(area);
            break;
        }
        let mut taken = 0;
        for e in &rest {
            if area.data.len() + e.len() + CE_LEN > SECTOR {
                break;
            }
            area.data.extend_from_slice(e);
            taken += 1;
        }
        rest.drain(..taken);
        area.next_ce = Some(area.data.len());
        area.data.resize(area.data.len() + CE_LEN, 0);
        areas.push(area);
    }
    SystemUse { bytes, ce }
}

pub(super) fn ce_entry(area: &Area) -> Vec<u8> {
    let mut body = both32(area.sector).to_vec();
    body.extend_from_slice(&both32(area.offset));
    body.extend_from_slice(&both32(area.data.len() as u32));
    su_entry(b"CE", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers() {
        // 8:8 when both fit, else major and minor.
        assert_eq!(&pn_entry(1, 3)[4..12], &both32(0));
        assert_eq!(&pn_entry(1, 3)[12..20], &both32(0x103));
        assert_eq!(&pn_entry(259, 300)[4..12], &both32(259));
        assert_eq!(&pn_entry(259, 300)[12..20], &both32(300));
        assert_eq!(pn_entry(259, 300).len(), 20);
    }

    #[test]
    fn long_names_split() {
        let nm = nm_entries("n".repeat(300).as_bytes());
        assert_eq!((nm.len(), nm[0][4], nm[1][4]), (2, 1, 0));
        assert_eq!((nm[0][2], nm[1][2]), (255, 55));
    }

    #[test]
    fn long_system_use_fields_continue() {
        let mut areas = Vec::new();
        let entries = sl_entries(&format!("/{}/../x", "t".repeat(3000)));
        let total: usize = entries.iter().map(Vec::len).sum();
        let su = pack(entries, 100, &mut areas);
        assert!(su.bytes.len() <= 100);
        assert_eq!(areas.len(), 2);
        assert!(areas.iter().all(|a| a.data.len() <= SECTOR));
        let carried: usize = areas.iter().map(|a| a.data.len()).sum::<usize>() + su.bytes.len();
        assert_eq!(carried, total + 2 * CE_LEN);
    }
}
