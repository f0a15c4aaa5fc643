//! The wall clock: set from the RTC at boot (the reference's `rc.init`
//! runs `hwclock --hctosys --utc`), and written as RFC 3339 for the log.
//!
//! The date arithmetic is `linuxkit_base::calendar`'s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linuxkit_base::calendar::{civil_from_days, days_from_civil};

/// Go's `time.RFC3339Nano` of a UTC time: fractional zeros trimmed.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// `struct rtc_time` (include/uapi/linux/rtc.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RtcTime {
    /// Seconds, 0-59.
    pub tm_sec: libc::c_int,
    /// Minutes, 0-59.
    pub tm_min: libc::c_int,
    /// Hours, 0-23.
    pub tm_hour: libc::c_int,
    /// Day of the month, 1-31.
    pub tm_mday: libc::c_int,
    /// Month, 0-11.
    pub tm_mon: libc::c_int,
    /// Years since 1900.
    pub tm_year: libc::c_int,
    /// Unused here.
    pub tm_wday: libc::c_int,
    /// Unused here.
    pub tm_yday: libc::c_int,
    /// Unused here.
    pub tm_isdst: libc::c_int,
}

nix::ioctl_read!(
    /// `RTC_RD_TIME`: the RTC's time.
    rtc_rd_time,
    b'p',
    0x09,
    RtcTime
);

/// Seconds since the epoch of an RTC reading taken as UTC.
pub fn rtc_epoch(t: &RtcTime) -> i64 {
    let days = days_from_civil(
        i64::from(t.tm_year) + 1900,
        (t.tm_mon + 1) as u32,
        t.tm_mday as u32,
    );
    days * 86400 + i64::from(t.tm_hour) * 3600 + i64::from(t.tm_min) * 60 + i64::from(t.tm_sec)
}

/// `hwclock --hctosys --utc`: the system clock set from `/dev/rtc0`, whose
/// time is UTC (as the reference assumes, and QEMU and clouds provide).
/// Returns the time set.
pub fn set_from_rtc() -> std::io::Result<SystemTime> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open("/dev/rtc0")?;
    let mut t = RtcTime::default();
    // SAFETY: RTC_RD_TIME writes one `struct rtc_time`, which `t` is
    // (repr(C), nine ints), into memory we own for the call.
    unsafe { rtc_rd_time(f.as_raw_fd(), &mut t) }?;
    let secs = rtc_epoch(&t);
    if secs < 0 {
        return Err(std::io::Error::other(format!(
            "the RTC reads {t:?}, before 1970"
        )));
    }
    nix::time::clock_settime(
        nix::time::ClockId::CLOCK_REALTIME,
        nix::sys::time::TimeSpec::new(secs, 0),
    )?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_go_rfc3339_nano() {
        let t = UNIX_EPOCH + Duration::new(1_765_153_623, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2025-12-08T00:27:03.12Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rtc_readings_are_utc_seconds() {
        let t = RtcTime {
            tm_sec: 3,
            tm_min: 27,
            tm_hour: 0,
            tm_mday: 8,
            tm_mon: 11,
            tm_year: 125,
            ..RtcTime::default()
        };
        assert_eq!(rtc_epoch(&t), 1_765_153_623);
    }
}
