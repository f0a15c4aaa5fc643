//! `linuxkit cache ...`: the local image cache.

use std::io::Write;
use std::path::Path;

use linuxkit_oci::{Cache, Digest, ExportFormat, ImageRef, Platform, Registry};

use crate::cli::{self, CacheCommand};
use crate::error::{Error, IoContext, Result};

/// The arguments this handler reads (see `crate::flags`).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: crate::cli::Honoured = &[
    ("cache clean", &["published_only"]),
    ("cache rm", &["images", "published_only"]),
    ("cache ls", &[]),
    (
        "cache export",
        &["image", "arch", "outfile", "format", "name", "platform"],
    ),
    ("cache import", &["file"]),
    ("cache pull", &["images"]),
    (
        "cache push",
        &["images", "remote_name", "with_arch_tags", "override"],
    ),
];

/// `--platform OS/ARCH[/VARIANT]`, as the reference's (Go's
/// `v1.ParsePlatform`, without its `:OSVERSION`).
pub fn parse_platform(s: &str) -> Result<Platform> {
    Platform::parse(s).ok_or_else(|| {
        Error::Usage(format!(
            "invalid --platform `{s}`: expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64"
        ))
    })
}

/// `--with-arch-tags`: after `remote` got the index `local` names, tags
/// each platform's image of it as `TAG-ARCH` in the registry, as the
/// reference does. Platforms whose image is not complete in the cache are
/// skipped (as the reference skips what it cannot validate), with a line
/// saying so.
fn push_arch_tags(
    cache: &Cache,
    registry: &Registry,
    local: &ImageRef,
    remote: &ImageRef,
) -> Result<()> {
    let Some(top) = cache.resolve(local)? else {
        return Ok(());
    };
    if !linuxkit_oci::media_type::is_index(&top.media_type) {
        tracing::info!("{local} is not an index: no architecture tags to push");
        return Ok(());
    }
    let bytes = cache.read_blob(&linuxkit_oci::Digest::parse(&top.digest)?)?;
    let index: linuxkit_oci::Index = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("{local}: its index is not valid JSON: {e}")))?;
    let tag = remote.tag().unwrap_or("latest");
    for m in &index.manifests {
        let Some(p) = m.platform.as_ref().filter(|p| !p.architecture.is_empty()) else {
            continue;
        };
        if p.architecture == "unknown" {
            continue;
        }
        if cache.image(local, p)?.is_none() {
            tracing::warn!(
                "{local}: the {p} image is not complete in the cache; not tagging {tag}-{}",
                p.architecture
            );
            continue;
        }
        // The registry client pushes what a name in the cache names: the
        // platform's manifest gets a name of this process for the push.
        let scratch = local.with_tag(&format!(
            "{}-{}-push-{}",
            local.tag().unwrap_or("latest"),
            p.architecture,
            std::process::id()
        ));
        cache.tag(&scratch.canonical(), m.clone())?;
        let arch_tag = remote.with_tag(&format!("{tag}-{}", p.architecture));
        let pushed = registry.push(cache, &scratch, &arch_tag);
        cache.remove(&[scratch.canonical()])?;
        pushed?;
        tracing::info!("pushed {arch_tag}");
    }
    Ok(())
}

pub fn run(
    cmd: &CacheCommand,
    cache_dir: &Path,
    registry: impl Fn() -> Result<Registry>,
) -> Result<()> {
    let cache = Cache::open(cache_dir)?;
    match cmd {
        CacheCommand::Ls => {
            // Only reads, but reclaims what killed runs left like every
            // command that uses the cache.
            let _pin = cache.reclaim_and_pin()?;
            let mut out = std::io::stdout().lock();
            for (name, d) in cache.images()? {
                writeln!(out, "{name} {}", d.digest)
                    .context(|| "writing to standard output".into())?;
            }
            Ok(())
        }
        CacheCommand::Rm {
            images,
            published_only,
        } => {
            let refs = images
                .iter()
                .map(|i| ImageRef::parse(i))
                .collect::<Result<Vec<_>, _>>()?;
            let mut missing = Vec::new();
            let names = if *published_only {
                let registry = registry()?;
                let mut cached = Vec::new();
                for r in refs {
                    match cache.resolve(&r)? {
                        Some(d) => cached.push((r, d.digest)),
                        None => missing.push(r.canonical()),
                    }
                }
                published(&registry, cached)
            } else {
                refs.iter().map(ImageRef::canonical).collect()
            };
            missing.extend(cache.remove(&names)?);
            if missing.is_empty() {
                Ok(())
            } else {
                Err(Error::Usage(format!(
                    "not in the cache: {}",
                    missing.join(", ")
                )))
            }
        }
        CacheCommand::Clean {
            published_only: false,
        } => Ok(cache.clean()?),
        // As the reference: only the images whose registry has them now,
        // with the same digest; nothing else of the cache is touched.
        CacheCommand::Clean {
            published_only: true,
        } => {
            let registry = registry()?;
            let mut cached = Vec::new();
            for (name, d) in cache.images()? {
                match ImageRef::parse(&name) {
                    Ok(r) => cached.push((r, d.digest)),
                    Err(e) => tracing::info!("keeping {name}: {e}"),
                }
            }
            let names = published(&registry, cached);
            cache.remove(&names)?;
            Ok(())
        }
        CacheCommand::Pull { images } => {
            let registry = registry()?;
            for i in images {
                let r = ImageRef::parse(i)?;
                let img = registry.pull(&cache, &r)?;
                tracing::info!("pulled {} ({})", img.name, img.top.digest);
            }
            Ok(())
        }
        CacheCommand::Push {
            images,
            remote_name,
            with_arch_tags,
            r#override,
        } => {
            if remote_name.is_some() && images.len() != 1 {
                return Err(Error::Usage("--remote-name needs exactly one image".into()));
            }
            let registry = registry()?;
            for i in images {
                let local = ImageRef::parse(i)?;
                let remote = match remote_name {
                    Some(r) => ImageRef::parse(r)?,
                    None => local.clone(),
                };
                // As the reference: a tag the registry already has is left
                // as it is (whatever it names) unless --override; a failed
                // look-up counts as "not there", and the push says why if
                // the registry is really unreachable.
                if !*r#override {
                    match registry.remote_digest(&remote) {
                        Ok(d) => {
                            tracing::info!(
                                "image {remote} already exists in the registry ({d}), skipping; --override pushes it again"
                            );
                            continue;
                        }
                        Err(e) => tracing::debug!("{remote} is not in the registry ({e})"),
                    }
                }
                registry.push(&cache, &local, &remote)?;
                tracing::info!("pushed {remote}");
                if *with_arch_tags {
                    push_arch_tags(&cache, &registry, &local, &remote)?;
                }
            }
            Ok(())
        }
        CacheCommand::Export {
            image,
            arch,
            outfile,
            format,
            name,
            platform,
        } => {
            let r = ImageRef::parse(image)?;
            let platform = match platform {
                Some(p) => parse_platform(p)?,
                None => Platform::linux(*arch),
            };
            // From the look-up to the last byte, `cache rm`/`clean` wait.
            let _pin = cache.reclaim_and_pin()?;
            let img =
                cache
                    .image(&r, &platform)?
                    .ok_or_else(|| linuxkit_oci::Error::NotCached {
                        image: r.canonical(),
                    })?;
            let format = match format {
                cli::ExportFormat::Oci => ExportFormat::Oci,
                cli::ExportFormat::Docker => ExportFormat::Docker,
                cli::ExportFormat::Filesystem => {
                    // The image's merged filesystem as one tar.
                    let layers = img
                        .manifest
                        .layers
                        .iter()
                        .map(|l| linuxkit_rootfs::Layer::cached(&img.name, &cache, l))
                        .collect::<Result<Vec<_>, _>>()?;
                    let flatten = |w: &mut dyn Write| -> Result<()> {
                        let mut tar = linuxkit_output::TarWriter::new(std::io::BufWriter::new(w));
                        linuxkit_rootfs::flatten_layers(
                            &img.name,
                            &layers,
                            "",
                            &|_| linuxkit_rootfs::Filter::Keep,
                            &mut tar,
                        )?;
                        tar.finish()
                            .and_then(|mut w| w.flush())
                            .context(|| "cannot write the filesystem tar".into())
                    };
                    return if outfile == "-" {
                        flatten(&mut std::io::stdout().lock())
                    } else {
                        write_atomically(Path::new(outfile), flatten)
                    };
                }
            };
            let name = name.clone().unwrap_or_else(|| r.canonical());
            if outfile == "-" {
                let mut out = std::io::stdout().lock();
                cache.export(&img, &name, format, &mut out)?;
                return Ok(());
            }
            write_atomically(Path::new(outfile), |w| {
                Ok(cache.export(&img, &name, format, w)?)
            })
        }
        CacheCommand::Import { file } => {
            let names = if file == "-" {
                cache.import(&mut std::io::stdin().lock())?
            } else {
                let mut f = std::fs::File::open(file).context(|| format!("cannot open {file}"))?;
                cache.import(&mut f)?
            };
            for n in names {
                tracing::info!("imported {n}");
            }
            Ok(())
        }
    }
}

/// The canonical names of those `images` (with the digest the cache has
/// for them) that their registry serves now with the same digest: what
/// `--published-only` removes. The others are kept, and each says why; a
/// registry that cannot be asked keeps the image too (the reference's
/// rule: only what is confirmed published goes).
fn published(registry: &Registry, images: Vec<(ImageRef, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (r, local) in images {
        let name = r.canonical();
        match registry.remote_digest(&r) {
            Ok(remote) if Digest::parse(&local).is_ok_and(|l| l == remote) => {
                tracing::info!("removing {name}: its registry has the same {remote}");
                out.push(name);
            }
            Ok(remote) => {
                tracing::info!("keeping {name}: the cache has {local}, its registry {remote}")
            }
            Err(e) => tracing::info!("keeping {name}: not confirmed published ({e})"),
        }
    }
    out
}

/// Writes `path` through a staged file (see [`linuxkit_output::Staged`]):
/// a failed run leaves no partial file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let mut staged = linuxkit_output::Staged::create(path.to_path_buf())?;
    let mut w = std::io::BufWriter::new(staged.file());
    write(&mut w)?;
    w.flush()
        .context(|| format!("cannot write {}", path.display()))?;
    drop(w);
    staged.commit()?;
    Ok(())
}
