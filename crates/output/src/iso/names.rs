//! ISO 9660 names: level 2 identifiers (d-characters, at most 30 for a
//! file's name and extension, 31 for a directory), made unique within a
//! directory, and the standard's order of identifiers.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// A d-character for `c`: upper case letters, digits and `_`.
fn d_char(c: char) -> char {
    match c {
        'A'..='Z' | '0'..='9' | '_' => c,
        'a'..='z' => c.to_ascii_uppercase(),
        _ => '_',
    }
}

/// A name's ISO 9660 base and extension (`None` for directories), before
/// the truncation that makes it unique.
fn iso_parts(name: &str, dir: bool) -> (String, Option<String>) {
    if dir {
        return (name.chars().map(d_char).take(31).collect(), None);
    }
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let ext: String = ext.chars().map(d_char).take(10).collect();
    let base: String = base.chars().map(d_char).take(30 - ext.len()).collect();
    (base, Some(ext))
}

fn iso_ident(base: &str, ext: &Option<String>) -> Vec<u8> {
    match ext {
        Some(e) => format!("{base}.{e};1").into_bytes(),
        None => base.as_bytes().to_vec(),
    }
}

/// ISO 9660 order of file identifiers (9.3): names then extensions, the
/// shorter padded with spaces.
pub(super) fn ident_order(a: &[u8], b: &[u8]) -> Ordering {
    ident_order_units(a, b, b';', b'.', b' ')
}

/// [`ident_order`] over any code units (bytes, or Joliet's UCS-2).
pub(super) fn ident_order_units<T: Copy + Ord>(
    a: &[T],
    b: &[T],
    semi: T,
    dot: T,
    space: T,
) -> Ordering {
    let split = |i: &[T]| -> (Vec<T>, Vec<T>) {
        let i = i.split(|&c| c == semi).next().unwrap_or(i);
        match i.iter().position(|&c| c == dot) {
            Some(p) => (i[..p].to_vec(), i[p + 1..].to_vec()),
            None => (i.to_vec(), Vec::new()),
        }
    };
    let padded = |a: &[T], b: &[T]| -> Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                (
                    a.get(i).copied().unwrap_or(space),
                    b.get(i).copied().unwrap_or(space),
                )
            })
            .map(|(x, y)| x.cmp(&y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let (an, ae) = split(a);
    let (bn, be) = split(b);
    padded(&an, &bn).then_with(|| padded(&ae, &be))
}

/// Unique ISO 9660 identifiers for a directory's children, given as
/// (name, is a directory), in their order.
pub(super) fn unique_idents(children: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut taken: HashSet<Vec<u8>> = HashSet::new();
    let mut counters: HashMap<Vec<u8>, u64> = HashMap::new();
    children
        .iter()
        .map(|&(name, dir)| {
            let (base, ext) = iso_parts(name, dir);
            let mut ident = iso_ident(&base, &ext);
            if taken.contains(&ident) {
                let limit = if dir {
                    31
                } else {
                    30 - ext.as_ref().map_or(0, |e| e.len())
                };
                let n = counters.entry(ident.clone()).or_insert(0);
                loop {
                    *n += 1;
                    let suffix = n.to_string();
                    let keep = base.len().min(limit.saturating_sub(suffix.len()));
                    let candidate = iso_ident(&format!("{}{suffix}", &base[..keep]), &ext);
                    if !taken.contains(&candidate) {
                        ident = candidate;
                        break;
                    }
                }
            }
            taken.insert(ident.clone());
            ident
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_level_2_and_unique() {
        let ids = unique_idents(&[
            ("Hello", false),
            ("hello", false),
            ("HELLO", false),
            ("lib.so.1", false),
            ("a.dir", true),
            ("x".repeat(200).as_str(), false),
            ("x".repeat(201).as_str(), false),
        ]);
        let s: Vec<String> = ids
            .iter()
            .map(|i| String::from_utf8_lossy(i).into())
            .collect();
        assert_eq!(s[0], "HELLO.;1");
        assert_eq!(s[1], "HELLO1.;1");
        assert_eq!(s[2], "HELLO2.;1");
        assert_eq!(s[3], "LIB_SO.1;1");
        assert_eq!(s[4], "A_DIR");
        assert_eq!(s[5], format!("{}.;1", "X".repeat(30)));
        assert_eq!(s[6], format!("{}1.;1", "X".repeat(29)));
    }

    #[test]
    fn identifier_order_pads_with_spaces() {
        assert_eq!(ident_order(b"A.;1", b"A_B.;1"), Ordering::Less);
        assert_eq!(ident_order(b"A.EXT;1", b"A.EXT2;1"), Ordering::Less);
        assert_eq!(ident_order(b"B", b"A.X;1"), Ordering::Greater);
    }
}
