//! `runtime.json`: what a bundle needs done outside the container, before
//! `runc create` (mounts, directories, cgroups) and after it (namespaces
//! bound to paths, network interfaces).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use linuxkit_config::Runtime;

use crate::mount::mount_words;
use crate::warn;

/// Reads `DIR/runtime.json`; a bundle without one has nothing to prepare.
pub fn load(bundle: &Path) -> io::Result<Runtime> {
    let path = bundle.join("runtime.json");
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Runtime::default()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// A path of runtime.json: relative ones live in the bundle's `rootfs`.
fn resolve(bundle: &Path, p: &str) -> PathBuf {
    if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        bundle.join("rootfs").join(p)
    }
}

/// Before `runc create`: the mounts in order (creating each destination
/// and any overlay `upperdir`/`workdir`), then `mkdir`, then `cgroups`.
pub fn prepare_filesystem(bundle: &Path, rt: &Runtime) -> io::Result<()> {
    for m in rt.mounts.iter().flatten() {
        let dest = resolve(bundle, &m.destination);
        fs::create_dir_all(&dest)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", dest.display())))?;
        for o in &m.options {
            if let Some(d) = o
                .strip_prefix("upperdir=")
                .or_else(|| o.strip_prefix("workdir="))
            {
                fs::create_dir_all(d)
                    .map_err(|e| io::Error::new(e.kind(), format!("mkdir {d}: {e}")))?;
            }
        }
        mount_words(&m.source, &dest, &m.kind, &m.options)?;
    }
    for d in rt.mkdir.iter().flatten() {
        let d = resolve(bundle, d);
        fs::create_dir_all(&d)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", d.display())))?;
    }
    for c in rt.cgroups.iter().flatten() {
        let d = Path::new("/sys/fs/cgroup").join(c);
        fs::create_dir_all(&d)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", d.display())))?;
    }
    Ok(())
}

/// After `runc create`, with the container's first process `pid`: bind
/// its namespaces to the paths `bindNS` names, so later containers can
/// join them (`net: /run/netns/x`).
pub fn prepare_process(name: &str, rt: &Runtime, pid: i32) -> io::Result<()> {
    for (kind, path) in rt.bind_ns.entries() {
        let Some(path) = path.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let target = Path::new(path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)?;
        }
        if !target.exists() {
            fs::File::create(target)
                .map_err(|e| io::Error::new(e.kind(), format!("create {path}: {e}")))?;
        }
        let src = format!("/proc/{pid}/ns/{kind}");
        crate::mount::mount(&src, target, "", nix::mount::MsFlags::MS_BIND, "")?;
    }
    if rt.interfaces.as_ref().is_some_and(|i| !i.is_empty()) {
        warn!("{name}: runtime.json `interfaces` are not supported by this init yet; skipped");
    }
    Ok(())
}
