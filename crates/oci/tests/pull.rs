//! Integration tests of `Registry::pull` against a real registry
//! (`docker-registry`, see `linuxkit_testing`): anonymous, basic and token auth,
//! layer compressions, multi-platform indexes, Docker schema 2, corrupted
//! blobs, broken and slow connections (through `common::proxy`), a stopped
//! registry, a pull killed mid-download, concurrent pulls and mirrors.
//!
//! Every test has its own registry and its own cache directory, and reads
//! credentials only from Docker config files it writes itself.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::*;
use linuxkit_oci::{Cache, CachedImage, Error, ImageRef, Mirror, Registry, media_type};
use linuxkit_testing::fixture::{ARCH_FILE, decompress, tar_files};
use linuxkit_testing::{
    Auth, Compression, Fixture, Format, ImageSpec, LayerSpec, Platform, TestRegistry, push_fixture,
    sha256_digest,
};

/// A one-layer linux/amd64 image with two files and a label.
fn hello(compression: Compression) -> Fixture {
    Fixture::image(
        &[("etc/hello", "hello\n"), ("usr/bin/tool", "#!/bin/sh\n")],
        compression,
        &[("org.mobyproject.config", "{}")],
        Platform::linux_amd64(),
    )
}

/// A linux/amd64 image whose first layer is `size` incompressible bytes
/// (stored uncompressed) and whose second is a small gzip layer.
fn big_image(size: usize) -> Fixture {
    let spec = ImageSpec::new(Platform::linux_amd64())
        .layer(LayerSpec::new(Compression::None).file("big.bin", pseudo_random(size, 0x5eed)))
        .layer(LayerSpec::files(
            Compression::Gzip,
            &[("etc/small", "small\n")],
        ));
    Fixture::build(Format::Oci, "latest", &[spec], false)
}

/// Pulls `reference`, panicking with the error and the registry's log.
fn pull_ok(
    client: &Registry,
    cache: &Cache,
    reference: &str,
    registry: &TestRegistry,
) -> CachedImage {
    client
        .pull(cache, &image_ref(reference))
        .unwrap_or_else(|e| {
            panic!(
                "pull {reference} failed: {e}\n--- registry log ---\n{}",
                registry.log()
            )
        })
}

/// Pulls `reference` expecting failure; returns the error message.
fn pull_err(client: &Registry, cache: &Cache, reference: &str) -> (Error, String) {
    match client.pull(cache, &image_ref(reference)) {
        Ok(image) => panic!(
            "pull {reference} succeeded but should have failed (got {})",
            image.manifest_digest
        ),
        Err(e) => {
            let msg = e.to_string();
            (e, msg)
        }
    }
}

/// The files of cached layer `digest`, decompressed as `compression`.
fn cached_layer_files(
    cache: &Cache,
    digest: &str,
    compression: Compression,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let path = cache.root().join("blobs/sha256").join(hex_of(digest));
    let blob = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    tar_files(&decompress(&blob, compression))
}

/// After a failed pull of `name`: no index entry, no temporary files, the
/// image does not resolve, and whatever blobs did arrive are intact.
fn assert_failed_pull_left_cache_consistent(cache: &Cache, name: &str) {
    assert_not_indexed(cache, name);
    assert_no_temp_files(cache);
    assert!(
        cache.image(&image_ref(name), &amd64()).unwrap().is_none(),
        "{name} resolves in the cache after a failed pull"
    );
    assert_blobs_verify(cache);
    Cache::open(cache.root()).expect("the cache reopens after a failed pull");
}

#[test]
fn anonymous_gzip_pull_is_verified_named_canonically_and_usable_offline() {
    let mut registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/hello:1.0");
    let info = fixture.single();
    let cache = TempCache::new();
    let reference = registry.image_ref("test/hello:1.0");

    let pulled = pull_ok(&client(None), &cache, &reference, &registry);

    let name = format!("127.0.0.1:{}/test/hello:1.0", registry.port());
    assert_eq!(pulled.name, name);
    assert_image_is(&pulled, info);
    assert_eq!(pulled.top.digest, fixture.digest);
    assert_eq!(pulled.top.media_type, media_type::OCI_MANIFEST);
    assert_eq!(pulled.top.size, info.manifest.len() as u64);
    assert_eq!(
        pulled.manifest.media_type.as_deref(),
        Some(media_type::OCI_MANIFEST)
    );
    assert_indexed(&cache, &name, &fixture.digest, media_type::OCI_MANIFEST);
    assert_eq!(
        blob_names(&cache),
        image_blob_names(info),
        "the cache should hold exactly the manifest, config and layer"
    );
    assert_blobs_verify(&cache);
    assert_has_image_blobs(&cache, &fixture, info);
    assert_no_temp_files(&cache);
    let files = cached_layer_files(&cache, &info.layers[0].digest, Compression::Gzip);
    assert_eq!(files["etc/hello"], b"hello\n");

    // Cached images need no registry: stop it and resolve from a freshly
    // opened cache.
    registry.stop();
    let reopened = Cache::open(cache.path()).expect("reopen the cache");
    let offline = reopened
        .image(&image_ref(&reference), &amd64())
        .expect("resolve from the cache")
        .expect("the pulled image resolves with the registry stopped");
    assert_image_is(&offline, info);
    assert_eq!(offline.name, name);
    assert_eq!(offline.top, pulled.top);
}

#[test]
fn zstd_and_uncompressed_layers_pull_and_verify() {
    let registry = TestRegistry::start(Auth::None);
    let cache = TempCache::new();
    let client = client(None);
    let mut expected_blobs = std::collections::BTreeSet::new();
    for (compression, layer_type, repo) in [
        (
            Compression::Zstd,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "test/zstd",
        ),
        (
            Compression::None,
            "application/vnd.oci.image.layer.v1.tar",
            "test/plain",
        ),
    ] {
        let fixture = hello(compression);
        push_fixture(&fixture, &registry, &format!("{repo}:latest"));
        let info = fixture.single();
        let reference = registry.image_ref(&format!("{repo}:latest"));
        let pulled = pull_ok(&client, &cache, &reference, &registry);
        assert_image_is(&pulled, info);
        assert_eq!(pulled.manifest.layers[0].media_type, layer_type);
        assert_indexed(
            &cache,
            &reference,
            &fixture.digest,
            media_type::OCI_MANIFEST,
        );
        assert_has_image_blobs(&cache, &fixture, info);
        let files = cached_layer_files(&cache, &info.layers[0].digest, compression);
        assert_eq!(
            files["usr/bin/tool"], b"#!/bin/sh\n",
            "{compression:?} layer content"
        );
        expected_blobs.extend(image_blob_names(info));
    }
    assert_eq!(blob_names(&cache), expected_blobs);
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
}

#[test]
fn pull_by_digest_and_unknown_images() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/hello:1");
    let cache = TempCache::new();
    let client = client(None);

    let by_digest = registry.image_ref(&format!("test/hello@{}", fixture.digest));
    let pulled = pull_ok(&client, &cache, &by_digest, &registry);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(
        &cache,
        &by_digest,
        &fixture.digest,
        media_type::OCI_MANIFEST,
    );

    let (_, msg) = pull_err(&client, &cache, &registry.image_ref("test/hello:nope"));
    assert!(
        msg.contains("not found") && msg.contains("test/hello:nope"),
        "an unknown tag should be reported as not found: {msg}"
    );
    let (_, msg) = pull_err(&client, &cache, &registry.image_ref("test/absent:1"));
    assert!(
        msg.contains("not found") && msg.contains("test/absent:1"),
        "an unknown repository should be reported as not found: {msg}"
    );
    assert_eq!(index_names(&cache), [by_digest]);
    assert_no_temp_files(&cache);
}

#[test]
fn basic_auth_pull_uses_docker_config_credentials() {
    let registry = TestRegistry::start(Auth::basic("alice", "s3cret"));
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "private/hello:1");
    let reference = registry.image_ref("private/hello:1");
    let cache = TempCache::new();
    let config_dir = tempfile::tempdir().unwrap();

    // No credentials at all.
    let (_, msg) = pull_err(&client(None), &cache, &reference);
    assert!(
        msg.to_lowercase().contains("authentication") && msg.contains(&registry.addr()),
        "an anonymous pull from a basic-auth registry should fail with an authentication error naming the registry: {msg}"
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);
    assert!(blob_names(&cache).is_empty(), "blobs cached without access");

    // Credentials for another registry only, then a wrong password.
    let other = docker_config(config_dir.path(), &[("127.0.0.1:1", "alice", "s3cret")]);
    let (_, msg) = pull_err(&client(Some(other)), &cache, &reference);
    assert!(msg.to_lowercase().contains("authentication"), "{msg}");
    let wrong = docker_config(config_dir.path(), &[(&registry.addr(), "alice", "wrong")]);
    let (_, msg) = pull_err(&client(Some(wrong)), &cache, &reference);
    assert!(
        msg.to_lowercase().contains("authentication"),
        "a wrong password should fail with an authentication error: {msg}"
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);

    let config = docker_config(config_dir.path(), &[(&registry.addr(), "alice", "s3cret")]);
    let pulled = pull_ok(&client(Some(config)), &cache, &reference, &registry);
    assert_single_image_cached(&cache, &pulled, &reference, &fixture);
}

#[test]
fn token_auth_pull_asks_the_issuer_for_a_pull_scope() {
    let registry = TestRegistry::start(Auth::token("bob", "hunter2"));
    let issuer = registry.token_issuer().unwrap();
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "team/app:v1");
    let reference = registry.image_ref("team/app:v1");
    let cache = TempCache::new();
    let config_dir = tempfile::tempdir().unwrap();

    let (_, msg) = pull_err(&client(None), &cache, &reference);
    assert!(
        msg.to_lowercase().contains("authentication"),
        "an anonymous pull from a token-auth registry should fail with an authentication error: {msg}"
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);

    let before = issuer.requests().len();
    let config = docker_config(config_dir.path(), &[(&registry.addr(), "bob", "hunter2")]);
    let pulled = pull_ok(&client(Some(config)), &cache, &reference, &registry);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(
        &cache,
        &reference,
        &fixture.digest,
        media_type::OCI_MANIFEST,
    );
    assert_has_image_blobs(&cache, &fixture, fixture.single());

    let requests = issuer.requests()[before..].to_vec();
    assert!(
        requests.iter().any(|r| r.authorized
            && r.account.as_deref() == Some("bob")
            && r.service.as_deref() == Some(issuer.service())
            && r.scopes.iter().any(|s| s == "repository:team/app:pull")),
        "the client never asked for repository:team/app:pull with bob's credentials: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .flat_map(|r| &r.scopes)
            .all(|s| s == "repository:team/app:pull"),
        "a pull should ask for nothing but the pull scope: {requests:#?}"
    );
}

#[test]
fn multi_arch_pull_fetches_only_the_requested_platform_s_layers() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = Fixture::multi_arch(&[("etc/common", "same\n")], Compression::Gzip, &[]);
    push_fixture(&fixture, &registry, "test/multi:latest");
    let arm = fixture.platform("linux", "arm64");
    let amd = fixture.platform("linux", "amd64");
    let reference = registry.image_ref("test/multi:latest");
    let cache = TempCache::new();

    let pulled = pull_ok(&client_for(arm64(), None), &cache, &reference, &registry);
    assert_image_is(&pulled, arm);
    assert_eq!(pulled.top.digest, fixture.digest);
    assert_eq!(pulled.top.media_type, media_type::OCI_INDEX);
    assert_indexed(&cache, &reference, &fixture.digest, media_type::OCI_INDEX);
    let mut expected = image_blob_names(arm);
    expected.insert(hex_of(&fixture.digest));
    expected.insert(hex_of(&amd.manifest_digest));
    assert_eq!(
        blob_names(&cache),
        expected,
        "after an arm64 pull the cache should hold the index, every manifest it lists, and the arm64 config and layers only"
    );
    assert!(!blob_names(&cache).contains(&hex_of(&amd.layers[0].digest)));
    assert_eq!(
        fs::read(
            cache
                .root()
                .join("blobs/sha256")
                .join(hex_of(&fixture.digest))
        )
        .unwrap(),
        *fixture.index.as_ref().unwrap(),
        "the whole index is cached as served"
    );
    assert!(
        cache
            .image(&image_ref(&reference), &amd64())
            .unwrap()
            .is_none(),
        "amd64 resolves although only arm64 was pulled"
    );

    let pulled_amd = pull_ok(&client_for(amd64(), None), &cache, &reference, &registry);
    assert_image_is(&pulled_amd, amd);
    assert_indexed(&cache, &reference, &fixture.digest, media_type::OCI_INDEX);
    expected.extend(image_blob_names(amd));
    assert_eq!(blob_names(&cache), expected);
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);

    for (platform, info, arch) in [(arm64(), arm, "arm64"), (amd64(), amd, "amd64")] {
        let cached = cache
            .image(&image_ref(&reference), &platform)
            .unwrap()
            .unwrap_or_else(|| panic!("{arch} does not resolve after pulling both"));
        assert_image_is(&cached, info);
        let files = cached_layer_files(&cache, &info.layers[0].digest, Compression::Gzip);
        assert_eq!(files[ARCH_FILE], format!("{arch}\n").as_bytes());
        assert_eq!(files["etc/common"], b"same\n");
    }
}

/// The reference (go-containerregistry's `layout.WriteIndex`) stores every
/// manifest of a pulled index, and accepts a cached index as complete only
/// when its attestation manifests (`unknown/unknown`) and their configs are
/// there. We store those too, but no layers beyond the pulled platform's;
/// and `index.json` states its media type as the reference's does.
#[test]
fn index_pull_stores_every_manifest_and_attestation_configs_but_one_platform_s_layers() {
    let registry = TestRegistry::start(Auth::None);
    let specs = [
        ImageSpec::new(Platform::linux_amd64())
            .layer(LayerSpec::files(Compression::Gzip, &[("a", "amd64\n")])),
        ImageSpec::new(Platform::linux_arm64())
            .layer(LayerSpec::files(Compression::Gzip, &[("a", "arm64\n")])),
        ImageSpec::new(Platform::new("unknown", "unknown"))
            .layer(LayerSpec::files(Compression::Gzip, &[("provenance", "{}")])),
    ];
    let fixture = Fixture::build(Format::Oci, "latest", &specs, true);
    push_fixture(&fixture, &registry, "test/attested:latest");
    let (amd, arm, att) = (&fixture.images[0], &fixture.images[1], &fixture.images[2]);
    let reference = registry.image_ref("test/attested:latest");
    let cache = TempCache::new();

    let pulled = pull_ok(&client_for(amd64(), None), &cache, &reference, &registry);
    assert_image_is(&pulled, amd);
    let mut expected = image_blob_names(amd);
    expected.extend([
        hex_of(&fixture.digest),
        hex_of(&arm.manifest_digest),
        hex_of(&att.manifest_digest),
        hex_of(&att.config_digest),
    ]);
    assert_eq!(blob_names(&cache), expected);
    assert!(!blob_names(&cache).contains(&hex_of(&arm.layers[0].digest)));
    assert!(!blob_names(&cache).contains(&hex_of(&att.layers[0].digest)));
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);

    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(cache.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["mediaType"], media_type::OCI_INDEX);
    assert_eq!(index["schemaVersion"], 2);
}

#[test]
fn docker_schema2_manifest_and_manifest_list_pull() {
    let registry = TestRegistry::start(Auth::None);
    let cache = TempCache::new();

    let single = Fixture::docker_image(&[("hello", "docker")], &[], Platform::linux_amd64());
    push_fixture(&single, &registry, "test/docker:single");
    let reference = registry.image_ref("test/docker:single");
    let pulled = pull_ok(&client(None), &cache, &reference, &registry);
    assert_image_is(&pulled, single.single());
    assert_eq!(
        pulled.manifest.media_type.as_deref(),
        Some(media_type::DOCKER_MANIFEST)
    );
    assert_indexed(
        &cache,
        &reference,
        &single.digest,
        media_type::DOCKER_MANIFEST,
    );
    assert_has_image_blobs(&cache, &single, single.single());

    let multi = Fixture::docker_multi_arch(&[("hello", "docker")], &[]);
    push_fixture(&multi, &registry, "test/docker:multi");
    let arm = multi.platform("linux", "arm64");
    let reference = registry.image_ref("test/docker:multi");
    let pulled = pull_ok(&client_for(arm64(), None), &cache, &reference, &registry);
    assert_image_is(&pulled, arm);
    assert_eq!(pulled.top.media_type, media_type::DOCKER_LIST);
    assert_indexed(&cache, &reference, &multi.digest, media_type::DOCKER_LIST);
    assert_has_image_blobs(&cache, &multi, arm);
    let files = cached_layer_files(&cache, &arm.layers[0].digest, Compression::Gzip);
    assert_eq!(files[ARCH_FILE], b"arm64\n");

    let mut expected = image_blob_names(single.single());
    expected.extend(image_blob_names(arm));
    expected.insert(hex_of(&multi.digest));
    // Every manifest of the list is kept, as the reference does.
    expected.insert(hex_of(&multi.platform("linux", "amd64").manifest_digest));
    assert_eq!(blob_names(&cache), expected);
    assert!(
        cache
            .image(&image_ref(&reference), &amd64())
            .unwrap()
            .is_none()
    );
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
}

#[test]
fn corrupted_blob_fails_verification_and_caches_nothing() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/corrupt:1");
    let layer = &fixture.single().layers[0];
    registry.corrupt_blob(&layer.digest);
    let served = sha256_digest(&fs::read(registry.blob_data_path(&layer.digest)).unwrap());
    let reference = registry.image_ref("test/corrupt:1");
    let cache = TempCache::new();

    let (err, msg) = pull_err(&client(None), &cache, &reference);
    match &err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &layer.digest, "{msg}");
            assert_eq!(actual, &served, "{msg}");
        }
        other => assert!(
            msg.contains("failed verification") && msg.contains(&layer.digest),
            "expected a digest mismatch for {}, got {other:?}",
            layer.digest
        ),
    }
    assert!(msg.contains(&layer.digest), "{msg}");
    assert_failed_pull_left_cache_consistent(&cache, &reference);
    let blobs = blob_names(&cache);
    assert!(
        !blobs.contains(&hex_of(&layer.digest)) && !blobs.contains(&hex_of(&served)),
        "the corrupted layer was cached: {blobs:?}"
    );
}

#[test]
fn corrupted_blob_while_another_downloads_leaves_no_temp_files() {
    // The small layer fails verification while the big one is still
    // arriving (slowly, through the proxy): the abandoned download must not
    // leave its temporary file behind.
    let registry = TestRegistry::start(Auth::None);
    let fixture = big_image(2 << 20);
    push_fixture(&fixture, &registry, "test/corrupt:big");
    let small = &fixture.single().layers[1];
    registry.corrupt_blob(&small.digest);
    let proxy = Proxy::start(&registry.addr());
    proxy.throttle(64 << 10, Duration::from_millis(100));
    let reference = proxy.image_ref("test/corrupt:big");
    let cache = TempCache::new();

    let (err, msg) = pull_err(&client(None), &cache, &reference);
    assert!(
        matches!(err, Error::DigestMismatch { ref expected, .. } if *expected == small.digest),
        "expected a digest mismatch for the small layer {}: {msg}",
        small.digest
    );
    // The scenario needs the big download to have been abandoned, not
    // finished (it takes over 3 s through the throttled proxy).
    assert!(
        !blob_names(&cache).contains(&hex_of(&fixture.single().layers[0].digest)),
        "the big layer finished downloading before the pull failed; the test did not exercise an abandoned download"
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);
}

#[test]
fn broken_blob_response_is_retried() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/flaky:1");
    let proxy = Proxy::start(&registry.addr());
    proxy.truncate_blobs(1);
    let reference = proxy.image_ref("test/flaky:1");
    let cache = TempCache::new();

    let pulled = pull_ok(&client(None), &cache, &reference, &registry);
    assert_eq!(
        proxy.truncated(),
        1,
        "the proxy should have broken exactly one blob response"
    );
    assert!(proxy.blob_responses() >= 3, "config + layer + one retry");
    assert_single_image_cached(&cache, &pulled, &reference, &fixture);
}

#[test]
fn always_broken_blob_responses_give_up_and_leave_the_cache_consistent() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/broken:1");
    let proxy = Proxy::start(&registry.addr());
    proxy.truncate_all_blobs();
    let reference = proxy.image_ref("test/broken:1");
    let cache = TempCache::new();
    let client = client(None);
    let attempts = options(None).attempts;

    let (_, msg) = pull_err(&client, &cache, &reference);
    assert!(
        msg.contains(&format!("gave up after {attempts} attempts")),
        "the error should say the client gave up after {attempts} attempts: {msg}"
    );
    assert!(
        msg.contains(&proxy.addr()) && msg.contains("test/broken:1"),
        "the error should name the registry and image: {msg}"
    );
    let info = fixture.single();
    assert!(
        std::iter::once(&info.config_digest)
            .chain(info.layers.iter().map(|l| &l.digest))
            .any(|d| msg.contains(d.as_str())),
        "the error should name the blob that could not be downloaded: {msg}"
    );
    assert!(
        proxy.truncated() >= u64::from(attempts),
        "only {} blob responses were broken",
        proxy.truncated()
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);

    // The same cache, straight from the registry.
    let direct = registry.image_ref("test/broken:1");
    let pulled = pull_ok(&client, &cache, &direct, &registry);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(&cache, &direct, &fixture.digest, media_type::OCI_MANIFEST);
    assert_not_indexed(&cache, &reference);
    assert_has_image_blobs(&cache, &fixture, fixture.single());
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
}

#[test]
fn stopped_registry_refuses_then_restarted_registry_serves() {
    let mut registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "test/down:1");
    let reference = registry.image_ref("test/down:1");
    let cache = TempCache::new();
    let client = client(None);

    registry.stop();
    let (_, msg) = pull_err(&client, &cache, &reference);
    assert!(
        msg.to_lowercase().contains("connection refused") && msg.contains(&registry.addr()),
        "the error should say the connection to {} was refused: {msg}",
        registry.addr()
    );
    assert_failed_pull_left_cache_consistent(&cache, &reference);

    registry.restart();
    let pulled = pull_ok(&client, &cache, &reference, &registry);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(
        &cache,
        &reference,
        &fixture.digest,
        media_type::OCI_MANIFEST,
    );
    let index = Cache::open(cache.path()).unwrap().index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_has_image_blobs(&cache, &fixture, fixture.single());
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
}

/// The child half of [`killed_pull_leaves_a_usable_cache`]: pulls
/// `$LK_CHILD_PULL` into the cache at `$LK_CHILD_CACHE`, and is killed
/// while doing so. Does nothing when run on its own.
#[test]
#[ignore = "run by killed_pull_leaves_a_usable_cache as a child process"]
fn killed_pull_child() {
    let (Some(image), Some(dir)) = (
        std::env::var_os("LK_CHILD_PULL"),
        std::env::var_os("LK_CHILD_CACHE"),
    ) else {
        eprintln!("killed_pull_child: LK_CHILD_PULL and LK_CHILD_CACHE are not set; nothing to do");
        return;
    };
    let cache = Cache::open(&PathBuf::from(dir)).expect("child: open the cache");
    let image = ImageRef::parse(&image.to_string_lossy()).expect("child: parse the image");
    client(None).pull(&cache, &image).expect("child: pull");
    eprintln!("killed_pull_child: the pull completed before the parent killed it");
}

#[test]
fn killed_pull_leaves_a_usable_cache() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = big_image(2 << 20);
    push_fixture(&fixture, &registry, "test/crash:1");
    let proxy = Proxy::start(&registry.addr());
    proxy.throttle(64 << 10, Duration::from_millis(100));
    let reference = proxy.image_ref("test/crash:1");
    let cache = TempCache::new();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("child.log");
    let log = fs::File::create(&log_path).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_pull_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LK_CHILD_PULL", &reference)
        .env("LK_CHILD_CACHE", cache.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn the test binary as a child");
    let child_log = || fs::read_to_string(&log_path).unwrap_or_default();

    // Wait until the download is under way: a temporary file with data.
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the child exited ({status}) before it was killed\n--- child output ---\n{}",
                child_log()
            );
        }
        let downloading = temp_files(&cache)
            .iter()
            .any(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0));
        if downloading {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no download started in the child within 30 s\n--- child output ---\n{}",
            child_log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let child_pid = child.id();
    child.kill().expect("SIGKILL the child");
    child.wait().unwrap();

    let leftovers = temp_files(&cache);
    assert!(
        !leftovers.is_empty(),
        "the killed child left no partial download"
    );
    for p in &leftovers {
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(&format!("{child_pid}-")),
            "temporary file {name} is not the child's (pid {child_pid})"
        );
    }

    // The cache is usable as it is: it opens, index.json parses and does
    // not name the half-pulled image.
    let cache = Cache::open(cache.path()).expect("open the cache after the kill");
    let index = cache.index().expect("index.json parses after the kill");
    assert!(
        index.manifests.is_empty(),
        "index.json names something after a killed pull: {index:?}"
    );
    assert!(
        cache
            .image(&image_ref(&reference), &amd64())
            .unwrap()
            .is_none()
    );
    assert_blobs_verify(&cache);

    // A normal pull of the same image completes.
    proxy.unthrottle();
    let pulled = pull_ok(&client(None), &cache, &reference, &registry);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(
        &cache,
        &reference,
        &fixture.digest,
        media_type::OCI_MANIFEST,
    );
    assert_has_image_blobs(&cache, &fixture, fixture.single());

    // The next pull reclaimed the dead child's partial download (issue 18.7:
    // it used to stay until a build or `cache clean`), and nothing the
    // image needs.
    for p in &leftovers {
        assert!(
            !p.exists(),
            "{} (a killed pull's partial download) outlived the next pull",
            p.display()
        );
    }
    assert_no_temp_files(&cache);
    assert_eq!(blob_names(&cache), image_blob_names(fixture.single()));
    assert_blobs_verify(&cache);
    let cached = cache
        .image(&image_ref(&reference), &amd64())
        .unwrap()
        .expect("the image resolves after the reclaim");
    assert_image_is(&cached, fixture.single());
}

#[test]
fn concurrent_pulls_of_one_image_share_a_cache() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = Fixture::multi_arch(&[("etc/common", "shared\n")], Compression::Zstd, &[]);
    push_fixture(&fixture, &registry, "test/concurrent:1");
    let reference = registry.image_ref("test/concurrent:1");
    let cache = TempCache::new();
    let barrier = Arc::new(Barrier::new(3));

    let results: Vec<Result<CachedImage, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let (path, reference) = (cache.path(), reference.as_str());
                s.spawn(move || {
                    let client = client(None);
                    let cache = Cache::open(path).map_err(|e| e.to_string())?;
                    barrier.wait();
                    client
                        .pull(&cache, &image_ref(reference))
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let amd = fixture.platform("linux", "amd64");
    for (n, result) in results.iter().enumerate() {
        let pulled = result.as_ref().unwrap_or_else(|e| {
            panic!(
                "concurrent pull {n} failed: {e}\n--- registry log ---\n{}",
                registry.log()
            )
        });
        assert_image_is(pulled, amd);
    }
    assert_indexed(&cache, &reference, &fixture.digest, media_type::OCI_INDEX);
    assert_eq!(index_names(&cache), std::slice::from_ref(&reference));
    let mut expected = image_blob_names(amd);
    expected.insert(hex_of(&fixture.digest));
    expected.insert(hex_of(&fixture.platform("linux", "arm64").manifest_digest));
    assert_eq!(blob_names(&cache), expected);
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
}

#[test]
fn mirror_serves_pulls_under_the_canonical_name() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello(Compression::Gzip);
    push_fixture(&fixture, &registry, "mirrored/hello:1");
    let cache = TempCache::new();
    let client = Registry::new(linuxkit_oci::RegistryOptions {
        mirrors: vec![Mirror {
            registry: "example.invalid:5000".into(),
            host: registry.addr(),
            plain_http: true,
        }],
        ..options(None)
    })
    .unwrap();

    let reference = "example.invalid:5000/mirrored/hello:1";
    let pulled = pull_ok(&client, &cache, reference, &registry);
    assert_eq!(pulled.name, reference);
    assert_image_is(&pulled, fixture.single());
    assert_indexed(&cache, reference, &fixture.digest, media_type::OCI_MANIFEST);
    assert_has_image_blobs(&cache, &fixture, fixture.single());
    assert_blobs_verify(&cache);
    assert_no_temp_files(&cache);
    assert!(
        cache
            .image(
                &image_ref(&registry.image_ref("mirrored/hello:1")),
                &amd64()
            )
            .unwrap()
            .is_none(),
        "the image must be cached under the name asked for, not the mirror's"
    );
}
