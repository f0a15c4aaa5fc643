//! Volumes (`/containers/volumes/NAME`): each one's image (or nothing) in
//! `lower/`, made writable by an overlay with a tmpfs upper layer, mounted
//! on `merged/`, which is what containers binding the volume see.

use std::fs;
use std::io;
use std::path::Path;

use nix::mount::MsFlags;

use crate::mount::mount;

/// Where the volumes are.
pub const VOLUMES_DIR: &str = "/containers/volumes";

/// Mounts one volume.
pub fn mount_volume(dir: &Path) -> io::Result<()> {
    let tmp = dir.join("tmp");
    let merged = dir.join("merged");
    fs::create_dir_all(&tmp)?;
    fs::create_dir_all(&merged)?;
    mount("tmpfs", &tmp, "tmpfs", MsFlags::empty(), "")?;
    fs::create_dir_all(tmp.join("upper"))?;
    fs::create_dir_all(tmp.join("work"))?;
    let lower = dir.join("lower");
    fs::create_dir_all(&lower).ok();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        tmp.join("upper").display(),
        tmp.join("work").display()
    );
    mount("overlay", &merged, "overlay", MsFlags::empty(), &data)
}

/// Mounts every volume; failures are reported and skipped.
pub fn mount_all() {
    for v in crate::onboot::bundles(Path::new(VOLUMES_DIR)) {
        match mount_volume(&v) {
            Ok(()) => crate::info!("volume {}: mounted", v.display()),
            Err(e) => crate::warn!("volume {}: {e}", v.display()),
        }
    }
}
