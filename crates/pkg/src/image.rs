//! The image writer: a package's one layer, its OCI image config and its
//! manifest, written into the cache reproducibly.
//!
//! Nothing here depends on when or where the image is built: the layer is
//! gzipped with a fixed header, the config has no `created` time, and the
//! manifest holds nothing but digests and sizes, so the same layer and
//! `build.yml` give the same manifest digest on every machine. The config
//! carries `build.yml`'s `config:` as the [`CONFIG_LABEL`] label, which is
//! what `linuxkit build` reads back.

use std::collections::BTreeMap;
use std::io::Write;

use linuxkit_base::Arch;
use linuxkit_oci::{Cache, Descriptor, Digest, Manifest, Platform, media_type};
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
    let diff_id = Digest::of(tar);
    let gz = gzip(tar);
    let layer_digest = cache.write_blob(&gz)?;
    let config = image_config(pkg, arch, &diff_id)?;
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

    #[test]
    fn gzip_is_deterministic_with_a_fixed_header() {
        let a = gzip(b"hello");
        assert_eq!(a, gzip(b"hello"));
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    }
}
