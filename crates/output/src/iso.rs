//! An ISO 9660 image of a gathered tree, with Rock Ridge, and optionally
//! Joliet, El Torito boot entries (BIOS and UEFI) and an isohybrid MBR,
//! written natively (the reference runs `genisoimage -l -J -R`, `xorriso`
//! and `isohybrid`).
//!
//! The image is laid out first and written after, front to back, so the
//! output is a plain stream:
//!
//! | sectors | content |
//! |---|---|
//! | 0–15 | system area: zeros, or the isohybrid MBR in its first 512 bytes |
//! | 16 | primary volume descriptor |
//! | 17 | El Torito boot record (when booting; El Torito fixes it at 17) |
//! | … | Joliet supplementary volume descriptor (with Joliet) |
//! | … | volume descriptor set terminator |
//! | … | L-type path table, then M-type path table (then Joliet's two) |
//! | … | directories, breadth first (path table order); then Joliet's |
//! | … | Rock Ridge continuation areas |
//! | … | the El Torito boot catalog (not in any directory) |
//! | … | file contents, in directory order; hard links share one extent; the UEFI boot image last |
//! | … | isohybrid: zeros up to a whole MiB |
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
//! Joliet (for Windows, and for readers without Rock Ridge) is a second
//! directory tree over the same file extents, with UCS-2 names of up to 64
//! characters (files get `;1`, as genisoimage and libisofs write).
//! Symbolic links and device nodes are only in the Rock Ridge tree.
//!
//! El Torito boot images are files of the tree, named by path: a BIOS
//! no-emulation image (isolinux.bin, with its boot info table filled in as
//! `genisoimage -boot-info-table` does) as the default entry, and a UEFI
//! image (a FAT file system holding `EFI/BOOT/BOOTX64.EFI`) in a platform
//! 0xEF section. See [`IsoOptions`].

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};

use sha2::{Digest, Sha256};

use crate::bytes::{Counted, civil, copy_exact};
use crate::fstree::{FsTree, Kind, Node};
use crate::mbr::{Geometry, Mbr, MbrPartition};

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

/// Writes the ISO 9660 image of `tree` to `out` (see the module docs):
/// Rock Ridge only, not bootable.
pub fn write_iso<W: Write>(tree: &FsTree, out: W) -> io::Result<()> {
    write_iso_with(tree, &IsoOptions::default(), out)
}

/// The length in bytes of the image [`write_iso_with`] writes, without
/// writing it.
pub(crate) fn iso_len(tree: &FsTree, opts: &IsoOptions) -> io::Result<u64> {
    Ok(u64::from(Layout::new(tree, opts)?.total) * SECTOR as u64)
}

/// Writes the ISO 9660 image of `tree` to `out` with `opts`.
pub fn write_iso_with<W: Write>(tree: &FsTree, opts: &IsoOptions, out: W) -> io::Result<()> {
    write_iso_generating(tree, opts, None, out)
}

/// A file of the tree whose content is written by a function when the
/// image reaches it, instead of read from its source (which is then never
/// read: it need only have the size). The UEFI ISOs write their ESP this
/// way, straight into the image, rather than to a temporary file that the
/// image then copies: that spares writing and reading the whole ESP
/// (kernel and initrd included) once more.
pub(crate) struct Generated<'a> {
    /// The file's path in the tree.
    pub path: &'a str,
    /// Writes exactly the file's size in bytes.
    pub write: WriteFn<'a>,
}

/// What writes a [`Generated`] file's content.
pub(crate) type WriteFn<'a> = &'a dyn Fn(&mut dyn Write) -> io::Result<()>;

/// [`write_iso_with`], with one file's content from `generated`.
pub(crate) fn write_iso_generating<W: Write>(
    tree: &FsTree,
    opts: &IsoOptions,
    generated: Option<Generated<'_>>,
    out: W,
) -> io::Result<()> {
    let layout = Layout::new(tree, opts)?;
    let generated = match generated {
        Some(g) => {
            let n = tree
                .find(g.path)
                .ok_or_else(|| io::Error::other(format!("{}: not in the tree", g.path)))?;
            Some((n, g.write))
        }
        None => None,
    };
    let mut w = BufWriter::with_capacity(1 << 20, out);
    layout.write(tree, opts, generated, &mut w)?;
    w.flush()
}

/// What goes into an ISO image besides the Rock Ridge tree.
#[derive(Debug, Clone, Default)]
pub struct IsoOptions {
    /// The volume identifier (`LINUXKIT` when `None`); at most 32
    /// characters (16 in the Joliet descriptor). Linux shows it as the
    /// label (`/dev/disk/by-label/…`).
    pub volume_id: Option<String>,
    /// A Joliet tree.
    pub joliet: bool,
    /// El Torito boot entries.
    pub el_torito: Option<ElTorito>,
    /// An MBR in the system area so that the image also boots when written
    /// to a disk (a USB stick, a VM's disk). Needs El Torito.
    pub hybrid: Option<Hybrid>,
    /// Files whose content is not written again but found inside another
    /// file of the image (see [`IsoAlias`]).
    pub aliases: Vec<IsoAlias>,
}

/// A regular file of the tree (`path`) whose directory records point
/// inside another regular file (`within`), at byte `offset` (a multiple of
/// 2048): the same bytes are then stored once. The kernel and initrd of an
/// El Torito UEFI image (a FAT file system whose files are aligned, see
/// [`crate::fat::FatBuilder::align_files`]) are also files of the ISO this
/// way. `path`'s size is its node's; its content is never read.
#[derive(Debug, Clone)]
pub struct IsoAlias {
    pub path: String,
    pub within: String,
    pub offset: u64,
}

/// El Torito boot entries. At least one of the two.
#[derive(Debug, Clone, Default)]
pub struct ElTorito {
    /// The BIOS entry, the catalog's default one.
    pub bios: Option<BiosBoot>,
    /// The path, in the tree, of the UEFI boot image: a FAT file system
    /// image (see [`crate::fat::FatBuilder`]) whose `EFI/BOOT/BOOTX64.EFI`
    /// firmware runs. It is placed last in the image, so that firmware
    /// reading a large image's size as "to the end of the volume" (the
    /// entry counts 512-byte sectors in 16 bits, so images over 32 MiB say
    /// 0) reads exactly it.
    pub efi: Option<String>,
}

/// A BIOS no-emulation boot image.
#[derive(Debug, Clone)]
pub struct BiosBoot {
    /// Its path in the tree (`isolinux/isolinux.bin`).
    pub image: String,
    /// 512-byte sectors the BIOS loads (isolinux: 4, `-boot-load-size 4`).
    pub load_sectors: u16,
    /// Fill in the boot info table at bytes 8–63 of the image (volume
    /// descriptor, image location, length, checksum), which isolinux reads
    /// to find the rest of itself (`-boot-info-table`).
    pub boot_info_table: bool,
}

impl BiosBoot {
    /// isolinux's settings: load 4 sectors, fill in the boot info table.
    pub fn isolinux(image: &str) -> BiosBoot {
        BiosBoot {
            image: image.to_string(),
            load_sectors: 4,
            boot_info_table: true,
        }
    }
}

/// The isohybrid MBR (what syslinux's `isohybrid` and xorriso's
/// `-isohybrid-mbr` write): `boot_code` (the first 432 bytes of
/// `isohdpfx.bin`, which loads the BIOS boot image from the 512-byte
/// sector number stored right after it), a disk signature, partition 1
/// over the whole image from sector 0 and, with a UEFI image, partition 2
/// (type 0xEF) over that image, which UEFI firmware then mounts as the
/// ESP. With a UEFI image partition 1 has type 0, which UEFI skips (it
/// would otherwise overlap the ESP, and firmware refuses overlapping MBR
/// partitions); without, isohybrid's 0x17. The image is padded to a whole
/// MiB (isohybrid's cylinders: 64 heads × 32 sectors).
#[derive(Debug, Clone, Default)]
pub struct Hybrid {
    /// At most 432 bytes; may be empty for a UEFI-only image.
    pub boot_code: Vec<u8>,
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
    ident_order_units(a, b, b';', b'.', b' ')
}

/// [`ident_order`] over any code units (bytes, or Joliet's UCS-2).
fn ident_order_units<T: Copy + Ord>(a: &[T], b: &[T], semi: T, dot: T, space: T) -> Ordering {
    let split = |i: &[T]| -> (Vec<T>, Vec<T>) {
        let i = i.split(|&c| c == semi).next().unwrap_or(i);
        match i.iter().position(|&c| c == dot) {
            Some(p) => (i[..p].to_vec(), i[p + 1..].to_vec()),
            None => (i.to_vec(), Vec::new()),
        }
    };
    let padded = |a: &[T], b: &[T]| -> Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                (
                    a.get(i).copied().unwrap_or(space),
                    b.get(i).copied().unwrap_or(space),
                )
            })
            .map(|(x, y)| x.cmp(&y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let (an, ae) = split(a);
    let (bn, be) = split(b);
    padded(&an, &bn).then_with(|| padded(&ae, &be))
}

/// Joliet identifiers (UCS-2 code units) for a directory's children,
/// given as (name, is a directory): characters Joliet forbids and those
/// outside UCS-2 become `_`, names are cut to 64 characters (`;1`
/// included for files), and collisions that makes get a `~N` suffix.
fn joliet_idents(children: &[(&str, bool)]) -> Vec<Vec<u16>> {
    let mut taken: HashSet<Vec<u16>> = HashSet::new();
    children
        .iter()
        .map(|&(name, dir)| {
            let units: Vec<u16> = name
                .chars()
                .map(|c| match c {
                    '\0'..='\x1f' | '*' | '/' | ':' | ';' | '?' | '\\' => u16::from(b'_'),
                    c => u16::try_from(u32::from(c)).unwrap_or(u16::from(b'_')),
                })
                .collect();
            let max = if dir { 64 } else { 62 };
            let with_version = |mut u: Vec<u16>| {
                if !dir {
                    u.extend([u16::from(b';'), u16::from(b'1')]);
                }
                u
            };
            let mut ident = with_version(units[..units.len().min(max)].to_vec());
            let mut n = 0u32;
            while taken.contains(&ident) {
                n += 1;
                let suffix: Vec<u16> = format!("~{n}").encode_utf16().collect();
                let keep = units.len().min(max - suffix.len());
                let mut u = units[..keep].to_vec();
                u.extend(suffix);
                ident = with_version(u);
            }
            taken.insert(ident.clone());
            ident
        })
        .collect()
}

fn ucs2_be(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
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
    /// The Joliet tree (empty without Joliet).
    jdirs: Vec<Dir>,
    /// Joliet directory extents, by node.
    jextents: HashMap<usize, (u32, u64)>,
    areas: Vec<Area>,
    /// Extent (sector, length in bytes) of each node.
    extents: Vec<(u32, u64)>,
    /// Nodes whose contents are written, in order.
    data: Vec<usize>,
    path_table_size: u32,
    l_path_table: u32,
    m_path_table: u32,
    jpath_table_size: u32,
    jl_path_table: u32,
    jm_path_table: u32,
    areas_start: u32,
    areas_sectors: u32,
    /// The boot catalog's sector.
    catalog: Option<u32>,
    /// The BIOS and UEFI boot image nodes.
    bios: Option<usize>,
    efi: Option<usize>,
    /// Sectors of zeros after the data (isohybrid's padding).
    padding: u32,
    total: u32,
    time: u64,
    volume_id: String,
}

fn too_big(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A boot image's node: a non-empty regular file of the tree.
/// Some path of node `n`, for messages.
fn tree_path(tree: &FsTree, n: usize) -> String {
    let mut found = String::new();
    let _ = tree.walk(|p, m| {
        if m == n && found.is_empty() {
            found = p.to_string();
        }
        Ok(())
    });
    found
}

fn boot_node(tree: &FsTree, path: &str, what: &str) -> io::Result<usize> {
    let n = tree
        .find(path)
        .ok_or_else(|| too_big(format!("the {what} boot image {path} is not in the image")))?;
    let node = &tree.nodes[n];
    if !matches!(node.kind, Kind::File { .. }) || node.size == 0 {
        return Err(too_big(format!(
            "the {what} boot image {path} is not a non-empty regular file"
        )));
    }
    Ok(n)
}

impl Layout {
    fn new(tree: &FsTree, opts: &IsoOptions) -> io::Result<Layout> {
        let nodes = &tree.nodes;
        let volume_id = opts.volume_id.clone().unwrap_or_else(|| VOLUME_ID.into());
        if volume_id.len() > 32 || !volume_id.is_ascii() {
            return Err(too_big(format!(
                "volume identifier {volume_id:?}: at most 32 ASCII characters"
            )));
        }
        let (mut bios, mut efi) = (None, None);
        if let Some(et) = &opts.el_torito {
            if let Some(b) = &et.bios {
                let n = boot_node(tree, &b.image, "BIOS")?;
                if b.boot_info_table && nodes[n].size < 64 {
                    return Err(too_big(format!(
                        "the BIOS boot image {} is too small for a boot info table",
                        b.image
                    )));
                }
                bios = Some(n);
            }
            if let Some(e) = &et.efi {
                efi = Some(boot_node(tree, e, "UEFI")?);
            }
            if bios.is_none() && efi.is_none() {
                return Err(too_big(
                    "El Torito needs a BIOS or a UEFI boot image".into(),
                ));
            }
            if bios.is_some() && bios == efi {
                return Err(too_big("the BIOS and UEFI boot images are one file".into()));
            }
        }
        let mut aliases = Vec::new();
        for a in &opts.aliases {
            let file = |p: &str| -> io::Result<usize> {
                tree.find(p)
                    .filter(|&n| matches!(nodes[n].kind, Kind::File { .. }))
                    .ok_or_else(|| too_big(format!("{p}: not a regular file of the image")))
            };
            let (n, t) = (file(&a.path)?, file(&a.within)?);
            if n == t
                || a.offset % SECTOR as u64 != 0
                || a.offset + nodes[n].size > nodes[t].size
                || Some(n) == bios
                || Some(n) == efi
            {
                return Err(too_big(format!(
                    "{} cannot be found at byte {} of {}",
                    a.path, a.offset, a.within
                )));
            }
            aliases.push((n, t, a.offset));
        }
        if opts.hybrid.is_some() && opts.el_torito.is_none() {
            return Err(too_big(
                "an isohybrid image needs El Torito boot images".into(),
            ));
        }
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
        let jdirs = if opts.joliet {
            joliet_tree(tree)
        } else {
            Vec::new()
        };
        if dirs.len() > 0xffff || jdirs.len() > 0xffff {
            return Err(too_big(format!(
                "{} directories: an ISO 9660 path table holds at most 65535",
                dirs.len()
            )));
        }

        let table_size = |dirs: &[Dir]| -> usize {
            dirs.iter()
                .map(|d| 8 + d.ident.len() + d.ident.len() % 2)
                .sum()
        };
        let path_table_size = table_size(&dirs);
        let jpath_table_size = table_size(&jdirs);
        let pt_sectors = sectors(path_table_size as u64);
        let jpt_sectors = sectors(jpath_table_size as u64);
        // Volume descriptors: the primary one, the boot record, the Joliet
        // one, the terminator.
        let descriptors = 2 + u32::from(opts.el_torito.is_some()) + u32::from(opts.joliet);
        let l_path_table = SYSTEM_AREA + descriptors;
        let m_path_table = l_path_table + pt_sectors;
        let jl_path_table = m_path_table + pt_sectors;
        let jm_path_table = jl_path_table + jpt_sectors;
        let mut next = jm_path_table + jpt_sectors;

        let mut extents = vec![(0u32, 0u64); nodes.len()];
        for d in &mut dirs {
            let (_, n) = place_records(d.records.iter().map(Record::len));
            d.sector = next;
            d.sectors = n;
            extents[d.node] = (next, u64::from(n) * SECTOR as u64);
            next += n;
        }
        let mut jextents = HashMap::new();
        let mut jdirs = jdirs;
        for d in &mut jdirs {
            let (_, n) = place_records(d.records.iter().map(Record::len));
            d.sector = next;
            d.sectors = n;
            jextents.insert(d.node, (next, u64::from(n) * SECTOR as u64));
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
        let catalog = opts.el_torito.as_ref().map(|_| {
            next += 1;
            next - 1
        });

        let mut data = Vec::new();
        let mut placed = vec![false; nodes.len()];
        let mut next = u64::from(next);
        let mut place = |n: usize, next: &mut u64, extents: &mut Vec<(u32, u64)>| {
            let size = nodes[n].size;
            if size > u64::from(u32::MAX) {
                return Err(too_big(format!(
                    "a file of {size} bytes: ISO 9660 files are smaller than 4 GiB"
                )));
            }
            if size > 0 {
                extents[n] = (*next as u32, size);
                data.push(n);
                *next += u64::from(sectors(size));
            }
            Ok(())
        };
        for d in &dirs {
            for r in &d.records[2..] {
                let n = r.node;
                if !matches!(nodes[n].kind, Kind::File { .. })
                    || placed[n]
                    || Some(n) == efi
                    || aliases.iter().any(|a| a.0 == n)
                {
                    continue;
                }
                placed[n] = true;
                place(n, &mut next, &mut extents)?;
            }
        }
        if let Some(n) = efi {
            place(n, &mut next, &mut extents)?;
        }
        for &(n, t, offset) in &aliases {
            if aliases.iter().any(|a| a.0 == t) {
                return Err(too_big(format!(
                    "{}: an alias inside an alias",
                    tree_path(tree, n)
                )));
            }
            extents[n] = (
                extents[t].0 + (offset / SECTOR as u64) as u32,
                nodes[n].size,
            );
        }
        let mut padding = 0;
        if opts.hybrid.is_some() {
            // 1 MiB = 512 sectors.
            padding = (next.next_multiple_of(512) - next) as u32;
            next += u64::from(padding);
        }
        if next > u64::from(u32::MAX) {
            return Err(too_big("the image is larger than 8 TiB".into()));
        }
        Ok(Layout {
            dirs,
            jdirs,
            jextents,
            areas,
            extents,
            data,
            path_table_size: path_table_size as u32,
            l_path_table,
            m_path_table,
            jpath_table_size: jpath_table_size as u32,
            jl_path_table,
            jm_path_table,
            areas_start,
            areas_sectors,
            catalog,
            bios,
            efi,
            padding,
            total: next as u32,
            time: tree.max_mtime(),
            volume_id,
        })
    }

    /// A directory record of `node` with identifier `ident`, in the Joliet
    /// tree when `joliet`.
    fn record(&self, tree: &FsTree, r: &Record, joliet: bool, out: &mut Vec<u8>) {
        let node = &tree.nodes[r.node];
        let (sector, size) = match self.jextents.get(&r.node) {
            Some(&e) if joliet => e,
            _ => self.extents[r.node],
        };
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

    /// The primary volume descriptor, or with `joliet` the Joliet
    /// supplementary one (UCS-2 identifiers, the `%/E` escape sequence:
    /// UCS-2 level 3).
    fn volume_descriptor(&self, tree: &FsTree, joliet: bool) -> Vec<u8> {
        let mut d = vec![0u8; SECTOR];
        d[0] = if joliet { 2 } else { 1 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let text = |d: &mut [u8], at: usize, len: usize, s: &str| {
            if joliet {
                for k in (at..at + len - 1).step_by(2) {
                    d[k..k + 2].copy_from_slice(&[0, b' ']);
                }
                let u: Vec<u16> = s.encode_utf16().take(len / 2).collect();
                d[at..at + 2 * u.len()].copy_from_slice(&ucs2_be(&u));
            } else {
                d[at..at + len].fill(b' ');
                d[at..at + s.len()].copy_from_slice(s.as_bytes());
            }
        };
        text(&mut d, 8, 32, SYSTEM_ID);
        text(&mut d, 40, 32, &self.volume_id);
        d[80..88].copy_from_slice(&both32(self.total));
        if joliet {
            d[88..91].copy_from_slice(b"%/E");
        }
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(SECTOR as u16));
        let (size, l, m, root) = if joliet {
            (
                self.jpath_table_size,
                self.jl_path_table,
                self.jm_path_table,
                &self.jdirs[0],
            )
        } else {
            (
                self.path_table_size,
                self.l_path_table,
                self.m_path_table,
                &self.dirs[0],
            )
        };
        d[132..140].copy_from_slice(&both32(size));
        d[140..144].copy_from_slice(&l.to_le_bytes());
        d[148..152].copy_from_slice(&m.to_be_bytes());
        // The root's record, without system use fields.
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
            joliet,
            &mut r,
        );
        d[156..190].copy_from_slice(&r);
        text(&mut d, 190, 128, "");
        text(&mut d, 318, 128, "");
        text(&mut d, 446, 128, "");
        text(&mut d, 574, 128, "LINUXKIT");
        text(&mut d, 702, 37, "");
        text(&mut d, 739, 37, "");
        text(&mut d, 776, 37, "");
        let t = date17(self.time);
        d[813..830].copy_from_slice(&t);
        d[830..847].copy_from_slice(&t);
        d[847..863].fill(b'0');
        d[864..881].copy_from_slice(&t);
        d[881] = 1;
        d
    }

    fn path_table(dirs: &[Dir], big_endian: bool) -> Vec<u8> {
        let mut t = Vec::new();
        for d in dirs {
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

    fn boot_record(&self) -> Vec<u8> {
        let mut d = vec![0u8; SECTOR];
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        let id = b"EL TORITO SPECIFICATION";
        d[7..7 + id.len()].copy_from_slice(id);
        d[71..75].copy_from_slice(&self.catalog.unwrap_or(0).to_le_bytes());
        d
    }

    /// The boot catalog: the validation entry, the default entry (BIOS, or
    /// UEFI when alone), and a final UEFI section when both.
    fn boot_catalog(&self, tree: &FsTree, et: &ElTorito) -> Vec<u8> {
        let mut c = vec![0u8; SECTOR];
        let entry = |n: usize, load: u16| -> [u8; 32] {
            let mut e = [0u8; 32];
            e[0] = 0x88;
            e[6..8].copy_from_slice(&load.to_le_bytes());
            e[8..12].copy_from_slice(&self.extents[n].0.to_le_bytes());
            e
        };
        // UEFI images count 512-byte sectors, 0 when that does not fit.
        let efi_load =
            |n: usize| -> u16 { u16::try_from(tree.nodes[n].size.div_ceil(512)).unwrap_or(0) };
        c[0] = 1;
        c[1] = if self.bios.is_some() { 0 } else { 0xef };
        c[30] = 0x55;
        c[31] = 0xaa;
        let sum = c[..32].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        match (self.bios, self.efi) {
            (Some(b), efi) => {
                let load = et.bios.as_ref().map_or(4, |b| b.load_sectors);
                c[32..64].copy_from_slice(&entry(b, load));
                if let Some(e) = efi {
                    c[64] = 0x91;
                    c[65] = 0xef;
                    c[66..68].copy_from_slice(&1u16.to_le_bytes());
                    c[96..128].copy_from_slice(&entry(e, efi_load(e)));
                }
            }
            (None, Some(e)) => c[32..64].copy_from_slice(&entry(e, efi_load(e))),
            (None, None) => {}
        }
        c
    }

    /// The isohybrid MBR (see [`Hybrid`]); its disk signature derives from
    /// `seed`.
    fn hybrid_mbr(&self, tree: &FsTree, h: &Hybrid, seed: &[u8]) -> io::Result<[u8; 512]> {
        if h.boot_code.len() > 432 {
            return Err(too_big(format!(
                "{} bytes of isohybrid boot code: at most 432",
                h.boot_code.len()
            )));
        }
        let mut code = h.boot_code.clone();
        code.resize(440, 0);
        if let Some(b) = self.bios {
            let lba = self.extents[b].0 * 4;
            code[432..436].copy_from_slice(&lba.to_le_bytes());
        }
        let mut parts = vec![MbrPartition {
            bootable: self.bios.is_some(),
            kind: if self.efi.is_some() { 0 } else { 0x17 },
            start: 0,
            sectors: u64::from(self.total) * 4,
        }];
        if let Some(e) = self.efi {
            parts.push(MbrPartition {
                bootable: false,
                kind: 0xef,
                start: u64::from(self.extents[e].0) * 4,
                sectors: tree.nodes[e].size.div_ceil(512),
            });
        }
        Mbr {
            boot_code: code,
            disk_signature: crate::ids::id32(seed, "isohybrid disk signature"),
            partitions: parts,
            geometry: Geometry::ISOHYBRID,
        }
        .to_bytes()
    }

    fn dir_bytes(&self, tree: &FsTree, d: &Dir, joliet: bool) -> Vec<u8> {
        let mut buf = Vec::new();
        let (offsets, n) = place_records(d.records.iter().map(Record::len));
        for (r, off) in d.records.iter().zip(offsets) {
            buf.resize(off, 0);
            self.record(tree, r, joliet, &mut buf);
        }
        debug_assert_eq!(n, d.sectors);
        buf.resize(d.sectors as usize * SECTOR, 0);
        buf
    }

    fn write(
        &self,
        tree: &FsTree,
        opts: &IsoOptions,
        generated: Option<(usize, WriteFn<'_>)>,
        w: &mut dyn Write,
    ) -> io::Result<()> {
        let pvd = self.volume_descriptor(tree, false);
        let mut system_area = vec![0u8; SYSTEM_AREA as usize * SECTOR];
        if let Some(h) = &opts.hybrid {
            // The disk signature derives from the volume's metadata: the
            // descriptor and every directory (names, sizes, times).
            let mut seed = Sha256::new().chain_update(&pvd);
            for d in &self.dirs {
                seed.update(self.dir_bytes(tree, d, false));
            }
            let mbr = self.hybrid_mbr(tree, h, &seed.finalize())?;
            system_area[..512].copy_from_slice(&mbr);
        }
        w.write_all(&system_area)?;
        w.write_all(&pvd)?;
        if opts.el_torito.is_some() {
            w.write_all(&self.boot_record())?;
        }
        if opts.joliet {
            w.write_all(&self.volume_descriptor(tree, true))?;
        }
        let mut term = vec![0u8; SECTOR];
        term[0] = 255;
        term[1..6].copy_from_slice(b"CD001");
        term[6] = 1;
        w.write_all(&term)?;
        w.write_all(&Self::path_table(&self.dirs, false))?;
        w.write_all(&Self::path_table(&self.dirs, true))?;
        if opts.joliet {
            w.write_all(&Self::path_table(&self.jdirs, false))?;
            w.write_all(&Self::path_table(&self.jdirs, true))?;
        }
        for d in &self.dirs {
            w.write_all(&self.dir_bytes(tree, d, false))?;
        }
        for d in &self.jdirs {
            w.write_all(&self.dir_bytes(tree, d, true))?;
        }

        let mut buf = Vec::new();
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
        if let Some(et) = &opts.el_torito {
            w.write_all(&self.boot_catalog(tree, et))?;
        }

        let zeros = [0u8; SECTOR];
        let info_table = opts
            .el_torito
            .as_ref()
            .and_then(|e| e.bios.as_ref())
            .is_some_and(|b| b.boot_info_table);
        for &n in &self.data {
            let node = &tree.nodes[n];
            if let Some((g, write)) = generated
                && g == n
            {
                let mut counted = Counted { w: &mut *w, n: 0 };
                write(&mut counted)?;
                if counted.n != node.size {
                    return Err(io::Error::other(format!(
                        "a generated file wrote {} bytes, its size is {}",
                        counted.n, node.size
                    )));
                }
            } else if info_table && Some(n) == self.bios {
                let mut image = Vec::with_capacity(node.size as usize);
                copy_exact(&mut tree.content(node), &mut image, node.size)?;
                self.patch_boot_info(&mut image, n);
                w.write_all(&image)?;
            } else {
                copy_exact(&mut tree.content(node), w, node.size)?;
            }
            let pad = node.size.next_multiple_of(SECTOR as u64) - node.size;
            w.write_all(&zeros[..pad as usize])?;
        }
        crate::bytes::write_zeros(w, u64::from(self.padding) * SECTOR as u64)
    }

    /// Fills in the boot info table (El Torito's "boot-info-table"
    /// extension, from mkisofs): the primary volume descriptor's sector,
    /// the image's sector and length, and the 32-bit sum of the image's
    /// little-endian words from byte 64 on.
    fn patch_boot_info(&self, image: &mut [u8], n: usize) {
        let sum = image[64..].chunks(4).fold(0u32, |s, w| {
            let mut b = [0u8; 4];
            b[..w.len()].copy_from_slice(w);
            s.wrapping_add(u32::from_le_bytes(b))
        });
        image[8..12].copy_from_slice(&SYSTEM_AREA.to_le_bytes());
        image[12..16].copy_from_slice(&self.extents[n].0.to_le_bytes());
        let len = image.len() as u32;
        image[16..20].copy_from_slice(&len.to_le_bytes());
        image[20..24].copy_from_slice(&sum.to_le_bytes());
        image[24..64].fill(0);
    }
}

/// The Joliet tree: directories breadth first, records in identifier
/// order; only directories and regular files.
fn joliet_tree(tree: &FsTree) -> Vec<Dir> {
    let nodes = &tree.nodes;
    let mut jdirs = vec![Dir {
        node: 0,
        parent: 0,
        ident: vec![0],
        records: Vec::new(),
        sector: 0,
        sectors: 0,
    }];
    let empty = || SystemUse {
        bytes: Vec::new(),
        ce: None,
    };
    let mut i = 0;
    while i < jdirs.len() {
        let dnode = jdirs[i].node;
        let pnode = jdirs[jdirs[i].parent].node;
        let children: Vec<(&str, usize)> = nodes[dnode]
            .children()
            .map(|c| {
                c.iter()
                    .filter(|&(_, &v)| matches!(nodes[v].kind, Kind::Dir(_) | Kind::File { .. }))
                    .map(|(k, &v)| (k.as_str(), v))
                    .collect()
            })
            .unwrap_or_default();
        let idents = joliet_idents(
            &children
                .iter()
                .map(|&(name, n)| (name, nodes[n].children().is_some()))
                .collect::<Vec<_>>(),
        );
        let mut order: Vec<usize> = (0..children.len()).collect();
        let (semi, dot, space) = (u16::from(b';'), u16::from(b'.'), u16::from(b' '));
        order.sort_by(|&a, &b| ident_order_units(&idents[a], &idents[b], semi, dot, space));
        let mut records = vec![
            Record {
                ident: vec![0],
                node: dnode,
                su: empty(),
            },
            Record {
                ident: vec![1],
                node: pnode,
                su: empty(),
            },
        ];
        for k in order {
            let n = children[k].1;
            let ident = ucs2_be(&idents[k]);
            if nodes[n].children().is_some() {
                jdirs.push(Dir {
                    node: n,
                    parent: i,
                    ident: ident.clone(),
                    records: Vec::new(),
                    sector: 0,
                    sectors: 0,
                });
            }
            records.push(Record {
                ident,
                node: n,
                su: empty(),
            });
        }
        jdirs[i].records = records;
        i += 1;
    }
    jdirs
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
