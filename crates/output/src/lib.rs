//! Output format writers (`tar`, `kernel+initrd`, `iso-bios`, `iso-efi`,
//! raw/qcow2/vhd/vmdk disks, cloud images), all written natively, without
//! helper containers.
//!
//! Filled in by the "root filesystem assembly" and "bootable output formats"
//! issues.
