//! `linuxkit pkg ...`: package tags, and builds of packages, all without a
//! Docker daemon: declarative ones (`debian:`, `files:`, `cargo:`; see
//! `linuxkit_pkg::build`) in-process, Dockerfile ones with buildah
//! (`linuxkit_pkg::dockerfile`), or a Docker daemon `--builders` names.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linuxkit_base::Arch;
use linuxkit_oci::{Cache, ImageRef, Platform, Registry};
use linuxkit_pkg::BuildError;
use linuxkit_pkg::build::{self, BuildOptions};
use linuxkit_pkg::dockerfile::{DockerfileOptions, Fetch};
use linuxkit_pkg::progress::{Mode as ProgressMode, Progress};
use linuxkit_pkg::{Package, PkgOptions};

use crate::cli::{BuilderCommand, GlobalArgs, PkgArgs, PkgBuildArgs, PkgCommand, PkgOpts};
use crate::error::{Error, IoContext, Result};

/// The arguments this handler reads (see `crate::flags`).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: crate::cli::Honoured = &[
    (
        "pkg",
        &[
            "disable_cache",
            "enable_cache",
            "nonetwork",
            "network",
            "org",
            "build_yml",
            "hash",
            "tag",
            "hash_commit",
            "hash_path",
            "force_dirty",
            "dev",
        ],
    ),
    ("pkg build", BUILD_ARGS),
    ("pkg push", BUILD_ARGS),
    ("pkg show-tag", &["dirs", "canonical"]),
    ("pkg remote-tag", &["from", "to"]),
    ("pkg builder du", &[]),
    ("pkg builder prune", &[]),
];

#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
const BUILD_ARGS: &[&str] = &[
    "dirs",
    "force",
    "pull",
    "push",
    "ignore_cached",
    "nobuild",
    "manifest",
    "dry_run",
    "platforms",
    "skip_platforms",
    "update",
    "verify",
    "progress",
    "build_arg_file",
    "dockerfile",
    "ssh",
    "builders",
    "release",
];

/// The environment variable the reference reads for the default `--org`.
pub const ENV_ORG: &str = "LINUXKIT_PKG_ORG";

/// Environment variables of the reference that configure its BuildKit
/// builder; we have none, and say so when they are set.
const BUILDKIT_ENV: &[&str] = &[
    "LINUXKIT_BUILDER_NAME",
    "LINUXKIT_BUILDER_IMAGE",
    "LINUXKIT_BUILDER_CONFIG",
];

/// The package options given on the command line (and `LINUXKIT_PKG_ORG`,
/// which `--org` overrides, as in the reference); the rest comes from each
/// package's build.yml. `--disable-cache`/`--enable-cache` and
/// `--network`/`--nonetwork` override build.yml's `disable-cache` and
/// `network`, which Dockerfile packages' `docker build` reads; declarative
/// packages never use the network while building nor keep a build cache.
pub fn options(o: &PkgOpts) -> PkgOptions {
    let PkgOpts {
        disable_cache,
        enable_cache,
        nonetwork,
        network,
        org,
        build_yml,
        hash,
        tag,
        hash_commit,
        hash_path,
        force_dirty,
        dev,
    } = o;
    let env_org = std::env::var(ENV_ORG).ok().filter(|s| !s.is_empty());
    PkgOptions {
        build_yml: build_yml.clone(),
        org: org.clone().or(env_org),
        hash: hash.clone(),
        tag: tag.clone(),
        hash_commit: hash_commit.clone(),
        hash_path: hash_path.clone(),
        force_dirty: *force_dirty,
        dev: *dev,
        disable_cache: if *disable_cache {
            Some(true)
        } else if *enable_cache {
            Some(false)
        } else {
            None
        },
        network: if *network {
            Some(true)
        } else if *nonetwork {
            Some(false)
        } else {
            None
        },
    }
}

fn build_err(e: BuildError) -> Error {
    match e {
        BuildError::Oci(e) => Error::Oci(e),
        e => Error::Usage(e.to_string()),
    }
}

/// `--skip-platforms`: the architectures named, each as `linux/ARCH` (the
/// reference's rule).
fn skipped_arches(list: &str) -> Result<Vec<Arch>> {
    list.split(',')
        .map(|p| match p.trim().strip_prefix("linux/") {
            Some(arch) if !arch.trim().is_empty() => {
                arch.trim().parse().map_err(|source| Error::Arch {
                    flag: "--skip-platforms",
                    given: p.to_string(),
                    source,
                })
            }
            _ => Err(Error::Usage(format!(
                "--skip-platforms: invalid target platform specification `{p}` (expected linux/ARCH)"
            ))),
        })
        .collect()
}

/// The architectures `--platforms` names (`linux/ARCH[/VARIANT]`, comma
/// separated, each once, in the order given), or `None` without the flag.
fn platform_arches(platforms: &Option<String>) -> Result<Option<Vec<Arch>>> {
    let Some(p) = platforms else {
        return Ok(None);
    };
    let mut arches = Vec::new();
    for one in p.split(',').map(str::trim) {
        let arch: Arch = match one.strip_prefix("linux/") {
            // `ARCH` or `ARCH/VARIANT` (`linux/arm/v7`).
            Some(arch) if !arch.is_empty() => arch.parse().map_err(|source| Error::Arch {
                flag: "--platforms",
                given: one.to_string(),
                source,
            })?,
            _ => {
                return Err(Error::Usage(format!(
                    "--platforms: invalid target platform specification `{one}` (expected linux/ARCH, comma separated)"
                )));
            }
        };
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    Ok(Some(arches))
}

/// The architectures to build `p` for: those `--platforms` names (default
/// the host's) that its build.yml `arches` lists and `--skip-platforms`
/// does not; each one left out is said on stdout.
fn package_arches(p: &Package, asked: &[Arch], skipped: &[Arch]) -> Vec<Arch> {
    let declared = &p.build_yml().arches;
    asked
        .iter()
        .copied()
        .filter(|a| {
            // Compared as the reference does, by the Go name as written.
            let listed = declared.iter().any(|d| d == a.go());
            if !listed {
                println!(
                    "Skipping {} for {}: its build.yml `arches` are [{}]",
                    p.tag(),
                    a.oci_platform(),
                    declared.join(", ")
                );
            }
            listed && !skipped.contains(a)
        })
        .collect()
}

/// `pkg build`; `push` is `--push`, or `pkg push` (the deprecated spelling).
/// The reference's rules: `--force` always builds; otherwise a cached
/// image is kept, `--pull` first tries the registry; `--push --nobuild`
/// pushes the cached image without building (and nothing if there is
/// none); `--nobuild` without `--push` changes nothing.
fn pkg_build(
    b: &PkgBuildArgs,
    opts: &PkgOptions,
    cache_dir: &Path,
    push: bool,
    g: &GlobalArgs,
) -> Result<()> {
    let PkgBuildArgs {
        dirs,
        force,
        pull,
        push: _,
        ignore_cached,
        nobuild,
        manifest,
        dry_run,
        platforms,
        skip_platforms,
        update,
        verify,
        progress,
        build_arg_file,
        dockerfile,
        ssh,
        builders,
        release,
    } = b;
    for var in BUILDKIT_ENV {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            tracing::warn!(
                "{var} is set, but it configures the reference's BuildKit builder and ours runs none; it has no effect here"
            );
        }
    }
    if *nobuild && !push {
        tracing::warn!(
            "--nobuild has no effect without --push (it means \"push without building\"); building as usual"
        );
    }
    if let Some(r) = release
        && !push
    {
        return Err(Error::Usage(format!(
            "cannot release \"{r}\" if not pushing (add --push)"
        )));
    }
    let asked = platform_arches(platforms)?.unwrap_or_else(|| vec![Arch::host()]);
    let skipped = skip_platforms
        .as_deref()
        .map(skipped_arches)
        .transpose()?
        .unwrap_or_default();
    let cache = Cache::open(cache_dir)?;
    // What killed runs left is reclaimed first: once we hold the pin, the
    // builder's own reclaiming cannot take it exclusively.
    let _pin = cache.reclaim_and_pin()?;
    // --ignore-cached: the reference keeps BuildKit from reading the cache
    // for the images a build starts from; our builder's inputs are Debian
    // indices and packages, so it gets an empty download cache of its own.
    let fresh = if *ignore_cached {
        Some(cache.scratch_dir("debian")?)
    } else {
        None
    };
    let progress_bars = match progress.as_str() {
        "plain" => false,
        "tty" => true,
        _ => std::io::stderr().is_terminal(),
    };
    // Build steps and Debian downloads: nothing with -q, bars on a
    // terminal (or --progress tty), plain lines otherwise.
    let shown = Progress::new(if g.quiet {
        ProgressMode::Quiet
    } else if progress_bars {
        ProgressMode::Bars
    } else {
        ProgressMode::Plain
    });
    let bopts = BuildOptions {
        force: *force,
        arch: asked[0],
        debian_cache: fresh.as_ref().map(|d| d.path().to_path_buf()),
        update: *update,
        dockerfile: DockerfileOptions {
            build_args: build_arg_files(build_arg_file)?,
            dockerfile: dockerfile.clone(),
            ssh: ssh.clone(),
            daemons: daemons(builders.as_deref())?,
            fetch: Some(fetcher(cache_dir, g, &asked, progress_bars)?),
            refetch: *ignore_cached,
            quiet: g.quiet,
        },
        progress: shown,
    };
    // One registry client per platform (pulls choose the platform of an
    // index by it), made when first needed.
    let mut registries: Vec<(Arch, Registry)> = Vec::new();
    for dir in dirs {
        let p = Package::load(dir, opts).map_err(|e| Error::Usage(e.to_string()))?;
        let arches = package_arches(&p, &asked, &skipped);
        if arches.is_empty() {
            println!("Skipping {} with no architectures to build", p.tag());
            continue;
        }
        // Flags of Dockerfile builds say so when a package has no
        // Dockerfile, rather than being dropped without a word.
        if p.build_yml().is_declarative() {
            let given: Vec<&str> = [
                ("--dockerfile", dockerfile.is_some()),
                ("--build-arg-file", !build_arg_file.is_empty()),
                ("--ssh", !ssh.is_empty()),
            ]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
            if !given.is_empty() {
                tracing::warn!(
                    "{}: {} apply to Dockerfile packages only; this one is built from its build.yml (debian:, cargo:, go:, files:), which they do not change",
                    dir.display(),
                    given.join(", ")
                );
            }
        }
        if *dry_run {
            for &arch in &arches {
                print_plan(&p, &cache, arch, &bopts, push)?;
            }
            continue;
        }
        let image = ImageRef::parse(&p.full_tag())?;
        let in_cache = |arch: Arch| -> Result<bool> {
            build::cached_platform(&cache, &image, arch).map_err(build_err)
        };
        if push && *nobuild {
            let mut have = Vec::new();
            for &arch in &arches {
                if in_cache(arch)? {
                    have.push(arch);
                } else {
                    println!(
                        "{} is not in the cache for {}: no new platforms to push, skipping",
                        p.full_tag(),
                        arch.oci_platform()
                    );
                }
            }
            if have.is_empty() {
                continue;
            }
            refuse_dirty_push(&p)?;
            let release = release_of(&p, release)?;
            let registry = client_for(&mut registries, arches[0], g, progress_bars)?;
            push_package(registry, &cache, &image, &have, *manifest)?;
            if let Some(r) = &release {
                release_package(registry, &cache, &p, &image, r, &have, *manifest)?;
            }
            continue;
        }
        if *pull {
            for &arch in &arches {
                if in_cache(arch)? {
                    continue;
                }
                match client_for(&mut registries, arch, g, progress_bars)?.pull(&cache, &image) {
                    Ok(img) => eprintln!(
                        "pulled {} for {} ({})",
                        img.name,
                        arch.oci_platform(),
                        img.top.digest
                    ),
                    Err(e) => eprintln!(
                        "{image} could not be pulled for {}, building: {e}",
                        arch.oci_platform()
                    ),
                }
            }
        }
        if *verify && push {
            return Err(Error::Usage(
                "--verify rebuilds and compares, it pushes nothing; use `pkg build --verify`, then `pkg push`".into(),
            ));
        }
        if *verify {
            let found = build::verify(&p, &cache, &bopts, &arches).map_err(build_err)?;
            let mut failed = 0;
            for v in &found {
                if v.differences.is_empty() {
                    println!(
                        "{} for {}: rebuilt identically ({}, and the same SBOM and provenance)",
                        p.full_tag(),
                        v.arch.oci_platform(),
                        v.expected
                    );
                } else {
                    failed += 1;
                    println!(
                        "{} for {}: the rebuild differs ({} in the cache, {} rebuilt):",
                        p.full_tag(),
                        v.arch.oci_platform(),
                        v.expected,
                        v.rebuilt
                    );
                    for d in &v.differences {
                        println!("  {d}");
                    }
                }
            }
            if failed > 0 {
                return Err(Error::Usage(format!(
                    "{} did not rebuild identically for {failed} platform(s); see the differences above",
                    p.full_tag()
                )));
            }
            continue;
        }
        let built = build::build_platforms(&p, &cache, &bopts, &arches).map_err(build_err)?;
        if let Some(l) = &built.lock_written {
            eprintln!("wrote {}", l.display());
        }
        let several = built.platforms.len() > 1;
        for (arch, b) in arches.iter().zip(&built.platforms) {
            let on = if several {
                format!(" for {}", arch.oci_platform())
            } else {
                String::new()
            };
            if b.cached {
                eprintln!(
                    "{}{on} is cached, not rebuilding (use --force)",
                    b.reference
                );
            } else if !b.packages.is_empty() {
                eprintln!("built{on} from {}", b.packages.join(", "));
            } else {
                eprintln!("built {}{on}", b.reference);
            }
            if let Some(k) = &b.kernel {
                eprintln!("kernel {} with {} modules", k.version, k.modules.len());
            }
            if several {
                eprintln!("{}: {}", arch.oci_platform(), b.manifest.digest);
            }
        }
        if push {
            refuse_dirty_push(&p)?;
            let release = release_of(&p, release)?;
            let registry = client_for(&mut registries, arches[0], g, progress_bars)?;
            push_package(registry, &cache, &image, &arches, *manifest)?;
            if let Some(r) = &release {
                release_package(registry, &cache, &p, &image, r, &arches, *manifest)?;
            }
        }
        println!("{}@{}", built.reference, built.top.digest);
    }
    Ok(())
}

/// `--build-arg-file`s: their `KEY=VALUE` lines, in order, with the
/// reference's `@lkt:` values expanded.
fn build_arg_files(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .context(|| format!("--build-arg-file {}: cannot read it", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let args = linuxkit_pkg::dockerfile::expand_build_arg(line, f).map_err(|e| {
                Error::Usage(format!("--build-arg-file {}:{}: {e}", f.display(), n + 1))
            })?;
            out.extend(args);
        }
    }
    Ok(out)
}

/// `--builders` (else `LINUXKIT_BUILDERS`, as the reference reads it):
/// `linux/ARCH=CONTEXT,...`, the Docker context whose daemon builds each
/// platform's Dockerfile packages.
fn daemons(flag: Option<&str>) -> Result<BTreeMap<Arch, String>> {
    let env = std::env::var("LINUXKIT_BUILDERS").ok();
    let Some(list) = flag.or(env.as_deref()).filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for one in list.split(',') {
        let (platform, context) = match one.split_once('=') {
            Some((p, c)) if !p.is_empty() && !c.is_empty() => (p, c),
            _ => {
                return Err(Error::Usage(format!(
                    "--builders: invalid platform=builder specification `{one}` (expected linux/ARCH=DOCKER-CONTEXT)"
                )));
            }
        };
        let arch = platform
            .strip_prefix("linux/")
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--builders: invalid platform specification `{platform}` (expected linux/ARCH)"
                ))
            })?
            .parse()
            .map_err(|source| Error::Arch {
                flag: "--builders",
                given: platform.to_string(),
                source,
            })?;
        out.insert(arch, context.to_string());
    }
    Ok(out)
}

/// Fetches the images Dockerfiles start from into the cache, through the
/// registries and mirrors configured, for the platforms asked.
fn fetcher(cache_dir: &Path, g: &GlobalArgs, arches: &[Arch], bars: bool) -> Result<Fetch> {
    let mut options = BTreeMap::new();
    for &a in arches {
        let mut o = crate::global::registry_options(g, Platform::linux(a))?;
        o.progress = o.progress && bars;
        options.insert(a, o);
    }
    let cache_dir = cache_dir.to_path_buf();
    Ok(Fetch(Arc::new(move |image: &ImageRef, arch: Arch| {
        let o = options
            .get(&arch)
            .ok_or_else(|| format!("{} was not asked for", arch.oci_platform()))?;
        let cache = Cache::open(&cache_dir).map_err(|e| e.to_string())?;
        let registry = Registry::new(o.clone()).map_err(|e| e.to_string())?;
        registry
            .pull(&cache, image)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })))
}

/// The registry client for `arch` in `registries`, made when first asked.
fn client_for<'a>(
    registries: &'a mut Vec<(Arch, Registry)>,
    arch: Arch,
    g: &GlobalArgs,
    progress_bars: bool,
) -> Result<&'a Registry> {
    let at = match registries.iter().position(|(a, _)| *a == arch) {
        Some(i) => i,
        None => {
            let mut o = crate::global::registry_options(g, Platform::linux(arch))?;
            o.progress = o.progress && progress_bars;
            registries.push((arch, Registry::new(o)?));
            registries.len() - 1
        }
    };
    Ok(&registries[at].1)
}

/// A dirty package (uncommitted changes, a `-dirty-` tag) is built but
/// never pushed, as the reference refuses: such a tag names a tree nobody
/// else can check out.
fn refuse_dirty_push(p: &Package) -> Result<()> {
    if !p.is_dirty() {
        return Ok(());
    }
    Err(Error::Refused {
        what: "pkg build --push".into(),
        why: format!(
            "build complete, refusing to push dirty package {} (it has uncommitted changes); commit them and build again",
            p.full_tag()
        ),
    })
}

/// Pushes a built package under its tag (the index of every platform
/// the cache has under it, or its one manifest) and, with `--manifest`
/// (the default), each platform of `arches` as `TAG-ARCH` too: the names
/// the reference's multi-arch push leaves in the registry.
fn push_package(
    registry: &Registry,
    cache: &Cache,
    image: &ImageRef,
    arches: &[Arch],
    manifest: bool,
) -> Result<()> {
    registry.push(cache, image, image)?;
    eprintln!("pushed {image}");
    if !manifest {
        return Ok(());
    }
    let top = cache
        .resolve(image)?
        .ok_or_else(|| Error::Usage(format!("{image} is not in the cache")))?;
    let tag = image.tag().unwrap_or("latest");
    if linuxkit_oci::media_type::is_index(&top.media_type) {
        for &arch in arches {
            // The registry client pushes what a name in the cache names:
            // the platform's manifest is named `TAG-ARCH` in the cache too,
            // as the reference's cache names it.
            let platform = Platform::linux(arch);
            let entry = linuxkit_pkg::image::platform_entries(cache, &top)
                .map_err(build_err)?
                .into_iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
                .ok_or_else(|| {
                    Error::Usage(format!("{image} has no {platform} image in the cache"))
                })?;
            let arch_tag = image.with_tag(&format!("{tag}-{arch}"));
            cache.tag(&arch_tag.canonical(), entry)?;
            registry.push(cache, &arch_tag, &arch_tag)?;
            eprintln!("pushed {arch_tag}");
        }
    } else {
        let arch_tag = image.with_tag(&format!("{tag}-{}", arches[0]));
        registry.push(cache, image, &arch_tag)?;
        eprintln!("pushed {arch_tag}");
    }
    Ok(())
}

/// The release of a push: `--release`, else (as the reference) the git
/// tag of the commit the package is hashed at, if it has one; several
/// tags are refused (the reference would push a name with a newline).
fn release_of(p: &Package, given: &Option<String>) -> Result<Option<String>> {
    if given.is_some() {
        return Ok(given.clone());
    }
    let tags = p.commit_tags().map_err(|e| Error::Usage(e.to_string()))?;
    match tags.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        several => Err(Error::Usage(format!(
            "{}: the commit has several tags ({}), each a possible release; give one with --release",
            p.path().display(),
            several.join(", ")
        ))),
    }
}

/// `--release R` after a push: the pushed image tagged `ORG/IMAGE:R` in the
/// cache and pushed under that name (and `R-ARCH` with `--manifest`), as
/// the reference releases; a release tag the registry already has is left
/// as it is, as the reference does not override it.
fn release_package(
    registry: &Registry,
    cache: &Cache,
    p: &Package,
    image: &ImageRef,
    release: &str,
    arches: &[Arch],
    manifest: bool,
) -> Result<()> {
    let tag = p
        .release_tag(release)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let release_ref = ImageRef::parse(&tag)?;
    if let Ok(d) = registry.remote_digest(&release_ref) {
        eprintln!("{release_ref} is already in the registry ({d}), not replacing it");
        return Ok(());
    }
    let top = cache
        .resolve(image)?
        .ok_or_else(|| Error::Usage(format!("{image} is not in the cache")))?;
    cache.tag(&release_ref.canonical(), top)?;
    push_package(registry, cache, &release_ref, arches, manifest)?;
    eprintln!("released {} as {release_ref}", image);
    Ok(())
}

/// `pkg remote-tag FROM TO`: the image FROM names in its registry, under
/// the name TO, with the same digest. The reference tags within a
/// repository without downloading; we copy through a scratch cache (every
/// platform of an index), which works across repositories and registries
/// alike.
fn remote_tag(from: &str, to: &str, cache_dir: &Path, g: &GlobalArgs) -> Result<()> {
    let from = ImageRef::parse(from)?;
    let to = ImageRef::parse(to)?;
    let cache = Cache::open(cache_dir)?;
    let _pin = cache.pin()?;
    let scratch_dir = cache.scratch_dir("remote-tag")?;
    let scratch = Cache::open(scratch_dir.path())?;
    let host = Platform::linux(Arch::host());
    let registry = Registry::new(crate::global::registry_options(g, host.clone())?)?;
    // The first pull stores the index (or the single manifest) and the
    // platform the index has for this host, if any.
    let first = registry.pull(&scratch, &from);
    let top = match (&first, scratch.resolve(&from)?) {
        (_, Some(top)) => top,
        (Err(e), None) => return Err(Error::Usage(format!("pkg remote-tag: {from}: {e}"))),
        (Ok(_), None) => unreachable!("a pulled image is named in the cache"),
    };
    if linuxkit_oci::media_type::is_index(&top.media_type) {
        let bytes = scratch.read_blob(&linuxkit_oci::Digest::parse(&top.digest)?)?;
        let index: linuxkit_oci::Index = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Usage(format!("{from}: its index is not valid JSON: {e}")))?;
        for p in index.manifests.iter().filter_map(|m| m.platform.clone()) {
            if scratch.image(&from, &p)?.is_some() {
                continue;
            }
            let o = crate::global::registry_options(g, p)?;
            Registry::new(o)?.pull(&scratch, &from)?;
        }
    } else {
        first?;
    }
    registry.push(&scratch, &from, &to)?;
    eprintln!("tagged {from} as {to} ({})", top.digest);
    Ok(())
}

/// `pkg builder du|prune`: what our builder keeps between builds, the
/// download cache of Debian indices and packages (`LINUXKIT_DEBIAN_CACHE`,
/// else `~/.cache/linuxkit/debian`) with Go's build cache in it
/// (`go-build/`): its size, or removing it. Everything in it is fetched
/// again, signature- and hash-checked, or compiled again, when needed.
fn builder(cmd: &BuilderCommand) -> Result<()> {
    let dir = linuxkit_pkg::debian::index::Client::default_cache_dir();
    match cmd {
        BuilderCommand::Du => {
            let (files, bytes) = if dir.exists() {
                disk_use(&dir)?
            } else {
                (0, 0)
            };
            println!("{}\t{files} files\t{bytes} bytes", dir.display());
            Ok(())
        }
        BuilderCommand::Prune => {
            if !dir.exists() {
                println!("{}: nothing to prune", dir.display());
                return Ok(());
            }
            let (files, bytes) = disk_use(&dir)?;
            for entry in
                std::fs::read_dir(&dir).context(|| format!("cannot list {}", dir.display()))?
            {
                let path = entry
                    .context(|| format!("cannot list {}", dir.display()))?
                    .path();
                let meta = std::fs::symlink_metadata(&path)
                    .context(|| format!("cannot stat {}", path.display()))?;
                if meta.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                }
                .context(|| format!("cannot remove {}", path.display()))?;
            }
            println!("{}: removed {files} files, {bytes} bytes", dir.display());
            Ok(())
        }
    }
}

/// Files and bytes under `dir`; links are counted, not followed.
fn disk_use(dir: &Path) -> Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).context(|| format!("cannot list {}", d.display()))? {
            let entry = entry.context(|| format!("cannot list {}", d.display()))?;
            let meta = std::fs::symlink_metadata(entry.path())
                .context(|| format!("cannot stat {}", entry.path().display()))?;
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((files, bytes))
}

/// `--dry-run`: what a build would do, without doing it.
fn print_plan(
    p: &Package,
    cache: &linuxkit_oci::Cache,
    arch: Arch,
    bopts: &BuildOptions,
    push: bool,
) -> Result<()> {
    let info = p.build_yml();
    if !info.is_declarative() {
        // A Dockerfile package: say whether it could be built here.
        linuxkit_pkg::dockerfile::check_builder(p, &bopts.dockerfile, arch).map_err(build_err)?;
    }
    let cached = linuxkit_oci::ImageRef::parse(&p.full_tag())
        .ok()
        .map(|r| cache.image(&r, &linuxkit_oci::Platform::linux(arch)))
        .transpose()?
        .flatten()
        .is_some();
    let mut what = Vec::new();
    if let Some(src) = &info.debian {
        let mut d = format!(
            "Debian {}: {}",
            src.suite.as_deref().unwrap_or("(host suite)"),
            src.packages.join(", ")
        );
        if !src.exclude.is_empty() {
            d.push_str(&format!("; excluding {}", src.exclude.join(", ")));
        }
        if !src.include.is_empty() {
            d.push_str(&format!("; only {}", src.include.join(", ")));
        }
        what.push(d);
        if let Some(s) = build::lock_status(p, arch).map_err(build_err)? {
            what.push(s);
        }
    } else if !info.is_declarative() {
        let df = bopts
            .dockerfile
            .dockerfile
            .as_deref()
            .unwrap_or(&info.dockerfile);
        what.push(match bopts.dockerfile.daemons.get(&arch) {
            Some(c) => format!("docker build of {df} in Docker context {c}"),
            None => format!("buildah build of {df}"),
        });
    }
    if info.kernel.is_some() {
        what.push("laid out as a kernel image".into());
    }
    for c in &info.cargo {
        what.push(format!("cargo {} --bin {} at {}", c.package, c.bin, c.path));
    }
    if !info.files.is_empty() {
        what.push(format!("{} files", info.files.len()));
    }
    println!(
        "{} {}: {}; {}{}",
        p.full_tag(),
        arch.oci_platform(),
        if cached && !bopts.force {
            "cached, would not rebuild"
        } else {
            "would build"
        },
        what.join("; "),
        if push { "; would push" } else { "" }
    );
    Ok(())
}

pub fn run(args: &PkgArgs, cache_dir: &Path, g: &GlobalArgs) -> Result<()> {
    let opts = options(&args.opts);
    match &args.command {
        PkgCommand::ShowTag { dirs, canonical } => {
            for dir in dirs {
                let p = Package::load(dir, &opts).map_err(|e| Error::Usage(e.to_string()))?;
                println!("{}", if *canonical { p.full_tag() } else { p.tag() });
            }
            Ok(())
        }
        PkgCommand::Build(b) => pkg_build(b, &opts, cache_dir, b.push, g),
        PkgCommand::Push(b) => {
            tracing::warn!("`pkg push` is deprecated: use `pkg build --push`");
            pkg_build(b, &opts, cache_dir, true, g)
        }
        PkgCommand::Builder(c) => builder(c),
        PkgCommand::Manifest(_) => Err(Error::RefusedCommand {
            what: "pkg manifest".into(),
            why: "`pkg build --platforms linux/amd64,linux/arm64 --push` builds the index of every platform and pushes it as `TAG` (and each platform as `TAG-ARCH`); assembling an index from images already in the registry is not done yet (issue 19)".into(),
        }),
        PkgCommand::RemoteTag { from, to } => remote_tag(from, to, cache_dir, g),
    }
}
