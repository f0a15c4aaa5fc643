//! The initrd: a cpio archive in the kernel's `newc` format, compressed
//! (see [`crate::compress`]).
//!
//! Hand-written: the format is a 110-byte ASCII header per entry and the
//! kernel's unpacker is the only consumer that matters. Details follow the
//! reference (inodes from 721, device 3:1 for the archive, a `TRAILER!!!`
//! entry, padding to 512 bytes) except hard links: the reference turns them
//! into symlinks, we keep them as hard links (same inode, the content with
//! the first name, later names empty), which the kernel's unpacker links.
//! For that, regular files carry nlink 2 (see [`CpioWriter::add`]).
//!
//! The initrd builder ([`crate::initrd`]) drives the writer with a
//! [`LinkPlan`] instead: it knows every part's files beforehand, so only
//! files that really are linked carry nlink 2, and identical files in
//! different parts become one inode (see [`crate::links`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};

use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

use crate::compress::{Compression, Compressor};

const FIRST_INO: u32 = 721;

/// How a regular file or hard link entry is written, decided for the whole
/// initrd before any part is written (see docs/images.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkAction {
    /// A file no other entry links to: nlink 1 and an inode number of the
    /// part's own sequence, which the kernel never looks up.
    Unique,
    /// The first entry of a linked inode: its content, nlink 2, and the
    /// inode's number and minor device number.
    First {
        /// The inode number every name of the file carries.
        ino: u32,
        /// The minor device number, which with `ino` identifies the inode.
        minor: u32,
    },
    /// A later name of a linked inode: no content (size 0), nlink 2 and the
    /// same numbers, so the kernel's unpacker links it to the first name.
    Link {
        /// The first name's inode number.
        ino: u32,
        /// The first name's minor device number.
        minor: u32,
    },
    /// Left out: an earlier part wrote the same file at the same path (the
    /// init images each bringing the same libc), and nothing replaced it.
    Skip,
}

/// The actions of one part's regular file and hard link entries, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkPlan {
    /// One action per regular file or hard link entry of the part.
    pub actions: Vec<LinkAction>,
}

/// Writes entries as `newc` cpio records.
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    /// Path → inode of files that hard links may point at.
    inodes: HashMap<String, u32>,
    /// With a plan: its actions and the next one to use.
    plan: Option<(LinkPlan, usize)>,
    /// Writing every file as [`LinkAction::Unique`], before the plan is
    /// known (see [`CpioWriter::all_unique`]).
    all_unique: bool,
    /// The content bytes left out as links to an earlier copy.
    pub linked_bytes: u64,
    /// The content bytes of the regular files given to the writer.
    pub file_bytes: u64,
}

impl<W: Write> CpioWriter<W> {
    /// A writer of a whole archive onto `out`, without a link plan: hard
    /// links point at the inodes this writer gave their targets.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            written: 0,
            next_ino: FIRST_INO,
            inodes: HashMap::new(),
            plan: None,
            all_unique: false,
            linked_bytes: 0,
            file_bytes: 0,
        }
    }

    /// A writer whose regular files and hard links follow `plan`, for one
    /// segment of a larger archive: finish it with
    /// [`CpioWriter::finish_segment`].
    pub fn with_plan(out: W, plan: LinkPlan) -> Self {
        CpioWriter {
            plan: Some((plan, 0)),
            ..CpioWriter::new(out)
        }
    }

    /// A segment writer that plans every regular file as
    /// [`LinkAction::Unique`] without knowing the plan yet: the initrd
    /// builder writes a part's segment this way while it reads the part's
    /// manifest, and keeps it when the part's plan turns out to be all
    /// `Unique` (the bytes are then those [`CpioWriter::with_plan`] writes).
    /// A hard link entry is an error: its plan is never `Unique`.
    pub(crate) fn all_unique(out: W) -> Self {
        CpioWriter {
            all_unique: true,
            ..CpioWriter::with_plan(out, LinkPlan::default())
        }
    }

    /// How many regular file and hard link entries the writer was given
    /// with a plan (the length of the plan they followed).
    pub(crate) fn planned_entries(&self) -> usize {
        self.plan.as_ref().map_or(0, |(_, used)| *used)
    }

    /// Ends a segment without a trailer: the kernel forgets linked inodes
    /// at each trailer, so segments that link to each other's files must
    /// share one, written once at the end ([`trailer_archive`]). Every
    /// entry is padded to 4 bytes, so the next segment starts aligned.
    pub fn finish_segment(self) -> io::Result<W> {
        if let Some((plan, used)) = &self.plan
            && !self.all_unique
            && *used != plan.actions.len()
        {
            return Err(io::Error::other(format!(
                "the part produced {used} files and links, its plan has {}: did it change while building?",
                plan.actions.len()
            )));
        }
        Ok(self.out)
    }

    /// The next planned action, for a regular file or hard link entry.
    fn planned(&mut self, path: &str) -> io::Result<Option<LinkAction>> {
        let Some((plan, used)) = &mut self.plan else {
            return Ok(None);
        };
        if self.all_unique {
            *used += 1;
            return Ok(Some(LinkAction::Unique));
        }
        let a = plan.actions.get(*used).copied().ok_or_else(|| {
            io::Error::other(format!(
                "{path}: more files than the plan has: did the part change while building?"
            ))
        })?;
        *used += 1;
        Ok(Some(a))
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
        dev_minor: u32,
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
            dev_minor,
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

    /// The writer the archive goes to (between entries).
    pub(crate) fn out_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the trailer and pads the archive to 512 bytes.
    pub fn finish(mut self) -> io::Result<W> {
        let trailer = Entry {
            mtime: 0,
            ..Entry::file("TRAILER!!!", 0)
        };
        self.header("TRAILER!!!", 0, 0, &trailer, 1, 0, (0, 0), 1)?;
        let rem = (self.written % 512) as usize;
        if rem != 0 {
            self.write(&vec![0u8; 512 - rem])?;
        }
        Ok(self.out)
    }
}

impl<W: Write> EntrySink for CpioWriter<W> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        // The kernel's initramfs unpacker skips a name beyond PATH_MAX.
        crate::error::check_limits(e, "initrd", true)?;
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
                self.file_bytes += e.size;
                let (ino, nlink, minor, size) = match self.planned(name).map_err(io_err)? {
                    // nlink 2 on every file: both the kernel and GNU cpio
                    // only remember inodes with nlink > 1, and a stream
                    // cannot know whether a later hard link will name it.
                    None => {
                        self.inodes.insert(name.to_string(), ino);
                        (ino, 2, 1, e.size)
                    }
                    Some(LinkAction::Unique) => (ino, 1, 1, e.size),
                    Some(LinkAction::First { ino, minor }) => (ino, 2, minor, e.size),
                    Some(LinkAction::Link { ino, minor }) => {
                        // The content is an earlier name's: left unread.
                        self.linked_bytes += e.size;
                        (ino, 2, minor, 0)
                    }
                    Some(LinkAction::Skip) => {
                        self.linked_bytes += e.size;
                        return Ok(());
                    }
                };
                self.header(name, ino, 0o100000 | perm, e, nlink, size, (0, 0), minor)
                    .map_err(io_err)?;
                if size > 0 {
                    let copied = io::copy(&mut data.take(size), &mut self.out).map_err(io_err)?;
                    self.written += copied;
                    if copied != size {
                        return Err(linuxkit_rootfs::Error::Other(format!(
                            "{}: expected {size} bytes of content, got {copied}",
                            e.path
                        )));
                    }
                    self.pad4().map_err(io_err)?;
                }
            }
            EntryKind::Dir => self
                .header(name, ino, 0o040000 | perm, e, 2, 0, (0, 0), 1)
                .map_err(io_err)?,
            EntryKind::Symlink { target } => {
                self.header(
                    name,
                    ino,
                    0o120000 | perm,
                    e,
                    1,
                    target.len() as u64,
                    (0, 0),
                    1,
                )
                .map_err(io_err)?;
                self.write(target.as_bytes()).map_err(io_err)?;
                self.pad4().map_err(io_err)?;
            }
            EntryKind::Hardlink { target } => {
                let (tino, minor) = match self.planned(name).map_err(io_err)? {
                    Some(LinkAction::Link { ino, minor }) => (ino, minor),
                    Some(a) => {
                        return Err(linuxkit_rootfs::Error::Other(format!(
                            "{}: a hard link planned as {a:?}",
                            e.path
                        )));
                    }
                    None => {
                        let target = target.trim_end_matches('/');
                        let Some(&tino) = self.inodes.get(target) else {
                            return Err(linuxkit_rootfs::Error::Other(format!(
                                "{}: hard link to `{target}`, which is not an earlier file of the initrd",
                                e.path
                            )));
                        };
                        (tino, 1)
                    }
                };
                // Same inode and nlink > 1: the kernel links this name to
                // the earlier one; the content went with the first name.
                self.header(name, tino, 0o100000 | perm, e, 2, 0, (0, 0), minor)
                    .map_err(io_err)?;
            }
            EntryKind::Char { major, minor } => self
                .header(name, ino, 0o020000 | perm, e, 1, 0, (*major, *minor), 1)
                .map_err(io_err)?,
            EntryKind::Block { major, minor } => self
                .header(name, ino, 0o060000 | perm, e, 1, 0, (*major, *minor), 1)
                .map_err(io_err)?,
            EntryKind::Fifo => self
                .header(name, ino, 0o010000 | perm, e, 1, 0, (0, 0), 1)
                .map_err(io_err)?,
        }
        Ok(())
    }
}

/// A compressed archive holding only the `TRAILER!!!` entry, padded to 512
/// bytes: the end of an initrd made of [`CpioWriter::finish_segment`]
/// segments.
pub fn trailer_archive(compression: Compression, level: Option<i32>) -> io::Result<Vec<u8>> {
    let c = Compressor::new(Vec::new(), compression, level)?;
    CpioWriter::new(c).finish()?.finish()
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
    /// A sink writing one compressed cpio archive onto `out`.
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

    /// A sink for one segment of a larger initrd, following `plan`.
    pub fn with_plan(
        out: W,
        compression: Compression,
        level: Option<i32>,
        plan: LinkPlan,
    ) -> io::Result<Self> {
        Ok(InitrdSink {
            cpio: CpioWriter::with_plan(Compressor::new(out, compression, level)?, plan),
            boot: HashMap::new(),
        })
    }

    /// A sink for one segment whose plan is not known yet, writing every
    /// file as unique (see [`CpioWriter::all_unique`]).
    pub(crate) fn all_unique(
        out: W,
        compression: Compression,
        level: Option<i32>,
    ) -> io::Result<Self> {
        Ok(InitrdSink {
            cpio: CpioWriter::all_unique(Compressor::new(out, compression, level)?),
            boot: HashMap::new(),
        })
    }

    /// See [`CpioWriter::planned_entries`].
    pub(crate) fn planned_entries(&self) -> usize {
        self.cpio.planned_entries()
    }

    /// Finishes a segment (no trailer, see [`CpioWriter::finish_segment`]);
    /// returns the writer and the `boot/` files.
    pub fn finish_segment(self) -> io::Result<(W, HashMap<String, Vec<u8>>)> {
        let w = self.cpio.finish_segment()?.finish()?;
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
        self.cpio.add(e, data)?;
        self.cpio
            .out_mut()
            .entry_end()
            .map_err(|source| linuxkit_rootfs::Error::Io {
                context: format!("cannot write {} to the initrd", e.path),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// (name, ino, nlink, minor, size) of each entry of an uncompressed archive.
    fn headers(d: &[u8]) -> Vec<(String, u32, u32, u32, u32)> {
        let field = |at: usize, n: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&d[at + 6 + 8 * n..at + 14 + 8 * n]).unwrap(),
                16,
            )
            .unwrap()
        };
        let align = |x: usize| (x + 3) & !3;
        let mut i = 0;
        let mut out = Vec::new();
        while i + 110 <= d.len() && d[i] != 0 {
            let (size, namesize) = (field(i, 6) as usize, field(i, 11) as usize);
            let name = String::from_utf8(d[i + 110..i + 110 + namesize - 1].to_vec()).unwrap();
            out.push((name, field(i, 0), field(i, 4), field(i, 8), size as u32));
            i = align(align(i + 110 + namesize) + size);
        }
        out
    }

    #[test]
    fn planned_segments_link_leave_out_and_have_no_trailer() {
        let plan = LinkPlan {
            actions: vec![
                LinkAction::Unique,
                LinkAction::First { ino: 7, minor: 9 },
                LinkAction::Link { ino: 7, minor: 9 },
                LinkAction::Skip,
            ],
        };
        let mut w = CpioWriter::with_plan(Vec::new(), plan.clone());
        for (name, data) in [
            ("a", &b"unique"[..]),
            ("b", b"shared"),
            ("c", b"shared"),
            ("d", b"again"),
        ] {
            w.add(
                &Entry::file(name, data.len() as u64),
                &mut Cursor::new(data.to_vec()),
            )
            .unwrap();
        }
        w.add(&Entry::dir("e"), &mut std::io::empty()).unwrap();
        assert_eq!((w.file_bytes, w.linked_bytes), (23, 11));
        let out = w.finish_segment().unwrap();
        assert_eq!(out.len() % 4, 0);
        let h = headers(&out);
        let names: Vec<&str> = h.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "e"], "d is left out, no trailer");
        assert_eq!((h[0].2, h[0].3), (1, 1), "unique: nlink 1");
        assert_eq!((h[1].1, h[1].2, h[1].3, h[1].4), (7, 2, 9, 6));
        assert_eq!((h[2].1, h[2].2, h[2].3, h[2].4), (7, 2, 9, 0), "no content");
        // A part that produces other files than planned is an error.
        let mut w = CpioWriter::with_plan(Vec::new(), plan);
        w.add(&Entry::file("a", 1), &mut Cursor::new(b"x".to_vec()))
            .unwrap();
        assert!(w.finish_segment().is_err());
    }
}
