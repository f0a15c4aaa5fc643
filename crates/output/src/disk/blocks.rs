//! The raw image as the containers read it: in blocks, zero-padded past
//! its end, and hashed on the way for the identifiers that derive from it.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The sector every container counts in.
pub(crate) const SECTOR: u64 = 512;

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

#[cfg(test)]
mod tests {
    use super::*;

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
