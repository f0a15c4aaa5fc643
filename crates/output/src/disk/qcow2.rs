//! qcow2 version 3 (QEMU's `docs/interop/qcow2.txt`), 64 KiB clusters,
//! 16-bit refcounts, no backing file, no compression.
//!
//! | clusters | content |
//! |---|---|
//! | 0 | header (and the end of the header extensions) |
//! | 1… | data: the raw image's non-zero clusters, in order |
//! | … | L2 tables, for the L1 entries that map any data |
//! | … | the L1 table |
//! | … | the refcount table, then the refcount blocks |
//!
//! Clusters that are all zeros are not allocated (an unallocated cluster of
//! an image without a backing file reads as zeros). Every cluster of the
//! file is referenced exactly once, so every refcount is 1 and every L1
//! and L2 entry carries the "copied" flag, which is what `qemu-img check`
//! expects of an image without snapshots. The tables follow the data, as
//! only then is it known which clusters are allocated; the header is
//! written last, by seeking back.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::blocks::{RawBlocks, SECTOR};
use crate::bytes::is_zero;

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 64-bit L2 entries per L2 table.
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts per refcount block.
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
const COPIED: u64 = 1 << 63;

/// Writes a qcow2 image of the raw image (`len` bytes of `raw`).
pub fn write<R: Read, W: Write + Seek>(raw: R, len: u64, out: W) -> io::Result<()> {
    write_sized(raw, len, len, out)
}

/// A qcow2 image of a disk of `size` bytes whose first `len` come from
/// `raw`.
pub(crate) fn write_sized<R: Read, W: Write + Seek>(
    raw: R,
    len: u64,
    size: u64,
    mut out: W,
) -> io::Result<()> {
    let size = size.next_multiple_of(SECTOR);
    let start = out.stream_position()?;
    let vclusters = size.div_ceil(CLUSTER);
    let l1_size = vclusters.div_ceil(L2_ENTRIES);
    if l1_size > u64::from(u32::MAX) / 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the disk is too large for qcow2 with 64 KiB clusters",
        ));
    }
    crate::bytes::write_zeros(&mut out, CLUSTER)?;

    // Data clusters, and which virtual cluster each holds.
    let mut mapped: Vec<u64> = Vec::new();
    let mut blocks = RawBlocks::unhashed(raw, len);
    let mut buf = vec![0u8; CLUSTER as usize];
    for v in 0..vclusters {
        if blocks.exhausted() {
            break;
        }
        let n = (size - v * CLUSTER).min(CLUSTER) as usize;
        blocks.fill(&mut buf[..n])?;
        buf[n..].fill(0);
        if is_zero(&buf) {
            continue;
        }
        out.write_all(&buf)?;
        mapped.push(v);
    }
    let data = mapped.len() as u64;

    // L2 tables for the L1 entries that map anything.
    let mut l2_for: Vec<Option<u64>> = vec![None; l1_size as usize];
    let mut next_l2 = 1 + data;
    for &v in &mapped {
        let e = &mut l2_for[(v / L2_ENTRIES) as usize];
        if e.is_none() {
            *e = Some(next_l2);
            next_l2 += 1;
        }
    }
    let l2_tables = next_l2 - 1 - data;
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let l1_at = next_l2;
    let rt_at = l1_at + l1_clusters;
    // The refcount blocks cover every cluster, themselves included.
    let fixed = rt_at;
    let (mut rt_clusters, mut rb) = (1u64, 1u64);
    loop {
        let total = fixed + rt_clusters + rb;
        let need_rb = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let need_rt = (need_rb * 8).div_ceil(CLUSTER);
        if need_rb == rb && need_rt == rt_clusters {
            break;
        }
        (rb, rt_clusters) = (need_rb.max(rb), need_rt.max(rt_clusters));
    }
    let rb_at = rt_at + rt_clusters;
    let total = rb_at + rb;

    let mut l2 = vec![0u8; CLUSTER as usize];
    let mut i = 0;
    for (t, host) in l2_for.iter().enumerate() {
        if host.is_none() {
            continue;
        }
        l2.fill(0);
        let first = t as u64 * L2_ENTRIES;
        while i < mapped.len() && mapped[i] < first + L2_ENTRIES {
            let at = ((mapped[i] - first) * 8) as usize;
            let entry = ((1 + i as u64) * CLUSTER) | COPIED;
            l2[at..at + 8].copy_from_slice(&entry.to_be_bytes());
            i += 1;
        }
        out.write_all(&l2)?;
    }
    debug_assert_eq!(l2_tables, l2_for.iter().flatten().count() as u64);

    let mut l1 = vec![0u8; (l1_clusters * CLUSTER) as usize];
    for (t, host) in l2_for.iter().enumerate() {
        if let Some(h) = host {
            l1[t * 8..t * 8 + 8].copy_from_slice(&((h * CLUSTER) | COPIED).to_be_bytes());
        }
    }
    out.write_all(&l1)?;

    let mut rt = vec![0u8; (rt_clusters * CLUSTER) as usize];
    for b in 0..rb {
        let at = (b * 8) as usize;
        rt[at..at + 8].copy_from_slice(&((rb_at + b) * CLUSTER).to_be_bytes());
    }
    out.write_all(&rt)?;
    let mut block = vec![0u8; CLUSTER as usize];
    for b in 0..rb {
        block.fill(0);
        let first = b * REFCOUNTS_PER_BLOCK;
        let last = (first + REFCOUNTS_PER_BLOCK).min(total);
        for c in first..last {
            let at = ((c - first) * 2) as usize;
            block[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
        }
        out.write_all(&block)?;
    }

    let end = out.stream_position()?;
    out.seek(SeekFrom::Start(start))?;
    out.write_all(&header(
        size,
        l1_size as u32,
        l1_at,
        rt_at,
        rt_clusters as u32,
    ))?;
    out.seek(SeekFrom::Start(end))?;
    Ok(())
}

fn header(size: u64, l1_size: u32, l1_at: u64, rt_at: u64, rt_clusters: u32) -> Vec<u8> {
    let mut h = vec![0u8; 112];
    h[0..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
    h[24..32].copy_from_slice(&size.to_be_bytes());
    h[36..40].copy_from_slice(&l1_size.to_be_bytes());
    h[40..48].copy_from_slice(&(l1_at * CLUSTER).to_be_bytes());
    h[48..56].copy_from_slice(&(rt_at * CLUSTER).to_be_bytes());
    h[56..60].copy_from_slice(&rt_clusters.to_be_bytes());
    // Refcount order 4: 16-bit refcounts.
    h[96..100].copy_from_slice(&4u32.to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    // The header extensions' end marker (type 0, length 0) follows.
    h
}
