//! The guest's architecture, read from the image when `--arch` is not
//! given, so that an arm64 image runs under `qemu-system-aarch64` on an
//! amd64 host without being told.
//!
//! Every bootable image LinuxKit writes holds a PE/COFF executable whose
//! machine field names the architecture: the kernel itself (x86's bzImage
//! and arm64's `Image` carry an EFI stub, an arm64 EFI zboot image is one)
//! and, on the UEFI formats, systemd-boot as `EFI/BOOT/BOOT*.EFI`. So the
//! kernel file's header is read, and a disk or ISO is scanned for the
//! first PE header at a sector boundary: FAT, ISO 9660 and qcow2 keep file
//! data sector-aligned (a qcow2 cluster is stored whole, so offsets within
//! it keep their alignment). Kernels without a PE header are recognised by
//! their own magic (arm64 `Image`'s `ARMd`, x86's `HdrS`). Nothing found
//! (a BIOS disk has isolinux, not a PE; a compressed disk container hides
//! it) leaves the host's architecture, as before.

use std::io::{BufReader, Read};
use std::path::Path;

use linuxkit_base::Arch;

/// How far into a disk or ISO the scan looks: the ESP starts at 1 MiB of
/// a GPT disk and the loader is its first file; an ISO's El Torito image
/// follows its directory records.
const SCAN_LIMIT: u64 = 64 << 20;
const SECTOR: usize = 512;

/// The architecture of a PE/COFF image starting at `b[0]`.
fn pe_machine(b: &[u8]) -> Option<Arch> {
    if b.len() < 0x40 || &b[..2] != b"MZ" {
        return None;
    }
    let at = u32::from_le_bytes(b[0x3c..0x40].try_into().ok()?) as usize;
    let pe = b.get(at..at + 6)?;
    if &pe[..4] != b"PE\0\0" {
        return None;
    }
    match u16::from_le_bytes([pe[4], pe[5]]) {
        0x8664 => Some(Arch::Amd64),
        0xaa64 => Some(Arch::Arm64),
        0x5064 => Some(Arch::Riscv64),
        _ => None,
    }
}

/// The architecture of a kernel image's first bytes.
pub(super) fn kernel_arch(head: &[u8]) -> Option<Arch> {
    if let Some(a) = pe_machine(head) {
        return Some(a);
    }
    if head.len() >= 0x3c && &head[0x38..0x3c] == b"ARMd" {
        return Some(Arch::Arm64);
    }
    if head.len() >= 0x206 && &head[0x202..0x206] == b"HdrS" {
        return Some(Arch::Amd64);
    }
    None
}

/// The architecture of the kernel file at `path` (`None`: unreadable or
/// not recognised).
pub(super) fn kernel_file_arch(path: &Path) -> Option<Arch> {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    kernel_arch(&head)
}

/// The architecture of the first PE image at a sector boundary in the
/// first [`SCAN_LIMIT`] bytes of the disk or ISO at `path`.
pub(super) fn disk_arch(path: &Path) -> Option<Arch> {
    let f = std::fs::File::open(path).ok()?;
    let mut r = BufReader::with_capacity(1 << 20, f.take(SCAN_LIMIT));
    // A sector and the next: the PE header is found through the MZ
    // header's offset, usually within the first 512 bytes.
    let mut window = vec![0u8; 2 * SECTOR];
    let mut filled = 0;
    loop {
        while filled < window.len() {
            match r.read(&mut window[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(_) => return None,
            }
        }
        if filled < SECTOR {
            return None;
        }
        if let Some(a) = pe_machine(&window[..filled]) {
            return Some(a);
        }
        window.copy_within(SECTOR..filled, 0);
        filled -= SECTOR;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        b
    }

    #[test]
    fn kernels_by_their_headers() {
        assert_eq!(kernel_arch(&pe(0xaa64)), Some(Arch::Arm64));
        assert_eq!(kernel_arch(&pe(0x8664)), Some(Arch::Amd64));
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(b"ARMd");
        assert_eq!(kernel_arch(&image), Some(Arch::Arm64));
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(kernel_arch(&bz), Some(Arch::Amd64));
        assert_eq!(kernel_arch(b"\x1f\x8b\x08\0"), None);
    }

    #[test]
    fn disks_by_their_first_pe_image() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("disk.img");
        let mut disk = vec![0u8; 3 << 20];
        let at = (1 << 20) + 7 * SECTOR;
        disk[at..at + 1024].copy_from_slice(&pe(0xaa64));
        std::fs::write(&p, &disk).unwrap();
        assert_eq!(disk_arch(&p), Some(Arch::Arm64));
        std::fs::write(&p, vec![0u8; 4 << 20]).unwrap();
        assert_eq!(disk_arch(&p), None);
    }
}
