//! The master boot record: boot code, disk signature and four primary
//! partitions, written by hand (a sector's worth of fields).
//!
//! Used on its own for BIOS disks, as the protective MBR of GPT disks, and
//! in the system area of hybrid ISO images. The cylinder/head/sector
//! fields, which only very old BIOSes read, follow the geometry given:
//! 255 heads and 63 sectors for disks, 64 and 32 for hybrid ISOs (what
//! `isohybrid` uses, so that partitions end on a MiB).

use std::io::{self, Read, Write};

/// The sector size the partition table counts in, in bytes.
pub const SECTOR: u64 = 512;

/// A BIOS disk geometry, for the CHS fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Heads per cylinder.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
}

impl Geometry {
    /// The geometry of LBA-era disks: 255 heads, 63 sectors per track.
    pub const DISK: Geometry = Geometry {
        heads: 255,
        sectors: 63,
    };
    /// `isohybrid`'s: 64 heads, 32 sectors per track (1 MiB cylinders).
    pub const ISOHYBRID: Geometry = Geometry {
        heads: 64,
        sectors: 32,
    };

    /// The three CHS bytes of `lba`; the largest address when it does not
    /// fit 1024 cylinders, as partitioning tools write.
    pub fn chs(&self, lba: u64) -> [u8; 3] {
        let per_cyl = u64::from(self.heads * self.sectors);
        let c = lba / per_cyl;
        if c > 1023 {
            return [(self.heads - 1) as u8, (self.sectors as u8) | 0xc0, 0xff];
        }
        let h = (lba / u64::from(self.sectors)) % u64::from(self.heads);
        let s = lba % u64::from(self.sectors) + 1;
        [h as u8, s as u8 | ((c >> 2) as u8 & 0xc0), c as u8]
    }
}

/// A primary partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrPartition {
    /// The "active" flag (0x80), which BIOS MBR code boots from.
    pub bootable: bool,
    /// The partition type: 0x0c FAT32 (LBA), 0x0e FAT16 (LBA), 0x83 Linux,
    /// 0xee GPT protective, 0xef EFI system, 0x17 (isohybrid's ISO).
    pub kind: u8,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

/// A master boot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    /// Boot code, at most 440 bytes, at the start of the sector
    /// (syslinux's `mbr.bin`, `isohdpfx.bin`…); zeros when empty.
    pub boot_code: Vec<u8>,
    /// The disk signature (Windows and Linux's `PARTUUID=SSSSSSSS-NN`).
    pub disk_signature: u32,
    /// At most four.
    pub partitions: Vec<MbrPartition>,
    /// The geometry the CHS fields are written for.
    pub geometry: Geometry,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Mbr {
    /// An MBR without boot code or partitions.
    pub fn new(disk_signature: u32) -> Mbr {
        Mbr {
            boot_code: Vec::new(),
            disk_signature,
            partitions: Vec::new(),
            geometry: Geometry::DISK,
        }
    }

    /// The sector.
    pub fn to_bytes(&self) -> io::Result<[u8; 512]> {
        if self.boot_code.len() > 440 {
            return Err(invalid(format!(
                "{} bytes of MBR boot code: at most 440 fit",
                self.boot_code.len()
            )));
        }
        if self.partitions.len() > 4 {
            return Err(invalid(format!(
                "{} MBR partitions: at most 4",
                self.partitions.len()
            )));
        }
        let mut s = [0u8; 512];
        s[..self.boot_code.len()].copy_from_slice(&self.boot_code);
        s[440..444].copy_from_slice(&self.disk_signature.to_le_bytes());
        for (i, p) in self.partitions.iter().enumerate() {
            let (start, len) = match (u32::try_from(p.start), u32::try_from(p.sectors)) {
                (Ok(a), Ok(b)) => (a, b),
                _ => {
                    return Err(invalid(format!(
                        "MBR partition {} lies beyond 2 TiB",
                        i + 1
                    )));
                }
            };
            let e = &mut s[446 + 16 * i..446 + 16 * (i + 1)];
            e[0] = if p.bootable { 0x80 } else { 0 };
            e[1..4].copy_from_slice(&self.geometry.chs(p.start));
            e[4] = p.kind;
            let end = (p.start + p.sectors).saturating_sub(1);
            e[5..8].copy_from_slice(&self.geometry.chs(end));
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        Ok(s)
    }

    /// Streams a whole disk of `sectors` sectors: this MBR, each
    /// partition's content (`contents[i]`: a reader and its length, for
    /// `partitions[i]`) and zeros everywhere else.
    pub fn write_disk(
        &self,
        sectors: u64,
        contents: &mut [(&mut dyn Read, u64)],
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut regions = vec![Region {
            start: 0,
            sectors: 1,
            source: Source::Bytes(self.to_bytes()?.to_vec()),
        }];
        for (p, (r, len)) in self.partitions.iter().zip(contents.iter_mut()) {
            regions.push(Region {
                start: p.start,
                sectors: p.sectors,
                source: Source::Reader(&mut **r, *len),
            });
        }
        write_regions(sectors, regions, out)
    }
}

/// What goes into one stretch of a disk.
pub(crate) enum Source<'a> {
    Bytes(Vec<u8>),
    Reader(&'a mut dyn Read, u64),
}

/// A stretch of a disk: `sectors` sectors from `start`, holding `source`
/// (zero-padded).
pub(crate) struct Region<'a> {
    pub start: u64,
    pub sectors: u64,
    pub source: Source<'a>,
}

/// Streams a disk of `sectors` sectors made of `regions` (which must not
/// overlap) and zeros.
pub(crate) fn write_regions(
    sectors: u64,
    mut regions: Vec<Region<'_>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    regions.sort_by_key(|r| r.start);
    let mut at = 0u64;
    for r in regions {
        if r.start < at {
            return Err(invalid(format!(
                "overlapping regions at sector {}",
                r.start
            )));
        }
        if r.start + r.sectors > sectors {
            return Err(invalid(format!(
                "a region ends at sector {}, past the disk's {sectors}",
                r.start + r.sectors
            )));
        }
        crate::bytes::write_zeros(out, (r.start - at) * SECTOR)?;
        let cap = r.sectors * SECTOR;
        let len = match r.source {
            Source::Bytes(b) => {
                if b.len() as u64 > cap {
                    return Err(invalid("a region's content is larger than it".into()));
                }
                out.write_all(&b)?;
                b.len() as u64
            }
            Source::Reader(rd, len) => {
                if len > cap {
                    return Err(invalid(format!(
                        "{len} bytes of content for a partition of {cap}"
                    )));
                }
                crate::bytes::copy_exact(rd, out, len)?;
                len
            }
        };
        crate::bytes::write_zeros(out, cap - len)?;
        at = r.start + r.sectors;
    }
    crate::bytes::write_zeros(out, (sectors - at) * SECTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_addresses() {
        assert_eq!(Geometry::DISK.chs(0), [0, 1, 0]);
        assert_eq!(Geometry::DISK.chs(1), [0, 2, 0]);
        assert_eq!(Geometry::DISK.chs(2048), [32, 33, 0]);
        assert_eq!(Geometry::DISK.chs(1 << 40), [0xfe, 0xff, 0xff]);
        assert_eq!(Geometry::ISOHYBRID.chs(2047), [63, 32, 0]);
    }
}
