//! The Google Compute Engine image: `NAME.img.tar.gz`, a gzipped tar
//! holding one file, `disk.raw`.
//!
//! GCE's import requirements: the tar is in GNU format (`tar
//! --format=oldgnu`), the file is named `disk.raw`, and its size is a whole
//! number of GiB. The raw image is padded with zeros to the next GiB. The
//! tar header's owner is root and its time LinuxKit's fixed build time; the
//! gzip header has no name and no time, so the archive is reproducible.
//!
//! The disk is compressed in 1 MiB chunks, each by a fresh compressor
//! whose output ends on a byte boundary (a sync flush): deflate blocks only
//! refer back to what was decompressed before them, and a fresh
//! compressor's blocks only to their own output, so the chunks can be
//! compressed in parallel and concatenated into one stream. A chunk of
//! zeros (the GiB padding, the free space of the disk) is one precomputed
//! run, so a GiB of padding costs nothing to compress; already-compressed
//! data (the initrd, the kernel's payload: see `Sampler`) is stored; the
//! rest is deflated at level 9 (the reference's `gzip -9`).

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::{RawBlocks, is_zero};

const BLOCK: usize = 512;
/// GNU tar's default record: 20 blocks.
const RECORD: u64 = 20 * BLOCK as u64;
const GIB: u64 = 1 << 30;
/// The unit of zero runs.
const CHUNK: usize = 1 << 20;

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
    let mut gz = Gzip::new(out)?;
    gz.write(&oldgnu_header(
        "disk.raw",
        size,
        linuxkit_rootfs::DEFAULT_MTIME,
    ))?;
    let mut blocks = RawBlocks::unhashed(raw, len);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut done = 0;
    while done < size {
        let n = (size - done).min(CHUNK as u64) as usize;
        if blocks.exhausted() && n == CHUNK {
            // Past the content: a zero run, without filling or comparing.
            gz.chunks(std::mem::take(&mut batch))?;
            gz.zero_chunk()?;
        } else {
            let mut buf = vec![0u8; n];
            blocks.fill(&mut buf)?;
            batch.push(buf);
            if batch.len() == BATCH {
                gz.chunks(std::mem::take(&mut batch))?;
            }
        }
        done += n as u64;
    }
    gz.chunks(batch)?;
    // The content is a whole number of blocks; then the end-of-archive
    // marker, and zeros to the end of the record, as GNU tar writes.
    let archived = BLOCK as u64 + size + 2 * BLOCK as u64;
    let tail = archived.next_multiple_of(RECORD) - size - BLOCK as u64;
    gz.write(&vec![0u8; tail as usize])?;
    gz.finish()
}

/// Chunks compressed together, on all cores.
const BATCH: usize = 16;

/// A gzip member made of independently compressed chunks (see the module
/// docs): each chunk's deflate blocks come from a fresh compressor and end
/// on a byte boundary (a sync flush), so chunks can be compressed in
/// parallel and concatenated, and the bytes do not depend on the cores.
struct Gzip<W: Write> {
    out: W,
    crc: Crc,
    /// The deflate blocks of a MiB of zeros, and their CRC.
    zeros: Option<(Vec<u8>, Crc)>,
}

/// A chunk's deflate blocks and CRC: all zeros as the precomputed run,
/// already-compressed data (see `Sampler`) as stored blocks, the rest at
/// level 9.
fn deflate_chunk(data: &[u8]) -> io::Result<(Vec<u8>, Crc)> {
    let level = if data.len() >= 4096 && !is_zero(data) && super::Sampler::check(data) {
        Compression::none()
    } else {
        Compression::best()
    };
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 100 + 64);
    let mut buf = Vec::with_capacity(CHUNK);
    deflate(&mut c, data, FlushCompress::Sync, &mut buf, &mut out)?;
    let mut crc = Crc::new();
    crc.update(data);
    Ok((out, crc))
}

impl<W: Write> Gzip<W> {
    fn new(mut out: W) -> io::Result<Self> {
        // No name, no time; "maximum compression"; Unix.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3])?;
        Ok(Gzip {
            out,
            crc: Crc::new(),
            zeros: None,
        })
    }

    /// One chunk: a whole MiB of zeros as the precomputed run.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() == CHUNK && is_zero(data) {
            return self.zero_chunk();
        }
        self.chunks(vec![data.to_vec()])
    }

    /// Chunks of data, compressed in parallel, written in order.
    fn chunks(&mut self, chunks: Vec<Vec<u8>>) -> io::Result<()> {
        let done = super::par_map(&chunks, |c| {
            if c.len() == CHUNK && is_zero(c) {
                Ok(None)
            } else {
                deflate_chunk(c).map(Some)
            }
        });
        for d in done {
            match d? {
                None => self.zero_chunk()?,
                Some((blocks, crc)) => {
                    self.out.write_all(&blocks)?;
                    self.crc.combine(&crc);
                }
            }
        }
        Ok(())
    }

    /// A whole MiB of zeros, as the precomputed run.
    fn zero_chunk(&mut self) -> io::Result<()> {
        if self.zeros.is_none() {
            self.zeros = Some(deflate_chunk(&vec![0u8; CHUNK])?);
        }
        let (run, crc) = self.zeros.as_ref().expect("made above");
        self.out.write_all(run)?;
        self.crc.combine(crc);
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        // The final (empty) block.
        let mut c = Compress::new(Compression::best(), false);
        let mut buf = Vec::with_capacity(64);
        deflate(&mut c, &[], FlushCompress::Finish, &mut buf, &mut self.out)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()
    }
}

/// Feeds `input` to `comp` with `flush`, writing what comes out.
fn deflate(
    comp: &mut Compress,
    input: &[u8],
    flush: FlushCompress,
    buf: &mut Vec<u8>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut pos = 0;
    loop {
        buf.clear();
        let before = comp.total_in();
        let status = comp
            .compress_vec(&input[pos..], buf, flush)
            .map_err(io::Error::other)?;
        pos += (comp.total_in() - before) as usize;
        out.write_all(buf)?;
        let drained = buf.len() < buf.capacity();
        match status {
            Status::StreamEnd => return Ok(()),
            _ if pos == input.len() && drained && !matches!(flush, FlushCompress::Finish) => {
                return Ok(());
            }
            _ => {}
        }
    }
}

/// A GNU (`oldgnu`) header for a regular file: the `ustar  \0` magic,
/// octal numbers, and GNU's base-256 encoding for sizes of 8 GiB and more.
fn oldgnu_header(name: &str, size: u64, mtime: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 1 << 33 {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    // Six digits, a NUL, a space: what GNU tar writes.
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
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

    #[test]
    fn zero_runs_decompress_to_zeros() {
        let mut data = vec![0u8; 5 * CHUNK + 77];
        data[CHUNK + 5] = 9;
        data[4 * CHUNK - 1] = 7;
        let mut out = Vec::new();
        let mut gz = Gzip::new(&mut out).unwrap();
        for c in data.chunks(CHUNK) {
            gz.write(c).unwrap();
        }
        gz.finish().unwrap();
        assert!(out.len() < 20_000, "{}", out.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
    }
}
