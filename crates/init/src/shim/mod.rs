//! `containerd-shim-linuxkit-v1`: LinuxKit's containerd shim, the runtime
//! `io.containerd.linuxkit.v1` the services run with.
//!
//! containerd runs every task through a shim, a process that owns the
//! container's first process, reaps it and tells containerd how it ended.
//! containerd's own (`containerd-shim-runc-v2`) is a Go program: under
//! QEMU TCG each start of it costs a few tenths of a second of CPU, and
//! containerd starts it twice per task (`start`, which forks the serving
//! shim, and the serving shim itself). This one is an applet of the init's
//! binary, which is already in memory: a start costs milliseconds.
//!
//! The protocol is containerd's runtime v2 (`runtime/v2/README.md` in
//! containerd): the binary is run with `-namespace`, `-address`, `-id`
//! (and `-publish-binary`, `-bundle`, `-debug`) and an action, in the
//! task's bundle directory:
//!
//! - `start`: print the address of a shim serving this task, starting one
//!   unless a running shim serves the task's group (the spec annotation
//!   `io.containerd.runc.v2.group`, which containerd's runc shim honours
//!   too; without it every task has a shim of its own);
//! - `delete`: clean up after a shim that died (kill and delete the
//!   container; print a `DeleteResponse`);
//! - no action: serve the task API ([`task`]) over ttrpc ([`ttrpc`]) on
//!   the socket inherited as fd 3, publishing task events to containerd.
//!
//! `linuxkit.shim=runc` on the kernel command line makes the init create
//! services with containerd's runc shim instead (for what this shim does
//! not do: a terminal, `exec`, checkpoints).

pub mod proto;
pub mod reaper;
pub mod task;
pub mod ttrpc;

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};

use self::proto::{DeleteResponse, Envelope, ForwardRequest, KeyValue};
use self::task::Tasks;
use crate::oci_runtime::OciRuntime;

/// The binary's name (what containerd looks up for [`RUNTIME`]).
pub const NAME: &str = "containerd-shim-linuxkit-v1";
/// The runtime name containers give to be run by this shim.
pub const RUNTIME: &str = "io.containerd.linuxkit.v1";
/// The spec annotation that puts tasks in one shim process.
pub const GROUP_ANNOTATION: &str = "io.containerd.runc.v2.group";
/// Where shim sockets live (containerd's runc shim uses the same).
const SOCKET_DIR: &str = "/run/containerd/s";

/// The command line containerd gives a shim.
#[derive(Debug, Default, PartialEq)]
struct Flags {
    namespace: String,
    address: String,
    id: String,
    bundle: Option<String>,
    action: Option<String>,
}

/// Parses Go `flag`-style arguments (`-name value`, `-name=value`, one or
/// two dashes); unknown flags are ignored (`-publish-binary`, `-debug`).
fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            if f.action.is_some() {
                return Err(format!("unexpected argument {a:?}"));
            }
            f.action = Some(a.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if matches!(name, "debug" | "v") {
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("flag -{name} needs a value"))?,
        };
        match name {
            "namespace" => f.namespace = value,
            "address" => f.address = value,
            "id" => f.id = value,
            "bundle" => f.bundle = Some(value),
            _ => {}
        }
    }
    if f.namespace.is_empty() || f.id.is_empty() {
        return Err("-namespace and -id are required".into());
    }
    Ok(f)
}

/// Writes a line to the shim's log (containerd's `log` FIFO, or nowhere);
/// never fails.
macro_rules! shim_log {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), "{}: {}", NAME, format!($($arg)*));
    }};
}

/// The applet's entry: `containerd-shim-linuxkit-v1 FLAGS [start|delete]`.
pub fn shim_main(args: &[String]) -> i32 {
    let flags = match parse_flags(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{NAME}: {e} (this program is started by containerd)");
            return 2;
        }
    };
    let res = match flags.action.as_deref() {
        Some("start") => start(&flags),
        Some("delete") => delete(&flags),
        None => serve(&flags),
        Some(other) => Err(io::Error::other(format!("unknown action {other:?}"))),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{NAME}: {e}");
            1
        }
    }
}

/// The group of the task in `bundle`: its spec's [`GROUP_ANNOTATION`].
fn group_of(bundle: &Path) -> Option<String> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    spec.get("annotations")?
        .get(GROUP_ANNOTATION)?
        .as_str()
        .filter(|g| !g.is_empty())
        .map(str::to_string)
}

/// The socket of the shim serving `group` (a hash, as containerd's shims
/// name theirs, keeps it within the 108 bytes a socket path may have).
fn socket_path(address: &str, namespace: &str, group: &str) -> PathBuf {
    let key = Path::new(address).join(namespace).join(group);
    let digest = Sha256::digest(key.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SOCKET_DIR).join(hex)
}

/// `start`: prints the address of the shim for this task's group, starting
/// one if none answers there.
fn start(flags: &Flags) -> io::Result<()> {
    let bundle = std::env::current_dir()?;
    let group = group_of(&bundle).unwrap_or_else(|| flags.id.clone());
    let socket = socket_path(&flags.address, &flags.namespace, &group);
    let address = format!("unix://{}", socket.display());
    if UnixStream::connect(&socket).is_err() {
        let _ = std::fs::remove_file(&socket);
        std::fs::create_dir_all(SOCKET_DIR)?;
        let listener = UnixListener::bind(&socket)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", socket.display())))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        spawn_server(flags, &bundle, &listener)?;
    }
    // containerd reads this back when it restarts.
    std::fs::write(bundle.join("address"), &address)?;
    let mut out = io::stdout();
    out.write_all(address.as_bytes())?;
    out.flush()
}

/// Starts the serving shim in its own session, the listening socket as
/// its fd 3, its output to containerd's `log` FIFO in the bundle. Not
/// waited for: it outlives this process.
fn spawn_server(flags: &Flags, bundle: &Path, listener: &UnixListener) -> io::Result<()> {
    let exe = std::env::args_os()
        .next()
        .unwrap_or_else(|| format!("/usr/bin/{NAME}").into());
    // containerd opened the FIFO's read end before running us.
    let log = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(bundle.join("log"))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address])
        .current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if fd == 3 {
                // dup2 onto itself keeps close-on-exec: clear it.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map(drop)
}

/// `delete`: containerd lost the shim; kill and delete the container.
fn delete(flags: &Flags) -> io::Result<()> {
    let bundle = match &flags.bundle {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir()?,
    };
    let rt = OciRuntime::chosen();
    let _ = rt
        .command(crate::oci_runtime::Invocation::Control)
        .arg("--root")
        .arg(task::runtime_root(&flags.namespace))
        .args(["delete", "--force", &flags.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let pid = std::fs::read_to_string(bundle.join("init.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let resp = DeleteResponse {
        pid,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(task::now()),
    };
    let mut out = io::stdout();
    out.write_all(&resp.encode_to_vec())?;
    out.flush()
}

/// The serving shim: a child subreaper answering the task API on fd 3.
fn serve(flags: &Flags) -> io::Result<()> {
    // SAFETY: fd 3 is the listening socket `start` handed over.
    let listener = unsafe { UnixListener::from_raw_fd(3) };
    // SAFETY: plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Like containerd's shims, stay through a TERM to every process (the
    // shutdown's): the containers go, the shim reports their exits. A
    // handler, not SIG_IGN, so the runtime and containers do not inherit
    // an ignored TERM.
    extern "C" fn ignore(_: libc::c_int) {}
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(ignore),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGTERM, &action) }?;
    let socket = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    let ttrpc_address =
        std::env::var("TTRPC_ADDRESS").unwrap_or_else(|_| format!("{}.ttrpc", flags.address));
    let (tx, rx) = std::sync::mpsc::channel();
    let tasks = Arc::new(Tasks::new(&flags.namespace, OciRuntime::chosen(), tx));
    let t = tasks.clone();
    tasks.set_reaper(reaper::Reaper::start(move |pid, status| {
        t.exited(pid, status)
    }));
    let ns = flags.namespace.clone();
    std::thread::spawn(move || publish_events(&ttrpc_address, &ns, rx));
    // containerd asks every task's shim to shut down once the task is
    // deleted; the shim goes when it serves no task any more. Its socket
    // goes before the reply, so a `start` that follows cannot find it.
    let leaving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (t, l) = (tasks.clone(), leaving.clone());
    let handler: Arc<ttrpc::Handler> = Arc::new(move |s, m, p| {
        if m == "Shutdown" && t.is_empty() {
            l.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(s) = &socket {
                let _ = std::fs::remove_file(s);
            }
        }
        t.handle(s, m, p)
    });
    let after = Arc::new(move |method: &str| {
        if method == "Shutdown" && leaving.load(std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(0);
        }
    });
    ttrpc::serve(listener, handler, after);
    Ok(())
}

/// Forwards the task events to containerd's ttrpc socket, in order,
/// reconnecting (a few times, then dropping the event) if needed.
fn publish_events(address: &str, namespace: &str, rx: Receiver<Envelope>) {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let mut client: Option<ttrpc::Client> = None;
    let metadata = vec![KeyValue {
        key: "containerd-namespace-ttrpc".into(),
        value: namespace.into(),
    }];
    for env in rx {
        let topic = env.topic.clone();
        let payload = ForwardRequest {
            envelope: Some(env),
        }
        .encode_to_vec();
        let mut sent = false;
        for attempt in 0..5u64 {
            if client.is_none() {
                client = ttrpc::Client::connect(path).ok();
            }
            let Some(c) = client.as_mut() else {
                std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
                continue;
            };
            match c.call(
                "containerd.services.events.ttrpc.v1.Events",
                "Forward",
                payload.clone(),
                metadata.clone(),
            ) {
                Ok(Ok(_)) => {
                    sent = true;
                    break;
                }
                Ok(Err(e)) => {
                    shim_log!("event {topic}: containerd refused it: {}", e.message);
                    sent = true;
                    break;
                }
                Err(_) => client = None,
            }
        }
        if !sent {
            shim_log!("event {topic}: containerd at {path} unreachable; dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_parse_as_containerd_passes_them() {
        let f = parse_flags(&args(
            "-namespace services.linuxkit -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id getty start",
        ))
        .unwrap();
        assert_eq!(f.namespace, "services.linuxkit");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.id, "getty");
        assert_eq!(f.action.as_deref(), Some("start"));
        let f = parse_flags(&args("--namespace=ns -debug -id=x -bundle /b delete")).unwrap();
        assert_eq!((f.namespace.as_str(), f.id.as_str()), ("ns", "x"));
        assert_eq!(f.bundle.as_deref(), Some("/b"));
        assert_eq!(f.action.as_deref(), Some("delete"));
        assert!(parse_flags(&args("-namespace ns start")).is_err());
        assert!(parse_flags(&args("-namespace ns -id")).is_err());
        assert!(parse_flags(&args("-namespace ns -id a start delete")).is_err());
    }

    #[test]
    fn a_group_shares_one_socket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"annotations":{{"{GROUP_ANNOTATION}":"linuxkit-services"}}}}"#),
        )
        .unwrap();
        assert_eq!(group_of(dir.path()).as_deref(), Some("linuxkit-services"));
        assert_eq!(group_of(Path::new("/nonexistent")), None);
        let a = socket_path("/run/containerd/containerd.sock", "ns", "g");
        assert_eq!(a, socket_path("/run/containerd/containerd.sock", "ns", "g"));
        assert_ne!(a, socket_path("/run/containerd/containerd.sock", "ns", "h"));
        assert!(a.as_os_str().len() < 108);
    }
}
