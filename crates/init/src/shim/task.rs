//! The task service (`containerd.task.v2.Task`): what containerd asks of
//! a shim for each container, done by running the OCI runtime (crun or
//! runc, [`OciRuntime::chosen`]) the way containerd's runc shim does:
//! `create` with a pid file, `start`, `kill`, `delete`, each with a JSON
//! log from which a failure's message is read.
//!
//! A task's output goes to files or FIFOs handed to the container as
//! they are, or to a logging binary (`binary://`, as containerd's runc
//! shim does), which is how the services reach the log daemon.
//!
//! Only what LinuxKit's services need is implemented: no terminal, no
//! rootfs mounts (a service's spec names its root directory), no exec,
//! checkpoint, update or stats. Those calls fail with `Unimplemented` and
//! a message naming `linuxkit.shim=runc`, which brings back containerd's
//! own shim for them.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use prost::Message;

use super::proto::*;
use super::reaper::Reaper;
use super::ttrpc::{CallError, code};
use crate::oci_runtime::{Invocation, OciRuntime};

/// The ttrpc service name containerd 1.6/1.7 calls.
pub const SERVICE: &str = "containerd.task.v2.Task";

const UNSUPPORTED: &str =
    "not supported by LinuxKit's shim (boot with linuxkit.shim=runc for containerd's runc shim)";

/// One container's first process.
struct Task {
    bundle: String,
    pid: u32,
    status: Status,
    stdio: [String; 3],
    /// Exit status and time, once reaped.
    exit: Option<(u32, Timestamp)>,
    /// A Start is running: its TaskStart event must precede TaskExit.
    starting: bool,
}

/// The shim's tasks, and how it reaches the runtime and containerd.
pub struct Tasks {
    namespace: String,
    /// The runtime's state directory (`--root`), per namespace as
    /// containerd's runc shim has it.
    root: PathBuf,
    runtime: OciRuntime,
    tasks: Mutex<HashMap<String, Task>>,
    changed: Condvar,
    reaper: OnceLock<Arc<Reaper>>,
    events: Sender<Envelope>,
}

/// The OCI runtime's state directory (`--root`) for the tasks of
/// `namespace`, where containerd's runc shim keeps it.
pub fn runtime_root(namespace: &str) -> PathBuf {
    Path::new("/run/containerd/runc").join(namespace)
}

/// The current wall-clock time, for events' and exits' timestamps.
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn decode<M: Message + Default>(payload: &[u8]) -> Result<M, CallError> {
    M::decode(payload).map_err(|e| CallError::new(code::INVALID_ARGUMENT, e.to_string()))
}

fn not_found(id: &str) -> CallError {
    CallError::new(code::NOT_FOUND, format!("task {id} not found"))
}

fn no_exec(exec_id: &str) -> Result<(), CallError> {
    if exec_id.is_empty() {
        Ok(())
    } else {
        Err(CallError::new(
            code::NOT_FOUND,
            format!("exec process {exec_id} not found: exec is {UNSUPPORTED}"),
        ))
    }
}

impl Tasks {
    /// No tasks yet, for containerd's `namespace`, run with `runtime`;
    /// task events are sent to `events` (forwarded to containerd). Call
    /// [`Tasks::set_reaper`] before serving.
    pub fn new(namespace: &str, runtime: OciRuntime, events: Sender<Envelope>) -> Tasks {
        Tasks {
            namespace: namespace.to_string(),
            root: runtime_root(namespace),
            runtime,
            tasks: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            reaper: OnceLock::new(),
            events,
        }
    }

    /// The reaper that runs the OCI runtime and reports the tasks' exits;
    /// set once, before the first call (a second call is ignored).
    pub fn set_reaper(&self, reaper: Arc<Reaper>) {
        let _ = self.reaper.set(reaper);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Task>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the shim serves no task (so Shutdown may end it).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Queues an event for containerd (sent in order by the publisher).
    fn publish<M: Message>(&self, topic: &str, type_name: &str, event: &M) {
        let env = Envelope {
            timestamp: Some(now()),
            namespace: self.namespace.clone(),
            topic: topic.into(),
            event: Some(Any {
                type_url: format!("containerd.events.{type_name}"),
                value: event.encode_to_vec(),
            }),
        };
        let _ = self.events.send(env);
    }

    fn publish_exit(&self, id: &str, t: &Task) {
        if let Some((status, at)) = t.exit {
            self.publish(
                "/tasks/exit",
                "TaskExit",
                &TaskExit {
                    container_id: id.into(),
                    id: id.into(),
                    pid: t.pid,
                    exit_status: status,
                    exited_at: Some(at),
                },
            );
        }
    }

    /// The reaper's report of a process that ended: if it is a task's,
    /// the task has stopped.
    pub fn exited(&self, pid: i32, status: u32) {
        let mut tasks = self.lock();
        let Some((id, t)) = tasks
            .iter_mut()
            .find(|(_, t)| t.pid == pid as u32 && t.exit.is_none())
        else {
            return;
        };
        t.exit = Some((status, now()));
        t.status = Status::Stopped;
        if !t.starting {
            let id = id.clone();
            self.publish_exit(&id, &tasks[&id]);
        }
        self.changed.notify_all();
    }

    /// The runtime's command line up to the subcommand: state root, and a
    /// JSON log in the bundle for its error messages.
    fn runtime(&self, bundle: &str, what: Invocation, args: &[&str]) -> Command {
        let mut cmd = self.runtime.command(what);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(Path::new(bundle).join("log.json"))
            .arg("--log-format")
            .arg("json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs the runtime; a failure carries the last message this run wrote
    /// to its log (the log is the bundle's, shared by all runs).
    fn run(&self, bundle: &str, mut cmd: Command, what: &str) -> Result<(), CallError> {
        let reaper = self.reaper.get().expect("the reaper is set at start");
        let log = Path::new(bundle).join("log.json");
        let before = fs::metadata(&log).map_or(0, |m| m.len());
        let status = reaper.run(&mut cmd).map_err(|e| {
            CallError::new(
                code::INTERNAL,
                format!("{what}: running {}: {e}", self.runtime.path),
            )
        })?;
        if status == 0 {
            return Ok(());
        }
        let msg = last_log_message(&log, before).unwrap_or_else(|| format!("exit status {status}"));
        Err(CallError::new(
            code::INTERNAL,
            format!("{what}: {}: {msg}", self.runtime.name),
        ))
    }

    /// Serves one call.
    pub fn handle(
        &self,
        service: &str,
        method: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        if service != SERVICE {
            return Err(CallError::new(
                code::UNIMPLEMENTED,
                format!("service {service} is not served here"),
            ));
        }
        let empty = || Empty {}.encode_to_vec();
        Ok(match method {
            "Create" => self.create(decode(payload)?)?.encode_to_vec(),
            "Start" => self.start(decode(payload)?)?.encode_to_vec(),
            "State" => self.state(decode(payload)?)?.encode_to_vec(),
            "Wait" => self.wait(decode(payload)?)?.encode_to_vec(),
            "Kill" => self.kill(decode(payload)?).map(|()| empty())?,
            "Delete" => self.delete(decode(payload)?)?.encode_to_vec(),
            "Pids" => self.pids(decode(payload)?)?.encode_to_vec(),
            "Pause" => self.pause(decode(payload)?, true).map(|()| empty())?,
            "Resume" => self.pause(decode(payload)?, false).map(|()| empty())?,
            "Connect" => self.connect(decode(payload)?).encode_to_vec(),
            // Stdio is handed to the container as files: nothing to close.
            "CloseIO" | "Shutdown" => empty(),
            other => {
                return Err(CallError::new(
                    code::UNIMPLEMENTED,
                    format!("{other} is {UNSUPPORTED}"),
                ));
            }
        })
    }

    fn create(&self, req: CreateTaskRequest) -> Result<PidResponse, CallError> {
        let unsupported = if req.terminal {
            Some("a terminal")
        } else if !req.rootfs.is_empty() {
            Some("rootfs mounts (a container from an image snapshot)")
        } else if !req.checkpoint.is_empty() {
            Some("restoring a checkpoint")
        } else {
            None
        };
        if let Some(what) = unsupported {
            return Err(CallError::new(
                code::UNIMPLEMENTED,
                format!("{what} is {UNSUPPORTED}"),
            ));
        }
        if self.lock().contains_key(&req.id) {
            return Err(CallError::new(
                code::ALREADY_EXISTS,
                format!("task {} already exists", req.id),
            ));
        }
        let stdio = if req.stdout.starts_with("binary://") {
            self.binary_logger(&req.id, &req.stdout, &req.stdin)
        } else {
            open_stdio(&req.stdin, &req.stdout, &req.stderr)
        }
        .map_err(|e| CallError::new(code::INVALID_ARGUMENT, format!("the task's stdio: {e}")))?;
        let pid_file = Path::new(&req.bundle).join("init.pid");
        let mut cmd = self.runtime(
            &req.bundle,
            Invocation::Create(Path::new(&req.bundle)),
            &["create", "--bundle", &req.bundle, "--pid-file"],
        );
        cmd.arg(&pid_file).arg(&req.id);
        let [i, o, e] = stdio;
        cmd.stdin(i).stdout(o).stderr(e);
        self.run(&req.bundle, cmd, "creating the container")?;
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| {
                CallError::new(
                    code::INTERNAL,
                    format!("{}: no pid after create", pid_file.display()),
                )
            })?;
        let mut tasks = self.lock();
        let t = Task {
            bundle: req.bundle.clone(),
            pid,
            status: Status::Created,
            stdio: [req.stdin.clone(), req.stdout.clone(), req.stderr.clone()],
            exit: None,
            starting: false,
        };
        self.publish(
            "/tasks/create",
            "TaskCreate",
            &TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle,
                io: Some(TaskIo {
                    stdin: req.stdin,
                    stdout: req.stdout,
                    stderr: req.stderr,
                    terminal: false,
                }),
                pid,
            },
        );
        tasks.insert(req.id, t);
        Ok(PidResponse { pid })
    }

    /// containerd's logging-binary protocol, as its runc shim has it: for a
    /// stdout of `binary:///PATH?KEY=VALUE&...`, PATH runs with `KEY
    /// VALUE ...` as arguments, `CONTAINER_ID` and `CONTAINER_NAMESPACE`
    /// in its environment, the task's stdout and stderr readable on its
    /// descriptors 3 and 4, and closes (or writes to) descriptor 5 once
    /// it is ready; the task is created after that. (LinuxKit's services
    /// use the init's `log-forward`, which hands 3 and 4 to the log
    /// daemon.)
    fn binary_logger(&self, id: &str, uri: &str, stdin: &str) -> io::Result<[Stdio; 3]> {
        let rest = uri.trim_start_matches("binary://");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !path.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{uri}: the logging binary must be an absolute path"),
            ));
        }
        let mut cmd = Command::new(path);
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            cmd.arg(k).arg(v);
        }
        cmd.env("CONTAINER_ID", id)
            .env("CONTAINER_NAMESPACE", &self.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let keep = crate::memlogd::hand_fds(
            &mut cmd,
            &[
                std::os::fd::AsFd::as_fd(&out_r),
                std::os::fd::AsFd::as_fd(&err_r),
                std::os::fd::AsFd::as_fd(&ready_w),
            ],
        )?;
        let reaper = self
            .reaper
            .get()
            .expect("the reaper is set at start")
            .clone();
        let child = reaper
            .spawn(&mut cmd)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        drop((keep, out_r, err_r, ready_w));
        // Ready when it closes (or writes to) its end.
        let mut b = [0u8; 1];
        let _ = io::Read::read(&mut File::from(ready_r), &mut b);
        std::thread::spawn(move || reaper.wait(child));
        let input = if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::from(open_fifo_or_file(stdin, true)?)
        };
        Ok([input, Stdio::from(out_w), Stdio::from(err_w)])
    }

    fn start(&self, req: TaskRequest) -> Result<PidResponse, CallError> {
        no_exec(&req.exec_id)?;
        let bundle = {
            let mut tasks = self.lock();
            let t = tasks.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
            if t.status != Status::Created || t.starting {
                return Err(CallError::new(
                    code::FAILED_PRECONDITION,
                    format!("task {} is not in the created state", req.id),
                ));
            }
            t.starting = true;
            t.bundle.clone()
        };
        let res = self.run(
            &bundle,
            self.runtime(&bundle, Invocation::Control, &["start", &req.id]),
            "starting",
        );
        let mut tasks = self.lock();
        let t = tasks.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        t.starting = false;
        res?;
        if t.exit.is_none() {
            t.status = Status::Running;
        }
        let pid = t.pid;
        self.publish(
            "/tasks/start",
            "TaskStart",
            &TaskStart {
                container_id: req.id.clone(),
                pid,
            },
        );
        // An exit reaped during the start is told now, after the start.
        self.publish_exit(&req.id, &tasks[&req.id]);
        Ok(PidResponse { pid })
    }

    fn state(&self, req: TaskRequest) -> Result<StateResponse, CallError> {
        no_exec(&req.exec_id)?;
        let tasks = self.lock();
        let t = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let [stdin, stdout, stderr] = t.stdio.clone();
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: t.bundle.clone(),
            pid: t.pid,
            status: t.status as i32,
            stdin,
            stdout,
            stderr,
            terminal: false,
            exit_status: t.exit.map_or(0, |e| e.0),
            exited_at: t.exit.map(|e| e.1),
            exec_id: String::new(),
        })
    }

    /// Blocks until the task's process has exited.
    fn wait(&self, req: TaskRequest) -> Result<WaitResponse, CallError> {
        no_exec(&req.exec_id)?;
        let mut tasks = self.lock();
        loop {
            let t = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if let Some((exit_status, at)) = t.exit {
                return Ok(WaitResponse {
                    exit_status,
                    exited_at: Some(at),
                });
            }
            tasks = self.changed.wait(tasks).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn kill(&self, req: KillRequest) -> Result<(), CallError> {
        no_exec(&req.exec_id)?;
        let (bundle, pid) = {
            let tasks = self.lock();
            let t = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if t.exit.is_some() && !req.all {
                return Err(CallError::new(
                    code::NOT_FOUND,
                    format!("task {}: process already finished", req.id),
                ));
            }
            (t.bundle.clone(), t.pid)
        };
        if req.all {
            let sig = req.signal.to_string();
            let cmd = self.runtime(
                &bundle,
                Invocation::Control,
                &["kill", "--all", &req.id, &sig],
            );
            return self.run(&bundle, cmd, "killing");
        }
        // SAFETY: kill(2) takes two integers and touches none of our
        // memory. The task was not reaped when checked above. The reaper
        // frees the pid before it records the exit under this lock, so a
        // pid reused in that moment could be hit; pids are handed out in
        // order, so in practice it is not (containerd's runc shim has the
        // same window).
        if unsafe { libc::kill(pid as i32, req.signal as i32) } != 0 {
            let e = io::Error::last_os_error();
            return Err(CallError::new(
                code::INTERNAL,
                format!("task {}: signal {}: {e}", req.id, req.signal),
            ));
        }
        Ok(())
    }

    fn delete(&self, req: TaskRequest) -> Result<DeleteResponse, CallError> {
        no_exec(&req.exec_id)?;
        let (bundle, created) = {
            let tasks = self.lock();
            let t = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if t.exit.is_none() && t.status != Status::Created {
                return Err(CallError::new(
                    code::FAILED_PRECONDITION,
                    format!("task {} is running: kill it first", req.id),
                ));
            }
            (t.bundle.clone(), t.exit.is_none())
        };
        // A created task's process waits for `start`; --force kills it.
        let args: &[&str] = if created {
            &["delete", "--force", &req.id]
        } else {
            &["delete", &req.id]
        };
        self.run(
            &bundle,
            self.runtime(&bundle, Invocation::Control, args),
            "deleting",
        )?;
        let mut tasks = self.lock();
        if created {
            // Wait (a while) for the reaper to see the killed process go.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while tasks.get(&req.id).is_some_and(|t| t.exit.is_none()) {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                tasks = self
                    .changed
                    .wait_timeout(tasks, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let t = tasks.remove(&req.id).ok_or_else(|| not_found(&req.id))?;
        let (exit_status, at) = t.exit.unwrap_or((0, now()));
        self.publish(
            "/tasks/delete",
            "TaskDelete",
            &TaskDelete {
                container_id: req.id.clone(),
                pid: t.pid,
                exit_status,
                exited_at: Some(at),
                id: req.id,
            },
        );
        self.changed.notify_all();
        Ok(DeleteResponse {
            pid: t.pid,
            exit_status,
            exited_at: Some(at),
        })
    }

    /// The processes in the task's cgroup (its first process alone if the
    /// cgroup cannot be read).
    fn pids(&self, req: TaskRequest) -> Result<PidsResponse, CallError> {
        let pid = {
            let tasks = self.lock();
            let t = tasks.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            if t.exit.is_some() {
                return Ok(PidsResponse::default());
            }
            t.pid
        };
        let pids = cgroup_procs(pid).unwrap_or_else(|| vec![pid]);
        Ok(PidsResponse {
            processes: pids.into_iter().map(|pid| ProcessInfo { pid }).collect(),
        })
    }

    fn pause(&self, req: TaskRequest, pause: bool) -> Result<(), CallError> {
        let bundle = {
            let tasks = self.lock();
            tasks
                .get(&req.id)
                .ok_or_else(|| not_found(&req.id))?
                .bundle
                .clone()
        };
        let (verb, what) = if pause {
            ("pause", "pausing")
        } else {
            ("resume", "resuming")
        };
        self.run(
            &bundle,
            self.runtime(&bundle, Invocation::Control, &[verb, &req.id]),
            what,
        )?;
        let mut tasks = self.lock();
        if let Some(t) = tasks.get_mut(&req.id).filter(|t| t.exit.is_none()) {
            t.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        }
        let (topic, name) = if pause {
            ("/tasks/paused", "TaskPaused")
        } else {
            ("/tasks/resumed", "TaskResumed")
        };
        self.publish(
            topic,
            name,
            &TaskPaused {
                container_id: req.id,
            },
        );
        Ok(())
    }

    fn connect(&self, req: TaskRequest) -> ConnectResponse {
        ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: self.lock().get(&req.id).map_or(0, |t| t.pid),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// The pids in the cgroup (v2) of process `pid`.
fn cgroup_procs(pid: u32) -> Option<Vec<u32>> {
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let procs = fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.procs")).ok()?;
    Some(
        procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
    )
}

/// The `msg` of the last line of a runtime's JSON log written after byte
/// `from`.
fn last_log_message(path: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek};
    let mut f = File::open(path).ok()?;
    f.seek(io::SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    text.lines().rev().find_map(|l| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()?
            .get("msg")?
            .as_str()
            .map(str::to_string)
    })
}

/// Opens the task's stdio as containerd names it: nothing (`/dev/null`),
/// a `file://` URI (appended to, as containerd's shim does), or the path
/// of a FIFO the client made. The files go to the container as they are:
/// no copying through the shim.
fn open_stdio(stdin: &str, stdout: &str, stderr: &str) -> io::Result<[Stdio; 3]> {
    let input = if stdin.is_empty() {
        Stdio::null()
    } else {
        Stdio::from(open_fifo_or_file(stdin, true)?)
    };
    let out = open_output(stdout)?;
    let err = if stderr == stdout {
        match &out {
            Some(f) => Some(f.try_clone()?),
            None => None,
        }
    } else {
        open_output(stderr)?
    };
    let to_stdio = |f: Option<File>| f.map_or_else(Stdio::null, Stdio::from);
    Ok([input, to_stdio(out), to_stdio(err)])
}

fn open_output(uri: &str) -> io::Result<Option<File>> {
    if uri.is_empty() {
        return Ok(None);
    }
    open_fifo_or_file(uri, false).map(Some)
}

fn open_fifo_or_file(uri: &str, input: bool) -> io::Result<File> {
    if let Some(path) = uri.strip_prefix("file://") {
        if let Some(dir) = Path::new(path).parent() {
            fs::create_dir_all(dir)?;
        }
        return OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")));
    }
    if uri.contains("://") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{uri}: only file:// URIs and FIFO paths are {UNSUPPORTED}"),
        ));
    }
    // A FIFO opened read-write does not wait for its other end.
    let is_fifo = fs::metadata(uri).is_ok_and(|m| m.file_type().is_fifo());
    OpenOptions::new()
        .read(input || is_fifo)
        .write(!input || is_fifo)
        .open(uri)
        .map_err(|e| io::Error::new(e.kind(), format!("{uri}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_log_gives_the_last_message() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.json");
        fs::write(
            &p,
            "{\"msg\":\"first\",\"level\":\"warning\"}\nnot json\n{\"msg\":\"executable file not found\",\"level\":\"error\"}\n",
        )
        .unwrap();
        assert_eq!(
            last_log_message(&p, 0).as_deref(),
            Some("executable file not found")
        );
        // Only what a run wrote counts: nothing after the end.
        let len = fs::metadata(&p).unwrap().len();
        assert_eq!(last_log_message(&p, len), None);
        assert_eq!(last_log_message(&dir.path().join("none"), 0), None);
    }

    #[test]
    fn stdio_uris_open_files_and_refuse_other_schemes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/svc.log");
        let uri = format!("file://{}", log.display());
        open_stdio("", &uri, &uri).unwrap();
        assert!(log.exists(), "file:// creates the log");
        let e = open_output("binary:///usr/bin/logger").unwrap_err();
        assert!(e.to_string().contains("linuxkit.shim=runc"), "{e}");
    }

    #[test]
    fn calls_beyond_the_services_needs_say_what_to_do() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let t = Tasks::new("services.linuxkit", crate::oci_runtime::RUNC, tx);
        let e = t.handle(SERVICE, "Exec", &[]).unwrap_err();
        assert_eq!(e.code, code::UNIMPLEMENTED);
        assert!(e.message.contains("linuxkit.shim=runc"), "{}", e.message);
        let e = t.handle("other.Service", "State", &[]).unwrap_err();
        assert_eq!(e.code, code::UNIMPLEMENTED);
        let req = TaskRequest {
            id: "nope".into(),
            exec_id: String::new(),
        };
        let e = t
            .handle(SERVICE, "State", &req.encode_to_vec())
            .unwrap_err();
        assert_eq!(e.code, code::NOT_FOUND);
        let req = CreateTaskRequest {
            id: "tty".into(),
            terminal: true,
            ..Default::default()
        };
        let e = t
            .handle(SERVICE, "Create", &req.encode_to_vec())
            .unwrap_err();
        assert!(e.message.contains("terminal"), "{}", e.message);
    }
}
