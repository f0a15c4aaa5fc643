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
    /// Writing gzip members.
    Gzip(GzipMembers<W>),
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
            Compression::Gzip => {
                Compressor::Gzip(GzipMembers::new(out, level.unwrap_or(6).clamp(0, 9)))
            }
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

    /// Tells the compressor that the bytes so far end a whole archive
    /// entry, where the kernel's unpacker accepts the end of a compressed
    /// stream: gzip may end a member there (see [`GzipMembers`]).
    pub fn entry_end(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.entry_end(),
            Compressor::Zstd(_) | Compressor::Lz4(_) | Compressor::None(_) => Ok(()),
        }
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

/// A member ends at the first entry end after this many bytes: large
/// enough that starting a member afresh (without the previous 32 KiB as its
/// dictionary) costs under 0.2% of size, small enough that two workers'
/// buffers stay a few MiB.
pub const GZIP_MEMBER_TARGET: usize = 1 << 20;
/// A member whose entry runs past this many bytes is not buffered whole:
/// the rest of it streams through zlib-rs (see [`GzipMembers`]).
pub const GZIP_MEMBER_CAP: usize = 4 << 20;

/// gzip as a series of members, each ending at an archive entry's end, for
/// the initrd: the kernel's unpacker (`unpack_to_rootfs`) decompresses one
/// member at a time and requires the cpio parser to be between entries at
/// each member's end ("junk at the end of compressed archive" otherwise);
/// gzip, zcat and cpio read concatenated members as one stream.
///
/// A member made of whole entries of at most [`GZIP_MEMBER_CAP`] bytes is
/// buffered and compressed whole by libdeflate, which takes a third less CPU
/// than zlib-rs at the same level for 3% smaller output (measured on
/// bench.yml's root filesystem, bench/README.md); an entry that does not
/// fit makes its member stream through zlib-rs (flate2) until the entry
/// ends, so memory stays bounded whatever the file sizes. The bytes depend
/// only on the entries and the level, never on threads or timing.
pub struct GzipMembers<W: Write> {
    /// `out` between members, or the streaming encoder that holds it.
    state: GzState<W>,
    level: i32,
    buf: Vec<u8>,
    /// libdeflate's compressor and output buffer, made at the first member.
    deflate: Option<(libdeflater::Compressor, Vec<u8>)>,
}

enum GzState<W: Write> {
    Buffering(W),
    /// (boxed: zlib-rs's state is large next to `W`)
    Streaming(Box<flate2::write::GzEncoder<W>>),
    /// Only while switching, or after an error.
    Broken,
}

impl<W: Write> GzipMembers<W> {
    /// Starts writing members onto `out` at `level` (0-9).
    pub fn new(out: W, level: i32) -> Self {
        GzipMembers {
            state: GzState::Buffering(out),
            level: level.clamp(0, 9),
            buf: Vec::new(),
            deflate: None,
        }
    }

    fn broken() -> io::Error {
        io::Error::other("a gzip member failed earlier")
    }

    /// Compresses the buffer as one member onto `out` with libdeflate.
    fn member(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let GzState::Buffering(out) = &mut self.state else {
            return Err(Self::broken());
        };
        let (c, z) = self.deflate.get_or_insert_with(|| {
            let lvl = libdeflater::CompressionLvl::new(self.level)
                .expect("levels 0-9 are libdeflate levels");
            (libdeflater::Compressor::new(lvl), Vec::new())
        });
        z.resize(c.gzip_compress_bound(self.buf.len()), 0);
        let n = c
            .gzip_compress(&self.buf, z)
            .map_err(|e| io::Error::other(format!("libdeflate: {e:?}")))?;
        out.write_all(&z[..n])?;
        self.buf.clear();
        Ok(())
    }

    /// See [`Compressor::entry_end`]: ends a streamed member, or a buffered
    /// one once it holds [`GZIP_MEMBER_TARGET`] bytes.
    pub fn entry_end(&mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.state, GzState::Broken) {
            GzState::Streaming(e) => self.state = GzState::Buffering(e.finish()?),
            s => {
                self.state = s;
                if self.buf.len() >= GZIP_MEMBER_TARGET {
                    self.member()?;
                }
            }
        }
        Ok(())
    }

    /// Writes the last member and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry_end()?;
        self.member()?;
        match self.state {
            GzState::Buffering(out) => Ok(out),
            _ => Err(Self::broken()),
        }
    }
}

impl<W: Write> Write for GzipMembers<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if let GzState::Streaming(e) = &mut self.state {
            return e.write(b);
        }
        if self.buf.len() + b.len() <= GZIP_MEMBER_CAP {
            self.buf.extend_from_slice(b);
            return Ok(b.len());
        }
        // The entry does not fit: this member streams, starting with
        // what is buffered.
        let GzState::Buffering(out) = std::mem::replace(&mut self.state, GzState::Broken) else {
            return Err(Self::broken());
        };
        let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(self.level as u32));
        e.write_all(&self.buf)?;
        self.buf.clear();
        e.write_all(b)?;
        self.state = GzState::Streaming(Box::new(e));
        Ok(b.len())
    }

    /// Members are only cut at entry ends: a flush must not end one, so
    /// it only flushes what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            GzState::Buffering(out) => out.flush(),
            GzState::Streaming(e) => e.get_mut().flush(),
            GzState::Broken => Err(Self::broken()),
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

    /// The uncompressed length of each gzip member of `z`, in order.
    fn member_lengths(mut z: &[u8]) -> Vec<usize> {
        use std::io::Read as _;
        let mut out = Vec::new();
        while !z.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(z);
            let mut m = Vec::new();
            d.read_to_end(&mut m).unwrap();
            out.push(m.len());
            z = d.into_inner();
        }
        out
    }

    #[test]
    fn gzip_members_end_only_at_entry_ends_and_stream_big_entries() {
        // "Entries" of pseudo-random, somewhat compressible bytes: many
        // small ones, then one over the cap (it streams), then small ones.
        let bytes = |n: usize, seed: u32| -> Vec<u8> {
            (0..n as u32)
                .map(|i| ((i ^ seed).wrapping_mul(2_654_435_761) >> 28) as u8)
                .collect()
        };
        let mut entries: Vec<Vec<u8>> = (0..300).map(|i| bytes(10_000 + i * 7, i as u32)).collect();
        entries.push(bytes(GZIP_MEMBER_CAP + 123_457, 7));
        entries.extend((0..50).map(|i| bytes(30_001, 1000 + i)));
        let write = |level| {
            let mut w = GzipMembers::new(Vec::new(), level);
            let mut ends = vec![0usize];
            for e in &entries {
                // written in pieces, as cpio writes header, data, padding
                for piece in e.chunks(65_537) {
                    w.write_all(piece).unwrap();
                }
                ends.push(ends.last().unwrap() + e.len());
                w.entry_end().unwrap();
            }
            (w.finish().unwrap(), ends)
        };
        let (z, ends) = write(6);
        // Every member ends where an entry ends.
        let lens = member_lengths(&z);
        assert!(lens.len() > 3, "{lens:?}");
        let mut at = 0;
        for n in &lens {
            at += n;
            assert!(ends.contains(&at), "a member ends inside an entry at {at}");
        }
        assert_eq!(at, *ends.last().unwrap());
        // The big entry is one member of its own beginning (the buffer
        // before it) and end: streamed, not buffered whole.
        assert!(lens.iter().any(|&n| n > GZIP_MEMBER_CAP));
        // Buffered members are cut at the first entry end past the target.
        assert!(lens[0] >= GZIP_MEMBER_TARGET && lens[0] < GZIP_MEMBER_TARGET + 20_000);
        // zcat reads the members as one stream.
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&z[..]), &mut all)
            .unwrap();
        assert_eq!(all, entries.concat());
        // The same entries give the same bytes.
        assert_eq!(write(6).0, z);
        assert_ne!(write(1).0, z);
        // A flush in the middle of an entry does not end a member.
        let mut w = GzipMembers::new(Vec::new(), 6);
        w.write_all(&entries[0][..5000]).unwrap();
        w.flush().unwrap();
        w.write_all(&entries[0][5000..]).unwrap();
        assert_eq!(member_lengths(&w.finish().unwrap()), [entries[0].len()]);
        // Nothing written: no member at all.
        assert!(GzipMembers::new(Vec::new(), 6).finish().unwrap().is_empty());
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
