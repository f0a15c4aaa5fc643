//! The image writer: a package's one layer, its OCI image config and its
//! manifest, written into the cache reproducibly.
//!
//! Nothing here depends on when or where the image is built: the layer is
//! gzipped with a fixed header, the config has no `created` time, and the
//! manifest holds nothing but digests and sizes, so the same layer and
//! `build.yml` give the same manifest digest on every machine. The config
//! carries `build.yml`'s `config:` as the [`CONFIG_LABEL`] label, which is
//! what `linuxkit build` reads back.
//!
//! A package built for several platforms is one tag naming an OCI index of
//! its platform manifests ([`tag_platforms`]), as the reference's `pkg
//! build` leaves it: building another platform later adds it to the index,
//! building one again replaces its entry. The entries are sorted by
//! platform, so the index digest depends only on the manifests in it, not
//! on the order they were built in. Each platform manifest of a declarative
//! package comes with its attestation manifest (its SBOM and provenance,
//! [`crate::sbom`]), listed after the platform manifests as BuildKit lists
//! them, so such a tag always names an index; the platform manifest's
//! digest does not change by it (the boot loader image is still found by
//! the manifest digest `build` pins: the cache resolves a digest inside
//! the indexes it holds). A tag with a single manifest and no attestation
//! (a Dockerfile package) names the manifest directly.

use std::collections::BTreeMap;
use std::io::Write;

use linuxkit_base::Arch;
use linuxkit_oci::attestation::attests;
use linuxkit_oci::{Cache, Descriptor, Digest, ImageRef, Index, Manifest, Platform, media_type};
use linuxkit_rootfs::CONFIG_LABEL;
use serde::Serialize;

use crate::Package;
use crate::error::BuildError;

/// The media type of the (single) layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Gzips `tar` and stores it with its image config and manifest in `cache`;
/// returns the manifest's descriptor (not yet tagged).
pub fn store_image(
    cache: &Cache,
    pkg: &Package,
    arch: Arch,
    tar: &[u8],
) -> Result<Descriptor, BuildError> {
    store_layer(cache, arch, tar, |diff_id| image_config(pkg, arch, diff_id))
}

/// Gzips `tar` and stores it with the image config `config` makes of its
/// diff ID, and their manifest, in `cache`; returns the manifest's
/// descriptor (not yet tagged). The one writer of our images' blobs, for
/// declarative and Dockerfile packages alike.
pub fn store_layer(
    cache: &Cache,
    arch: Arch,
    tar: &[u8],
    config: impl FnOnce(&Digest) -> Result<Vec<u8>, BuildError>,
) -> Result<Descriptor, BuildError> {
    let diff_id = Digest::of(tar);
    let gz = gzip(tar);
    let layer_digest = cache.write_blob(&gz)?;
    let config = config(&diff_id)?;
    let config_digest = cache.write_blob(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: Descriptor {
            media_type: media_type::OCI_CONFIG.into(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: vec![Descriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: layer_digest.to_string(),
            size: gz.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        }],
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let digest = cache.write_blob(&bytes)?;
    Ok(Descriptor {
        media_type: media_type::OCI_MANIFEST.into(),
        digest: digest.to_string(),
        size: bytes.len() as u64,
        platform: Some(Platform::linux(arch)),
        annotations: BTreeMap::new(),
    })
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    architecture: &'a str,
    os: &'a str,
    config: ExecConfig<'a>,
    rootfs: RootFs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// The OCI image config: platform, runtime defaults from `build.yml`, the
/// `org.mobyproject.config` label, the layer's diff ID. No `created` time,
/// so it depends on nothing but its inputs.
pub fn image_config(pkg: &Package, arch: Arch, diff_id: &Digest) -> Result<Vec<u8>, BuildError> {
    let info = pkg.build_yml();
    let mut labels = info.labels.clone();
    if let Some(c) = &info.config {
        let json = serde_json::to_string(c).map_err(|e| BuildError::Layer {
            what: pkg.build_yml_path().display().to_string(),
            message: format!("cannot encode `config`: {e}"),
        })?;
        labels.insert(CONFIG_LABEL.to_string(), json);
    }
    let config = ConfigJson {
        architecture: arch.oci_architecture(),
        os: "linux",
        config: ExecConfig {
            entrypoint: info.entrypoint.as_deref(),
            cmd: info.cmd.as_deref(),
            env: info.env.as_deref(),
            working_dir: info.workdir.as_deref(),
            labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![diff_id.to_string()],
        },
    };
    Ok(serde_json::to_vec(&config).expect("config serializes"))
}

/// The platform manifests `top` (what a tag names) stands for: an index's
/// entries, or the manifest itself with its platform (the descriptor's,
/// else its config's `os` and `architecture`; `None` when neither says).
pub fn platform_entries(cache: &Cache, top: &Descriptor) -> Result<Vec<Descriptor>, BuildError> {
    let digest = Digest::parse(&top.digest)?;
    if media_type::is_index(&top.media_type) {
        let bytes = cache.read_blob(&digest)?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| BuildError::Layer {
            what: top.digest.clone(),
            message: format!("the cached index is not valid JSON: {e}"),
        })?;
        return Ok(index.manifests);
    }
    let mut desc = top.clone();
    desc.annotations.clear();
    if desc.platform.is_none() && cache.has_blob(&digest) {
        desc.platform = serde_json::from_slice::<Manifest>(&cache.read_blob(&digest)?)
            .ok()
            .and_then(|m| Digest::parse(&m.config.digest).ok())
            .filter(|d| cache.has_blob(d))
            .and_then(|d| cache.read_blob(&d).ok())
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
            .and_then(|c| {
                let field = |k: &str| c.get(k)?.as_str().map(str::to_string);
                Some(Platform {
                    os: field("os")?,
                    architecture: field("architecture")?,
                    variant: field("variant"),
                })
            });
    }
    Ok(vec![desc])
}

/// Names the platform manifests `built` (each with its platform, and
/// their attestation manifests) as `image` in the cache, keeping the
/// platforms the tag already has and replacing those built again (and the
/// attestations of what they replace). Returns what the tag names now: the
/// manifest if it is all there is (one platform without attestations),
/// else an index of all of them, sorted by platform, attestations last.
pub fn tag_platforms(
    cache: &Cache,
    image: &ImageRef,
    built: &[Descriptor],
) -> Result<Descriptor, BuildError> {
    cache.update_tag(&image.canonical(), |current| {
        let old = match current {
            Some(top) => platform_entries(cache, &top)?,
            None => Vec::new(),
        };
        merge_platforms(cache, &old, built)
    })
}

/// What a tag whose platform manifests are `old` names once `built` are
/// added: see [`tag_platforms`]. `built` may hold attestation manifests
/// (of the manifests built with them). Writes the index blob, if there is
/// one. Attestations come after every platform manifest, in their
/// manifests' order, as BuildKit writes them.
fn merge_platforms(
    cache: &Cache,
    old: &[Descriptor],
    built: &[Descriptor],
) -> Result<Descriptor, BuildError> {
    let is_att = |d: &Descriptor| attests(d).is_some();
    let same = |a: &Descriptor, b: &Descriptor| match (&a.platform, &b.platform) {
        (Some(x), Some(y)) if !is_att(a) && !is_att(b) => {
            x.os == y.os && x.architecture == y.architecture && x.variant == y.variant
        }
        _ => false,
    };
    let mut entries: Vec<Descriptor> = old
        .iter()
        .filter(|o| !is_att(o) && !built.iter().any(|b| same(o, b)))
        .cloned()
        .chain(built.iter().filter(|b| !is_att(b)).cloned())
        .collect();
    // The attestations of the manifests kept: the new ones, and the old
    // ones of manifests not built again.
    let attestations: Vec<Descriptor> =
        built
            .iter()
            .filter(|b| is_att(b))
            .chain(old.iter().filter(|o| {
                is_att(o) && !built.iter().any(|b| is_att(b) && attests(b) == attests(o))
            }))
            .filter(|a| {
                entries
                    .iter()
                    .any(|e| Some(e.digest.as_str()) == attests(a))
            })
            .cloned()
            .collect();
    let key = |d: &Descriptor| {
        d.platform
            .as_ref()
            .map(|p| (p.os.clone(), p.architecture.clone(), p.variant.clone()))
    };
    entries.sort_by(|a, b| key(a).cmp(&key(b)).then(a.digest.cmp(&b.digest)));
    entries.dedup_by(|a, b| a.digest == b.digest);
    let position = |a: &Descriptor| {
        entries
            .iter()
            .position(|e| Some(e.digest.as_str()) == attests(a))
    };
    let mut attestations = attestations;
    attestations.sort_by(|a, b| position(a).cmp(&position(b)).then(a.digest.cmp(&b.digest)));
    attestations.dedup_by(|a, b| attests(a) == attests(b));
    entries.extend(attestations);
    for e in &mut entries {
        e.annotations.remove(linuxkit_oci::REF_NAME_ANNOTATION);
    }
    Ok(match entries.as_slice() {
        [one] => one.clone(),
        _ => {
            let bytes = serde_json::to_vec(&Index::new(entries)).expect("index serializes");
            let digest = cache.write_blob(&bytes)?;
            Descriptor {
                media_type: media_type::OCI_INDEX.into(),
                digest: digest.to_string(),
                size: bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            }
        }
    })
}

/// Gzip at level 6 with a fixed header (no name, mtime 0, OS "Unix"), so
/// equal input gives equal output.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(cache: &Cache, arch: Arch, n: u8) -> Descriptor {
        let digest = cache.write_blob(&[n]).unwrap();
        Descriptor {
            media_type: media_type::OCI_MANIFEST.into(),
            digest: digest.to_string(),
            size: 1,
            platform: Some(Platform::linux(arch)),
            annotations: BTreeMap::new(),
        }
    }

    fn entries(cache: &Cache, image: &ImageRef) -> Vec<(String, String)> {
        let top = cache.resolve(image).unwrap().unwrap();
        platform_entries(cache, &top)
            .unwrap()
            .into_iter()
            .map(|d| (d.platform.unwrap().architecture, d.digest))
            .collect()
    }

    #[test]
    fn platforms_are_merged_into_one_index_sorted_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let image = ImageRef::parse("linuxkit/p:1").unwrap();
        let mut tops = Vec::new();
        for order in [[Arch::Arm64, Arch::Amd64], [Arch::Amd64, Arch::Arm64]] {
            let cache = Cache::open(&dir.path().join(format!("{order:?}"))).unwrap();
            let (amd64, arm64) = (
                manifest(&cache, Arch::Amd64, 1),
                manifest(&cache, Arch::Arm64, 2),
            );
            let of = |a: Arch| if a == Arch::Amd64 { &amd64 } else { &arm64 };
            // One platform: its manifest, as before there were indexes.
            let top = tag_platforms(&cache, &image, &[of(order[0]).clone()]).unwrap();
            assert_eq!(top.digest, of(order[0]).digest);
            let top = tag_platforms(&cache, &image, &[of(order[1]).clone()]).unwrap();
            assert_eq!(top.media_type, media_type::OCI_INDEX);
            assert_eq!(
                entries(&cache, &image),
                [
                    ("amd64".to_string(), amd64.digest.clone()),
                    ("arm64".into(), arm64.digest.clone())
                ]
            );
            tops.push(top.digest.clone());
            // A platform built again replaces its entry only.
            let new = manifest(&cache, Arch::Arm64, 3);
            tag_platforms(&cache, &image, std::slice::from_ref(&new)).unwrap();
            assert_eq!(
                entries(&cache, &image),
                [
                    ("amd64".to_string(), amd64.digest.clone()),
                    ("arm64".into(), new.digest)
                ]
            );
            // Both at once: the same index as one after the other.
            let top = tag_platforms(&cache, &image, &[arm64.clone(), amd64.clone()]).unwrap();
            assert_eq!(top.digest, tops[0]);
        }
        assert_eq!(tops[0], tops[1], "the index does not depend on the order");
    }

    fn attestation(cache: &Cache, of: &Descriptor) -> Descriptor {
        linuxkit_oci::attestation::write_attestation(
            cache,
            of,
            &[("https://spdx.dev/Document", of.digest.clone().into_bytes())],
        )
        .unwrap()
    }

    #[test]
    fn attestations_follow_the_platforms_and_are_replaced_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let image = ImageRef::parse("linuxkit/p:1").unwrap();
        let amd64 = manifest(&cache, Arch::Amd64, 1);
        let att_amd64 = attestation(&cache, &amd64);
        // One platform with its attestation: an index, the attestation last.
        let top = tag_platforms(&cache, &image, &[amd64.clone(), att_amd64.clone()]).unwrap();
        assert_eq!(top.media_type, media_type::OCI_INDEX);
        let digests = |top: &Descriptor| -> Vec<String> {
            platform_entries(&cache, top)
                .unwrap()
                .into_iter()
                .map(|d| d.digest)
                .collect()
        };
        assert_eq!(
            digests(&top),
            [amd64.digest.clone(), att_amd64.digest.clone()]
        );
        // Another platform: both manifests first, then their attestations
        // in the same order.
        let arm64 = manifest(&cache, Arch::Arm64, 2);
        let att_arm64 = attestation(&cache, &arm64);
        let top = tag_platforms(&cache, &image, &[att_arm64.clone(), arm64.clone()]).unwrap();
        assert_eq!(
            digests(&top),
            [
                amd64.digest.clone(),
                arm64.digest.clone(),
                att_amd64.digest.clone(),
                att_arm64.digest.clone()
            ]
        );
        // amd64 built again: its new attestation replaces the old one.
        let amd64b = manifest(&cache, Arch::Amd64, 3);
        let att_amd64b = attestation(&cache, &amd64b);
        let top = tag_platforms(&cache, &image, &[amd64b.clone(), att_amd64b.clone()]).unwrap();
        assert_eq!(
            digests(&top),
            [
                amd64b.digest,
                arm64.digest,
                att_amd64b.digest,
                att_arm64.digest
            ]
        );
        // The platform manifest is still found by its digest.
        let by_digest =
            ImageRef::parse(&format!("linuxkit/p@{}", arm64_digest(&cache, &image))).unwrap();
        assert!(cache.resolve(&by_digest).unwrap().is_some());
    }

    fn arm64_digest(cache: &Cache, image: &ImageRef) -> String {
        let top = cache.resolve(image).unwrap().unwrap();
        platform_entries(cache, &top)
            .unwrap()
            .into_iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == "arm64")
            })
            .unwrap()
            .digest
    }

    #[test]
    fn gzip_is_deterministic_with_a_fixed_header() {
        let a = gzip(b"hello");
        assert_eq!(a, gzip(b"hello"));
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    }
}
