//! `linuxkit pkg ...`: package tags, and builds of packages: daemonless for
//! declarative ones (`debian:`, `files:`, `cargo:`; see
//! `linuxkit_pkg::build`), through a Docker daemon for Dockerfile ones.

use std::path::Path;

use linuxkit_base::Arch;
use linuxkit_pkg::BuildError;
use linuxkit_pkg::build::{self, BuildOptions};
use linuxkit_pkg::{Package, PkgOptions};

use crate::cli::{PkgArgs, PkgBuildArgs, PkgCommand, PkgOpts};
use crate::error::{Error, Result};

/// The package options given on the command line; the rest comes from each
/// package's build.yml.
pub fn options(o: &PkgOpts) -> PkgOptions {
    PkgOptions {
        build_yml: o.build_yml.clone(),
        org: o.org.clone(),
        hash: o.hash.clone(),
        tag: o.tag.clone(),
        hash_commit: o.hash_commit.clone(),
        hash_path: o.hash_path.clone(),
        force_dirty: o.force_dirty,
        dev: o.dev,
        ..PkgOptions::default()
    }
}

fn build_err(e: BuildError) -> Error {
    match e {
        BuildError::Oci(e) => Error::Oci(e),
        e => Error::Usage(e.to_string()),
    }
}

/// The one architecture to build: `--platforms linux/ARCH`, else the host's.
fn build_arch(b: &PkgBuildArgs) -> Result<Arch> {
    let Some(p) = &b.platforms else {
        return Ok(Arch::host());
    };
    let list: Vec<&str> = p
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match list.as_slice() {
        [one] => match one.strip_prefix("linux/") {
            // `ARCH` or `ARCH/VARIANT` (`linux/arm/v7`).
            Some(arch) => arch.parse().map_err(|source| Error::Arch {
                flag: "--platforms",
                given: one.to_string(),
                source,
            }),
            None => Err(Error::Usage(format!(
                "--platforms {one:?}: expected linux/ARCH"
            ))),
        },
        _ => Err(Error::Usage(
            "multi-platform builds are not supported yet: give one --platforms linux/ARCH".into(),
        )),
    }
}

/// `pkg build`; `push` is `--push`, or `pkg push` (the deprecated spelling).
fn pkg_build(b: &PkgBuildArgs, opts: &PkgOptions, cache_dir: &Path, push: bool) -> Result<()> {
    for (given, what) in [
        (b.pull, "--pull"),
        (b.docker, "--docker"),
        (b.release.is_some(), "--release"),
        (b.skip_platforms.is_some(), "--skip-platforms"),
        (!b.build_arg_file.is_empty(), "--build-arg-file"),
    ] {
        if given {
            return Err(Error::NotImplemented(format!("pkg build {what}")));
        }
    }
    let arch = build_arch(b)?;
    let bopts = BuildOptions {
        force: b.force || b.ignore_cached,
        arch,
        debian_cache: None,
        update: b.update,
    };
    let cache = linuxkit_oci::Cache::open(cache_dir)?;
    let mut registry = None;
    for dir in &b.dirs {
        let p = Package::load(dir, opts).map_err(|e| Error::Usage(e.to_string()))?;
        if b.dry_run || b.nobuild {
            dry_run(&p, &cache, arch, &bopts, push)?;
            continue;
        }
        let built = build::build(&p, &cache, &bopts).map_err(build_err)?;
        if let Some(l) = &built.lock_written {
            eprintln!("wrote {}", l.display());
        }
        if built.cached {
            eprintln!(
                "{} is cached, not rebuilding (use --force)",
                built.reference
            );
        } else if !built.packages.is_empty() {
            eprintln!("built from {}", built.packages.join(", "));
        } else {
            eprintln!("built {}", built.reference);
        }
        if let Some(k) = &built.kernel {
            eprintln!("kernel {} with {} modules", k.version, k.modules.len());
        }
        if push {
            if registry.is_none() {
                registry = Some(linuxkit_oci::Registry::new(
                    linuxkit_oci::RegistryOptions {
                        platform: linuxkit_oci::Platform::linux(arch),
                        ..Default::default()
                    },
                )?);
            }
            let r = linuxkit_oci::ImageRef::parse(&built.reference)?;
            registry.as_ref().expect("set above").push(&cache, &r, &r)?;
            eprintln!("pushed {}", built.reference);
        }
        println!("{}@{}", built.reference, built.manifest.digest);
    }
    Ok(())
}

/// `--dry-run`/`--nobuild`: what a build would do, without doing it.
fn dry_run(
    p: &Package,
    cache: &linuxkit_oci::Cache,
    arch: Arch,
    bopts: &BuildOptions,
    push: bool,
) -> Result<()> {
    let info = p.build_yml();
    if !info.is_declarative() {
        // A Dockerfile package: say whether a daemon could build it.
        if let Err(e) = build::debian_source(p)
            && !(matches!(e, BuildError::NeedsDaemon { .. })
                && linuxkit_pkg::docker::daemon_available())
        {
            return Err(build_err(e));
        }
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
        what.push(format!("docker build of {}", info.dockerfile));
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

pub fn run(args: &PkgArgs, cache_dir: &Path) -> Result<()> {
    let opts = options(&args.opts);
    match &args.command {
        PkgCommand::ShowTag { dirs, canonical } => {
            for dir in dirs {
                let p = Package::load(dir, &opts).map_err(|e| Error::Usage(e.to_string()))?;
                println!("{}", if *canonical { p.full_tag() } else { p.tag() });
            }
            Ok(())
        }
        PkgCommand::Build(b) => pkg_build(b, &opts, cache_dir, b.push),
        PkgCommand::Push(b) => pkg_build(b, &opts, cache_dir, true),
        PkgCommand::Builder(_) => Err(Error::NotImplemented("pkg builder".into())),
        PkgCommand::Manifest { .. } => Err(Error::NotImplemented("pkg manifest".into())),
        PkgCommand::RemoteTag { .. } => Err(Error::NotImplemented("pkg remote-tag".into())),
        PkgCommand::UpdateHashes { .. } => Err(Error::NotImplemented("pkg update-hashes".into())),
    }
}
