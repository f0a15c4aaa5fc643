//! The Google Compute Engine image: `NAME.img.tar.gz`, a gzipped tar
//! holding one file, `disk.raw`.
//!
//! GCE's import requirements: the tar is in GNU format, the file is named
//! `disk.raw`, and its size is a whole number of GiB. Google's documented
//! recipe is `tar --format=oldgnu -Sczf image.tar.gz disk.raw`: a GNU
//! *sparse* member, and so is this. The raw image is padded to the next
//! GiB with a hole: the member's sparse map says "the content, then
//! nothing up to the size", and only the content is archived, so neither
//! the padding nor the disk's free space costs anything to compress or to
//! unpack (`tar -xSzf` gives a sparse `disk.raw`). The tar header's owner
//! is root and its time LinuxKit's fixed build time; the gzip header has
//! no name and no time, so the archive is reproducible.
//!
//! The content is compressed in 1 MiB chunks on all cores, in 64 KiB
//! blocks, each deflated by a reset compressor ending on a byte boundary
//! (a sync flush) or stored: deflate blocks only refer back to what was
//! decompressed before them, and a reset compressor's blocks only to their
//! own output, so the blocks can be made in parallel and concatenated into
//! one stream. Already-compressed blocks (the initrd, the kernel's payload)
//! are stored, see `worth_deflating`; the rest is deflated at gzip's
//! default level, 6, which is what Google's recipe gives.

use std::io::{self, Read, Write};

use flate2::Crc;

use super::blocks::RawBlocks;

const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks.
const RECORD: u64 = 20 * BLOCK as u64;
const GIB: u64 = 1 << 30;
/// The unit of parallel work.
const CHUNK: usize = 1 << 20;
/// The unit of the stored-or-deflated decision, and of a compressor's
/// history.
const DEFLATE_BLOCK: usize = 64 << 10;
/// Chunks compressed together, on all cores.
const BATCH: usize = 8;
/// gzip's default level.
const LEVEL: u32 = 6;

/// Writes the gzipped GNU tar of the raw image (`len` bytes of `raw`),
/// padded to a whole GiB, as `disk.raw`.
pub fn write<R: Read, W: Write>(raw: R, len: u64, out: W) -> io::Result<()> {
    write_sized(raw, len, len, out)
}

/// The archive of a disk of `size` bytes (padded to a whole GiB) whose
/// first `len` come from `raw`.
pub(crate) fn write_sized<R: Read, W: Write>(
    raw: R,
    len: u64,
    size: u64,
    out: W,
) -> io::Result<()> {
    let size = size.max(len).next_multiple_of(GIB).max(GIB);
    // The archived data: the content, to a whole block.
    let data = len.next_multiple_of(BLOCK as u64);
    let mut gz = Gzip::new(out)?;
    let header = if data < size {
        sparse_header("disk.raw", size, data, linuxkit_rootfs::DEFAULT_MTIME)
    } else {
        oldgnu_header("disk.raw", size, b'0', linuxkit_rootfs::DEFAULT_MTIME)
    };
    gz.chunks(&[&header[..]])?;
    let mut blocks = RawBlocks::unhashed(raw, len);
    let mut done = 0;
    // Read, compressed on all cores and written at once (see `pipeline`).
    let read = |buf: &mut Vec<u8>| -> io::Result<bool> {
        if done >= data {
            return Ok(false);
        }
        let n = (data - done).min((BATCH * CHUNK) as u64) as usize;
        buf.resize(n, 0);
        // `fill` zeroes what follows the content, to the block.
        blocks.fill(buf)?;
        done += n as u64;
        Ok(true)
    };
    let work = |buf: &[u8]| {
        let chunks: Vec<&[u8]> = buf.chunks(CHUNK).collect();
        super::parallel::par_map(&chunks, |c| deflate_chunk(c))
    };
    super::parallel::pipeline(BATCH * CHUNK, read, work, |chunks| gz.write_chunks(chunks))?;
    // The end-of-archive marker, and zeros to the end of the record, as
    // GNU tar writes.
    let archived = BLOCK as u64 + data + 2 * BLOCK as u64;
    let tail = archived.next_multiple_of(RECORD) - data - BLOCK as u64;
    gz.chunks(&[&vec![0u8; tail as usize][..]])?;
    gz.finish()
}

/// A gzip member made of independently compressed chunks (see the module
/// docs), so that the bytes do not depend on the cores.
struct Gzip<W: Write> {
    out: W,
    crc: Crc,
}

/// A chunk's deflate blocks (64 KiB at a time, stored or deflated) and
/// its CRC.
fn deflate_chunk(data: &[u8]) -> io::Result<(Vec<u8>, Crc)> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
    for b in data.chunks(DEFLATE_BLOCK) {
        super::deflate::deflate_blocks(b, LEVEL, &mut out)?;
    }
    let mut crc = Crc::new();
    crc.update(data);
    Ok((out, crc))
}

impl<W: Write> Gzip<W> {
    fn new(mut out: W) -> io::Result<Self> {
        // No name, no time; no extra flags; Unix.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        Ok(Gzip {
            out,
            crc: Crc::new(),
        })
    }

    /// Chunks of data, compressed in parallel, written in order.
    fn chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        self.write_chunks(super::parallel::par_map(chunks, |c| deflate_chunk(c)))
    }

    /// Compressed chunks, in order.
    fn write_chunks(&mut self, chunks: Vec<io::Result<(Vec<u8>, Crc)>>) -> io::Result<()> {
        for d in chunks {
            let (blocks, crc) = d?;
            self.out.write_all(&blocks)?;
            self.crc.combine(&crc);
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        // The final (empty, stored) block.
        let mut end = Vec::new();
        super::deflate::stored_blocks(&[], true, &mut end);
        self.out.write_all(&end)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()
    }
}

/// A GNU sparse member's header (type `S`), as `tar --format=oldgnu -S`
/// writes it: the map holds the data's one region (the first `data` bytes)
/// and then a region of no bytes at `size`, which is how GNU tar records a
/// trailing hole; the header's size is the archived data's, and the real
/// size follows the map. (The map fits in the header, so no extension
/// headers: `isextended` stays 0.)
fn sparse_header(name: &str, size: u64, data: u64, mtime: u64) -> [u8; BLOCK] {
    let mut h = oldgnu_header(name, data, b'S', mtime);
    let regions = [(0, data), (size, 0)];
    for (i, (offset, bytes)) in regions.into_iter().filter(|r| *r != (0, 0)).enumerate() {
        let at = 386 + 24 * i;
        number(&mut h[at..at + 12], offset);
        number(&mut h[at + 12..at + 24], bytes);
    }
    number(&mut h[483..495], size);
    checksum(&mut h);
    h
}

/// A GNU (`oldgnu`) header of type `kind` (`0`: a regular file): the
/// `ustar  \0` magic, octal numbers (base 256 from 8 GiB), root's, 0644.
fn oldgnu_header(name: &str, size: u64, kind: u8, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    number(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    checksum(&mut h);
    h
}

/// The header checksum: the sum of its bytes with the field as spaces,
/// written as six digits, a NUL and a space, as GNU tar does.
fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A 12-byte number field: octal below 8 GiB, GNU's base-256 above.
fn number(field: &mut [u8], v: u64) {
    if v < 1 << 33 {
        octal(field, v);
    } else {
        field.fill(0);
        field[0] = 0x80;
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
    }
}

/// `v` in octal, zero-filled, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(z: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(z)
            .read_to_end(&mut back)
            .unwrap();
        back
    }

    #[test]
    fn the_content_is_archived_and_the_padding_is_a_hole() {
        let mut data = vec![0u8; 3 * CHUNK + 700];
        data[CHUNK + 5] = 9;
        data[3 * CHUNK + 699] = 7;
        let mut out = Vec::new();
        write(&data[..], data.len() as u64, &mut out).unwrap();
        assert!(out.len() < 40_000, "{}", out.len());
        let tar = gunzip(&out);
        let h = &tar[..BLOCK];
        assert_eq!(h[156], b'S');
        assert_eq!(&h[257..265], b"ustar  \0");
        let stored = (data.len() as u64).next_multiple_of(512);
        assert_eq!(field(&h[124..136]), stored);
        assert_eq!(field(&h[386..398]), 0);
        assert_eq!(field(&h[398..410]), stored);
        assert_eq!(field(&h[410..422]), GIB);
        assert_eq!(field(&h[422..434]), 0);
        assert_eq!(field(&h[483..495]), GIB);
        assert!(tar[BLOCK..BLOCK + data.len()] == data[..]);
        assert!((tar.len() as u64).is_multiple_of(RECORD));
        assert!(tar[BLOCK + data.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn large_numbers_are_base_256() {
        let h = sparse_header("disk.raw", 16 * GIB, 1 << 20, 0);
        assert_eq!(h[410], 0x80);
        assert_eq!(
            u64::from_be_bytes(h[414..422].try_into().unwrap()),
            16 * GIB
        );
        assert_eq!(field(&h[124..136]), 1 << 20);
        // A disk with no room left is a regular file.
        let h = oldgnu_header("disk.raw", GIB, b'0', 0);
        assert_eq!(field(&h[124..136]), GIB);
    }

    /// An octal header field.
    fn field(f: &[u8]) -> u64 {
        let s = std::str::from_utf8(f).unwrap();
        u64::from_str_radix(s.trim_end_matches('\0').trim(), 8).unwrap()
    }
}
