//! Console messages of the init, stamped with the time since boot.
//!
//! Every line the init prints starts like the kernel's own messages,
//! `[    3.141593] linuxkit: ...`, using `CLOCK_MONOTONIC`, which counts
//! from the same origin as the kernel's printk clock. So the console reads
//! as one timeline, and `linuxkit run` (or a person) can measure each boot
//! stage from the console alone.

use std::fmt;
use std::io::Write;
use std::time::Duration;

/// Seconds since boot (`CLOCK_MONOTONIC`).
pub fn uptime() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// The prefix of every line: `[    3.141593] linuxkit: `.
pub fn stamp(t: Duration) -> String {
    format!("[{:5}.{:06}] linuxkit: ", t.as_secs(), t.subsec_micros())
}

/// Prints one stamped line on the init's stderr (the console).
pub fn line(args: fmt::Arguments<'_>) {
    let msg = format!("{}{}\n", stamp(uptime()), args);
    // One write per line, so lines of concurrent threads do not interleave.
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

/// `info!(...)`: a stamped console line.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}

/// `warn!(...)`: a stamped console line that says something went wrong.
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::line(format_args!("WARNING: {}", format_args!($($t)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_looks_like_printk() {
        assert_eq!(
            stamp(Duration::from_micros(3_141_593)),
            "[    3.141593] linuxkit: "
        );
        assert_eq!(
            stamp(Duration::from_secs(123_456)),
            "[123456.000000] linuxkit: "
        );
    }
}
