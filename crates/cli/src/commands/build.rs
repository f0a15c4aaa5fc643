//! `linuxkit build`: YAML files → resolved config → images, root
//! filesystem and outputs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use linuxkit_config::{Checks, Config};

use linuxkit_output::Format;

use crate::cli::BuildArgs;
use crate::error::{Error, IoContext, Result};

/// The arguments this handler reads (see `crate::flags`).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: crate::cli::Honoured = &[(
    "build",
    &[
        "files",
        "name",
        "dir",
        "output",
        "size",
        "pull",
        "decompress_kernel",
        "arch",
        "formats",
        "no_sbom",
        "sbom_output",
        "sbom_current_time",
        "dry_run",
        "compression",
        "size_report",
        "strict",
    ],
)];

/// The most a configuration fetched from a URL may be. The reference reads
/// without a bound; a configuration is a few kilobytes, and anything near
/// this is not one.
pub const MAX_REMOTE_CONFIG: u64 = 4 << 20;
/// The most a configuration file (or standard input) may be: a YAML read
/// from `/dev/zero` or an endless pipe would otherwise be read until memory
/// runs out. The largest real configurations are tens of kilobytes.
pub const MAX_CONFIG: u64 = 16 << 20;
/// How long fetching a configuration from a URL may take, all of it.
pub const REMOTE_CONFIG_DEADLINE: Duration = Duration::from_secs(60);

/// A configuration input: a file or standard input.
struct Input {
    /// How errors name it.
    name: String,
    text: String,
}

/// Fetches a configuration from an `http(s)://` URL, as the reference does,
/// but bounded: at most [`MAX_REMOTE_CONFIG`] bytes within
/// [`REMOTE_CONFIG_DEADLINE`]; TLS trusts the system's CAs and those of
/// `--cert-file`; any status but 200 is an error.
pub fn fetch_config(url: &str, ca: &[PathBuf]) -> Result<String> {
    let fail = |why: String| Error::Usage(format!("cannot fetch the configuration {url}: {why}"));
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(REMOTE_CONFIG_DEADLINE)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5));
    for f in ca {
        let pem = std::fs::read(f).context(|| format!("--cert-file {}", f.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--cert-file {}: no PEM certificate in it",
                    f.display()
                ))
            })?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    let client = builder.build().map_err(|e| fail(e.to_string()))?;
    let response = client.get(url).send().map_err(|e| fail(with_sources(&e)))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(fail(format!("HTTP status {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_REMOTE_CONFIG)
    {
        return Err(fail(format!(
            "it is larger than {MAX_REMOTE_CONFIG} bytes, too large for a configuration"
        )));
    }
    let mut body = Vec::new();
    response
        .take(MAX_REMOTE_CONFIG + 1)
        .read_to_end(&mut body)
        .map_err(|e| fail(with_sources(&e)))?;
    if body.len() as u64 > MAX_REMOTE_CONFIG {
        return Err(fail(format!(
            "it is larger than {MAX_REMOTE_CONFIG} bytes, too large for a configuration"
        )));
    }
    String::from_utf8(body).map_err(|e| {
        fail(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `e` and its causes, on one line.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

/// Reads `arg`: `-` is standard input, `http(s)://` a URL; a path that does
/// not exist is tried again with `.yml` appended, as the reference does.
fn read_input(arg: &str, ca: &[PathBuf]) -> Result<Input> {
    if arg == "-" {
        let bytes = read_bounded(std::io::stdin().lock(), "standard input")?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::Usage(format!(
                "standard input: not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        return Ok(Input {
            name: "<stdin>".into(),
            text,
        });
    }
    if arg.starts_with("http://") || arg.starts_with("https://") {
        return Ok(Input {
            name: arg.to_string(),
            text: fetch_config(arg, ca)?,
        });
    }
    let mut path = PathBuf::from(arg);
    if !path.exists() && path.extension().is_none() {
        let with_ext = PathBuf::from(format!("{arg}.yml"));
        if with_ext.exists() {
            path = with_ext;
        }
    }
    let file = std::fs::File::open(&path).context(|| format!("cannot read {}", path.display()))?;
    let bytes = read_bounded(file, &path.display().to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Usage(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(Input {
        name: path.display().to_string(),
        text,
    })
}

/// Reads a configuration, at most [`MAX_CONFIG`] bytes of it; `name` says
/// which in errors.
fn read_bounded(r: impl Read, name: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)
        .context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(Error::Usage(format!(
            "{name}: larger than {} MiB, too large for a configuration (is it the right file?)",
            MAX_CONFIG >> 20
        )));
    }
    Ok(bytes)
}

/// Loads, merges, resolves `@pkg:` templates and validates the
/// configuration (with `strict`, a warning is an error); also returns each
/// `@pkg:` image with its package directory, so that a failed pull can say
/// how to build it instead.
pub fn load_config(
    files: &[String],
    pkg_opts: &linuxkit_pkg::PkgOptions,
    ca: &[PathBuf],
    strict: bool,
) -> Result<(Config, Vec<(String, PathBuf)>)> {
    let inputs = files
        .iter()
        .map(|f| read_input(f, ca))
        .collect::<Result<Vec<_>>>()?;
    let mut config = Config::parse_all(inputs.iter().map(|i| (i.name.as_str(), i.text.as_str())))?;
    let mut packages = Vec::new();
    config.resolve_templates(|dir: &Path| {
        if dir.to_str().is_some_and(|d| d.starts_with("http://") || d.starts_with("https://")) {
            return Err(
                "`@pkg:` names a package directory, which only a local configuration file can do (LinuxKit leaves the text as it is in a fetched one, and the image name is then invalid); download the file next to its packages and build that"
                    .to_string(),
            );
        }
        let tag = linuxkit_pkg::Package::load(dir, pkg_opts)
            .map(|p| p.full_tag())
            .map_err(|e| e.to_string())?;
        packages.push((tag.clone(), dir.to_path_buf()));
        Ok(tag)
    })?;
    let checks = Checks {
        strict,
        ..Checks::default()
    };
    for w in config.validate(&checks)? {
        tracing::warn!("{w}");
    }
    Ok((config, packages))
}

/// The package directory an image was resolved from (`@pkg:DIR`), if any.
fn package_dir<'a>(
    image: &linuxkit_oci::ImageRef,
    packages: &'a [(String, PathBuf)],
) -> Option<&'a Path> {
    packages
        .iter()
        .find(|(tag, _)| linuxkit_oci::ImageRef::parse(tag).is_ok_and(|r| &r == image))
        .map(|(_, dir)| dir.as_path())
}

/// The output name: `--name`, else the last file's base name without its
/// extension, `moby` for standard input.
fn output_name(args: &BuildArgs) -> String {
    if let Some(n) = &args.name {
        return n.clone();
    }
    let last = args.files.last().map(String::as_str).unwrap_or("-");
    if last == "-" {
        return "moby".into();
    }
    let base = Path::new(last)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_else(|| "moby".into());
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => base,
    }
}

/// The reference's rules for `--format`, `--o`, `--name` and `--dir`.
fn check_flags(args: &BuildArgs) -> Result<Vec<Format>> {
    let mut formats: Vec<Format> = Vec::new();
    for &f in &args.formats {
        if !formats.contains(&f) {
            formats.push(f);
        }
    }
    if formats.is_empty() {
        formats.push(if args.output.is_some() {
            Format::Tar
        } else {
            Format::KernelInitrd
        });
    }
    // The reference refuses `tar` or `docker` next to other formats because
    // it streams them; we write every format to its own file, so only `--o`
    // (a single stream) needs a single format.
    if args.output.is_some() {
        if formats.len() != 1 {
            return Err(Error::Usage(
                "--o can only be used when building a single output format".into(),
            ));
        }
        if args.name.is_some() {
            return Err(Error::Usage(
                "--o cannot be used together with --name".into(),
            ));
        }
        if args.dir.is_some() {
            return Err(Error::Usage(
                "--o cannot be used together with --dir".into(),
            ));
        }
        if !formats[0].streams() {
            return Err(linuxkit_output::Error::NotStreamable(formats[0]).into());
        }
        if args.size_report.is_some() {
            return Err(Error::Usage(
                "--size-report needs a format with an initrd, not --o".into(),
            ));
        }
    }
    // The reference joins `--dir` and `--name`, so that a path-like name
    // writes wherever it points; without `--dir` it is kept (the name is
    // the path), but with `--dir` the outputs stay in that directory.
    if let (Some(dir), Some(name)) = (&args.dir, &args.name) {
        let escapes = Path::new(name).components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir
                    | std::path::Component::RootDir
                    | std::path::Component::Prefix(_)
            )
        });
        if escapes {
            return Err(Error::Usage(format!(
                "--name {name} would write outside --dir {}: give a name inside it, or the path as --name without --dir",
                dir.display()
            )));
        }
    }
    // Formats that write the same file name cannot be combined.
    linuxkit_output::check_together(&formats)?;
    if let Some(dir) = &args.dir
        && !args.dry_run
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!(
            "output directory {} does not exist; create it first",
            dir.display()
        )));
    }
    build_size(args)?;
    if !args.dry_run
        && let Some(&f) = formats.iter().find(|f| !f.is_implemented())
    {
        return Err(Error::Refused {
            what: format!("build --format {f}"),
            why: f
                .not_implemented_why()
                .unwrap_or("this build of linuxkit does not write it")
                .into(),
        });
    }
    Ok(formats)
}

/// `--size` in MiB, when given; zero is refused.
fn build_size(args: &BuildArgs) -> Result<Option<u64>> {
    let Some(s) = &args.size else {
        return Ok(None);
    };
    match parse_size(s)? {
        0 => Err(Error::Usage(format!(
            "invalid --size `{s}`: a disk needs a size above zero"
        ))),
        mb => Ok(Some(mb)),
    }
}

/// A bootable format without the `kernel` section is an error at that
/// section (or the file, when there is none), before anything is pulled.
/// (The other formats that need the kernel say so once it is missing from
/// the assembled root filesystem.)
fn check_kernel(config: &Config, formats: &[Format]) -> Result<()> {
    if !config.moby.kernel.image.is_empty() {
        return Ok(());
    }
    let Some(f) = formats.iter().find(|f| f.needs_bootloader()) else {
        return Ok(());
    };
    Err(Error::Config(config.kernel_error(
        "image",
        format!(
            "format {f} cannot boot: the configuration has no `kernel:` section; add one with the kernel's `image:` (and its `cmdline:`)"
        ),
    )))
}

/// The boot loader image of `arch` (`pkg/bootloader`, pinned by
/// digest), from the cache; never pulled or built here.
fn load_bootloader(
    cache: &linuxkit_oci::Cache,
    platform: &linuxkit_oci::Platform,
    arch: linuxkit_base::Arch,
    format: Format,
) -> Result<linuxkit_output::Bootloader> {
    // Checked before (`format_unavailable`): there are boot loaders for `arch`.
    let mut bl = linuxkit_output::Bootloader::new(arch).ok_or_else(|| Error::FormatArch {
        why: format!("format {format} has no boot loaders for {arch}"),
        arch,
    })?;
    let pinned = bl.image().image;
    let image = linuxkit_oci::ImageRef::parse(pinned)
        .map_err(|e| Error::Usage(format!("the boot loader reference: {e}")))?;
    let Some(img) = cache.image(&image, platform)? else {
        return Err(Error::Usage(format!(
            "format {format} needs the {arch} boot loader image {pinned}, which is not in the cache {}: build it with `linuxkit pkg build --platforms {} {}` in a linuxkit checkout (with the same --cache), or pull it with `linuxkit cache pull {pinned}` from a registry that has it",
            cache.root().display(),
            arch.oci_platform(),
            linuxkit_output::BOOTLOADER_PACKAGE,
        )));
    };
    let layers = img
        .manifest
        .layers
        .iter()
        .map(|l| linuxkit_rootfs::Layer::cached(&img.name, cache, l))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let files = bl.image().files();
    let wanted = |p: &str| {
        if files
            .iter()
            .any(|f| *f == p || f.starts_with(&format!("{p}/")))
        {
            linuxkit_rootfs::Filter::Keep
        } else {
            linuxkit_rootfs::Filter::Drop
        }
    };
    linuxkit_rootfs::flatten_layers(&img.name, &layers, "", &wanted, &mut bl)?;
    let missing = bl.missing();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "the boot loader image {pinned} has no {}",
            missing.join(", ")
        )));
    }
    Ok(bl)
}

/// `--size`: `1024M`, `2G`, or a bare number of GB; in MiB.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "invalid --size `{s}`: use a number with M or G, e.g. 1024M"
        ))
    };
    let (num, mult) = match s.as_bytes().last() {
        None => return Ok(0),
        Some(b'M') | Some(b'm') => (&s[..s.len() - 1], 1),
        Some(b'G') | Some(b'g') => (&s[..s.len() - 1], 1024),
        _ => (s, 1024),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

/// The consolidated SBOM `build` writes (`--no-sbom`, `--sbom-output`,
/// `--sbom-current-time`, as the reference's): `None` with `--no-sbom`.
fn sbom_options(
    no_sbom: bool,
    output: &str,
    current_time: bool,
) -> Result<Option<linuxkit_rootfs::sbom::SbomOptions>> {
    if no_sbom {
        return Ok(None);
    }
    let created = if current_time {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        linuxkit_rootfs::sbom::spdx_time(now)
    } else {
        linuxkit_rootfs::sbom::DEFAULT_CREATED.to_string()
    };
    linuxkit_rootfs::sbom::SbomOptions::new(output, created)
        .map(Some)
        .map_err(Error::Usage)
}

pub fn run(
    args: &BuildArgs,
    pkg_opts: &linuxkit_pkg::PkgOptions,
    cache_dir: &Path,
    ca: &[PathBuf],
    registry: impl Fn() -> Result<linuxkit_oci::Registry>,
) -> Result<()> {
    // Every argument, by name: a new one must be read here or refused in
    // `crate::flags` (the compiler sees to the first, a test to the second).
    let BuildArgs {
        files,
        name: _,
        dir: _,
        output,
        size: _,
        pull,
        decompress_kernel,
        arch,
        formats: _,
        no_sbom,
        sbom_output,
        sbom_current_time,
        dry_run,
        compression,
        size_report,
        strict,
    } = args;
    let formats = check_flags(args)?;
    let name = output_name(args);
    let sbom = sbom_options(*no_sbom, sbom_output, *sbom_current_time)?;
    let (config, packages) = load_config(files, pkg_opts, ca, *strict)?;
    // Image references are checked before the dry run stops, so that a
    // configuration it accepts does not fail later on a reference.
    let images = image_refs(&config)?;
    if *dry_run {
        print!("{}", linuxkit_config::to_yaml(&config.moby));
        return Ok(());
    }
    check_kernel(&config, &formats)?;
    let cache = linuxkit_oci::Cache::open(cache_dir)?;
    let platform = linuxkit_oci::Platform::linux(*arch);
    // From the first cache look-up to the last output byte, a concurrent
    // `cache rm`/`clean` must wait.
    let _pin = cache.reclaim_and_pin()?;
    // The boot loaders come from the cache only; looked up before any pull,
    // so that a missing image is said at once.
    if let Some(why) = formats
        .iter()
        .find_map(|f| linuxkit_output::format_unavailable(*f, *arch))
    {
        return Err(Error::FormatArch { why, arch: *arch });
    }
    let bootloader = match formats.iter().find(|f| f.needs_bootloader()) {
        Some(&f) if output.is_none() => Some(load_bootloader(&cache, &platform, *arch, f)?),
        _ => None,
    };
    let mut client = None;
    let layouts = oci_volumes(&config)?;
    for image in &images {
        // An image only an OCI-layout volume uses is pulled for that
        // volume's platforms below, not for this build's.
        if layouts.iter().any(|(r, _, only)| r == image && *only) {
            continue;
        }
        if !*pull && cache.image(image, &platform)?.is_some() {
            tracing::debug!("{image} is cached");
            continue;
        }
        if client.is_none() {
            client = Some(registry()?);
        }
        let reg = client.as_ref().expect("set above");
        tracing::info!("pulling {image}");
        if let Err(e) = reg.pull(&cache, image) {
            let message = match package_dir(image, &packages) {
                // Most often the package was changed and not rebuilt (its
                // tag is its content hash): pulling was never the plan.
                Some(dir) => format!(
                    "{image} (`@pkg:{dir}`) is not in the cache {cache} and could not be pulled: {e}; build it with `linuxkit pkg build {dir}` (same cache), or push it where it can be pulled",
                    dir = dir.display(),
                    cache = cache.root().display(),
                ),
                None => e.to_string(),
            };
            return Err(error_at_image(&config, image, message));
        }
    }
    for (image, platforms, _) in &layouts {
        if !*pull && cache.tree(image, platforms)?.is_some() {
            tracing::debug!("{image} is cached for its OCI layout");
            continue;
        }
        if client.is_none() {
            client = Some(registry()?);
        }
        let reg = client.as_ref().expect("set above");
        tracing::info!("pulling {image} for an OCI layout");
        if let Err(e) = reg.pull_platforms(&cache, image, platforms) {
            return Err(error_at_image(&config, image, e.to_string()));
        }
    }
    let scratch = cache.scratch_dir("build")?;
    let images = linuxkit_rootfs::Images {
        cache: &cache,
        platform,
        scratch: scratch.path(),
    };
    let parts = linuxkit_rootfs::parts(&config, &images, sbom.as_ref())?;
    if let Some(o) = output {
        // A single streamable format (checked above) to a file or stdout.
        if o == "-" {
            let stdout = std::io::stdout().lock();
            linuxkit_output::write_stream(formats[0], args.decompress_kernel, stdout, &parts)?;
        } else {
            let mut staged = linuxkit_output::Staged::create(PathBuf::from(o))?;
            linuxkit_output::write_stream(
                formats[0],
                args.decompress_kernel,
                staged.file(),
                &parts,
            )?;
            staged.commit()?;
        }
        return Ok(());
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let opts = linuxkit_output::OutputOptions {
        compression: compression.method,
        level: compression.level,
        segments: Some(linuxkit_output::SegmentCache::new(
            cache.root().join(".segments"),
        )?),
        decompress_kernel: *decompress_kernel,
        bootloader,
        size_mb: build_size(args)?,
    };
    let (written, report) =
        linuxkit_output::write_formats_report(&formats, &dir, &name, &opts, &parts)?;
    for w in written {
        tracing::info!("wrote {}", w.display());
    }
    match &report {
        Some(r) => {
            if tracing::enabled!(tracing::Level::INFO) {
                eprint!("{}", size_table(r));
            }
            if let Some(path) = size_report {
                let json =
                    serde_json::to_string_pretty(&size_json(r)).expect("a JSON value serialises");
                std::fs::write(path, format!("{json}\n"))
                    .context(|| format!("cannot write {}", path.display()))?;
            }
        }
        None if size_report.is_some() => {
            return Err(Error::Usage(
                "--size-report needs a format with an initrd (kernel+initrd, the ISO and disk formats, tar-kernel-initrd)".into(),
            ));
        }
        None => {}
    }
    Ok(())
}

/// A report row: a section, or an image within one.
#[derive(Default)]
struct Row {
    section: &'static str,
    image: Option<String>,
    file_bytes: u64,
    dedup_bytes: u64,
    dedup_files: u64,
    initrd_bytes: u64,
}

impl Row {
    fn add(&mut self, p: &linuxkit_output::PartReport) {
        self.file_bytes += p.file_bytes;
        self.dedup_bytes += p.dedup_bytes;
        self.dedup_files += p.dedup_files;
        self.initrd_bytes += p.initrd_bytes;
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "section": self.section,
            "unpacked_bytes": self.file_bytes,
            "dedup_saved_bytes": self.dedup_bytes,
            "dedup_files": self.dedup_files,
            "initrd_bytes": self.initrd_bytes,
        });
        if self.section.is_empty() {
            v.as_object_mut().expect("an object").remove("section");
        }
        v
    }
}

/// The rows of the report: per section, and per (section, image), in
/// the order of the configuration. The microcode counts to the kernel.
fn rows(r: &linuxkit_output::InitrdReport) -> (Vec<Row>, Vec<Row>, Row) {
    let mut sections: Vec<Row> = Vec::new();
    let mut images: Vec<Row> = Vec::new();
    let mut total = Row::default();
    for p in &r.parts {
        match sections.iter_mut().find(|s| s.section == p.section) {
            Some(s) => s.add(p),
            None => {
                let mut s = Row {
                    section: p.section,
                    ..Default::default()
                };
                s.add(p);
                sections.push(s);
            }
        }
        match images
            .iter_mut()
            .find(|s| s.section == p.section && s.image == p.image)
        {
            Some(s) => s.add(p),
            None => {
                let mut s = Row {
                    section: p.section,
                    image: p.image.clone(),
                    ..Default::default()
                };
                s.add(p);
                images.push(s);
            }
        }
        total.add(p);
    }
    for rows in [&mut sections, &mut images] {
        if let Some(k) = rows.iter_mut().find(|s| s.section == "kernel") {
            k.initrd_bytes += r.ucode_bytes;
        }
    }
    total.initrd_bytes = r.initrd_bytes;
    (sections, images, total)
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

/// The image name without its registry and with a short tag, for the table.
fn short_image(i: &str) -> String {
    let i = i.strip_prefix("docker.io/").unwrap_or(i);
    match i.rsplit_once(':') {
        Some((name, tag)) if tag.len() > 12 && !name.contains('@') => {
            format!("{name}:{}", &tag[..12])
        }
        _ => i.to_string(),
    }
}

/// The size report `build` prints: where the bytes of the image go.
fn size_table(r: &linuxkit_output::InitrdReport) -> String {
    let (sections, images, total) = rows(r);
    let mut out = format!(
        "image size: kernel {} MB, initrd {} MB ({}); duplicate files stored once: {} files, {} MB unpacked\n",
        mb(r.kernel_bytes),
        mb(r.initrd_bytes),
        r.compression.name(),
        total.dedup_files,
        mb(total.dedup_bytes),
    );
    out.push_str(&format!(
        "  {:<11} {:<40} {:>10} {:>8} {:>10}\n",
        "section", "image", "unpacked", "dedup", "initrd"
    ));
    let line = |out: &mut String, section: &str, image: &str, row: &Row| {
        out.push_str(&format!(
            "  {:<11} {:<40} {:>7} MB {:>5} MB {:>7} MB\n",
            section,
            image,
            mb(row.file_bytes),
            mb(row.dedup_bytes),
            mb(row.initrd_bytes)
        ));
    };
    for s in &sections {
        let mine: Vec<&Row> = images.iter().filter(|i| i.section == s.section).collect();
        for i in &mine {
            let name = i
                .image
                .as_deref()
                .map(short_image)
                .unwrap_or_else(|| "(generated)".into());
            line(&mut out, s.section, &name, i);
        }
        if mine.len() > 1 {
            line(&mut out, s.section, "(section total)", s);
        }
    }
    line(&mut out, "total", "", &total);
    out
}

/// `--size-report`: the same as JSON (schema in docs/images.md).
fn size_json(r: &linuxkit_output::InitrdReport) -> serde_json::Value {
    let (sections, images, total) = rows(r);
    serde_json::json!({
        "compression": r.compression.name(),
        "kernel_bytes": r.kernel_bytes,
        "initrd_bytes": r.initrd_bytes,
        "unpacked_bytes": total.file_bytes,
        "dedup_saved_bytes": total.dedup_bytes,
        "dedup_files": total.dedup_files,
        "sections": sections.iter().map(Row::json).collect::<Vec<_>>(),
        "images": images.iter().map(|i| {
            let mut v = i.json();
            v["image"] = i.image.clone().map_or(serde_json::Value::Null, serde_json::Value::String);
            v
        }).collect::<Vec<_>>(),
    })
}

/// Calls `f` with every image reference of the configuration, in YAML
/// order, and a maker of errors located at that reference.
fn each_image(
    config: &Config,
    mut f: impl FnMut(&str, &dyn Fn(String) -> linuxkit_config::ConfigError) -> Result<()>,
) -> Result<()> {
    let m = &config.moby;
    if !m.kernel.image.is_empty() {
        f(&m.kernel.image, &|msg| config.kernel_error("image", msg))?;
    }
    for (i, r) in m.init.iter().enumerate() {
        f(r, &|msg| config.error_at("init", i, "", msg))?;
    }
    for (section, i, c) in m.containers() {
        f(&c.image, &|msg| {
            config.error_at(section.key(), i, "image", msg)
        })?;
    }
    for (i, v) in m.volumes.iter().enumerate() {
        if !v.image.is_empty() {
            f(&v.image, &|msg| config.error_at("volumes", i, "image", msg))?;
        }
    }
    Ok(())
}

/// Every image the configuration names, parsed, each once, in YAML order.
/// A malformed reference is reported at its line.
fn image_refs(config: &Config) -> Result<Vec<linuxkit_oci::ImageRef>> {
    let mut out: Vec<linuxkit_oci::ImageRef> = Vec::new();
    each_image(config, |r, err| {
        let parsed =
            linuxkit_oci::ImageRef::parse(r).map_err(|e| Error::Config(err(e.to_string())))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The images of `format: oci` volumes with the platforms each asks for
/// (none: every platform), and whether nothing else uses the image.
type Layouts = Vec<(linuxkit_oci::ImageRef, Vec<linuxkit_oci::Platform>, bool)>;

fn oci_volumes(config: &Config) -> Result<Layouts> {
    let m = &config.moby;
    let parse = |r: &str| linuxkit_oci::ImageRef::parse(r).ok();
    let mut others = Vec::new();
    each_image(config, |r, _| {
        others.extend(parse(r));
        Ok(())
    })?;
    let mut out: Layouts = Vec::new();
    for v in &m.volumes {
        if v.image.is_empty() || v.format != Some(linuxkit_config::VolumeFormat::Oci) {
            continue;
        }
        let Some(image) = parse(&v.image) else {
            continue;
        };
        // Validation checked the form of every platform.
        let platforms: Vec<_> = v
            .platforms
            .iter()
            .filter_map(|p| linuxkit_oci::Platform::parse(p))
            .collect();
        if !out.iter().any(|(r, p, _)| *r == image && *p == platforms) {
            out.push((image, platforms, false));
        }
    }
    // Uses of the image elsewhere: every use but those by OCI volumes.
    let layout_uses = m
        .volumes
        .iter()
        .filter(|v| v.format == Some(linuxkit_config::VolumeFormat::Oci))
        .filter_map(|v| parse(&v.image))
        .collect::<Vec<_>>();
    for (image, _, only) in &mut out {
        let total = others.iter().filter(|r| *r == image).count();
        let by_layouts = layout_uses.iter().filter(|r| *r == image).count();
        *only = total == by_layouts;
    }
    Ok(out)
}

/// `message` about `image`, located at the first place the configuration
/// names it.
fn error_at_image(config: &Config, image: &linuxkit_oci::ImageRef, message: String) -> Error {
    let mut found = None;
    let _ = each_image(config, |r, err| {
        if found.is_none() && linuxkit_oci::ImageRef::parse(r).is_ok_and(|p| &p == image) {
            found = Some(err(message.clone()));
        }
        Ok(())
    });
    found.map_or(Error::Usage(message), Error::Config)
}
