//! The in-VM side of LinuxKit: one static binary that is the machine's
//! init and its few helpers, chosen by the name it is run as (like
//! busybox):
//!
//! | name | what |
//! |---|---|
//! | `/init` | [`switch_root`]: make a bind mount of the initramfs the root (no copy), exec `/sbin/init` |
//! | `/sbin/init` | [`pid1`]: mounts, modules, banner, volumes, onboot, services; reaping; clean shutdown |
//! | `modprobe` | [`modules`]: load a module or alias with its dependencies (also the kernel's helper) |
//! | `service` | [`services`]: `ls`, `start`, `stop`, `restart` services |
//! | `metadata` | [`metadata`]: fetch the machine's configuration into `/run/config` |
//! | `memlogd` | [`memlogd`]: the log daemon (started by PID 1) |
//! | `logread` | [`memlogd`]: read the log (`-f`, `-F` to follow) |
//! | `log-forward` | [`memlogd`]: a containerd logging binary handing a task's output to the log |
//! | `containerd-shim-linuxkit-v1` | [`shim`]: containerd's shim for the services |
//! | `poweroff`, `reboot`, `halt` | ask PID 1 for a clean shutdown; `-f`: right now |
//!
//! `linuxkit-init APPLET ARGS...` runs an applet by name.
//!
//! Every console line of the init carries the time since boot ([`log`]),
//! so boot stages can be measured from the console.

// `unsafe_code` is denied workspace-wide. The modules allowed it below make
// system calls nix and std do not wrap (finit_module, memfd seals, the
// interface ioctls, personality and setsid between fork and exec, adopting
// a handed-over descriptor) or set PID 1's environment; every block says
// why it is sound in a `// SAFETY:` comment.

#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod clock;
pub mod cmdline;
pub mod containerd;
pub mod log;
#[allow(unsafe_code)]
pub mod memlogd;
pub mod metadata;
#[allow(unsafe_code)]
pub mod modules;
pub mod mount;
pub mod netlink;
#[allow(unsafe_code)]
pub mod oci_runtime;
pub mod onboot;
#[allow(unsafe_code)]
pub mod pid1;
pub mod power;
pub mod reap;
pub mod runtime;
pub mod services;
#[allow(unsafe_code)]
pub mod shim;
pub mod switch_root;
#[allow(unsafe_code)]
pub mod system;
pub mod volumes;

/// Runs the applet `name` (a program name, any directory ignored) with
/// `args` (without the name); returns its exit code. `init` and `/init`
/// do not return.
pub fn dispatch(name: &str, argv: &[String]) -> i32 {
    let base = name.rsplit('/').next().unwrap_or(name);
    let args = argv.get(1..).unwrap_or(&[]);
    match base {
        "init" if name == "/init" => {
            let e = switch_root::run(argv);
            eprintln!("linuxkit-init: {e}");
            1
        }
        "init" => {
            if nix::unistd::getpid().as_raw() != 1 {
                eprintln!("init: must be run as PID 1");
                return 1;
            }
            pid1::main()
        }
        "modprobe" => modules::modprobe_main(args),
        "service" => services::service_main(args),
        "metadata" => metadata::metadata_main(args),
        "memlogd" => memlogd::memlogd_main(args),
        "logread" => memlogd::logread_main(args),
        "log-forward" => memlogd::log_forward_main(args),
        shim::NAME => shim::shim_main(args),
        "poweroff" | "reboot" | "halt" => pid1::halt_main(base, args),
        "linuxkit-init" => match args.first() {
            Some(applet) if applet != "linuxkit-init" => dispatch(applet, args),
            _ => {
                eprintln!(
                    "usage: linuxkit-init APPLET [ARGS...]; applets: init, modprobe, service, metadata, memlogd, logread, log-forward, containerd-shim-linuxkit-v1, poweroff, reboot, halt"
                );
                2
            }
        },
        other => {
            eprintln!("linuxkit-init: unknown applet {other:?}");
            2
        }
    }
}
