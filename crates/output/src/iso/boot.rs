//! Booting: the El Torito boot record and catalog (a BIOS no-emulation
//! entry, a UEFI section), the boot info table isolinux reads, and the
//! isohybrid MBR.

use std::io;

use crate::fstree::FsTree;
use crate::mbr::{Geometry, Mbr, MbrPartition};

use super::encode::SECTOR;
use super::layout::{IsoLayout, SYSTEM_AREA, too_big};
use super::options::{ElTorito, Hybrid};

impl IsoLayout {
    pub(super) fn boot_record(&self) -> Vec<u8> {
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
    pub(super) fn boot_catalog(&self, tree: &FsTree, et: &ElTorito) -> Vec<u8> {
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
    pub(super) fn hybrid_mbr(
        &self,
        tree: &FsTree,
        h: &Hybrid,
        seed: &[u8],
    ) -> io::Result<[u8; 512]> {
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

    /// Fills in the boot info table (El Torito's "boot-info-table"
    /// extension, from mkisofs): the primary volume descriptor's sector,
    /// the image's sector and length, and the 32-bit sum of the image's
    /// little-endian words from byte 64 on.
    pub(super) fn patch_boot_info(&self, image: &mut [u8], n: usize) {
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
