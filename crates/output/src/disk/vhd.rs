//! VHD (Virtual PC / Hyper-V), fixed and dynamic, after Microsoft's
//! "Virtual Hard Disk Image Format Specification" 1.0.
//!
//! A fixed VHD is the raw image followed by a 512-byte footer. A dynamic
//! VHD is a copy of the footer, a dynamic disk header, the block
//! allocation table (BAT), then the allocated 2 MiB blocks (each behind a
//! sector bitmap), then the footer; blocks that are all zeros are not
//! allocated, and read as zeros.
//!
//! The footer's creator application is `qem2`, the one QEMU writes with
//! `force_size`: readers take that to mean "the size is the footer's
//! current size", not the CHS geometry's (which rounds down, and which
//! Azure refuses). The unique id is derived from the raw image's content;
//! the timestamp is fixed (LinuxKit's build time for generated files).

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::blocks::{RawBlocks, SECTOR};
use crate::bytes::is_zero;

/// Seconds from 1970 to 2000-01-01, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;
/// A dynamic disk's block size (the specification's default).
const BLOCK: u64 = 2 << 20;
const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;

/// Writes a fixed VHD of the raw image (`len` bytes of `raw`).
pub fn write_fixed<R: Read, W: Write>(raw: R, len: u64, out: W) -> io::Result<()> {
    write_fixed_aligned(raw, len, SECTOR, out)
}

/// Writes a fixed VHD whose size is rounded up to a whole MiB, the
/// alignment Azure requires of uploaded disks (it refuses others).
pub fn write_azure<R: Read, W: Write>(raw: R, len: u64, out: W) -> io::Result<()> {
    write_fixed_aligned(raw, len, 1 << 20, out)
}

fn write_fixed_aligned<R: Read, W: Write>(
    raw: R,
    len: u64,
    align: u64,
    mut out: W,
) -> io::Result<()> {
    fixed(raw, len, len, align, None, &mut out, |out, n| {
        crate::bytes::write_zeros(out, n)
    })
}

/// A fixed VHD of a disk of `size` bytes (rounded up to `align`): `len`
/// bytes of `raw`, then zeros, which are seeked over rather than written
/// (a new file gets a hole).
pub(crate) fn write_fixed_sparse<R: Read, W: Write + Seek>(
    raw: R,
    len: u64,
    size: u64,
    align: u64,
    seed: Option<&[u8; 32]>,
    out: &mut W,
) -> io::Result<()> {
    fixed(raw, len, size, align, seed, out, |out, n| {
        out.seek(SeekFrom::Current(n as i64)).map(drop)
    })
}

/// The footer a fixed VHD of `len` bytes of content on a disk of `size`
/// (rounded up to `align`) gets with `seed` (what
/// [`write_fixed_sparse`] writes after the disk), and that size: a raw
/// disk file becomes the VHD by growing to the size and appending it.
pub(crate) fn fixed_footer(
    len: u64,
    size: u64,
    align: u64,
    seed: &[u8; 32],
) -> io::Result<(u64, [u8; 512])> {
    let size = size.next_multiple_of(align);
    check_size(size)?;
    let digest = super::blocks::seeded_digest(len, size, seed);
    Ok((size, footer(size, FIXED, &digest)))
}

fn fixed<R: Read, W: Write>(
    raw: R,
    len: u64,
    size: u64,
    align: u64,
    seed: Option<&[u8; 32]>,
    out: &mut W,
    skip_zeros: impl Fn(&mut W, u64) -> io::Result<()>,
) -> io::Result<()> {
    let size = size.next_multiple_of(align);
    check_size(size)?;
    let mut blocks = RawBlocks::new(raw, len, size, seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < size && !blocks.exhausted() {
        let n = (size - done).min(buf.len() as u64) as usize;
        blocks.fill(&mut buf[..n])?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    skip_zeros(out, size - done)?;
    out.write_all(&footer(size, FIXED, &blocks.digest()))
}

/// Writes a dynamic VHD of the raw image: only blocks holding a non-zero
/// byte are stored. The footer copy at the start and the BAT are written
/// last, by seeking back.
pub fn write_dynamic<R: Read, W: Write + Seek>(raw: R, len: u64, out: W) -> io::Result<()> {
    write_dynamic_sized(raw, len, len, None, out)
}

/// A dynamic VHD of a disk of `size` bytes whose first `len` come from
/// `raw`.
pub(crate) fn write_dynamic_sized<R: Read, W: Write + Seek>(
    raw: R,
    len: u64,
    size: u64,
    seed: Option<&[u8; 32]>,
    mut out: W,
) -> io::Result<()> {
    let size = size.next_multiple_of(SECTOR);
    check_size(size)?;
    let start = out.stream_position()?;
    let entries = size.div_ceil(BLOCK);
    if entries > u64::from(u32::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the disk is too large for a dynamic VHD",
        ));
    }
    let bat_offset = 3 * SECTOR;
    let bat_len = (entries * 4).next_multiple_of(SECTOR);
    // The footer copy is filled in at the end; the header is known now.
    out.write_all(&[0u8; SECTOR as usize])?;
    out.write_all(&dynamic_header(bat_offset, entries as u32))?;
    crate::bytes::write_zeros(&mut out, bat_len)?;

    let mut bat = vec![0xffu8; bat_len as usize];
    let mut sector = (bat_offset + bat_len) / SECTOR;
    let mut blocks = RawBlocks::new(raw, len, size, seed);
    let mut buf = vec![0u8; BLOCK as usize];
    let bitmap = [0xffu8; SECTOR as usize];
    for i in 0..entries as usize {
        if blocks.exhausted() {
            break;
        }
        let n = (size - i as u64 * BLOCK).min(BLOCK) as usize;
        blocks.fill(&mut buf[..n])?;
        buf[n..].fill(0);
        if is_zero(&buf) {
            continue;
        }
        bat[i * 4..i * 4 + 4].copy_from_slice(&(sector as u32).to_be_bytes());
        out.write_all(&bitmap)?;
        out.write_all(&buf)?;
        sector += (SECTOR + BLOCK) / SECTOR;
    }
    if sector > u64::from(u32::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the image is too large for a dynamic VHD's 32-bit block offsets",
        ));
    }
    let foot = footer(size, DYNAMIC, &blocks.digest());
    out.write_all(&foot)?;
    let end = out.stream_position()?;
    out.seek(SeekFrom::Start(start))?;
    out.write_all(&foot)?;
    out.seek(SeekFrom::Start(start + bat_offset))?;
    out.write_all(&bat)?;
    out.seek(SeekFrom::Start(end))?;
    Ok(())
}

/// The one's complement of the byte sum: the footer's and the dynamic
/// header's checksum.
fn checksum(b: &[u8]) -> u32 {
    !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)))
}

/// The specification's CHS geometry for a size: (cylinders, heads,
/// sectors per track).
pub(crate) fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / SECTOR).min(65535 * 16 * 255);
    let (spt, heads, cth);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        let mut s = 17;
        let mut c = total / s;
        let mut h = c.div_ceil(1024).max(4);
        if c >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            c = total / s;
        }
        if c >= h * 1024 {
            s = 63;
            h = 16;
            c = total / s;
        }
        (spt, heads, cth) = (s, h, c);
    }
    ((cth / heads) as u16, heads as u8, spt as u8)
}

/// The largest VHD the specification allows: 2040 GiB.
const MAX_SIZE: u64 = 2040 << 30;

fn check_size(size: u64) -> io::Result<()> {
    if size > MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a disk of {size} bytes: VHDs hold at most 2040 GiB"),
        ));
    }
    Ok(())
}

fn footer(size: u64, disk_type: u32, digest: &[u8; 32]) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    let data_offset = if disk_type == FIXED { u64::MAX } else { SECTOR };
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    let time = (linuxkit_rootfs::DEFAULT_MTIME - VHD_EPOCH) as u32;
    f[24..28].copy_from_slice(&time.to_be_bytes());
    f[28..32].copy_from_slice(b"qem2");
    f[32..36].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = geometry(size);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&disk_type.to_be_bytes());
    f[68..84].copy_from_slice(&crate::ids::uuid(digest, "vhd unique id"));
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

fn dynamic_header(bat_offset: u64, entries: u32) -> [u8; 1024] {
    let mut h = [0u8; 1024];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&bat_offset.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&entries.to_be_bytes());
    h[32..36].copy_from_slice(&(BLOCK as u32).to_be_bytes());
    let sum = checksum(&h);
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_follows_the_specification() {
        // Values QEMU's calculate_geometry gives.
        assert_eq!(geometry(1 << 30), (2080, 16, 63));
        assert_eq!(geometry(10 << 20), (301, 4, 17));
        assert_eq!(geometry(200 << 30), (65535, 16, 255));
    }

    #[test]
    fn footer_checksum_verifies() {
        let f = footer(1 << 20, FIXED, &[0; 32]);
        let mut z = f;
        z[64..68].fill(0);
        assert_eq!(checksum(&z).to_be_bytes(), f[64..68]);
    }
}
