//! Helpers shared by the client tests (`pull.rs`, `push.rs`, `cache.rs`):
//! registry options that never read the user's `~/.docker`, Docker config
//! files with credentials, temporary caches, checks of a cache's on-disk
//! state, and [`proxy::Proxy`], a fault-injecting TCP proxy.
//!
//! Unlike `linuxkit_testing` (the registry harness, which never touches the
//! crate under test), these helpers use `linuxkit_oci` types.

// Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod proxy;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use linuxkit_oci::{Cache, CachedImage, ImageRef, Platform, Registry, RegistryOptions};
use tempfile::TempDir;

use linuxkit_testing::{Fixture, ImageInfo, sha256_digest};

/// `linux/amd64`, the platform of single-platform fixtures, as the crate
/// spells it. Set explicitly so tests do not depend on the host.
pub fn amd64() -> Platform {
    Platform::linux(linuxkit_base::Arch::Amd64)
}

pub fn arm64() -> Platform {
    Platform::linux(linuxkit_base::Arch::Arm64)
}

/// Options for a fast, hermetic client: no progress bars, short backoff,
/// credentials only from `docker_config` (never `~/.docker`), linux/amd64.
pub fn options(docker_config: Option<PathBuf>) -> RegistryOptions {
    RegistryOptions {
        progress: false,
        docker_config,
        backoff: Duration::from_millis(50),
        platform: amd64(),
        ..Default::default()
    }
}

/// A client with [`options`].
pub fn client(docker_config: Option<PathBuf>) -> Registry {
    Registry::new(options(docker_config)).expect("create registry client")
}

/// A client for `platform` with [`options`].
pub fn client_for(platform: Platform, docker_config: Option<PathBuf>) -> Registry {
    Registry::new(RegistryOptions {
        platform,
        ..options(docker_config)
    })
    .expect("create registry client")
}

pub fn image_ref(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap_or_else(|e| panic!("parse {s}: {e}"))
}

/// Writes `dir/config.json` in Docker's format with `auths` for each
/// `(registry, user, password)`; returns its path.
pub fn docker_config(dir: &Path, auths: &[(&str, &str, &str)]) -> PathBuf {
    let auths: serde_json::Map<String, serde_json::Value> = auths
        .iter()
        .map(|(registry, user, password)| {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            (registry.to_string(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    let path = dir.join("config.json");
    fs::write(
        &path,
        serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap(),
    )
    .unwrap();
    path
}

/// A cache in its own temporary directory.
pub struct TempCache {
    pub dir: TempDir,
    pub cache: Cache,
}

impl TempCache {
    pub fn new() -> TempCache {
        let dir = tempfile::Builder::new()
            .prefix("linuxkit-test-cache-")
            .tempdir()
            .expect("cache temp dir");
        let cache = Cache::open(dir.path()).expect("open a new cache");
        TempCache { dir, cache }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl std::ops::Deref for TempCache {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.cache
    }
}

/// The hex names of the files in `blobs/sha256`.
pub fn blob_names(cache: &Cache) -> BTreeSet<String> {
    let dir = cache.root().join("blobs/sha256");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The hex part of a `sha256:` digest.
pub fn hex_of(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
        .to_string()
}

/// Asserts that every file in `blobs/sha256` hashes to its name.
pub fn assert_blobs_verify(cache: &Cache) {
    for name in blob_names(cache) {
        let path = cache.root().join("blobs/sha256").join(&name);
        let data = fs::read(&path).unwrap();
        assert_eq!(
            sha256_digest(&data),
            format!("sha256:{name}"),
            "cached blob {} does not hash to its name",
            path.display()
        );
    }
}

/// The files in the cache's `.tmp` directory.
pub fn temp_files(cache: &Cache) -> Vec<PathBuf> {
    let dir = cache.root().join(".tmp");
    match fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("list {}: {e}", dir.display()),
    }
}

pub fn assert_no_temp_files(cache: &Cache) {
    let left = temp_files(cache);
    assert!(
        left.is_empty(),
        "temporary files left in {}: {left:?}",
        cache.root().join(".tmp").display()
    );
}

/// `index.json` as raw JSON (parsed independently of the crate's types).
pub fn raw_index(cache: &Cache) -> serde_json::Value {
    let path = cache.root().join("index.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e})", path.display()))
}

/// The `(name, digest, mediaType)` of each `index.json` entry, in file order.
pub fn index_entries(cache: &Cache) -> Vec<(String, String, String)> {
    raw_index(cache)["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap_or("<unnamed>")
                    .to_string(),
                m["digest"].as_str().unwrap_or_default().to_string(),
                m["mediaType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The names in `index.json`, in file order.
pub fn index_names(cache: &Cache) -> Vec<String> {
    index_entries(cache).into_iter().map(|e| e.0).collect()
}

/// Asserts `index.json` has no entry named `name`.
pub fn assert_not_indexed(cache: &Cache, name: &str) {
    let names = index_names(cache);
    assert!(
        !names.iter().any(|n| n == name),
        "index.json names {name} although the pull failed: {names:?}"
    );
}

/// Asserts `index.json` has exactly one entry named `name`, pointing at
/// `digest` with `media_type`.
pub fn assert_indexed(cache: &Cache, name: &str, digest: &str, media_type: &str) {
    let entries = index_entries(cache);
    let matching: Vec<_> = entries.iter().filter(|e| e.0 == name).collect();
    assert_eq!(
        matching.len(),
        1,
        "index.json should name {name} exactly once: {entries:?}"
    );
    assert_eq!(
        (matching[0].1.as_str(), matching[0].2.as_str()),
        (digest, media_type),
        "index.json entry for {name}"
    );
}

/// Asserts that `cached` is the fixture image `info`: manifest digest,
/// config bytes and layer descriptors.
pub fn assert_image_is(cached: &CachedImage, info: &ImageInfo) {
    assert_eq!(
        cached.manifest_digest.as_str(),
        info.manifest_digest,
        "manifest digest of {}",
        cached.name
    );
    assert_eq!(
        cached.manifest.config.digest, info.config_digest,
        "config digest of {}",
        cached.name
    );
    assert_eq!(
        cached.config, info.config,
        "config bytes of {}",
        cached.name
    );
    let layers: Vec<(&str, u64, &str)> = cached
        .manifest
        .layers
        .iter()
        .map(|l| (l.digest.as_str(), l.size, l.media_type.as_str()))
        .collect();
    let expected: Vec<(&str, u64, &str)> = info
        .layers
        .iter()
        .map(|l| (l.digest.as_str(), l.size, l.media_type.as_str()))
        .collect();
    assert_eq!(layers, expected, "layers of {}", cached.name);
}

/// Asserts that the cache holds the manifest, config and layers of `info`
/// byte for byte as the fixture wrote them.
pub fn assert_has_image_blobs(cache: &Cache, fixture: &Fixture, info: &ImageInfo) {
    let mut digests = vec![info.manifest_digest.clone(), info.config_digest.clone()];
    digests.extend(info.layer_digests());
    for digest in digests {
        let path = cache.root().join("blobs/sha256").join(hex_of(&digest));
        let data =
            fs::read(&path).unwrap_or_else(|e| panic!("blob {digest} is not in the cache ({e})"));
        assert!(
            data == fixture.blob(&digest),
            "cached blob {digest} differs from the fixture's"
        );
    }
}

/// The manifest, config and layer digests of `info` as hex names.
pub fn image_blob_names(info: &ImageInfo) -> BTreeSet<String> {
    let mut names = BTreeSet::from([hex_of(&info.manifest_digest), hex_of(&info.config_digest)]);
    names.extend(info.layers.iter().map(|l| hex_of(&l.digest)));
    names
}

/// `len` deterministic pseudo-random (incompressible) bytes from an
/// xorshift64 generator seeded with `seed`.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Everything a successful pull of a single-platform fixture must leave:
/// the image as pushed, named in `index.json`, all its blobs present and
/// verifying, and no temporary files.
pub fn assert_single_image_cached(
    cache: &Cache,
    pulled: &CachedImage,
    reference: &str,
    fixture: &Fixture,
) {
    assert_image_is(pulled, fixture.single());
    assert_indexed(
        cache,
        reference,
        &fixture.digest,
        linuxkit_oci::media_type::OCI_MANIFEST,
    );
    assert_has_image_blobs(cache, fixture, fixture.single());
    assert_blobs_verify(cache);
    assert_no_temp_files(cache);
}
