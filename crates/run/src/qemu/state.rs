//! The VM's state directory (`PATH-state`, or `--state`): the files QEMU
//! and we keep there, and what must stay the same from one run of the VM
//! to the next (its MAC address); its UUID is new at every run.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// QEMU's process id (`-pidfile`), which tells whether the VM still runs.
pub const PID_FILE: &str = "qemu.pid";
/// The VM's MAC address, made on first run and reused, so the guest keeps
/// its network identity from one run to the next.
pub const MAC_FILE: &str = "mac-addr";
/// The metadata CD made from `--data` (the guest reads it as `config`).
pub const DATA_ISO: &str = "data.iso";
/// QEMU's QMP socket (power button, stop, how the VM ended).
pub const QMP_SOCKET: &str = "qmp.sock";
/// A detached VM's console output.
pub const CONSOLE_LOG: &str = "console.log";
/// UEFI variables, copied from the firmware's template on first use.
pub const EFI_VARS: &str = "efivars.fd";

/// The state directory for `path`: `state` if given, else `PATH-state`
/// (`NAME-state` for an existing `NAME.iso`), as the reference.
pub fn state_dir_for(path: &str, state: Option<&Path>) -> PathBuf {
    if let Some(s) = state {
        return s.to_path_buf();
    }
    let prefix = match path.strip_suffix(".iso") {
        Some(p) if Path::new(path).is_file() => p,
        _ => path,
    };
    PathBuf::from(format!("{prefix}-state"))
}

/// 16 random bytes from the kernel.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context(|| "cannot read /dev/urandom".into())?;
    Ok(b)
}

/// A random (version 4) UUID.
pub(super) fn random_uuid() -> Result<String> {
    let mut b: [u8; 16] = random_bytes()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    ))
}

fn format_mac(b: [u8; 6]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The VM's MAC address, from `STATE/mac-addr`, made (random, unicast,
/// locally administered) and kept there the first time.
pub(super) fn state_mac(state_dir: &Path) -> Result<String> {
    let f = state_dir.join(MAC_FILE);
    match std::fs::read_to_string(&f) {
        Ok(s) => {
            let s = s.trim();
            if valid_mac(s) {
                return Ok(s.to_ascii_lowercase());
            }
            Err(Error::Usage(format!(
                "{}: {s:?} is not a MAC address",
                f.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b: [u8; 6] = random_bytes()?;
            b[0] = (b[0] & !0x01) | 0x02;
            let mac = format_mac(b);
            std::fs::write(&f, &mac).context(|| format!("cannot write {}", f.display()))?;
            Ok(mac)
        }
        Err(e) => Err(e).context(|| format!("cannot read {}", f.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_kept_and_uuids_are_v4() {
        let d = tempfile::tempdir().unwrap();
        let a = state_mac(d.path()).unwrap();
        assert!(valid_mac(&a));
        let first = u8::from_str_radix(&a[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "unicast, locally administered");
        assert_eq!(state_mac(d.path()).unwrap(), a);
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
