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
use std::io::{self, BufWriter, Read, Write};
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
}

impl<R: Read> RawBlocks<R> {
    pub(crate) fn new(r: R, len: u64) -> Self {
        RawBlocks {
            r,
            remaining: len,
            hash: Some(Sha256::new().chain_update(len.to_le_bytes())),
        }
    }

    /// Without the hash, for the formats that need no identifier.
    pub(crate) fn unhashed(r: R, len: u64) -> Self {
        RawBlocks {
            r,
            remaining: len,
            hash: None,
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
        if let Some(h) = &mut self.hash {
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
    fn short_raw_images_are_errors() {
        let mut r = RawBlocks::new(&[1u8, 2, 3][..], 5);
        let mut buf = [9u8; 8];
        assert!(r.fill(&mut buf).is_err());
        let mut r = RawBlocks::new(&[1u8, 2, 3][..], 3);
        r.fill(&mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 0, 0, 0, 0, 0]);
    }
}
