//! Integration tests of the cache on images pulled from a real registry:
//! export and import (OCI and Docker archives, determinism, corrupted
//! archives) and maintenance (`remove`, `gc`, `clean`, listing order).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;

use common::*;
use linuxkit_oci::{
    CONTAINERD_NAME_ANNOTATION, Cache, CachedImage, ExportFormat, REF_NAME_ANNOTATION, Registry,
    media_type,
};
use linuxkit_testing::{
    Auth, Compression, Fixture, Format, ImageSpec, LayerSpec, Platform, TestRegistry, push_fixture,
    sha256_digest,
};

fn pull_ok(client: &Registry, cache: &Cache, reference: &str) -> CachedImage {
    client
        .pull(cache, &image_ref(reference))
        .unwrap_or_else(|e| panic!("pull {reference} failed: {e}"))
}

fn export(cache: &Cache, image: &CachedImage, name: &str, format: ExportFormat) -> Vec<u8> {
    let mut out = Vec::new();
    cache
        .export(image, name, format, &mut out)
        .unwrap_or_else(|e| panic!("export {name} as {format:?}: {e}"));
    out
}

/// The regular files of a tar, path → contents, in archive order.
fn tar_entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .expect("read the archive")
        .map(|e| {
            let mut e = e.expect("archive entry");
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// The same tar with the last byte of entry `path` flipped (same size).
fn corrupt_entry(tar: &[u8], path: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(tar);
    let mut builder = tar::Builder::new(Vec::new());
    let mut found = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let entry_path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if entry_path == path {
            *data.last_mut().unwrap() ^= 0xff;
            found = true;
        }
        builder.append(&header, data.as_slice()).unwrap();
    }
    assert!(found, "no entry {path} in the archive");
    builder.into_inner().unwrap()
}

/// Checks an exported archive: layout files, blobs named by their digest,
/// the index naming `name`, and `manifest.json` exactly for Docker.
fn assert_archive(tar: &[u8], image: &CachedImage, name: &str, format: ExportFormat) {
    let entries = tar_entries(tar);
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "archive entries are not sorted");
    let files: BTreeMap<&str, &[u8]> = entries
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();

    let blob = |d: &str| format!("blobs/sha256/{}", hex_of(d));
    let mut expected: Vec<String> = vec!["index.json".into(), "oci-layout".into()];
    expected.push(blob(image.manifest_digest.as_str()));
    expected.push(blob(&image.manifest.config.digest));
    expected.extend(image.manifest.layers.iter().map(|l| blob(&l.digest)));
    if format == ExportFormat::Docker {
        expected.push("manifest.json".into());
    }
    expected.sort();
    expected.dedup();
    assert_eq!(sorted, expected, "{format:?} archive entries of {name}");
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{path}");
        }
    }

    let layout: serde_json::Value = serde_json::from_slice(files["oci-layout"]).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value = serde_json::from_slice(files["index.json"]).unwrap();
    // As the reference's export (go-containerregistry's empty index).
    assert_eq!(index["schemaVersion"], 2, "{index}");
    assert_eq!(index["mediaType"], media_type::OCI_INDEX, "{index}");
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["digest"], image.manifest_digest.as_str());
    assert_eq!(manifests[0]["annotations"][REF_NAME_ANNOTATION], name);
    assert_eq!(
        manifests[0]["annotations"][CONTAINERD_NAME_ANNOTATION],
        name
    );

    if format == ExportFormat::Docker {
        let m: serde_json::Value = serde_json::from_slice(files["manifest.json"]).unwrap();
        let layers: Vec<String> = image
            .manifest
            .layers
            .iter()
            .map(|l| blob(&l.digest))
            .collect();
        assert_eq!(
            m,
            serde_json::json!([{
                "Config": blob(&image.manifest.config.digest),
                "RepoTags": [name],
                "Layers": layers,
            }]),
            "manifest.json for docker load"
        );
    }
}

#[test]
fn export_import_round_trip_in_oci_and_docker_formats() {
    let registry = TestRegistry::start(Auth::None);
    let single = Fixture::image(
        &[("etc/hello", "hello\n")],
        Compression::Gzip,
        &[("org.mobyproject.config", "{}")],
        Platform::linux_amd64(),
    );
    push_fixture(&single, &registry, "test/hello:1");
    let multi = Fixture::multi_arch(&[("etc/common", "x\n")], Compression::Zstd, &[]);
    push_fixture(&multi, &registry, "test/multi:1");
    let cache = TempCache::new();
    let hello = pull_ok(&client(None), &cache, &registry.image_ref("test/hello:1"));
    let arm = pull_ok(
        &client_for(arm64(), None),
        &cache,
        &registry.image_ref("test/multi:1"),
    );

    for (image, fixture, info, platform) in [
        (&hello, &single, single.single(), amd64()),
        (&arm, &multi, multi.platform("linux", "arm64"), arm64()),
    ] {
        for format in [ExportFormat::Oci, ExportFormat::Docker] {
            let name = "example.org/exported/image:1";
            let first = export(&cache, image, name, format);
            let second = export(&cache, image, name, format);
            assert!(
                first == second,
                "exporting {} as {format:?} twice gave different bytes",
                image.name
            );
            assert_archive(&first, image, name, format);

            let fresh = TempCache::new();
            let names = fresh
                .import(&mut first.as_slice())
                .unwrap_or_else(|e| panic!("import the {format:?} archive: {e}"));
            assert_eq!(names, [name]);
            assert_indexed(
                &fresh,
                name,
                image.manifest_digest.as_str(),
                media_type::OCI_MANIFEST,
            );
            let imported = fresh
                .image(&image_ref(name), &platform)
                .unwrap()
                .unwrap_or_else(|| panic!("{name} does not resolve after import"));
            assert_eq!(imported.manifest_digest, image.manifest_digest);
            assert_image_is(&imported, info);
            assert_eq!(blob_names(&fresh), image_blob_names(info));
            assert_has_image_blobs(&fresh, fixture, info);
            assert_blobs_verify(&fresh);
            assert_no_temp_files(&fresh);
        }
    }

    // Import canonicalises short names, as a pull would.
    let tar = export(&cache, &hello, "hello:1", ExportFormat::Oci);
    let fresh = TempCache::new();
    assert_eq!(
        fresh.import(&mut tar.as_slice()).unwrap(),
        ["docker.io/library/hello:1"]
    );
    assert!(
        fresh
            .image(&image_ref("hello:1"), &amd64())
            .unwrap()
            .is_some()
    );
}

#[test]
fn import_of_a_corrupted_archive_names_the_blob_and_caches_nothing() {
    let registry = TestRegistry::start(Auth::None);
    let fixture = Fixture::image(
        &[("etc/hello", "hello\n")],
        Compression::Gzip,
        &[],
        Platform::linux_amd64(),
    );
    push_fixture(&fixture, &registry, "test/hello:1");
    let cache = TempCache::new();
    let image = pull_ok(&client(None), &cache, &registry.image_ref("test/hello:1"));
    let layer = &fixture.single().layers[0].digest;
    let name = "example.org/corrupt/image:1";

    for format in [ExportFormat::Oci, ExportFormat::Docker] {
        let tar = export(&cache, &image, name, format);
        let bad = corrupt_entry(&tar, &format!("blobs/sha256/{}", hex_of(layer)));
        let fresh = TempCache::new();
        let err = fresh
            .import(&mut bad.as_slice())
            .expect_err("importing a corrupted archive succeeded");
        let msg = err.to_string();
        assert!(
            msg.contains(layer.as_str()) && msg.contains("failed verification"),
            "the error should name the corrupted blob {layer}: {msg}"
        );
        assert_not_indexed(&fresh, name);
        assert!(fresh.images().unwrap().is_empty());
        assert!(
            !blob_names(&fresh).contains(&hex_of(layer)),
            "the corrupted blob was cached"
        );
        assert_blobs_verify(&fresh);
        assert_no_temp_files(&fresh);
    }
}

#[test]
fn remove_gc_and_clean_keep_what_is_still_used() {
    let registry = TestRegistry::start(Auth::None);
    // a and b share their first layer; c shares nothing.
    let shared = LayerSpec::files(Compression::Gzip, &[("etc/shared", "shared\n")]);
    let build = |label: &str, own: Option<&str>| {
        let mut spec = ImageSpec::new(Platform::linux_amd64())
            .label("image", label)
            .layer(shared.clone());
        if let Some(file) = own {
            spec = spec.layer(LayerSpec::files(Compression::Gzip, &[(file, label)]));
        }
        Fixture::build(Format::Oci, "latest", &[spec], false)
    };
    let a = build("a", Some("etc/only-a"));
    let b = build("b", None);
    let c = Fixture::image(
        &[("etc/c", "c")],
        Compression::Zstd,
        &[],
        Platform::linux_amd64(),
    );
    assert_eq!(a.single().layers[0].digest, b.single().layers[0].digest);
    push_fixture(&a, &registry, "zeta/a:1");
    push_fixture(&b, &registry, "alpha/b:1");
    push_fixture(&c, &registry, "mid/c:1");
    let (name_a, name_b, name_c) = (
        registry.image_ref("zeta/a:1"),
        registry.image_ref("alpha/b:1"),
        registry.image_ref("mid/c:1"),
    );

    let cache = TempCache::new();
    let client = client(None);
    for name in [&name_a, &name_c, &name_b] {
        pull_ok(&client, &cache, name);
    }
    let sorted = vec![name_b.clone(), name_c.clone(), name_a.clone()];
    let listed: Vec<String> = cache
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(listed, sorted, "images() is not sorted by name");
    assert_eq!(
        index_names(&cache),
        sorted,
        "index.json is not sorted by name"
    );
    let all = [&a, &b, &c]
        .iter()
        .flat_map(|f| image_blob_names(f.single()))
        .collect();
    assert_eq!(blob_names(&cache), all);

    // gc of a consistent cache removes nothing.
    assert_eq!(cache.gc(&cache.lock().unwrap()).unwrap(), 0);

    // Removing a keeps the layer it shares with b.
    let missing = cache
        .remove(&[name_a.clone(), "docker.io/library/absent:1".into()])
        .unwrap();
    assert_eq!(missing, ["docker.io/library/absent:1"]);
    assert_eq!(index_names(&cache), [name_b.clone(), name_c.clone()]);
    assert!(
        cache
            .image(&image_ref(&name_a), &amd64())
            .unwrap()
            .is_none()
    );
    let kept: std::collections::BTreeSet<String> = [&b, &c]
        .iter()
        .flat_map(|f| image_blob_names(f.single()))
        .collect();
    assert_eq!(
        blob_names(&cache),
        kept,
        "after removing a, exactly b's and c's blobs should remain"
    );
    assert!(kept.contains(&hex_of(&a.single().layers[0].digest)));
    for (name, fixture) in [(&name_b, &b), (&name_c, &c)] {
        let cached = cache
            .image(&image_ref(name), &amd64())
            .unwrap()
            .unwrap_or_else(|| panic!("{name} no longer resolves after removing a"));
        assert_image_is(&cached, fixture.single());
    }

    // gc removes unreferenced blobs and dead processes' temporary files,
    // and keeps this process's temporary files (they may be in use).
    let junk = cache.write_blob(b"nobody refers to this").unwrap();
    let tmp = cache.root().join(".tmp");
    fs::write(tmp.join("not-a-pid"), b"x").unwrap();
    let (own, _file) = cache.temp_file().unwrap();
    let removed = cache.gc(&cache.lock().unwrap()).unwrap();
    assert_eq!(
        removed, 2,
        "gc should remove the junk blob and the stray temp file"
    );
    assert!(!cache.has_blob(&junk));
    assert_eq!(temp_files(&cache), std::slice::from_ref(&own));
    fs::remove_file(own).unwrap();
    assert_eq!(blob_names(&cache), kept);

    // clean empties the cache, which stays usable.
    cache.clean().unwrap();
    assert!(cache.images().unwrap().is_empty());
    assert!(index_names(&cache).is_empty());
    assert!(blob_names(&cache).is_empty(), "clean left blobs");
    assert_no_temp_files(&cache);
    let reopened = Cache::open(cache.path()).unwrap();
    assert!(reopened.index().unwrap().manifests.is_empty());
    let again = pull_ok(&client, &reopened, &name_c);
    assert_image_is(&again, c.single());
}

/// A new cache's `index.json` is the reference's empty index: schema 2,
/// the OCI index media type, no manifests; `clean` leaves the same.
#[test]
fn a_new_or_cleaned_cache_index_states_its_media_type() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let read = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap()
    };
    let want = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": []
    });
    assert_eq!(read(), want);
    cache.clean().unwrap();
    assert_eq!(read(), want);
}
