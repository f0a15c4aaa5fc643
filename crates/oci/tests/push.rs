//! Integration tests of `Registry::push` against real registries: copying a
//! pulled image to another repository and to another registry (basic and
//! token auth), multi-platform indexes (complete and pulled for one
//! platform only), and pulling the pushed image back.

mod common;

use common::*;
use linuxkit_oci::{Cache, CachedImage, Error, Registry, media_type};
use linuxkit_testing::fixture::media_type::ACCEPT_ALL;
use linuxkit_testing::{
    Auth, Compression, Fixture, Platform, TestRegistry, push_fixture, sha256_digest,
};

fn hello() -> Fixture {
    Fixture::image(
        &[("etc/hello", "hello\n")],
        Compression::Gzip,
        &[("org.mobyproject.config", "{}")],
        Platform::linux_amd64(),
    )
}

fn pull_ok(client: &Registry, cache: &Cache, reference: &str) -> CachedImage {
    client
        .pull(cache, &image_ref(reference))
        .unwrap_or_else(|e| panic!("pull {reference} failed: {e}"))
}

fn push_ok(client: &Registry, cache: &Cache, local: &str, remote: &str, registry: &TestRegistry) {
    client
        .push(cache, &image_ref(local), &image_ref(remote))
        .unwrap_or_else(|e| {
            panic!(
                "push {local} to {remote} failed: {e}\n--- registry log ---\n{}",
                registry.log()
            )
        });
}

/// Asserts that `registry` serves `repo:reference` as `bytes` with `digest`
/// and `content_type`.
fn assert_served_manifest(
    registry: &TestRegistry,
    repo: &str,
    reference: &str,
    digest: &str,
    content_type: &str,
    bytes: &[u8],
) {
    let resp = registry.get(
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", ACCEPT_ALL)],
    );
    assert_eq!(
        resp.status,
        200,
        "{repo}:{reference} is not in the registry: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(digest),
        "digest of {repo}:{reference}"
    );
    assert_eq!(
        resp.header("content-type"),
        Some(content_type),
        "media type of {repo}:{reference}"
    );
    assert!(
        resp.body == bytes,
        "{repo}:{reference} is served with other bytes than were pushed"
    );
}

/// Asserts that `registry` has every blob of `image` in `repo`, intact.
fn assert_served_blobs(registry: &TestRegistry, repo: &str, image: &CachedImage) {
    for d in std::iter::once(&image.manifest.config).chain(&image.manifest.layers) {
        let resp = registry.get(&format!("/v2/{repo}/blobs/{}", d.digest), &[]);
        assert_eq!(resp.status, 200, "blob {} missing in {repo}", d.digest);
        assert_eq!(
            sha256_digest(&resp.body),
            d.digest,
            "blob {} in {repo}",
            d.digest
        );
    }
}

#[test]
fn push_copies_a_pulled_image_to_another_repository_and_registry() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello();
    let info = fixture.single();
    push_fixture(&fixture, &registry, "src/hello:1");
    let cache = TempCache::new();
    let anonymous = client(None);
    let local = registry.image_ref("src/hello:1");
    let pulled = pull_ok(&anonymous, &cache, &local);

    // Same registry, another repository and tag.
    push_ok(
        &anonymous,
        &cache,
        &local,
        &registry.image_ref("copy/hello:2"),
        &registry,
    );
    assert_served_manifest(
        &registry,
        "copy/hello",
        "2",
        &fixture.digest,
        media_type::OCI_MANIFEST,
        &info.manifest,
    );
    assert_served_blobs(&registry, "copy/hello", &pulled);

    // Another registry, behind basic auth: refused without credentials,
    // accepted with them.
    let private = TestRegistry::start(Auth::basic("dave", "pw"));
    let remote = private.image_ref("team/hello:1");
    let err = anonymous
        .push(&cache, &image_ref(&local), &image_ref(&remote))
        .expect_err("an anonymous push to a basic-auth registry succeeded");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot push") && msg.to_lowercase().contains("authentication"),
        "an anonymous push should fail with an authentication error: {msg}"
    );
    assert_eq!(
        private
            .get("/v2/team/hello/manifests/1", &[("Accept", ACCEPT_ALL)])
            .status,
        404,
        "the failed push created the tag"
    );

    let config_dir = tempfile::tempdir().unwrap();
    let config = docker_config(config_dir.path(), &[(&private.addr(), "dave", "pw")]);
    let authed = client(Some(config));
    push_ok(&authed, &cache, &local, &remote, &private);
    assert_served_manifest(
        &private,
        "team/hello",
        "1",
        &fixture.digest,
        media_type::OCI_MANIFEST,
        &info.manifest,
    );
    assert_served_blobs(&private, "team/hello", &pulled);

    // What was pushed pulls back as the same image.
    let fresh = TempCache::new();
    let again = pull_ok(&authed, &fresh, &remote);
    assert_image_is(&again, info);
    assert_eq!(
        (&again.top.digest, &again.top.media_type, again.top.size),
        (&pulled.top.digest, &pulled.top.media_type, pulled.top.size)
    );
    assert_eq!(again.name, remote);
    assert_eq!(blob_names(&fresh), blob_names(&cache));
    assert_has_image_blobs(&fresh, &fixture, info);
    assert_blobs_verify(&fresh);
}

#[test]
fn push_to_a_token_registry_asks_for_push_scope() {
    let source = TestRegistry::start(Auth::None);
    let fixture = Fixture::docker_image(&[("hello", "docker")], &[], Platform::linux_amd64());
    push_fixture(&fixture, &source, "src/docker:1");
    let cache = TempCache::new();
    let local = source.image_ref("src/docker:1");
    pull_ok(&client(None), &cache, &local);

    let registry = TestRegistry::start(Auth::token("erin", "pw2"));
    let config_dir = tempfile::tempdir().unwrap();
    let config = docker_config(config_dir.path(), &[(&registry.addr(), "erin", "pw2")]);
    let remote = registry.image_ref("team/docker:1");
    push_ok(&client(Some(config)), &cache, &local, &remote, &registry);

    let requests = registry.token_issuer().unwrap().requests();
    assert!(
        requests.iter().any(|r| r.authorized
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:team/docker:") && s.contains("push"))),
        "the client never asked for a push scope on team/docker: {requests:#?}"
    );
    // The Docker media type survives the copy.
    assert_served_manifest(
        &registry,
        "team/docker",
        "1",
        &fixture.digest,
        media_type::DOCKER_MANIFEST,
        &fixture.single().manifest,
    );
}

#[test]
fn push_of_a_multi_arch_image_needs_every_platform() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = Fixture::multi_arch(&[("etc/common", "x\n")], Compression::Gzip, &[]);
    push_fixture(&fixture, &registry, "src/multi:1");
    let amd = fixture.platform("linux", "amd64");
    let arm = fixture.platform("linux", "arm64");
    let local = registry.image_ref("src/multi:1");
    let remote = registry.image_ref("dst/multi:1");
    let cache = TempCache::new();
    let client = client(None);

    // Pulled for arm64 only: the amd64 manifest is kept, its config and
    // layers are not.
    pull_ok(&client_for(arm64(), None), &cache, &local);
    let err = client
        .push(&cache, &image_ref(&local), &image_ref(&remote))
        .expect_err("pushing an index with a missing platform's blobs succeeded");
    let msg = err.to_string();
    assert!(
        msg.contains(&amd.config_digest)
            && msg.contains(&amd.manifest_digest)
            && msg.contains("not in the cache"),
        "the error should name the missing amd64 config {} of manifest {}: {msg}",
        amd.config_digest,
        amd.manifest_digest
    );
    assert_eq!(
        registry
            .get("/v2/dst/multi/manifests/1", &[("Accept", ACCEPT_ALL)])
            .status,
        404,
        "a failed push must not create the tag"
    );

    // An image that is not cached at all.
    let err = client
        .push(
            &cache,
            &image_ref(&registry.image_ref("src/absent:1")),
            &image_ref(&remote),
        )
        .expect_err("pushing an uncached image succeeded");
    assert!(matches!(err, Error::NotCached { .. }), "{err}");

    // With both platforms cached the whole index goes.
    pull_ok(&client, &cache, &local);
    push_ok(&client, &cache, &local, &remote, &registry);
    assert_served_manifest(
        &registry,
        "dst/multi",
        "1",
        &fixture.digest,
        media_type::OCI_INDEX,
        fixture.index.as_ref().unwrap(),
    );
    for image in [amd, arm] {
        assert_served_manifest(
            &registry,
            "dst/multi",
            &image.manifest_digest,
            &image.manifest_digest,
            media_type::OCI_MANIFEST,
            &image.manifest,
        );
    }

    let fresh = TempCache::new();
    for (platform, info) in [(arm64(), arm), (amd64(), amd)] {
        let pulled = pull_ok(&client_for(platform, None), &fresh, &remote);
        assert_image_is(&pulled, info);
        assert_eq!(pulled.top.digest, fixture.digest);
    }
    assert_eq!(blob_names(&fresh), blob_names(&cache));
    assert_blobs_verify(&fresh);
}
