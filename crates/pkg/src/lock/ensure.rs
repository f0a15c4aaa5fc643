//! Keeping `debian.lock` current: whether the lockfile pins this build,
//! and if not, resolving `debian:` against the mirror and rewriting it.

use std::path::PathBuf;

use linuxkit_base::Arch;

use super::{LOCKFILE, LockRequest, LockedDeb, Lockfile};
use crate::debian::{self, Client, Dependency, Request, ResolveOptions};
use crate::error::BuildError;
use crate::{DebianSource, Package};

/// The state of a package's `debian.lock` for a build, without touching
/// the network (for `--dry-run`).
pub fn lock_status(pkg: &Package, arch: Arch) -> Result<Option<String>, BuildError> {
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
    } else if lock.pins(arch, Arch::host()) {
        format!("pinned by {LOCKFILE}")
    } else if !lock.packages.contains_key(arch.debian()) {
        format!("{LOCKFILE} has no {}: would resolve it", arch.debian())
    } else {
        format!(
            "{LOCKFILE} has no build packages for this {} machine: would resolve them",
            Arch::host().debian()
        )
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

/// Reads `debian.lock` and returns it if it pins a build for every one of
/// `targets` on this machine (the image's packages of each target, the
/// build packages of this machine's architecture, whose toolchain
/// cross-compiles); otherwise (missing, `update`, a new architecture)
/// resolves what it lacks (everything it has, too, for `update`) against the
/// mirror (indices and `.deb`s cached in `debian_cache`, default
/// [`Client::default_cache_dir`]) and writes it. Returns the lockfile and
/// whether the file was written. A lockfile for another request is
/// [`BuildError::StaleLock`] unless `update` (`--update`).
pub fn ensure_lock(
    pkg: &Package,
    src: &DebianSource,
    targets: &[Arch],
    update: bool,
    debian_cache: Option<PathBuf>,
    progress: &crate::progress::Progress,
) -> Result<(Lockfile, bool), BuildError> {
    let path = Lockfile::path_in(pkg.path());
    let name = lock_name(pkg);
    let req = LockRequest::of(src);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(lock_err(pkg, format!("cannot read {name}: {e}"))),
    };
    let parsed = match &text {
        None => None,
        Some(t) if update => Lockfile::parse(&name, t).ok(),
        Some(t) => Some(Lockfile::parse(&name, t).map_err(|e| {
            lock_err(
                pkg,
                format!("{e} (fix it, or run `linuxkit pkg build --update` to rewrite it)"),
            )
        })?),
    };
    // The lockfile's keys are Debian's names: those to resolve the image's
    // packages for, and the build packages for.
    let host = Arch::host().debian().to_string();
    let wants_build = !req.build_packages.is_empty();
    let mut arches: Vec<String> = Vec::new();
    let mut build_arches: Vec<String> = Vec::new();
    let mut lock = match parsed {
        Some(l) if !update => {
            if l.request != req {
                return Err(BuildError::StaleLock {
                    lockfile: name,
                    build_yml: pkg.build_yml_name(),
                    difference: l.request.difference(&req),
                    dir: pkg.dir().to_owned(),
                });
            }
            arches.extend(
                targets
                    .iter()
                    .filter(|t| !l.packages.contains_key(t.debian()))
                    .map(|t| t.debian().to_string()),
            );
            if !l.pins_build(Arch::host()) {
                build_arches.push(host);
            }
            if arches.is_empty() && build_arches.is_empty() {
                return Ok((l, false));
            }
            // Same request, new architectures: pin them too, keep the rest.
            l
        }
        other => {
            arches.extend(targets.iter().map(|t| t.debian().to_string()));
            if wants_build {
                build_arches.push(host);
            }
            if let Some(old) = other.filter(|l| l.request == req) {
                arches.extend(old.packages.keys().cloned());
                build_arches.extend(old.build_packages.keys().cloned());
            }
            arches.sort();
            arches.dedup();
            build_arches.sort();
            build_arches.dedup();
            let suite = match &req.suite {
                Some(s) => s.clone(),
                None => debian::sources::find_mirror(None)?.suite,
            };
            Lockfile::new(req.clone(), suite)
        }
    };
    let mirror = debian::sources::find_mirror(Some(&lock.suite))?;
    let client = Client::for_mirror(&mirror, debian_cache).progress(progress.clone());
    let release = client.release(&lock.suite)?;
    // The requests of a build for `arch` (`name [arch ...]` restricts one
    // to some architectures, as in Debian's Build-Depends).
    let parse = |list: &[String], arch: &str| -> Result<Vec<Dependency>, BuildError> {
        let arch: Arch = arch.parse().map_err(|e| lock_err(pkg, format!("{e}")))?;
        let mut out = Vec::new();
        for p in list {
            let r = Request::parse(p)
                .map_err(|m| lock_err(pkg, format!("`debian`: bad package {p:?}: {m}")))?;
            if r.applies_to(arch) {
                out.push(r.dependency);
            }
        }
        Ok(out)
    };
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
    let mut every: Vec<&String> = arches.iter().chain(&build_arches).collect();
    every.sort();
    every.dedup();
    for a in every {
        let index = client.packages(&release, &src.components, a)?;
        if arches.contains(a) {
            let wanted = parse(&src.packages, a)?;
            lock.packages
                .insert(a.clone(), resolve(&index, &wanted, &ropts)?);
        }
        let build_wanted = parse(&src.build_packages, a)?;
        if build_arches.contains(a) && !build_wanted.is_empty() {
            // A build root needs its whole closure, whatever `dependencies`
            // says of the image.
            let build = resolve(&index, &build_wanted, &ResolveOptions::default())?;
            lock.build_packages.insert(a.clone(), build);
        }
    }
    let new_text = lock.to_text();
    let written = text.as_deref() != Some(new_text.as_str());
    if written {
        debian::index::write_atomic(&path, new_text.as_bytes())?;
    }
    Ok((lock, written))
}
