//! The image's one layer: the pinned Debian packages (filtered by
//! `include`/`exclude`, laid out as a kernel image for `kernel:`), the
//! `cargo:` and `go:` binaries, then what `build.yml` declares.

use std::path::PathBuf;

use linuxkit_base::Arch;
use linuxkit_base::path::normalize;
use linuxkit_oci::Cache;
use linuxkit_rootfs::{Entry, EntryKind};

use super::files;
use crate::Package;
use crate::debian::{self, Client, DebArchive, Dependency};
use crate::error::BuildError;
use crate::filter::PathPatterns;
use crate::kernel::KernelInfo;
use crate::layer::LayerTree;
use crate::lock::{LockedDeb, Lockfile};
use crate::progress::Progress;
use crate::sbom::{CargoBinary, Contents, Deb, GoBinary, digests};

/// Where `.deb`s of a lockfile come from: the Debian cache by SHA256, else
/// the mirror (found only when something is missing).
struct DebStore<'a> {
    cache_dir: PathBuf,
    suite: &'a str,
    debian_cache: Option<PathBuf>,
    client: Option<Client>,
    progress: &'a Progress,
}

impl DebStore<'_> {
    fn open(&mut self, d: &LockedDeb) -> Result<DebArchive, BuildError> {
        if let Some(p) = debian::index::cached_file(&self.cache_dir, &d.sha256) {
            return Ok(DebArchive::open(&p)?);
        }
        if self.client.is_none() {
            let mirror = debian::sources::find_mirror(Some(self.suite))?;
            self.client = Some(
                Client::for_mirror(&mirror, self.debian_cache.clone())
                    .progress(self.progress.clone()),
            );
        }
        let client = self.client.as_ref().expect("set above");
        let url = format!("{}/{}", client.base_uri(), d.filename);
        let path = client.fetch_verified(&url, &d.sha256, Some(d.size))?;
        Ok(DebArchive::open(&path)?)
    }
}

/// The image's one layer and what the builder knows of it.
pub(super) struct Assembled {
    /// The layer, an uncompressed tar.
    pub tar: Vec<u8>,
    /// The Debian packages in it (`name version`; build packages with
    /// ` (build)`).
    pub packages: Vec<String>,
    /// The kernel, for a `kernel:` image.
    pub kernel: Option<KernelInfo>,
    /// What went in, for the SBOM and the provenance.
    pub contents: Contents,
}

/// The image's one layer; see [`Assembled`].
pub(super) fn assemble(
    pkg: &Package,
    cache: &Cache,
    lock: Option<&Lockfile>,
    arch: Arch,
    debian_cache: Option<&PathBuf>,
    progress: &Progress,
) -> Result<Assembled, BuildError> {
    let info = pkg.build_yml();
    let build_yml = pkg.build_yml_name();
    let mut layer = LayerTree::new();
    let mut packages = Vec::new();
    let mut kernel = None;
    let mut contents = Contents::default();
    let mut store = lock.map(|lock| DebStore {
        cache_dir: debian_cache
            .cloned()
            .unwrap_or_else(Client::default_cache_dir),
        suite: &lock.suite,
        debian_cache: debian_cache.cloned(),
        client: None,
        progress,
    });
    if let (Some(src), Some(lock), Some(store)) = (&info.debian, lock, store.as_mut()) {
        let debs = lock
            .packages
            .get(arch.debian())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let step = progress.step(format!("fetch {} Debian packages", debs.len()));
        let opened = debs
            .iter()
            .map(|d| Ok((format!("{} {}", d.name, d.version), store.open(d)?)))
            .collect::<Result<Vec<_>, BuildError>>()?;
        step.done();
        let step = progress.step(format!("unpack {} Debian packages", debs.len()));
        for (d, (label, deb)) in debs.iter().zip(opened) {
            layer.add_deb(&label, &deb)?;
            packages.push(label);
            // Read before `include`/`exclude` drop the documentation.
            let copyright = layer
                .get(&format!("usr/share/doc/{}/copyright", d.name))
                .map(|(_, data)| data.to_vec());
            contents.debs.push(Deb {
                locked: d.clone(),
                source: deb.control()?.get("Source").map(str::to_string),
                copyright,
            });
        }
        let patterns = |v: &[String], globs| {
            PathPatterns::new(v, globs).map_err(|message| BuildError::Package {
                build_yml: build_yml.clone(),
                message: format!("`debian`: {message}"),
            })
        };
        layer.keep_paths(
            &patterns(&src.include, false)?,
            &patterns(&src.excluded(), true)?,
        );
        step.done();
        if let Some(k) = &info.kernel {
            let step = progress.step("lay out the kernel");
            let (l, k) = crate::kernel::layout(&layer, k, arch, &build_yml)?;
            layer = l;
            kernel = Some(k);
            step.done();
        }
    }
    for (i, c) in info.cargo.iter().enumerate() {
        let step = progress.step(format!("compile {} (cargo)", c.bin));
        let built = crate::cargo::build_binary(pkg.path(), c, arch, &build_yml, i)?;
        contents.cargo.push(CargoBinary {
            path: c.path.clone(),
            package: c.package.clone(),
            digests: digests(&built.bytes),
            crates: built.crates,
        });
        put_binary(&mut layer, &c.path, built.bytes);
        step.done();
    }
    if !info.go.is_empty() {
        // Checked when build.yml was read: `go:` comes with build packages.
        let (Some(lock), Some(store)) = (lock, store.as_mut()) else {
            unreachable!("`go:` without `debian.build_packages`")
        };
        // This machine's toolchain, which cross-compiles for `arch`
        // (`GOARCH`; cgo is off, so no C toolchain for `arch` is needed).
        let pins = lock
            .build_packages
            .get(Arch::host().debian())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let debs = pins
            .iter()
            .map(|d| Ok((format!("{} {}", d.name, d.version), store.open(d)?)))
            .collect::<Result<Vec<_>, BuildError>>()?;
        let mut root = crate::go::BuildRoot::unpack(
            cache.scratch_dir("go-build")?,
            debs.iter().map(|(l, d)| (l.clone(), d)),
        )?;
        // Go's build cache is kept between builds unless the package (or
        // `--disable-cache`) says to keep none.
        if !info.disable_cache {
            root = root.with_go_cache(store.cache_dir.join("go-build"));
        }
        for (i, g) in info.go.iter().enumerate() {
            let step = progress.step(format!("compile {} (go)", g.path));
            let bin = crate::go::build_binary(pkg.path(), g, arch, &root, &build_yml, i)?;
            contents.go.push(GoBinary {
                path: g.path.clone(),
                digests: digests(&bin),
                info: crate::go::build_info(&bin),
            });
            put_binary(&mut layer, &g.path, bin);
            step.done();
        }
        // The sources and the toolchain the binaries were built from, for
        // the image's record (as the image's own packages are): the
        // packages asked for, and the versioned toolchain (`golang-1.19-go`)
        // that `golang-go` only depends on.
        let named: Vec<String> = lock
            .request
            .build_packages
            .iter()
            .filter_map(|p| p.parse::<Dependency>().ok())
            .map(|d| d.name)
            .collect();
        contents.build_debs = pins.to_vec();
        let toolchain = |n: &str| n.starts_with("golang-1") && n.ends_with("-go");
        for d in pins
            .iter()
            .filter(|d| toolchain(&d.name) || named.contains(&d.name))
        {
            packages.push(format!("{} {} (build)", d.name, d.version));
        }
    }
    for (i, f) in info.files.iter().enumerate() {
        files::add_file(&mut layer, pkg, i, f)?;
        let path = normalize(&f.path).expect("checked when parsed");
        if let Some((e, data)) = layer.get(&path)
            && e.kind == EntryKind::File
        {
            contents.files.push((path, data.to_vec()));
        }
    }
    files::add_accounts(&mut layer, pkg)?;
    for (i, c) in info.concat.iter().enumerate() {
        files::add_concat(&mut layer, pkg, i, c)?;
    }
    let step = progress.step("layer");
    let tar = layer.to_tar()?;
    step.done();
    Ok(Assembled {
        tar,
        packages,
        kernel,
        contents,
    })
}

/// A built binary at `path` (as checked when build.yml was read), mode
/// 0755, root's.
fn put_binary(layer: &mut LayerTree, path: &str, bin: Vec<u8>) {
    let path = normalize(path).expect("checked when parsed");
    let entry = Entry {
        mode: 0o755,
        ..Entry::file(path, bin.len() as u64)
    };
    layer.put(entry, bin);
}
