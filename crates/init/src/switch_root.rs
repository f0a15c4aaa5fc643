//! `/init`: make the initramfs a root that `pivot_root(2)` accepts.
//!
//! The kernel unpacks the initrd into `rootfs`, the mount at the top of the
//! mount tree. `pivot_root(2)` — which runc uses to enter every container —
//! refuses a root mount that has no parent, which `rootfs` never has. The
//! reference copies the whole tree into a fresh tmpfs and switches to that:
//! a second pass over every byte of the image (about a second for a 200 MB
//! tree under QEMU TCG) and, for a moment, twice the memory.
//!
//! A bind mount of `/` is a mount of the same files that *does* have a
//! parent: bind `/` onto `/mnt`, `mount --move` it onto `/`, `chroot` into
//! it. Nothing is copied, hard links and device nodes are the kernel's own,
//! and it takes a few system calls whatever the image's size.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::Path;

use nix::mount::MsFlags;

/// `statfs` magic numbers of the filesystems an initramfs lives on.
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Whether `/` is the initramfs (ramfs or tmpfs) rather than a disk.
pub fn root_is_initramfs() -> bool {
    match nix::sys::statfs::statfs("/") {
        Ok(s) => {
            // The field is i64 on glibc and u64 on musl.
            #[allow(clippy::unnecessary_cast)]
            let t = s.filesystem_type().0 as i64;
            t == RAMFS_MAGIC || t == TMPFS_MAGIC
        }
        Err(_) => false,
    }
}

/// The whole of `/init`: if `/` is the initramfs, make a bind mount of it
/// the root; then exec `/sbin/init` with our arguments.
/// Returns only on failure.
pub fn run(args: &[String]) -> io::Error {
    if nix::unistd::getpid().as_raw() == 1
        && root_is_initramfs()
        && let Err(e) = switch()
    {
        return e;
    }
    let prog = CString::new("/sbin/init").unwrap();
    let mut argv = vec![prog.clone()];
    argv.extend(
        args.iter()
            .skip(1)
            .filter_map(|a| CString::new(a.as_bytes()).ok()),
    );
    match nix::unistd::execv(&prog, &argv) {
        Err(e) => io::Error::new(io::Error::from(e).kind(), format!("exec /sbin/init: {e}")),
        Ok(never) => match never {},
    }
}

fn switch() -> io::Result<()> {
    let mnt = Path::new("/mnt");
    match fs::create_dir(mnt) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ctx(e, "mkdir", mnt)),
    }
    crate::mount::mount("/", mnt, "", MsFlags::MS_BIND, "")?;
    nix::unistd::chdir(mnt)?;
    crate::mount::mount(".", Path::new("/"), "", MsFlags::MS_MOVE, "")?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")?;
    Ok(())
}

fn ctx(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}
