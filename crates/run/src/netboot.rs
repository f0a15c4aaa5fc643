//! Network boot (`run qemu --netboot`): the iPXE script of a kernel+initrd
//! build, and the address QEMU's user network gives the guest for it.
//!
//! The script, `NAME.ipxe` beside `NAME-kernel`, `NAME-initrd.img` and
//! `NAME-cmdline`, names the kernel and initrd by URLs relative to its own
//! (iPXE resolves them against the script's URL), so one file works from
//! any server that serves the directory: `linuxkit serve`, or a web server
//! a DHCP server's boot file name points at. It follows the reference's
//! Equinix Metal script (`NAME-equinixmetal.ipxe`, which `push
//! equinixmetal` writes with an absolute `--base-url`): `initrd --name
//! initrd` and `initrd=initrd` on the kernel's command line, which both
//! BIOS and UEFI kernels take; without that script's Equinix-specific
//! `ip=dhcp nomodeset ro serial console=ttyS1,115200`, as the image's own
//! command line says what its machine needs.
//!
//! Under QEMU the guest has no disk and no `-kernel`: the firmware's iPXE
//! (the NIC's option ROM, Debian's `ipxe-qemu`) asks QEMU's user network
//! for an address, gets the script's URL as its boot file (`-netdev
//! user,bootfile=URL`) and fetches the script, kernel and initrd over HTTP.

use std::io::Write;
use std::path::{Path, PathBuf};

use linuxkit_base::Staged;

use crate::error::{Error, IoContext, Result};

/// The host as the guest of QEMU's user network reaches it.
pub const USER_NET_HOST: &str = "10.0.2.2";

/// The iPXE script for the kernel+initrd build `name` (the file name
/// prefix, no directory) with kernel command line `cmdline`.
pub fn ipxe_script(name: &str, cmdline: &str) -> String {
    let cmdline = cmdline.trim();
    let sep = if cmdline.is_empty() { "" } else { " " };
    format!(
        "#!ipxe\n\
         # {name}: the kernel and initrd beside this script, by relative URLs.\n\
         initrd --name initrd {name}-initrd.img\n\
         kernel {name}-kernel initrd=initrd{sep}{cmdline}\n\
         boot\n"
    )
}

/// The script's path for the image prefix `path` (`PATH.ipxe`).
pub fn script_path(path: &str) -> PathBuf {
    PathBuf::from(format!("{path}.ipxe"))
}

/// Writes `PATH.ipxe` for the kernel+initrd build at `path` (which must
/// have `PATH-kernel` and `PATH-initrd.img`; `PATH-cmdline` is optional),
/// replacing it atomically; returns its path.
pub fn write_script(path: &str) -> Result<PathBuf> {
    for f in [format!("{path}-kernel"), format!("{path}-initrd.img")] {
        if !Path::new(&f).is_file() {
            return Err(Error::Usage(format!(
                "--netboot boots a kernel+initrd build: {f} does not exist (build with --format kernel+initrd)"
            )));
        }
    }
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("--netboot: {path} has no file name")))?;
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Usage(format!(
            "--netboot: the image name {name:?} has white space, which an iPXE command line cannot hold"
        )));
    }
    let cmdline = match std::fs::read_to_string(format!("{path}-cmdline")) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context(|| format!("cannot read {path}-cmdline")),
    };
    let dest = script_path(path);
    let mut staged = Staged::create(dest.clone())
        .map_err(|e| Error::Usage(format!("cannot write {}: {e}", dest.display())))?;
    staged
        .file()
        .write_all(ipxe_script(name, &cmdline).as_bytes())
        .context(|| format!("cannot write {}", dest.display()))?;
    staged
        .commit()
        .map_err(|e| Error::Usage(format!("cannot write {}: {e}", dest.display())))
}

/// The script's URL as the guest of QEMU's user network sees a server
/// listening on the host's loopback at `port`.
pub fn guest_url(port: u16, script: &Path) -> String {
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("http://{USER_NET_HOST}:{port}/{}", percent_encode(&name))
}

/// Percent-encodes what is not unreserved in a URL path segment.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_files_relative_to_itself() {
        assert_eq!(
            ipxe_script("linuxkit", "console=tty0 console=ttyS0\n"),
            "#!ipxe\n# linuxkit: the kernel and initrd beside this script, by relative URLs.\ninitrd --name initrd linuxkit-initrd.img\nkernel linuxkit-kernel initrd=initrd console=tty0 console=ttyS0\nboot\n"
        );
        assert!(ipxe_script("a", "").contains("kernel a-kernel initrd=initrd\n"));
    }

    #[test]
    fn script_is_written_beside_a_kernel_initrd_build() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("img").to_string_lossy().into_owned();
        assert!(write_script(&p).is_err());
        std::fs::write(format!("{p}-kernel"), b"k").unwrap();
        std::fs::write(format!("{p}-initrd.img"), b"i").unwrap();
        std::fs::write(format!("{p}-cmdline"), b"console=ttyS0").unwrap();
        let s = write_script(&p).unwrap();
        assert_eq!(s, script_path(&p));
        assert_eq!(
            std::fs::read_to_string(&s).unwrap(),
            ipxe_script("img", "console=ttyS0")
        );
        assert_eq!(guest_url(8080, &s), "http://10.0.2.2:8080/img.ipxe");
        assert_eq!(
            guest_url(1, Path::new("/x/a b.ipxe")),
            "http://10.0.2.2:1/a%20b.ipxe"
        );
    }
}
