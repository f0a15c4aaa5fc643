//! The messages of the shim API (`containerd.task.v2.Task`, containerd
//! 1.6/1.7's `runtime/v2/task/shim.proto`), of ttrpc's envelope
//! (`ttrpc/request.proto`) and of the task events a shim publishes
//! (`api/events/task.proto`), declared by hand like
//! [`crate::containerd::proto`], whose shared types they use. Fields the
//! shim never reads or writes are left out.

pub use crate::containerd::proto::{Any, Empty, Envelope, Status, TaskExit, Timestamp};

// --- ttrpc ---

/// `ttrpc.Request`: one call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    /// The service called (`containerd.task.v2.Task`).
    #[prost(string, tag = "1")]
    pub service: String,
    /// The method called (`Create`, `Start`, `Wait`, ...).
    #[prost(string, tag = "2")]
    pub method: String,
    /// The method's request message, encoded.
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// How long the caller will wait, in nanoseconds; 0: no deadline.
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    /// Key/value pairs the caller attaches (containerd's namespace among
    /// them); the shim does not read them.
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

/// `ttrpc.KeyValue`: request metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The metadata's name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The metadata's value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `ttrpc.Response`: a call's result.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    /// The error if the call failed; `None` or code 0: it succeeded.
    #[prost(message, optional, tag = "1")]
    pub status: Option<RpcStatus>,
    /// The method's reply message, encoded; empty when the call failed.
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// `google.rpc.Status` (without `details`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A gRPC status code (0 OK, 5 NotFound, 12 Unimplemented, ...).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong, for people.
    #[prost(string, tag = "2")]
    pub message: String,
}

// --- containerd.task.v2 ---

/// `containerd.types.Mount`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Mount {
    /// The file system type (`overlay`, `bind`, ...).
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// What is mounted (a device, a directory).
    #[prost(string, tag = "2")]
    pub source: String,
}

/// Create's request: make a container's init process from its bundle,
/// without starting it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTaskRequest {
    /// The container's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The bundle directory (`config.json` and the root filesystem).
    #[prost(string, tag = "2")]
    pub bundle: String,
    /// Mounts to assemble the root filesystem from; must be empty (a
    /// service's spec names its root directory; anything else is refused).
    #[prost(message, repeated, tag = "3")]
    pub rootfs: Vec<Mount>,
    /// Give the process a pseudo-terminal (then `stdout` carries both
    /// output streams).
    #[prost(bool, tag = "4")]
    pub terminal: bool,
    /// Where the process's standard input comes from (a FIFO or file
    /// path); empty: none.
    #[prost(string, tag = "5")]
    pub stdin: String,
    /// Where the process's standard output goes (a FIFO or file path);
    /// empty: discarded.
    #[prost(string, tag = "6")]
    pub stdout: String,
    /// Where the process's standard error goes (a FIFO or file path);
    /// empty: discarded.
    #[prost(string, tag = "7")]
    pub stderr: String,
    /// A checkpoint to restore from; must be empty (restoring is refused).
    #[prost(string, tag = "8")]
    pub checkpoint: String,
}

/// The reply of Create and Start (`CreateTaskResponse`, `StartResponse`:
/// both only a pid, field 1).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PidResponse {
    /// The task's init process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// The request of State, Start, Delete and Wait (`StateRequest`,
/// `StartRequest`, `DeleteRequest`, `WaitRequest`: `id`, `exec_id`), and
/// of the calls with only an `id` (Pids, Pause, Resume, Connect, Stats).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskRequest {
    /// The container's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// An exec'd process; empty: the task's init process (the only kind
    /// this shim runs).
    #[prost(string, tag = "2")]
    pub exec_id: String,
}

/// Delete's reply: how the deleted process ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteResponse {
    /// The process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it.
    #[prost(uint32, tag = "2")]
    pub exit_status: u32,
    /// When the process exited.
    #[prost(message, optional, tag = "3")]
    pub exited_at: Option<Timestamp>,
}

/// State's reply: what a process is doing.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StateResponse {
    /// The container's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The bundle directory the task was created from.
    #[prost(string, tag = "2")]
    pub bundle: String,
    /// The process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    /// A [`Status`], stored as its number (prost keeps enumerations as
    /// `i32`).
    #[prost(enumeration = "Status", tag = "4")]
    pub status: i32,
    /// The standard input path given at Create.
    #[prost(string, tag = "5")]
    pub stdin: String,
    /// The standard output path given at Create.
    #[prost(string, tag = "6")]
    pub stdout: String,
    /// The standard error path given at Create.
    #[prost(string, tag = "7")]
    pub stderr: String,
    /// Whether the process has a pseudo-terminal.
    #[prost(bool, tag = "8")]
    pub terminal: bool,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it. Valid only when stopped.
    #[prost(uint32, tag = "9")]
    pub exit_status: u32,
    /// When the process exited; `None` while it runs.
    #[prost(message, optional, tag = "10")]
    pub exited_at: Option<Timestamp>,
    /// The process's exec id; empty: the task's init process (the only
    /// kind this shim runs).
    #[prost(string, tag = "11")]
    pub exec_id: String,
}

/// Kill's request: sends a signal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KillRequest {
    /// The container's id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// An exec'd process; empty: the task's init process.
    #[prost(string, tag = "2")]
    pub exec_id: String,
    /// The signal number (15 for `SIGTERM`, 9 for `SIGKILL`).
    #[prost(uint32, tag = "3")]
    pub signal: u32,
    /// Signal every process of the container, not only the one named.
    #[prost(bool, tag = "4")]
    pub all: bool,
}

/// Wait's reply, sent once the process has exited.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WaitResponse {
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it.
    #[prost(uint32, tag = "1")]
    pub exit_status: u32,
    /// When the process exited.
    #[prost(message, optional, tag = "2")]
    pub exited_at: Option<Timestamp>,
}

/// `containerd.v1.types.ProcessInfo` (without `info`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessInfo {
    /// A process of the container, by its id in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// Pids's reply: the container's processes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PidsResponse {
    /// Every process in the container's cgroup.
    #[prost(message, repeated, tag = "1")]
    pub processes: Vec<ProcessInfo>,
}

/// Connect's reply: who serves the task.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectResponse {
    /// The shim's own process id.
    #[prost(uint32, tag = "1")]
    pub shim_pid: u32,
    /// The task's init process's id; 0 if the shim has no such task.
    #[prost(uint32, tag = "2")]
    pub task_pid: u32,
    /// The shim's version (this crate's).
    #[prost(string, tag = "3")]
    pub version: String,
}

/// Shutdown's request: the shim exits if it serves no task (else it
/// keeps serving them).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ShutdownRequest {
    /// The container the caller is done with.
    #[prost(string, tag = "1")]
    pub id: String,
    /// In containerd's API, exit even if tasks are left; this shim ignores
    /// it and never leaves a running task behind.
    #[prost(bool, tag = "2")]
    pub now: bool,
}

// --- containerd.services.events.ttrpc.v1 and containerd.events ---

/// `ForwardRequest`: an event a shim hands to containerd.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardRequest {
    /// The event, with its topic and namespace.
    #[prost(message, optional, tag = "1")]
    pub envelope: Option<Envelope>,
}

/// `TaskIO`, part of [`TaskCreate`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskIo {
    /// The standard input path given at Create; empty: none.
    #[prost(string, tag = "1")]
    pub stdin: String,
    /// The standard output path given at Create; empty: none.
    #[prost(string, tag = "2")]
    pub stdout: String,
    /// The standard error path given at Create; empty: none.
    #[prost(string, tag = "3")]
    pub stderr: String,
    /// Whether the process has a pseudo-terminal.
    #[prost(bool, tag = "4")]
    pub terminal: bool,
}

/// `/tasks/create`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskCreate {
    /// The container whose task was created.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The bundle directory it was created from.
    #[prost(string, tag = "2")]
    pub bundle: String,
    /// Its standard streams.
    #[prost(message, optional, tag = "4")]
    pub io: Option<TaskIo>,
    /// The created init process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "6")]
    pub pid: u32,
}

/// `/tasks/start`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskStart {
    /// The container whose task started.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The started process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
}

/// `/tasks/delete`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskDelete {
    /// The container whose task was deleted.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The deleted process's id, in the init's
    /// (the machine's) PID namespace.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it.
    #[prost(uint32, tag = "3")]
    pub exit_status: u32,
    /// When the process exited.
    #[prost(message, optional, tag = "4")]
    pub exited_at: Option<Timestamp>,
    /// The deleted process's exec id (the container's id for the task's
    /// init process).
    #[prost(string, tag = "5")]
    pub id: String,
}

/// `/tasks/paused` and `/tasks/resumed` (`TaskPaused`, `TaskResumed`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskPaused {
    /// The container whose task was paused or resumed.
    #[prost(string, tag = "1")]
    pub container_id: String,
}
