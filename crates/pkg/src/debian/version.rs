//! Debian version numbers and their ordering, exactly as dpkg compares them.
//!
//! A version is `[epoch:]upstream[-revision]`. Comparison is by epoch
//! (a number), then upstream, then revision, the latter two with dpkg's
//! `verrevcmp`: the strings are split into alternating non-digit and digit
//! runs; digit runs compare numerically (so `1.09 == 1.9`), non-digit runs
//! compare character by character where
//!
//! * `~` sorts before *everything*, even the end of the string — that is
//!   why `1.0~rc1 << 1.0`, the idiom for pre-releases;
//! * letters sort before non-letters (`a << +`), and
//! * the end of a run sorts before any other character except `~`.
//!
//! Getting this wrong silently picks the wrong package, so the integration
//! tests check it against dpkg's own test table.
//!
//! Because `1.09` and `1.9` are equal versions with different spellings,
//! [`Version`] implements [`Eq`] by the ordering but does not implement
//! `Hash`; [`Display`](std::fmt::Display) prints the parsed parts back.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::error::{DebianError, parse_err};

/// A parsed Debian version.
#[derive(Debug, Clone)]
pub struct Version {
    /// The epoch; `0` when absent.
    pub epoch: u32,
    /// The upstream part; never empty.
    pub upstream: String,
    /// The Debian revision; empty when absent.
    pub revision: String,
}

impl Version {
    /// Parses a version the way dpkg's `parseversion` does: surrounding
    /// whitespace is ignored; the epoch, if any, is the number before the
    /// first `:`; the revision is whatever follows the last `-`.
    ///
    /// Rejected, as dpkg rejects them: empty versions, embedded whitespace,
    /// non-numeric or overflowing epochs, an empty upstream part. Characters
    /// outside the policy's set are accepted (dpkg only warns about them).
    pub fn parse(s: &str) -> Result<Self, DebianError> {
        let err = |m: &str| parse_err(format!("version {s:?}"), m);
        let t = s.trim();
        if t.is_empty() {
            return Err(err("empty version"));
        }
        if t.contains(char::is_whitespace) {
            return Err(err("embedded whitespace"));
        }
        let (epoch, rest) = match t.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch is not a number"));
                }
                let epoch = e.parse().map_err(|_| err("epoch is too large"))?;
                (epoch, rest)
            }
            None => (0, t),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("empty upstream version"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// Whether `self RELATION other` holds, e.g. `v.satisfies(Ge, &min)`.
    pub fn satisfies(&self, relation: Relation, other: &Version) -> bool {
        relation.holds(self.cmp(other))
    }
}

impl FromStr for Version {
    type Err = DebianError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// Compares two version strings (both must parse).
pub fn compare(a: &str, b: &str) -> Result<Ordering, DebianError> {
    Ok(Version::parse(a)?.cmp(&Version::parse(b)?))
}

/// The weight of one character in a non-digit run (dpkg's `order()`).
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`, for an upstream version or a revision.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then the longer run wins, else the
        // first differing digit.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// A version relation as written in `Depends` (`<<`, `<=`, `=`, `>=`, `>>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `<<`: strictly earlier.
    Lt,
    /// `<=`: earlier or equal.
    Le,
    /// `=`: exactly equal.
    Eq,
    /// `>=`: later or equal.
    Ge,
    /// `>>`: strictly later.
    Gt,
}

impl Relation {
    /// Parses a relation operator. The obsolete `<` and `>` mean `<=` and
    /// `>=`, as in dpkg (not strict, a historical trap).
    pub fn parse(s: &str) -> Option<Relation> {
        Some(match s {
            "<<" | "lt" => Relation::Lt,
            "<=" | "<" | "le" => Relation::Le,
            "=" | "eq" => Relation::Eq,
            ">=" | ">" | "ge" => Relation::Ge,
            ">>" | "gt" => Relation::Gt,
            _ => return None,
        })
    }

    /// Whether a comparison result `candidate.cmp(&bound)` satisfies the relation.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Relation::Lt => ord == Ordering::Less,
            Relation::Le => ord != Ordering::Greater,
            Relation::Eq => ord == Ordering::Equal,
            Relation::Ge => ord != Ordering::Less,
            Relation::Gt => ord == Ordering::Greater,
        }
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Lt => "<<",
            Relation::Le => "<=",
            Relation::Eq => "=",
            Relation::Ge => ">=",
            Relation::Gt => ">>",
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
