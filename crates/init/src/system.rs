//! Bringing the machine up: the filesystems, devices, limits, host name,
//! loopback and banner that every LinuxKit system has before its
//! containers run (the reference's `rc.init`, steps 1–10), the clock set
//! from the RTC among them ([`crate::clock`]).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use nix::mount::MsFlags;

use crate::cmdline::Cmdline;
use crate::mount::{mount, mount_words};
use crate::{info, warn};

/// `nodev,nosuid,noexec`: the flags of every writable tmpfs.
fn locked() -> MsFlags {
    MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC
}

fn mkdir(path: &str, mode: u32) {
    let p = Path::new(path);
    if fs::create_dir_all(p).is_ok() {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode));
    }
}

/// Mounts `/proc` unless it is (PID 1 mounts it first of all, to read the
/// kernel command line).
pub fn mount_proc() -> io::Result<()> {
    if Path::new("/proc/self").exists() {
        return Ok(());
    }
    let _ = fs::create_dir("/proc");
    mount("proc", Path::new("/proc"), "proc", locked(), "")
}

/// The mount table of a LinuxKit system: `/proc`, a read-only `/`, the
/// writable tmpfs trio, `/dev` and friends, `/sys` and friends, cgroup v2
/// (or v1 with `linuxkit.unified_cgroup_hierarchy=0`), and `/` rshared.
pub fn mount_filesystems(cmdline_text: Option<&str>) -> io::Result<()> {
    // Mount points first: `/` becomes read-only below.
    for d in ["/proc", "/sys", "/dev", "/run", "/tmp", "/var", "/mnt"] {
        let _ = fs::create_dir(d);
    }
    mount_proc()?;
    let cmdline = match cmdline_text {
        Some(t) => Cmdline::parse(t),
        None => Cmdline::read(),
    };
    mount(
        "",
        Path::new("/"),
        "",
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        "",
    )?;
    mount(
        "tmpfs",
        Path::new("/run"),
        "tmpfs",
        locked(),
        "size=10%,mode=755",
    )?;
    mount(
        "tmpfs",
        Path::new("/tmp"),
        "tmpfs",
        locked(),
        "size=10%,mode=1777",
    )?;
    mount(
        "tmpfs",
        Path::new("/var"),
        "tmpfs",
        locked(),
        "size=50%,mode=755",
    )?;
    for d in [
        "cache", "empty", "lib", "local", "lock", "log", "opt", "spool", "tmp",
    ] {
        mkdir(
            &format!("/var/{d}"),
            if d == "tmp" { 0o1777 } else { 0o755 },
        );
    }
    let _ = symlink("/run", "/var/run");

    if !crate::mount::is_mountpoint(Path::new("/dev")) {
        mount(
            "dev",
            Path::new("/dev"),
            "devtmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            "mode=0755",
        )?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = symlink(target, format!("/dev/{name}"));
    }
    for d in ["/dev/mqueue", "/dev/shm", "/dev/pts"] {
        mkdir(d, 0o755);
    }
    best_effort("mqueue", "/dev/mqueue", "mqueue", locked(), "");
    mount("shm", Path::new("/dev/shm"), "tmpfs", locked(), "mode=1777")?;
    mount(
        "devpts",
        Path::new("/dev/pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        "gid=5,mode=0620,ptmxmode=0666",
    )?;

    mount("sysfs", Path::new("/sys"), "sysfs", locked(), "")?;
    for (fstype, target) in [
        ("securityfs", "/sys/kernel/security"),
        ("debugfs", "/sys/kernel/debug"),
        ("configfs", "/sys/kernel/config"),
        ("fusectl", "/sys/fs/fuse/connections"),
        ("pstore", "/sys/fs/pstore"),
        ("bpf", "/sys/fs/bpf"),
        ("efivarfs", "/sys/firmware/efi/efivars"),
    ] {
        if Path::new(target).is_dir() {
            best_effort(fstype, target, fstype, locked(), "");
        }
    }
    best_effort(
        "binfmt_misc",
        "/proc/sys/fs/binfmt_misc",
        "binfmt_misc",
        locked(),
        "",
    );

    if cmdline.value("linuxkit.unified_cgroup_hierarchy") == Some("0") {
        cgroup_v1()?;
    } else {
        mount(
            "cgroup2",
            Path::new("/sys/fs/cgroup"),
            "cgroup2",
            locked(),
            "nsdelegate",
        )
        .or_else(|_| {
            mount(
                "cgroup2",
                Path::new("/sys/fs/cgroup"),
                "cgroup2",
                locked(),
                "",
            )
        })?;
    }
    mount_words("", Path::new("/"), "", &["rshared"])?;
    Ok(())
}

fn best_effort(source: &str, target: &str, fstype: &str, flags: MsFlags, data: &str) {
    let _ = mount(source, Path::new(target), fstype, flags, data);
}

/// cgroup v1: a tmpfs with one hierarchy per controller, plus
/// `name=systemd`, as the reference does when asked.
fn cgroup_v1() -> io::Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    mount("cgroup_root", root, "tmpfs", locked(), "mode=755")?;
    let text = fs::read_to_string("/proc/cgroups").unwrap_or_default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 4 && f[3] == "1" {
            let dir = root.join(f[0]);
            let _ = fs::create_dir(&dir);
            best_effort(
                f[0],
                dir.to_str().unwrap_or_default(),
                "cgroup",
                locked(),
                f[0],
            );
        }
    }
    let dir = root.join("systemd");
    let _ = fs::create_dir(&dir);
    best_effort(
        "cgroup",
        "/sys/fs/cgroup/systemd",
        "cgroup",
        locked(),
        "none,name=systemd",
    );
    Ok(())
}

/// File-descriptor and process limits inherited by everything: the
/// reference's values.
pub fn set_limits() {
    use nix::sys::resource::{Resource, setrlimit};
    let _ = setrlimit(Resource::RLIMIT_NOFILE, 1_048_576, 1_048_576);
    let _ = setrlimit(
        Resource::RLIMIT_NPROC,
        libc::RLIM_INFINITY,
        libc::RLIM_INFINITY,
    );
}

/// Brings an interface up (`ip link set NAME up`) with the classic ioctls.
pub fn link_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed `ifreq` whose name is
    // NUL-terminated (it is shorter than IFNAMSIZ, checked below).
    unsafe {
        if name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name too long",
            ));
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in name.bytes().enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let e = io::Error::last_os_error();
        libc::close(fd);
        if r == 0 { Ok(()) } else { Err(e) }
    }
}

/// The host name: `/etc/hostname`, else `linuxkit-` and eth0's MAC
/// address without colons (as the reference names machines).
pub fn hostname_for(etc_hostname: Option<&str>, eth0_mac: Option<&str>) -> String {
    if let Some(h) = etc_hostname.map(str::trim).filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    match eth0_mac.map(str::trim).filter(|m| !m.is_empty()) {
        Some(mac) => format!("linuxkit-{}", mac.replace(':', "")),
        None => "linuxkit".to_string(),
    }
}

/// Sets the host name (see [`hostname_for`]).
pub fn set_hostname() -> String {
    let h = hostname_for(
        fs::read_to_string("/etc/hostname").ok().as_deref(),
        fs::read_to_string("/sys/class/net/eth0/address")
            .ok()
            .as_deref(),
    );
    if let Err(e) = nix::unistd::sethostname(&h) {
        warn!("sethostname {h}: {e}");
    }
    h
}

/// If `/etc/resolv.conf` is a symlink (to `/run/resolvconf/resolv.conf`
/// in LinuxKit images), create its target, empty, so DHCP clients and
/// containers binding it find a file.
pub fn resolv_conf_target() {
    if let Ok(t) = fs::read_link("/etc/resolv.conf") {
        let t = Path::new("/etc").join(t);
        if let Some(dir) = t.parent() {
            let _ = fs::create_dir_all(dir);
        }
        if !t.exists() {
            let _ = fs::File::create(&t);
        }
    }
}

/// The banner written to each console.
pub const BANNER: &str = "\n\
Welcome to LinuxKit\n\
\n\
    an immutable system built from containers, booted by linuxkit-rs\n\n";

/// Writes the banner to every `console=` device (`/dev/console` without).
pub fn banner(cmdline: &Cmdline) {
    for dev in cmdline.consoles() {
        if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&dev) {
            let _ = f.write_all(BANNER.as_bytes());
        }
    }
}

/// Everything before the containers, in the reference's order. Failures of
/// optional steps are reported and skipped; a failure to mount the basic
/// filesystems is returned.
pub fn bring_up(cmdline: &Cmdline) -> io::Result<()> {
    mount_filesystems(None)?;
    info!("filesystems mounted");
    if Path::new("/sbin/modprobe").exists() {
        let _ = fs::write("/proc/sys/kernel/modprobe", "/sbin/modprobe\n");
    }
    if let Some(mut loader) = crate::modules::Loader::for_running_kernel() {
        let loaded = crate::modules::coldplug(&mut loader);
        info!(
            "coldplug: {} modules loaded{}{}",
            loaded.len(),
            if loaded.is_empty() { "" } else { ": " },
            loaded.join(" ")
        );
    }
    match crate::clock::set_from_rtc() {
        Ok(t) => info!("clock set from the RTC: {}", crate::clock::rfc3339_nano(t)),
        Err(e) => warn!("setting the clock from /dev/rtc0: {e}"),
    }
    if let Err(e) = link_up("lo") {
        warn!("bringing up lo: {e}");
    }
    set_limits();
    let h = set_hostname();
    resolv_conf_target();
    banner(cmdline);
    info!("system up, hostname {h}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_rules() {
        assert_eq!(
            hostname_for(Some("web\n"), Some("52:54:00:12:34:56")),
            "web"
        );
        assert_eq!(
            hostname_for(Some("  \n"), Some("52:54:00:12:34:56\n")),
            "linuxkit-525400123456"
        );
        assert_eq!(hostname_for(None, None), "linuxkit");
    }
}
