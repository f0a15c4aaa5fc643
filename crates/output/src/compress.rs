//! The initrd's compression: the methods `--initrd-compression` names and
//! the compressing writers, among them LZ4's legacy format, the one the
//! kernel unpacks (which no crate writes).

use std::io::{self, Write};

/// How the initrd is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip, what every kernel can unpack (the reference's choice).
    #[default]
    Gzip,
    /// zstd: smaller than gzip at the same speed; kernels since 5.9 unpack it.
    Zstd,
    /// LZ4 in the legacy format (what the kernel's `unlz4` reads).
    Lz4,
    /// Stored as is: the largest initrd, the fastest to unpack.
    None,
}

impl Compression {
    /// The name `--initrd-compression` takes.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::None => "none",
        }
    }

    /// The level used when none is given: zlib's default for gzip; 9 for
    /// zstd, which compresses about as fast as gzip -6 and 15-20% smaller
    /// (level 19 is 5-10% smaller still but 15 times slower, see
    /// docs/images.md); lz4_flex has a single level.
    pub fn default_level(self) -> Option<i32> {
        match self {
            Compression::Gzip => Some(6),
            Compression::Zstd => Some(9),
            Compression::Lz4 | Compression::None => None,
        }
    }
}

/// A compressing writer whose `finish` reports errors (dropping an encoder
/// would swallow them and could leave a truncated initrd unnoticed).
pub enum Compressor<W: Write> {
    /// Writing a gzip member.
    Gzip(flate2::write::GzEncoder<W>),
    /// Writing a zstd frame with a checksum.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// Writing an LZ4 legacy stream.
    Lz4(Lz4Legacy<W>),
    /// Passing the bytes through.
    None(W),
}

/// The largest window the zstd frames get: 8 MiB, level 19's. The kernel's
/// `unzstd` allocates the window a frame asks for and refuses more than
/// 128 MiB; levels 20-22 would ask for 32-128 MiB of a small machine's
/// memory during boot for a few percent.
const ZSTD_MAX_WINDOW_LOG: u32 = 23;

impl<W: Write> Compressor<W> {
    /// Starts compressing into `out` with `compression` at `level` (the
    /// method's default when `None`; ignored by LZ4 and none).
    pub fn new(out: W, compression: Compression, level: Option<i32>) -> io::Result<Self> {
        let level = level.or(compression.default_level());
        Ok(match compression {
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32),
            )),
            Compression::Zstd => {
                let level = level.unwrap_or(9);
                let mut enc = zstd::stream::write::Encoder::new(out, level)?;
                enc.include_checksum(true)?;
                if level > 19 {
                    enc.window_log(ZSTD_MAX_WINDOW_LOG)?;
                }
                Compressor::Zstd(enc)
            }
            Compression::Lz4 => Compressor::Lz4(Lz4Legacy::new(out)?),
            Compression::None => Compressor::None(out),
        })
    }

    /// Ends the stream (the trailer, the last block) and returns `out`;
    /// the error a dropped encoder would swallow is returned here.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
            Compressor::Lz4(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(b),
            Compressor::Zstd(e) => e.write(b),
            Compressor::Lz4(e) => e.write(b),
            Compressor::None(w) => w.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
            Compressor::Lz4(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

/// The magic number that starts an LZ4 legacy stream (little-endian).
pub const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// The uncompressed size of a legacy block: the kernel's `unlz4` decodes
/// each block into a buffer of exactly this size.
pub const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// LZ4's legacy format, the one the kernel's `unlz4` reads (`lz4 -l`): the
/// magic, then blocks of `[u32 LE compressed length][LZ4 block]` of at
/// most 8 MiB uncompressed each. There is no end mark: `unlz4` reads blocks
/// to the end of the initrd and skips a repeated magic, so LZ4 segments
/// can be concatenated (and every segment must be LZ4). The `lz4` tool
/// reads concatenated legacy streams alike.
pub struct Lz4Legacy<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Lz4Legacy<W> {
    /// Starts a legacy stream on `out` (writes the magic).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&LZ4_LEGACY_MAGIC.to_le_bytes())?;
        Ok(Lz4Legacy {
            out,
            buf: Vec::with_capacity(LZ4_LEGACY_BLOCK),
        })
    }

    fn block(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let c = lz4_flex::block::compress(&self.buf);
        self.out.write_all(&(c.len() as u32).to_le_bytes())?;
        self.out.write_all(&c)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last (partial) block.
    pub fn finish(mut self) -> io::Result<W> {
        self.block()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Lz4Legacy<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(LZ4_LEGACY_BLOCK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == LZ4_LEGACY_BLOCK {
            self.block()?;
        }
        Ok(n)
    }

    /// Blocks are only cut at 8 MiB (or at the end): a flush must not
    /// shorten one, so it only flushes what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a legacy LZ4 stream into its blocks, checking the framing.
    fn blocks(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        assert_eq!(b[..4], LZ4_LEGACY_MAGIC.to_le_bytes());
        b = &b[4..];
        while !b.is_empty() {
            let n = u32::from_le_bytes(b[..4].try_into().unwrap());
            if n == LZ4_LEGACY_MAGIC {
                b = &b[4..];
                continue;
            }
            let n = n as usize;
            let block = lz4_flex::block::decompress(&b[4..4 + n], LZ4_LEGACY_BLOCK).unwrap();
            assert!(block.len() <= LZ4_LEGACY_BLOCK);
            out.push(block);
            b = &b[4 + n..];
        }
        out
    }

    #[test]
    fn lz4_legacy_framing_cuts_8_mib_blocks_and_concatenates() {
        // 9 MiB that compress a little, written in odd-sized pieces.
        let data: Vec<u8> = (0..9u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 29) as u8)
            .collect();
        let mut w = Lz4Legacy::new(Vec::new()).unwrap();
        for chunk in data.chunks(100_003) {
            w.write_all(chunk).unwrap();
            w.flush().unwrap();
        }
        let a = w.finish().unwrap();
        let got = blocks(&a);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), LZ4_LEGACY_BLOCK);
        assert_eq!(got.concat(), data);
        // A second stream after the first: its magic is skipped, as the
        // kernel's unlz4 does.
        let mut b = Lz4Legacy::new(Vec::new()).unwrap();
        b.write_all(b"more").unwrap();
        let mut both = a.clone();
        both.extend(b.finish().unwrap());
        assert_eq!(blocks(&both).concat(), [&data[..], b"more"].concat());
        // An empty stream is the magic alone.
        assert_eq!(
            Lz4Legacy::new(Vec::new()).unwrap().finish().unwrap(),
            LZ4_LEGACY_MAGIC.to_le_bytes()
        );
        // The real tool reads the concatenation.
        let mut child = std::process::Command::new("lz4")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("lz4 is needed (scripts/setup installs it): {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = both.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, [&data[..], b"more"].concat());
    }
}
