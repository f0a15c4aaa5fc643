//! Dockerfile packages, built without a Docker daemon.
//!
//! A package without a declarative source (`debian:`, `files:`, ...) is
//! built from its Dockerfile, as the reference builds every package. The
//! reference hands it to BuildKit in a container of a Docker daemon; we use
//! Debian's `buildah` (see [`buildah`] for how it is confined), which needs
//! no daemon, runs as root with storage of its own, and reads the same
//! Dockerfiles (multi-stage, `ARG`, `COPY --from`, `RUN --mount`). A Docker
//! daemon is used only when the user names one (`--builders`, see
//! [`crate::docker`]).
//!
//! A build, for one platform:
//!
//! 1. the Dockerfile (`dockerfile:` or `--dockerfile`, inside the package
//!    directory) is read for the images it starts from ([`parse`]): each is
//!    looked up in our cache for the platform, fetched into it through the
//!    configured registries and mirrors if it is missing (the caller's
//!    [`Fetch`]), and loaded into the builder's storage under its
//!    canonical name; the builder never pulls anything itself;
//! 2. the build context is the package directory plus its
//!    `extra-sources`, copied; `depends.docker-images` are saved into it
//!    from our cache (`docker save` archives, as the reference writes them);
//! 3. `buildah build` runs with the build arguments (the reference's
//!    defaults `SOURCE`, `REVISION`, `GOPKGVERSION`, `PKG_HASH`,
//!    `PKG_IMAGE`, then `buildArgs`, then
//!    `--build-arg-file`s), no network unless `network: true`;
//! 4. the result is squashed to one layer and written again the way our
//!    declarative images are ([`crate::image::store_layer`]): entries
//!    sorted by path, every mtime fixed, gzip with a fixed header, an image
//!    config without `created` time nor history, with `build.yml`'s
//!    `config:` as the `org.mobyproject.config` label and its `labels:`.
//!    Two builds of a Dockerfile whose steps are deterministic give the
//!    same manifest digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linuxkit_base::Arch;
use linuxkit_base::path::normalize;
use linuxkit_oci::{Cache, Descriptor, Digest, ExportFormat, ImageRef, Manifest, Platform};
use linuxkit_rootfs::CONFIG_LABEL;

use crate::error::BuildError;
use crate::layer::LayerTree;
use crate::progress::Progress;
use crate::{Package, PkgOptions};

pub mod buildah;
pub mod parse;

/// Fetches an image for a platform into the cache (the caller's registry
/// client, with its mirrors and credentials); `Err` says why it could not.
#[derive(Clone)]
pub struct Fetch(pub Arc<FetchFn>);

/// What a [`Fetch`] calls.
pub type FetchFn = dyn Fn(&ImageRef, Arch) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetch(..)")
    }
}

/// What `pkg build` adds for Dockerfile packages.
#[derive(Debug, Clone, Default)]
pub struct DockerfileOptions {
    /// `KEY=VALUE` lines of the `--build-arg-file`s (already expanded,
    /// [`expand_build_arg`]); they override `buildArgs`.
    pub build_args: Vec<String>,
    /// `--dockerfile`: overrides `dockerfile:`, relative to the package.
    pub dockerfile: Option<String>,
    /// `--ssh` specifications, handed to the builder.
    pub ssh: Vec<String>,
    /// `--builders`: a Docker context per platform, whose daemon builds
    /// for it instead of buildah.
    pub daemons: BTreeMap<Arch, String>,
    /// Fetches a missing base image into the cache.
    pub fetch: Option<Fetch>,
    /// Fetch every base image again, even if cached (`--ignore-cached`).
    pub refetch: bool,
    /// No builder output but errors.
    pub quiet: bool,
}

fn fail(pkg: &Package, message: String) -> BuildError {
    BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message,
    }
}

/// The reference's special build argument values: `KEY=@lkt:pkg:PATH` is
/// the tag of the package at `PATH`, `KEY=@lkt:pkgs:GLOB` one argument per
/// package directory matching `GLOB`, `%` in `KEY` replaced by the
/// package's image name (upper-cased, `/` and `-` as `_`). Relative paths
/// are from `anchor`'s directory (the file the line is in).
pub fn expand_build_arg(line: &str, anchor: &Path) -> Result<Vec<String>, String> {
    let Some((key, value)) = line.split_once('=') else {
        return Err(format!(
            "invalid build-arg `{line}`, must be in format 'arg=value'"
        ));
    };
    let Some(special) = value.strip_prefix("@lkt:") else {
        return Ok(vec![line.to_string()]);
    };
    let base = anchor.parent().unwrap_or(Path::new("."));
    let load =
        |dir: &Path| Package::load(dir, &PkgOptions::default()).map_err(|e| format!("{line}: {e}"));
    if let Some(path) = special.strip_prefix("pkg:") {
        let p = load(&base.join(path))?;
        return Ok(vec![format!("{key}={}", p.tag())]);
    }
    if let Some(glob) = special.strip_prefix("pkgs:") {
        if !key.contains('%') {
            return Err(format!(
                "invalid build arg key `{key}`, must contain a '%' (it stands for each package's image)"
            ));
        }
        let pattern = base.join(glob);
        let (dir, pat) = match (pattern.parent(), pattern.file_name()) {
            (Some(d), Some(p)) => (d.to_path_buf(), p.to_string_lossy().into_owned()),
            _ => return Err(format!("{line}: `{glob}` names no directory")),
        };
        let m = globset::Glob::new(&pat)
            .map_err(|e| format!("{line}: {e}"))?
            .compile_matcher();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{line}: {}: {e}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                !n.starts_with('.') && m.is_match(&n)
            })
            .map(|e| e.path())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(format!("{line}: no packages found matching `{glob}`"));
        }
        let mut out = Vec::new();
        for d in dirs {
            let p = load(&d)?;
            let stem = p
                .build_yml()
                .image
                .replace(['/', '-'], "_")
                .to_ascii_uppercase();
            out.push(format!("{}={}", key.replace('%', &stem), p.tag()));
        }
        return Ok(out);
    }
    Err(format!("unknown linuxkit build arg value `{value}`"))
}

/// The build arguments of `pkg`: the reference's defaults, `buildArgs`
/// (expanded), then `extra` (the `--build-arg-file`s), later ones
/// replacing earlier ones.
pub fn build_args(pkg: &Package, extra: &[String]) -> Result<Vec<(String, String)>, BuildError> {
    let info = pkg.build_yml();
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for line in info.build_args.iter().flatten() {
        for l in expand_build_arg(line, pkg.build_yml_path())
            .map_err(|e| fail(pkg, format!("`buildArgs`: {e}")))?
        {
            let (k, v) = l.split_once('=').expect("checked");
            args.insert(k.to_string(), v.to_string());
        }
    }
    for l in extra {
        let Some((k, v)) = l.split_once('=') else {
            return Err(fail(
                pkg,
                format!("invalid build-arg `{l}`, must be in format 'arg=value'"),
            ));
        };
        args.insert(k.trim().to_string(), v.trim().to_string());
    }
    let (revision, go_version) = pkg.revision().map_err(|e| {
        fail(
            pkg,
            format!("the REVISION and GOPKGVERSION build arguments: {e}"),
        )
    })?;
    let defaults = [
        ("SOURCE", info.git_repo.clone()),
        ("REVISION", revision.unwrap_or_default()),
        ("GOPKGVERSION", go_version.unwrap_or_default()),
        ("PKG_HASH", pkg.hash().to_string()),
        ("PKG_IMAGE", pkg.image()),
    ];
    for (k, v) in defaults {
        if !v.is_empty() {
            args.entry(k.to_string()).or_insert(v);
        }
    }
    Ok(args.into_iter().collect())
}

/// The Dockerfile's path relative to the package directory, checked to be
/// inside it.
fn dockerfile_path(pkg: &Package, opts: &DockerfileOptions) -> Result<String, BuildError> {
    let (given, what) = match &opts.dockerfile {
        Some(d) => (d.as_str(), "--dockerfile"),
        None => (pkg.build_yml().dockerfile.as_str(), "`dockerfile`"),
    };
    match normalize(given) {
        Ok(p) if !p.is_empty() && !Path::new(given).is_absolute() => Ok(p),
        _ => Err(fail(
            pkg,
            format!(
                "{what} `{given}`: the Dockerfile must be a file in the package directory or below"
            ),
        )),
    }
}

/// Which builder would build `pkg` for `arch`, or why none can: for
/// `--dry-run` and the error before any work.
pub fn check_builder(
    pkg: &Package,
    opts: &DockerfileOptions,
    arch: Arch,
) -> Result<(), BuildError> {
    if opts.daemons.contains_key(&arch) {
        return Ok(());
    }
    let missing = buildah::missing_tools();
    if !missing.is_empty() {
        return Err(BuildError::NeedsBuilder {
            pkg: pkg.path().to_owned(),
            missing: missing.into_iter().map(str::to_string).collect(),
        });
    }
    Ok(())
}

/// Builds the Dockerfile package `pkg` for `arch` with buildah into
/// `cache` (see the [module docs](self)); returns its manifest's
/// descriptor, not yet tagged.
pub fn build(
    pkg: &Package,
    cache: &Cache,
    opts: &DockerfileOptions,
    arch: Arch,
    progress: &Progress,
) -> Result<Descriptor, BuildError> {
    check_builder(pkg, opts, arch)?;
    let info = pkg.build_yml();
    let rel = dockerfile_path(pkg, opts)?;
    let df_path = pkg.dir().join(&rel);
    let text = std::fs::read_to_string(&df_path).map_err(|e| {
        fail(
            pkg,
            format!("cannot read the Dockerfile {}: {e}", df_path.display()),
        )
    })?;
    let args = build_args(pkg, &opts.build_args)?;
    let parsed = parse::read(&text, &args);
    let platform = Platform::linux(arch);
    if parsed.runs && !buildah::can_run(arch) {
        return Err(fail(
            pkg,
            format!(
                "{} has RUN steps, which cannot run for {} on this {} machine: install Debian's `qemu-user-static` and `binfmt-support` (they register the emulators with the kernel), or build for {} only",
                df_path.display(),
                arch.oci_platform(),
                Arch::host().oci_platform(),
                Arch::host().oci_platform()
            ),
        ));
    }
    // The images it starts from, in the cache for this platform.
    let step = progress.step(format!("fetch {} base images", parsed.images.len()));
    let mut bases = Vec::new();
    for (name, line) in &parsed.images {
        let image = ImageRef::parse(name)
            .map_err(|e| fail(pkg, format!("{}:{line}: {e}", df_path.display())))?;
        let img = ensure_cached(cache, opts, &image, arch)
            .map_err(|e| fail(pkg, format!("{}:{line}: {e}", df_path.display())))?;
        bases.push((image, img));
    }
    step.done();
    let scratch = cache.scratch_dir("buildah")?;
    let io = |what: &str, e: std::io::Error| fail(pkg, format!("{what}: {e}"));
    let store = scratch.path().join("storage");
    std::fs::create_dir(&store).map_err(|e| io("the builder's storage", e))?;
    let b = buildah::Buildah::new(&store).map_err(|e| io("the builder's storage", e))?;
    let step = progress.step("load base images and the build context");
    for (i, (image, img)) in bases.iter().enumerate() {
        let archive = scratch.path().join(format!("base-{i}.tar"));
        let mut f = std::fs::File::create(&archive).map_err(|e| io("a base image archive", e))?;
        let name = storage_name(image);
        cache.export(img, &name, ExportFormat::Oci, &mut f)?;
        drop(f);
        b.load(&archive, &name).map_err(|e| fail(pkg, e))?;
        std::fs::remove_file(&archive).map_err(|e| io("a base image archive", e))?;
    }
    // The build context.
    let context = scratch.path().join("context");
    std::fs::create_dir(&context).map_err(|e| io("the build context", e))?;
    let tar = crate::docker::context_tar(pkg).map_err(|e| io("the build context", e))?;
    let mut unpack = tar::Archive::new(tar.as_slice());
    unpack.set_preserve_permissions(true);
    unpack
        .unpack(&context)
        .map_err(|e| io("the build context", e))?;
    save_depends(pkg, cache, opts, arch, &context)?;
    step.done();
    let step = progress.step(format!("buildah build of {rel}"));
    let tag = "localhost/linuxkit-build:latest";
    progress
        .suspend(|| {
            b.build(&buildah::BuildSpec {
                context: &context,
                dockerfile: &context.join(&rel),
                arch,
                build_args: &args,
                network: info.network,
                ssh: &opts.ssh,
                tag,
                quiet: opts.quiet,
            })
        })
        .map_err(|e| fail(pkg, format!("{}: {e}", df_path.display())))?;
    let out = scratch.path().join("out");
    b.save(tag, &out).map_err(|e| fail(pkg, e))?;
    step.done();
    let step = progress.step("layer, compress and store");
    let mut manifest = store_normalised(pkg, cache, arch, &out)?;
    step.done();
    manifest.platform = Some(platform);
    Ok(manifest)
}

/// The name an image is loaded into the builder's storage under: its
/// canonical reference, with its tag (a reference by digest alone gets the
/// tag `latest`: the storage names images by tag).
fn storage_name(image: &ImageRef) -> String {
    match (image.tag(), image.digest()) {
        (_, None) => image.canonical(),
        (Some(t), Some(_)) => format!("{}/{}:{t}", image.registry(), image.repository()),
        (None, Some(_)) => format!("{}/{}:latest", image.registry(), image.repository()),
    }
}

/// `image` for `arch` from the cache, fetched into it first if missing.
fn ensure_cached(
    cache: &Cache,
    opts: &DockerfileOptions,
    image: &ImageRef,
    arch: Arch,
) -> Result<linuxkit_oci::CachedImage, String> {
    let platform = Platform::linux(arch);
    let look = || cache.image(image, &platform).map_err(|e| e.to_string());
    if !opts.refetch
        && let Some(img) = look()?
    {
        return Ok(img);
    }
    let why = match &opts.fetch {
        Some(f) => match (f.0)(image, arch) {
            Ok(()) => match look()? {
                Some(img) => return Ok(img),
                None => "the registry has no image for it".to_string(),
            },
            Err(e) => e,
        },
        None => "no registry to fetch it from".to_string(),
    };
    Err(format!(
        "{} could not be fetched into the cache for {} ({why}); build its package, or `linuxkit cache pull --platform {} {}` (without --ignore-cached, the cached image is used)",
        image.canonical(),
        arch.oci_platform(),
        arch.oci_platform(),
        image.canonical()
    ))
}

/// `depends.docker-images`: each image (pinned by digest, as the
/// reference requires) from the cache (fetched if missing), saved into the
/// build context as `docker save` writes it: `target-dir/NAME@DIGEST.tar`
/// each, or all in the one `target` archive (one image only here).
fn save_depends(
    pkg: &Package,
    cache: &Cache,
    opts: &DockerfileOptions,
    arch: Arch,
    context: &Path,
) -> Result<(), BuildError> {
    let d = &pkg.build_yml().depends.docker_images;
    let key = "`depends.docker-images`";
    if !d.target.is_empty() && !d.target_dir.is_empty() {
        return Err(fail(
            pkg,
            format!("{key}: `target` and `target-dir` are mutually exclusive"),
        ));
    }
    if !d.from_file.is_empty() && !d.list.is_empty() {
        return Err(fail(
            pkg,
            format!("{key}: `list` and `from-file` are mutually exclusive"),
        ));
    }
    let mut list = d.list.clone();
    if !d.from_file.is_empty() {
        let rel = inside(pkg, &d.from_file, "from-file")?;
        let path = pkg.dir().join(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| fail(pkg, format!("{key}.from-file: {}: {e}", path.display())))?;
        list.extend(
            text.lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if list.is_empty() {
        return Ok(());
    }
    let (target, dir) = match (&d.target, &d.target_dir) {
        (t, _) if !t.is_empty() => (inside(pkg, t, "target")?, false),
        (_, t) if !t.is_empty() => (inside(pkg, t, "target-dir")?, true),
        _ => {
            return Err(fail(
                pkg,
                format!("{key}: the images need a `target` or `target-dir` to be saved to"),
            ));
        }
    };
    if !dir && list.len() > 1 {
        return Err(fail(
            pkg,
            format!(
                "{key}: saving {} images into one `target` archive is not supported; use `target-dir` (one archive per image)",
                list.len()
            ),
        ));
    }
    let target = context.join(target);
    if dir {
        std::fs::create_dir_all(&target)
            .map_err(|e| fail(pkg, format!("{key}: {}: {e}", target.display())))?;
    }
    for name in list {
        let image =
            ImageRef::parse(&name).map_err(|e| fail(pkg, format!("{key}: `{name}`: {e}")))?;
        if image.digest().is_none() {
            return Err(fail(pkg, format!("{key}: image `{name}` lacks a digest")));
        }
        let img = ensure_cached(cache, opts, &image, arch)
            .map_err(|e| fail(pkg, format!("{key}: {e}")))?;
        let path = if dir {
            let base = image.repository().rsplit('/').next().unwrap_or_default();
            target.join(format!("{base}@{}.tar", image.digest().unwrap_or_default()))
        } else {
            target.clone()
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| fail(pkg, format!("{key}: {}: {e}", parent.display())))?;
        }
        let mut f = std::fs::File::create(&path)
            .map_err(|e| fail(pkg, format!("{key}: {}: {e}", path.display())))?;
        cache.export(&img, &storage_name(&image), ExportFormat::Docker, &mut f)?;
    }
    Ok(())
}

/// `path` (of `build.yml`'s `key`) relative to the package directory,
/// checked to stay inside it and not be it.
fn inside(pkg: &Package, path: &str, key: &str) -> Result<String, BuildError> {
    let rel = path.strip_prefix(&format!("{}/", pkg.dir().display()));
    match normalize(rel.unwrap_or(path)) {
        Ok(p) if !p.is_empty() && (rel.is_some() || !Path::new(path).is_absolute()) => Ok(p),
        _ => Err(fail(
            pkg,
            format!("`depends.docker-images.{key}` `{path}` must be inside the package directory"),
        )),
    }
}

/// Reads the image buildah wrote as an OCI layout at `layout` and stores it
/// in the cache as our declarative images are: one layer, sorted, fixed
/// times, a config without `created` nor `history`.
fn store_normalised(
    pkg: &Package,
    cache: &Cache,
    arch: Arch,
    layout: &Path,
) -> Result<Descriptor, BuildError> {
    let what = layout.display().to_string();
    let bad = |m: String| BuildError::Layer {
        what: what.clone(),
        message: m,
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| bad(format!("{}: {e}", p.display())));
    let blob = |d: &str| -> Result<Vec<u8>, BuildError> {
        let d = Digest::parse(d)?;
        let bytes = read(&layout.join("blobs/sha256").join(d.hex()))?;
        if Digest::of(&bytes) != d {
            return Err(bad(format!("blob {d} does not match its digest")));
        }
        Ok(bytes)
    };
    let index: linuxkit_oci::Index = serde_json::from_slice(&read(&layout.join("index.json"))?)
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let top = index
        .manifests
        .first()
        .ok_or_else(|| bad("index.json names no image".into()))?;
    let manifest: Manifest = serde_json::from_slice(&blob(&top.digest)?)
        .map_err(|e| bad(format!("the manifest: {e}")))?;
    let mut config: serde_json::Value = serde_json::from_slice(&blob(&manifest.config.digest)?)
        .map_err(|e| bad(format!("the image config: {e}")))?;
    let mut tree = LayerTree::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        let bytes = blob(&l.digest)?;
        let bytes =
            decompress(&bytes, &l.media_type).map_err(|e| bad(format!("layer {i}: {e}")))?;
        tree.add_layer(&format!("{what} layer {i}"), &bytes)?;
    }
    let tar = tree.to_tar()?;
    let info = pkg.build_yml();
    let mut labels = info.labels.clone();
    if let Some(c) = &info.config {
        let json = serde_json::to_string(c)
            .map_err(|e| fail(pkg, format!("cannot encode `config`: {e}")))?;
        labels.insert(CONFIG_LABEL.to_string(), json);
    }
    crate::image::store_layer(cache, arch, &tar, |diff_id| {
        normalise_config(&mut config, arch, diff_id, &labels);
        Ok(serde_json::to_vec(&sorted(config)).expect("config serializes"))
    })
}

/// `v` with the keys of every object in sorted order.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let m: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(m.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        v => v,
    }
}

/// The builder's image config made independent of when and with what it
/// was built: no `created`, `history` nor builder version label; our
/// labels added; the platform and the one layer's diff ID set (its keys
/// are then written sorted, [`sorted`]).
fn normalise_config(
    config: &mut serde_json::Value,
    arch: Arch,
    diff_id: &Digest,
    labels: &BTreeMap<String, String>,
) {
    use serde_json::{Value, json};
    let Some(obj) = config.as_object_mut() else {
        *config = json!({});
        return normalise_config(config, arch, diff_id, labels);
    };
    obj.remove("created");
    obj.remove("history");
    obj.insert("architecture".into(), json!(arch.oci_architecture()));
    obj.insert("os".into(), json!("linux"));
    match arch.oci_variant() {
        Some(v) => obj.insert("variant".into(), json!(v)),
        None => obj.remove("variant"),
    };
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": [diff_id.to_string()]}),
    );
    let exec = obj
        .entry("config")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(exec) = exec {
        let l = exec.entry("Labels").or_insert_with(|| json!({}));
        if !l.is_object() {
            *l = json!({});
        }
        let l = l.as_object_mut().expect("an object");
        l.remove("io.buildah.version");
        for (k, v) in labels {
            l.insert(k.clone(), Value::String(v.clone()));
        }
        if l.is_empty() {
            exec.remove("Labels");
        }
    }
}

fn decompress(bytes: &[u8], media_type: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(bytes)?.read_to_end(&mut out)?;
    } else if media_type.ends_with("+gzip") || media_type.ends_with("+zstd") {
        return Err(std::io::Error::other(format!(
            "a {media_type} layer that is not compressed so"
        )));
    } else {
        out = bytes.to_vec();
    }
    Ok(out)
}
