//! What the global flags mean for every command: where the cache is, and
//! the registry client they configure (mirrors, CAs, limits, progress).
//! A module of its own so that the handlers in `commands` and `main` both
//! use it without importing each other.

use std::path::PathBuf;

use crate::cli::{GlobalArgs, Honoured};
use crate::error::{Error, IoContext, Result};

/// The global arguments, read here (see `flags`).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: Honoured = &[("", &["cache", "mirror", "cert_file", "quiet", "verbose"])];

/// The cache directory: `--cache`, else `LINUXKIT_CACHE`, else `~/.linuxkit/cache`.
pub fn cache_dir(g: &GlobalArgs) -> PathBuf {
    g.cache
        .clone()
        .or_else(|| std::env::var_os("LINUXKIT_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".linuxkit").join("cache")
        })
}

/// The registry options from the global flags: mirrors from `--mirror`
/// and `LINUXKIT_MIRROR` (space or comma separated; the flags win, as the
/// reference's), the CAs of `--cert-file`, progress bars unless `-q`.
pub fn registry_options(
    g: &GlobalArgs,
    platform: linuxkit_oci::Platform,
) -> Result<linuxkit_oci::RegistryOptions> {
    // `cache` is read by `cache_dir`.
    let GlobalArgs {
        mirror,
        cert_file,
        quiet,
        verbose,
        ..
    } = g;
    let mut mirrors: Vec<linuxkit_oci::Mirror> = Vec::new();
    let env = std::env::var("LINUXKIT_MIRROR").unwrap_or_default();
    for m in env
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .chain(mirror.iter().map(String::as_str))
    {
        let m = linuxkit_oci::Mirror::parse(m)?;
        // The last word on a registry wins (the reference's SetProxy).
        mirrors.retain(|old| old.registry != m.registry);
        mirrors.push(m);
    }
    let mut ca_certificates = Vec::new();
    for f in cert_file {
        let pem = std::fs::read(f).context(|| format!("--cert-file {}", f.display()))?;
        ca_certificates.push((f.display().to_string(), pem));
    }
    Ok(linuxkit_oci::RegistryOptions {
        platform,
        mirrors,
        ca_certificates,
        // The deadlines' and limits' environment variables, refused
        // here if unreadable rather than ignored.
        limits: linuxkit_oci::Limits::from_env().map_err(Error::Usage)?,
        progress: !quiet && *verbose > 0,
        ..Default::default()
    })
}

/// A registry client configured from the global flags (see
/// [`registry_options`]).
pub fn registry(
    g: &GlobalArgs,
    platform: linuxkit_oci::Platform,
) -> Result<linuxkit_oci::Registry> {
    Ok(linuxkit_oci::Registry::new(registry_options(g, platform)?)?)
}
