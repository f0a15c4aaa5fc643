//! Content digests (`sha256:<64 hex>`), the names of everything in the cache.

use sha2::{Digest as _, Sha256};
use std::fmt;

use crate::error::{Error, Result};

/// A validated sha256 digest. Other algorithms are refused: the reference's
/// cache and every registry we target use sha256, and accepting unknown
/// algorithms would mean storing blobs we cannot verify.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// `sha256:` and 64 lower-case hex digits, or an error saying which
    /// part is wrong.
    pub fn parse(s: &str) -> Result<Digest> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| {
            Error::Other(format!(
                "unsupported digest `{s}`: only sha256 digests are supported"
            ))
        })?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(Error::Other(format!(
                "malformed digest `{s}`: expected sha256: and 64 lower-case hex digits"
            )));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{:x}", Sha256::digest(bytes)))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{:x}", h.finalize()))
    }

    /// The hex part, which is the blob's file name in an OCI layout.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The digest as written: `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes() {
        let d = Digest::of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha512:abc").is_err());
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    }
}
