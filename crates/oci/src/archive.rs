//! `cache export` and `cache import`: images as tar archives.
//!
//! Export writes an OCI image layout (`oci-layout`, `index.json`, `blobs/`)
//! as a tar; with the `docker` format it adds the `manifest.json` that
//! `docker load` reads. Entries are sorted with fixed owner, mode and mtime,
//! so the same image always exports to the same bytes. Import reads such an
//! archive (from us, `docker save`, skopeo, ...), verifies every blob and
//! names the images from their `io.containerd.image.name` or
//! `org.opencontainers.image.ref.name` annotations.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::cache::{Cache, CachedImage, REF_NAME_ANNOTATION, parse_json};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::types::{Descriptor, Index, media_type};

/// The annotation containerd (and `docker save`) name images with.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// What `cache export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// An OCI image layout as a tar.
    Oci,
    /// The OCI layout plus the `manifest.json` that `docker load` reads.
    Docker,
}

fn add(tar: &mut tar::Builder<&mut dyn Write>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(|e| Error::Other(format!("cannot write the archive ({path}): {e}")))
}

impl Cache {
    /// Writes `image` (its manifest for one platform, as resolved by
    /// [`Cache::image`]) to `out` as a tar, named `name`.
    pub fn export(
        &self,
        image: &CachedImage,
        name: &str,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<()> {
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let manifest_bytes = self.read_blob(&image.manifest_digest)?;
        let mut annotations = BTreeMap::new();
        annotations.insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
        annotations.insert(CONTAINERD_NAME_ANNOTATION.to_string(), name.to_string());
        let desc = Descriptor {
            media_type: image
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media_type::OCI_MANIFEST.into()),
            digest: image.manifest_digest.to_string(),
            size: manifest_bytes.len() as u64,
            platform: None,
            annotations,
        };
        // With the top-level mediaType, as the reference's export.
        let index = Index::new(vec![desc]);
        files.insert(
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
        files.insert(
            "index.json".into(),
            serde_json::to_vec(&index).expect("index serializes"),
        );
        let blob_name =
            |d: &str| -> Result<String> { Ok(format!("blobs/sha256/{}", Digest::parse(d)?.hex())) };
        files.insert(blob_name(image.manifest_digest.as_str())?, manifest_bytes);
        for d in std::iter::once(&image.manifest.config).chain(&image.manifest.layers) {
            let digest = Digest::parse(&d.digest)?;
            files.insert(blob_name(&d.digest)?, self.read_blob(&digest)?);
        }
        if format == ExportFormat::Docker {
            let m = serde_json::json!([{
                "Config": blob_name(&image.manifest.config.digest)?,
                "RepoTags": [name],
                "Layers": image.manifest.layers.iter().map(|l| blob_name(&l.digest)).collect::<Result<Vec<_>>>()?,
            }]);
            files.insert(
                "manifest.json".into(),
                serde_json::to_vec(&m).expect("json"),
            );
        }
        let mut tar = tar::Builder::new(out);
        for (path, data) in &files {
            add(&mut tar, path, data)?;
        }
        tar.finish()
            .map_err(|e| Error::Other(format!("cannot finish the archive: {e}")))
    }

    /// Imports the images of a tar archive holding an OCI layout; returns
    /// the names they were cached under.
    pub fn import(&self, input: &mut dyn Read) -> Result<Vec<String>> {
        // Blobs are written before index.json names them.
        let _pin = self.reclaim_and_pin()?;
        let mut archive = tar::Archive::new(input);
        let bad = |e: std::io::Error| Error::Other(format!("cannot read the archive: {e}"));
        let mut index: Option<Vec<u8>> = None;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let path = path.trim_start_matches("./");
            if path == "index.json" {
                // Read into memory, so bounded like a registry's index.
                let limit = crate::transport::MAX_MANIFEST_SIZE;
                let mut b = Vec::new();
                (&mut entry)
                    .take(limit + 1)
                    .read_to_end(&mut b)
                    .map_err(bad)?;
                if b.len() as u64 > limit {
                    return Err(Error::Other(format!(
                        "the archive's index.json is larger than the {limit} bytes an index may have"
                    )));
                }
                index = Some(b);
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/")
                && entry.header().entry_type().is_file()
            {
                let d = Digest::parse(&format!("sha256:{hex}"))?;
                self.write_blob_from(&d, &mut entry, &format!("archive entry {path}"))?;
            }
        }
        let index = index.ok_or_else(|| {
            Error::Other("the archive has no index.json: it is not an OCI image layout".into())
        })?;
        let index: Index = parse_json(&index, "the archive", "index.json")?;
        let mut names = Vec::new();
        for d in index.manifests {
            let raw = d
                .annotations
                .get(CONTAINERD_NAME_ANNOTATION)
                .or_else(|| d.annotations.get(REF_NAME_ANNOTATION))
                .ok_or_else(|| {
                    Error::Other(format!(
                        "manifest {} in the archive has no image name ({CONTAINERD_NAME_ANNOTATION} or {REF_NAME_ANNOTATION} annotation)",
                        d.digest
                    ))
                })?;
            let name = ImageRef::parse(raw)?.canonical();
            let digest = Digest::parse(&d.digest)?;
            if !self.has_blob(&digest) {
                return Err(Error::Other(format!(
                    "the archive lacks blob {digest} of {name}"
                )));
            }
            let mut desc = d.clone();
            desc.annotations.clear();
            self.tag(&name, desc)?;
            names.push(name);
        }
        Ok(names)
    }
}
