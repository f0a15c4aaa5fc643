//! `pkg build --verify`: rebuild a package and compare the result with the
//! image its tag names in the cache (built here earlier, or pulled from
//! another machine's push), byte for byte.
//!
//! The rebuild goes into a scratch cache (nothing in the real one
//! changes), from the same `build.yml` and `debian.lock`; the builder is
//! reproducible, so every difference is a finding: the platform manifest,
//! and below it the config and the layer (with the paths whose content
//! differs), and the attestations (the SBOM's packages, the provenance).

use std::collections::BTreeMap;
use std::io::Read;

use linuxkit_base::Arch;
use linuxkit_oci::attestation::{SLSA_PROVENANCE_V1, SPDX_PREDICATE};
use linuxkit_oci::{Cache, CachedImage, Digest, ImageRef, Platform};

use super::{BuildOptions, build_platforms};
use crate::Package;
use crate::error::BuildError;

/// At most this many differing paths of a layer are named.
const MAX_PATHS: usize = 20;

/// What [`verify`] found for one platform.
#[derive(Debug)]
pub struct Verified {
    /// The platform.
    pub arch: Arch,
    /// The platform manifest the tag names.
    pub expected: String,
    /// The platform manifest of the rebuild.
    pub rebuilt: String,
    /// Every difference, in words; empty when the rebuild is identical.
    pub differences: Vec<String>,
}

fn layer_files(cache: &Cache, img: &CachedImage) -> Result<BTreeMap<String, String>, BuildError> {
    let mut out = BTreeMap::new();
    for l in &img.manifest.layers {
        let d = Digest::parse(&l.digest)?;
        let f = std::fs::File::open(cache.blob_path(&d)).map_err(|e| BuildError::Layer {
            what: l.digest.clone(),
            message: e.to_string(),
        })?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let bad = |e: std::io::Error| BuildError::Layer {
            what: l.digest.clone(),
            message: e.to_string(),
        };
        for e in tar.entries().map_err(bad)? {
            let mut e = e.map_err(bad)?;
            let path = e.path().map_err(bad)?.to_string_lossy().into_owned();
            let h = e.header().clone();
            let link = e
                .link_name()
                .ok()
                .flatten()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).map_err(bad)?;
            let what = format!(
                "{:?} {:o} {}:{} {} {}",
                h.entry_type(),
                h.mode().unwrap_or(0),
                h.uid().unwrap_or(0),
                h.gid().unwrap_or(0),
                link,
                Digest::of(&data)
            );
            out.insert(path, what);
        }
    }
    Ok(out)
}

fn packages_of(doc: &serde_json::Value) -> Vec<String> {
    doc["packages"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}@{}",
                        p["name"].as_str().unwrap_or(""),
                        p["versionInfo"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Rebuilds `pkg` for each of `arches` into a scratch cache and compares
/// each with what its tag names in `cache`, which must have it.
pub fn verify(
    pkg: &Package,
    cache: &Cache,
    opts: &BuildOptions,
    arches: &[Arch],
) -> Result<Vec<Verified>, BuildError> {
    let image = ImageRef::parse(&pkg.full_tag())?;
    let mut expected = Vec::new();
    for &arch in arches {
        let Some(img) = cache.image(&image, &Platform::linux(arch))? else {
            return Err(BuildError::Package {
                build_yml: pkg.build_yml_name(),
                message: format!(
                    "{} is not in the cache for {}: there is nothing to verify; pull it (`pkg build --verify --pull`) or build it first",
                    image.canonical(),
                    arch.oci_platform()
                ),
            });
        };
        expected.push(img);
    }
    let scratch = cache.scratch_dir("verify")?;
    let fresh = Cache::open(scratch.path())?;
    let opts = BuildOptions {
        force: true,
        update: false,
        ..opts.clone()
    };
    build_platforms(pkg, &fresh, &opts, arches)?;
    let mut out = Vec::new();
    for (&arch, want) in arches.iter().zip(expected) {
        let got = fresh
            .image(&image, &Platform::linux(arch))?
            .expect("just built");
        let mut differences = Vec::new();
        if want.manifest_digest != got.manifest_digest {
            if want.manifest.config.digest != got.manifest.config.digest {
                differences.push(format!(
                    "the image config differs: {} here, {} in the cache",
                    got.manifest.config.digest, want.manifest.config.digest
                ));
            }
            let (a, b) = (layer_files(cache, &want)?, layer_files(&fresh, &got)?);
            let mut paths: Vec<String> = a
                .keys()
                .chain(b.keys())
                .filter(|p| a.get(*p) != b.get(*p))
                .cloned()
                .collect();
            paths.sort();
            paths.dedup();
            if !paths.is_empty() {
                let more = paths.len().saturating_sub(MAX_PATHS);
                let mut list = paths
                    .iter()
                    .take(MAX_PATHS)
                    .map(|p| match (a.contains_key(p), b.contains_key(p)) {
                        (true, false) => format!("{p} (only in the cache's)"),
                        (false, true) => format!("{p} (only in the rebuild)"),
                        _ => p.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if more > 0 {
                    list.push_str(&format!(" and {more} more"));
                }
                differences.push(format!("the layer differs at {list}"));
            } else if want.manifest.layers != got.manifest.layers {
                differences.push(
                    "the layer has the same files but different bytes (compression or order)"
                        .into(),
                );
            }
            if differences.is_empty() {
                differences.push("the manifest differs".into());
            }
        }
        for (kind, what) in [(SPDX_PREDICATE, "SBOM"), (SLSA_PROVENANCE_V1, "provenance")] {
            let a = cache.attestations(&want, kind)?.predicates;
            let b = fresh.attestations(&got, kind)?.predicates;
            if a == b {
                continue;
            }
            if a.is_empty() {
                differences.push(format!("the cached image has no {what} attestation"));
                continue;
            }
            let mut d = format!("the {what} differs");
            if kind == SPDX_PREDICATE
                && let (Some(x), Some(y)) = (a.first(), b.first())
            {
                let (px, py) = (packages_of(x), packages_of(y));
                let only = |p: &[String], q: &[String]| {
                    p.iter()
                        .filter(|e| !q.contains(e))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (ox, oy) = (only(&px, &py), only(&py, &px));
                if !ox.is_empty() {
                    d.push_str(&format!("; only the cache's lists {ox}"));
                }
                if !oy.is_empty() {
                    d.push_str(&format!("; only the rebuild's lists {oy}"));
                }
            }
            differences.push(d);
        }
        out.push(Verified {
            arch,
            expected: want.manifest_digest.to_string(),
            rebuilt: got.manifest_digest.to_string(),
            differences,
        });
    }
    Ok(out)
}
