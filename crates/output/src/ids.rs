//! Identifiers derived from content.
//!
//! Disk and file system formats carry identifiers that their usual tools
//! draw at random or from the clock: GPT disk and partition GUIDs, VHD
//! unique ids, VMDK content ids, FAT volume serial numbers, MBR disk
//! signatures. Here each is a hash of what the image holds (and of what
//! the identifier is for), so the same input always gives the same bytes,
//! and different images still get different identifiers.

use sha2::{Digest, Sha256};

/// A 16-byte identifier for `purpose`, derived from `seed` (usually a
/// SHA-256 of the content): an RFC 9562 version 8 ("custom") UUID, in the
/// big-endian field order of its text form, so it never collides with a
/// random (version 4) or time-based one.
pub fn uuid(seed: &[u8], purpose: &str) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(b"linuxkit uuid\0")
        .chain_update(purpose.as_bytes())
        .chain_update([0])
        .chain_update(seed)
        .finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x80;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// A 32-bit identifier for `purpose` derived from `seed` (serial numbers,
/// signatures); never zero, which some tools read as "unset".
pub fn id32(seed: &[u8], purpose: &str) -> u32 {
    let u = uuid(seed, purpose);
    u32::from_be_bytes([u[0], u[1], u[2], u[3]]).max(1)
}

/// The canonical text form of a UUID given in field order.
pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuids_are_version_8_and_differ_by_purpose() {
        let a = uuid(b"content", "disk");
        let b = uuid(b"content", "partition 1");
        assert_ne!(a, b);
        assert_eq!(a, uuid(b"content", "disk"));
        assert_eq!(a[6] >> 4, 8);
        assert_eq!(a[8] >> 6, 2);
        assert_eq!(uuid_text(&a).len(), 36);
        assert_ne!(id32(b"x", "y"), 0);
    }
}
