//! Fixture images, written as OCI image layouts on disk by this test code.
//!
//! A [`Fixture`] is a temporary directory holding an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) in which one tag names
//! either an image manifest or an image index of several platforms. It is
//! what [`push`](super::push) hands to `skopeo`, and its digests are what
//! tests expect the client under test to find in the registry.
//!
//! Everything is deterministic, so the same spec always gives the same
//! digests: layer tars have sorted entries, implied parent directories,
//! a fixed mtime ([`FIXED_MTIME`]), uid/gid 0 and fixed modes; gzip headers
//! carry mtime 0; zstd uses a fixed level; JSON is compact with keys in a
//! fixed order.
//!
//! Two manifest formats are written ([`Format`]):
//! * [`Format::Oci`]: `application/vnd.oci.image.manifest.v1+json` and
//!   `…index.v1+json`, layers `…layer.v1.tar`, `…tar+gzip` or `…tar+zstd`.
//! * [`Format::DockerV2S2`]: the same layout written with Docker schema 2
//!   media types (`application/vnd.docker.distribution.manifest.v2+json`,
//!   `…manifest.list.v2+json`, config
//!   `application/vnd.docker.container.image.v1+json`, layers
//!   `application/vnd.docker.image.rootfs.diff.tar.gzip`), as a cache that
//!   pulled a Docker image holds it. skopeo's `oci:` transport refuses
//!   Docker media types, so such a fixture is also written in skopeo's
//!   `dir:` transport format, which skopeo pushes byte for byte: the
//!   registry serves the Docker media types and the fixture's digests hold.
//!   (Converting an OCI fixture with `skopeo --format v2s2` also works, see
//!   [`push_as_v2s2`](super::skopeo::push_as_v2s2), but changes digests.)
//!
//! Quick constructors cover the usual cases ([`Fixture::image`],
//! [`Fixture::multi_arch`], [`Fixture::docker_image`],
//! [`Fixture::docker_multi_arch`]); [`Fixture::build`] with [`ImageSpec`]
//! and [`LayerSpec`] builds anything else (several layers, symlinks, hard
//! links, whiteouts, config fields).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::sha256_digest;

/// Media types, spelled out here independently of the crate under test.
pub mod media_type {
    pub const OCI_LAYOUT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Every manifest type, for an `Accept` header that takes anything.
    pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.docker.distribution.manifest.v2+json";
}

/// The annotation naming a tag in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The mtime of every tar entry (2020-09-13T12:26:40Z).
pub const FIXED_MTIME: u64 = 1_600_000_000;
/// The `created` time of every image config.
pub const FIXED_CREATED: &str = "2020-09-13T12:26:40Z";
/// The tag fixtures are written under unless told otherwise.
pub const DEFAULT_TAG: &str = "latest";
/// The file [`Fixture::multi_arch`] adds to each platform's image: it holds
/// the architecture name and a newline, so tests can tell images apart.
pub const ARCH_FILE: &str = "etc/fixture-arch";
/// The OCI layout's subdirectory of a fixture's directory.
const LAYOUT_DIR: &str = "layout";
/// The skopeo `dir:` transport copy's subdirectory (Docker fixtures only).
const SKOPEO_DIR: &str = "skopeo-dir";
/// The level zstd layers are compressed at.
const ZSTD_LEVEL: i32 = 3;

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Which media types the manifests, index and layers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    DockerV2S2,
}

/// An image platform (`os`/`architecture`[/`variant`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    pub fn with_variant(mut self, variant: &str) -> Platform {
        self.variant = Some(variant.into());
        self
    }

    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64")
    }

    pub fn linux_arm64() -> Platform {
        Platform::new("linux", "arm64")
    }

    fn to_json(&self) -> Value {
        let mut p = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

impl std::fmt::Display for Platform {
    /// `os/architecture[/variant]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// One entry of a layer tar. Paths are relative (a leading `/` or `./` is
/// dropped); parent directories are added as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        path: String,
        contents: Vec<u8>,
        mode: u32,
    },
    Dir {
        path: String,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::File { path, .. }
            | Entry::Dir { path, .. }
            | Entry::Symlink { path, .. }
            | Entry::Hardlink { path, .. } => path,
        }
    }
}

/// One layer: its entries and compression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub compression: Compression,
    pub entries: Vec<Entry>,
}

impl LayerSpec {
    pub fn new(compression: Compression) -> LayerSpec {
        LayerSpec {
            compression,
            entries: Vec::new(),
        }
    }

    /// A layer of regular files (mode 0644).
    pub fn files<C: AsRef<[u8]>>(compression: Compression, files: &[(&str, C)]) -> LayerSpec {
        files.iter().fold(LayerSpec::new(compression), |l, (p, c)| {
            l.file(p, c.as_ref())
        })
    }

    /// Adds a regular file with mode 0644.
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>) -> LayerSpec {
        self.file_mode(path, contents, 0o644)
    }

    /// Adds a regular file with `mode`.
    pub fn file_mode(mut self, path: &str, contents: impl AsRef<[u8]>, mode: u32) -> LayerSpec {
        self.entries.push(Entry::File {
            path: clean(path),
            contents: contents.as_ref().to_vec(),
            mode,
        });
        self
    }

    /// Adds a directory with mode 0755.
    pub fn dir(mut self, path: &str) -> LayerSpec {
        self.entries.push(Entry::Dir {
            path: clean(path),
            mode: 0o755,
        });
        self
    }

    /// Adds a symbolic link at `path` pointing to `target` (kept verbatim).
    pub fn symlink(mut self, path: &str, target: &str) -> LayerSpec {
        self.entries.push(Entry::Symlink {
            path: clean(path),
            target: target.into(),
        });
        self
    }

    /// Adds a hard link at `path` to the earlier entry `target`.
    pub fn hardlink(mut self, path: &str, target: &str) -> LayerSpec {
        self.entries.push(Entry::Hardlink {
            path: clean(path),
            target: clean(target),
        });
        self
    }

    /// Adds an overlay whiteout hiding `path` of lower layers
    /// (`dir/.wh.name`).
    pub fn whiteout(self, path: &str) -> LayerSpec {
        let path = clean(path);
        let (dir, name) = path
            .rsplit_once('/')
            .map(|(d, n)| (format!("{d}/"), n))
            .unwrap_or((String::new(), &path));
        let wh = format!("{dir}.wh.{name}");
        self.file(&wh, b"")
    }

    /// The uncompressed, deterministic tar of this layer. Entries are
    /// sorted by path, except that hard links come after everything else so
    /// their targets precede them.
    pub fn tar(&self) -> Vec<u8> {
        let mut entries: BTreeMap<String, &Entry> = BTreeMap::new();
        let mut implied: BTreeMap<String, Entry> = BTreeMap::new();
        for entry in &self.entries {
            let mut parent = entry.path();
            while let Some((p, _)) = parent.rsplit_once('/') {
                implied.entry(p.to_string()).or_insert_with(|| Entry::Dir {
                    path: p.to_string(),
                    mode: 0o755,
                });
                parent = p;
            }
        }
        for entry in &self.entries {
            entries.insert(entry.path().to_string(), entry);
        }
        for (path, dir) in &implied {
            entries.entry(path.clone()).or_insert(dir);
        }
        let (links, others): (Vec<&Entry>, Vec<&Entry>) = entries
            .values()
            .copied()
            .partition(|e| matches!(e, Entry::Hardlink { .. }));

        let mut builder = tar::Builder::new(Vec::new());
        for entry in others.into_iter().chain(links) {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(FIXED_MTIME);
            h.set_uid(0);
            h.set_gid(0);
            h.set_username("root").unwrap();
            h.set_groupname("root").unwrap();
            let result = match entry {
                Entry::File {
                    path,
                    contents,
                    mode,
                } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(contents.len() as u64);
                    builder.append_data(&mut h, path, contents.as_slice())
                }
                Entry::Dir { path, mode } => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    builder.append_data(&mut h, format!("{path}/"), std::io::empty())
                }
                Entry::Symlink { path, target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    builder.append_link(&mut h, path, target)
                }
                Entry::Hardlink { path, target } => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_mode(0o644);
                    h.set_size(0);
                    builder.append_link(&mut h, path, target)
                }
            };
            result.expect("append tar entry");
        }
        builder.into_inner().expect("finish tar")
    }

    /// The layer blob: [`tar`](Self::tar) compressed as configured.
    pub fn blob(&self) -> Vec<u8> {
        compress(&self.tar(), self.compression)
    }
}

/// One platform's image: config fields and layers.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub platform: Platform,
    pub labels: BTreeMap<String, String>,
    /// Extra fields of the config's `config` object (`Entrypoint`, `Env`…).
    pub config: serde_json::Map<String, Value>,
    pub layers: Vec<LayerSpec>,
}

impl ImageSpec {
    pub fn new(platform: Platform) -> ImageSpec {
        ImageSpec {
            platform,
            labels: BTreeMap::new(),
            config: serde_json::Map::new(),
            layers: Vec::new(),
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> ImageSpec {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn labels(self, labels: &[(&str, &str)]) -> ImageSpec {
        labels.iter().fold(self, |s, (k, v)| s.label(k, v))
    }

    /// Sets `config.<key>` in the image config (e.g. `"Entrypoint"`).
    pub fn config_field(mut self, key: &str, value: Value) -> ImageSpec {
        self.config.insert(key.into(), value);
        self
    }

    pub fn layer(mut self, layer: LayerSpec) -> ImageSpec {
        self.layers.push(layer);
        self
    }
}

/// A layer as written: its blob's descriptor and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub digest: String,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
    pub compression: Compression,
}

/// One platform's image as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub platform: Platform,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    /// The manifest bytes (what the registry must serve for the digest).
    pub manifest: Vec<u8>,
    pub config_digest: String,
    pub config: Vec<u8>,
    pub layers: Vec<LayerInfo>,
}

impl ImageInfo {
    pub fn layer_digests(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.digest.clone()).collect()
    }
}

/// An OCI image layout in a temporary directory with one tag.
#[derive(Debug)]
pub struct Fixture {
    dir: TempDir,
    /// The tag in the layout (`org.opencontainers.image.ref.name`).
    pub tag: String,
    pub format: Format,
    /// The digest the tag points at: the manifest of a single image, or the
    /// index of a multi-platform one.
    pub digest: String,
    /// The media type of what the tag points at.
    pub media_type: String,
    /// The index bytes, for a multi-platform fixture.
    pub index: Option<Vec<u8>>,
    /// The images, in the order given (the index's order).
    pub images: Vec<ImageInfo>,
}

impl Fixture {
    /// A single-platform OCI image with one layer holding `files` and
    /// `labels` in its config, tagged [`DEFAULT_TAG`].
    pub fn image<C: AsRef<[u8]>>(
        files: &[(&str, C)],
        layer_compression: Compression,
        labels: &[(&str, &str)],
        platform: Platform,
    ) -> Fixture {
        let spec = ImageSpec::new(platform)
            .labels(labels)
            .layer(LayerSpec::files(layer_compression, files));
        Fixture::build(Format::Oci, DEFAULT_TAG, &[spec], false)
    }

    /// An OCI index for linux/amd64 and linux/arm64, each image with one
    /// layer holding `files` plus [`ARCH_FILE`] (the architecture name), so
    /// the two differ.
    pub fn multi_arch<C: AsRef<[u8]>>(
        files: &[(&str, C)],
        layer_compression: Compression,
        labels: &[(&str, &str)],
    ) -> Fixture {
        Fixture::build(
            Format::Oci,
            DEFAULT_TAG,
            &arch_specs(files, layer_compression, labels),
            true,
        )
    }

    /// [`image`](Self::image) with Docker schema 2 media types (gzip layer).
    pub fn docker_image<C: AsRef<[u8]>>(
        files: &[(&str, C)],
        labels: &[(&str, &str)],
        platform: Platform,
    ) -> Fixture {
        let spec = ImageSpec::new(platform)
            .labels(labels)
            .layer(LayerSpec::files(Compression::Gzip, files));
        Fixture::build(Format::DockerV2S2, DEFAULT_TAG, &[spec], false)
    }

    /// [`multi_arch`](Self::multi_arch) as a Docker manifest list.
    pub fn docker_multi_arch<C: AsRef<[u8]>>(
        files: &[(&str, C)],
        labels: &[(&str, &str)],
    ) -> Fixture {
        Fixture::build(
            Format::DockerV2S2,
            DEFAULT_TAG,
            &arch_specs(files, Compression::Gzip, labels),
            true,
        )
    }

    /// Writes `images` in `format` under `tag`: with `as_index` (or more
    /// than one image) the tag names an index of them, else the manifest.
    pub fn build(format: Format, tag: &str, images: &[ImageSpec], as_index: bool) -> Fixture {
        assert!(!images.is_empty(), "a fixture needs at least one image");
        assert!(
            as_index || images.len() == 1,
            "several images need an index"
        );
        let dir = tempfile::Builder::new()
            .prefix("linuxkit-test-fixture-")
            .tempdir()
            .expect("fixture dir");
        let layout = &dir.path().join(LAYOUT_DIR);
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        fs::write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();

        let infos: Vec<ImageInfo> = images
            .iter()
            .map(|spec| write_image(layout, format, spec))
            .collect();
        let (digest, media_type, size, index) = if as_index {
            let media_type = match format {
                Format::Oci => media_type::OCI_INDEX,
                Format::DockerV2S2 => media_type::DOCKER_MANIFEST_LIST,
            };
            let manifests: Vec<Value> = infos
                .iter()
                .map(|i| {
                    json!({
                        "mediaType": i.manifest_media_type,
                        "digest": i.manifest_digest,
                        "size": i.manifest.len(),
                        "platform": i.platform.to_json(),
                    })
                })
                .collect();
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": manifests,
            }))
            .unwrap();
            let digest = write_blob(layout, &index);
            (digest, media_type, index.len(), Some(index))
        } else {
            let i = &infos[0];
            (
                i.manifest_digest.clone(),
                i.manifest_media_type.as_str(),
                i.manifest.len(),
                None,
            )
        };
        let layout_index = json!({
            "schemaVersion": 2,
            "mediaType": media_type::OCI_LAYOUT_INDEX,
            "manifests": [{
                "mediaType": media_type,
                "digest": digest,
                "size": size,
                "annotations": { REF_NAME_ANNOTATION: tag },
            }],
        });
        fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&layout_index).unwrap(),
        )
        .unwrap();

        let fixture = Fixture {
            dir,
            tag: tag.into(),
            format,
            digest,
            media_type: media_type.into(),
            index,
            images: infos,
        };
        if format == Format::DockerV2S2 {
            fixture.write_dir_transport();
        }
        fixture
    }

    /// The OCI image layout directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(LAYOUT_DIR)
    }

    /// The image as skopeo should read it: `oci:LAYOUT:TAG`, or for
    /// [`Format::DockerV2S2`] `dir:DIR` (see [`Self::write_dir_transport`]).
    pub fn skopeo_source(&self) -> String {
        match self.format {
            Format::Oci => format!("oci:{}:{}", self.path().display(), self.tag),
            Format::DockerV2S2 => format!("dir:{}", self.dir.path().join(SKOPEO_DIR).display()),
        }
    }

    /// Writes the image again in skopeo's `dir:` transport format, which,
    /// unlike its `oci:` transport, reads Docker schema 2 manifests and
    /// lists: a `version` file, the top-level manifest as `manifest.json`,
    /// each manifest of a list as `<hex>.manifest.json`, and every blob as
    /// `<hex>`. skopeo copies from it byte for byte, digests included.
    fn write_dir_transport(&self) {
        let dir = self.dir.path().join(SKOPEO_DIR);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").unwrap();
        for blob in fs::read_dir(self.path().join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            fs::copy(blob.path(), dir.join(blob.file_name())).unwrap();
        }
        fs::copy(self.blob_path(&self.digest), dir.join("manifest.json")).unwrap();
        if self.is_index() {
            for image in &self.images {
                let hex = image.manifest_digest.strip_prefix("sha256:").unwrap();
                fs::write(dir.join(format!("{hex}.manifest.json")), &image.manifest).unwrap();
            }
        }
    }

    /// Whether the tag names an index (push it with `all_platforms`).
    pub fn is_index(&self) -> bool {
        self.index.is_some()
    }

    /// The single image of a single-platform fixture.
    pub fn single(&self) -> &ImageInfo {
        assert_eq!(
            self.images.len(),
            1,
            "fixture has {} images",
            self.images.len()
        );
        &self.images[0]
    }

    /// The image for `platform` (matched on os and architecture).
    pub fn platform(&self, os: &str, architecture: &str) -> &ImageInfo {
        self.images
            .iter()
            .find(|i| i.platform.os == os && i.platform.architecture == architecture)
            .unwrap_or_else(|| panic!("fixture has no {os}/{architecture} image"))
    }

    /// Path of blob `digest` in the layout.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.path().join("blobs/sha256").join(hex)
    }

    /// The bytes of blob `digest` in the layout.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }
}

fn arch_specs<C: AsRef<[u8]>>(
    files: &[(&str, C)],
    compression: Compression,
    labels: &[(&str, &str)],
) -> Vec<ImageSpec> {
    [Platform::linux_amd64(), Platform::linux_arm64()]
        .into_iter()
        .map(|platform| {
            let layer = LayerSpec::files(compression, files)
                .file(ARCH_FILE, format!("{}\n", platform.architecture));
            ImageSpec::new(platform).labels(labels).layer(layer)
        })
        .collect()
}

fn write_image(layout: &Path, format: Format, spec: &ImageSpec) -> ImageInfo {
    let mut layers = Vec::new();
    for layer in &spec.layers {
        let tar = layer.tar();
        let blob = compress(&tar, layer.compression);
        let media_type = match (format, layer.compression) {
            (Format::Oci, Compression::Gzip) => media_type::OCI_LAYER_GZIP,
            (Format::Oci, Compression::Zstd) => media_type::OCI_LAYER_ZSTD,
            (Format::Oci, Compression::None) => media_type::OCI_LAYER_TAR,
            (Format::DockerV2S2, Compression::Gzip) => media_type::DOCKER_LAYER_GZIP,
            (Format::DockerV2S2, Compression::None) => media_type::DOCKER_LAYER_TAR,
            (Format::DockerV2S2, Compression::Zstd) => panic!("Docker schema 2 has no zstd layers"),
        };
        layers.push(LayerInfo {
            digest: write_blob(layout, &blob),
            diff_id: sha256_digest(&tar),
            size: blob.len() as u64,
            media_type: media_type.into(),
            compression: layer.compression,
        });
    }

    let mut container_config = serde_json::Map::new();
    if !spec.labels.is_empty() {
        container_config.insert("Labels".into(), json!(spec.labels));
    }
    container_config.extend(spec.config.clone());
    let mut config = json!({
        "created": FIXED_CREATED,
        "architecture": spec.platform.architecture,
        "os": spec.platform.os,
    });
    if let Some(v) = &spec.platform.variant {
        config["variant"] = json!(v);
    }
    config["config"] = Value::Object(container_config);
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
    });
    config["history"] = json!(
        spec.layers
            .iter()
            .enumerate()
            .map(|(n, _)| json!({ "created": FIXED_CREATED, "created_by": format!("linuxkit-oci test fixture layer {n}") }))
            .collect::<Vec<_>>()
    );
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(layout, &config);

    let (manifest_media_type, config_media_type) = match format {
        Format::Oci => (media_type::OCI_MANIFEST, media_type::OCI_CONFIG),
        Format::DockerV2S2 => (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG),
    };
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": { "mediaType": config_media_type, "digest": config_digest, "size": config.len() },
        "layers": layers
            .iter()
            .map(|l| json!({ "mediaType": l.media_type, "digest": l.digest, "size": l.size }))
            .collect::<Vec<_>>(),
    }))
    .unwrap();
    ImageInfo {
        platform: spec.platform.clone(),
        manifest_digest: write_blob(layout, &manifest),
        manifest_media_type: manifest_media_type.into(),
        manifest,
        config_digest,
        config,
        layers,
    }
}

/// Writes `data` to `blobs/sha256/<hex>` and returns its digest.
fn write_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256_digest(data);
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::write(layout.join("blobs/sha256").join(hex), data).unwrap();
    digest
}

/// Compresses `tar` deterministically.
pub fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::default());
            enc.write_all(tar).unwrap();
            enc.finish().unwrap()
        }
        Compression::Zstd => zstd::stream::encode_all(tar, ZSTD_LEVEL).unwrap(),
    }
}

/// Decompresses a layer blob back to its tar.
pub fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
    use std::io::Read as _;
    match compression {
        Compression::None => blob.to_vec(),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        Compression::Zstd => zstd::stream::decode_all(blob).unwrap(),
    }
}

/// The regular files of a tar as `path → contents` (directories and links
/// left out), for comparing what a client unpacked or fetched.
pub fn tar_files(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(tar);
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("read tar") {
        let mut entry = entry.expect("tar entry");
        if entry.header().entry_type() == tar::EntryType::Regular {
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            files.insert(path, contents);
        }
    }
    files
}

/// Drops a leading `/` or `./` and any trailing `/`.
fn clean(path: &str) -> String {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    p.trim_end_matches('/').to_string()
}
