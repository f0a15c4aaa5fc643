//! The initrd: a cpio archive in the kernel's `newc` format, compressed.
//!
//! Hand-written: the format is a 110-byte ASCII header per entry and the
//! kernel's unpacker is the only consumer that matters. Details follow the
//! reference (inodes from 721, device 3:1 for the archive, a `TRAILER!!!`
//! entry, padding to 512 bytes) except hard links: the reference turns them
//! into symlinks, we keep them as hard links (same inode, the content with
//! the first name, later names empty), which the kernel's unpacker links.
//! For that, regular files carry nlink 2 (see [`CpioWriter::add`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};

use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

const FIRST_INO: u32 = 721;

/// How the initrd is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip, what every kernel can unpack (the reference's choice).
    #[default]
    Gzip,
    Zstd,
    None,
}

/// Writes entries as `newc` cpio records.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    /// Path → inode of files that hard links may point at.
    inodes: HashMap<String, u32>,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            written: 0,
            next_ino: FIRST_INO,
            inodes: HashMap::new(),
        }
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad4(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem != 0 {
            self.write(&[0u8; 4][..4 - rem])?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        e: &Entry,
        nlink: u32,
        size: u64,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| {
            io::Error::other(format!(
                "{name}: {size} bytes is over the cpio newc limit of 4 GiB"
            ))
        })?;
        let h = format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{size32:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            e.uid,
            e.gid,
            e.mtime.min(u64::from(u32::MAX)) as u32,
            3,
            1,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.write(h.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad4()
    }

    /// Writes the trailer and pads the archive to 512 bytes.
    pub fn finish(mut self) -> io::Result<W> {
        let trailer = Entry {
            mtime: 0,
            ..Entry::file("TRAILER!!!", 0)
        };
        self.header("TRAILER!!!", 0, 0, &trailer, 1, 0, (0, 0))?;
        let rem = (self.written % 512) as usize;
        if rem != 0 {
            self.write(&vec![0u8; 512 - rem])?;
        }
        Ok(self.out)
    }
}

impl<W: Write> EntrySink for CpioWriter<W> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        let io_err = |source| linuxkit_rootfs::Error::Io {
            context: format!("cannot write {} to the initrd", e.path),
            source,
        };
        let perm = e.mode & 0o7777;
        let name = e.path.trim_end_matches('/');
        let ino = self.next_ino;
        self.next_ino += 1;
        match &e.kind {
            EntryKind::File => {
                self.inodes.insert(name.to_string(), ino);
                // nlink 2 on every file: both the kernel and GNU cpio only
                // remember inodes with nlink > 1, and a stream cannot know
                // whether a later hard link will name this file.
                self.header(name, ino, 0o100000 | perm, e, 2, e.size, (0, 0))
                    .map_err(io_err)?;
                let copied = io::copy(&mut data.take(e.size), &mut self.out).map_err(io_err)?;
                self.written += copied;
                if copied != e.size {
                    return Err(linuxkit_rootfs::Error::Other(format!(
                        "{}: expected {} bytes of content, got {copied}",
                        e.path, e.size
                    )));
                }
                self.pad4().map_err(io_err)?;
            }
            EntryKind::Dir => self
                .header(name, ino, 0o040000 | perm, e, 2, 0, (0, 0))
                .map_err(io_err)?,
            EntryKind::Symlink { target } => {
                self.header(
                    name,
                    ino,
                    0o120000 | 0o777,
                    e,
                    1,
                    target.len() as u64,
                    (0, 0),
                )
                .map_err(io_err)?;
                self.write(target.as_bytes()).map_err(io_err)?;
                self.pad4().map_err(io_err)?;
            }
            EntryKind::Hardlink { target } => {
                let target = target.trim_end_matches('/');
                let Some(&tino) = self.inodes.get(target) else {
                    return Err(linuxkit_rootfs::Error::Other(format!(
                        "{}: hard link to `{target}`, which is not an earlier file of the initrd",
                        e.path
                    )));
                };
                // Same inode and nlink > 1: the kernel links this name to
                // the earlier one; the content went with the first name.
                self.header(name, tino, 0o100000 | perm, e, 2, 0, (0, 0))
                    .map_err(io_err)?;
            }
            EntryKind::Char { major, minor } => self
                .header(name, ino, 0o020000 | perm, e, 1, 0, (*major, *minor))
                .map_err(io_err)?,
            EntryKind::Block { major, minor } => self
                .header(name, ino, 0o060000 | perm, e, 1, 0, (*major, *minor))
                .map_err(io_err)?,
            EntryKind::Fifo => self
                .header(name, ino, 0o010000 | perm, e, 1, 0, (0, 0))
                .map_err(io_err)?,
        }
        Ok(())
    }
}

/// A compressing writer whose `finish` reports errors (dropping an encoder
/// would swallow them and could leave a truncated initrd unnoticed).
pub enum Compressor<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    pub fn new(out: W, compression: Compression, level: Option<i32>) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(level.unwrap_or(6).clamp(0, 9) as u32),
            )),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, level.unwrap_or(3))?;
                enc.include_checksum(true)?;
                Compressor::Zstd(enc)
            }
            Compression::None => Compressor::None(out),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(b),
            Compressor::Zstd(e) => e.write(b),
            Compressor::None(w) => w.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

/// The `kernel+initrd` output's sink: `boot/kernel`, `boot/cmdline` and
/// `boot/ucode.cpio` are kept aside (they become `NAME-kernel`,
/// `NAME-cmdline` and the uncompressed prefix of the initrd); everything else
/// goes into the compressed cpio.
pub struct InitrdSink<W: Write> {
    cpio: CpioWriter<Compressor<W>>,
    /// Contents of the `boot/` files, by path.
    pub boot: HashMap<String, Vec<u8>>,
}

impl<W: Write> InitrdSink<W> {
    pub fn new(out: W, compression: Compression, level: Option<i32>) -> io::Result<Self> {
        Ok(InitrdSink {
            cpio: CpioWriter::new(Compressor::new(out, compression, level)?),
            boot: HashMap::new(),
        })
    }

    /// Finishes the archive and the compression stream; returns the writer
    /// and the `boot/` files.
    pub fn finish(self) -> io::Result<(W, HashMap<String, Vec<u8>>)> {
        let w = self.cpio.finish()?.finish()?;
        Ok((w, self.boot))
    }
}

/// Keeps `boot/` aside: its files (kernel, cmdline, microcode) become
/// separate outputs, never part of a root filesystem image. Returns whether
/// `e` was a `boot/` entry.
pub(crate) fn divert_boot(
    e: &Entry,
    data: &mut dyn Read,
    boot: &mut HashMap<String, Vec<u8>>,
) -> linuxkit_rootfs::Result<bool> {
    if e.path != "boot" && !e.path.starts_with("boot/") {
        return Ok(false);
    }
    if e.kind == EntryKind::File {
        let mut buf = Vec::new();
        data.take(e.size)
            .read_to_end(&mut buf)
            .map_err(|source| linuxkit_rootfs::Error::Io {
                context: format!("cannot read {}", e.path),
                source,
            })?;
        boot.insert(e.path.clone(), buf);
    }
    Ok(true)
}

impl<W: Write> EntrySink for InitrdSink<W> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        if divert_boot(e, data, &mut self.boot)? {
            return Ok(());
        }
        self.cpio.add(e, data)
    }
}
