//! Lays out the whole root filesystem, in the reference's order:
//!
//! 1. the kernel: `boot/cmdline`, `boot/kernel`, `boot/ucode.cpio`, then the
//!    modules tarball (`kernel.tar`) expanded at `/`;
//! 2. the `init` images, flattened at `/` in order;
//! 3. `containers/volumes/NAME/{lower,tmp,merged}`;
//! 4. the bundles `containers/onboot/NNN-NAME/`, `containers/onshutdown/NNN-NAME/`
//!    and `containers/services/NAME/` with `config.json` and `runtime.json`;
//! 5. the `files` section.
//!
//! Every entry goes to one [`EntrySink`]; parent directories are emitted
//! before their children, generated entries get [`DEFAULT_MTIME`](crate::DEFAULT_MTIME).

use std::collections::{BTreeSet, HashMap};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use linuxkit_config::{Config, File as FileSpec, IdMap, IdSpec, Image, MetadataFormat, Section};
use linuxkit_oci::{Cache, CachedImage, ImageRef, Platform};

use crate::entry::{Entry, EntryKind, EntrySink};
use crate::error::{Error, Result};
use crate::files;
use crate::flatten::{Compression, Filter, Layer, flatten_layers};
use crate::spec::{ImageRuntimeDefaults, oci_config, readonly_rootfs, runtime_config_with_root};

/// What assembly reads images from.
pub struct Images<'a> {
    pub cache: &'a Cache,
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

    fn layers(&self, img: &CachedImage) -> Result<Vec<Layer>> {
        img.manifest
            .layers
            .iter()
            .map(|l| Layer::cached(&img.name, self.cache, l))
            .collect()
    }
}

/// Emits parent directories once each, so every entry's parent precedes it.
struct Dirs<'s> {
    sink: &'s mut dyn EntrySink,
    done: BTreeSet<String>,
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
                self.sink
                    .add(&Entry::dir(acc.clone()), &mut std::io::empty())?;
            }
        }
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        self.parents(path)?;
        if self.done.insert(path.to_string()) {
            self.sink.add(&Entry::dir(path), &mut std::io::empty())?;
        }
        Ok(())
    }

    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        self.parents(&e.path)?;
        if e.kind == EntryKind::Dir {
            self.done.insert(e.path.trim_end_matches('/').to_string());
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
/// `LINUXKIT.source` and `LINUXKIT.location` PAX records).
struct Provenance<'a, 's> {
    out: &'a mut Dirs<'s>,
    source: &'a str,
    location: String,
}

impl EntrySink for Provenance<'_, '_> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> Result<()> {
        let e = Entry {
            provenance: Some((self.source.to_string(), self.location.clone())),
            ..e.clone()
        };
        self.out.add(&e, data)
    }
}

/// Flattens `img` under `prefix` into `out`, tagging entries with their
/// source and location.
fn flatten_into(
    images: &Images,
    img: &CachedImage,
    prefix: &str,
    filter: &dyn Fn(&str) -> Filter,
    source: &str,
    location: String,
    out: &mut Dirs,
) -> Result<()> {
    let layers = images.layers(img)?;
    let mut sink = Provenance {
        out,
        source,
        location,
    };
    flatten_layers(&img.name, &layers, prefix, filter, &mut sink)?;
    Ok(())
}

const HOSTS: &[u8] = b"127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\n";
const RESOLV_COMMENT: &[u8] = b"# no resolv.conf\n";

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

    pub fn produce(&self, sink: &mut dyn EntrySink) -> Result<()> {
        (self.produce)(sink)
    }
}

/// Bumped whenever the entries a keyed part produces change for the same
/// inputs, so cached outputs of older versions are not reused.
const PART_FORMAT: &str = "linuxkit-rs-part-1";

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
            };
            f(&mut out)
        }),
    }
}

/// The root filesystem of `config` as an ordered list of parts. `config`
/// must be validated and its images cached.
pub fn parts<'a>(config: &'a Config, images: &'a Images<'a>) -> Result<Vec<Part<'a>>> {
    let m = &config.moby;
    let mut parts = Vec::new();
    if !m.kernel.image.is_empty() {
        let k = &m.kernel;
        let img = images.get(&k.image)?;
        let key = format!(
            "kernel {} binary={:?} tar={:?} ucode={:?}",
            img.manifest_digest, k.binary, k.tar, k.ucode
        );
        parts.push(
            part(None, "kernel cmdline".into(), move |out| {
                out.dir("boot")?;
                out.bytes(
                    Entry {
                        provenance: Some((k.image.clone(), "kernel".into())),
                        ..Entry::file("boot/cmdline", 0)
                    },
                    k.cmdline.as_bytes(),
                )
            })
            .of("kernel", Some(&k.image)),
        );
        parts.push(
            part(Some(key), format!("kernel {}", k.image), move |out| {
                kernel(config, images, &img, out)
            })
            .of("kernel", Some(&k.image)),
        );
    }
    for (i, reference) in m.init.iter().enumerate() {
        let img = images.get(reference)?;
        let key = format!("init {} {reference}", img.manifest_digest);
        parts.push(
            part(Some(key), format!("init[{i}] {reference}"), move |out| {
                let filter = |p: &str| {
                    if dropped(p) || matches!(p, "etc/hosts" | "etc/resolv.conf" | "etc/mtab") {
                        Filter::Drop
                    } else {
                        Filter::Keep
                    }
                };
                flatten_into(
                    images,
                    &img,
                    "",
                    &filter,
                    reference,
                    format!("init[{i}]"),
                    out,
                )
            })
            .of("init", Some(reference)),
        );
    }
    if !m.init.is_empty() {
        parts.push(
            part(None, "init extras".into(), |out| {
                // The init images' resolv.conf points where dhcpcd writes.
                out.add(
                    &Entry::symlink("etc/resolv.conf", "/run/resolvconf/resolv.conf"),
                    &mut std::io::empty(),
                )?;
                out.bytes(Entry::file("etc/hosts", 0), HOSTS)?;
                out.add(
                    &Entry::symlink("etc/mtab", "/proc/mounts"),
                    &mut std::io::empty(),
                )
            })
            .of("init", None),
        );
    }
    for (i, v) in m.volumes.iter().enumerate() {
        let base = format!("containers/volumes/{}", v.name);
        if !v.image.is_empty() {
            let img = images.get(&v.image)?;
            let key = format!("volume {} {base} {}", img.manifest_digest, v.image);
            let base = base.clone();
            parts.push(
                part(Some(key), format!("volumes[{i}] {}", v.image), move |out| {
                    out.dir(&format!("{base}/lower"))?;
                    flatten_into(
                        images,
                        &img,
                        &format!("{base}/lower/"),
                        &|_| Filter::Keep,
                        &v.image,
                        format!("volumes[{i}]"),
                        out,
                    )
                })
                .of("volumes", Some(&v.image)),
            );
        }
        parts.push(
            part(None, format!("volumes[{i}]"), move |out| {
                out.dir(&format!("{base}/lower"))?;
                if !v.readonly {
                    out.dir(&format!("{base}/tmp"))?;
                }
                out.dir(&format!("{base}/merged"))
            })
            .of("volumes", (!v.image.is_empty()).then_some(v.image.as_str())),
        );
    }
    let ids = std::sync::Arc::new(IdMap::new(m));
    // A repeated image is unpacked once; later bundles mount that copy.
    let mut first_copy: HashMap<(String, bool), String> = HashMap::new();
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
        let copy_key = (img.manifest_digest.to_string(), readonly);
        let image_root = match first_copy.get(&copy_key) {
            Some(first) => first.clone(),
            None => {
                first_copy.insert(copy_key, root.clone());
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
        parts.push(
            part(None, format!("{} {}", section.key(), c.name), move |out| {
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
    Ok(parts)
}

/// Assembles the whole root filesystem of `config` into one sink, part by
/// part.
pub fn assemble(config: &Config, images: &Images, sink: &mut dyn EntrySink) -> Result<()> {
    for p in parts(config, images)? {
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
    let path_of = |name: &str| -> Result<&PathBuf> {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .ok_or_else(|| {
                Error::Config(config.kernel_error(
                    "image",
                    format!("kernel image {} has no file `{name}`", img.name),
                ))
            })
    };
    let prov = (k.image.clone(), "kernel".to_string());
    out.dir("boot")?;
    let copy = |out: &mut Dirs, dest: &str, src: &Path| -> Result<()> {
        let f = std::fs::File::open(src).map_err(|source| Error::Io {
            context: format!("cannot read {}", src.display()),
            source,
        })?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        out.add(
            &Entry {
                provenance: Some(prov.clone()),
                ..Entry::file(dest, size)
            },
            &mut std::io::BufReader::new(f),
        )
    };
    copy(out, "boot/kernel", path_of(binary)?)?;
    if let Some(u) = ucode
        && let Ok(p) = path_of(u)
    {
        copy(out, "boot/ucode.cpio", p)?;
    }
    if tar != "none" {
        let layer = Layer::from_path(
            format!("{}:{tar}", img.name),
            Compression::None,
            path_of(tar)?.clone(),
        );
        let mut sink = Provenance {
            out,
            source: &k.image,
            location: "kernel".into(),
        };
        flatten_layers(
            &format!("{} ({tar})", img.name),
            &[layer],
            "",
            &|_| Filter::Keep,
            &mut sink,
        )?;
    }
    Ok(())
}

/// Copies the named top-level files of an image (as its layers merge) to
/// scratch files; returns (name, path) for those found.
fn extract_files(
    images: &Images,
    img: &CachedImage,
    names: &[&str],
) -> Result<Vec<(String, PathBuf)>> {
    struct Grab<'a> {
        names: &'a [&'a str],
        dir: &'a Path,
        found: Vec<(String, PathBuf)>,
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
                self.found.push((e.path.clone(), dest));
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
    let filter = |p: &str| {
        if dropped(p) || matches!(p, "etc/hosts" | "etc/resolv.conf" | "etc/mtab") {
            Filter::Drop
        } else {
            Filter::Keep
        }
    };
    out.dir(root)?;
    flatten_into(
        images,
        img,
        &format!("{root}/"),
        &filter,
        reference,
        location,
        out,
    )?;
    for d in ["dev", "dev/pts", "dev/shm", "etc", "proc", "sys"] {
        out.dir(&format!("{root}/{d}"))?;
    }
    out.bytes(Entry::file(format!("{root}/etc/hosts"), 0), HOSTS)?;
    out.add(
        &Entry::symlink(format!("{root}/etc/mtab"), "/proc/mounts"),
        &mut std::io::empty(),
    )?;
    out.bytes(
        Entry::file(format!("{root}/etc/resolv.conf"), 0),
        RESOLV_COMMENT,
    )
}

/// Everything of a bundle but its image: the directories the in-VM runner
/// mounts on, `config.json` and `runtime.json`. `image_root` is where the
/// image is unpacked: `root` itself, or an earlier bundle's copy.
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
    if image_root != root {
        out.dir(root)?;
    }
    if !readonly {
        out.dir(&format!("{dir}/tmp"))?;
        out.dir(&format!("{dir}/rootfs"))?;
    }
    let spec = oci_config(c, label, defaults, ids, &config.moby.volumes)?;
    out.bytes(
        Entry::file(format!("{dir}/config.json"), 0),
        spec.as_bytes(),
    )?;
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
            MetadataFormat::Yaml => linuxkit_config::to_yaml(&config.moby).into_bytes(),
            MetadataFormat::Json => linuxkit_config::to_json(&config.moby).into_bytes(),
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
    for (e, data) in entry.entries(|p| out.done.contains(p)) {
        out.add(&e, &mut Cursor::new(data))?;
    }
    Ok(())
}
