//! Services: containerd, and each `/containers/services/NAME` bundle run
//! as a containerd task in the namespace `services.linuxkit`.
//!
//! containerd is driven through our own small gRPC client
//! ([`crate::containerd`]), not `ctr`: each `ctr` run was a Go program
//! start (~0.4 s under TCG) and `ctr` itself a tenth of the initrd. A
//! service is a container made from the bundle's own OCI spec (no image,
//! no snapshot), its root made an absolute path to the bundle's (already
//! mounted) rootfs, and a task whose stdout and stderr go to the log
//! daemon ([`crate::memlogd`]; `/var/log/NAME.out.log` and
//! `/var/log/NAME.log`, rotated) through containerd's logging-binary
//! protocol (`binary://`), or without the daemon are appended to
//! `/var/log/NAME.log` (the shim's `file://` log URI, as `ctr run
//! --log-uri` used).
//!
//! containerd itself is started early, in the background, as soon as the
//! system is up ([`start_containerd_early`]), so its start overlaps the
//! volumes and onboot stages; the services stage only waits for its
//! socket. Services start after every onboot container has finished, in
//! name order but concurrently (see [`start_all`]); a watcher reports on
//! the console when one exits.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use linuxkit_config::service_policy::ServicePolicy;

use crate::containerd::proto::Status;
use crate::containerd::{self, Client};
use crate::oci_runtime::OciRuntime;
use crate::{info, runtime, warn};

/// The containerd namespace of LinuxKit services.
pub const NAMESPACE: &str = "services.linuxkit";
/// Where the service bundles are.
pub const SERVICES_DIR: &str = "/containers/services";
/// containerd's socket, as the shipped config.toml sets it.
pub const SOCKET: &str = "/run/containerd/containerd.sock";
const CONTAINERD: &str = "/usr/bin/containerd";

/// Set once shutdown starts: services exiting then is expected.
pub static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// The service bundles, in start order (by name).
pub fn bundles() -> Vec<PathBuf> {
    crate::onboot::bundles(Path::new(SERVICES_DIR))
}

/// The containerd namespace of a bundle: runtime.json's `namespace`, or
/// [`NAMESPACE`].
fn namespace_of(rt: &linuxkit_config::RuntimeJson) -> String {
    if rt.namespace.is_empty() {
        NAMESPACE.to_string()
    } else {
        rt.namespace.clone()
    }
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

/// The containerd daemon, once started (so a second start is a no-op and
/// the wait for its socket can tell when it died).
static DAEMON: Mutex<Option<Child>> = Mutex::new(None);

/// Starts containerd in the background unless this init already has.
pub fn spawn_containerd() -> io::Result<()> {
    let mut daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    if daemon.is_some() {
        return Ok(());
    }
    let (opts, out, err) = runtime_config();
    let child = Command::new(CONTAINERD)
        .args(&opts)
        .stdin(Stdio::null())
        .stdout(output(out.as_deref()))
        .stderr(output(err.as_deref()))
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {CONTAINERD}: {e}")))?;
    *daemon = Some(child);
    Ok(())
}

/// Called once the system is up: starts containerd in the background when
/// there are services to run, so its start (about a second under TCG)
/// overlaps the volumes and onboot stages instead of following them.
///
/// Skipped (containerd then starts in the services stage, as before) when
/// an onboot container's spec names containerd's directories, because an
/// onboot step that mounts a disk on `/var/lib/containerd` must do so
/// before containerd opens its database there.
pub fn start_containerd_early() {
    if bundles().is_empty() || !Path::new(CONTAINERD).exists() {
        return;
    }
    if onboot_touches_containerd(Path::new("/containers/onboot")) {
        info!("containerd: waiting for onboot (an onboot container uses its directories)");
        return;
    }
    if let Err(e) = spawn_containerd() {
        warn!("{e}");
    }
}

/// Whether any onboot bundle's `config.json` or `runtime.json` mentions
/// `/var/lib/containerd` or `/run/containerd`.
fn onboot_touches_containerd(dir: &Path) -> bool {
    crate::onboot::bundles(dir).iter().any(|b| {
        ["config.json", "runtime.json"].iter().any(|f| {
            fs::read_to_string(b.join(f))
                .is_ok_and(|t| t.contains("/var/lib/containerd") || t.contains("/run/containerd"))
        })
    })
}

/// Starts containerd if needed and waits (up to a minute) until it answers
/// on its socket; fails early if the daemon exits.
pub fn start_containerd() -> io::Result<()> {
    spawn_containerd()?;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(child) = DAEMON.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            // Err: already reaped by PID 1's reaper, so it is gone too.
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(st)) => {
                    return Err(io::Error::other(format!(
                        "containerd exited ({st}) before opening {SOCKET}; see {CONTAINERD_LOG}"
                    )));
                }
                Err(_) => {
                    return Err(io::Error::other(format!(
                        "containerd exited before opening {SOCKET}; see {CONTAINERD_LOG}"
                    )));
                }
            }
        }
        if Path::new(SOCKET).exists() {
            match Client::connect(Path::new(SOCKET), NAMESPACE).and_then(|mut c| c.list_tasks()) {
                Ok(_) => return Ok(()),
                // It answers, without a tasks API: a configuration that
                // waiting will not mend (a plugin it needs disabled).
                Err(e)
                    if e.code()
                        .is_some_and(|c| c != containerd::grpc::Code::UNAVAILABLE) =>
                {
                    return Err(io::Error::other(format!(
                        "containerd answers on {SOCKET} but cannot list tasks ({e}); is a plugin it needs disabled in /etc/containerd/config.toml? See {CONTAINERD_LOG}"
                    )));
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("containerd did not answer on {SOCKET} within 60 s; see {CONTAINERD_LOG}"),
    ))
}

/// A client in namespace `ns`.
fn client(ns: &str) -> io::Result<Client> {
    Ok(Client::connect(Path::new(SOCKET), ns)?)
}

/// Starts the service in `bundle`: runtime.json's filesystem steps, the
/// container and its task, the namespace binds, then the task's start.
pub fn start(bundle: &Path) -> io::Result<()> {
    let name = crate::onboot::bundle_name(bundle);
    let rt = runtime::load(bundle)?;
    let mut c = client(&namespace_of(&rt))?;
    // A previous instance (`service restart`, a re-run) is removed first.
    remove(&mut c, &name);
    runtime::prepare_filesystem(bundle, &rt)?;
    let shim = service_shim();
    let spec = service_spec(bundle, &name, shim == containerd::RUNC_V2)?;
    let oci = OciRuntime::chosen();
    // runc is the runc shim's default; any other runtime is named.
    let binary = (oci != crate::oci_runtime::RUNC).then_some(oci.path);
    c.create_container(&name, spec, shim, binary)
        .map_err(|e| io::Error::other(format!("creating the container: {e}")))?;
    let log = log_uri(&name);
    let pid = match c.create_task(&name, &log) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = c.delete_container(&name);
            return Err(io::Error::other(format!("creating the task: {e}")));
        }
    };
    // As the reference does: namespaces are bound before the process runs,
    // so a later service can join them.
    runtime::prepare_process(&name, &rt, pid as i32)?;
    c.start_task(&name)
        .map_err(|e| io::Error::other(format!("starting the task: {e}")))?;
    Ok(())
}

/// Where a service's output goes: to the log daemon (through the
/// `log-forward` logging binary, which hands the task's stdout and stderr
/// to it as `NAME.out` and `NAME`; containerd's runc shim runs it the same
/// way), or, without the daemon, appended to `/var/log/NAME.log`.
fn log_uri(name: &str) -> String {
    if crate::memlogd::running() {
        LOG_FORWARD_URI.to_string()
    } else {
        format!("file:///var/log/{name}.log")
    }
}

/// The containerd logging binary that hands a task's output to the log
/// daemon ([`crate::memlogd::log_forward_main`]).
pub const LOG_FORWARD_URI: &str = "binary:///sbin/linuxkit-init?log-forward";

/// Where the services' specs are written (for inspection: containerd
/// gets the same JSON in the Containers.Create call and keeps its own
/// copy in the task's bundle). `/containers` is read-only.
pub const SPECS_DIR: &str = "/run/linuxkit/services";

/// The annotation that makes the shim (ours or containerd's runc shim)
/// serve every container with the same value from one shim process.
const SHIM_GROUP: &str = crate::shim::GROUP_ANNOTATION;

/// containerd's runc shim (pkg/containerd-shim-runc).
const RUNC_SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

/// Where PID 1 records the services' shim ([`service_shim`]), for the
/// `service` tool, whose container does not see the host's `/usr/bin`.
const SHIM_CHOSEN: &str = "/run/linuxkit/shim";

/// The containerd runtime (shim) the services run with, chosen once per
/// boot by PID 1 ([`choose_shim`]) and read back by the `service` tool.
pub fn service_shim() -> &'static str {
    static SHIM: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    SHIM.get_or_init(|| {
        let pid1 = std::process::id() == 1;
        if !pid1 {
            let recorded = fs::read_to_string(SHIM_CHOSEN).unwrap_or_default();
            if let Some(s) = [containerd::RUNC_V2, crate::shim::RUNTIME]
                .into_iter()
                .find(|s| *s == recorded.trim())
            {
                return s;
            }
        }
        let shim = choose_shim(&crate::cmdline::Cmdline::read());
        if pid1 {
            let _ = fs::create_dir_all("/run/linuxkit")
                .and_then(|()| fs::write(SHIM_CHOSEN, format!("{shim}\n")));
        }
        shim
    })
}

/// LinuxKit's own shim ([`crate::shim`]), or containerd's runc shim with
/// `linuxkit.shim=runc` on the kernel command line (for a terminal or
/// `exec`, which ours does not do) if the image has it.
fn choose_shim(cmdline: &crate::cmdline::Cmdline) -> &'static str {
    match cmdline.value("linuxkit.shim") {
        Some("runc") if Path::new(RUNC_SHIM).exists() => containerd::RUNC_V2,
        Some("runc") => {
            warn!(
                "linuxkit.shim=runc: no {RUNC_SHIM} in the image (add pkg/containerd-shim-runc to init); using linuxkit"
            );
            crate::shim::RUNTIME
        }
        Some("linuxkit") | None => crate::shim::RUNTIME,
        Some(other) => {
            warn!("linuxkit.shim={other}: unknown (linuxkit or runc); using linuxkit");
            crate::shim::RUNTIME
        }
    }
}

/// `BUNDLE/config.json` as containerd gets it (see [`service_from_spec`]);
/// also written to [`SPECS_DIR`]`/NAME.json`.
fn service_spec(bundle: &Path, name: &str, group: bool) -> io::Result<Vec<u8>> {
    let src = bundle.join("config.json");
    let text =
        fs::read(&src).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let spec = service_from_spec(&text, bundle, group).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", src.display()),
        )
    })?;
    fs::create_dir_all(SPECS_DIR)?;
    fs::write(Path::new(SPECS_DIR).join(format!("{name}.json")), &spec)?;
    Ok(spec)
}

/// The spec `text` with `root.path` resolved against `bundle` (containerd
/// runs the container from a bundle directory of its own, so `rootfs`
/// relative to ours would not resolve), and, if `group` and unless the
/// spec says otherwise, in the shim group `linuxkit-services`: one shim
/// process for all the services instead of one each. That is for
/// containerd's runc shim, a Go program, a few tenths of a second of CPU
/// to start under QEMU TCG and a few MB for as long as the machine runs
/// (the price: a shim that dies takes every service of its group with it).
/// LinuxKit's own shim costs milliseconds, so each service has its own, as
/// in the reference, unless its YAML `annotations` name a group.
fn service_from_spec(
    text: &[u8],
    bundle: &Path,
    group: bool,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut spec: serde_json::Value = serde_json::from_slice(text)?;
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
    if let Some(obj) = spec.as_object_mut().filter(|_| group) {
        let annotations = obj
            .entry("annotations")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.entry(SHIM_GROUP)
                .or_insert_with(|| serde_json::Value::String("linuxkit-services".into()));
        }
    }
    serde_json::to_vec(&spec)
}

/// Whether the task `name` still has a live process.
fn running(c: &mut Client, name: &str) -> bool {
    c.get_task(name).is_ok_and(|p| {
        matches!(
            p.status(),
            Status::Running | Status::Paused | Status::Pausing | Status::Created
        )
    })
}

/// Waits up to `limit` for the task `name` to stop; true if it did.
fn wait_stopped(c: &mut Client, name: &str, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        if !running(c, name) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file that tells PID 1's exit watcher a service was stopped on
/// purpose (`service stop|restart`, another process), so its exit is not
/// reported as a failure.
fn stopping_marker(name: &str) -> PathBuf {
    Path::new(SPECS_DIR).join(format!("{name}.stopping"))
}

fn mark_stopping(name: &str) {
    let _ = fs::create_dir_all(SPECS_DIR);
    let _ = fs::write(stopping_marker(name), b"");
}

/// Stops a service: TERM, up to `grace` for it to exit, KILL; then its
/// task and container are deleted and its rootfs unmounted.
pub fn stop(bundle: &Path, grace: Duration) -> io::Result<()> {
    let name = crate::onboot::bundle_name(bundle);
    let mut c = client(&namespace_of(&runtime::load(bundle)?))?;
    if running(&mut c, &name) {
        mark_stopping(&name);
        match c.kill_task(&name, libc::SIGTERM) {
            Ok(()) => {
                wait_stopped(&mut c, &name, grace);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(io::Error::other(format!("sending TERM: {e}"))),
        }
    }
    remove(&mut c, &name);
    let _ = nix::mount::umount2(&bundle.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
    Ok(())
}

/// Kills and deletes a task and its container, if they exist.
fn remove(c: &mut Client, name: &str) {
    if running(c, name) {
        mark_stopping(name);
        let _ = c.kill_task(name, libc::SIGKILL);
        wait_stopped(c, name, Duration::from_secs(5));
    }
    let _ = c.delete_task(name);
    let _ = c.delete_container(name);
}

/// Starts containerd (if [`start_containerd_early`] has not) and every
/// service; reports failures on the console and carries on. Returns how
/// many services there are and how many started.
///
/// Services start concurrently: most of a start is containerd launching a
/// shim and the OCI runtime, which overlap well. Name order still matters
/// for one thing: a service whose runtime.json binds a namespace
/// (`bindNS`) may be joined by a later one (and one with `interfaces` may
/// make links a later one uses), so such a service is a barrier: the ones
/// before it have started, and it has, before any later one starts.
/// `linuxkit.services_serial=1` on the kernel command line makes every
/// service one.
pub fn start_all() -> (usize, usize) {
    let list = bundles();
    let total = list.len();
    if list.is_empty() {
        return (0, 0);
    }
    if !Path::new(CONTAINERD).exists() {
        warn!("{total} services but no {CONTAINERD} in the image: not started");
        return (total, 0);
    }
    if let Err(e) = start_containerd() {
        warn!("{e}: no service started");
        return (total, 0);
    }
    info!("containerd started");
    watch_exits();
    // The reference's strict one-after-another order, for services that
    // (wrongly) expect an earlier one to be up.
    let serial = crate::cmdline::Cmdline::read().flag("linuxkit.services_serial");
    // Each thread says whether its service started.
    let joined = |t: std::thread::JoinHandle<bool>| usize::from(t.join().unwrap_or(false));
    let mut started = 0;
    let mut running: Vec<std::thread::JoinHandle<bool>> = Vec::new();
    for b in list {
        let barrier = serial || runtime::load(&b).is_ok_and(|rt| is_barrier(&rt));
        if barrier {
            started += running.drain(..).map(joined).sum::<usize>();
        }
        let t = std::thread::spawn(move || {
            let name = crate::onboot::bundle_name(&b);
            let r = wait_ordering(&name, &policy_of(&b)).and_then(|()| start(&b));
            set_outcome(&name, r.is_ok());
            match r {
                Ok(()) => {
                    info!("service {name}: started");
                    true
                }
                Err(e) => {
                    warn!("service {name}: FAILED to start: {e}");
                    false
                }
            }
        });
        if barrier {
            started += joined(t);
        } else {
            running.push(t);
        }
    }
    started += running.into_iter().map(joined).sum::<usize>();
    (total, started)
}

/// How long a service waits for the services and paths it is ordered
/// after before it fails to start.
const ORDER_LIMIT: Duration = Duration::from_secs(120);

/// Whether each service started, as the boot's start threads learn it
/// (for the services ordered after it).
static OUTCOMES: Mutex<Option<std::collections::HashMap<String, bool>>> = Mutex::new(None);

fn set_outcome(name: &str, ok: bool) {
    let mut o = OUTCOMES.lock().unwrap_or_else(|e| e.into_inner());
    o.get_or_insert_with(Default::default)
        .insert(name.to_string(), ok);
}

fn outcome(name: &str) -> Option<bool> {
    let o = OUTCOMES.lock().unwrap_or_else(|e| e.into_inner());
    o.as_ref().and_then(|m| m.get(name).copied())
}

/// A service's restart policy and ordering, from the annotations of its
/// bundle's spec ([`linuxkit_config::service_policy`]); a value `linuxkit
/// build` did not check (a bundle made otherwise) is reported and
/// ignored.
pub fn policy_of(bundle: &Path) -> ServicePolicy {
    let name = crate::onboot::bundle_name(bundle);
    let annotations: std::collections::BTreeMap<String, String> =
        fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("annotations").cloned())
            .and_then(|a| serde_json::from_value(a).ok())
            .unwrap_or_default();
    ServicePolicy::from_annotations(&annotations).unwrap_or_else(|(_, e)| {
        warn!("service {name}: {e}; ignored");
        ServicePolicy::default()
    })
}

/// Waits until the services `policy` names are running and its paths
/// exist (up to [`ORDER_LIMIT`]); fails if one of them cannot be.
fn wait_ordering(name: &str, policy: &ServicePolicy) -> io::Result<()> {
    if policy.after.is_empty() && policy.wait_for.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let late = |what: &str| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} after {} s", ORDER_LIMIT.as_secs()),
        )
    };
    for dep in &policy.after {
        let bundle = Path::new(SERVICES_DIR).join(dep);
        let ns = runtime::load(&bundle)
            .map(|rt| namespace_of(&rt))
            .unwrap_or_else(|_| NAMESPACE.to_string());
        let mut c = client(&ns)?;
        loop {
            if outcome(dep) == Some(false) {
                return Err(io::Error::other(format!(
                    "it starts after {dep} ({}), which FAILED to start",
                    linuxkit_config::service_policy::AFTER
                )));
            }
            if c.get_task(dep).is_ok_and(|p| p.status() == Status::Running) {
                break;
            }
            if start.elapsed() >= ORDER_LIMIT {
                return Err(late(&format!("{dep} is not running")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for p in &policy.wait_for {
        while fs::symlink_metadata(p).is_err() {
            if start.elapsed() >= ORDER_LIMIT {
                return Err(late(&format!("{p} does not exist")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut what = policy.after.clone();
    what.extend(policy.wait_for.iter().cloned());
    info!("service {name}: starting after {}", what.join(", "));
    Ok(())
}

/// How many times each service was restarted by its policy.
static RESTARTS: Mutex<Option<std::collections::HashMap<String, u32>>> = Mutex::new(None);

/// After service `id` exited with `status`: restarts it if its policy
/// says so, after a back-off, saying so on the console and in its log.
/// Returns whether it will be restarted.
fn restart_by_policy(id: &str, status: u32) -> bool {
    let bundle = Path::new(SERVICES_DIR).join(id);
    let policy = policy_of(&bundle).restart;
    let n = {
        let mut r = RESTARTS.lock().unwrap_or_else(|e| e.into_inner());
        let counts = r.get_or_insert_with(Default::default);
        let done = counts.get(id).copied().unwrap_or(0);
        if !policy.restarts(status, done) {
            if policy.limit().is_some_and(|l| done >= l && status != 0) {
                warn!("service {id}: not restarted again, its {done} restarts are spent");
            }
            return false;
        }
        counts.insert(id.to_string(), done + 1);
        done + 1
    };
    let wait = linuxkit_config::service_policy::backoff(n);
    let of = policy
        .limit()
        .map(|l| format!(" of {l}"))
        .unwrap_or_default();
    let msg = format!(
        "service {id}: restarting in {} s (restart {n}{of}, exit status {status})",
        wait.as_secs()
    );
    info!("{msg}");
    crate::memlogd::say_as(id, &format!("linuxkit: {msg}"));
    let id = id.to_string();
    std::thread::spawn(move || {
        std::thread::sleep(wait);
        if SHUTTING_DOWN.load(Ordering::SeqCst) {
            return;
        }
        match start(&bundle) {
            Ok(()) => info!("service {id}: restarted (restart {n}{of})"),
            Err(e) => warn!("service {id}: FAILED to restart: {e}"),
        }
    });
    true
}

/// Whether a service must start alone ([`start_all`]): it binds a
/// namespace to a path or sets up network interfaces, which later services
/// may rely on.
fn is_barrier(rt: &linuxkit_config::RuntimeJson) -> bool {
    runtime::needs_process_step(rt)
}

/// A thread that follows containerd's events and says on the console when
/// a service's task exits (the reference stays silent). Returns once the
/// subscription is on its way, so a service that dies at once is seen.
fn watch_exits() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let events = client(NAMESPACE).and_then(|c| Ok(c.subscribe()?));
        let _ = tx.send(());
        let mut events = match events {
            Ok(ev) => ev,
            Err(e) => {
                warn!("watching services: {e}");
                return;
            }
        };
        loop {
            let env = match events.next_event() {
                Some(Ok(env)) => env,
                Some(Err(e)) => {
                    if !SHUTTING_DOWN.load(Ordering::SeqCst) {
                        warn!("watching services: {e}");
                    }
                    return;
                }
                None => return,
            };
            let Some((id, status)) = containerd::task_exit(&env) else {
                continue;
            };
            if SHUTTING_DOWN.load(Ordering::SeqCst) {
                continue;
            }
            if fs::remove_file(stopping_marker(&id)).is_ok() {
                info!("service {id}: stopped (exit status {status})");
                continue;
            } else if status == 0 {
                info!("service {id}: exited 0");
            } else {
                warn!("service {id}: FAILED, exited with status {status}");
                print_log_tail(&id, 10);
            }
            restart_by_policy(&id, status);
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(5));
}

/// Prints the last `n` lines of a service's output (stdout and stderr,
/// from the log daemon, else its file), so a failure can be understood
/// from the console alone.
fn print_log_tail(name: &str, n: usize) {
    let (what, tail) = if crate::memlogd::running() {
        let out = format!("{name}.out");
        let sources = [name, out.as_str()];
        // The exit reaches us through the shim and containerd; the daemon
        // has almost always read the last output by then, but is given a
        // moment when it has nothing yet.
        let mut tail = Vec::new();
        for _ in 0..5 {
            tail = crate::memlogd::tail(&sources, n)
                .map(|v| v.into_iter().map(|e| e.msg).collect())
                .unwrap_or_default();
            if !tail.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (format!("{name} (logread)"), tail)
    } else {
        let path = format!("/var/log/{name}.log");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let tail = lines[lines.len().saturating_sub(n)..].to_vec();
        (path, tail)
    };
    if tail.is_empty() {
        return;
    }
    let mut out = format!("--- last lines of {what} ---\n");
    for l in &tail {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("---\n");
    eprint!("{out}");
}

/// `service ls|start|stop|restart [NAME...]`: managing services from a
/// shell inside the machine.
pub fn service_main(args: &[String]) -> i32 {
    let usage = "usage: service ls | start NAME... | stop NAME... | restart NAME... | pause NAME... | resume NAME... | pids NAME | ps NAME";
    let Some(verb) = args.first() else {
        eprintln!("{usage}");
        return 2;
    };
    let names = &args[1..];
    let bundle = |n: &String| Path::new(SERVICES_DIR).join(n);
    let mut rc = 0;
    match verb.as_str() {
        "ls" | "list" => match list() {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("service ls: {e}");
                return 1;
            }
        },
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
        "pause" | "resume" if !names.is_empty() => {
            for n in names {
                let r = task_client(n).and_then(|mut c| {
                    let r = if verb == "pause" {
                        c.pause_task(n)
                    } else {
                        c.resume_task(n)
                    };
                    r.map_err(|e| io::Error::other(e.to_string()))
                });
                if let Err(e) = r {
                    eprintln!("service {verb} {n}: {e}");
                    rc = 1;
                }
            }
        }
        "pids" | "ps" if names.len() == 1 => {
            let n = &names[0];
            let pids = task_client(n)
                .and_then(|mut c| c.list_pids(n).map_err(|e| io::Error::other(e.to_string())));
            match pids {
                Ok(pids) if verb == "pids" => {
                    for p in pids {
                        println!("{p}");
                    }
                }
                Ok(pids) => print!("{}", ps_table(&pids)),
                Err(e) => {
                    eprintln!("service {verb} {n}: {e}");
                    return 1;
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

/// A client in the namespace of service `name` (runtime.json's, or the
/// services').
fn task_client(name: &str) -> io::Result<Client> {
    let bundle = Path::new(SERVICES_DIR).join(name);
    if !bundle.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no service {name} in {SERVICES_DIR}"),
        ));
    }
    client(&namespace_of(&runtime::load(&bundle)?))
}

/// `service ps`'s table: each pid with its command line, from `/proc`
/// (the tool must see the host's pids: `pid: host`, as the getty has).
fn ps_table(pids: &[u32]) -> String {
    let mut out = String::from("PID\tCOMMAND\n");
    for p in pids {
        let cmd = fs::read(format!("/proc/{p}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let cmd = if cmd.is_empty() { "?".to_string() } else { cmd };
        out.push_str(&format!("{p}\t{cmd}\n"));
    }
    out
}

/// `service ls`'s table: each container of the services' namespace with
/// its task's pid and state (as `ctr task ls` printed them), a container
/// without a task as `-`.
fn list() -> io::Result<String> {
    let mut c = client(NAMESPACE)?;
    // Tasks.List names each task by `id` (the container's id) and leaves
    // `container_id` empty.
    let tasks = c.list_tasks()?;
    let task_id = |t: &containerd::proto::Process| {
        if t.container_id.is_empty() {
            t.id.clone()
        } else {
            t.container_id.clone()
        }
    };
    let mut rows: Vec<(String, String, String)> = tasks
        .iter()
        .map(|t| {
            let status = format!("{:?}", t.status()).to_uppercase();
            (task_id(t), t.pid.to_string(), status)
        })
        .collect();
    for ct in c.list_containers()? {
        if !tasks.iter().any(|t| task_id(t) == ct.id) {
            rows.push((ct.id, "-".into(), "NO TASK".into()));
        }
    }
    rows.sort();
    Ok(table(&rows))
}

fn table(rows: &[(String, String, String)]) -> String {
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
    let mut out = format!("{:<w$}  {:<8} STATUS\n", "TASK", "PID");
    for (n, p, s) in rows {
        out.push_str(&format!("{n:<w$}  {p:<8} {s}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_root_is_made_absolute() {
        let b = Path::new("/containers/services/web");
        let spec = service_from_spec(
            br#"{"root":{"path":"rootfs","readonly":false},"x":1}"#,
            b,
            false,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        assert_eq!(v["root"]["path"], "/containers/services/web/rootfs");
        assert_eq!(v["x"], 1);
        let spec = service_from_spec(br#"{"root":{"path":"/elsewhere"}}"#, b, false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        assert_eq!(v["root"]["path"], "/elsewhere");
        assert!(service_from_spec(b"{", b, false).is_err());
    }

    #[test]
    fn runc_shim_services_share_one_shim_unless_the_spec_says_otherwise() {
        let b = Path::new("/containers/services/web");
        let spec = service_from_spec(br#"{"root":{"path":"rootfs"}}"#, b, true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        assert_eq!(v["annotations"][SHIM_GROUP], "linuxkit-services");
        // LinuxKit's shim: one each, as the reference's services have.
        let spec = service_from_spec(br#"{"root":{"path":"rootfs"}}"#, b, false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        assert!(v.get("annotations").is_none());
        let spec = service_from_spec(
            br#"{"annotations":{"a":"b","io.containerd.runc.v2.group":"mine"}}"#,
            b,
            true,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&spec).unwrap();
        assert_eq!(v["annotations"][SHIM_GROUP], "mine");
        assert_eq!(v["annotations"]["a"], "b");
    }

    #[test]
    fn the_shim_is_ours_unless_the_command_line_asks_for_runcs() {
        let c = crate::cmdline::Cmdline::parse("console=ttyS0");
        assert_eq!(choose_shim(&c), crate::shim::RUNTIME);
        let c = crate::cmdline::Cmdline::parse("linuxkit.shim=bogus");
        assert_eq!(choose_shim(&c), crate::shim::RUNTIME);
        // runc's shim only where the image has it (this test's host may).
        let c = crate::cmdline::Cmdline::parse("linuxkit.shim=runc");
        let expect = if Path::new(RUNC_SHIM).exists() {
            containerd::RUNC_V2
        } else {
            crate::shim::RUNTIME
        };
        assert_eq!(choose_shim(&c), expect);
    }

    #[test]
    fn namespace_binders_start_alone() {
        let mut rt = linuxkit_config::RuntimeJson::default();
        assert!(!is_barrier(&rt));
        rt.bind_ns.net = "/run/netns/web".into();
        assert!(is_barrier(&rt));
    }

    #[test]
    fn ls_table() {
        let rows = vec![
            ("getty".into(), "412".into(), "RUNNING".into()),
            ("nginx-server".into(), "-".into(), "NO TASK".into()),
        ];
        assert_eq!(
            table(&rows),
            "TASK          PID      STATUS\n\
             getty         412      RUNNING\n\
             nginx-server  -        NO TASK\n"
        );
    }

    #[test]
    fn onboot_using_containerd_dirs_is_seen() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("000-mount");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("config.json"), r#"{"process":{"args":["mount"]}}"#).unwrap();
        assert!(!onboot_touches_containerd(d.path()));
        fs::write(
            b.join("runtime.json"),
            r#"{"mounts":[{"destination":"/var/lib/containerd"}]}"#,
        )
        .unwrap();
        assert!(onboot_touches_containerd(d.path()));
    }
}
