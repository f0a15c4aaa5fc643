//! Which OCI runtime runs the containers: crun when the image has it
//! (`pkg/crun` among the init images), else runc, the reference's.
//!
//! Why crun: both read the same bundles and take the same command line,
//! but under containerd's shim every service costs several runtime runs
//! (`create`, `start`, `state`, ...), and runc, a 10 MB Go program, costs a
//! few tenths of a second for each under QEMU TCG: three services took
//! 2.9–3.0 s to start with runc, 2.0 s with crun (in C). Run directly for
//! an onboot container the two cost about the same. The onboot runner calls
//! the runtime directly; for the services, containerd's runc shim is told
//! to call it instead of `runc` (the shim's `BinaryName` option). `linuxkit.runtime=runc` (or `crun`) on the kernel
//! command line overrides the choice.
//!
//! PID 1 records the choice in [`CHOSEN`], so the `service` tool, which
//! runs inside a container that sees the host's `/run` (containerd's socket
//! is there) but not its `/usr/bin`, starts services with the same one.

use std::path::Path;

use crate::cmdline::Cmdline;

/// An OCI runtime with runc's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OciRuntime {
    /// Its name, as `linuxkit.runtime=` takes it.
    pub name: &'static str,
    /// The binary.
    pub path: &'static str,
    /// Where it keeps its containers' state (its default `--root`).
    pub state_dir: &'static str,
}

pub const CRUN: OciRuntime = OciRuntime {
    name: "crun",
    path: "/usr/bin/crun",
    state_dir: "/run/crun",
};

pub const RUNC: OciRuntime = OciRuntime {
    name: "runc",
    path: "/usr/bin/runc",
    state_dir: "/run/runc",
};

/// Where PID 1 writes the chosen runtime's name.
pub const CHOSEN: &str = "/run/linuxkit/oci-runtime";

impl OciRuntime {
    /// The runtime for this boot: `linuxkit.runtime=` if given, else crun
    /// if installed, else runc.
    pub fn select(cmdline: &Cmdline) -> OciRuntime {
        if let Some(name) = cmdline.value("linuxkit.runtime") {
            match by_name(name) {
                Some(r) => return r,
                None => crate::warn!("linuxkit.runtime={name}: unknown (crun or runc); ignored"),
            }
        }
        if Path::new(CRUN.path).exists() {
            CRUN
        } else {
            RUNC
        }
    }

    /// The runtime PID 1 chose ([`CHOSEN`]); runc if none was recorded.
    /// Read once per process: the choice is made once per boot.
    pub fn chosen() -> OciRuntime {
        *THIS_PROCESS.get_or_init(|| {
            std::fs::read_to_string(CHOSEN)
                .ok()
                .and_then(|s| by_name(s.trim()))
                .unwrap_or(RUNC)
        })
    }

    /// Records this runtime as the boot's choice (for this process too).
    pub fn record(self) -> std::io::Result<()> {
        let _ = THIS_PROCESS.set(self);
        std::fs::create_dir_all(Path::new(CHOSEN).parent().expect("has a parent"))?;
        std::fs::write(CHOSEN, format!("{}\n", self.name))
    }
}

/// [`OciRuntime::chosen`] in this process.
static THIS_PROCESS: std::sync::OnceLock<OciRuntime> = std::sync::OnceLock::new();

fn by_name(name: &str) -> Option<OciRuntime> {
    [CRUN, RUNC].into_iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_overrides_the_choice() {
        let c = Cmdline::parse("console=ttyS0 linuxkit.runtime=runc");
        assert_eq!(OciRuntime::select(&c), RUNC);
        let c = Cmdline::parse("linuxkit.runtime=crun");
        assert_eq!(OciRuntime::select(&c), CRUN);
        // an unknown name falls back to what is installed (here, on the
        // build host, never /usr/bin/crun's absence being assumed)
        let c = Cmdline::parse("linuxkit.runtime=youki");
        let expect = if Path::new(CRUN.path).exists() {
            CRUN
        } else {
            RUNC
        };
        assert_eq!(OciRuntime::select(&c), expect);
    }

    #[test]
    fn names_resolve() {
        assert_eq!(by_name("crun"), Some(CRUN));
        assert_eq!(by_name("runc"), Some(RUNC));
        assert_eq!(by_name(""), None);
    }
}
