//! Test support shared by the crates' integration tests (a dev-dependency
//! only, never published). It began as the OCI registry client's harness
//! and serves every crate whose tests need a registry or an image: `oci`
//! (the client and cache) and `cli` (builds that pull).
//!
//! Everything here talks to real programs, never to mocks, so the code
//! under test meets the behaviour it will meet in the field:
//!
//! * [`registry`]: [`TestRegistry`] runs Debian's `docker-registry` (the
//!   CNCF distribution registry, 2.8) on `127.0.0.1` with a free port and a
//!   temporary storage directory, anonymous, behind htpasswd basic auth, or
//!   behind token auth. Tests can stop and restart it (same port, same
//!   storage) and reach into its storage to corrupt a blob, which is how the
//!   client's digest verification is exercised.
//! * [`token`]: the token issuer that token auth needs. It runs on a thread
//!   of the test process, checks HTTP basic credentials and hands out ES256
//!   JWTs signed by a self-signed certificate that the registry trusts, so
//!   the full `WWW-Authenticate: Bearer` dance of Docker Hub and friends is
//!   exercised locally.
//! * [`fixture`]: [`Fixture`] writes images as OCI image layouts on disk from
//!   Rust (deterministic tar layers: sorted entries, fixed mtimes and
//!   owners), single-platform or multi-platform, with gzip, zstd or
//!   uncompressed layers, in OCI or Docker schema 2 form. The expected
//!   digests are computed here, independently of the code under test.
//! * [`skopeo`]: [`push`] copies a fixture layout into a registry with
//!   `skopeo`, an independent implementation, so the client under test reads
//!   images it did not write.
//! * [`generate`]: deterministic inputs: varied bytes ([`generate::noise`]),
//!   a seeded PRNG for generated fuzz cases, a fuzz target's saved inputs.
//! * [`http`]: a minimal blocking HTTP client ([`http::get`]) for tests that
//!   need to look at the registry directly (status codes, headers, bytes).
//!
//! Everything but [`generate`] is behind the `registry` feature, so crates
//! that only need generated inputs do not build the registry's
//! dependencies (TLS, JWT signing, bcrypt, an HTTP server).
//!
//! Tools needed on the machine: `docker-registry` and `skopeo` (both
//! installed by `scripts/setup`). No Docker daemon and no network beyond
//! loopback are needed.

#![forbid(unsafe_code)]

#[cfg(feature = "registry")]
pub mod fixture;
pub mod generate;
#[cfg(feature = "registry")]
pub mod http;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "registry")]
pub mod skopeo;
#[cfg(feature = "registry")]
pub mod token;

#[cfg(feature = "registry")]
pub use fixture::{
    Compression, Fixture, Format, ImageInfo, ImageSpec, LayerInfo, LayerSpec, Platform,
};
#[cfg(feature = "registry")]
pub use registry::{Auth, TestRegistry};
#[cfg(feature = "registry")]
pub use skopeo::{push, push_as_v2s2, push_fixture};

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
