//! Where everything goes: the image laid out (see the table in the
//! module docs of `iso`) before a byte is written, so that the writing is
//! a plain stream and the length is known ahead.

use std::collections::HashMap;
use std::io;

use crate::fstree::{FsTree, Kind};

use super::encode::{SECTOR, sectors};
use super::joliet::joliet_tree;
use super::names::{ident_order, unique_idents};
use super::options::IsoOptions;
use super::records::{Dir, Record, place_records};
use super::rock_ridge::{
    Area, er_entry, nm_entries, pack, pn_entry, px_entry, sl_entries, sp_entry, tf_entry,
};

/// Sectors before the volume descriptors.
pub(super) const SYSTEM_AREA: u32 = 16;

/// The longest directory record (its length is one byte, and even).
const MAX_RECORD: usize = 254;

const VOLUME_ID: &str = "LINUXKIT";

/// Where everything goes.
pub(super) struct IsoLayout {
    pub(super) dirs: Vec<Dir>,
    /// The Joliet tree (empty without Joliet).
    pub(super) jdirs: Vec<Dir>,
    /// Joliet directory extents, by node.
    pub(super) jextents: HashMap<usize, (u32, u64)>,
    pub(super) areas: Vec<Area>,
    /// Extent (sector, length in bytes) of each node.
    pub(super) extents: Vec<(u32, u64)>,
    /// Nodes whose contents are written, in order.
    pub(super) data: Vec<usize>,
    pub(super) path_table_size: u32,
    pub(super) l_path_table: u32,
    pub(super) m_path_table: u32,
    pub(super) jpath_table_size: u32,
    pub(super) jl_path_table: u32,
    pub(super) jm_path_table: u32,
    pub(super) areas_start: u32,
    pub(super) areas_sectors: u32,
    /// The boot catalog's sector.
    pub(super) catalog: Option<u32>,
    /// The BIOS and UEFI boot image nodes.
    pub(super) bios: Option<usize>,
    pub(super) efi: Option<usize>,
    /// Sectors of zeros after the data (isohybrid's padding).
    pub(super) padding: u32,
    pub(super) total: u32,
    pub(super) time: u64,
    pub(super) volume_id: String,
}

pub(super) fn too_big(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Some path of node `n`, for messages.
pub(super) fn tree_path(tree: &FsTree, n: usize) -> String {
    let mut found = String::new();
    let _ = tree.walk(|p, m| {
        if m == n && found.is_empty() {
            found = p.to_string();
        }
        Ok(())
    });
    found
}

/// A boot image's node: a non-empty regular file of the tree.
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

impl IsoLayout {
    pub(super) fn new(tree: &FsTree, opts: &IsoOptions) -> io::Result<IsoLayout> {
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
        Ok(IsoLayout {
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
}
