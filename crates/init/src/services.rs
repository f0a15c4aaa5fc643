//! Services: containerd, and each `/containers/services/NAME` bundle run
//! as a containerd task in the namespace `services.linuxkit`.
//!
//! containerd is driven through `ctr`, which every LinuxKit init image
//! ships next to it: `ctr run --config SPEC --detach --log-uri
//! file:///var/log/NAME.log NAME` creates the container from the bundle's
//! own OCI spec (no image, no snapshot), its root made an absolute path to
//! the bundle's (already mounted) rootfs. Talking gRPC to
//! containerd directly would need a protobuf toolchain and an async stack in
//! PID 1 for no gain. Services start in name order, after every onboot
//! container has finished; a watcher reports on the console when one exits.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{info, runtime, warn};

/// The containerd namespace of LinuxKit services.
pub const NAMESPACE: &str = "services.linuxkit";
/// Where the service bundles are.
pub const SERVICES_DIR: &str = "/containers/services";
/// containerd's socket, as the shipped config.toml sets it.
pub const SOCKET: &str = "/run/containerd/containerd.sock";
const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";

/// Set once shutdown starts: services exiting then is expected.
pub static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// The service bundles, in start order (by name).
pub fn bundles() -> Vec<PathBuf> {
    crate::onboot::bundles(Path::new(SERVICES_DIR))
}

/// `ctr` with the socket and namespace set.
fn ctr(namespace: &str) -> Command {
    let mut c = Command::new(CTR);
    c.args(["--address", SOCKET, "--namespace", namespace]);
    c
}

/// The containerd namespace of a bundle: runtime.json's `namespace`, or
/// [`NAMESPACE`].
fn namespace_of(rt: &linuxkit_config::Runtime) -> String {
    rt.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| NAMESPACE.to_string())
}

/// Where containerd's output goes: `/etc/containerd/runtime-config.toml`
/// may say `stdout`/`stderr` = `"stdout"`, `"stderr"` or a path, and
/// `cliopts` adds arguments. A deliberately small TOML reader: those three
/// string keys are all the reference reads.
fn runtime_config() -> (Vec<String>, Option<String>, Option<String>) {
    let text = fs::read_to_string("/etc/containerd/runtime-config.toml").unwrap_or_default();
    let (mut opts, mut out, mut err) = (Vec::new(), None, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "cliopts" => opts = v.split_whitespace().map(str::to_string).collect(),
            "stdout" => out = Some(v),
            "stderr" => err = Some(v),
            _ => {}
        }
    }
    (opts, out, err)
}

/// containerd's log when runtime-config.toml does not send it elsewhere.
/// (The reference prints it on the console, where its info-level plugin
/// chatter buries the boot messages.)
pub const CONTAINERD_LOG: &str = "/var/log/containerd.log";

fn output(to: Option<&str>) -> Stdio {
    let path = match to {
        Some("stdout" | "stderr") => return Stdio::inherit(),
        Some(p) if p.starts_with('/') => p,
        _ => CONTAINERD_LOG,
    };
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit())
}

/// Starts containerd and waits (up to a minute) for its socket.
pub fn start_containerd() -> io::Result<()> {
    let (opts, out, err) = runtime_config();
    Command::new(CONTAINERD)
        .args(&opts)
        .stdin(Stdio::null())
        .stdout(output(out.as_deref()))
        .stderr(output(err.as_deref()))
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {CONTAINERD}: {e}")))?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if Path::new(SOCKET).exists()
            && ctr(NAMESPACE)
                .args(["version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("containerd did not open {SOCKET} within 60 s"),
    ))
}

/// Starts the service in `bundle`: runtime.json's filesystem steps, the
/// container and its task, the namespace binds.
pub fn start(bundle: &Path) -> io::Result<()> {
    let name = crate::onboot::bundle_name(bundle);
    let rt = runtime::load(bundle)?;
    let ns = namespace_of(&rt);
    // A previous instance (`service restart`, a re-run) is removed first.
    remove(&ns, &name);
    runtime::prepare_filesystem(bundle, &rt)?;
    let spec = spec_with_absolute_root(bundle, &name)?;
    let log = format!("/var/log/{name}.log");
    let out = ctr(&ns)
        .args(["run", "--detach", "--log-uri"])
        .arg(format!("file://{log}"))
        .arg("--config")
        .arg(&spec)
        .arg(&name)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running {CTR}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ctr run exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    if let Some(pid) = task_pid(&ns, &name) {
        runtime::prepare_process(&name, &rt, pid)?;
    }
    Ok(())
}

/// Where the services' specs are written: containerd runs a container in
/// a bundle directory of its own, so the spec's `root.path` (`rootfs`,
/// relative to our bundle) must become absolute; `/containers` is
/// read-only, so the patched spec lives here.
pub const SPECS_DIR: &str = "/run/linuxkit/services";

/// Writes `BUNDLE/config.json` with `root.path` made absolute to
/// [`SPECS_DIR`]`/NAME.json` and returns that path.
fn spec_with_absolute_root(bundle: &Path, name: &str) -> io::Result<PathBuf> {
    let src = bundle.join("config.json");
    let text =
        fs::read(&src).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let mut spec: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", src.display()),
        )
    })?;
    let root = spec
        .get("root")
        .and_then(|r| r.get("path"))
        .and_then(|p| p.as_str())
        .unwrap_or("rootfs")
        .to_string();
    let abs = if root.starts_with('/') {
        PathBuf::from(root)
    } else {
        bundle.join(root)
    };
    spec["root"]["path"] = serde_json::Value::String(abs.to_string_lossy().into_owned());
    fs::create_dir_all(SPECS_DIR)?;
    let out = Path::new(SPECS_DIR).join(format!("{name}.json"));
    fs::write(
        &out,
        serde_json::to_vec_pretty(&spec).map_err(io::Error::other)?,
    )?;
    Ok(out)
}

/// The pid of a running task (`ctr task ls`).
fn task_pid(ns: &str, name: &str) -> Option<i32> {
    let out = ctr(ns)
        .args(["task", "ls"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&name))
            .then(|| f.get(1)?.parse().ok())
            .flatten()
    })
}

/// Stops a service: TERM, up to `grace` for it to exit, KILL; then its
/// task and container are deleted and its rootfs unmounted.
pub fn stop(bundle: &Path, grace: Duration) -> io::Result<()> {
    let name = crate::onboot::bundle_name(bundle);
    let ns = namespace_of(&runtime::load(bundle)?);
    let quiet = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    let _ = quiet(ctr(&ns).args(["task", "kill", "--signal", "SIGTERM", &name]));
    let start = Instant::now();
    while task_pid(&ns, &name).is_some() && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(100));
    }
    remove(&ns, &name);
    let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
    Ok(())
}

/// Kills and deletes a task and its container, if they exist.
fn remove(ns: &str, name: &str) {
    let quiet = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    let _ = quiet(ctr(ns).args(["task", "kill", "--signal", "SIGKILL", name]));
    let _ = quiet(ctr(ns).args(["task", "delete", "--force", name]));
    let _ = quiet(ctr(ns).args(["container", "delete", name]));
}

/// Starts containerd and every service, in name order; reports failures
/// on the console and carries on.
pub fn start_all() {
    let list = bundles();
    if list.is_empty() {
        return;
    }
    if !Path::new(CONTAINERD).exists() {
        warn!(
            "{} services but no {CONTAINERD} in the image: not started",
            list.len()
        );
        return;
    }
    if let Err(e) = start_containerd() {
        warn!("{e}");
        return;
    }
    info!("containerd started");
    watch_exits();
    for b in list {
        let name = crate::onboot::bundle_name(&b);
        match start(&b) {
            Ok(()) => info!("service {name}: started"),
            Err(e) => warn!("service {name}: FAILED to start: {e}"),
        }
    }
}

/// A thread that follows `ctr events` and says on the console when a
/// service's task exits (the reference stays silent).
fn watch_exits() {
    let child = Command::new(CTR)
        .args(["--address", SOCKET, "events"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return };
    let Some(stdout) = child.stdout.take() else {
        return;
    };
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((id, status)) = parse_exit_event(&line) {
                if SHUTTING_DOWN.load(Ordering::SeqCst) {
                    continue;
                }
                if status == 0 {
                    info!("service {id}: exited 0");
                } else {
                    warn!("service {id}: FAILED, exited with status {status}");
                    print_log_tail(&id, 10);
                }
            }
        }
    });
}

/// Prints the last `n` lines of a service's log, so a failure can be
/// understood from the console alone.
fn print_log_tail(name: &str, n: usize) {
    let path = format!("/var/log/{name}.log");
    let Ok(text) = fs::read_to_string(&path) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        return;
    }
    let mut out = format!("--- last lines of {path} ---\n");
    for l in tail {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("---\n");
    eprint!("{out}");
}

/// `(container id, exit status)` of a `ctr events` line for `/tasks/exit`
/// of the main process (`id` == `container_id`; execs are ignored).
pub fn parse_exit_event(line: &str) -> Option<(String, i64)> {
    let rest = &line[line.find(" /tasks/exit ")? + " /tasks/exit ".len()..];
    let v: serde_json::Value = serde_json::from_str(rest.trim()).ok()?;
    let cid = v.get("container_id")?.as_str()?;
    if v.get("id")
        .and_then(|i| i.as_str())
        .is_some_and(|id| id != cid)
    {
        return None;
    }
    let status = v.get("exit_status").and_then(|s| s.as_i64()).unwrap_or(0);
    Some((cid.to_string(), status))
}

/// `service ls|start|stop|restart [NAME...]`: managing services from a
/// shell inside the machine.
pub fn service_main(args: &[String]) -> i32 {
    let usage = "usage: service ls | start NAME... | stop NAME... | restart NAME...";
    let Some(verb) = args.first() else {
        eprintln!("{usage}");
        return 2;
    };
    let names = &args[1..];
    let bundle = |n: &String| Path::new(SERVICES_DIR).join(n);
    let mut rc = 0;
    match verb.as_str() {
        "ls" | "list" => {
            let st = ctr(NAMESPACE).args(["task", "ls"]).status();
            return if st.is_ok_and(|s| s.success()) { 0 } else { 1 };
        }
        "start" | "stop" | "restart" if !names.is_empty() => {
            for n in names {
                let b = bundle(n);
                if !b.is_dir() {
                    eprintln!("service: no service {n} in {SERVICES_DIR}");
                    rc = 1;
                    continue;
                }
                let r = match verb.as_str() {
                    "start" => start(&b),
                    "stop" => stop(&b, Duration::from_secs(10)),
                    _ => stop(&b, Duration::from_secs(10)).and_then(|()| start(&b)),
                };
                if let Err(e) = r {
                    eprintln!("service {verb} {n}: {e}");
                    rc = 1;
                }
            }
        }
        _ => {
            eprintln!("{usage}");
            return 2;
        }
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_events() {
        let l = r#"2026-11-24 12:00:00.1 +0000 UTC services.linuxkit /tasks/exit {"container_id":"nginx","id":"nginx","pid":412,"exit_status":137,"exited_at":"2026-11-24T12:00:00Z"}"#;
        assert_eq!(parse_exit_event(l), Some(("nginx".into(), 137)));
        let exec =
            r#"t services.linuxkit /tasks/exit {"container_id":"nginx","id":"exec-1","pid":5}"#;
        assert_eq!(parse_exit_event(exec), None);
        assert_eq!(
            parse_exit_event("t services.linuxkit /tasks/start {}"),
            None
        );
        let zero = r#"t ns /tasks/exit {"container_id":"getty","id":"getty","pid":9}"#;
        assert_eq!(parse_exit_event(zero), Some(("getty".into(), 0)));
    }
}
