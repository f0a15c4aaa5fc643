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
//!    canonical tag (`docker.io/ORG/IMAGE:TAG`); built for several
//!    platforms ([`build_platforms`]), the tag names one index of a
//!    manifest per platform ([`crate::image`] says how it is merged);
//! 7. beside each platform manifest, its attestation manifest: the image's
//!    SBOM and provenance ([`crate::sbom`]), as BuildKit attaches them
//!    ([`linuxkit_oci::attestation`]); so the tag names an index.
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

use crate::dockerfile::DockerfileOptions;
use crate::error::BuildError;
use crate::image::{platform_entries, store_image, tag_platforms};
use crate::kernel::KernelInfo;
use crate::lock::{Lockfile, ensure_lock};
use crate::progress::Progress;
use crate::{DebianSource, Package};

mod assemble;
mod files;
mod verify;

pub use verify::{Verified, verify};

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
    /// What Dockerfile packages are built with.
    pub dockerfile: DockerfileOptions,
    /// Where the steps and downloads are shown (default: nowhere).
    pub progress: Progress,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            force: false,
            arch: Arch::host(),
            debian_cache: None,
            update: false,
            dockerfile: DockerfileOptions::default(),
            progress: Progress::default(),
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
    /// The descriptor of its attestation manifest (SBOM and provenance),
    /// if this build made one.
    pub attestation: Option<Descriptor>,
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
        BuildError::Package {
            build_yml: pkg.build_yml_name(),
            message: format!(
                "{} is a Dockerfile package, built with `pkg build` (buildah), not from a `debian:` section",
                pkg.path().display()
            ),
        }
    } else {
        BuildError::NoSource {
            pkg: pkg.path().to_owned(),
            build_yml: pkg.build_yml_path().to_owned(),
        }
    }
}

/// The result of [`build_platforms`].
#[derive(Debug, Clone)]
pub struct BuiltPlatforms {
    /// The canonical reference the images are cached under.
    pub reference: String,
    /// What the tag names now: the manifest of its one platform, or the
    /// index of every platform built under it (see [`crate::image`]).
    pub top: Descriptor,
    /// Each platform asked for, in the order asked.
    pub platforms: Vec<Built>,
    /// The lockfile, if this build wrote it (new, updated or extended).
    pub lock_written: Option<PathBuf>,
}

/// Builds `pkg` for `opts.arch` into `cache` (see the [module docs](self)),
/// unless its tag is already cached for it and `opts.force` is not set:
/// [`build_platforms`] for one platform.
pub fn build(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Built, BuildError> {
    let b = build_platforms(pkg, cache, opts, &[opts.arch])?;
    let mut one = b.platforms.into_iter().next().expect("one platform asked");
    one.lock_written = b.lock_written;
    Ok(one)
}

/// Builds `pkg` for each of `arches` (`opts.arch` is not read), unless
/// its tag is already cached for it and `opts.force` is not set, and names
/// them all by the package's tag: one index with a manifest per platform,
/// together with the platforms the tag already had ([`tag_platforms`]).
///
/// A package with a `debian:` section first gets a `debian.lock` that pins
/// every one of `arches` ([`ensure_lock`]); if that writes the file, the
/// package is loaded again, as its tag covers the lockfile. So every
/// platform is built under the same, final tag.
pub fn build_platforms(
    pkg: &Package,
    cache: &Cache,
    opts: &BuildOptions,
    arches: &[Arch],
) -> Result<BuiltPlatforms, BuildError> {
    pkg.check_buildable()?;
    let info = pkg.build_yml();
    let mut wanted: Vec<Arch> = Vec::new();
    for &arch in arches {
        // Compared as the reference does, by the Go name as written.
        if !info.arches.iter().any(|a| a == arch.go()) {
            return Err(BuildError::Arch {
                pkg: pkg.path().to_owned(),
                arch,
                arches: info.arches.clone(),
            });
        }
        if !wanted.contains(&arch) {
            wanted.push(arch);
        }
    }
    if wanted.is_empty() {
        return Err(BuildError::Package {
            build_yml: pkg.build_yml_name(),
            message: "no platform to build for".into(),
        });
    }
    // From the first look-up to the tag, a concurrent `cache rm`/`clean`
    // waits (it would otherwise collect the blobs written before the tag
    // names them).
    let _pin = cache.reclaim_and_pin()?;
    if !info.is_declarative() {
        return build_dockerfile(pkg, cache, opts, &wanted);
    }
    let mut lock = None;
    let mut lock_written = None;
    let mut reloaded = None;
    if let Some(src) = &info.debian {
        let shown = opts.progress.with_prefix(pkg.tag());
        let step = shown.step("resolve (debian.lock)");
        let (l, written) = ensure_lock(
            pkg,
            src,
            &wanted,
            opts.update,
            opts.debian_cache.clone(),
            &shown,
        )?;
        step.done();
        if written {
            lock_written = Some(Lockfile::path_in(pkg.dir()));
            reloaded = Some(pkg.reload()?);
        }
        lock = Some(l);
    }
    let pkg = reloaded.as_ref().unwrap_or(pkg);
    let image = ImageRef::parse(&pkg.full_tag())?;
    let mut platforms = Vec::new();
    for &arch in &wanted {
        let opts = BuildOptions {
            arch,
            ..opts.clone()
        };
        if let Some(built) = cached(pkg, cache, &opts)? {
            platforms.push(built);
            continue;
        }
        let shown = opts
            .progress
            .with_prefix(format!("{} {}", pkg.tag(), arch.oci_platform()));
        let a = assemble::assemble(
            pkg,
            cache,
            lock.as_ref(),
            arch,
            opts.debian_cache.as_ref(),
            &shown,
        )?;
        let step = shown.step("compress and store");
        let manifest = store_image(cache, pkg, arch, &a.tar)?;
        let attestation = attest(pkg, cache, arch, &manifest, &a.contents)?;
        step.done();
        platforms.push(Built {
            reference: image.canonical(),
            manifest,
            attestation: Some(attestation),
            cached: false,
            packages: a.packages,
            lock_written: None,
            kernel: a.kernel,
        });
    }
    let top = tag_built(cache, &image, &platforms)?;
    Ok(BuiltPlatforms {
        reference: image.canonical(),
        top,
        platforms,
        lock_written,
    })
}

/// What `image`'s tag names once `platforms` are built: the tag as the
/// cache has it when every platform was cached, else the tag moved to take
/// the ones built now (with their attestations).
fn tag_built(
    cache: &Cache,
    image: &ImageRef,
    platforms: &[Built],
) -> Result<Descriptor, BuildError> {
    let fresh: Vec<Descriptor> = platforms
        .iter()
        .filter(|b| !b.cached)
        .flat_map(|b| std::iter::once(b.manifest.clone()).chain(b.attestation.clone()))
        .collect();
    if fresh.is_empty() {
        Ok(cache
            .resolve(image)?
            .expect("every platform was found under the tag"))
    } else {
        tag_platforms(cache, image, &fresh)
    }
}

/// Whether the cache has `image` complete for `arch` (a tag naming an
/// index without the platform has not got it).
pub fn cached_platform(cache: &Cache, image: &ImageRef, arch: Arch) -> Result<bool, BuildError> {
    let platform = Platform::linux(arch);
    let Some(top) = cache.resolve(image)? else {
        return Ok(false);
    };
    if media_type::is_index(&top.media_type)
        && (!cache.has_blob(&linuxkit_oci::Digest::parse(&top.digest)?)
            || !platform_entries(cache, &top)?
                .iter()
                .any(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p))))
    {
        return Ok(false);
    }
    Ok(cache.image(image, &platform)?.is_some())
}

/// The cached image of `pkg` for `opts.arch`, unless `opts.force`. A tag
/// naming an index without the platform is not an error: the platform is
/// not built yet.
fn cached(pkg: &Package, cache: &Cache, opts: &BuildOptions) -> Result<Option<Built>, BuildError> {
    if opts.force {
        return Ok(None);
    }
    let image = ImageRef::parse(&pkg.full_tag())?;
    let platform = Platform::linux(opts.arch);
    if !cached_platform(cache, &image, opts.arch)? {
        return Ok(None);
    }
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
    // An image of a declarative package built before packages had SBOMs is
    // built again (to the same manifest), to get them.
    if pkg.build_yml().is_declarative() && cache.sboms(&img)?.predicates.is_empty() {
        tracing::info!(
            "{} is cached without an SBOM attestation: building it again to attach one",
            image.canonical()
        );
        return Ok(None);
    }
    Ok(Some(Built {
        reference: image.canonical(),
        manifest,
        attestation: None,
        cached: true,
        packages: Vec::new(),
        lock_written: None,
        kernel: None,
    }))
}

/// Writes the attestation manifest of `manifest` (`pkg`'s image for
/// `arch`, made of `contents`): its SPDX SBOM and its SLSA provenance, as
/// in-toto statements (see [`crate::sbom`]). Returns its index entry.
fn attest(
    pkg: &Package,
    cache: &Cache,
    arch: Arch,
    manifest: &Descriptor,
    contents: &crate::sbom::Contents,
) -> Result<Descriptor, BuildError> {
    use linuxkit_oci::attestation::{
        SLSA_PROVENANCE_V1, SPDX_PREDICATE, Statement, write_attestation,
    };
    let created = crate::sbom::created().map_err(|message| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message,
    })?;
    let doc = crate::sbom::document(pkg, arch, manifest, contents, &created);
    let provenance =
        crate::sbom::provenance(pkg, arch, contents).map_err(|e| BuildError::Layer {
            what: pkg.build_yml_path().display().to_string(),
            message: format!("cannot read it for the provenance: {e}"),
        })?;
    let subject = crate::sbom::image_purl(pkg, arch);
    let digest = linuxkit_oci::Digest::parse(&manifest.digest)?;
    let statements = [
        (
            SPDX_PREDICATE,
            Statement::about(&subject, &digest, SPDX_PREDICATE, &doc).to_bytes(),
        ),
        (
            SLSA_PROVENANCE_V1,
            Statement::about(&subject, &digest, SLSA_PROVENANCE_V1, &provenance).to_bytes(),
        ),
    ];
    Ok(write_attestation(cache, manifest, &statements)?)
}

/// A Dockerfile package, for each of `arches`: by the Docker daemon
/// `--builders` names for it, else by buildah ([`crate::dockerfile`]).
fn build_dockerfile(
    pkg: &Package,
    cache: &Cache,
    opts: &BuildOptions,
    arches: &[Arch],
) -> Result<BuiltPlatforms, BuildError> {
    let d = &opts.dockerfile;
    let image = ImageRef::parse(&pkg.full_tag())?;
    let mut platforms = Vec::new();
    for &arch in arches {
        let one = BuildOptions {
            arch,
            ..opts.clone()
        };
        if let Some(built) = cached(pkg, cache, &one)? {
            platforms.push(built);
            continue;
        }
        crate::dockerfile::check_builder(pkg, d, arch)?;
        let manifest = if let Some(context) = d.daemons.get(&arch) {
            let args = crate::dockerfile::build_args(pkg, &d.build_args)?;
            let dockerfile = d
                .dockerfile
                .clone()
                .unwrap_or_else(|| pkg.build_yml().dockerfile.clone());
            crate::docker::build(pkg, cache, arch, context, &args, &dockerfile)?;
            cached(
                pkg,
                cache,
                &BuildOptions {
                    force: false,
                    ..one.clone()
                },
            )?
            .ok_or_else(|| BuildError::Package {
                build_yml: pkg.build_yml_name(),
                message: "docker built the image but it is not in the cache".into(),
            })?
            .manifest
        } else {
            let shown = opts
                .progress
                .with_prefix(format!("{} {}", pkg.tag(), arch.oci_platform()));
            crate::dockerfile::build(pkg, cache, d, arch, &shown)?
        };
        platforms.push(Built {
            reference: image.canonical(),
            manifest,
            cached: false,
            packages: Vec::new(),
            lock_written: None,
            kernel: None,
            // What went into a Dockerfile's image is not known to us (its
            // RUN steps fetch what they like): no SBOM (docs/sbom.md).
            attestation: None,
        });
    }
    let top = tag_built(cache, &image, &platforms)?;
    Ok(BuiltPlatforms {
        reference: image.canonical(),
        top,
        platforms,
        lock_written: None,
    })
}
