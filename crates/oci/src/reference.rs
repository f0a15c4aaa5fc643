//! Image references, normalised as Docker does: `nginx` is
//! `docker.io/library/nginx:latest`, `linuxkit/init:v1` is
//! `docker.io/linuxkit/init:v1`, and a registry with a port keeps it.
//!
//! Parsing itself is `oci-spec`'s (the distribution reference grammar); we
//! add messages that say what is wrong, and the canonical string form the
//! reference uses as the cache's image name.

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};

use crate::error::{Error, Result};

/// An image reference, normalised as Docker does (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(Reference);

impl ImageRef {
    /// Parses and normalises `s`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<ImageRef> {
        let err = |reason: String| Error::Reference {
            reference: s.to_string(),
            reason,
        };
        if s.trim().is_empty() {
            return Err(err("it is empty".into()));
        }
        if s.contains("://") {
            return Err(err(
                "drop the URL scheme; write `registry/repository:tag`".into()
            ));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(err("it contains white space".into()));
        }
        if let Some((_, digest)) = s.split_once('@') {
            match digest.split_once(':') {
                Some(("sha256", hex))
                    if hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => {}
                Some((alg, _)) if alg != "sha256" => {
                    return Err(err(format!(
                        "only sha256 digests are supported, not `{alg}`"
                    )));
                }
                _ => {
                    return Err(err(
                        "a digest is `@sha256:` followed by 64 hex digits".into()
                    ));
                }
            }
        }
        match Reference::try_from(s) {
            Ok(r) => Ok(ImageRef(r)),
            Err(e) => {
                let name = s.split('@').next().unwrap_or(s);
                let path = name.split_once('/').map_or(name, |(first, rest)| {
                    if first.contains(['.', ':']) || first == "localhost" {
                        rest
                    } else {
                        name
                    }
                });
                let repo = path.rsplit_once(':').map_or(path, |(r, _)| r);
                let reason = match e {
                    _ if repo.chars().any(|c| c.is_ascii_uppercase()) => {
                        format!(
                            "repository names must be lower-case (`{}`)",
                            repo.to_ascii_lowercase()
                        )
                    }
                    ParseError::DigestInvalidLength | ParseError::DigestInvalidFormat => {
                        "a digest is `@sha256:` followed by 64 hex digits".into()
                    }
                    ParseError::DigestUnsupported => "only sha256 digests are supported".into(),
                    ParseError::TagInvalidFormat => {
                        "a tag is at most 128 letters, digits, `_`, `.` and `-`".into()
                    }
                    ParseError::NameTooLong => "the name is longer than 255 characters".into(),
                    _ => "expected `[registry[:port]/]repository[:tag][@sha256:digest]`".into(),
                };
                Err(err(reason))
            }
        }
    }

    /// `docker.io`, `127.0.0.1:5000`, ...
    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    /// The repository path within the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// The digest (`sha256:...`), if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// The name the cache stores the image under: the canonical reference,
    /// e.g. `docker.io/library/nginx:latest` (the reference's
    /// `org.opencontainers.image.ref.name`).
    pub fn canonical(&self) -> String {
        self.0.whole()
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        ImageRef(Reference::with_tag(
            self.registry().to_string(),
            self.repository().to_string(),
            tag.to_string(),
        ))
    }

    /// Whether plain HTTP is acceptable: only for registries on loopback.
    pub fn is_loopback(&self) -> bool {
        let host = host_of(self.registry());
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub(crate) fn inner(&self) -> &Reference {
        &self.0
    }
}

/// The host of `host[:port]` (IPv6 literals in brackets included).
pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.bytes().all(|c| c.is_ascii_digit()) {
            h
        } else {
            registry
        }
    })
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<ImageRef> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        for (input, canonical) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.19", "docker.io/library/nginx:1.19"),
            ("linuxkit/init:v1.0.0", "docker.io/linuxkit/init:v1.0.0"),
            ("docker.io/library/alpine:3", "docker.io/library/alpine:3"),
            (
                "127.0.0.1:5000/bench/kernel:6.1",
                "127.0.0.1:5000/bench/kernel:6.1",
            ),
            ("localhost/foo", "localhost/foo:latest"),
            ("ghcr.io/a/b/c:t", "ghcr.io/a/b/c:t"),
            (
                "alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "docker.io/library/alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ] {
            assert_eq!(
                ImageRef::parse(input).unwrap().canonical(),
                canonical,
                "{input}"
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (input, reason) in [
            ("", "it is empty"),
            ("Nginx", "repository names must be lower-case (`nginx`)"),
            ("https://ghcr.io/a", "drop the URL scheme"),
            ("a b", "white space"),
            ("alpine@sha256:abc", "64 hex digits"),
            ("alpine@md5:0123456789abcdef0123456789abcdef", "only sha256"),
            ("alpine:", "expected `[registry[:port]/]repository"),
        ] {
            let e = ImageRef::parse(input).unwrap_err().to_string();
            assert!(e.contains(reason), "{input}: {e}");
        }
    }

    #[test]
    fn loopback_registries() {
        assert!(ImageRef::parse("127.0.0.1:5000/a").unwrap().is_loopback());
        assert!(ImageRef::parse("localhost:5000/a").unwrap().is_loopback());
        assert!(ImageRef::parse("127.1.2.3/a").unwrap().is_loopback());
        assert!(!ImageRef::parse("ghcr.io/a").unwrap().is_loopback());
        assert!(!ImageRef::parse("127.example.com/a").unwrap().is_loopback());
        assert!(!ImageRef::parse("10.0.0.1:5000/a").unwrap().is_loopback());
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5000"), "::1");
    }
}
