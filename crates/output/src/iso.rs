//! An ISO 9660 image of a gathered tree, with Rock Ridge, written natively
//! (the reference runs `genisoimage -l -J -R`; Joliet is not written).
//!
//! The image is laid out first and written after, front to back, so the
//! output is a plain stream:
//!
//! | sectors | content |
//! |---|---|
//! | 0–15 | system area (zeros) |
//! | 16 | primary volume descriptor |
//! | 17 | volume descriptor set terminator |
//! | … | L-type path table, then M-type path table |
//! | … | directories, breadth first (path table order) |
//! | … | Rock Ridge continuation areas |
//! | … | file contents, in directory order; hard links share one extent |
//!
//! ISO 9660 names are level 2 (at most 30 characters of d-characters for
//! a file's name and extension, 31 for a directory), made unique within
//! each directory; Rock Ridge carries the real names (`NM`), the modes,
//! owners and inode numbers (`PX`), device numbers (`PN`), symbolic link
//! targets (`SL`) and modification times (`TF`). System use fields that do
//! not fit in a directory record go to continuation areas (`CE`), which
//! never cross a sector. The image's own dates are the tree's latest
//! modification time, so the same tree always gives the same bytes.
//!
//! Limits: files of 4 GiB and more (they would need multi-extent records)
//! and more than 65535 directories (path table parent numbers) are refused;
//! deep directories are not relocated (`RR_MOVED`), which only readers
//! without Rock Ridge care about; symbolic link targets lose empty
//! components (`a//b`, a trailing `/`), which `SL` cannot express.
//!
//! El Torito (for the bootable formats) fits in the same two passes: a
//! boot record descriptor before the terminator, the boot catalog and
//! images placed by the layout like file extents.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};

use crate::fstree::{FsTree, Kind, Node, copy_exact};

pub(crate) const SECTOR: usize = 2048;
/// Sectors before the volume descriptors.
const SYSTEM_AREA: u32 = 16;
/// The longest directory record (its length is one byte, and even).
const MAX_RECORD: usize = 254;
/// The length of a `CE` entry.
const CE_LEN: usize = 28;
const VOLUME_ID: &str = "LINUXKIT";
const SYSTEM_ID: &str = "LINUX";

const RRIP_ID: &[u8] = b"RRIP_1991A";
const RRIP_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const RRIP_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// Writes the ISO 9660 image of `tree` to `out` (see the module docs).
pub fn write_iso<W: Write>(tree: &FsTree, out: W) -> io::Result<()> {
    let layout = Layout::new(tree)?;
    let mut w = BufWriter::with_capacity(1 << 20, out);
    layout.write(tree, &mut w)?;
    w.flush()
}

fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

fn sectors(bytes: u64) -> u32 {
    bytes.div_ceil(SECTOR as u64) as u32
}

/// Year, month, day, hour, minute, second (UTC) of a Unix time.
fn civil(t: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    )
}

/// The 7-byte date of directory records and `TF` (years 1900–2155).
fn date7(t: u64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(t.min(5_869_583_999)); // 2155-12-31 23:59:59
    [
        (y - 1900) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

/// The 17-byte date of volume descriptors.
fn date17(t: u64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(t.min(253_402_300_799)); // 9999-12-31
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

/// A d-character for `c`: upper case letters, digits and `_`.
fn d_char(c: char) -> char {
    match c {
        'A'..='Z' | '0'..='9' | '_' => c,
        'a'..='z' => c.to_ascii_uppercase(),
        _ => '_',
    }
}

/// A name's ISO 9660 base and extension (`None` for directories), before
/// the truncation that makes it unique.
fn iso_parts(name: &str, dir: bool) -> (String, Option<String>) {
    if dir {
        return (name.chars().map(d_char).take(31).collect(), None);
    }
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let ext: String = ext.chars().map(d_char).take(10).collect();
    let base: String = base.chars().map(d_char).take(30 - ext.len()).collect();
    (base, Some(ext))
}

fn iso_ident(base: &str, ext: &Option<String>) -> Vec<u8> {
    match ext {
        Some(e) => format!("{base}.{e};1").into_bytes(),
        None => base.as_bytes().to_vec(),
    }
}

/// ISO 9660 order of file identifiers (9.3): names then extensions, the
/// shorter padded with spaces.
fn ident_order(a: &[u8], b: &[u8]) -> Ordering {
    fn split(i: &[u8]) -> (&[u8], &[u8]) {
        let i = i.split(|&c| c == b';').next().unwrap_or(i);
        match i.iter().position(|&c| c == b'.') {
            Some(p) => (&i[..p], &i[p + 1..]),
            None => (i, &[]),
        }
    }
    fn padded(a: &[u8], b: &[u8]) -> Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                (
                    a.get(i).copied().unwrap_or(b' '),
                    b.get(i).copied().unwrap_or(b' '),
                )
            })
            .map(|(x, y)| x.cmp(&y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
    let (an, ae) = split(a);
    let (bn, be) = split(b);
    padded(an, bn).then_with(|| padded(ae, be))
}

/// Unique ISO 9660 identifiers for a directory's children, given as
/// (name, is a directory), in their order.
fn unique_idents(children: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut taken: HashSet<Vec<u8>> = HashSet::new();
    let mut counters: HashMap<Vec<u8>, u64> = HashMap::new();
    children
        .iter()
        .map(|&(name, dir)| {
            let (base, ext) = iso_parts(name, dir);
            let mut ident = iso_ident(&base, &ext);
            if taken.contains(&ident) {
                let limit = if dir {
                    31
                } else {
                    30 - ext.as_ref().map_or(0, |e| e.len())
                };
                let n = counters.entry(ident.clone()).or_insert(0);
                loop {
                    *n += 1;
                    let suffix = n.to_string();
                    let keep = base.len().min(limit.saturating_sub(suffix.len()));
                    let candidate = iso_ident(&format!("{}{suffix}", &base[..keep]), &ext);
                    if !taken.contains(&candidate) {
                        ident = candidate;
                        break;
                    }
                }
            }
            taken.insert(ident.clone());
            ident
        })
        .collect()
}

/// A System Use Sharing Protocol entry.
fn su_entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    e.push((4 + body.len()) as u8);
    e.push(1);
    e.extend_from_slice(body);
    e
}

fn sp_entry() -> Vec<u8> {
    su_entry(b"SP", &[0xbe, 0xef, 0])
}

fn er_entry() -> Vec<u8> {
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

fn px_entry(node: &Node, nlink: u32, ino: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(40);
    for v in [node.type_bits() | node.mode, nlink, node.uid, node.gid, ino] {
        body.extend_from_slice(&both32(v));
    }
    su_entry(b"PX", &body)
}

fn tf_entry(mtime: u64) -> Vec<u8> {
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
fn pn_entry(major: u32, minor: u32) -> Vec<u8> {
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
fn nm_entries(name: &[u8]) -> Vec<Vec<u8>> {
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
fn sl_entries(target: &str) -> Vec<Vec<u8>> {
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
struct Area {
    data: Vec<u8>,
    next_ce: Option<usize>,
    sector: u32,
    offset: u32,
}

/// System use bytes of a record, with a `CE` at `ce.0` to area `ce.1`.
struct SystemUse {
    bytes: Vec<u8>,
    ce: Option<(usize, usize)>,
}

/// Puts `entries` in a record with room for `cap` bytes, the rest in
/// chained continuation areas appended to `areas`.
fn pack(entries: Vec<Vec<u8>>, cap: usize, areas: &mut Vec<Area>) -> SystemUse {
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

fn ce_entry(area: &Area) -> Vec<u8> {
    let mut body = both32(area.sector).to_vec();
    body.extend_from_slice(&both32(area.offset));
    body.extend_from_slice(&both32(area.data.len() as u32));
    su_entry(b"CE", &body)
}

/// One directory record.
struct Record {
    /// The ISO 9660 identifier (`\0` and `\x01` for `.` and `..`).
    ident: Vec<u8>,
    node: usize,
    su: SystemUse,
}

impl Record {
    fn len(&self) -> usize {
        let base = 33 + self.ident.len() + (1 - self.ident.len() % 2);
        let len = base + self.su.bytes.len();
        len + len % 2
    }
}

struct Dir {
    node: usize,
    /// Index of the parent in `Layout::dirs` (the root is its own).
    parent: usize,
    ident: Vec<u8>,
    records: Vec<Record>,
    sector: u32,
    sectors: u32,
}

/// Offsets of records of the given lengths in a directory (no record
/// crosses a sector), and the directory's length in sectors.
fn place_records(lens: impl Iterator<Item = usize>) -> (Vec<usize>, u32) {
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

/// Where everything goes.
struct Layout {
    dirs: Vec<Dir>,
    areas: Vec<Area>,
    /// Extent (sector, length in bytes) of each node.
    extents: Vec<(u32, u64)>,
    /// Nodes whose contents are written, in order.
    data: Vec<usize>,
    path_table_size: u32,
    l_path_table: u32,
    m_path_table: u32,
    areas_start: u32,
    areas_sectors: u32,
    total: u32,
    time: u64,
}

fn too_big(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Layout {
    fn new(tree: &FsTree) -> io::Result<Layout> {
        let nodes = &tree.nodes;
        // Directories breadth first, children in identifier order: the
        // path table's order.
        let mut dirs = vec![Dir {
            node: 0,
            parent: 0,
            ident: vec![0],
            records: Vec::new(),
            sector: 0,
            sectors: 0,
        }];
        let mut areas = Vec::new();
        let subdirs = |n: usize| {
            nodes[n].children().map_or(0, |c| {
                c.values()
                    .filter(|&&c| nodes[c].children().is_some())
                    .count()
            }) as u32
        };
        let nlink = |n: usize| match nodes[n].kind {
            Kind::Dir(_) => 2 + subdirs(n),
            _ => nodes[n].links,
        };
        let ino = |n: usize| n as u32 + 1;
        let mut i = 0;
        while i < dirs.len() {
            let dnode = dirs[i].node;
            let pnode = dirs[dirs[i].parent].node;
            let children: Vec<(&str, usize)> = nodes[dnode]
                .children()
                .map(|c| c.iter().map(|(k, &v)| (k.as_str(), v)).collect())
                .unwrap_or_default();
            let idents = unique_idents(
                &children
                    .iter()
                    .map(|&(name, n)| (name, nodes[n].children().is_some()))
                    .collect::<Vec<_>>(),
            );
            let mut order: Vec<usize> = (0..children.len()).collect();
            order.sort_by(|&a, &b| ident_order(&idents[a], &idents[b]));

            let mut records = Vec::with_capacity(children.len() + 2);
            let mut dot = vec![];
            if dnode == 0 {
                dot.push(sp_entry());
            }
            dot.push(px_entry(&nodes[dnode], nlink(dnode), ino(dnode)));
            dot.push(tf_entry(nodes[dnode].mtime));
            if dnode == 0 {
                dot.push(er_entry());
            }
            for (ident, n, entries) in [
                (vec![0u8], dnode, dot),
                (
                    vec![1u8],
                    pnode,
                    vec![
                        px_entry(&nodes[pnode], nlink(pnode), ino(pnode)),
                        tf_entry(nodes[pnode].mtime),
                    ],
                ),
            ] {
                let cap = MAX_RECORD - 34;
                let su = pack(entries, cap, &mut areas);
                records.push(Record { ident, node: n, su });
            }
            for k in order {
                let (name, n) = children[k];
                let node = &nodes[n];
                let ident = idents[k].clone();
                let mut entries = vec![px_entry(node, nlink(n), ino(n)), tf_entry(node.mtime)];
                match &node.kind {
                    Kind::Char(ma, mi) | Kind::Block(ma, mi) => entries.push(pn_entry(*ma, *mi)),
                    Kind::Symlink(t) => entries.extend(sl_entries(t)),
                    _ => {}
                }
                entries.extend(nm_entries(name.as_bytes()));
                let cap = MAX_RECORD - (33 + ident.len() + (1 - ident.len() % 2));
                let su = pack(entries, cap, &mut areas);
                if node.children().is_some() {
                    dirs.push(Dir {
                        node: n,
                        parent: i,
                        ident: ident.clone(),
                        records: Vec::new(),
                        sector: 0,
                        sectors: 0,
                    });
                }
                records.push(Record { ident, node: n, su });
            }
            dirs[i].records = records;
            i += 1;
        }
        if dirs.len() > 0xffff {
            return Err(too_big(format!(
                "{} directories: an ISO 9660 path table holds at most 65535",
                dirs.len()
            )));
        }

        let path_table_size: usize = dirs
            .iter()
            .map(|d| 8 + d.ident.len() + d.ident.len() % 2)
            .sum();
        let pt_sectors = sectors(path_table_size as u64);
        // Volume descriptors: the primary one and the terminator.
        let l_path_table = SYSTEM_AREA + 2;
        let m_path_table = l_path_table + pt_sectors;
        let mut next = m_path_table + pt_sectors;

        let mut extents = vec![(0u32, 0u64); nodes.len()];
        for d in &mut dirs {
            let (_, n) = place_records(d.records.iter().map(Record::len));
            d.sector = next;
            d.sectors = n;
            extents[d.node] = (next, u64::from(n) * SECTOR as u64);
            next += n;
        }

        let areas_start = next;
        let mut at = 0usize;
        for a in &mut areas {
            if at % SECTOR + a.data.len() > SECTOR {
                at = at.next_multiple_of(SECTOR);
            }
            a.sector = areas_start + (at / SECTOR) as u32;
            a.offset = (at % SECTOR) as u32;
            at += a.data.len();
        }
        let areas_sectors = sectors(at as u64);
        next += areas_sectors;

        let mut data = Vec::new();
        let mut placed = vec![false; nodes.len()];
        let mut next = u64::from(next);
        for d in &dirs {
            for r in &d.records[2..] {
                let n = r.node;
                if !matches!(nodes[n].kind, Kind::File { .. }) || placed[n] {
                    continue;
                }
                placed[n] = true;
                let size = nodes[n].size;
                if size > u64::from(u32::MAX) {
                    return Err(too_big(format!(
                        "a file of {size} bytes: ISO 9660 files are smaller than 4 GiB"
                    )));
                }
                if size > 0 {
                    extents[n] = (next as u32, size);
                    data.push(n);
                    next += u64::from(sectors(size));
                }
            }
        }
        if next > u64::from(u32::MAX) {
            return Err(too_big("the image is larger than 8 TiB".into()));
        }
        Ok(Layout {
            dirs,
            areas,
            extents,
            data,
            path_table_size: path_table_size as u32,
            l_path_table,
            m_path_table,
            areas_start,
            areas_sectors,
            total: next as u32,
            time: tree.max_mtime(),
        })
    }

    /// A directory record of `node` with identifier `ident`.
    fn record(&self, tree: &FsTree, r: &Record, out: &mut Vec<u8>) {
        let node = &tree.nodes[r.node];
        let (sector, size) = self.extents[r.node];
        let start = out.len();
        out.push(r.len() as u8);
        out.push(0);
        out.extend_from_slice(&both32(sector));
        out.extend_from_slice(&both32(size as u32));
        out.extend_from_slice(&date7(node.mtime));
        out.push(if node.children().is_some() { 2 } else { 0 });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&both16(1));
        out.push(r.ident.len() as u8);
        out.extend_from_slice(&r.ident);
        if r.ident.len().is_multiple_of(2) {
            out.push(0);
        }
        let su = out.len();
        out.extend_from_slice(&r.su.bytes);
        if let Some((at, area)) = r.su.ce {
            out[su + at..su + at + CE_LEN].copy_from_slice(&ce_entry(&self.areas[area]));
        }
        out.resize(start + r.len(), 0);
    }

    fn primary_descriptor(&self, tree: &FsTree) -> Vec<u8> {
        let mut d = vec![0u8; SECTOR];
        d[0] = 1;
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], at: usize, len: usize, s: &str| {
            d[at..at + len].fill(b' ');
            d[at..at + s.len()].copy_from_slice(s.as_bytes());
        };
        text(&mut d, 8, 32, SYSTEM_ID);
        text(&mut d, 40, 32, VOLUME_ID);
        d[80..88].copy_from_slice(&both32(self.total));
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(SECTOR as u16));
        d[132..140].copy_from_slice(&both32(self.path_table_size));
        d[140..144].copy_from_slice(&self.l_path_table.to_le_bytes());
        d[148..152].copy_from_slice(&self.m_path_table.to_be_bytes());
        // The root's record, without system use fields.
        let root = &self.dirs[0];
        let mut r = Vec::new();
        self.record(
            tree,
            &Record {
                ident: vec![0],
                node: root.node,
                su: SystemUse {
                    bytes: Vec::new(),
                    ce: None,
                },
            },
            &mut r,
        );
        d[156..190].copy_from_slice(&r);
        text(&mut d, 190, 128, "");
        text(&mut d, 318, 128, "");
        text(&mut d, 446, 128, "");
        text(&mut d, 574, 128, "LINUXKIT");
        text(&mut d, 702, 37 * 3, "");
        let t = date17(self.time);
        d[813..830].copy_from_slice(&t);
        d[830..847].copy_from_slice(&t);
        d[847..863].fill(b'0');
        d[864..881].copy_from_slice(&t);
        d[881] = 1;
        d
    }

    fn path_table(&self, big_endian: bool) -> Vec<u8> {
        let mut t = Vec::with_capacity(self.path_table_size as usize);
        for d in &self.dirs {
            t.push(d.ident.len() as u8);
            t.push(0);
            let parent = d.parent as u16 + 1;
            if big_endian {
                t.extend_from_slice(&d.sector.to_be_bytes());
                t.extend_from_slice(&parent.to_be_bytes());
            } else {
                t.extend_from_slice(&d.sector.to_le_bytes());
                t.extend_from_slice(&parent.to_le_bytes());
            }
            t.extend_from_slice(&d.ident);
            if d.ident.len() % 2 == 1 {
                t.push(0);
            }
        }
        t.resize(t.len().next_multiple_of(SECTOR), 0);
        t
    }

    fn write(&self, tree: &FsTree, w: &mut dyn Write) -> io::Result<()> {
        w.write_all(&[0u8; SYSTEM_AREA as usize * SECTOR])?;
        w.write_all(&self.primary_descriptor(tree))?;
        let mut term = vec![0u8; SECTOR];
        term[0] = 255;
        term[1..6].copy_from_slice(b"CD001");
        term[6] = 1;
        w.write_all(&term)?;
        w.write_all(&self.path_table(false))?;
        w.write_all(&self.path_table(true))?;

        let mut buf = Vec::new();
        for d in &self.dirs {
            buf.clear();
            let (offsets, n) = place_records(d.records.iter().map(Record::len));
            for (r, off) in d.records.iter().zip(offsets) {
                buf.resize(off, 0);
                self.record(tree, r, &mut buf);
            }
            debug_assert_eq!(n, d.sectors);
            buf.resize(d.sectors as usize * SECTOR, 0);
            w.write_all(&buf)?;
        }

        buf.clear();
        for (i, a) in self.areas.iter().enumerate() {
            let at = (a.sector - self.areas_start) as usize * SECTOR + a.offset as usize;
            buf.resize(at, 0);
            buf.extend_from_slice(&a.data);
            if let Some(ce) = a.next_ce {
                let next = &self.areas[i + 1];
                buf[at + ce..at + ce + CE_LEN].copy_from_slice(&ce_entry(next));
            }
        }
        buf.resize(self.areas_sectors as usize * SECTOR, 0);
        w.write_all(&buf)?;

        let zeros = [0u8; SECTOR];
        for &n in &self.data {
            let node = &tree.nodes[n];
            copy_exact(&mut tree.content(node), w, node.size)?;
            let pad = node.size.next_multiple_of(SECTOR as u64) - node.size;
            w.write_all(&zeros[..pad as usize])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date7(0), [70, 1, 1, 0, 0, 0, 0]);
        // 2017-04-18 16:30:00
        assert_eq!(date7(1_492_533_000), [117, 4, 18, 16, 30, 0, 0]);
        assert_eq!(&date17(1_600_000_000)[..16], b"2020091312264000");
        assert_eq!(date7(u64::MAX)[0], 255);
    }

    #[test]
    fn names_are_level_2_and_unique() {
        let ids = unique_idents(&[
            ("Hello", false),
            ("hello", false),
            ("HELLO", false),
            ("lib.so.1", false),
            ("a.dir", true),
            ("x".repeat(200).as_str(), false),
            ("x".repeat(201).as_str(), false),
        ]);
        let s: Vec<String> = ids
            .iter()
            .map(|i| String::from_utf8_lossy(i).into())
            .collect();
        assert_eq!(s[0], "HELLO.;1");
        assert_eq!(s[1], "HELLO1.;1");
        assert_eq!(s[2], "HELLO2.;1");
        assert_eq!(s[3], "LIB_SO.1;1");
        assert_eq!(s[4], "A_DIR");
        assert_eq!(s[5], format!("{}.;1", "X".repeat(30)));
        assert_eq!(s[6], format!("{}1.;1", "X".repeat(29)));
    }

    #[test]
    fn identifier_order_pads_with_spaces() {
        assert_eq!(ident_order(b"A.;1", b"A_B.;1"), Ordering::Less);
        assert_eq!(ident_order(b"A.EXT;1", b"A.EXT2;1"), Ordering::Less);
        assert_eq!(ident_order(b"B", b"A.X;1"), Ordering::Greater);
    }

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
