//! Lays out the whole root filesystem, in the reference's order:
//!
//! 1. the kernel: `boot/cmdline`, `boot/kernel`, `boot/ucode.cpio`, then the
//!    modules tarball (`kernel.tar`) expanded at `/`;
//! 2. the `init` images, flattened at `/` in order;
//! 3. `containers/volumes/NAME/{lower,tmp,merged}`;
//! 4. the bundles `containers/onboot/NNN-NAME/`, `containers/onshutdown/NNN-NAME/`
//!    and `containers/services/NAME/` with `config.json` and `runtime.json`;
//! 5. the `files` section;
//! 6. the consolidated SBOM of the images (`sbom.spdx.json`, [`crate::sbom`]).
//!
//! Every image is unpacked as the reference's `ImageTar` unpacks it, and
//! followed by the same standard entries (`dev`, `dev/pts`, `dev/shm`,
//! `etc`, `etc/hosts`, `etc/mtab`, `etc/resolv.conf`, `proc`, `sys`), so
//! that the last entry for each of those paths, the one that counts when
//! the archive is unpacked, is the reference's and not the image's.
//! Every entry carries the reference's `LINUXKIT.source` and
//! `LINUXKIT.location`: generated ones too (the image and its place in the
//! YAML for what belongs to an image, `linuxkit.volumes` and
//! `linuxkit.files` for volumes' directories and `files:`), because the
//! reference's `--input-tar` finds an earlier build's parts by them.
//!
//! Every entry goes to one [`EntrySink`]; parent directories are emitted
//! before their children (once per part, except where the part just
//! before wrote them, as the reference writes them once); generated
//! entries get [`DEFAULT_MTIME`](crate::DEFAULT_MTIME).

use std::collections::{BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use linuxkit_config::{
    Config, File as FileSpec, IdMap, IdSpec, Image, MetadataFormat, Section, VolumeFormat,
};
use linuxkit_oci::{Cache, CachedImage, Digest, ImageRef, ImageTree, Platform, media_type};

use crate::entry::{Entry, EntryKind, EntrySink};
use crate::error::{Error, Result};
use crate::files;
use crate::flatten::{Compression, Filter, Layer, Replacement, flatten_layers};
use crate::sbom::{Consolidated, SbomOptions};
use crate::spec::{ImageRuntimeDefaults, oci_config, readonly_rootfs, runtime_config_with_root};

/// What assembly reads images from.
pub struct Images<'a> {
    /// The local image cache every referenced image must already be in
    /// (assembly does not pull).
    pub cache: &'a Cache,
    /// Which manifest of a multi-platform image to use.
    pub platform: Platform,
    /// Where to put files extracted from the kernel image (the kernel and
    /// its modules tarball) while assembling.
    pub scratch: &'a Path,
}

impl Images<'_> {
    fn get(&self, reference: &str) -> Result<CachedImage> {
        let r = ImageRef::parse(reference)?;
        self.cache.image(&r, &self.platform)?.ok_or_else(|| {
            linuxkit_oci::Error::NotCached {
                image: r.canonical(),
            }
            .into()
        })
    }

    /// `reference` as an OCI layout for `platforms` (`os/arch[/variant]`,
    /// checked by validation) holds it, from the cache.
    fn tree(&self, reference: &str, platforms: &[String]) -> Result<ImageTree> {
        let r = ImageRef::parse(reference)?;
        let platforms: Vec<Platform> = platforms
            .iter()
            .filter_map(|p| Platform::parse(p))
            .collect();
        self.cache.tree(&r, &platforms)?.ok_or_else(|| {
            linuxkit_oci::Error::NotCached {
                image: r.canonical(),
            }
            .into()
        })
    }

    fn layers(&self, img: &CachedImage) -> Result<Vec<Layer>> {
        img.manifest
            .layers
            .iter()
            .map(|l| Layer::cached(&img.name, self.cache, l))
            .collect()
    }
}

/// Emits parent directories once each, so every entry's parent precedes it,
/// and marks every generated entry with the part's provenance (the
/// reference writes `LINUXKIT.source`/`LINUXKIT.location` on everything it
/// generates too: bundle directories, `config.json`, `runtime.json`, a
/// volume's `tmp`/`merged`, the standard entries).
struct Dirs<'s> {
    sink: &'s mut dyn EntrySink,
    done: BTreeSet<String>,
    /// The provenance of entries that carry none.
    prov: Option<(String, String)>,
}

impl Dirs<'_> {
    fn parents(&mut self, path: &str) -> Result<()> {
        let mut acc = String::new();
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            if self.done.insert(acc.clone()) {
                let e = Entry {
                    provenance: self.prov.clone(),
                    ..Entry::dir(acc.clone())
                };
                self.sink.add(&e, &mut std::io::empty())?;
            }
        }
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.parents(path)?;
        if self.done.insert(path.to_string()) {
            let e = Entry {
                provenance: self.prov.clone(),
                ..Entry::dir(path)
            };
            self.sink.add(&e, &mut std::io::empty())?;
        }
        Ok(())
    }

    /// Takes `path` and its ancestors as written by the part just before
    /// this one (the reference writes them once, not once per part).
    fn assume(&mut self, path: &str) {
        let mut acc = String::new();
        for p in path.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            self.done.insert(acc.clone());
        }
    }

    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        self.parents(&e.path)?;
        if e.kind == EntryKind::Dir {
            self.done.insert(e.path.trim_end_matches('/').to_string());
        }
        if e.provenance.is_none() && self.prov.is_some() {
            let e = Entry {
                provenance: self.prov.clone(),
                ..e.clone()
            };
            return self.sink.add(&e, data);
        }
        self.sink.add(e, data)
    }

    fn bytes(&mut self, e: Entry, data: &[u8]) -> Result<()> {
        let e = Entry {
            size: data.len() as u64,
            ..e
        };
        self.add(&e, &mut Cursor::new(data))
    }
}

impl EntrySink for Dirs<'_> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        Dirs::add(self, e, data)
    }
}

/// Marks every entry with where it came from (the reference's
/// `LINUXKIT.source` and `LINUXKIT.location` PAX records), and notes
/// whether the image had an `etc/mtab`.
struct Provenance<'a, 's> {
    out: &'a mut Dirs<'s>,
    source: &'a str,
    location: String,
    /// `PREFIX/etc/mtab`, and whether an entry had that path.
    mtab: String,
    had_mtab: bool,
}

impl EntrySink for Provenance<'_, '_> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        if e.path == self.mtab {
            self.had_mtab = true;
        }
        let e = Entry {
            provenance: Some((self.source.to_string(), self.location.clone())),
            ..e.clone()
        };
        self.out.add(&e, data)
    }
}

/// The name the reference records as an image's `LINUXKIT.source`: the
/// reference as written, completed to Docker Hub's (`docker.io/` before a
/// `user/name`, `docker.io/library/` before a bare name) and with no tag
/// added.
pub(crate) fn source_name(reference: &str) -> String {
    linuxkit_config::reference_expand(reference)
}

/// What an image's `etc/resolv.conf` becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resolv {
    /// In `init` and volume images: a link to where dhcpcd writes.
    Link,
    /// In a container's root: the reference's placeholder file.
    Placeholder,
}

const RESOLV_LINK: &str = "/run/resolvconf/resolv.conf";

/// Flattens `img` under `prefix` into `out` as the reference's `ImageTar`
/// does: every entry tagged with its source and location, the entries
/// Docker adds dropped ([`dropped`]), `etc/hosts` and `etc/resolv.conf`
/// replaced where the image has them, then the standard entries
/// ([`standard_entries`]).
#[allow(clippy::too_many_arguments)]
fn flatten_into(
    images: &Images,
    img: &CachedImage,
    prefix: &str,
    resolv: Resolv,
    source: &str,
    location: String,
    out: &mut Dirs,
) -> Result<()> {
    out.prov = Some((source.to_string(), location.clone()));
    let layers = images.layers(img)?;
    let filter = |p: &str| match p {
        _ if dropped(p) => Filter::Drop,
        "etc/hosts" => Filter::Replace(Replacement {
            kind: EntryKind::File,
            data: HOSTS.to_vec(),
        }),
        "etc/resolv.conf" => Filter::Replace(match resolv {
            Resolv::Link => Replacement {
                kind: EntryKind::Symlink {
                    target: RESOLV_LINK.into(),
                },
                data: Vec::new(),
            },
            Resolv::Placeholder => Replacement {
                kind: EntryKind::File,
                data: RESOLV_PLACEHOLDER.to_vec(),
            },
        }),
        _ => Filter::Keep,
    };
    let mut sink = Provenance {
        out,
        source,
        location,
        mtab: format!("{prefix}etc/mtab"),
        had_mtab: false,
    };
    flatten_layers(&img.name, &layers, prefix, &filter, &mut sink)?;
    let had_mtab = sink.had_mtab;
    standard_entries(prefix, resolv, had_mtab, sink.out)
}

/// The reference's `oci-layout` file (go-containerregistry's, indented).
const OCI_LAYOUT_FILE: &[u8] = b"{\n    \"imageLayoutVersion\": \"1.0.0\"\n}";

/// A volume of `format: oci`: the image as an OCI image layout under
/// `prefix`, entry for entry as the reference's `ImageOCITar` writes it:
/// `oci-layout`, `blobs/`, `blobs/sha256/`, then for each selected manifest
/// (index order) its config, its layers and the manifest itself, then the
/// index as served, then `index.json` naming the index under the image's
/// name. A blob two manifests share is written once (the reference writes
/// it twice, the same bytes). A single-platform image, which the reference
/// cannot store this way, gets its manifest's blobs and an `index.json`
/// naming the manifest.
fn oci_layout(
    cache: &Cache,
    tree: &ImageTree,
    source: &str,
    prefix: &str,
    out: &mut Dirs,
) -> Result<()> {
    out.dir(prefix.trim_end_matches('/'))?;
    out.bytes(
        Entry::file(format!("{prefix}oci-layout"), 0),
        OCI_LAYOUT_FILE,
    )?;
    out.dir(&format!("{prefix}blobs"))?;
    out.dir(&format!("{prefix}blobs/sha256"))?;
    let mut written = BTreeSet::new();
    let mut blob = |digest: &str, out: &mut Dirs| -> Result<()> {
        let d = Digest::parse(digest)?;
        if !written.insert(d.hex().to_string()) {
            return Ok(());
        }
        let path = cache.blob_path(&d);
        let io = |source| Error::Io {
            context: format!("cannot read the cached blob {}", path.display()),
            source,
        };
        let mut f = std::fs::File::open(&path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        out.add(
            &Entry::file(format!("{prefix}blobs/sha256/{}", d.hex()), size),
            &mut f,
        )
    };
    for (desc, _, manifest) in &tree.manifests {
        blob(&manifest.config.digest, out)?;
        for l in &manifest.layers {
            blob(&l.digest, out)?;
        }
        blob(&desc.digest, out)?;
    }
    let index = media_type::is_index(&tree.top.media_type);
    if index {
        blob(&tree.top.digest, out)?;
    }
    // go-containerregistry's `json.MarshalIndent(index, "", "   ")` of a
    // one-entry index; the reference always says the entry is an OCI index.
    let entry_type = if index {
        media_type::OCI_INDEX
    } else {
        tree.top.media_type.as_str()
    };
    let json = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let text = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": {},\n   \"manifests\": [\n      {{\n         \"mediaType\": {},\n         \"size\": {},\n         \"digest\": {},\n         \"annotations\": {{\n            \"org.opencontainers.image.ref.name\": {}\n         }}\n      }}\n   ]\n}}",
        json(media_type::OCI_INDEX),
        json(entry_type),
        tree.top_bytes.len(),
        json(&tree.top.digest),
        json(source),
    );
    out.bytes(
        Entry::file(format!("{prefix}index.json"), 0),
        text.as_bytes(),
    )
}

/// The entries the reference adds after every image it unpacks (its
/// `touch` list, in its sorted order): `dev`, `dev/pts`, `dev/shm`, `etc`
/// (0755 directories: the image's own directory entries never count as
/// present, because its flattening reader cleans `dev/` to `dev` and the
/// list is keyed `dev/`), `etc/hosts` and `etc/resolv.conf` (always, even
/// after a replaced copy from the image), `etc/mtab` (a link, mode 0755,
/// unless the image has one), `proc` and `sys`. The resolv.conf link has
/// mode 0644, the reference's header for the file it replaces.
fn standard_entries(prefix: &str, resolv: Resolv, had_mtab: bool, out: &mut Dirs) -> Result<()> {
    for d in ["dev", "dev/pts", "dev/shm", "etc"] {
        out.add(&Entry::dir(format!("{prefix}{d}")), &mut std::io::empty())?;
    }
    out.bytes(Entry::file(format!("{prefix}etc/hosts"), 0), HOSTS)?;
    if !had_mtab {
        let mtab = Entry {
            mode: 0o755,
            ..Entry::symlink(format!("{prefix}etc/mtab"), "/proc/mounts")
        };
        out.add(&mtab, &mut std::io::empty())?;
    }
    match resolv {
        Resolv::Link => {
            let link = Entry {
                mode: 0o644,
                ..Entry::symlink(format!("{prefix}etc/resolv.conf"), RESOLV_LINK)
            };
            out.add(&link, &mut std::io::empty())?;
        }
        Resolv::Placeholder => out.bytes(
            Entry::file(format!("{prefix}etc/resolv.conf"), 0),
            RESOLV_PLACEHOLDER,
        )?,
    }
    for d in ["proc", "sys"] {
        out.add(&Entry::dir(format!("{prefix}{d}")), &mut std::io::empty())?;
    }
    Ok(())
}

/// The reference's generated `etc/hosts`.
const HOSTS: &[u8] = b"127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n";
/// The reference's `etc/resolv.conf` in a container (it starts with an
/// empty line).
const RESOLV_PLACEHOLDER: &[u8] = b"\n# no resolv.conf configured\n";

/// Entries the reference never takes from an image.
fn dropped(path: &str) -> bool {
    matches!(
        path,
        ".dockerenv" | "Dockerfile" | "dev/console" | "dev/pts" | "dev/shm" | "etc/hostname"
    ) || path.starts_with("dev/pts/")
        || path.starts_with("dev/shm/")
}

/// One independent piece of the root filesystem. Parts are self-contained
/// (each emits the parent directories it needs), so outputs may produce them
/// in parallel and cache what they produce: a part with a `key` always
/// produces the same entries for the same key.
pub struct Part<'a> {
    /// A content key (the image digest and everything else the entries
    /// depend on) for parts worth caching; `None` for small generated parts.
    pub key: Option<String>,
    /// What the part is, for progress and errors (`init[0] linuxkit/init:v1`).
    pub label: String,
    /// The configuration's section the part belongs to (`kernel`, `init`,
    /// `onboot`, `onshutdown`, `services`, `volumes`, `files`), and the
    /// image it comes from or belongs to, for the size report: a user sees
    /// where the bytes of an image go.
    pub section: &'static str,
    /// The image reference the part comes from, as the configuration
    /// writes it; `None` for parts no image contributes to (`files`, a
    /// volume without an image).
    pub image: Option<String>,
    produce: Box<Produce<'a>>,
}

/// How a [`Part`] produces its entries; parts are produced on several threads.
type Produce<'a> = dyn Fn(&mut dyn EntrySink) -> Result<()> + Send + Sync + 'a;

impl Part<'_> {
    fn of(mut self, section: &'static str, image: Option<&str>) -> Self {
        self.section = section;
        self.image = image.map(str::to_string);
        self
    }

    /// A part whose entries `produce` emits, in stream order (the same
    /// entries whenever it has the same `key`); no section or image. For
    /// outputs' tests, which need parts without images.
    pub fn from_fn<'a>(
        key: Option<String>,
        label: impl Into<String>,
        produce: impl Fn(&mut dyn EntrySink) -> Result<()> + Send + Sync + 'a,
    ) -> Part<'a> {
        Part {
            key,
            label: label.into(),
            section: "",
            image: None,
            produce: Box::new(produce),
        }
    }

    /// Emits the part's entries, in stream order, into `sink`; may be
    /// called from any thread.
    pub fn produce(&self, sink: &mut dyn EntrySink) -> Result<()> {
        (self.produce)(sink)
    }
}

/// Bumped whenever the entries a keyed part produces change for the same
/// inputs, so cached outputs of older versions are not reused.
const PART_FORMAT: &str = "linuxkit-rs-part-2";

fn part<'a>(
    key: Option<String>,
    label: String,
    f: impl Fn(&mut Dirs) -> Result<()> + Send + Sync + 'a,
) -> Part<'a> {
    Part {
        key: key.map(|k| format!("{PART_FORMAT}\n{k}")),
        label,
        section: "",
        image: None,
        produce: Box::new(move |sink| {
            let mut out = Dirs {
                sink,
                done: BTreeSet::new(),
                prov: None,
            };
            f(&mut out)
        }),
    }
}

/// The root filesystem of `config` as an ordered list of parts, the
/// consolidated SBOM last if `sbom` says where (see [`crate::sbom`]).
/// `config` must be validated and its images cached.
pub fn parts<'a>(
    config: &'a Config,
    images: &'a Images<'a>,
    sbom: Option<&'a SbomOptions>,
) -> Result<Vec<Part<'a>>> {
    let m = &config.moby;
    let mut parts = Vec::new();
    // Each unpacked image and where, in unpacking order: whose SBOMs the
    // consolidated one gathers.
    let mut unpacked: Vec<(String, CachedImage)> = Vec::new();
    if !m.kernel.image.is_empty() {
        let k = &m.kernel;
        let img = images.get(&k.image)?;
        unpacked.push((String::new(), img.clone()));
        let key = format!(
            "kernel {} binary={:?} tar={:?} ucode={:?}",
            img.manifest_digest, k.binary, k.tar, k.ucode
        );
        let prov = (source_name(&k.image), "kernel".to_string());
        let cmdline_prov = prov.clone();
        parts.push(
            part(None, "kernel cmdline".into(), move |out| {
                out.prov = Some(cmdline_prov.clone());
                out.dir("boot")?;
                out.bytes(Entry::file("boot/cmdline", 0), k.cmdline.as_bytes())
            })
            .of("kernel", Some(&k.image)),
        );
        parts.push(
            part(Some(key), format!("kernel {}", k.image), move |out| {
                out.prov = Some(prov.clone());
                // `boot` came with the command line, just before.
                out.assume("boot");
                kernel(config, images, &img, out)
            })
            .of("kernel", Some(&k.image)),
        );
    }
    for (i, reference) in m.init.iter().enumerate() {
        let img = images.get(reference)?;
        unpacked.push((String::new(), img.clone()));
        let key = format!("init {} {reference}", img.manifest_digest);
        parts.push(
            part(Some(key), format!("init[{i}] {reference}"), move |out| {
                flatten_into(
                    images,
                    &img,
                    "",
                    Resolv::Link,
                    &source_name(reference),
                    format!("init[{i}]"),
                    out,
                )
            })
            .of("init", Some(reference)),
        );
    }
    for (i, v) in m.volumes.iter().enumerate() {
        let base = format!("containers/volumes/{}", v.name);
        let location = format!("volume[{i}]");
        if !v.image.is_empty() && v.format == Some(VolumeFormat::Oci) {
            let tree = images.tree(&v.image, &v.platforms)?;
            let key = format!(
                "volume-oci {} {base} {} {:?}",
                tree.top.digest, v.image, v.platforms
            );
            let (base, location) = (base.clone(), location.clone());
            parts.push(
                part(Some(key), format!("volumes[{i}] {}", v.image), move |out| {
                    let source = source_name(&v.image);
                    out.prov = Some((source.clone(), location.clone()));
                    oci_layout(images.cache, &tree, &source, &format!("{base}/lower/"), out)
                })
                .of("volumes", Some(&v.image)),
            );
        } else if !v.image.is_empty() {
            let img = images.get(&v.image)?;
            unpacked.push((format!("{base}/lower/"), img.clone()));
            let key = format!("volume {} {base} {}", img.manifest_digest, v.image);
            let (base, location) = (base.clone(), location.clone());
            parts.push(
                part(Some(key), format!("volumes[{i}] {}", v.image), move |out| {
                    let source = source_name(&v.image);
                    out.prov = Some((source.clone(), location.clone()));
                    out.dir(&format!("{base}/lower"))?;
                    flatten_into(
                        images,
                        &img,
                        &format!("{base}/lower/"),
                        Resolv::Link,
                        &source,
                        location.clone(),
                        out,
                    )
                })
                .of("volumes", Some(&v.image)),
            );
        }
        parts.push(
            part(None, format!("volumes[{i}]"), move |out| {
                let lower = format!("{base}/lower");
                if v.image.is_empty() {
                    out.prov = Some(("empty".into(), location.clone()));
                    out.dir(&lower)?;
                } else {
                    out.assume(&lower);
                }
                // Read-only or not, as the reference.
                out.prov = Some(("linuxkit.volumes".into(), location.clone()));
                out.dir(&format!("{base}/tmp"))?;
                out.dir(&format!("{base}/merged"))
            })
            .of("volumes", (!v.image.is_empty()).then_some(v.image.as_str())),
        );
    }
    let ids = std::sync::Arc::new(IdMap::new(m));
    // A repeated image is unpacked once; later bundles mount that copy. As
    // the reference's `dupMap`: keyed by the reference as written
    // (completed), read-only or not, not by content.
    let mut first_copy: HashMap<String, String> = HashMap::new();
    for (section, i, c) in m.containers() {
        let dir = match section {
            Section::Services => format!("containers/services/{}", c.name),
            _ => format!("containers/{}/{i:03}-{}", section.key(), c.name),
        };
        let img = images.get(&c.image)?;
        let defaults = ImageRuntimeDefaults::from_image_config_json(&img.config)?;
        let label = defaults.parse_label(&img.name)?;
        let readonly = readonly_rootfs(c, label.as_ref());
        let root = format!("{dir}/{}", if readonly { "rootfs" } else { "lower" });
        let copy_key = source_name(&c.image);
        let image_root = match first_copy.get(&copy_key) {
            Some(first) => first.clone(),
            None => {
                first_copy.insert(copy_key, root.clone());
                unpacked.push((format!("{root}/"), img.clone()));
                let key = format!("bundle {} {root} {}", img.manifest_digest, c.image);
                let location = format!("{}[{i}]", section.key());
                let part_root = root.clone();
                let img = img.clone();
                parts.push(
                    part(Some(key), format!("{location} {}", c.image), move |out| {
                        image_root_fs(images, &img, &part_root, &c.image, location.clone(), out)
                    })
                    .of(section.key(), Some(&c.image)),
                );
                root.clone()
            }
        };
        let ids = ids.clone();
        let prov = (source_name(&c.image), format!("{}[{i}]", section.key()));
        parts.push(
            part(None, format!("{} {}", section.key(), c.name), move |out| {
                out.prov = Some(prov.clone());
                if image_root == root {
                    // The image part just before wrote `root` and its parents.
                    out.assume(&root);
                }
                bundle_files(
                    config,
                    &ids,
                    c,
                    &dir,
                    &root,
                    &image_root,
                    readonly,
                    &defaults,
                    label.as_ref(),
                    out,
                )
            })
            .of(section.key(), Some(&c.image)),
        );
    }
    if !m.files.is_empty() {
        parts.push(
            part(None, "files".into(), move |out| {
                for (i, f) in m.files.iter().enumerate() {
                    file(config, &ids, i, f, out)?;
                }
                Ok(())
            })
            .of("files", None),
        );
    }
    if let Some(sbom) = sbom {
        // Keyed by what it is made of (each image's attestation manifest,
        // where it is unpacked) and how, so that a warm build reuses it.
        let mut key = format!("sbom {} {}", sbom.path(), sbom.created());
        for (prefix, img) in &unpacked {
            let att = images.cache.attestation_manifest(img)?;
            // Whether its statements are all here (a pull by an earlier
            // version fetched none): the SBOM changes when they come.
            let complete = match &att {
                Some(d) => {
                    let digest = Digest::parse(&d.digest)?;
                    images.cache.has_blob(&digest)
                        && serde_json::from_slice::<linuxkit_oci::Manifest>(
                            &images.cache.read_blob(&digest)?,
                        )
                        .is_ok_and(|m| {
                            m.layers.iter().all(|l| {
                                Digest::parse(&l.digest).is_ok_and(|l| images.cache.has_blob(&l))
                            })
                        })
                }
                None => true,
            };
            key.push_str(&format!(
                "\n{prefix} {} {} {complete}",
                img.manifest_digest,
                att.map(|d| d.digest).unwrap_or_default()
            ));
        }
        parts.push(
            part(Some(key), "sbom".into(), move |out| {
                let mut doc = Consolidated::default();
                for (prefix, img) in &unpacked {
                    let found = images.cache.sboms(img)?;
                    if !found.missing.is_empty() {
                        tracing::warn!(
                            "{}: its SBOM attestation is not in the cache (blobs {}), so the image's SBOM is left out; pull the image again (`linuxkit cache pull {}`, or `build --pull`) to fetch it",
                            img.name,
                            found.missing.join(", "),
                            img.name
                        );
                    }
                    for p in found.predicates {
                        doc.add(&img.name, prefix, p)?;
                    }
                }
                let bytes = doc.finish(sbom.created());
                out.bytes(sbom.entry(bytes.len() as u64), &bytes)
            })
            .of("sbom", None),
        );
    }
    Ok(parts)
}

/// Assembles the whole root filesystem of `config` into one sink, part by
/// part.
pub fn assemble(config: &Config, images: &Images, sink: &mut dyn EntrySink) -> Result<()> {
    for p in parts(config, images, None)? {
        p.produce(sink)?;
    }
    Ok(())
}

fn kernel(config: &Config, images: &Images, img: &CachedImage, out: &mut Dirs) -> Result<()> {
    let k = &config.moby.kernel;
    let binary = if k.binary.is_empty() {
        "kernel"
    } else {
        k.binary.as_str()
    };
    // As the reference's kernel filter: `tar: none` or an empty `tar` is no
    // modules tarball, an empty `ucode` no microcode; a missing kernel or
    // tarball is an error, a missing microcode file is not.
    let tar = match k.tar.as_deref() {
        None => "kernel.tar",
        Some("") => "none",
        Some(t) => t,
    };
    let ucode = k.ucode.as_deref().filter(|u| !u.is_empty());
    let mut wanted: Vec<&str> = vec![binary];
    if tar != "none" {
        wanted.push(tar);
    }
    if let Some(u) = ucode {
        wanted.push(u);
    }
    let found = extract_files(images, img, &wanted)?;
    let path_of = |name: &str| -> Result<(&PathBuf, u32)> {
        found
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, p, mode)| (p, *mode))
            .ok_or_else(|| {
                Error::Config(config.kernel_error(
                    "image",
                    format!("kernel image {} has no file `{name}`", img.name),
                ))
            })
    };
    // The kernel and the microcode keep the image's mode, as in the
    // reference.
    let copy = |out: &mut Dirs, dest: &str, (src, mode): (&PathBuf, u32)| -> Result<()> {
        let f = std::fs::File::open(src).map_err(|source| Error::Io {
            context: format!("cannot read {}", src.display()),
            source,
        })?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        let e = Entry {
            mode,
            ..Entry::file(dest, size)
        };
        out.add(&e, &mut std::io::BufReader::new(f))
    };
    copy(out, "boot/kernel", path_of(binary)?)?;
    if let Some(u) = ucode
        && let Ok(found) = path_of(u)
    {
        copy(out, "boot/ucode.cpio", found)?;
    }
    if tar != "none" {
        let layer = Layer::from_path(
            format!("{}:{tar}", img.name),
            Compression::None,
            path_of(tar)?.0.clone(),
        );
        // Dirs gives every entry the kernel's provenance, as the
        // reference's `tarAppend`.
        flatten_layers(
            &format!("{} ({tar})", img.name),
            &[layer],
            "",
            &|_| Filter::Keep,
            out,
        )?;
    }
    Ok(())
}

/// Copies the named top-level files of an image (as its layers merge) to
/// scratch files; returns (name, path, mode) for those found.
fn extract_files(
    images: &Images,
    img: &CachedImage,
    names: &[&str],
) -> Result<Vec<(String, PathBuf, u32)>> {
    struct Grab<'a> {
        names: &'a [&'a str],
        dir: &'a Path,
        found: Vec<(String, PathBuf, u32)>,
    }
    impl EntrySink for Grab<'_> {
        fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
            if e.kind == EntryKind::File && self.names.contains(&e.path.as_str()) {
                let dest = self.dir.join(format!("extract-{}", self.found.len()));
                let mut f = std::fs::File::create(&dest).map_err(|source| Error::Io {
                    context: format!("cannot create {}", dest.display()),
                    source,
                })?;
                std::io::copy(&mut data.take(e.size), &mut f).map_err(|source| Error::Io {
                    context: format!("cannot write {}", dest.display()),
                    source,
                })?;
                self.found.push((e.path.clone(), dest, e.mode));
            }
            Ok(())
        }
    }
    let mut grab = Grab {
        names,
        dir: images.scratch,
        found: Vec::new(),
    };
    let filter = |p: &str| {
        if names
            .iter()
            .any(|n| *n == p || n.starts_with(&format!("{p}/")))
        {
            Filter::Keep
        } else {
            Filter::Drop
        }
    };
    flatten_layers(&img.name, &images.layers(img)?, "", &filter, &mut grab)?;
    Ok(grab.found)
}

/// The image of a bundle, unpacked at `root` (its `lower/` or `rootfs/`).
fn image_root_fs(
    images: &Images,
    img: &CachedImage,
    root: &str,
    reference: &str,
    location: String,
    out: &mut Dirs,
) -> Result<()> {
    let source = source_name(reference);
    out.prov = Some((source.clone(), location.clone()));
    out.dir(root)?;
    flatten_into(
        images,
        img,
        &format!("{root}/"),
        Resolv::Placeholder,
        &source,
        location,
        out,
    )
}

/// Everything of a bundle but its image, in the reference's order:
/// `config.json`, the directories the in-VM runner mounts on, then
/// `runtime.json`. `image_root` is where the image is unpacked: `root`
/// itself, or an earlier bundle's copy (then, as in the reference, a
/// writable bundle gets no `lower/` of its own, and a read-only one its
/// `rootfs/` mount point).
#[allow(clippy::too_many_arguments)]
fn bundle_files(
    config: &Config,
    ids: &IdMap,
    c: &Image,
    dir: &str,
    root: &str,
    image_root: &str,
    readonly: bool,
    defaults: &ImageRuntimeDefaults,
    label: Option<&linuxkit_config::ImageConfig>,
    out: &mut Dirs,
) -> Result<()> {
    out.dir(dir)?;
    let spec = oci_config(c, label, defaults, ids, &config.moby.volumes)?;
    out.bytes(
        Entry::file(format!("{dir}/config.json"), 0),
        spec.as_bytes(),
    )?;
    if !readonly {
        out.dir(&format!("{dir}/tmp"))?;
        out.dir(&format!("{dir}/rootfs"))?;
    } else if image_root != root {
        out.dir(root)?;
    }
    let runtime = runtime_config_with_root(
        c,
        label,
        readonly,
        &format!("/{dir}"),
        &format!("/{image_root}"),
    );
    out.bytes(
        Entry::file(format!("{dir}/runtime.json"), 0),
        runtime.as_bytes(),
    )
}

/// One `files:` entry (laid out by [`crate::files`], as a package's
/// `files:` is). The contents are read first, so an `optional` source that
/// is missing adds nothing, not even its parent directories (as in the
/// reference).
fn file(config: &Config, ids: &IdMap, i: usize, f: &FileSpec, out: &mut Dirs) -> Result<()> {
    let err = |sub: &str, msg: String| Error::Config(config.error_at("files", i, sub, msg));
    // Validation refused paths that escape or name the root; this is the
    // same rule, so no entry can be written outside the image even if a
    // caller skipped validation.
    let path = linuxkit_config::image_path(&f.path)
        .map_err(|p| err("path", format!("file path `{}` {p}", f.path)))?;
    let id = |s: &Option<IdSpec>, field: &str| -> Result<u32> {
        match s {
            None => Ok(0),
            Some(s) => ids
                .resolve(s)
                .ok_or_else(|| err(field, format!("unknown user or group `{s}`"))),
        }
    };
    let (uid, gid) = (id(&f.uid, "uid")?, id(&f.gid, "gid")?);
    let mode = match &f.mode {
        Some(m) => linuxkit_config::parse_mode(m)
            .ok_or_else(|| err("mode", format!("invalid mode `{m}`")))?,
        None => files::default_mode(f.directory),
    };
    let contents: Vec<u8> = if f.directory || f.symlink.is_some() {
        Vec::new()
    } else if let Some(c) = &f.contents {
        c.clone().into_bytes()
    } else if let Some(fmt) = f.metadata {
        match fmt {
            MetadataFormat::Yaml => linuxkit_config::metadata_yaml(&config.moby).into_bytes(),
            MetadataFormat::Json => linuxkit_config::metadata_json(&config.moby).into_bytes(),
        }
    } else if let Some(src) = &f.source {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let p = linuxkit_config::expand_home(src, home.as_deref()).map_err(|m| err("source", m))?;
        match std::fs::read(&p) {
            Ok(b) => b,
            Err(_) if f.optional => return Ok(()),
            Err(e) => return Err(err("source", format!("cannot read {}: {e}", p.display()))),
        }
    } else {
        Vec::new()
    };
    let entry = files::FileEntry {
        spec: f,
        path: &path,
        uid,
        gid,
        mode,
        contents,
        provenance: Some(("linuxkit.files".to_string(), format!("files[{i}]"))),
    };
    // The reference makes a `files:` entry's parents unless an earlier
    // entry of `files:` made them.
    for (e, data) in entry.entries(|p| out.done.contains(p)) {
        out.add(&e, &mut Cursor::new(data))?;
    }
    Ok(())
}
