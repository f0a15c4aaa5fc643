//! The daemonless package builder: images from Debian packages.
//!
//! A package whose `build.yml` has a `debian:` section ([`DebianSource`]) is
//! built without Docker, BuildKit or `apt`:
//!
//! 1. the mirror comes from the host's apt sources (or
//!    `LINUXKIT_DEBIAN_MIRROR`), the suite from `debian.suite` or the sources;
//! 2. `InRelease` → `Packages` → `.deb`s are downloaded into the Debian cache,
//!    each verified against the SHA256 of the file above it;
//! 3. `debian.packages` plus their `Depends`/`Pre-Depends` are resolved
//!    ([`resolve`](crate::debian::resolve())); `Essential` packages are
//!    *not* assumed present — there is no base image — so they are
//!    included when something depends on them, like any other package;
//! 4. each package's `data.tar` is unpacked, in resolution order (by name),
//!    into one [`Layer`]: later packages replace earlier files at the same
//!    path, directories merge, paths under `debian.exclude` are dropped,
//!    every mtime is [`DEFAULT_MTIME`];
//! 5. the layer is written as a PAX tar (sorted by path, hard links last),
//!    gzipped with a fixed header, and described by an OCI image config
//!    without a creation time — so the same package list gives the same
//!    manifest digest on every machine;
//! 6. blobs and the manifest go into the OCI cache under the package's
//!    canonical tag (`docker.io/ORG/IMAGE:TAG`).
//!
//! No maintainer script is run and no dpkg database is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::rc::Rc;

use linuxkit_oci::{Cache, Descriptor, Digest, ImageRef, Manifest, Platform, media_type};
use linuxkit_rootfs::{DEFAULT_MTIME, Entry, EntryKind, EntrySink};
use serde::Serialize;

use crate::debian::{self, Client, DebArchive, DebianError, Dependency, ResolveOptions};
use crate::{DebianSource, Package, PkgError};

/// The media type of the (single) layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The image label holding the JSON of `build.yml`'s `config:`.
pub const CONFIG_LABEL: &str = "org.mobyproject.config";

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Loading the package.
    #[error(transparent)]
    Pkg(#[from] PkgError),
    /// The Debian archive: mirror, indices, resolution, `.deb`s.
    #[error(transparent)]
    Debian(#[from] DebianError),
    /// The OCI cache.
    #[error(transparent)]
    Oci(#[from] linuxkit_oci::Error),
    /// A Dockerfile package: this builder has no Docker daemon.
    #[error(
        "package {}: Dockerfile packages need a Docker daemon; use a `debian:` source instead",
        pkg.display()
    )]
    NeedsDaemon {
        /// The package directory.
        pkg: PathBuf,
    },
    /// Neither a `debian:` section nor a Dockerfile.
    #[error("package {}: nothing to build: {} has no `debian:` section", pkg.display(), build_yml.display())]
    NoSource {
        /// The package directory.
        pkg: PathBuf,
        /// Its build file.
        build_yml: PathBuf,
    },
    /// The requested architecture is not among the package's `arches`.
    #[error("package {}: not built for {arch} (its `arches` are {})", pkg.display(), arches.join(", "))]
    Arch {
        /// The package directory.
        pkg: PathBuf,
        /// The architecture asked for.
        arch: String,
        /// The package's architectures.
        arches: Vec<String>,
    },
    /// A `data.tar` that cannot go into a layer (unsafe path, unreadable entry).
    #[error("{what}: {message}")]
    Layer {
        /// The package or archive.
        what: String,
        /// What is wrong.
        message: String,
    },
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Build even if the tag is already in the cache.
    pub force: bool,
    /// The architecture (GOARCH spelling: `amd64`, `arm64`, …).
    pub arch: String,
    /// Where downloaded indices and `.deb`s are cached; default
    /// [`Client::default_cache_dir`].
    pub debian_cache: Option<PathBuf>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            force: false,
            arch: linuxkit_oci::host_arch().to_string(),
            debian_cache: None,
        }
    }
}

/// The result of [`build`].
#[derive(Debug, Clone)]
pub struct Built {
    /// The canonical reference the image is cached under.
    pub reference: String,
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// `true` if the tag was already cached and nothing was built.
    pub cached: bool,
    /// The Debian packages that went into the layer, `name version`.
    pub packages: Vec<String>,
}

/// The package's `debian:` section, or why it cannot be built here.
pub fn debian_source(pkg: &Package) -> Result<&DebianSource, BuildError> {
    if let Some(d) = &pkg.build_yml().debian {
        return Ok(d);
    }
    if pkg.path().join(&pkg.build_yml().dockerfile).exists() {
        Err(BuildError::NeedsDaemon {
            pkg: pkg.path().to_owned(),
        })
    } else {
        Err(BuildError::NoSource {
            pkg: pkg.path().to_owned(),
            build_yml: pkg.build_yml_path().to_owned(),
        })
    }
}

/// Debian's name for a GOARCH.
pub fn debian_arch(goarch: &str) -> &str {
    match goarch {
        "arm" => "armhf",
        "386" => "i386",
        other => other,
    }
}

/// Builds `pkg` for `opts.arch` into `cache` (see the [module docs](self)),
/// unless its tag is already cached and `opts.force` is not set.
pub fn build(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Built, BuildError> {
    pkg.check_buildable()?;
    let src = debian_source(pkg)?;
    let info = pkg.build_yml();
    if !info.arches.iter().any(|a| a == &opts.arch) {
        return Err(BuildError::Arch {
            pkg: pkg.path().to_owned(),
            arch: opts.arch.clone(),
            arches: info.arches.clone(),
        });
    }
    let image = ImageRef::parse(&pkg.full_tag())?;
    let platform = Platform::linux(&opts.arch);
    let cached = if opts.force {
        None
    } else {
        cache.image(&image, &platform)?
    };
    if let Some(img) = cached {
        let manifest = Descriptor {
            media_type: img
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media_type::OCI_MANIFEST.into()),
            digest: img.manifest_digest.to_string(),
            size: cache.read_blob(&img.manifest_digest)?.len() as u64,
            platform: Some(platform),
            annotations: BTreeMap::new(),
        };
        return Ok(Built {
            reference: image.canonical(),
            manifest,
            cached: true,
            packages: Vec::new(),
        });
    }

    let mirror = debian::sources::find_mirror(src.suite.as_deref())?;
    let client = Client::for_mirror(&mirror, opts.debian_cache.clone());
    let release = client.release(&mirror.suite)?;
    let index = client.packages(&release, &mirror.components, debian_arch(&opts.arch))?;
    let wanted = src
        .packages
        .iter()
        .map(|p| p.parse::<Dependency>())
        .collect::<Result<Vec<_>, _>>()?;
    let resolved = debian::resolve(&index, &wanted, &ResolveOptions::default())?;

    let mut layer = Layer::new();
    let mut packages = Vec::new();
    for p in resolved {
        let deb = client.deb(p)?;
        let label = format!("{} {}", p.name, p.version);
        layer.add_deb(&label, &deb)?;
        packages.push(label);
    }
    let tar = layer.to_tar(&src.exclude)?;
    let manifest = store_image(cache, pkg, &opts.arch, &tar)?;
    cache.tag(&image.canonical(), manifest.clone())?;
    Ok(Built {
        reference: image.canonical(),
        manifest,
        cached: false,
        packages,
    })
}

/// Gzips `tar` and stores it with its image config and manifest in `cache`;
/// returns the manifest's descriptor (not yet tagged).
pub fn store_image(
    cache: &Cache,
    pkg: &Package,
    arch: &str,
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
    config: RuntimeConfig<'a>,
    rootfs: RootFs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<&'static str, String>,
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
pub fn image_config(pkg: &Package, arch: &str, diff_id: &Digest) -> Result<Vec<u8>, BuildError> {
    let info = pkg.build_yml();
    let mut labels = BTreeMap::new();
    if let Some(c) = &info.config {
        let json = serde_json::to_string(c).map_err(|e| BuildError::Layer {
            what: pkg.build_yml_path().display().to_string(),
            message: format!("cannot encode `config`: {e}"),
        })?;
        labels.insert(CONFIG_LABEL, json);
    }
    let config = ConfigJson {
        architecture: arch,
        os: "linux",
        config: RuntimeConfig {
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

/// One file system object of a [`Layer`], with its content.
#[derive(Debug, Clone)]
struct Item {
    entry: Entry,
    /// File content; for a hard link, the content of its target when the
    /// link was added (shared, so the link can tell whether the target was
    /// replaced since).
    data: Rc<Vec<u8>>,
}

/// The files of several `data.tar`s merged into one file system tree, and
/// written as one reproducible tar.
///
/// Held in memory: fine for the small images this builds; a large package
/// set needs a spill-to-disk map.
#[derive(Debug, Default)]
pub struct Layer {
    items: BTreeMap<String, Item>,
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Layer {
        Layer::default()
    }

    /// Adds the files of `deb`'s `data.tar`; `label` names it in errors.
    pub fn add_deb(&mut self, label: &str, deb: &DebArchive) -> Result<(), BuildError> {
        let what = format!("{label} ({})", deb.path().display());
        self.add_tar(&what, deb.data()?)
    }

    /// Adds the entries of a tar archive. Later entries replace earlier ones
    /// at the same path, except that a directory over a directory keeps the
    /// first one's metadata (as dpkg does).
    pub fn add_tar<R: Read>(
        &mut self,
        what: &str,
        mut archive: tar::Archive<R>,
    ) -> Result<(), BuildError> {
        let err = |message: String| BuildError::Layer {
            what: what.to_owned(),
            message,
        };
        for entry in archive.entries().map_err(|e| err(e.to_string()))? {
            let mut entry = entry.map_err(|e| err(e.to_string()))?;
            let raw = entry.path().map_err(|e| err(e.to_string()))?;
            let path = normalize(&raw.to_string_lossy()).map_err(&err)?;
            if path.is_empty() {
                continue; // the root directory
            }
            let h = entry.header();
            let mode = h.mode().map_err(|e| err(e.to_string()))? & 0o7777;
            let uid = h.uid().map_err(|e| err(e.to_string()))? as u32;
            let gid = h.gid().map_err(|e| err(e.to_string()))? as u32;
            let link = || -> Result<String, BuildError> {
                Ok(entry
                    .link_name()
                    .map_err(|e| err(e.to_string()))?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default())
            };
            let device = || -> Result<(u32, u32), BuildError> {
                let major = h.device_major().map_err(|e| err(e.to_string()))?;
                let minor = h.device_minor().map_err(|e| err(e.to_string()))?;
                Ok((major.unwrap_or(0), minor.unwrap_or(0)))
            };
            let mut data = Rc::new(Vec::new());
            let kind = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink { target: link()? },
                tar::EntryType::Link => {
                    let target = normalize(&link()?).map_err(&err)?;
                    match self.items.get(&target) {
                        Some(t) if t.entry.kind == EntryKind::File => {
                            data = t.data.clone();
                            let mut e = t.entry.clone();
                            e.path = path.clone();
                            e.kind = EntryKind::Hardlink { target };
                            e.size = 0;
                            self.insert(Item { entry: e, data });
                            continue;
                        }
                        _ => {
                            return Err(err(format!(
                                "hard link {path} to {target}, which is not an earlier regular file"
                            )));
                        }
                    }
                }
                tar::EntryType::Char => {
                    let (major, minor) = device()?;
                    EntryKind::Char { major, minor }
                }
                tar::EntryType::Block => {
                    let (major, minor) = device()?;
                    EntryKind::Block { major, minor }
                }
                tar::EntryType::Fifo => EntryKind::Fifo,
                // PAX/GNU metadata entries are consumed by the reader;
                // anything else is not a file system object.
                _ => continue,
            };
            let mut size = 0;
            if kind == EntryKind::File {
                let mut buf = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| err(format!("{path}: {e}")))?;
                size = buf.len() as u64;
                data = Rc::new(buf);
            }
            self.insert(Item {
                entry: Entry {
                    path,
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime: DEFAULT_MTIME,
                    size,
                    xattrs: Vec::new(),
                    provenance: None,
                },
                data,
            });
        }
        Ok(())
    }

    fn insert(&mut self, item: Item) {
        if item.entry.kind == EntryKind::Dir
            && self
                .items
                .get(&item.entry.path)
                .is_some_and(|old| old.entry.kind == EntryKind::Dir)
        {
            return;
        }
        self.items.insert(item.entry.path.clone(), item);
    }

    /// The paths in the layer (before exclusion), sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    /// The layer as an uncompressed tar: entries under an `exclude` prefix
    /// are dropped, missing parent directories are added (0755, root), all
    /// other entries come in path order, then hard links. A hard link whose
    /// target was excluded or replaced becomes a copy of the content it
    /// linked to.
    pub fn to_tar(&self, exclude: &[String]) -> Result<Vec<u8>, BuildError> {
        let exclude: Vec<String> = exclude
            .iter()
            .filter_map(|e| normalize(e).ok().filter(|e| !e.is_empty()))
            .collect();
        let excluded = |p: &str| {
            exclude
                .iter()
                .any(|e| p == e || (p.starts_with(e.as_str()) && p.as_bytes()[e.len()] == b'/'))
        };
        let kept: Vec<&Item> = self
            .items
            .values()
            .filter(|i| !excluded(&i.entry.path))
            .collect();
        let mut parents = BTreeSet::new();
        for i in &kept {
            let mut p = i.entry.path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if !self.items.contains_key(parent) {
                    parents.insert(parent.to_owned());
                }
                p = parent;
            }
        }
        let mut normal: BTreeMap<&str, Item> = BTreeMap::new();
        let mut links = Vec::new();
        for p in &parents {
            normal.insert(
                p,
                Item {
                    entry: Entry::dir(p.clone()),
                    data: Rc::default(),
                },
            );
        }
        for i in kept {
            match &i.entry.kind {
                EntryKind::Hardlink { target } => {
                    let intact = !excluded(target)
                        && self
                            .items
                            .get(target)
                            .is_some_and(|t| Rc::ptr_eq(&t.data, &i.data));
                    if intact {
                        links.push(i.clone());
                    } else {
                        let mut e = i.entry.clone();
                        e.kind = EntryKind::File;
                        e.size = i.data.len() as u64;
                        normal.insert(
                            &i.entry.path,
                            Item {
                                entry: e,
                                data: i.data.clone(),
                            },
                        );
                    }
                }
                _ => {
                    normal.insert(&i.entry.path, i.clone());
                }
            }
        }
        let mut w = linuxkit_output::TarWriter::new(Vec::new());
        let tar_err = |e: linuxkit_rootfs::Error| BuildError::Layer {
            what: "layer".into(),
            message: e.to_string(),
        };
        for i in normal.values().chain(&links) {
            let mut data: &[u8] = if i.entry.kind == EntryKind::File {
                &i.data
            } else {
                &[]
            };
            w.add(&i.entry, &mut data).map_err(tar_err)?;
        }
        Ok(w.finish().expect("writing to memory"))
    }
}

/// `./usr/bin/` → `usr/bin`; refuses `..` components.
fn normalize(p: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(format!("unsafe path {p:?}")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("./usr/bin/").unwrap(), "usr/bin");
        assert_eq!(normalize("/a//b").unwrap(), "a/b");
        assert_eq!(normalize("./").unwrap(), "");
        assert!(normalize("./a/../../etc").is_err());
    }

    #[test]
    fn gzip_is_deterministic_with_a_fixed_header() {
        let a = gzip(b"hello");
        assert_eq!(a, gzip(b"hello"));
        assert_eq!(&a[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    }
}
