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
//!
//! This module is the front: the containers' writers (`vhd`, `vmdk`,
//! `qcow2`, `gcp`) share the blocks of the raw image (`blocks`), deflate
//! (`deflate`) and the compressing pipeline (`parallel`), and import
//! nothing from here.

mod blocks;
mod deflate;
pub mod gcp;
mod parallel;
pub mod qcow2;
pub mod vhd;
pub mod vmdk;

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};
use linuxkit_base::staged::Staged;

pub use crate::format::DiskFormat;

use blocks::SECTOR;

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
pub fn convert_file(format: DiskFormat, raw: &Path, dest: &Path) -> Result<()> {
    let io_err = |context: String| move |source| Error::Io { context, source };
    let input = File::open(raw).map_err(io_err(format!("cannot open {}", raw.display())))?;
    let len = input
        .metadata()
        .map_err(io_err(format!("cannot read {}", raw.display())))?
        .len();
    let input = io::BufReader::with_capacity(1 << 20, input);
    let mut staged = Staged::create(dest.to_path_buf())?;
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
