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
//!    into one [`LayerTree`](crate::layer::LayerTree): later packages replace earlier files at the same
//!    path, directories merge, paths under `debian.exclude` are dropped,
//!    every mtime is [`DEFAULT_MTIME`](linuxkit_rootfs::DEFAULT_MTIME);
//! 5. the layer is written as a PAX tar (sorted by path, hard links last),
//!    gzipped with a fixed header, and described by an OCI image config
//!    without a creation time — so the same package list gives the same
//!    manifest digest on every machine;
//! 6. blobs and the manifest go into the OCI cache under the package's
//!    canonical tag (`docker.io/ORG/IMAGE:TAG`).
//!
//! No maintainer script is run and no dpkg database is written.
//!
//! This module is the orchestrator and the crate's front for building:
//! `assemble` makes the layer (Debian packages, `kernel:`, `cargo:`, `go:`),
//! `files` adds what `build.yml` declares (`files:`, `users:`, `concat:`);
//! the foundations they stand on are modules of their own
//! (`error`, [`crate::layer`], [`crate::image`], [`crate::lock`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use linuxkit_base::Arch;
use linuxkit_oci::{Cache, Descriptor, ImageRef, Platform, media_type};

use crate::error::BuildError;
use crate::image::store_image;
use crate::kernel::KernelInfo;
use crate::lock::{Lockfile, ensure_lock};
use crate::{DebianSource, Package};

mod assemble;
mod files;

pub use crate::lock::lock_status;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Build even if the tag is already in the cache.
    pub force: bool,
    /// The architecture.
    pub arch: Arch,
    /// Where downloaded indices and `.deb`s are cached; default
    /// [`Client::default_cache_dir`](crate::debian::Client::default_cache_dir).
    pub debian_cache: Option<PathBuf>,
    /// Resolve `debian.packages` again and rewrite `debian.lock`
    /// (`--update`).
    pub update: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            force: false,
            arch: Arch::host(),
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

/// Builds `pkg` for `opts.arch` into `cache` (see the [module docs](self)),
/// unless its tag is already cached and `opts.force` is not set.
///
/// A package with a `debian:` section first gets an up-to-date
/// `debian.lock` ([`ensure_lock`]); if that writes the file, the package is
/// loaded again, as its tag covers the lockfile.
pub fn build(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Built, BuildError> {
    pkg.check_buildable()?;
    let info = pkg.build_yml();
    // Compared as the reference does, by the Go name as written.
    if !info.arches.iter().any(|a| a == opts.arch.go()) {
        return Err(BuildError::Arch {
            pkg: pkg.path().to_owned(),
            arch: opts.arch,
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
        crate::go::check_arch(opts.arch, &pkg.build_yml_name())?;
    }
    let mut lock = None;
    let mut lock_written = None;
    let mut reloaded = None;
    if let Some(src) = &info.debian {
        let (l, written) =
            ensure_lock(pkg, src, opts.arch, opts.update, opts.debian_cache.clone())?;
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
    let (tar, packages, kernel) = assemble::assemble(
        pkg,
        cache,
        lock.as_ref(),
        opts.arch,
        opts.debian_cache.as_ref(),
    )?;
    let manifest = store_image(cache, pkg, opts.arch, &tar)?;
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
    let platform = Platform::linux(opts.arch);
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
    crate::docker::build(pkg, cache, opts.arch)?;
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
