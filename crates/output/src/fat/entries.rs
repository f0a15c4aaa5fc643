//! FAT directory entries: the names a FAT volume accepts, 8.3 short
//! names (a `BASIS~N` made unique within the directory when a name is not
//! already one), long-name (VFAT) entries, and the 32-byte entry with its
//! date and time.

use std::io;

pub(super) const ATTR_DIR: u8 = 0x10;
pub(super) const ATTR_ARCHIVE: u8 = 0x20;
pub(super) const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0f;

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A name's long-name validity (Windows' rules).
pub(super) fn check_name(name: &str) -> io::Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.ends_with('.')
        || name.ends_with(' ')
        || name.encode_utf16().count() > 255
        || name
            .chars()
            .any(|c| c < ' ' || "\"*/:<>?\\|\u{7f}".contains(c));
    if bad {
        return Err(invalid(format!("{name:?} is not a valid FAT file name")));
    }
    Ok(())
}

/// Characters allowed in short names besides letters and digits.
const SHORT_EXTRA: &[u8] = b"!#$%&'()-@^_`{}~";

/// The name as a short name when it is exactly one (upper case 8.3).
fn exact_short(name: &str) -> Option<[u8; 11]> {
    let ok = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_EXTRA.contains(&c))
    };
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !ok(base) || !ok(ext) {
        return None;
    }
    let mut s = [b' '; 11];
    s[..base.len()].copy_from_slice(base.as_bytes());
    s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(s)
}

/// Short names for a directory's names (in order), unique within it, and
/// whether each needs long-name entries.
pub(super) fn short_names(names: &[&String]) -> Vec<([u8; 11], bool)> {
    let exact: Vec<Option<[u8; 11]>> = names.iter().map(|n| exact_short(n)).collect();
    let mut taken: std::collections::HashSet<[u8; 11]> = exact.iter().flatten().copied().collect();
    let clean = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii_uppercase()
                    || u.is_ascii_digit()
                    || (u.is_ascii() && SHORT_EXTRA.contains(&(u as u8)))
                {
                    u as u8
                } else {
                    b'_'
                }
            })
            .collect()
    };
    names
        .iter()
        .zip(exact)
        .map(|(name, exact)| {
            if let Some(s) = exact {
                return (s, false);
            }
            let trimmed = name.trim_start_matches('.');
            let (base, ext) = match trimmed.rfind('.') {
                Some(i) if i > 0 => (&trimmed[..i], &trimmed[i + 1..]),
                _ => (trimmed, ""),
            };
            let mut base = clean(base);
            if base.is_empty() {
                base.push(b'_');
            }
            let ext = clean(ext);
            let mut s = [b' '; 11];
            let e = &ext[..ext.len().min(3)];
            s[8..8 + e.len()].copy_from_slice(e);
            for n in 1u32.. {
                let tail = format!("~{n}");
                let keep = base.len().min(8 - tail.len());
                s[..8].fill(b' ');
                s[..keep].copy_from_slice(&base[..keep]);
                s[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
                if taken.insert(s) {
                    break;
                }
            }
            (s, true)
        })
        .collect()
}

/// The long-name checksum of a short name.
fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &c| (sum >> 1 | (sum & 1) << 7).wrapping_add(c))
}

/// FAT date and time of a Unix time (UTC), clamped to 1980–2107.
fn fat_datetime(t: u64) -> (u16, u16) {
    let (y, m, d, h, mi, s) = crate::bytes::civil(t.clamp(315_532_800, 4_354_819_198));
    let date = ((y - 1980) as u16) << 9 | (m as u16) << 5 | d as u16;
    let time = (h as u16) << 11 | (mi as u16) << 5 | (s / 2) as u16;
    (date, time)
}

pub(super) fn short_entry(
    name: &[u8; 11],
    attr: u8,
    cluster: u64,
    size: u64,
    mtime: u64,
) -> [u8; 32] {
    let (date, time) = fat_datetime(mtime);
    let mut e = [0u8; 32];
    e[0..11].copy_from_slice(name);
    e[11] = attr;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&(size as u32).to_le_bytes());
    e
}

/// The long-name entries for `name`, in on-disk order (last part first).
pub(super) fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    let sum = lfn_checksum(short);
    (0..n)
        .rev()
        .map(|i| {
            let mut e = [0u8; 32];
            e[0] = (i + 1) as u8 | if i + 1 == n { 0x40 } else { 0 };
            e[11] = ATTR_LFN;
            e[13] = sum;
            let slots = (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2));
            for (k, at) in slots.enumerate() {
                let j = i * 13 + k;
                let u = match j.cmp(&units.len()) {
                    std::cmp::Ordering::Less => units[j],
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 0xffff,
                };
                e[at..at + 2].copy_from_slice(&u.to_le_bytes());
            }
            e
        })
        .collect()
}
