//! Deterministic test inputs: varied bytes, a small PRNG for generated
//! cases, and the saved inputs of a fuzz target. Seeded, so a failing case
//! is the same on every run and every machine.

use std::path::{Path, PathBuf};

/// `len` deterministic, varied bytes for `seed` (xorshift32): poorly
/// compressible, so a writer's compression or sparse handling cannot hide
/// a wrong offset, and the same on every run.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// A small seeded PRNG (xorshift64) choosing the pieces of generated fuzz
/// cases; never seed it with 0 (it would stay 0).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One of `v`, which must not be empty.
    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

/// Damages a generated archive the way fuzzing inputs are damaged: one
/// time in `one_in` it is cut short at a random byte, one time in `one_in`
/// a random bit is flipped, else it is left whole.
pub fn damage(rng: &mut Rng, out: &mut Vec<u8>, one_in: usize) {
    match rng.below(one_in) {
        0 => {
            let at = rng.below(out.len());
            out.truncate(at);
        }
        1 => {
            let at = rng.below(out.len());
            out[at] ^= 1 << rng.below(8);
        }
        _ => {}
    }
}

/// The regular files directly in `dir`, sorted (a fuzz target's corpus or
/// artifacts folder); none when `dir` does not exist, as before the first
/// fuzz run.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    v.retain(|p| p.is_file());
    v.sort();
    v
}
