//! The field encodings of ISO 9660: numbers in both byte orders, the two
//! date forms, and the sector every extent counts in.

use crate::bytes::civil;

pub(crate) const SECTOR: usize = 2048;

pub(super) fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

pub(super) fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

pub(super) fn sectors(bytes: u64) -> u32 {
    bytes.div_ceil(SECTOR as u64) as u32
}

/// The 7-byte date of directory records and `TF` (years 1900–2155).
pub(super) fn date7(t: u64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(t.min(5_869_583_999)); // 2155-12-31 23:59:59
    [
        (y - 1900) as u8,
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
        0,
    ]
}

/// The 17-byte date of volume descriptors.
pub(super) fn date17(t: u64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(t.min(253_402_300_799)); // 9999-12-31
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date7(0), [70, 1, 1, 0, 0, 0, 0]);
        // 2017-04-18 16:30:00
        assert_eq!(date7(1_492_533_000), [117, 4, 18, 16, 30, 0, 0]);
        assert_eq!(&date17(1_600_000_000)[..16], b"2020091312264000");
        assert_eq!(date7(u64::MAX)[0], 255);
    }
}
