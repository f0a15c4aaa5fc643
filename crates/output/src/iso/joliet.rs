//! Joliet: a second directory tree over the same file extents, with UCS-2
//! names of up to 64 characters (files get `;1`, as genisoimage and
//! libisofs write), for Windows and for readers without Rock Ridge. Only
//! directories and regular files are in it.

use std::collections::HashSet;

use crate::fstree::{FsTree, Kind};

use super::names::ident_order_units;
use super::records::{Dir, Record};
use super::rock_ridge::SystemUse;

/// Joliet identifiers (UCS-2 code units) for a directory's children,
/// given as (name, is a directory): characters Joliet forbids and those
/// outside UCS-2 become `_`, names are cut to 64 characters (`;1`
/// included for files), and collisions that makes get a `~N` suffix.
pub(super) fn joliet_idents(children: &[(&str, bool)]) -> Vec<Vec<u16>> {
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

pub(super) fn ucs2_be(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// The Joliet tree: directories breadth first, records in identifier
/// order; only directories and regular files.
pub(super) fn joliet_tree(tree: &FsTree) -> Vec<Dir> {
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
