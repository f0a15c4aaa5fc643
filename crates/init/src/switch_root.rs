//! `/init`: move the initramfs into a tmpfs and make that the root.
//!
//! The kernel unpacks the initrd into `rootfs`, a filesystem that can never
//! be unmounted, so `pivot_root(2)` — which runc uses to enter every
//! container — fails on it. The cure (the reference's too) is to copy the
//! tree into a fresh tmpfs, deleting each file once copied so memory use
//! stays flat, then `mount --move` the tmpfs onto `/` and `chroot` into it.
//!
//! Unlike the reference, hard links stay hard links (a file stored once in
//! the initrd stays stored once in memory), and device nodes, FIFOs and
//! symlinks are recreated as such.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};

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

/// Copies the tree at `from` into `to` (on another filesystem), deleting
/// what was copied. Mount points under `from` (another device) and `to`
/// itself are left alone.
pub fn move_tree(from: &Path, to: &Path) -> io::Result<()> {
    let dev = fs::symlink_metadata(from)?.dev();
    let mut links = HashMap::new();
    copy_dir(from, to, dev, to, &mut links)
}

fn copy_dir(
    from: &Path,
    to: &Path,
    dev: u64,
    skip: &Path,
    links: &mut HashMap<u64, PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        if src == skip {
            continue;
        }
        let m = fs::symlink_metadata(&src)?;
        if m.dev() != dev {
            continue; // another filesystem mounted here
        }
        let dst = to.join(e.file_name());
        let ft = m.file_type();
        if ft.is_dir() {
            match fs::create_dir(&dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(ctx(e, "mkdir", &dst)),
            }
            copy_dir(&src, &dst, dev, skip, links)?;
            set_attrs(&dst, &m)?;
            let _ = fs::remove_dir(&src);
            continue;
        }
        // Look the inode up whatever its link count: deleting the first
        // name already lowered it. (No file is created on the source while
        // moving, so inode numbers are not reused.)
        if !ft.is_symlink() {
            if let Some(first) = links.get(&m.ino()) {
                fs::hard_link(first, &dst).map_err(|e| ctx(e, "link", &dst))?;
                let _ = fs::remove_file(&src);
                continue;
            }
            if m.nlink() > 1 {
                links.insert(m.ino(), dst.clone());
            }
        }
        if ft.is_symlink() {
            let target = fs::read_link(&src)?;
            std::os::unix::fs::symlink(&target, &dst).map_err(|e| ctx(e, "symlink", &dst))?;
        } else if ft.is_file() {
            let mut r = fs::File::open(&src)?;
            let mut w = fs::File::create(&dst).map_err(|e| ctx(e, "create", &dst))?;
            io::copy(&mut r, &mut w).map_err(|e| ctx(e, "copy", &dst))?;
        } else {
            // Device nodes, FIFOs, sockets: recreate the node.
            let kind = SFlag::from_bits_truncate(m.mode() & libc::S_IFMT);
            nix::sys::stat::mknod(
                &dst,
                kind,
                Mode::from_bits_truncate(m.mode() & 0o7777),
                m.rdev(),
            )
            .map_err(|e| ctx(e.into(), "mknod", &dst))?;
        }
        set_attrs(&dst, &m)?;
        let _ = fs::remove_file(&src);
    }
    Ok(())
}

/// Owner, mode and times of `m` on `path` (not following symlinks).
fn set_attrs(path: &Path, m: &fs::Metadata) -> io::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    use nix::unistd::{Gid, Uid};
    let is_link = m.file_type().is_symlink();
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(m.uid())),
        Some(Gid::from_raw(m.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ctx(e.into(), "chown", path))?;
    if !is_link {
        // chown clears set-uid bits, so the mode comes after it.
        fs::set_permissions(path, fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    let t = TimeSpec::new(m.mtime(), m.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| ctx(e.into(), "utimensat", path))?;
    Ok(())
}

fn ctx(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// The whole of `/init`: if `/` is the initramfs, move it into a tmpfs on
/// `/mnt` and make that `/`; then exec `/sbin/init` with our arguments.
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
    crate::mount::mount("rootfs", mnt, "tmpfs", MsFlags::empty(), "mode=755")?;
    move_tree(Path::new("/"), mnt)?;
    nix::unistd::chdir(mnt)?;
    crate::mount::mount(".", Path::new("/"), "", MsFlags::MS_MOVE, "")?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_a_tree_keeping_links_modes_and_times() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("etc/sub")).unwrap();
        fs::write(s.join("etc/a"), b"hello").unwrap();
        fs::set_permissions(s.join("etc/a"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::hard_link(s.join("etc/a"), s.join("etc/sub/b")).unwrap();
        std::os::unix::fs::symlink("a", s.join("etc/link")).unwrap();
        let t = nix::sys::time::TimeSpec::new(1_492_533_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &s.join("etc/a"),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        move_tree(s, dst.path()).unwrap();
        let d = dst.path();
        assert_eq!(fs::read(d.join("etc/a")).unwrap(), b"hello");
        let a = fs::metadata(d.join("etc/a")).unwrap();
        assert_eq!(a.mode() & 0o7777, 0o640);
        assert_eq!(a.mtime(), 1_492_533_000);
        assert_eq!(a.nlink(), 2);
        assert_eq!(fs::metadata(d.join("etc/sub/b")).unwrap().ino(), a.ino());
        assert_eq!(fs::read_link(d.join("etc/link")).unwrap(), Path::new("a"));
        // The source is emptied as it goes.
        assert_eq!(fs::read_dir(s).unwrap().count(), 0);
    }
}
