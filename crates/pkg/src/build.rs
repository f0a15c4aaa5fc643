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

use linuxkit_config::{File, IdSpec};
use linuxkit_oci::{Cache, Descriptor, Digest, ImageRef, Manifest, Platform, media_type};
use linuxkit_rootfs::{DEFAULT_MTIME, Entry, EntryKind, EntrySink};
use serde::Serialize;

use crate::debian::{self, Client, DebArchive, DebianError, Dependency, ResolveOptions};
use crate::filter::PathPatterns;
use crate::kernel::KernelInfo;
use crate::lock::{LOCKFILE, LockRequest, LockedDeb, Lockfile};
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
    /// Something the package's `build.yml` asks for cannot be done; the
    /// message names the key and what to do.
    #[error("{build_yml}: {message}")]
    Package {
        /// The build file, as the user named it.
        build_yml: String,
        /// What is wrong, and what to do.
        message: String,
    },
    /// `debian.lock` was resolved for another `debian:` section.
    #[error(
        "{lockfile} is stale: {build_yml} now asks for something else ({difference}); run `linuxkit pkg build --update {}` to resolve again and rewrite it",
        dir.display()
    )]
    StaleLock {
        /// The lockfile.
        lockfile: String,
        /// The build file.
        build_yml: String,
        /// What changed.
        difference: String,
        /// The package directory.
        dir: PathBuf,
    },
    /// `debian.packages` cannot be resolved.
    #[error("{build_yml}: `debian.packages`: {source}; fix the package list")]
    Resolve {
        /// The build file.
        build_yml: String,
        /// Why.
        source: DebianError,
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
    /// Resolve `debian.packages` again and rewrite `debian.lock`
    /// (`--update`).
    pub update: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            force: false,
            arch: linuxkit_oci::host_arch().to_string(),
            debian_cache: None,
            update: false,
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
    /// The lockfile (under the package directory as the caller named it),
    /// if this build wrote it (new, updated or extended).
    pub lock_written: Option<PathBuf>,
    /// For a `kernel:` image: the kernel release and the modules kept.
    pub kernel: Option<KernelInfo>,
}

/// The package's `debian:` section, or why it cannot be built here.
pub fn debian_source(pkg: &Package) -> Result<&DebianSource, BuildError> {
    if let Some(d) = &pkg.build_yml().debian {
        return Ok(d);
    }
    Err(no_declarative_source(pkg))
}

fn no_declarative_source(pkg: &Package) -> BuildError {
    if pkg.path().join(&pkg.build_yml().dockerfile).exists() {
        BuildError::NeedsDaemon {
            pkg: pkg.path().to_owned(),
        }
    } else {
        BuildError::NoSource {
            pkg: pkg.path().to_owned(),
            build_yml: pkg.build_yml_path().to_owned(),
        }
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

/// The state of a package's `debian.lock` for a build, without touching
/// the network (for `--dry-run`).
pub fn lock_status(pkg: &Package, arch: &str) -> Result<Option<String>, BuildError> {
    let Some(src) = &pkg.build_yml().debian else {
        return Ok(None);
    };
    let path = Lockfile::path_in(pkg.path());
    let name = lock_name(pkg);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some(format!("no {LOCKFILE}: would resolve and write it")));
        }
        Err(e) => return Err(lock_err(pkg, format!("cannot read {name}: {e}"))),
    };
    let lock = Lockfile::parse(&name, &text).map_err(|e| lock_err(pkg, e.to_string()))?;
    let req = LockRequest::of(src);
    Ok(Some(if lock.request != req {
        format!(
            "{LOCKFILE} is stale ({}): run with --update",
            lock.request.difference(&req)
        )
    } else if lock.pins(debian_arch(arch)) {
        format!("pinned by {LOCKFILE}")
    } else {
        format!("{LOCKFILE} has no {}: would resolve it", debian_arch(arch))
    }))
}

fn lock_name(pkg: &Package) -> String {
    pkg.dir().join(LOCKFILE).display().to_string()
}

fn lock_err(pkg: &Package, message: String) -> BuildError {
    BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message,
    }
}

/// Reads `debian.lock` and returns it if it pins this build; otherwise
/// (missing, `--update`, a new architecture) resolves against the mirror
/// and writes it. Returns the lockfile and whether the file was written.
/// A lockfile for another request is [`BuildError::StaleLock`] unless
/// `opts.update`.
pub fn ensure_lock(
    pkg: &Package,
    src: &DebianSource,
    opts: &BuildOptions,
) -> Result<(Lockfile, bool), BuildError> {
    let path = Lockfile::path_in(pkg.path());
    let name = lock_name(pkg);
    let arch = debian_arch(&opts.arch).to_string();
    let req = LockRequest::of(src);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(lock_err(pkg, format!("cannot read {name}: {e}"))),
    };
    let parsed = match &text {
        None => None,
        Some(t) if opts.update => Lockfile::parse(&name, t).ok(),
        Some(t) => Some(Lockfile::parse(&name, t).map_err(|e| {
            lock_err(
                pkg,
                format!("{e} (fix it, or run `linuxkit pkg build --update` to rewrite it)"),
            )
        })?),
    };
    let mut arches = vec![arch.clone()];
    let mut lock = match parsed {
        Some(l) if !opts.update => {
            if l.request != req {
                return Err(BuildError::StaleLock {
                    lockfile: name,
                    build_yml: pkg.build_yml_name(),
                    difference: l.request.difference(&req),
                    dir: pkg.dir().to_owned(),
                });
            }
            if l.pins(&arch) {
                return Ok((l, false));
            }
            // Same request, new architecture: pin it too, keep the rest.
            l
        }
        other => {
            if let Some(old) = other.filter(|l| l.request == req) {
                arches.extend(old.packages.keys().filter(|a| **a != arch).cloned());
            }
            let suite = match &req.suite {
                Some(s) => s.clone(),
                None => debian::sources::find_mirror(None)?.suite,
            };
            Lockfile::new(req.clone(), suite)
        }
    };
    let mirror = debian::sources::find_mirror(Some(&lock.suite))?;
    let client = Client::for_mirror(&mirror, opts.debian_cache.clone());
    let release = client.release(&lock.suite)?;
    let parse = |list: &[String]| {
        list.iter()
            .map(|p| p.parse::<Dependency>())
            .collect::<Result<Vec<_>, _>>()
    };
    let (wanted, build_wanted) = (parse(&src.packages)?, parse(&src.build_packages)?);
    let ropts = ResolveOptions {
        no_dependencies: !src.dependencies,
        ..ResolveOptions::default()
    };
    let resolve = |index: &debian::PackageIndex,
                   wanted: &[Dependency],
                   ropts: &ResolveOptions|
     -> Result<Vec<LockedDeb>, BuildError> {
        let resolved = debian::resolve(index, wanted, ropts).map_err(|e| BuildError::Resolve {
            build_yml: pkg.build_yml_name(),
            source: e,
        })?;
        Ok(resolved.into_iter().map(LockedDeb::from).collect())
    };
    for a in arches {
        let index = client.packages(&release, &src.components, &a)?;
        lock.packages
            .insert(a.clone(), resolve(&index, &wanted, &ropts)?);
        if !build_wanted.is_empty() {
            // A build root needs its whole closure, whatever `dependencies`
            // says of the image.
            let build = resolve(&index, &build_wanted, &ResolveOptions::default())?;
            lock.build_packages.insert(a, build);
        }
    }
    let new_text = lock.to_text();
    let written = text.as_deref() != Some(new_text.as_str());
    if written {
        debian::index::write_atomic(&path, new_text.as_bytes())?;
    }
    Ok((lock, written))
}

/// Builds `pkg` for `opts.arch` into `cache` (see the [module docs](self)),
/// unless its tag is already cached and `opts.force` is not set.
///
/// A package with a `debian:` section first gets an up-to-date
/// `debian.lock` ([`ensure_lock`]); if that writes the file, the package is
/// loaded again, as its tag covers the lockfile.
pub fn build(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Built, BuildError> {
    pkg.check_buildable()?;
    let info = pkg.build_yml();
    if !info.arches.iter().any(|a| a == &opts.arch) {
        return Err(BuildError::Arch {
            pkg: pkg.path().to_owned(),
            arch: opts.arch.clone(),
            arches: info.arches.clone(),
        });
    }
    // From the first look-up to the tag, a concurrent `cache rm`/`clean`
    // waits (it would otherwise collect the blobs written before the tag
    // names them).
    let _pin = cache.reclaim_and_pin()?;
    if !info.is_declarative() {
        return build_dockerfile(pkg, cache, opts);
    }
    if !info.go.is_empty() {
        // Before anything is resolved, downloaded or built.
        crate::go::check_arch(&opts.arch).map_err(|message| BuildError::Package {
            build_yml: pkg.build_yml_name(),
            message,
        })?;
    }
    let mut lock = None;
    let mut lock_written = None;
    let mut reloaded = None;
    if let Some(src) = &info.debian {
        let (l, written) = ensure_lock(pkg, src, opts)?;
        if written {
            lock_written = Some(Lockfile::path_in(pkg.dir()));
            reloaded = Some(pkg.reload()?);
        }
        lock = Some(l);
    }
    let pkg = reloaded.as_ref().unwrap_or(pkg);
    if let Some(mut built) = cached(pkg, cache, opts)? {
        built.lock_written = lock_written;
        return Ok(built);
    }
    let image = ImageRef::parse(&pkg.full_tag())?;
    let (tar, packages, kernel) = assemble(pkg, cache, lock.as_ref(), opts)?;
    let manifest = store_image(cache, pkg, &opts.arch, &tar)?;
    cache.tag(&image.canonical(), manifest.clone())?;
    Ok(Built {
        reference: image.canonical(),
        manifest,
        cached: false,
        packages,
        lock_written,
        kernel,
    })
}

/// The cached image of `pkg` for `opts.arch`, unless `opts.force`.
fn cached(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Option<Built>, BuildError> {
    if opts.force {
        return Ok(None);
    }
    let image = ImageRef::parse(&pkg.full_tag())?;
    let platform = Platform::linux(&opts.arch);
    let Some(img) = cache.image(&image, &platform)? else {
        return Ok(None);
    };
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
    Ok(Some(Built {
        reference: image.canonical(),
        manifest,
        cached: true,
        packages: Vec::new(),
        lock_written: None,
        kernel: None,
    }))
}

/// A Dockerfile package: `docker build` if a daemon answers, else
/// [`BuildError::NeedsDaemon`].
fn build_dockerfile(
    pkg: &Package,
    cache: &Cache,
    opts: &BuildOptions,
) -> Result<Built, BuildError> {
    let err = no_declarative_source(pkg);
    if !matches!(err, BuildError::NeedsDaemon { .. }) || !crate::docker::daemon_available() {
        return Err(err);
    }
    if let Some(built) = cached(pkg, cache, opts)? {
        return Ok(built);
    }
    crate::docker::build(pkg, cache, &opts.arch)?;
    let mut built = cached(
        pkg,
        cache,
        &BuildOptions {
            force: false,
            ..opts.clone()
        },
    )?
    .ok_or_else(|| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message: "docker built the image but it is not in the cache".into(),
    })?;
    built.cached = false;
    Ok(built)
}

/// Where `.deb`s of a lockfile come from: the Debian cache by SHA256, else
/// the mirror (found only when something is missing).
struct DebStore<'a> {
    cache_dir: PathBuf,
    suite: &'a str,
    debian_cache: Option<PathBuf>,
    client: Option<Client>,
}

impl DebStore<'_> {
    fn open(&mut self, d: &LockedDeb) -> Result<DebArchive, BuildError> {
        if let Some(p) = debian::index::cached_file(&self.cache_dir, &d.sha256) {
            return Ok(DebArchive::open(&p)?);
        }
        if self.client.is_none() {
            let mirror = debian::sources::find_mirror(Some(self.suite))?;
            self.client = Some(Client::for_mirror(&mirror, self.debian_cache.clone()));
        }
        let client = self.client.as_ref().expect("set above");
        let url = format!("{}/{}", client.base_uri(), d.filename);
        let path = client.fetch_verified(&url, &d.sha256, Some(d.size))?;
        Ok(DebArchive::open(&path)?)
    }
}

/// The image's one layer (uncompressed tar), the Debian packages in it
/// (`name version`), and the kernel for a `kernel:` image.
type Assembled = (Vec<u8>, Vec<String>, Option<KernelInfo>);

/// The image's one layer; see [`Assembled`].
fn assemble(
    pkg: &Package,
    cache: &Cache,
    lock: Option<&Lockfile>,
    opts: &BuildOptions,
) -> Result<Assembled, BuildError> {
    let info = pkg.build_yml();
    let build_yml = pkg.build_yml_name();
    let mut layer = Layer::new();
    let mut packages = Vec::new();
    let mut kernel = None;
    let mut store = lock.map(|lock| DebStore {
        cache_dir: opts
            .debian_cache
            .clone()
            .unwrap_or_else(Client::default_cache_dir),
        suite: &lock.suite,
        debian_cache: opts.debian_cache.clone(),
        client: None,
    });
    if let (Some(src), Some(lock), Some(store)) = (&info.debian, lock, store.as_mut()) {
        let debs = lock
            .packages
            .get(debian_arch(&opts.arch))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for d in debs {
            let deb = store.open(d)?;
            let label = format!("{} {}", d.name, d.version);
            layer.add_deb(&label, &deb)?;
            packages.push(label);
        }
        let patterns = |v: &[String], globs| {
            PathPatterns::new(v, globs).map_err(|message| BuildError::Package {
                build_yml: build_yml.clone(),
                message: format!("`debian`: {message}"),
            })
        };
        layer.keep_paths(
            &patterns(&src.include, false)?,
            &patterns(&src.excluded(), true)?,
        );
        if let Some(k) = &info.kernel {
            let (l, k) = crate::kernel::layout(&layer, k, &build_yml)?;
            layer = l;
            kernel = Some(k);
        }
    }
    for (i, c) in info.cargo.iter().enumerate() {
        let bin = crate::cargo::build_binary(pkg.path(), c, &opts.arch, &build_yml, i)?;
        put_binary(&mut layer, &c.path, bin);
    }
    if !info.go.is_empty() {
        // Checked when build.yml was read: `go:` comes with build packages.
        let (Some(lock), Some(store)) = (lock, store.as_mut()) else {
            unreachable!("`go:` without `debian.build_packages`")
        };
        let pins = lock
            .build_packages
            .get(debian_arch(&opts.arch))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let debs = pins
            .iter()
            .map(|d| Ok((format!("{} {}", d.name, d.version), store.open(d)?)))
            .collect::<Result<Vec<_>, BuildError>>()?;
        let root = crate::go::BuildRoot::unpack(
            cache.scratch_dir("go-build")?,
            debs.iter().map(|(l, d)| (l.clone(), d)),
        )?;
        for (i, g) in info.go.iter().enumerate() {
            let bin = crate::go::build_binary(pkg.path(), g, &opts.arch, &root, &build_yml, i)?;
            put_binary(&mut layer, &g.path, bin);
        }
        // The sources and the toolchain the binaries were built from, for
        // the image's record (as the image's own packages are): the
        // packages asked for, and the versioned toolchain (`golang-1.19-go`)
        // that `golang-go` only depends on.
        let named: Vec<String> = lock
            .request
            .build_packages
            .iter()
            .filter_map(|p| p.parse::<Dependency>().ok())
            .map(|d| d.name)
            .collect();
        let toolchain = |n: &str| n.starts_with("golang-1") && n.ends_with("-go");
        for d in pins
            .iter()
            .filter(|d| toolchain(&d.name) || named.contains(&d.name))
        {
            packages.push(format!("{} {} (build)", d.name, d.version));
        }
    }
    for (i, f) in info.files.iter().enumerate() {
        add_file(&mut layer, pkg, i, f)?;
    }
    add_accounts(&mut layer, pkg)?;
    for (i, c) in info.concat.iter().enumerate() {
        add_concat(&mut layer, pkg, i, c)?;
    }
    Ok((layer.to_tar()?, packages, kernel))
}

/// A built binary at `path` (as checked when build.yml was read), mode
/// 0755, root's.
fn put_binary(layer: &mut Layer, path: &str, bin: Vec<u8>) {
    let path = crate::build_yml::clean_image_path(path).expect("checked when parsed");
    let entry = Entry {
        mode: 0o755,
        ..Entry::file(path, bin.len() as u64)
    };
    layer.put(entry, bin);
}

/// One `files:` entry, as a LinuxKit YAML's `files:` would add it: missing
/// parents get the owner and the file's mode plus search bits.
fn add_file(layer: &mut Layer, pkg: &Package, i: usize, f: &File) -> Result<(), BuildError> {
    let info = pkg.build_yml();
    let err = |field: &str, message: String| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message: format!("`files[{i}].{field}`: {message}"),
    };
    let path = crate::build_yml::clean_image_path(&f.path).expect("checked when parsed");
    let id =
        |s: &Option<IdSpec>, user: bool| s.as_ref().map_or(Some(0), |s| info.resolve_id(s, user));
    let (Some(uid), Some(gid)) = (id(&f.uid, true), id(&f.gid, false)) else {
        return Err(err("uid", "unknown user or group".into()));
    };
    let mode = match &f.mode {
        Some(m) => linuxkit_config::parse_mode(m).expect("checked when parsed"),
        None if f.directory => 0o700,
        None => 0o600,
    };
    let contents = if let Some(c) = &f.contents {
        Some(c.clone().into_bytes())
    } else if let Some(src) = &f.source {
        let p = pkg.path().join(src);
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(_) if f.optional => return Ok(()),
            Err(e) => {
                return Err(err(
                    "source",
                    format!(
                        "cannot read {} ({e}); paths are relative to the package directory; fix it or add `optional: true`",
                        p.display()
                    ),
                ));
            }
        }
    } else {
        None
    };
    let mut dir_mode = mode;
    for (r, x) in [(0o700, 0o100), (0o070, 0o010), (0o007, 0o001)] {
        if mode & r != 0 {
            dir_mode |= x;
        }
    }
    let mut acc = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(p);
        if layer.get(&acc).is_none() {
            layer.put(
                Entry {
                    mode: dir_mode,
                    uid,
                    gid,
                    ..Entry::dir(acc.clone())
                },
                Vec::new(),
            );
        }
    }
    let base = Entry {
        mode,
        uid,
        gid,
        ..Entry::file(path, 0)
    };
    if f.directory {
        layer.put(
            Entry {
                kind: EntryKind::Dir,
                ..base
            },
            Vec::new(),
        );
    } else if let Some(target) = &f.symlink {
        layer.put(
            Entry {
                kind: EntryKind::Symlink {
                    target: target.clone(),
                },
                ..base
            },
            Vec::new(),
        );
    } else {
        let data = contents.unwrap_or_default();
        layer.put(
            Entry {
                size: data.len() as u64,
                ..base
            },
            data,
        );
    }
    Ok(())
}

/// One `concat:` entry (see [`crate::build_yml::Concat`]).
fn add_concat(
    layer: &mut Layer,
    pkg: &Package,
    i: usize,
    c: &crate::build_yml::Concat,
) -> Result<(), BuildError> {
    let err = |message: String| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message: format!("`concat[{i}]`: {message}"),
    };
    let path = crate::build_yml::clean_image_path(&c.path).ok_or_else(|| {
        err(format!(
            "`path` {:?} is not a relative path inside the image",
            c.path
        ))
    })?;
    let mode = match &c.mode {
        Some(m) => linuxkit_config::parse_mode(m).ok_or_else(|| {
            err(format!(
                "`mode` {m:?} is not an octal mode such as \"0644\""
            ))
        })?,
        None => 0o644,
    };
    let mut sources: Vec<String> = layer
        .paths()
        .filter(|p| {
            c.sources
                .iter()
                .any(|g| crate::build_yml::path_glob_match(g, p))
        })
        .map(str::to_string)
        .collect();
    sources.sort();
    let mut data = Vec::new();
    for s in &sources {
        if let Some((e, bytes)) = layer.get(s)
            && matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. })
        {
            data.extend_from_slice(bytes);
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                data.push(b'\n');
            }
        }
    }
    if data.is_empty() {
        return Err(err(format!(
            "no file of the image matches `sources` {:?}; check the globs against the package contents",
            c.sources
        )));
    }
    let entry = Entry {
        mode,
        ..Entry::file(&path, data.len() as u64)
    };
    layer.put(entry, data);
    Ok(())
}

/// `users:` and `groups:` appended to `/etc/passwd` and `/etc/group`
/// (created 0644 if absent), in the order given.
fn add_accounts(layer: &mut Layer, pkg: &Package) -> Result<(), BuildError> {
    let info = pkg.build_yml();
    let lists = [
        (
            "etc/passwd",
            "users",
            info.users
                .iter()
                .map(|u| (u.name.clone(), u.passwd_line()))
                .collect::<Vec<_>>(),
        ),
        (
            "etc/group",
            "groups",
            info.groups
                .iter()
                .map(|g| (g.name.clone(), g.group_line()))
                .collect(),
        ),
    ];
    for (path, key, lines) in lists {
        if lines.is_empty() {
            continue;
        }
        let err = |message: String| BuildError::Package {
            build_yml: pkg.build_yml_name(),
            message: format!("`{key}`: {message}"),
        };
        let (mut entry, mut text) = match layer.get(path) {
            None => (
                Entry {
                    mode: 0o644,
                    ..Entry::file(path, 0)
                },
                String::new(),
            ),
            Some((e, data)) if matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. }) => {
                let mut e = e.clone();
                e.kind = EntryKind::File;
                (e, String::from_utf8_lossy(data).into_owned())
            }
            Some(_) => return Err(err(format!("/{path} in the image is not a regular file"))),
        };
        let existing: BTreeSet<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        if let Some((n, _)) = lines.iter().find(|(n, _)| existing.contains(n.as_str())) {
            return Err(err(format!(
                "`{n}` is already in /{path} (from the Debian packages or `files:`); remove it from `{key}:`"
            )));
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for (_, l) in &lines {
            text.push_str(l);
            text.push('\n');
        }
        entry.size = text.len() as u64;
        layer.put(entry, text.into_bytes());
    }
    Ok(())
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
pub fn image_config(pkg: &Package, arch: &str, diff_id: &Digest) -> Result<Vec<u8>, BuildError> {
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

    /// Every entry with its content, by path. A hard link's content is its
    /// target's.
    pub fn iter(&self) -> impl Iterator<Item = (&Entry, &[u8])> {
        self.items.values().map(|i| (&i.entry, i.data.as_slice()))
    }

    /// The entry at `path` (normalized: `etc/passwd`) and its content.
    pub fn get(&self, path: &str) -> Option<(&Entry, &[u8])> {
        self.items.get(path).map(|i| (&i.entry, i.data.as_slice()))
    }

    /// Puts `entry` (path normalized) with `data`, replacing whatever was
    /// at its path.
    pub fn put(&mut self, entry: Entry, data: Vec<u8>) {
        self.items.insert(
            entry.path.clone(),
            Item {
                entry,
                data: Rc::new(data),
            },
        );
    }

    /// Keeps only the paths under an `include` prefix (all if `include` is
    /// empty; parent directories of a prefix stay too) and not covered by
    /// an `exclude` entry (a prefix or a glob, see [`PathPatterns`]).
    pub fn keep_paths(&mut self, include: &PathPatterns, exclude: &PathPatterns) {
        self.items.retain(|p, _| {
            !exclude.covers(p)
                && (include.is_empty() || include.covers(p) || include.is_parent_of_prefix(p))
        });
    }

    /// The paths in the layer (before exclusion), sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    /// The layer as an uncompressed tar: missing parent directories are
    /// added (0755, root), all other entries come in path order, then hard
    /// links. A hard link whose target was excluded or replaced becomes a
    /// copy of the content it linked to.
    pub fn to_tar(&self) -> Result<Vec<u8>, BuildError> {
        let kept: Vec<&Item> = self.items.values().collect();
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
                    let intact = self
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
pub(crate) fn normalize(p: &str) -> Result<String, String> {
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
