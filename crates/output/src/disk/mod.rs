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

/// Tells already-compressed data (an initrd, a kernel's payload) from
/// data worth compressing, cheaply: a few 4 KiB samples of a block are
/// deflated, and if none shrinks by 2% the block is stored rather than
/// compressed. Deflating compressed data at any level costs as much as
/// compressing text and gains nothing (zlib's level 1 even makes it
/// larger), so the compressing formats (VMDK, gcp) store such blocks, at
/// memory speed. The decision depends only on the bytes, so the output is
/// reproducible.
pub(crate) struct Sampler {
    comp: flate2::Compress,
    out: Vec<u8>,
}

impl Sampler {
    const SAMPLE: usize = 4096;

    pub(crate) fn new() -> Sampler {
        Sampler {
            comp: flate2::Compress::new(flate2::Compression::new(6), false),
            out: vec![0u8; Self::SAMPLE * 2],
        }
    }

    /// [`Sampler::incompressible`] with this thread's sampler.
    pub(crate) fn check(b: &[u8]) -> bool {
        thread_local! {
            static SAMPLER: std::cell::RefCell<Sampler> = std::cell::RefCell::new(Sampler::new());
        }
        SAMPLER.with(|s| s.borrow_mut().incompressible(b))
    }

    /// Whether `b` looks incompressible: one sample per 32 KiB (at most
    /// four), evenly spread.
    pub(crate) fn incompressible(&mut self, b: &[u8]) -> bool {
        if b.len() < Self::SAMPLE {
            return false;
        }
        let samples = (b.len() / (32 << 10)).clamp(1, 4);
        let step = b.len() / samples;
        for i in 0..samples {
            let at = (i * step).min(b.len() - Self::SAMPLE);
            let sample = &b[at..at + Self::SAMPLE];
            self.comp.reset();
            if self
                .comp
                .compress(sample, &mut self.out, flate2::FlushCompress::Finish)
                .is_err()
            {
                return false;
            }
            if self.comp.total_out() * 100 < Self::SAMPLE as u64 * 98 {
                return false;
            }
        }
        true
    }
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
        let mut s = Sampler::new();
        let text: Vec<u8> = (0..65536u32)
            .map(|i| b"linuxkit "[(i % 9) as usize])
            .collect();
        assert!(!s.incompressible(&text));
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Pseudo-random bytes, then compressed: incompressible either way.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::io::Write::write_all(&mut z, &noise).unwrap();
        let gz = z.finish().unwrap();
        assert!(s.incompressible(&gz[..65536]));
        assert!(s.incompressible(&noise[..1 << 17]));
        assert!(!s.incompressible(&[0u8; 100]));
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
