//! streamOptimized VMDK, after VMware's "Virtual Disk Format 5.0"
//! specification (and what QEMU's `vmdk.c` reads): the format VMware
//! imports (OVF/OVA) and the reference's `vmdk` output.
//!
//! | sectors | content |
//! |---|---|
//! | 0 | sparse extent header, grain directory "at the end" |
//! | 1… | the embedded descriptor (text) |
//! | … | grains: a marker (virtual sector, compressed length), the grain's 64 KiB deflated (zlib), padded to a sector; all-zero grains are left out |
//! | … | for each grain table: a marker, then its 512 entries |
//! | … | a marker, then the grain directory |
//! | … | a footer marker, the footer (the header, with the grain directory's place), the end-of-stream marker |
//!
//! Everything after the header is written in one pass; the descriptor's
//! content id (`CID`, which VMware compares between a disk and its
//! snapshots) is derived from the raw image, so it is patched in at the
//! end, in place.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use super::blocks::{RawBlocks, SECTOR};
use crate::bytes::is_zero;

/// Sectors per grain (64 KiB grains).
const GRAIN_SECTORS: u64 = 128;
const GRAIN: usize = (GRAIN_SECTORS * SECTOR) as usize;
const GTES_PER_GT: u64 = 512;
const GD_AT_END: u64 = u64::MAX;
/// Valid new-line test, compressed grains, markers.
const FLAGS: u32 = 1 | 1 << 16 | 1 << 17;
const MARKER_EOS: u32 = 0;
const MARKER_GT: u32 = 1;
const MARKER_GD: u32 = 2;
const MARKER_FOOTER: u32 = 3;
/// Sectors reserved for the descriptor.
const DESC_SECTORS: u64 = 2;

/// Writes a streamOptimized VMDK of the raw image (`len` bytes of `raw`);
/// `name` is the file name its descriptor gives the extent (the VMDK's own
/// name, as VMware's tools expect).
pub fn write_stream_optimized<R: Read, W: Write + Seek>(
    raw: R,
    len: u64,
    name: &str,
    out: W,
) -> io::Result<()> {
    write_sized(raw, len, len, name, None, out)
}

/// A streamOptimized VMDK of a disk of `size` bytes whose first `len` come
/// from `raw`.
pub(crate) fn write_sized<R: Read, W: Write + Seek>(
    raw: R,
    len: u64,
    size: u64,
    name: &str,
    seed: Option<&[u8; 32]>,
    mut out: W,
) -> io::Result<()> {
    let capacity = size.div_ceil(SECTOR);
    let grains = capacity.div_ceil(GRAIN_SECTORS);
    let tables = grains.div_ceil(GTES_PER_GT);
    let start = out.stream_position()?;
    let overhead = 1 + DESC_SECTORS;

    out.write_all(&header(capacity, GD_AT_END))?;
    let desc = descriptor(capacity, name, 0);
    out.write_all(&desc)?;

    let mut sector = overhead;
    let mut gt = vec![0u32; (tables * GTES_PER_GT) as usize];
    let mut blocks = RawBlocks::new(raw, len, size, seed);
    // Grains are read a batch at a time and compressed on all cores while
    // the batch before is written (see `pipeline`); each is its own zlib
    // stream, so the bytes do not depend on the cores.
    let mut next = 0;
    let read = |buf: &mut Vec<u8>| -> io::Result<bool> {
        if next >= grains || blocks.exhausted() {
            return Ok(false);
        }
        // A grain past the disk's end is compressed as a whole grain, as
        // readers inflate whole grains: `fill` zeroes what the disk lacks.
        let n = (grains - next).min(BATCH as u64) as usize;
        let bytes = ((capacity - next * GRAIN_SECTORS) * SECTOR).min((n * GRAIN) as u64) as usize;
        buf.resize(n * GRAIN, 0);
        blocks.fill(&mut buf[..bytes])?;
        buf[bytes..].fill(0);
        next += n as u64;
        Ok(true)
    };
    let mut g = 0u64;
    let write = |compressed: Vec<io::Result<Option<Vec<u8>>>>| -> io::Result<()> {
        for z in compressed {
            if let Some(z) = z? {
                gt[g as usize] = to_u32(sector)?;
                out.write_all(&z)?;
                sector += z.len() as u64 / SECTOR;
            }
            g += 1;
        }
        Ok(())
    };
    // All-zero grains are left out (the grain table says so): `None`. The
    // worker gets the batches in order, so it counts their first grains.
    let first_grain = AtomicU64::new(0);
    let work = |buf: &[u8]| -> Vec<io::Result<Option<Vec<u8>>>> {
        let base = first_grain.fetch_add((buf.len() / GRAIN) as u64, Ordering::Relaxed);
        let grains: Vec<(u64, &[u8])> = buf
            .chunks(GRAIN)
            .enumerate()
            .map(|(i, b)| (base + i as u64, b))
            .collect();
        super::parallel::par_map(&grains, |(g, b)| {
            if is_zero(b) {
                Ok(None)
            } else {
                grain(*g, b).map(Some)
            }
        })
    };
    super::parallel::pipeline(BATCH * GRAIN, read, work, write)?;

    let gt_sectors = GTES_PER_GT * 4 / SECTOR;
    let mut gd = Vec::with_capacity(tables as usize);
    for t in gt.chunks(GTES_PER_GT as usize) {
        out.write_all(&marker(gt_sectors, MARKER_GT))?;
        sector += 1;
        gd.push(to_u32(sector)?);
        let bytes: Vec<u8> = t.iter().flat_map(|e| e.to_le_bytes()).collect();
        out.write_all(&bytes)?;
        sector += gt_sectors;
    }
    let mut gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    gd_bytes.resize(gd_bytes.len().next_multiple_of(SECTOR as usize), 0);
    out.write_all(&marker(gd_bytes.len() as u64 / SECTOR, MARKER_GD))?;
    sector += 1;
    let gd_sector = sector;
    out.write_all(&gd_bytes)?;
    out.write_all(&marker(1, MARKER_FOOTER))?;
    out.write_all(&header(capacity, gd_sector))?;
    out.write_all(&marker(0, MARKER_EOS))?;

    let cid = crate::ids::id32(&blocks.digest(), "vmdk cid");
    let end = out.stream_position()?;
    out.seek(SeekFrom::Start(start + SECTOR))?;
    out.write_all(&descriptor(capacity, name, cid))?;
    out.seek(SeekFrom::Start(end))?;
    Ok(())
}

/// Grains compressed together.
const BATCH: usize = 64;

/// A grain as it is stored: its marker (virtual sector, compressed
/// length), its zlib stream, zeros to a whole sector. Already-compressed
/// grains are stored (a zlib stream of stored blocks, which every reader
/// inflates): see `worth_deflating`.
fn grain(g: u64, buf: &[u8]) -> io::Result<Vec<u8>> {
    let mut z = Vec::with_capacity(GRAIN + 1024);
    z.extend_from_slice(&(g * GRAIN_SECTORS).to_le_bytes());
    z.extend_from_slice(&[0; 4]);
    super::deflate::zlib_stream(buf, &mut z)?;
    let clen = (z.len() - 12) as u32;
    z[8..12].copy_from_slice(&clen.to_le_bytes());
    z.resize(z.len().next_multiple_of(SECTOR as usize), 0);
    Ok(z)
}

fn to_u32(sector: u64) -> io::Result<u32> {
    u32::try_from(sector).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the image is too large for a VMDK's 32-bit sector offsets",
        )
    })
}

fn header(capacity: u64, gd_offset: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&3u32.to_le_bytes());
    h[8..12].copy_from_slice(&FLAGS.to_le_bytes());
    h[12..20].copy_from_slice(&capacity.to_le_bytes());
    h[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes());
    h[36..44].copy_from_slice(&DESC_SECTORS.to_le_bytes());
    h[44..48].copy_from_slice(&(GTES_PER_GT as u32).to_le_bytes());
    // No redundant grain directory.
    h[56..64].copy_from_slice(&gd_offset.to_le_bytes());
    h[64..72].copy_from_slice(&(1 + DESC_SECTORS).to_le_bytes());
    // Not shut down uncleanly; the new-line test characters.
    h[73..77].copy_from_slice(b"\n \r\n");
    // Deflate.
    h[77..79].copy_from_slice(&1u16.to_le_bytes());
    h
}

fn marker(sectors: u64, kind: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[0..8].copy_from_slice(&sectors.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    m
}

/// The embedded descriptor, zero-padded to its reserved sectors. The
/// geometry is the IDE one QEMU gives (16 heads, 63 sectors).
fn descriptor(capacity: u64, name: &str, cid: u32) -> Vec<u8> {
    let name: String = name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .take(200)
        .collect();
    let cylinders = (capacity / (16 * 63)).min(16383);
    let text = format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity} SPARSE \"{name}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"16\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.adapterType = \"ide\"\n"
    );
    let mut d = text.into_bytes();
    d.resize((DESC_SECTORS * SECTOR) as usize, 0);
    d
}
