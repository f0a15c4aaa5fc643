//! Smoke tests of the test infrastructure itself: the real registry in each
//! auth mode, the token issuer, fixture layouts and pushing them with
//! skopeo. They use only this crate's plain HTTP client, never a crate
//! under test, so a failure here is the harness's.

use linuxkit_testing::fixture::{
    ARCH_FILE, FIXED_MTIME, compress, decompress, media_type, tar_files,
};
use linuxkit_testing::http::{self, parse_challenge};
use linuxkit_testing::token::jwt_claims;
use linuxkit_testing::{
    Auth, Compression, Fixture, LayerSpec, Platform, TestRegistry, push, push_as_v2s2,
    push_fixture, sha256_digest,
};

fn accept(media_type: &str) -> [(&str, &str); 1] {
    [("Accept", media_type)]
}

fn hello() -> Fixture {
    Fixture::image(
        &[("etc/hello", "hello\n"), ("usr/bin/tool", "#!/bin/sh\n")],
        Compression::Gzip,
        &[("org.mobyproject.config", "{}")],
        Platform::linux_amd64(),
    )
}

#[test]
fn fixtures_are_deterministic() {
    let a = Fixture::multi_arch(&[("a", "1")], Compression::Zstd, &[("k", "v")]);
    let b = Fixture::multi_arch(&[("a", "1")], Compression::Zstd, &[("k", "v")]);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.images, b.images);
    let c = Fixture::multi_arch(&[("a", "2")], Compression::Zstd, &[("k", "v")]);
    assert_ne!(a.digest, c.digest);
    assert_ne!(a.images[0].manifest_digest, a.images[1].manifest_digest);
}

#[test]
fn layer_tars_are_sorted_with_parents_links_and_whiteouts() {
    let layer = LayerSpec::new(Compression::None)
        .file("/usr/bin/tool", "x")
        .file_mode("etc/init", "#!/bin/sh\n", 0o755)
        .symlink("bin", "usr/bin")
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .whiteout("etc/old");
    let tar = layer.tar();
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries: Vec<(String, tar::EntryType, u32, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (path, h.entry_type(), h.mode().unwrap(), h.mtime().unwrap())
        })
        .collect();
    let summary: Vec<(&str, tar::EntryType, u32)> = entries
        .iter()
        .map(|(p, t, m, _)| (p.as_str(), *t, *m))
        .collect();
    assert_eq!(
        summary,
        [
            ("bin", tar::EntryType::Symlink, 0o777),
            ("etc/", tar::EntryType::Directory, 0o755),
            ("etc/.wh.old", tar::EntryType::Regular, 0o644),
            ("etc/init", tar::EntryType::Regular, 0o755),
            ("usr/", tar::EntryType::Directory, 0o755),
            ("usr/bin/", tar::EntryType::Directory, 0o755),
            ("usr/bin/tool", tar::EntryType::Regular, 0o644),
            ("usr/bin/tool2", tar::EntryType::Link, 0o644),
        ]
    );
    assert!(entries.iter().all(|e| e.3 == FIXED_MTIME));
    for compression in [Compression::Gzip, Compression::Zstd] {
        let blob = compress(&tar, compression);
        assert_eq!(
            blob,
            compress(&tar, compression),
            "{compression:?} is not deterministic"
        );
        assert_eq!(decompress(&blob, compression), tar);
    }
}

#[test]
fn anonymous_registry_serves_pushed_image() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello();
    let image = fixture.single();

    let pushed = push(
        &fixture.path(),
        &fixture.tag,
        &registry,
        "test/hello:1.0",
        None,
        false,
    );
    assert_eq!(pushed, fixture.digest);

    let resp = registry.get(
        "/v2/test/hello/manifests/1.0",
        &accept(media_type::OCI_MANIFEST),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(fixture.digest.as_str())
    );
    assert_eq!(resp.header("content-type"), Some(media_type::OCI_MANIFEST));
    assert_eq!(resp.body, image.manifest);

    let config = registry.get(
        &format!("/v2/test/hello/blobs/{}", image.config_digest),
        &[],
    );
    assert_eq!(config.status, 200);
    assert_eq!(
        config.json()["config"]["Labels"]["org.mobyproject.config"],
        "{}"
    );

    let layer = &image.layers[0];
    assert_eq!(layer.media_type, media_type::OCI_LAYER_GZIP);
    let blob = registry.get(&format!("/v2/test/hello/blobs/{}", layer.digest), &[]);
    assert_eq!(blob.status, 200);
    assert_eq!(sha256_digest(&blob.body), layer.digest);
    let files = tar_files(&decompress(&blob.body, Compression::Gzip));
    assert_eq!(files["etc/hello"], b"hello\n");
    assert_eq!(files["usr/bin/tool"], b"#!/bin/sh\n");
}

#[test]
fn zstd_and_uncompressed_layers_keep_their_digests() {
    let registry = TestRegistry::start(Auth::None);
    for (compression, media_type, repo) in [
        (Compression::Zstd, media_type::OCI_LAYER_ZSTD, "test/zstd"),
        (Compression::None, media_type::OCI_LAYER_TAR, "test/plain"),
    ] {
        let fixture = Fixture::image(
            &[("data", "payload")],
            compression,
            &[],
            Platform::linux_amd64(),
        );
        push_fixture(&fixture, &registry, &format!("{repo}:latest"));
        let manifest = registry.get(
            &format!("/v2/{repo}/manifests/latest"),
            &accept(media_type::OCI_MANIFEST),
        );
        assert_eq!(manifest.status, 200);
        assert_eq!(manifest.json()["layers"][0]["mediaType"], media_type);
        let layer = &fixture.single().layers[0];
        let blob = registry.get(&format!("/v2/{repo}/blobs/{}", layer.digest), &[]);
        assert_eq!(sha256_digest(&blob.body), layer.digest);
        assert_eq!(
            tar_files(&decompress(&blob.body, compression))["data"],
            b"payload"
        );
    }
}

#[test]
fn basic_auth_registry_rejects_anonymous_and_accepts_credentials() {
    let registry = TestRegistry::start(Auth::basic("alice", "s3cret"));
    let anonymous = http::get(&registry.url("/v2/"), &[]);
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("www-authenticate").expect("challenge");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");

    let wrong = http::get(
        &registry.url("/v2/"),
        &[("Authorization", &http::basic_auth("alice", "nope"))],
    );
    assert_eq!(wrong.status, 401);
    let right = http::get(
        &registry.url("/v2/"),
        &[("Authorization", &http::basic_auth("alice", "s3cret"))],
    );
    assert_eq!(right.status, 200);

    let fixture = hello();
    push(
        &fixture.path(),
        &fixture.tag,
        &registry,
        "private/hello:1",
        Some(("alice", "s3cret")),
        false,
    );
    let path = "/v2/private/hello/manifests/1";
    assert_eq!(
        http::get(&registry.url(path), &accept(media_type::OCI_MANIFEST)).status,
        401
    );
    let resp = registry.get(path, &accept(media_type::OCI_MANIFEST));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(fixture.digest.as_str())
    );
}

#[test]
fn token_auth_registry_challenges_and_accepts_issued_tokens() {
    let registry = TestRegistry::start(Auth::token("bob", "hunter2"));
    let issuer = registry.token_issuer().unwrap();

    let base = http::get(&registry.url("/v2/"), &[]);
    assert_eq!(base.status, 401);
    let (scheme, params) = parse_challenge(base.header("www-authenticate").expect("challenge"));
    assert_eq!(scheme, "Bearer");
    let param = |params: &[(String, String)], key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param(&params, "realm").as_deref(), Some(issuer.realm()));
    assert_eq!(param(&params, "service").as_deref(), Some(issuer.service()));

    // skopeo goes through the whole token flow to push.
    let fixture = hello();
    push(
        &fixture.path(),
        &fixture.tag,
        &registry,
        "team/app:v1",
        Some(("bob", "hunter2")),
        false,
    );
    let requests = issuer.requests();
    assert!(requests.iter().all(|r| r.authorized), "{requests:?}");
    assert!(
        requests
            .iter()
            .flat_map(|r| &r.scopes)
            .any(|s| s.starts_with("repository:team/app:") && s.contains("push")),
        "{requests:?}"
    );

    let path = "/v2/team/app/manifests/v1";
    let anonymous = http::get(&registry.url(path), &accept(media_type::OCI_MANIFEST));
    assert_eq!(anonymous.status, 401);
    let (_, params) = parse_challenge(anonymous.header("www-authenticate").unwrap());
    assert_eq!(
        param(&params, "scope").as_deref(),
        Some("repository:team/app:pull")
    );

    // The issuer wants the right credentials.
    let token_url = format!(
        "{}?service={}&scope=repository:team/app:pull",
        issuer.realm(),
        issuer.service()
    );
    assert_eq!(http::get(&token_url, &[]).status, 401);
    assert_eq!(
        http::get(
            &token_url,
            &[("Authorization", &http::basic_auth("bob", "wrong"))]
        )
        .status,
        401
    );
    let issued = http::get(
        &token_url,
        &[("Authorization", &http::basic_auth("bob", "hunter2"))],
    );
    assert_eq!(issued.status, 200);
    let body = issued.json();
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token"], body["access_token"]);
    let token = body["token"].as_str().unwrap();
    let claims = jwt_claims(token);
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["aud"], issuer.service());
    assert_eq!(claims["access"][0]["name"], "team/app");
    assert_eq!(claims["access"][0]["actions"][0], "pull");

    let authorized = http::get(
        &registry.url(path),
        &[
            ("Accept", media_type::OCI_MANIFEST),
            ("Authorization", &http::bearer_auth(token)),
        ],
    );
    assert_eq!(authorized.status, 200, "{}", authorized.text());
    assert_eq!(
        authorized.header("docker-content-digest"),
        Some(fixture.digest.as_str())
    );

    // A token for another repository does not open this one.
    let other = issuer.mint("bob", &["repository:team/other:pull"]);
    let denied = http::get(
        &registry.url(path),
        &[("Authorization", &http::bearer_auth(&other))],
    );
    assert_eq!(denied.status, 401);

    // The convenience client does the dance itself.
    assert_eq!(
        registry.get(path, &accept(media_type::OCI_MANIFEST)).status,
        200
    );
}

#[test]
fn multi_arch_push_keeps_index_and_both_manifests() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = Fixture::multi_arch(&[("etc/common", "same")], Compression::Gzip, &[]);
    push_fixture(&fixture, &registry, "test/multi:latest");

    let index = registry.get(
        "/v2/test/multi/manifests/latest",
        &accept(media_type::OCI_INDEX),
    );
    assert_eq!(index.status, 200);
    assert_eq!(index.header("content-type"), Some(media_type::OCI_INDEX));
    assert_eq!(
        index.header("docker-content-digest"),
        Some(fixture.digest.as_str())
    );
    assert_eq!(Some(&index.body), fixture.index.as_ref());
    let listed: Vec<(String, String)> = index.json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().into(),
                m["digest"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 2);

    for (arch, digest) in listed {
        let image = fixture.platform("linux", &arch);
        assert_eq!(digest, image.manifest_digest);
        let manifest = registry.get(
            &format!("/v2/test/multi/manifests/{digest}"),
            &accept(media_type::OCI_MANIFEST),
        );
        assert_eq!(manifest.status, 200);
        assert_eq!(manifest.body, image.manifest);
        let layer = &image.layers[0];
        let blob = registry.get(&format!("/v2/test/multi/blobs/{}", layer.digest), &[]);
        let files = tar_files(&decompress(&blob.body, Compression::Gzip));
        assert_eq!(files[ARCH_FILE], format!("{arch}\n").as_bytes());
        assert_eq!(files["etc/common"], b"same");
    }
}

#[test]
fn docker_schema2_images_are_served_with_docker_media_types() {
    let registry = TestRegistry::start(Auth::None);
    let single = Fixture::docker_image(&[("hello", "docker")], &[], Platform::linux_amd64());
    push_fixture(&single, &registry, "test/docker:single");
    let resp = registry.get(
        "/v2/test/docker/manifests/single",
        &accept(media_type::DOCKER_MANIFEST),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some(media_type::DOCKER_MANIFEST)
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(single.digest.as_str())
    );
    let manifest = resp.json();
    assert_eq!(manifest["config"]["mediaType"], media_type::DOCKER_CONFIG);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        media_type::DOCKER_LAYER_GZIP
    );

    let multi = Fixture::docker_multi_arch(&[("hello", "docker")], &[]);
    push_fixture(&multi, &registry, "test/docker:multi");
    let resp = registry.get(
        "/v2/test/docker/manifests/multi",
        &[("Accept", media_type::ACCEPT_ALL)],
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some(media_type::DOCKER_MANIFEST_LIST)
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(multi.digest.as_str())
    );
    let arm = multi.platform("linux", "arm64");
    let resp = registry.get(
        &format!("/v2/test/docker/manifests/{}", arm.manifest_digest),
        &accept(media_type::DOCKER_MANIFEST),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some(media_type::DOCKER_MANIFEST)
    );
    assert_eq!(resp.body, arm.manifest);

    // skopeo can also convert an OCI fixture on the way (new digests).
    let oci = Fixture::multi_arch(&[("hello", "oci")], Compression::Gzip, &[]);
    let converted = push_as_v2s2(
        &oci.path(),
        &oci.tag,
        &registry,
        "test/docker:converted",
        None,
        true,
    );
    assert_ne!(converted, oci.digest);
    let resp = registry.get(
        "/v2/test/docker/manifests/converted",
        &[("Accept", media_type::ACCEPT_ALL)],
    );
    assert_eq!(
        resp.header("content-type"),
        Some(media_type::DOCKER_MANIFEST_LIST)
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(converted.as_str())
    );
    let first = resp.json()["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = registry.get(
        &format!("/v2/test/docker/manifests/{first}"),
        &accept(media_type::DOCKER_MANIFEST),
    );
    assert_eq!(
        resp.json()["layers"][0]["mediaType"],
        media_type::DOCKER_LAYER_GZIP
    );
    assert_eq!(
        resp.json()["layers"][0]["digest"],
        oci.images[0].layers[0].digest.as_str()
    );
}

#[test]
fn corrupted_blob_is_served_with_wrong_digest() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = hello();
    push_fixture(&fixture, &registry, "test/corrupt:1");
    let layer = &fixture.single().layers[0];
    let path = registry.blob_data_path(&layer.digest);
    assert_eq!(std::fs::read(&path).unwrap(), fixture.blob(&layer.digest));

    registry.corrupt_blob(&layer.digest);
    let blob = registry.get(&format!("/v2/test/corrupt/blobs/{}", layer.digest), &[]);
    assert_eq!(blob.status, 200);
    assert_eq!(blob.body.len() as u64, layer.size);
    assert_ne!(sha256_digest(&blob.body), layer.digest);
}

#[test]
fn stop_and_restart_keep_port_storage_and_auth() {
    let mut registry = TestRegistry::start(Auth::basic("carol", "pw"));
    let fixture = hello();
    push_fixture(&fixture, &registry, "test/persist:1");
    let addr = registry.addr();

    registry.stop();
    assert!(!registry.is_running());
    assert!(
        http::try_get(&registry.url("/v2/"), &[]).is_err(),
        "registry still answers after stop"
    );

    registry.restart();
    assert!(registry.is_running());
    assert_eq!(registry.addr(), addr);
    assert_eq!(http::get(&registry.url("/v2/"), &[]).status, 401);
    let resp = registry.get(
        "/v2/test/persist/manifests/1",
        &accept(media_type::OCI_MANIFEST),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(fixture.digest.as_str())
    );
}
