//! Byte-level helpers every writer shares: copying an exact length,
//! writing and recognising zeros, counting what goes through a writer, and
//! the calendar of the formats that store dates as fields.
//!
//! This is a leaf: it depends on no other module of the crate.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

/// Reads an open file from `offset` by position (`pread`), so that the
/// readers of one file do not share its offset. Formats read the staged
/// initrd through its handle, never by its name in the output directory,
/// where another user could have put something else
/// (`docs/security.md`).
pub(crate) struct ReadAt<'a> {
    pub file: &'a File,
    pub offset: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Copies exactly `len` bytes of `r` to `w`; large contents in 1 MiB
/// steps (`io::copy`'s 8 KiB would be thousands of system calls for an
/// initrd).
pub(crate) fn copy_exact(r: &mut dyn Read, w: &mut dyn Write, len: u64) -> io::Result<()> {
    let short = || {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the spooled content is shorter than expected",
        )
    };
    if len <= 64 << 10 {
        if io::copy(&mut r.take(len), w)? != len {
            return Err(short());
        }
        return Ok(());
    }
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(short()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
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

/// A writer that counts what goes through it.
pub(crate) struct Counted<'a> {
    pub w: &'a mut dyn Write,
    pub n: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.w.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.w.write_all(buf)?;
        self.n += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Year, month, day, hour, minute, second (UTC) of a Unix time (also
/// the FAT writer's calendar).
pub(crate) use linuxkit_base::calendar::civil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_recognised_and_written() {
        assert!(is_zero(&[0; 100]));
        assert!(is_zero(&[]));
        let mut b = vec![0u8; 200_000];
        b[150_000] = 1;
        assert!(!is_zero(&b));
        let mut out = Vec::new();
        write_zeros(&mut out, 150_000).unwrap();
        assert_eq!(out.len(), 150_000);
        assert!(is_zero(&out));
    }

    #[test]
    fn copy_exact_copies_the_length_and_refuses_short_input() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        copy_exact(&mut &data[..], &mut out, 2_500_000).unwrap();
        assert!(out[..] == data[..2_500_000]);
        let mut out = Vec::new();
        assert!(copy_exact(&mut &data[..10], &mut out, 11).is_err());
        assert!(copy_exact(&mut &data[..], &mut out, 3_000_001).is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_492_533_000), (2017, 4, 18, 16, 30, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }
}
