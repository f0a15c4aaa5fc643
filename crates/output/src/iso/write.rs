//! Writing a laid-out image front to back: the system area, the volume
//! descriptors, the path tables, the directories (Rock Ridge, then
//! Joliet), the continuation areas, the boot catalog and the file
//! contents.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::bytes::{Counted, copy_exact};
use crate::fstree::FsTree;

use super::encode::{SECTOR, both16, both32, date7, date17};
use super::joliet::ucs2_be;
use super::layout::{IsoLayout, SYSTEM_AREA};
use super::options::{IsoOptions, WriteFn};
use super::records::{Dir, Record, place_records};
use super::rock_ridge::{CE_LEN, SystemUse, ce_entry};

const SYSTEM_ID: &str = "LINUX";

impl IsoLayout {
    /// A directory record of `node` with identifier `ident`, in the Joliet
    /// tree when `joliet`.
    pub(super) fn record(&self, tree: &FsTree, r: &Record, joliet: bool, out: &mut Vec<u8>) {
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
    pub(super) fn volume_descriptor(&self, tree: &FsTree, joliet: bool) -> Vec<u8> {
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

    pub(super) fn path_table(dirs: &[Dir], big_endian: bool) -> Vec<u8> {
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

    pub(super) fn dir_bytes(&self, tree: &FsTree, d: &Dir, joliet: bool) -> Vec<u8> {
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

    pub(super) fn write(
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
}
