//! The few containerd API messages the init uses, declared by hand with
//! `prost` derives.
//!
//! There is no protoc on the build machines (and generating code for
//! containerd's whole API would dwarf what we call), so each message is
//! written out here with the field numbers of containerd's `.proto` files
//! (1.6/1.7 API, the same numbers on every release since 1.0's
//! `v1` services): `api/services/containers/v1/containers.proto`,
//! `api/services/tasks/v1/tasks.proto`, `api/types/task/task.proto`,
//! `api/services/events/v1/events.proto` (`Envelope` moved to
//! `api/types/event.proto` in 2.0 with the same numbers) and
//! `api/events/task.proto`. Fields we never set or read are left out:
//! protobuf decoders skip unknown fields, and absent fields are defaults.

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// Names the message type in `value` (`containerd.events.TaskExit`,
    /// `types.containerd.io/opencontainers/runtime-spec/1/Spec`), which says how
    /// to decode it.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within that second (0 to 999,999,999).
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Empty`: the reply of Start-less calls (Kill, container
/// Delete).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Empty {}

// --- containerd.services.containers.v1 ---

/// `Container.Runtime`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Runtime {
    /// The shim containerd starts for the container's task: ours
    /// ([`crate::shim::RUNTIME`]) or runc's (`io.containerd.runc.v2`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// The shim's options (a [`RuncOptions`] for runc's shim); `None`: the
    /// shim's defaults.
    #[prost(message, optional, tag = "2")]
    pub options: Option<Any>,
}

/// `containerd.runc.v1.Options`, the runc shim's options, of which only
/// `binary_name` is used: the OCI runtime the shim calls instead of `runc`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuncOptions {
    /// The OCI runtime binary the shim runs; empty: `runc` from `PATH`.
    #[prost(string, tag = "6")]
    pub binary_name: String,
}

/// `Container` (labels, snapshot fields, extensions and sandbox left out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    /// The container's name, unique in its containerd namespace (for us,
    /// the service's name).
    #[prost(string, tag = "1")]
    pub id: String,
    /// The image reference the container was made from; informational
    /// only (the bundle is already on disk), and we leave it empty.
    #[prost(string, tag = "3")]
    pub image: String,
    /// Which shim runs the container's task.
    #[prost(message, optional, tag = "4")]
    pub runtime: Option<Runtime>,
    /// The OCI runtime spec (the bundle's `config.json`), typed as
    /// `types.containerd.io/opencontainers/runtime-spec/1/Spec`.
    #[prost(message, optional, tag = "5")]
    pub spec: Option<Any>,
    /// When containerd stored the record; containerd sets it, we never do.
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<Timestamp>,
}

/// Containers.Create's request: stores a container record (no process
/// yet; that is a task).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerRequest {
    /// The record to store.
    #[prost(message, optional, tag = "1")]
    pub container: Option<Container>,
}

/// Containers.Create's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateContainerResponse {
    /// The record as containerd stored it.
    #[prost(message, optional, tag = "1")]
    pub container: Option<Container>,
}

/// Containers.Delete's request: removes a container record, whose task
/// must be gone.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteContainerRequest {
    /// The container to remove.
    #[prost(string, tag = "1")]
    pub id: String,
}

/// Containers.List's request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    /// containerd filter expressions (`id==NAME`), any of which a
    /// container must match; empty lists every container of the namespace.
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

/// Containers.List's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    /// The matching container records.
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

// --- containerd.services.tasks.v1 ---

/// `CreateTaskRequest` without `rootfs` (3), `checkpoint` (8), `options`
/// (9) and `runtime_path` (10): the spec's `root.path` is absolute, so no
/// mounts are needed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTaskRequest {
    /// The container whose task (its init process, created but not
    /// started) to make.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// Where the process's standard input comes from (a file or FIFO
    /// path); empty: none.
    #[prost(string, tag = "4")]
    pub stdin: String,
    /// Where the process's standard output goes (a file or FIFO path);
    /// empty: discarded.
    #[prost(string, tag = "5")]
    pub stdout: String,
    /// Where the process's standard error goes (a file or FIFO path);
    /// empty: discarded.
    #[prost(string, tag = "6")]
    pub stderr: String,
    /// Give the process a pseudo-terminal (then `stdout` carries both
    /// output streams).
    #[prost(bool, tag = "7")]
    pub terminal: bool,
}

/// Tasks.Create's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTaskResponse {
    /// The container the task belongs to.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The task's init process's id, in the init's
    /// (the machine's) PID namespace, not the container's.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
}

/// Tasks.Start's request: starts a created process.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StartRequest {
    /// The container whose task to start.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// An exec'd process of the task; empty: the task's init process.
    #[prost(string, tag = "2")]
    pub exec_id: String,
}

/// Tasks.Start's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StartResponse {
    /// The started process's id, in the init's
    /// (the machine's) PID namespace, not the container's.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// Tasks.Delete's request: removes a stopped task (and, with its shim,
/// the process's state).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteTaskRequest {
    /// The container whose task to delete.
    #[prost(string, tag = "1")]
    pub container_id: String,
}

/// Tasks.Delete's reply: how the task's init process ended.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteResponse {
    /// The container the deleted task belonged to.
    #[prost(string, tag = "1")]
    pub id: String,
    /// The task's init process's id, in the init's
    /// (the machine's) PID namespace, not the container's.
    #[prost(uint32, tag = "2")]
    pub pid: u32,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it.
    #[prost(uint32, tag = "3")]
    pub exit_status: u32,
    /// When the process exited.
    #[prost(message, optional, tag = "4")]
    pub exited_at: Option<Timestamp>,
}

/// The request of Tasks.Pause, Tasks.Resume and Tasks.ListPids: the
/// container whose task (field 1 of `PauseTaskRequest`,
/// `ResumeTaskRequest` and `ListPidsRequest` alike).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskIdRequest {
    /// The container whose task to act on.
    #[prost(string, tag = "1")]
    pub container_id: String,
}

/// A process of a task (`containerd.v1.types.ProcessInfo`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessInfo {
    /// Its pid, in the machine's PID namespace.
    #[prost(uint32, tag = "1")]
    pub pid: u32,
}

/// Tasks.ListPids' reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPidsResponse {
    /// The task's processes.
    #[prost(message, repeated, tag = "1")]
    pub processes: Vec<ProcessInfo>,
}

/// Tasks.Get's request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    /// The container whose task to report.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// An exec'd process of the task; empty: the task's init process.
    #[prost(string, tag = "2")]
    pub exec_id: String,
}

/// Tasks.Get's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetResponse {
    /// The process's state; `None` only if containerd sent none.
    #[prost(message, optional, tag = "1")]
    pub process: Option<Process>,
}

/// Tasks.List's request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksRequest {
    /// A containerd filter expression; empty lists every task of the
    /// namespace.
    #[prost(string, tag = "1")]
    pub filter: String,
}

/// Tasks.List's reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListTasksResponse {
    /// Each task's init process.
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<Process>,
}

/// Tasks.Kill's request: sends a signal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KillRequest {
    /// The container whose task to signal.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// An exec'd process of the task; empty: the task's init process.
    #[prost(string, tag = "2")]
    pub exec_id: String,
    /// The signal number (15 for `SIGTERM`, 9 for `SIGKILL`).
    #[prost(uint32, tag = "3")]
    pub signal: u32,
    /// Signal every process of the container, not only the one named.
    #[prost(bool, tag = "4")]
    pub all: bool,
}

// --- containerd.v1.types (api/types/task/task.proto) ---

/// A task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Status {
    /// containerd does not know, or did not say.
    Unknown = 0,
    /// Created, not started yet.
    Created = 1,
    /// Started and not exited.
    Running = 2,
    /// Exited; `exit_status` is valid.
    Stopped = 3,
    /// Frozen (the cgroup freezer); resumes where it stopped.
    Paused = 4,
    /// Being frozen.
    Pausing = 5,
}

/// `Process`: a task as Tasks.Get and Tasks.List report it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Process {
    /// The container the process belongs to.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The process's exec id (the container's id for the task's init
    /// process).
    #[prost(string, tag = "2")]
    pub id: String,
    /// The process's id, in the init's
    /// (the machine's) PID namespace, not the container's.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    /// A [`Status`], stored as its number (prost keeps enumerations as
    /// `i32`; the derived `status()` decodes it).
    #[prost(enumeration = "Status", tag = "4")]
    pub status: i32,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it. Valid only when stopped.
    #[prost(uint32, tag = "9")]
    pub exit_status: u32,
}

// --- containerd.services.events.v1 and containerd.events ---

/// Events.Subscribe's request: a stream of the events that match.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    /// Filter expressions on the envelope (`topic=="/tasks/exit"`), any
    /// of which an event must match; empty: every event.
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

/// One event of the Events.Subscribe stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// When the event was published.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The containerd namespace the event happened in.
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// What happened (`/tasks/exit`, ...); it says what type `event` is.
    #[prost(string, tag = "3")]
    pub topic: String,
    /// The event message itself.
    #[prost(message, optional, tag = "4")]
    pub event: Option<Any>,
}

/// The event of topic `/tasks/exit` (`containerd.events.TaskExit`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskExit {
    /// The container whose process exited.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The exited process's exec id (the container's id for the task's
    /// init process).
    #[prost(string, tag = "2")]
    pub id: String,
    /// The exited process's id, in the init's
    /// (the machine's) PID namespace, not the container's.
    #[prost(uint32, tag = "3")]
    pub pid: u32,
    /// The exit status: the process's exit code, or 128 plus the signal
    /// number if a signal ended it.
    #[prost(uint32, tag = "4")]
    pub exit_status: u32,
    /// When the process exited.
    #[prost(message, optional, tag = "5")]
    pub exited_at: Option<Timestamp>,
}
