//! A PAX tar writer for the root filesystem stream.
//!
//! Hand-written (about a hundred lines) rather than on the `tar` crate's
//! builder because we need PAX records on every entry (the reference's
//! `LINUXKIT.source`/`LINUXKIT.location` provenance and
//! `SCHILY.xattr.*` extended attributes) in a fixed, reproducible form.

use std::io::{self, Read, Write};

use linuxkit_rootfs::{Entry, EntryKind, EntrySink};

const BLOCK: usize = 512;

/// Writes the entries of a root filesystem stream as a PAX tar.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// A writer onto `out`; nothing is written before the first entry.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }

    fn header(
        &mut self,
        name: &str,
        typeflag: u8,
        e: &Entry,
        size: u64,
        link: &str,
    ) -> io::Result<()> {
        let mut h = [0u8; BLOCK];
        put_str(&mut h[0..100], name);
        put_octal(&mut h[100..108], u64::from(e.mode & 0o7777));
        put_octal(&mut h[108..116], u64::from(e.uid));
        put_octal(&mut h[116..124], u64::from(e.gid));
        put_octal(&mut h[124..136], size);
        put_octal(&mut h[136..148], e.mtime);
        h[156] = typeflag;
        put_str(&mut h[157..257], link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let (major, minor) = match e.kind {
            EntryKind::Char { major, minor } | EntryKind::Block { major, minor } => (major, minor),
            _ => (0, 0),
        };
        put_octal(&mut h[329..337], u64::from(major));
        put_octal(&mut h[337..345], u64::from(minor));
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put_octal(&mut h[148..155], u64::from(sum));
        h[155] = 0;
        self.out.write_all(&h)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// A PAX record: `LEN KEY=VALUE\n`, where LEN counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn put_str(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
}

fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    // Values too large for the field are carried by PAX records; the header
    // then holds the largest value it can.
    let s = if s.len() > digits {
        "7".repeat(digits)
    } else {
        s
    };
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

impl<W: Write> EntrySink for TarWriter<W> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        // GNU tar creates paths beyond PATH_MAX (one directory at a time),
        // not names beyond NAME_MAX.
        crate::error::check_limits(e, "tar", false)?;
        let io_err = |source| linuxkit_rootfs::Error::Io {
            context: format!("cannot write {} to the tar", e.path),
            source,
        };
        let (typeflag, link, size) = match &e.kind {
            EntryKind::File => (b'0', "", e.size),
            EntryKind::Dir => (b'5', "", 0),
            EntryKind::Symlink { target } => (b'2', target.as_str(), 0),
            EntryKind::Hardlink { target } => (b'1', target.as_str(), 0),
            EntryKind::Char { .. } => (b'3', "", 0),
            EntryKind::Block { .. } => (b'4', "", 0),
            EntryKind::Fifo => (b'6', "", 0),
        };
        let name = if e.kind == EntryKind::Dir && !e.path.ends_with('/') {
            format!("{}/", e.path)
        } else {
            e.path.clone()
        };
        let mut pax = Vec::new();
        if let Some((source, location)) = &e.provenance {
            pax_record(&mut pax, "LINUXKIT.location", location.as_bytes());
            pax_record(&mut pax, "LINUXKIT.source", source.as_bytes());
        }
        if name.len() > 100 {
            pax_record(&mut pax, "path", name.as_bytes());
        }
        if link.len() > 100 {
            pax_record(&mut pax, "linkpath", link.as_bytes());
        }
        if size >= 0o77777777777 {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        for (k, v) in &e.xattrs {
            pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
        }
        if !pax.is_empty() {
            let pax_name = format!(
                "PaxHeaders/{}",
                name.trim_end_matches('/').rsplit('/').next().unwrap_or("")
            );
            self.header(&pax_name, b'x', e, pax.len() as u64, "")
                .map_err(io_err)?;
            self.out.write_all(&pax).map_err(io_err)?;
            self.pad(pax.len() as u64).map_err(io_err)?;
        }
        self.header(&name, typeflag, e, size, link)
            .map_err(io_err)?;
        if size > 0 {
            let copied = io::copy(&mut data.take(size), &mut self.out).map_err(io_err)?;
            if copied != size {
                return Err(linuxkit_rootfs::Error::Other(format!(
                    "{}: expected {size} bytes of content, got {copied}",
                    e.path
                )));
            }
            self.pad(size).map_err(io_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"a");
        assert_eq!(v, b"9 path=a\n");
        let mut v = Vec::new();
        pax_record(&mut v, "k", &[b'x'; 94]);
        assert_eq!(&v[..4], b"101 ");
        assert_eq!(v.len(), 101);
    }
}
