//! UEFI firmware for `--uefi`: the image given or the first installed
//! default, and for a split image (`*CODE*` with a `*VARS*` template) the
//! VM's own copy of the variables in its state directory, so the installed
//! files are never written.

use std::path::{Path, PathBuf};

use linuxkit_base::Arch;

use super::state::EFI_VARS;
use crate::error::{Error, IoContext, Result};

/// UEFI firmware looked for when `--fw` is not given, first found wins.
pub const DEFAULT_FIRMWARE_X86_64: &[&str] = &[
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/qemu/OVMF.fd",
    "/usr/share/ovmf/bios.bin",
];
/// The arm64 counterpart of [`DEFAULT_FIRMWARE_X86_64`]: UEFI firmware
/// looked for when `--fw` is not given, first found wins.
pub const DEFAULT_FIRMWARE_AARCH64: &[&str] = &[
    "/usr/share/AAVMF/AAVMF_CODE.fd",
    "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
];

/// UEFI firmware as QEMU gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// One image with code and variables, mapped read-only (so the
    /// installed file is never written).
    Combined(PathBuf),
    /// A code image (read-only) and this VM's own copy of the variables.
    Split {
        /// The installed code image (`*CODE*`), mapped read-only.
        code: PathBuf,
        /// The VM's variables, copied from the firmware's `*VARS*` template
        /// into the state directory ([`super::EFI_VARS`]), writable.
        vars: PathBuf,
    },
}

/// The UEFI firmware to use: `fw` if given, else the first default that
/// exists. A `*CODE*` image gets the VM's own copy of the matching `*VARS*`
/// template (kept in the state directory, as the variables are the VM's).
pub(super) fn firmware(fw: Option<&Path>, arch: Arch, state_dir: &Path) -> Result<Firmware> {
    let fw = match fw {
        Some(f) => {
            if !f.is_file() {
                return Err(Error::Usage(format!(
                    "the UEFI firmware {} does not exist (install OVMF, or give --fw)",
                    f.display()
                )));
            }
            f.to_path_buf()
        }
        None => {
            let candidates = if arch == Arch::Arm64 {
                DEFAULT_FIRMWARE_AARCH64
            } else {
                DEFAULT_FIRMWARE_X86_64
            };
            candidates
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "no UEFI firmware found (looked for {}): install OVMF, or give --fw",
                        candidates.join(", ")
                    ))
                })?
        }
    };
    let name = fw
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("CODE") {
        return Ok(Firmware::Combined(fw));
    }
    let template = fw.with_file_name(name.replacen("CODE", "VARS", 1));
    let vars = state_dir.join(EFI_VARS);
    if !vars.exists() {
        if !template.is_file() {
            return Err(Error::Usage(format!(
                "the UEFI firmware {} needs its variable store {}, which does not exist",
                fw.display(),
                template.display()
            )));
        }
        std::fs::copy(&template, &vars)
            .context(|| format!("cannot copy {} to {}", template.display(), vars.display()))?;
    }
    Ok(Firmware::Split { code: fw, vars })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_choice() {
        let d = tempfile::tempdir().unwrap();
        let code = d.path().join("OVMF_CODE_4M.fd");
        std::fs::write(&code, b"code").unwrap();
        let state = d.path().join("state");
        std::fs::create_dir(&state).unwrap();
        // The template is missing.
        assert!(firmware(Some(&code), Arch::Amd64, &state).is_err());
        std::fs::write(d.path().join("OVMF_VARS_4M.fd"), b"vars").unwrap();
        let fw = firmware(Some(&code), Arch::Amd64, &state).unwrap();
        assert_eq!(
            fw,
            Firmware::Split {
                code: code.clone(),
                vars: state.join(EFI_VARS)
            }
        );
        assert_eq!(std::fs::read(state.join(EFI_VARS)).unwrap(), b"vars");
        let combined = d.path().join("OVMF.fd");
        std::fs::write(&combined, b"fw").unwrap();
        assert_eq!(
            firmware(Some(&combined), Arch::Amd64, &state).unwrap(),
            Firmware::Combined(combined)
        );
        assert!(firmware(Some(&d.path().join("nope.fd")), Arch::Amd64, &state).is_err());
    }
}
