//! `linuxkit pkg ...`: package tags, and daemonless builds of packages
//! with a `debian:` source (see `linuxkit_pkg::build`).

use std::path::Path;

use linuxkit_pkg::build::{self, BuildError, BuildOptions};
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
fn build_arch(b: &PkgBuildArgs) -> Result<String> {
    let Some(p) = &b.platforms else {
        return Ok(linuxkit_oci::host_arch().to_string());
    };
    let list: Vec<&str> = p
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match list.as_slice() {
        [one] => match one.split('/').collect::<Vec<_>>().as_slice() {
            ["linux", arch] => Ok(arch.to_string()),
            _ => Err(Error::Usage(format!(
                "--platforms {one:?}: expected linux/ARCH"
            ))),
        },
        _ => Err(Error::Usage(
            "multi-platform builds are not supported yet: give one --platforms linux/ARCH".into(),
        )),
    }
}

fn pkg_build(b: &PkgBuildArgs, opts: &PkgOptions, cache_dir: &Path) -> Result<()> {
    for (given, what) in [
        (b.push, "--push"),
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
        arch: arch.clone(),
        debian_cache: None,
    };
    let cache = linuxkit_oci::Cache::open(cache_dir)?;
    for dir in &b.dirs {
        let p = Package::load(dir, opts).map_err(|e| Error::Usage(e.to_string()))?;
        let src = build::debian_source(&p).map_err(build_err)?;
        if b.dry_run || b.nobuild {
            let cached = linuxkit_oci::ImageRef::parse(&p.full_tag())
                .ok()
                .map(|r| cache.image(&r, &linuxkit_oci::Platform::linux(&arch)))
                .transpose()?
                .flatten()
                .is_some();
            println!(
                "{} linux/{arch}: {}; Debian {}: {}{}",
                p.full_tag(),
                if cached && !bopts.force {
                    "cached, would not rebuild"
                } else {
                    "would build"
                },
                src.suite.as_deref().unwrap_or("(host suite)"),
                src.packages.join(", "),
                if src.exclude.is_empty() {
                    String::new()
                } else {
                    format!("; excluding {}", src.exclude.join(", "))
                }
            );
            continue;
        }
        let built = build::build(&p, &cache, &bopts).map_err(build_err)?;
        if built.cached {
            eprintln!(
                "{} is cached, not rebuilding (use --force)",
                built.reference
            );
        } else {
            eprintln!("built from {}", built.packages.join(", "));
        }
        println!("{}@{}", built.reference, built.manifest.digest);
    }
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
        PkgCommand::Build(b) => pkg_build(b, &opts, cache_dir),
        PkgCommand::Push(_) => Err(Error::NotImplemented("pkg push".into())),
        PkgCommand::Builder(_) => Err(Error::NotImplemented("pkg builder".into())),
        PkgCommand::Manifest { .. } => Err(Error::NotImplemented("pkg manifest".into())),
        PkgCommand::RemoteTag { .. } => Err(Error::NotImplemented("pkg remote-tag".into())),
        PkgCommand::UpdateHashes { .. } => Err(Error::NotImplemented("pkg update-hashes".into())),
    }
}
