//! GUID partition tables (UEFI specification, chapter 5), written by hand:
//! the protective MBR, the primary header and entry array at the start of
//! the disk, the backup entry array and header at its end, with their
//! CRC32s.
//!
//! GUIDs are derived from a caller-given seed (a hash of the content) and
//! what they name, never drawn at random, so the same content always gives
//! the same table, and `PARTUUID=` command lines can be computed ahead.
//! Partitions are placed one after the other on 1 MiB boundaries, the
//! alignment every partitioning tool uses today.

use std::fmt;
use std::io::{self, Read, Write};

use crate::mbr::{Geometry, Mbr, MbrPartition, Region, SECTOR, Source, write_regions};

/// Entries in the array (the minimum the specification allows: 16 KiB).
const ENTRIES: u64 = 128;
const ENTRY_SIZE: u64 = 128;
/// Sectors of the entry array.
const ARRAY_SECTORS: u64 = ENTRIES * ENTRY_SIZE / SECTOR;
/// Partitions start on 1 MiB boundaries.
pub const ALIGN: u64 = (1 << 20) / SECTOR;

/// A GUID, held in the byte order of its text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// EFI System Partition.
    pub const EFI_SYSTEM: Guid = Guid::from_text("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    /// Linux filesystem data.
    pub const LINUX_FS: Guid = Guid::from_text("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    /// BIOS boot partition (GRUB's core.img on GPT disks).
    pub const BIOS_BOOT: Guid = Guid::from_text("21686148-6449-6E6F-744E-656564454649");
    /// Microsoft basic data (FAT file systems other than an ESP).
    pub const BASIC_DATA: Guid = Guid::from_text("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");

    /// A GUID from its text form; panics on anything else (for constants).
    pub const fn from_text(s: &str) -> Guid {
        let b = s.as_bytes();
        assert!(b.len() == 36, "a GUID is 36 characters");
        let mut out = [0u8; 16];
        let mut i = 0;
        let mut n = 0;
        while i < 36 {
            if b[i] == b'-' {
                i += 1;
                continue;
            }
            out[n / 2] = out[n / 2] << 4 | hex(b[i]);
            n += 1;
            i += 1;
        }
        assert!(n == 32, "a GUID has 32 hex digits");
        Guid(out)
    }

    /// A GUID derived from `seed` for `purpose` (see [`crate::ids::uuid`]).
    pub fn derived(seed: &[u8], purpose: &str) -> Guid {
        Guid(crate::ids::uuid(seed, purpose))
    }

    /// The on-disk form: the first three fields little-endian.
    pub fn to_disk(self) -> [u8; 16] {
        let mut d = self.0;
        d[0..4].reverse();
        d[4..6].reverse();
        d[6..8].reverse();
        d
    }
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::ids::uuid_text(&self.0))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// What the partition is (the EFI system partition's type, Linux data).
    pub type_guid: Guid,
    /// The partition's own unique GUID (`PARTUUID=`).
    pub guid: Guid,
    /// At most 36 UTF-16 code units.
    pub name: String,
    /// The partition's first sector.
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    /// Bit 0 "required", bit 2 "legacy BIOS bootable"…
    pub attributes: u64,
}

/// A GPT disk's layout: its size, GUID and partitions.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The disk's size in sectors.
    pub sectors: u64,
    /// The disk's GUID, derived from the layout's seed.
    pub disk_guid: Guid,
    /// The partitions, in table order.
    pub partitions: Vec<GptPartition>,
    seed: Vec<u8>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Layout {
    /// An empty layout for a disk of `bytes` (rounded down to sectors);
    /// the disk GUID, and the GUIDs of partitions added later, derive from
    /// `seed`.
    pub fn new(bytes: u64, seed: &[u8]) -> Layout {
        Layout {
            sectors: bytes / SECTOR,
            disk_guid: Guid::derived(seed, "gpt disk"),
            partitions: Vec::new(),
            seed: seed.to_vec(),
        }
    }

    /// The smallest disk holding partitions of these sizes (in bytes), each
    /// on a 1 MiB boundary, with the backup table after them.
    pub fn disk_size_for(sizes: &[u64]) -> u64 {
        let mut at = ALIGN;
        for s in sizes {
            at = (at + s.div_ceil(SECTOR)).next_multiple_of(ALIGN);
        }
        (at + 1 + ARRAY_SECTORS) * SECTOR
    }

    /// The first sector a partition may use: after the protective MBR, the
    /// header and the partition array.
    pub fn first_usable(&self) -> u64 {
        2 + ARRAY_SECTORS
    }

    /// The last sector a partition may use: before the backup array and
    /// the backup header at the disk's end.
    pub fn last_usable(&self) -> u64 {
        self.sectors - 2 - ARRAY_SECTORS
    }

    /// Adds a partition of `bytes` (rounded up to sectors) at the next
    /// 1 MiB boundary; its GUID derives from the seed and its number.
    pub fn add(
        &mut self,
        type_guid: Guid,
        name: &str,
        bytes: u64,
        attributes: u64,
    ) -> io::Result<&GptPartition> {
        if name.encode_utf16().count() > 36 {
            return Err(invalid(format!(
                "partition name {name:?}: at most 36 UTF-16 code units"
            )));
        }
        if self.partitions.len() as u64 == ENTRIES {
            return Err(invalid(format!("at most {ENTRIES} partitions")));
        }
        let after = self
            .partitions
            .iter()
            .map(|p| p.last_lba + 1)
            .max()
            .unwrap_or(self.first_usable());
        let first = after.next_multiple_of(ALIGN);
        let last = first + bytes.div_ceil(SECTOR).max(1) - 1;
        if self.sectors < 2 * (2 + ARRAY_SECTORS) || last > self.last_usable() {
            return Err(invalid(format!(
                "a partition of {bytes} bytes does not fit a disk of {} sectors",
                self.sectors
            )));
        }
        let n = self.partitions.len() + 1;
        self.partitions.push(GptPartition {
            type_guid,
            guid: Guid::derived(&self.seed, &format!("gpt partition {n}")),
            name: name.to_string(),
            first_lba: first,
            last_lba: last,
            attributes,
        });
        Ok(self.partitions.last().expect("just pushed"))
    }

    /// The protective MBR: one 0xEE partition over the whole disk (or as
    /// much as 32 bits address). Callers making a hybrid MBR start from it.
    pub fn protective_mbr(&self) -> Mbr {
        let mut m = Mbr::new(0);
        m.geometry = Geometry::DISK;
        m.partitions.push(MbrPartition {
            bootable: false,
            kind: 0xee,
            start: 1,
            sectors: (self.sectors - 1).min(u64::from(u32::MAX)),
        });
        m
    }

    fn entries(&self) -> Vec<u8> {
        let mut a = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut a[i * ENTRY_SIZE as usize..(i + 1) * ENTRY_SIZE as usize];
            e[0..16].copy_from_slice(&p.type_guid.to_disk());
            e[16..32].copy_from_slice(&p.guid.to_disk());
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (j, u) in p.name.encode_utf16().enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
            }
        }
        a
    }

    fn header(&self, primary: bool, entries_crc: u32) -> [u8; 512] {
        let last = self.sectors - 1;
        let (me, other, array) = if primary {
            (1, last, 2)
        } else {
            (last, 1, last - ARRAY_SECTORS)
        };
        let mut h = [0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&me.to_le_bytes());
        h[32..40].copy_from_slice(&other.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable().to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.to_disk());
        h[72..80].copy_from_slice(&array.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn check(&self) -> io::Result<()> {
        if self.sectors < 2 * (2 + ARRAY_SECTORS) + 1 {
            return Err(invalid(format!(
                "a disk of {} sectors is too small for a GPT",
                self.sectors
            )));
        }
        for p in &self.partitions {
            if p.first_lba < self.first_usable() || p.last_lba > self.last_usable() {
                return Err(invalid(format!(
                    "partition {:?} lies outside the usable sectors",
                    p.name
                )));
            }
        }
        Ok(())
    }

    /// The start of the disk (34 sectors): `mbr` (the protective MBR when
    /// `None`), the primary header and the entry array.
    pub fn primary(&self, mbr: Option<&Mbr>) -> io::Result<Vec<u8>> {
        self.check()?;
        let entries = self.entries();
        let mbr = match mbr {
            Some(m) => m.to_bytes()?,
            None => self.protective_mbr().to_bytes()?,
        };
        let mut out = mbr.to_vec();
        out.extend_from_slice(&self.header(true, crc32(&entries)));
        out.extend_from_slice(&entries);
        Ok(out)
    }

    /// The end of the disk (33 sectors): the entry array and the backup
    /// header.
    pub fn backup(&self) -> io::Result<Vec<u8>> {
        self.check()?;
        let mut out = self.entries();
        out.extend_from_slice(&self.header(false, crc32(&out)));
        Ok(out)
    }

    /// Streams the whole disk: the tables, each partition's content
    /// (`contents[i]`: a reader and its length, for `partitions[i]`) and
    /// zeros everywhere else. `mbr` replaces the protective MBR (hybrid
    /// layouts).
    pub fn write_disk(
        &self,
        mbr: Option<&Mbr>,
        contents: &mut [(&mut dyn Read, u64)],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut regions = vec![
            Region {
                start: 0,
                sectors: 2 + ARRAY_SECTORS,
                source: Source::Bytes(self.primary(mbr)?),
            },
            Region {
                start: self.sectors - 1 - ARRAY_SECTORS,
                sectors: 1 + ARRAY_SECTORS,
                source: Source::Bytes(self.backup()?),
            },
        ];
        for (p, (r, len)) in self.partitions.iter().zip(contents.iter_mut()) {
            regions.push(Region {
                start: p.first_lba,
                sectors: p.last_lba + 1 - p.first_lba,
                source: Source::Reader(&mut **r, *len),
            });
        }
        write_regions(self.sectors, regions, out)
    }
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_mixed_endian_on_disk() {
        let g = Guid::EFI_SYSTEM;
        assert_eq!(g.to_string(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(
            g.to_disk(),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
    }

    #[test]
    fn sizes_and_placement() {
        let size = Layout::disk_size_for(&[100 << 20]);
        let mut l = Layout::new(size, b"x");
        let p = l
            .add(Guid::EFI_SYSTEM, "ESP", 100 << 20, 0)
            .unwrap()
            .clone();
        assert_eq!(p.first_lba, 2048);
        assert_eq!(p.last_lba, l.last_usable());
        assert!(l.add(Guid::LINUX_FS, "more", 512, 0).is_err());
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
