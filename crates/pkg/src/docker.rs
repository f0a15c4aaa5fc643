//! Dockerfile packages built by a Docker daemon the user named.
//!
//! With `--builders linux/ARCH=CONTEXT` (the reference's flag, which picks
//! the Docker context its BuildKit runs in), `pkg build` of a Dockerfile
//! package for that platform runs `docker --context CONTEXT build` on the
//! package's build context: the package directory at `/` plus each
//! `extra-sources` directory at its destination, sent as a tar on standard
//! input, with the package's `buildArgs`, `network` and `disable-cache`,
//! for `linux/ARCH`. The result is saved with `docker save` (an OCI layout
//! with Docker 25 and later) and imported into the cache. Without
//! `--builders`, Dockerfile packages are built without a daemon
//! ([`crate::dockerfile`]).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use linuxkit_oci::{Cache, ImageRef, Platform};

use linuxkit_base::Arch;
use linuxkit_rootfs::CONFIG_LABEL;

use crate::Package;
use crate::error::BuildError;

/// The build context: the package at `/`, the extra sources at their
/// destinations, as an uncompressed tar.
pub(crate) fn context_tar(pkg: &Package) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for s in pkg.sources() {
        let dst = s.dst.trim_start_matches('/');
        let dst = if dst.is_empty() { "." } else { dst };
        b.append_dir_all(dst, &s.src)?;
    }
    b.into_inner()
}

/// Builds the Dockerfile package `pkg` with the daemon and imports the image
/// into `cache` under the package's tag.
pub fn build(
    pkg: &Package,
    cache: &Cache,
    arch: Arch,
    context: &str,
    args: &[(String, String)],
    dockerfile: &str,
) -> Result<(), BuildError> {
    let info = pkg.build_yml();
    let tag = pkg.full_tag();
    let fail = |message: String| BuildError::Package {
        build_yml: pkg.build_yml_name(),
        message,
    };
    let tar = context_tar(pkg).map_err(|e| fail(format!("cannot pack the build context: {e}")))?;
    let mut cmd = Command::new("docker");
    cmd.args(["--context", context])
        .args(["build", "--platform", arch.oci_platform(), "-t", &tag])
        .args(["-f", dockerfile]);
    if !info.network {
        cmd.args(["--network", "none"]);
    }
    if info.disable_cache {
        cmd.arg("--no-cache");
    }
    for (k, v) in args {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    if let Some(c) = &info.config {
        let json =
            serde_json::to_string(c).map_err(|e| fail(format!("cannot encode `config`: {e}")))?;
        cmd.args(["--label", &format!("{CONFIG_LABEL}={json}")]);
    }
    cmd.arg("-").stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot run docker build: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&tar)
        .map_err(|e| fail(format!("sending the build context to docker: {e}")))?;
    let st = child
        .wait()
        .map_err(|e| fail(format!("waiting for docker build: {e}")))?;
    if !st.success() {
        return Err(fail(format!(
            "`docker build` of {} failed ({st}); see its output above",
            pkg.dir().display()
        )));
    }
    let tmp = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
    let archive = tmp.path().join("image.tar");
    save(context, &tag, &archive).map_err(fail)?;
    let mut f =
        std::fs::File::open(&archive).map_err(|e| fail(format!("{}: {e}", archive.display())))?;
    let names = cache.import(&mut f).map_err(|e| {
        fail(format!(
            "importing `docker save {tag}`: {e} (Docker 25 or later saves an OCI layout)"
        ))
    })?;
    let want = ImageRef::parse(&tag)?;
    if cache.image(&want, &Platform::linux(arch))?.is_none() {
        return Err(fail(format!(
            "`docker save {tag}` gave {}, not {tag} for {}",
            names.join(", "),
            arch.oci_platform()
        )));
    }
    Ok(())
}

fn save(context: &str, tag: &str, out: &Path) -> Result<(), String> {
    let st = Command::new("docker")
        .args(["--context", context, "save", "-o"])
        .arg(out)
        .arg(tag)
        .status()
        .map_err(|e| format!("cannot run docker save: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`docker save {tag}` failed ({st})"))
    }
}
