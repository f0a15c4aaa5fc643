//! Attestations attached to an image the way BuildKit attaches them
//! (BuildKit's "attestation storage"): in the image index, beside each
//! platform manifest, an *attestation manifest* (platform
//! `unknown/unknown`, annotated `vnd.docker.reference.type:
//! attestation-manifest` and `vnd.docker.reference.digest: <the platform
//! manifest's digest>`) whose layers are in-toto statements
//! (`application/vnd.in-toto+json`, annotated `in-toto.io/predicate-type`).
//! Its config is a placeholder image config (`unknown/unknown`, its
//! `diff_ids` the layers' digests), only there for tools that expect one.
//!
//! One home for the layout: `pkg build` writes attestations with
//! [`write_attestation`], `build` reads SBOMs back with [`Cache::sboms`]
//! (what the reference's `linuxkit build` reads too, so it finds ours), and
//! the registry client pulls and pushes the attestation manifest of the
//! platform it pulls ([`is_attestation_of`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CachedImage};
use crate::digest::Digest;
use crate::error::Result;
use crate::types::{Descriptor, Index, Manifest, Platform, media_type};

/// The media type of an in-toto statement layer.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The largest in-toto statement (an SBOM or a provenance) pulled or read:
/// each is read whole and parsed, so one a registry declares bigger is
/// refused before it is downloaded. Generous: the SBOM of a full
/// distribution image is a few MiB.
pub const MAX_STATEMENT_SIZE: u64 = 64 << 20;
/// The in-toto statement type BuildKit writes.
pub const IN_TOTO_STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The annotation on an attestation manifest's descriptor saying what it
/// is.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// [`REFERENCE_TYPE`]'s value for an attestation manifest.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
/// The annotation on an attestation manifest's descriptor naming the
/// manifest it is about.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// The annotation on a statement layer naming its predicate type.
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// The predicate type of an SPDX document.
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// The predicate type of SLSA v1 provenance.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// Whether an index entry is an attestation (BuildKit's provenance and SBOM
/// manifests, `unknown/unknown`), not a runnable image.
pub fn is_attestation_platform(p: &Platform) -> bool {
    p.os == "unknown" && p.architecture == "unknown"
}

/// Whether index entry `d` is the attestation manifest of the manifest
/// whose digest is `manifest`.
pub fn is_attestation_of(d: &Descriptor, manifest: &str) -> bool {
    d.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST)
        && d.annotations.get(REFERENCE_DIGEST).map(String::as_str) == Some(manifest)
}

/// The manifest an attestation manifest's descriptor is about, if `d` is
/// one.
pub fn attests(d: &Descriptor) -> Option<&str> {
    (d.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST))
        .then(|| d.annotations.get(REFERENCE_DIGEST).map(String::as_str))
        .flatten()
}

/// An in-toto statement's subject: a name and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// What it names (BuildKit: `pkg:docker/NAME@TAG?platform=...`).
    pub name: String,
    /// `{"sha256": "<hex>"}`.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto statement (v0.1, as BuildKit writes them), its predicate
/// kept as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement<P> {
    /// [`IN_TOTO_STATEMENT_V01`].
    #[serde(rename = "_type")]
    pub kind: String,
    /// What the predicate is.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What the statement is about: the platform manifest.
    pub subject: Vec<Subject>,
    /// The SPDX document, the provenance, ...
    pub predicate: P,
}

impl<P: Serialize> Statement<P> {
    /// A statement about the platform manifest `manifest` (its digest),
    /// named `name`.
    pub fn about(name: &str, manifest: &Digest, predicate_type: &str, predicate: P) -> Self {
        Statement {
            kind: IN_TOTO_STATEMENT_V01.into(),
            predicate_type: predicate_type.into(),
            subject: vec![Subject {
                name: name.into(),
                digest: BTreeMap::from([("sha256".to_string(), manifest.hex().to_string())]),
            }],
            predicate,
        }
    }

    /// The statement's bytes as stored: compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement serializes")
    }
}

#[derive(Serialize)]
struct PlaceholderConfig<'a> {
    architecture: &'static str,
    os: &'static str,
    config: BTreeMap<String, String>,
    rootfs: RootFs<'a>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: &'a [String],
}

fn blob_descriptor(media_type: &str, digest: &Digest, size: usize) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest.to_string(),
        size: size as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Writes the attestation manifest of the platform manifest `subject`
/// (its descriptor) holding `statements` (predicate type, statement bytes),
/// in that order, into `cache`; returns the index entry for it. The same
/// statements give the same bytes.
pub fn write_attestation(
    cache: &Cache,
    subject: &Descriptor,
    statements: &[(&str, Vec<u8>)],
) -> Result<Descriptor> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (predicate_type, bytes) in statements {
        let d = cache.write_blob(bytes)?;
        let mut desc = blob_descriptor(IN_TOTO_MEDIA_TYPE, &d, bytes.len());
        desc.annotations
            .insert(PREDICATE_TYPE.into(), predicate_type.to_string());
        diff_ids.push(d.to_string());
        layers.push(desc);
    }
    let config = serde_json::to_vec(&PlaceholderConfig {
        architecture: "unknown",
        os: "unknown",
        config: BTreeMap::new(),
        rootfs: RootFs {
            kind: "layers",
            diff_ids: &diff_ids,
        },
    })
    .expect("a config serializes");
    let config_digest = cache.write_blob(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.into()),
        config: blob_descriptor(media_type::OCI_CONFIG, &config_digest, config.len()),
        layers,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let digest = cache.write_blob(&bytes)?;
    let mut desc = blob_descriptor(media_type::OCI_MANIFEST, &digest, bytes.len());
    desc.platform = Some(Platform {
        architecture: "unknown".into(),
        os: "unknown".into(),
        variant: None,
    });
    desc.annotations
        .insert(REFERENCE_TYPE.into(), ATTESTATION_MANIFEST.into());
    desc.annotations
        .insert(REFERENCE_DIGEST.into(), subject.digest.clone());
    Ok(desc)
}

/// What [`Cache::attestations`] found.
#[derive(Debug, Default)]
pub struct Attestations {
    /// The predicates of the statements of the asked type, in layer order.
    pub predicates: Vec<serde_json::Value>,
    /// Statement layers the index names but the cache lacks (an image
    /// pulled by a version that did not fetch them).
    pub missing: Vec<String>,
}

#[derive(Deserialize)]
struct AnyStatement {
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: serde_json::Value,
}

impl Cache {
    /// The predicates of type `predicate_type` attested for `img`'s
    /// platform manifest, read as the reference's `linuxkit build` reads
    /// them: the attestation manifest in `img`'s index whose
    /// [`REFERENCE_DIGEST`] is the platform manifest, each of its layers of
    /// type [`IN_TOTO_MEDIA_TYPE`] annotated with `predicate_type`. An
    /// image that is not an index, or has no attestation for its platform,
    /// has none.
    pub fn attestations(&self, img: &CachedImage, predicate_type: &str) -> Result<Attestations> {
        let mut found = Attestations::default();
        let Some(entry) = self.attestation_manifest(img)? else {
            return Ok(found);
        };
        let digest = Digest::parse(&entry.digest)?;
        if !self.has_blob(&digest) {
            found.missing.push(entry.digest.clone());
            return Ok(found);
        }
        let manifest: Manifest =
            crate::cache::parse_json(&self.read_blob(&digest)?, &img.name, "manifest")?;
        for layer in &manifest.layers {
            if layer.media_type != IN_TOTO_MEDIA_TYPE
                || layer.annotations.get(PREDICATE_TYPE).map(String::as_str) != Some(predicate_type)
            {
                continue;
            }
            let d = Digest::parse(&layer.digest)?;
            if !self.has_blob(&d) {
                found.missing.push(layer.digest.clone());
                continue;
            }
            if layer.size > MAX_STATEMENT_SIZE {
                return Err(crate::Error::Json {
                    image: img.name.clone(),
                    what: "in-toto statement",
                    reason: format!(
                        "{} declares {} bytes, more than the {MAX_STATEMENT_SIZE} a statement may have",
                        layer.digest, layer.size
                    ),
                });
            }
            let stmt: AnyStatement =
                crate::cache::parse_json(&self.read_blob(&d)?, &img.name, "in-toto statement")?;
            if stmt.predicate_type != predicate_type {
                return Err(crate::Error::Json {
                    image: img.name.clone(),
                    what: "in-toto statement",
                    reason: format!(
                        "{} says its predicate type is {}, its layer's annotation {predicate_type}",
                        layer.digest, stmt.predicate_type
                    ),
                });
            }
            found.predicates.push(stmt.predicate);
        }
        Ok(found)
    }

    /// The index entry of the attestation manifest of `img`'s platform
    /// manifest, if its index has one (its digest covers every statement,
    /// so it keys what is made of them).
    pub fn attestation_manifest(&self, img: &CachedImage) -> Result<Option<Descriptor>> {
        if !media_type::is_index(&img.top.media_type) {
            return Ok(None);
        }
        let top = Digest::parse(&img.top.digest)?;
        let index: Index = crate::cache::parse_json(&self.read_blob(&top)?, &img.name, "index")?;
        let subject = img.manifest_digest.to_string();
        Ok(index
            .manifests
            .into_iter()
            .find(|d| is_attestation_of(d, &subject)))
    }

    /// The SPDX documents attested for `img` ([`Cache::attestations`] of
    /// [`SPDX_PREDICATE`]).
    pub fn sboms(&self, img: &CachedImage) -> Result<Attestations> {
        self.attestations(img, SPDX_PREDICATE)
    }
}
