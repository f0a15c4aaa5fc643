//! Virtual disk containers made from a raw disk image: fixed and dynamic
//! VHD (Hyper-V, Azure), streamOptimized VMDK (VMware), qcow2 (QEMU,
//! OpenStack) and the GCE `disk.raw` tarball.
//!
//! The reference converts its raw images with `qemu-img convert` inside a
//! container; these writers do the same natively, streaming the raw image
//! once. Blocks that are all zeros are left out wherever the container can
//! say "zero" (dynamic VHD, VMDK, qcow2), so a mostly empty disk makes a
//! small file. Everything a container would fill from the clock or a random
//! source (VHD unique id and timestamp, VMDK content id) is derived from the
//! raw image's SHA-256 or fixed, so the same raw image always gives the same
//! bytes.
//!
//! A raw image whose length is not a multiple of 512 is padded with zeros
//! to the next sector: every one of these formats counts in sectors.
//!
//! Each writer takes the raw image as a reader and its length (so a short
//! reader is an error, not a silently shorter disk). The formats whose
//! tables come before the data they describe (dynamic VHD, qcow2) or whose
//! header names a content id (VMDK) seek back at the end to fill them in;
//! the others are plain streams. [`convert_file`] writes any of them to a
//! file under a temporary name, renamed into place once complete.

pub mod gcp;
pub mod qcow2;
pub mod vhd;
pub mod vmdk;

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

pub(crate) const SECTOR: u64 = 512;

/// A disk container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// Fixed VHD: the raw image and a 512-byte footer.
    Vhd,
    /// Fixed VHD with the size rounded up to a whole MiB, as Azure requires.
    AzureVhd,
    /// Dynamic (sparse) VHD.
    DynamicVhd,
    /// streamOptimized VMDK.
    Vmdk,
    /// qcow2 version 3.
    Qcow2,
    /// A gzipped GNU tar holding `disk.raw`, for GCE.
    Gcp,
}

/// Writes a disk of `size` bytes as `format` to `out`: `data_len` bytes of
/// `raw`, then zeros. The zeros are never read, hashed or compared, and
/// the formats that store them (fixed VHD) seek over them, so `out`, a
/// new file, gets a hole: a 1 GiB disk with 50 MB of content costs about
/// as much as its content. `name` is the file's name (VMDK descriptors
/// name their extent). The identifiers that formats derive from the
/// content (VHD unique id, VMDK content id) derive from `seed` instead
/// when given (a hash of what the disk is made of), which spares hashing
/// the content.
pub fn write_disk<R: Read, W: Write + Seek>(
    format: DiskFormat,
    raw: R,
    data_len: u64,
    size: u64,
    name: &str,
    seed: Option<&[u8; 32]>,
    mut out: W,
) -> io::Result<()> {
    if data_len > size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{data_len} bytes of content do not fit a disk of {size} bytes"),
        ));
    }
    match format {
        DiskFormat::Vhd => vhd::write_fixed_sparse(raw, data_len, size, SECTOR, seed, &mut out),
        DiskFormat::AzureVhd => {
            vhd::write_fixed_sparse(raw, data_len, size, 1 << 20, seed, &mut out)
        }
        DiskFormat::DynamicVhd => vhd::write_dynamic_sized(raw, data_len, size, seed, &mut out),
        DiskFormat::Vmdk => vmdk::write_sized(raw, data_len, size, name, seed, &mut out),
        DiskFormat::Qcow2 => qcow2::write_sized(raw, data_len, size, &mut out),
        DiskFormat::Gcp => gcp::write_sized(raw, data_len, size, &mut out),
    }
}

/// Writes `raw` (a raw disk image file) as `format` to `dest`, through a
/// temporary file in `dest`'s directory that is renamed into place only
/// once it is complete.
pub fn convert_file(format: DiskFormat, raw: &Path, dest: &Path) -> crate::Result<()> {
    let io_err = |context: String| move |source| crate::Error::Io { context, source };
    let input = File::open(raw).map_err(io_err(format!("cannot open {}", raw.display())))?;
    let len = input
        .metadata()
        .map_err(io_err(format!("cannot read {}", raw.display())))?
        .len();
    let input = io::BufReader::with_capacity(1 << 20, input);
    let mut staged = crate::Staged::create(dest.to_path_buf())?;
    let mut out = BufWriter::with_capacity(1 << 20, staged.file());
    match format {
        DiskFormat::Vhd => vhd::write_fixed(input, len, &mut out),
        DiskFormat::AzureVhd => vhd::write_azure(input, len, &mut out),
        DiskFormat::DynamicVhd => vhd::write_dynamic(input, len, &mut out),
        DiskFormat::Vmdk => {
            let name = dest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "disk.vmdk".into());
            vmdk::write_stream_optimized(input, len, &name, &mut out)
        }
        DiskFormat::Qcow2 => qcow2::write(input, len, &mut out),
        DiskFormat::Gcp => gcp::write(input, len, &mut out),
    }
    .and_then(|()| out.flush())
    .map_err(io_err(format!("cannot write {}", dest.display())))?;
    drop(out);
    staged.commit()?;
    Ok(())
}

/// The raw image read in blocks, zero-padded past its end, and hashed on
/// the way (the hash seeds the derived identifiers).
pub(crate) struct RawBlocks<R> {
    r: R,
    remaining: u64,
    hash: Option<Sha256>,
    /// The hash covers a seed instead of the content.
    seeded: bool,
}

impl<R: Read> RawBlocks<R> {
    /// `len` bytes of `r`, on a disk of `size` bytes (which the hash also
    /// covers when it is larger). With a `seed` (a hash of what the image
    /// is made of, known ahead), the identifiers derive from it and the
    /// sizes, and the content is not hashed.
    pub(crate) fn new(r: R, len: u64, size: u64, seed: Option<&[u8; 32]>) -> Self {
        RawBlocks {
            r,
            remaining: len,
            hash: Some(start_hash(len, size, seed)),
            seeded: seed.is_some(),
        }
    }
}

/// The identifier hash's start: the sizes, and the seed if any.
fn start_hash(len: u64, size: u64, seed: Option<&[u8; 32]>) -> Sha256 {
    let mut hash = Sha256::new().chain_update(len.to_le_bytes());
    if size != len {
        hash.update(b"size");
        hash.update(size.to_le_bytes());
    }
    if let Some(seed) = seed {
        hash.update(b"seed");
        hash.update(seed);
    }
    hash
}

/// What [`RawBlocks::digest`] gives for a seeded image, without reading it.
pub(crate) fn seeded_digest(len: u64, size: u64, seed: &[u8; 32]) -> [u8; 32] {
    start_hash(len, size, Some(seed)).finalize().into()
}

impl<R: Read> RawBlocks<R> {
    /// Whether every byte of the image has been read: all that follows is
    /// zeros.
    pub(crate) fn exhausted(&self) -> bool {
        self.remaining == 0
    }

    /// Without the hash, for the formats that need no identifier.
    pub(crate) fn unhashed(r: R, len: u64) -> Self {
        RawBlocks {
            r,
            remaining: len,
            hash: None,
            seeded: false,
        }
    }

    /// Fills `buf` with the next bytes of the image, zeros past its end.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let mut got = 0;
        while got < want {
            match self.r.read(&mut buf[got..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the raw image ended {} bytes early",
                            self.remaining - got as u64
                        ),
                    ));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(h) = &mut self.hash
            && !self.seeded
        {
            h.update(&buf[..want]);
        }
        self.remaining -= want as u64;
        buf[want..].fill(0);
        Ok(())
    }

    /// The SHA-256 of the length and the content.
    pub(crate) fn digest(self) -> [u8; 32] {
        self.hash.map(|h| h.finalize().into()).unwrap_or_default()
    }
}

/// Whether a block is worth deflating: the order-0 entropy of four evenly
/// spread 4 KiB samples is under 6.5 bits a byte, which means Huffman
/// coding alone would save over 18%.
///
/// Most of a LinuxKit disk is already compressed (the initrd, the kernel's
/// payload): about 8 bits a byte, which deflate cannot shrink, yet
/// deflating it costs as much as compressing text (zlib's fastest level
/// even makes it larger). What does compress well (the kernel's setup
/// code, the boot loader, file system metadata, zeros) is far under the
/// threshold. A byte histogram runs at memory speed, several times faster
/// than deflating a sample to see whether it shrinks. The threshold trades
/// size for time: on `examples/linuxkit.yml`, 6.5 bits deflates 4% of the
/// content and saves 1.5 MB, 7 bits deflates 8% (twice the time) and
/// saves 2 MB, deflating everything saves 2.7 MB at ten times the cost.
/// What the histogram cannot see is redundancy in high-entropy data (the
/// same random block twice); such blocks are stored, which costs size,
/// never correctness. The decision depends only on the bytes, so the
/// output is reproducible.
pub(crate) fn worth_deflating(b: &[u8]) -> bool {
    const SAMPLE: usize = 4096;
    const SAMPLES: usize = 4;
    // Bits per byte.
    const THRESHOLD: f64 = 6.5;
    if b.len() <= SAMPLE * SAMPLES {
        return entropy(&histogram(b), b.len()) < THRESHOLD;
    }
    let step = (b.len() - SAMPLE) / (SAMPLES - 1);
    let mut h = [0u32; 256];
    for i in 0..SAMPLES {
        let at = i * step;
        add_histogram(&mut h, &b[at..at + SAMPLE]);
    }
    entropy(&h, SAMPLE * SAMPLES) < THRESHOLD
}

fn histogram(b: &[u8]) -> [u32; 256] {
    let mut h = [0u32; 256];
    add_histogram(&mut h, b);
    h
}

/// Counts the bytes of `b` into `h`: four tables, summed, so that runs of
/// one byte value do not serialise on one counter.
fn add_histogram(h: &mut [u32; 256], b: &[u8]) {
    let mut t = [[0u32; 256]; 4];
    let mut quads = b.chunks_exact(4);
    for q in &mut quads {
        t[0][q[0] as usize] += 1;
        t[1][q[1] as usize] += 1;
        t[2][q[2] as usize] += 1;
        t[3][q[3] as usize] += 1;
    }
    for &x in quads.remainder() {
        t[0][x as usize] += 1;
    }
    for (i, c) in h.iter_mut().enumerate() {
        *c += t[0][i] + t[1][i] + t[2][i] + t[3][i];
    }
}

/// Shannon entropy of a histogram of `n` bytes, in bits per byte.
fn entropy(h: &[u32; 256], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    h.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Appends `data` as deflate blocks that end on a byte boundary and are
/// not final: deflated at `level` by this thread's compressor (reset, as
/// blocks refer back only to their own output) when
/// [`worth_deflating`], otherwise stored blocks. The result can be
/// concatenated with other such blocks into one stream.
pub(crate) fn deflate_blocks(data: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<()> {
    if !worth_deflating(data) {
        stored_blocks(data, false, out);
        return Ok(());
    }
    thread_local! {
        static RAW: std::cell::RefCell<Vec<(u32, flate2::Compress)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    RAW.with(|c| {
        let mut c = c.borrow_mut();
        let i = match c.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                c.push((
                    level,
                    flate2::Compress::new(flate2::Compression::new(level), false),
                ));
                c.len() - 1
            }
        };
        let comp = &mut c[i].1;
        comp.reset();
        compress_all(comp, data, flate2::FlushCompress::Sync, out)
    })
}

/// Appends `data` as one zlib stream (RFC 1950): deflated at zlib's
/// default level when [`worth_deflating`], otherwise stored blocks, which
/// every inflater reads and which cost only a copy and the checksum.
pub(crate) fn zlib_stream(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    if !worth_deflating(data) {
        // Deflate, 32 KiB window; no dictionary, "fastest" (FCHECK makes
        // the 16-bit header a multiple of 31).
        out.extend_from_slice(&[0x78, 0x01]);
        stored_blocks(data, true, out);
        out.extend_from_slice(&adler32(data).to_be_bytes());
        return Ok(());
    }
    thread_local! {
        static ZLIB: std::cell::RefCell<Option<flate2::Compress>> =
            const { std::cell::RefCell::new(None) };
    }
    ZLIB.with(|c| {
        let mut c = c.borrow_mut();
        let comp =
            c.get_or_insert_with(|| flate2::Compress::new(flate2::Compression::default(), true));
        comp.reset();
        compress_all(comp, data, flate2::FlushCompress::Finish, out)
    })
}

/// Feeds all of `input` to `comp` with `flush`, appending its output.
fn compress_all(
    comp: &mut flate2::Compress,
    input: &[u8],
    flush: flate2::FlushCompress,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let start = comp.total_in();
    loop {
        out.reserve(input.len() / 2 + 4096);
        let done = (comp.total_in() - start) as usize;
        let before = out.len();
        let status = comp
            .compress_vec(&input[done..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = (comp.total_in() - start) as usize == input.len();
        match status {
            flate2::Status::StreamEnd => return Ok(()),
            // Everything is in and the flush had room to complete.
            _ if all_in
                && out.len() < out.capacity()
                && !matches!(flush, flate2::FlushCompress::Finish) =>
            {
                return Ok(());
            }
            flate2::Status::BufError if out.len() == before && all_in => return Ok(()),
            _ => {}
        }
    }
}

/// Appends `data` as stored deflate blocks (at most 65535 bytes each),
/// starting on a byte boundary; the last is final when `last`.
pub(crate) fn stored_blocks(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / 65535 * 5 + 5);
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        // An empty stored block, to end the stream when asked.
        if last {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        return;
    }
    while let Some(c) = chunks.next() {
        let fin = last && chunks.peek().is_none();
        let n = c.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
}

/// Adler-32 (RFC 1950), written so that the compiler vectorises it: per
/// 32-byte lane, the byte sums and the sums of those sums, combined per
/// 4 KiB (which keeps the lanes within 32 bits).
pub(crate) fn adler32(data: &[u8]) -> u32 {
    const MOD: u64 = 65521;
    const L: usize = 32;
    let (mut a, mut b) = (1u64, 0u64);
    for chunk in data.chunks(4096) {
        let blocks = chunk.chunks_exact(L);
        let rest = blocks.remainder();
        let m = (chunk.len() / L) as u64;
        let mut va = [0u32; L];
        let mut vt = [0u32; L];
        for block in blocks {
            for ((a, t), &x) in va.iter_mut().zip(vt.iter_mut()).zip(block) {
                *a += u32::from(x);
                *t += *a;
            }
        }
        // b gains n·a for the whole chunk, then each byte times the
        // number of bytes from it to the chunk's end (itself included).
        let n = m * L as u64;
        let sum_a: u64 = va.iter().map(|&v| u64::from(v)).sum();
        let sum_t: u64 = vt.iter().map(|&v| u64::from(v)).sum();
        let sum_ka: u64 = va
            .iter()
            .enumerate()
            .map(|(k, &v)| k as u64 * u64::from(v))
            .sum();
        b = (b + n * a + L as u64 * sum_t - sum_ka) % MOD;
        a = (a + sum_a) % MOD;
        for &x in rest {
            a += u64::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    ((b << 16) | a) as u32
}

/// Reads, compresses and writes at once: `read` fills a buffer with the
/// next batch (false when there is none), `work` compresses a batch (on
/// all cores, with [`par_map`]) on a worker thread, and `write` gets the
/// results in order, on the calling thread. While the worker compresses
/// one batch, the calling thread writes the one before and reads the one
/// after, so the disk's I/O (a read of the raw image and a write of the
/// container, both serial) overlaps the compression instead of adding to
/// it. Two buffers circulate, so nothing is allocated per batch.
pub(crate) fn pipeline<O: Send>(
    buf_len: usize,
    mut read: impl FnMut(&mut Vec<u8>) -> io::Result<bool>,
    work: impl Fn(&[u8]) -> O + Sync,
    mut write: impl FnMut(O) -> io::Result<()>,
) -> io::Result<()> {
    use std::sync::mpsc::sync_channel;
    std::thread::scope(|s| {
        let (to_worker, batches) = sync_channel::<Vec<u8>>(1);
        let (to_writer, done) = sync_channel::<(Vec<u8>, O)>(1);
        let work = &work;
        s.spawn(move || {
            for b in batches {
                let o = work(&b);
                if to_writer.send((b, o)).is_err() {
                    return;
                }
            }
        });
        let gone = || io::Error::other("the compressing thread stopped");
        let mut free = vec![Vec::with_capacity(buf_len), Vec::with_capacity(buf_len)];
        let mut in_flight = 0;
        loop {
            let mut b = match free.pop() {
                Some(b) => b,
                None => {
                    let (b, o) = done.recv().map_err(|_| gone())?;
                    in_flight -= 1;
                    write(o)?;
                    b
                }
            };
            b.clear();
            if !read(&mut b)? {
                break;
            }
            to_worker.send(b).map_err(|_| gone())?;
            in_flight += 1;
        }
        drop(to_worker);
        for _ in 0..in_flight {
            let (_, o) = done.recv().map_err(|_| gone())?;
            write(o)?;
        }
        Ok(())
    })
}

/// `f` over `items` on all cores, results in order. Used for the
/// compressing formats, whose blocks are compressed independently of one
/// another (so the output does not depend on the number of cores).
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        return;
                    }
                    let r = f(&items[i]);
                    *results[i].lock().expect("no panics while held") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("no panics while held")
                .expect("every item is mapped")
        })
        .collect()
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Whether `b` is all zeros (compared against zeros: a `memcmp`, fast even
/// in unoptimised builds).
pub(crate) fn is_zero(b: &[u8]) -> bool {
    b.chunks(ZEROS.len()).all(|c| c == &ZEROS[..c.len()])
}

/// Writes `n` zero bytes.
pub(crate) fn write_zeros(out: &mut dyn Write, mut n: u64) -> io::Result<()> {
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0; 100]));
        let mut b = [0u8; 100];
        b[99] = 1;
        assert!(!is_zero(&b));
        b[99] = 0;
        b[17] = 1;
        assert!(!is_zero(&b));
    }

    #[test]
    fn compressed_data_is_told_from_text() {
        let text: Vec<u8> = (0..65536u32)
            .map(|i| b"linuxkit "[(i % 9) as usize])
            .collect();
        assert!(worth_deflating(&text));
        assert!(worth_deflating(&[0u8; 65536]));
        assert!(worth_deflating(&[0u8; 100]));
        // Pseudo-random bytes, and the same compressed: not worth it.
        let noise = noise(200_000);
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &noise).unwrap();
        let gz = z.finish().unwrap();
        assert!(!worth_deflating(&gz[..65536]));
        assert!(!worth_deflating(&noise[..1 << 17]));
        assert!(!worth_deflating(&noise[..5000]));
        // Half zeros, half noise: deflate halves it.
        let mut half = noise[..65536].to_vec();
        half[..32768].fill(0);
        assert!(worth_deflating(&half));
    }

    /// `n` pseudo-random bytes (xorshift64): incompressible test data.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn adler32_is_zlibs() {
        let mut x = 7u32;
        let data: Vec<u8> = (0..100_000)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 { 0xff } else { (x >> 16) as u8 }
            })
            .collect();
        for n in [0, 1, 31, 32, 33, 4095, 4096, 4097, 5552, 65536, 100_000] {
            let z = {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, &data[..n]).unwrap();
                e.finish().unwrap()
            };
            let want = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
            assert_eq!(adler32(&data[..n]), want, "{n} bytes");
        }
        assert_eq!(adler32(&[0xff; 1 << 20]), {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &[0xff; 1 << 20]).unwrap();
            let z = e.finish().unwrap();
            u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap())
        });
    }

    #[test]
    fn zlib_streams_and_deflate_blocks_inflate_back() {
        use std::io::Read;
        let noise = noise(150_000);
        let text: Vec<u8> = (0..70_000u32)
            .map(|i| b"linuxkit "[(i % 9) as usize])
            .collect();
        for data in [
            &noise[..],
            &text[..],
            &noise[..65536],
            &[][..],
            &noise[..10],
        ] {
            let mut z = Vec::new();
            zlib_stream(data, &mut z).unwrap();
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{} bytes", data.len());
        }
        // Raw blocks of several kinds, one stream once ended.
        let mut d = Vec::new();
        for part in [&noise[..70_000], &text[..], &noise[..3], &text[..100]] {
            deflate_blocks(part, 6, &mut d).unwrap();
        }
        stored_blocks(&[], true, &mut d);
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&d[..])
            .read_to_end(&mut back)
            .unwrap();
        let want: Vec<u8> = [&noise[..70_000], &text[..], &noise[..3], &text[..100]].concat();
        assert!(back == want);
    }

    #[test]
    fn the_pipeline_keeps_the_order_and_stops_on_errors() {
        let mut i = 0u8;
        let mut got = Vec::new();
        pipeline(
            4,
            |b| {
                i += 1;
                b.extend_from_slice(&[i; 3]);
                Ok(i <= 50)
            },
            |b: &[u8]| b.iter().map(|&x| u32::from(x)).sum::<u32>(),
            |o| {
                got.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, (1..=50).map(|x| 3 * x).collect::<Vec<u32>>());
        let mut written = 0;
        let e = pipeline(
            4,
            |_| Ok(true),
            |_: &[u8]| (),
            |()| {
                written += 1;
                if written > 10 {
                    Err(io::Error::other("full"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(e.unwrap_err().to_string(), "full");
        let e = pipeline(
            4,
            |_| Err(io::Error::other("short")),
            |_: &[u8]| (),
            |()| Ok(()),
        );
        assert_eq!(e.unwrap_err().to_string(), "short");
    }

    #[test]
    fn short_raw_images_are_errors() {
        let mut r = RawBlocks::new(&[1u8, 2, 3][..], 5, 5, None);
        let mut buf = [9u8; 8];
        assert!(r.fill(&mut buf).is_err());
        let mut r = RawBlocks::new(&[1u8, 2, 3][..], 3, 3, None);
        r.fill(&mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 0, 0, 0, 0, 0]);
    }
}
