//! The ACPI power button: a thread that reads the kernel's "Power Button"
//! input device and asks PID 1 to power off (`SIGUSR2`, what busybox
//! `poweroff` sends). The reference needs an `acpid` container for this;
//! here `system_powerdown` from the hypervisor, or a cloud's stop button,
//! shuts the machine down cleanly with nothing extra in the image.

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// `EV_KEY` and `KEY_POWER` of `linux/input-event-codes.h`.
const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

/// The event devices whose name says they are a power button.
fn power_buttons() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/class/input") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("event") {
            continue;
        }
        let dev_name = fs::read_to_string(e.path().join("device/name")).unwrap_or_default();
        if dev_name.contains("Power Button") {
            out.push(PathBuf::from("/dev/input").join(&name));
        }
    }
    out.sort();
    out
}

/// Starts one watcher thread per power button (looking again every few
/// seconds until one appears).
pub fn watch() {
    std::thread::spawn(|| {
        let mut devices = power_buttons();
        while devices.is_empty() {
            std::thread::sleep(Duration::from_secs(2));
            devices = power_buttons();
        }
        for d in devices {
            std::thread::spawn(move || watch_device(d));
        }
    });
}

fn watch_device(path: PathBuf) {
    let Ok(mut f) = fs::File::open(&path) else {
        return;
    };
    // struct input_event on 64-bit: timeval (16), type u16, code u16, value i32.
    let mut ev = [0u8; 24];
    while f.read_exact(&mut ev).is_ok() {
        let kind = u16::from_ne_bytes([ev[16], ev[17]]);
        let code = u16::from_ne_bytes([ev[18], ev[19]]);
        let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
        if kind == EV_KEY && code == KEY_POWER && value == 1 {
            crate::info!("power button pressed");
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), nix::sys::signal::SIGUSR2);
        }
    }
}
