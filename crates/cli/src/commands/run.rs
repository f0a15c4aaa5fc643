//! `linuxkit run qemu [FLAGS] PATH` (and `linuxkit run [FLAGS] PATH`, QEMU
//! being the default backend on Linux): flags → `linuxkit_run` options.

use std::path::PathBuf;
use std::time::Duration;

use linuxkit_run::qemu::{DiskSpec, Networking, PublishedPort, QemuOptions};
use linuxkit_run::runner::{self, BootTest, Mode, Outcome};

use crate::cli::{GlobalArgs, QemuFlags, RunShared};
use crate::error::{Error, IoContext, Result};

/// The arguments this handler reads (see `crate::flags`); `run` takes the
/// QEMU flags too (QEMU being the default back-end), `path` is `main`'s.
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: crate::cli::Honoured = &[
    // `RunShared`: persistent flags of `run`, for every back-end.
    ("run", &["cpus", "mem", "disk"]),
    ("run", QEMU_ARGS),
    ("run qemu", QEMU_ARGS),
];

#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
const QEMU_ARGS: &[&str] = &[
    "gui",
    "uefi",
    "iso",
    "squashfs",
    "kernel",
    "netboot",
    "state",
    "data",
    "data_file",
    "fw",
    "accel",
    "arch",
    "qemu",
    "detached",
    "networking",
    "publish",
    "usb",
    "device",
    "expect",
    "fail_on",
    "timeout",
    "powerdown_after",
    "stop",
];

/// How long `--stop` waits for the guest to power off, unless `--timeout`.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The library's options for `path` from the command line.
pub fn options(path: &str, shared: &RunShared, f: &QemuFlags) -> Result<QemuOptions> {
    let data = match (&f.data, &f.data_file) {
        (Some(d), _) => Some(d.clone().into_bytes()),
        (None, Some(file)) => {
            Some(std::fs::read(file).context(|| format!("cannot read {}", file.display()))?)
        }
        (None, None) => None,
    };
    let mut o = QemuOptions::new(path);
    o.kernel = f.kernel;
    o.squashfs = f.squashfs;
    o.iso = f.iso;
    o.uefi = f.uefi;
    o.state = f.state.clone();
    o.data = data;
    o.fw = f.fw.clone();
    o.accel = f.accel.clone().filter(|a| !a.is_empty());
    o.arch = f.arch;
    o.qemu = f.qemu.clone();
    o.cpus = shared.cpus;
    o.mem = shared.mem;
    o.disks = shared
        .disk
        .iter()
        .map(|d| DiskSpec::parse(d))
        .collect::<Result<_, _>>()?;
    o.networking = Networking::parse(&f.networking)?;
    o.publish = f
        .publish
        .iter()
        .map(|p| PublishedPort::parse(p))
        .collect::<Result<_, _>>()?;
    o.gui = f.gui;
    o.usb = f.usb;
    o.devices = f.device.clone();
    Ok(o)
}

/// The boot test the flags ask for (inactive when none was given).
pub fn boot_test(f: &QemuFlags) -> BootTest {
    BootTest {
        expect: f.expect.clone(),
        fail_on: f.fail_on.clone(),
        timeout: f.timeout.map(Duration::from_secs),
        powerdown_after: f.powerdown_after.clone(),
    }
}

/// Runs `path` on QEMU.
pub fn run(path: &str, shared: &RunShared, f: &QemuFlags, g: &GlobalArgs) -> Result<()> {
    let quiet = g.quiet || g.verbose == 0;
    if f.stop {
        let state = linuxkit_run::qemu::state_dir_for(path, f.state.as_deref());
        let timeout = f.timeout.map(Duration::from_secs).unwrap_or(STOP_TIMEOUT);
        let how = runner::stop(&state, timeout)?;
        tracing::info!(
            "the VM of {} stopped{}",
            state.display(),
            match how {
                Some(linuxkit_run::qmp::Shutdown::PowerOff) => " (guest power-off)".to_string(),
                Some(other) => format!(" ({other:?})"),
                None => String::new(),
            }
        );
        return Ok(());
    }
    let mut opts = options(path, shared, f)?;
    if f.netboot {
        opts.netboot = Some(netboot(path)?);
    }
    let test = boot_test(f);
    let mode = if test.is_active() {
        if f.detached {
            return Err(Error::Usage(
                "--detached cannot be combined with the boot test (--expect, --fail-on, --timeout, --powerdown-after)".into(),
            ));
        }
        Mode::Test { test, echo: !quiet }
    } else if f.detached {
        Mode::Detached
    } else {
        Mode::Foreground
    };
    match runner::run(&opts, &mode)? {
        Outcome::Detached {
            pid,
            state_dir,
            console_log,
        } => {
            tracing::info!(
                "QEMU runs in the background (pid {pid}); console: {}; stop it with `linuxkit run qemu --stop{} {path}`",
                console_log.display(),
                state_flag(f.state.as_ref(), &state_dir)
            );
        }
        Outcome::Passed { elapsed, stages } => {
            tracing::info!("boot test passed in {:.1} s", elapsed.as_secs_f64());
            if !stages.is_empty() {
                // The boot-time report: each stage on the kernel clock.
                let mut report = String::from("boot stages (seconds since the kernel started):");
                for s in &stages {
                    report.push_str(&format!("\n  {:>8.3}  {}", s.at, s.message));
                }
                tracing::info!("{report}");
            }
        }
        Outcome::Exited => {}
    }
    Ok(())
}

/// `--netboot`: writes `PATH.ipxe` beside the kernel+initrd build and
/// serves it, the kernel and the initrd (nothing else of their directory)
/// on the host's loopback (QEMU's user network takes the guest's
/// connections to 10.0.2.2 there) for as long as this command runs, which
/// is why `--detached` is refused with it. Returns the script's URL as the
/// guest reaches it.
fn netboot(path: &str) -> Result<String> {
    let script = linuxkit_run::netboot::write_script(path)?;
    let dir = script
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let only = [
        script.clone(),
        format!("{path}-kernel").into(),
        format!("{path}-initrd.img").into(),
    ]
    .iter()
    .filter_map(|p| name(p))
    .collect();
    let addr = crate::commands::serve::spawn(dir, "127.0.0.1:0", only)?;
    tracing::info!("netboot: {} served on http://{addr}/", script.display());
    Ok(linuxkit_run::netboot::guest_url(addr.port(), &script))
}

fn state_flag(given: Option<&PathBuf>, state_dir: &std::path::Path) -> String {
    match given {
        Some(_) => format!(" --state {}", state_dir.display()),
        None => String::new(),
    }
}
