//! A small containerd client: the handful of gRPC calls the init and the
//! `service` applet make, over containerd's unix socket.
//!
//! Why not `ctr`: it is a 23 MB Go binary (a tenth of the initrd) and every
//! start of a Go program costs about 0.4 s under QEMU TCG; starting a
//! service took three of them (`ctr run`, `ctr task ls` and the readiness
//! `ctr version`). Here a call is one HTTP/2 request on a connection that
//! stays open.
//!
//! The stack is deliberately thin: `h2` for HTTP/2 on a current-thread
//! `tokio` runtime (no thread pool in PID 1), hand-declared `prost`
//! messages ([`proto`]) and gRPC's framing ([`grpc`]). The API is
//! blocking: each [`Client`] owns its runtime and connection, and callers
//! that want concurrency use one client per thread.

pub mod grpc;
pub mod proto;

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use prost::Message;

use self::grpc::Code;
use self::proto::*;

/// The runtime LinuxKit's services run with.
pub const RUNC_V2: &str = "io.containerd.runc.v2";
/// The `type_url` of the runc shim's options ([`RuncOptions`]): the
/// message's full protobuf name, as `typeurl` registers it.
pub const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";
/// The `type_url` containerd expects for an OCI runtime spec stored as
/// JSON in an `Any` (what `typeurl` registers for `specs.Spec`).
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// A single call may not take longer than this: task creation starts a
/// shim and runc, which takes a second or two under TCG; a minute means
/// containerd is stuck, and PID 1 must not hang on it forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong talking to containerd.
#[derive(Debug)]
pub enum Error {
    /// The socket could not be reached.
    Connect(io::Error),
    /// HTTP/2 failed (connection lost, protocol error).
    Transport(String),
    /// containerd answered with a gRPC error.
    Status {
        /// What kind of error (not found, already exists, ...).
        code: Code,
        /// containerd's description of it.
        message: String,
    },
    /// The reply was not what the API says.
    Protocol(String),
    /// No answer within [`CALL_TIMEOUT`].
    Timeout,
}

impl Error {
    /// The gRPC status code, for errors containerd reported.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NOT_FOUND)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "connecting to containerd: {e}"),
            Error::Transport(e) => write!(f, "talking to containerd: {e}"),
            Error::Status { code, message } => write!(f, "containerd: {message} ({code})"),
            Error::Protocol(e) => write!(f, "containerd's reply: {e}"),
            Error::Timeout => write!(
                f,
                "containerd did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::other(e.to_string())
    }
}

impl From<h2::Error> for Error {
    fn from(e: h2::Error) -> Error {
        Error::Transport(e.to_string())
    }
}

/// The result of a call to containerd.
pub type Result<T> = std::result::Result<T, Error>;

/// One connection to containerd, in one namespace.
pub struct Client {
    rt: tokio::runtime::Runtime,
    h2: SendRequest<Bytes>,
    namespace: String,
}

impl Client {
    /// Connects to the socket at `socket`; calls go to `namespace`.
    pub fn connect(socket: &Path, namespace: &str) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Connect)?;
        let h2 = rt.block_on(async {
            let io = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
                Error::Connect(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", socket.display()),
                ))
            })?;
            let (send, conn) = h2::client::handshake(io).await?;
            // The connection is driven whenever this client's runtime runs
            // (inside block_on); it ends when the client is dropped.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, Error>(send)
        })?;
        Ok(Client {
            rt,
            h2,
            namespace: namespace.to_string(),
        })
    }

    /// The namespace calls go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Sends one request message on a new stream; returns the stream's
    /// reply future.
    async fn send(
        h2: &SendRequest<Bytes>,
        namespace: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<h2::client::ResponseFuture> {
        let req = http::Request::builder()
            .method("POST")
            .uri(format!("http://containerd{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("containerd-namespace", namespace)
            .body(())
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let mut send = h2.clone().ready().await?;
        let (reply, mut stream) = send.send_request(req, false)?;
        stream.send_data(Bytes::from(grpc::frame(&body)), true)?;
        Ok(reply)
    }

    /// A unary call: one request, one reply.
    fn call<Req: Message, Resp: Message + Default>(
        &mut self,
        path: &str,
        req: &Req,
    ) -> Result<Resp> {
        let (h2, ns) = (&self.h2, self.namespace.as_str());
        let fut = async move {
            let reply = Self::send(h2, ns, path, req.encode_to_vec()).await?;
            let resp = reply.await?;
            check_headers(&resp)?;
            let mut body = resp.into_body();
            let mut buf = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
                buf.extend_from_slice(&chunk);
            }
            let trailers = body.trailers().await?;
            match trailers.as_ref().and_then(grpc::status) {
                Some((Code::OK, _)) => {}
                Some((code, message)) => return Err(Error::Status { code, message }),
                None => return Err(Error::Protocol(format!("{path}: no grpc-status"))),
            }
            let msg = grpc::next_message(&mut buf)
                .map_err(Error::Protocol)?
                .ok_or_else(|| Error::Protocol(format!("{path}: no reply message")))?;
            Resp::decode(msg).map_err(|e| Error::Protocol(format!("{path}: {e}")))
        };
        self.rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, fut).await })
            .unwrap_or(Err(Error::Timeout))
    }

    /// Containers.Create: a container `id` from an OCI spec (JSON) alone,
    /// no image and no snapshot, run by the shim of `runtime` (a runtime
    /// name such as [`RUNC_V2`]). For the runc shim, `binary` names an OCI
    /// runtime with runc's command line to call instead of `runc`.
    pub fn create_container(
        &mut self,
        id: &str,
        spec_json: Vec<u8>,
        runtime: &str,
        binary: Option<&str>,
    ) -> Result<()> {
        let req = create_container_request(id, spec_json, runtime, binary);
        let _: CreateContainerResponse =
            self.call("/containerd.services.containers.v1.Containers/Create", &req)?;
        Ok(())
    }

    /// Containers.Delete.
    pub fn delete_container(&mut self, id: &str) -> Result<()> {
        let req = DeleteContainerRequest { id: id.into() };
        let _: Empty = self.call("/containerd.services.containers.v1.Containers/Delete", &req)?;
        Ok(())
    }

    /// Containers.List: every container of the namespace.
    pub fn list_containers(&mut self) -> Result<Vec<Container>> {
        let r: ListContainersResponse = self.call(
            "/containerd.services.containers.v1.Containers/List",
            &ListContainersRequest::default(),
        )?;
        Ok(r.containers)
    }

    /// Tasks.Create: the task of container `id`, its stdout and stderr
    /// going to `log_uri` (a `file://` URI, appended to by the shim);
    /// returns its pid (created, not started yet).
    pub fn create_task(&mut self, id: &str, log_uri: &str) -> Result<u32> {
        let req = create_task_request(id, log_uri);
        let r: CreateTaskResponse =
            self.call("/containerd.services.tasks.v1.Tasks/Create", &req)?;
        Ok(r.pid)
    }

    /// Tasks.Start of a created task.
    pub fn start_task(&mut self, id: &str) -> Result<u32> {
        let req = StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        };
        let r: StartResponse = self.call("/containerd.services.tasks.v1.Tasks/Start", &req)?;
        Ok(r.pid)
    }

    /// Tasks.Kill: `signal` to the task's main process.
    pub fn kill_task(&mut self, id: &str, signal: i32) -> Result<()> {
        let req = KillRequest {
            container_id: id.into(),
            exec_id: String::new(),
            signal: signal as u32,
            all: false,
        };
        let _: Empty = self.call("/containerd.services.tasks.v1.Tasks/Kill", &req)?;
        Ok(())
    }

    /// Tasks.Delete of a stopped (or never started) task.
    pub fn delete_task(&mut self, id: &str) -> Result<DeleteResponse> {
        let req = DeleteTaskRequest {
            container_id: id.into(),
        };
        self.call("/containerd.services.tasks.v1.Tasks/Delete", &req)
    }

    /// Tasks.Pause: freezes every process of the task.
    pub fn pause_task(&mut self, id: &str) -> Result<()> {
        let req = TaskIdRequest {
            container_id: id.into(),
        };
        let _: Empty = self.call("/containerd.services.tasks.v1.Tasks/Pause", &req)?;
        Ok(())
    }

    /// Tasks.Resume: thaws a paused task.
    pub fn resume_task(&mut self, id: &str) -> Result<()> {
        let req = TaskIdRequest {
            container_id: id.into(),
        };
        let _: Empty = self.call("/containerd.services.tasks.v1.Tasks/Resume", &req)?;
        Ok(())
    }

    /// Tasks.ListPids: the pids of the task's processes.
    pub fn list_pids(&mut self, id: &str) -> Result<Vec<u32>> {
        let req = TaskIdRequest {
            container_id: id.into(),
        };
        let r: ListPidsResponse =
            self.call("/containerd.services.tasks.v1.Tasks/ListPids", &req)?;
        Ok(r.processes.into_iter().map(|p| p.pid).collect())
    }

    /// Tasks.Get: the task's main process.
    pub fn get_task(&mut self, id: &str) -> Result<Process> {
        let req = GetRequest {
            container_id: id.into(),
            exec_id: String::new(),
        };
        let r: GetResponse = self.call("/containerd.services.tasks.v1.Tasks/Get", &req)?;
        r.process
            .ok_or_else(|| Error::Protocol(format!("Tasks.Get {id}: no process")))
    }

    /// Tasks.List: every task of the namespace.
    pub fn list_tasks(&mut self) -> Result<Vec<Process>> {
        let r: ListTasksResponse = self.call(
            "/containerd.services.tasks.v1.Tasks/List",
            &ListTasksRequest::default(),
        )?;
        Ok(r.tasks)
    }

    /// Events.Subscribe: the stream of containerd's events (every
    /// namespace), from now on. The subscription request is on the wire
    /// when this returns; the stream ends when the connection does.
    pub fn subscribe(self) -> Result<Events> {
        let req = SubscribeRequest::default();
        let (h2, ns) = (&self.h2, self.namespace.as_str());
        let reply = self.rt.block_on(async {
            let reply = Self::send(
                h2,
                ns,
                "/containerd.services.events.v1.Events/Subscribe",
                req.encode_to_vec(),
            )
            .await?;
            // Let the connection task write the request out.
            tokio::task::yield_now().await;
            Ok::<_, Error>(reply)
        })?;
        // containerd sends the reply headers only with the first event, so
        // they are awaited by the first `next`, not here.
        Ok(Events {
            client: self,
            reply: Some(reply),
            body: None,
            buf: BytesMut::new(),
        })
    }
}

/// A reply whose headers already carry a failure ("trailers-only") or that
/// is not a gRPC reply at all.
fn check_headers(resp: &http::Response<h2::RecvStream>) -> Result<()> {
    if resp.status() != http::StatusCode::OK {
        return Err(Error::Protocol(format!("HTTP status {}", resp.status())));
    }
    match grpc::status(resp.headers()) {
        Some((Code::OK, _)) | None => Ok(()),
        Some((code, message)) => Err(Error::Status { code, message }),
    }
}

/// The request [`Client::create_container`] sends.
pub fn create_container_request(
    id: &str,
    spec_json: Vec<u8>,
    runtime: &str,
    binary: Option<&str>,
) -> CreateContainerRequest {
    let binary = binary.filter(|_| runtime == RUNC_V2);
    CreateContainerRequest {
        container: Some(Container {
            id: id.into(),
            runtime: Some(Runtime {
                name: runtime.into(),
                options: binary.map(|b| Any {
                    type_url: RUNC_OPTIONS_TYPE_URL.into(),
                    value: RuncOptions {
                        binary_name: b.into(),
                    }
                    .encode_to_vec(),
                }),
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE_URL.into(),
                value: spec_json,
            }),
            ..Default::default()
        }),
    }
}

/// The request [`Client::create_task`] sends: no stdin, stdout and stderr
/// both to `log_uri` (what `ctr run --log-uri` sends).
pub fn create_task_request(id: &str, log_uri: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        container_id: id.into(),
        stdin: String::new(),
        stdout: log_uri.into(),
        stderr: log_uri.into(),
        terminal: false,
    }
}

/// The stream of [`Client::subscribe`].
pub struct Events {
    client: Client,
    reply: Option<h2::client::ResponseFuture>,
    body: Option<h2::RecvStream>,
    buf: BytesMut,
}

impl Events {
    /// The next event; `None` when the stream has ended cleanly.
    pub fn next_event(&mut self) -> Option<Result<Envelope>> {
        let Events {
            client,
            reply,
            body,
            buf,
        } = self;
        client.rt.block_on(async {
            loop {
                match grpc::next_message(buf) {
                    Err(e) => return Some(Err(Error::Protocol(e))),
                    Ok(Some(m)) => {
                        return Some(
                            Envelope::decode(m).map_err(|e| Error::Protocol(format!("event: {e}"))),
                        );
                    }
                    Ok(None) => {}
                }
                if let Some(r) = reply.take() {
                    let resp = match r.await {
                        Ok(resp) => resp,
                        Err(e) => return Some(Err(e.into())),
                    };
                    if let Err(e) = check_headers(&resp) {
                        return Some(Err(e));
                    }
                    *body = Some(resp.into_body());
                }
                let b = body.as_mut()?;
                match b.data().await {
                    Some(Ok(chunk)) => {
                        let _ = b.flow_control().release_capacity(chunk.len());
                        buf.extend_from_slice(&chunk);
                    }
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {
                        let trailers = b.trailers().await;
                        *body = None;
                        return match trailers.ok().flatten().as_ref().and_then(grpc::status) {
                            Some((Code::OK, _)) | None => None,
                            Some((code, message)) => Some(Err(Error::Status { code, message })),
                        };
                    }
                }
            }
        })
    }
}

impl Iterator for Events {
    type Item = Result<Envelope>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
    }
}

/// The `(container id, exit status)` of a `/tasks/exit` event for a
/// task's main process (an exec's exit has `id` != `container_id`).
pub fn task_exit(env: &Envelope) -> Option<(String, u32)> {
    if env.topic != "/tasks/exit" {
        return None;
    }
    let ev = TaskExit::decode(env.event.as_ref()?.value.as_slice()).ok()?;
    if !ev.id.is_empty() && ev.id != ev.container_id {
        return None;
    }
    Some((ev.container_id, ev.exit_status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_request_golden_bytes() {
        let req = StartRequest {
            container_id: "nginx".into(),
            exec_id: String::new(),
        };
        assert_eq!(
            grpc::frame(&req.encode_to_vec()),
            [0, 0, 0, 0, 7, 0x0a, 5, b'n', b'g', b'i', b'n', b'x']
        );
    }

    #[test]
    fn kill_request_golden_bytes() {
        let req = KillRequest {
            container_id: "web".into(),
            exec_id: String::new(),
            signal: 15,
            all: false,
        };
        // field 1 (len) "web", field 3 (varint) 15.
        assert_eq!(req.encode_to_vec(), [0x0a, 3, b'w', b'e', b'b', 0x18, 15]);
    }

    #[test]
    fn create_container_request_golden_bytes() {
        let req = create_container_request("a", b"{}".to_vec(), RUNC_V2, None);
        let mut want = vec![0x0a]; // CreateContainerRequest.container (1)
        let mut c = vec![0x0a, 1, b'a']; // Container.id (1)
        // Container.runtime (4) { name (1) }
        c.extend([0x22, 2 + RUNC_V2.len() as u8, 0x0a, RUNC_V2.len() as u8]);
        c.extend(RUNC_V2.as_bytes());
        // Container.spec (5) { type_url (1), value (2) }
        let mut any = vec![0x0a, SPEC_TYPE_URL.len() as u8];
        any.extend(SPEC_TYPE_URL.as_bytes());
        any.extend([0x12, 2, b'{', b'}']);
        c.extend([0x2a, any.len() as u8]);
        c.extend(any);
        want.push(c.len() as u8);
        want.extend(c);
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn create_container_request_names_the_runtime_binary() {
        let req = create_container_request("a", b"{}".to_vec(), RUNC_V2, Some("/usr/bin/crun"));
        let rt = req.container.unwrap().runtime.unwrap();
        assert_eq!(rt.name, RUNC_V2);
        let o = rt.options.unwrap();
        assert_eq!(o.type_url, "containerd.runc.v1.Options");
        // containerd.runc.v1.Options.binary_name is field 6 (a string).
        let mut want = vec![0x32, 13];
        want.extend(b"/usr/bin/crun");
        assert_eq!(o.value, want);
        // Another shim gets no runc options.
        let req = create_container_request("a", b"{}".to_vec(), "io.containerd.x.v1", Some("/b"));
        let rt = req.container.unwrap().runtime.unwrap();
        assert_eq!((rt.name.as_str(), rt.options), ("io.containerd.x.v1", None));
    }

    #[test]
    fn create_task_request_golden_bytes() {
        let req = create_task_request("a", "file:///l");
        let mut want = vec![0x0a, 1, b'a'];
        want.extend([0x2a, 9]); // stdout (5)
        want.extend(b"file:///l");
        want.extend([0x32, 9]); // stderr (6)
        want.extend(b"file:///l");
        assert_eq!(req.encode_to_vec(), want);
    }

    #[test]
    fn exit_events_are_decoded() {
        let exit = TaskExit {
            container_id: "nginx".into(),
            id: "nginx".into(),
            pid: 412,
            exit_status: 137,
            exited_at: None,
        };
        let env = |topic: &str, ev: &TaskExit| Envelope {
            timestamp: None,
            namespace: "services.linuxkit".into(),
            topic: topic.into(),
            event: Some(Any {
                type_url: "containerd.events.TaskExit".into(),
                value: ev.encode_to_vec(),
            }),
        };
        // Through the wire format, as the stream delivers it.
        let wire = env("/tasks/exit", &exit).encode_to_vec();
        let back = Envelope::decode(wire.as_slice()).unwrap();
        assert_eq!(task_exit(&back), Some(("nginx".into(), 137)));
        assert_eq!(task_exit(&env("/tasks/start", &exit)), None);
        let exec = TaskExit {
            id: "exec-1".into(),
            ..exit.clone()
        };
        assert_eq!(task_exit(&env("/tasks/exit", &exec)), None);
        // TaskExit's field numbers: container_id 1, id 2, pid 3, exit_status 4.
        assert_eq!(
            TaskExit {
                container_id: "g".into(),
                id: "g".into(),
                pid: 9,
                exit_status: 7,
                exited_at: None
            }
            .encode_to_vec(),
            [0x0a, 1, b'g', 0x12, 1, b'g', 0x18, 9, 0x20, 7]
        );
    }

    #[test]
    fn list_replies_decode() {
        // Tasks.List's reply: tasks (1) of Process {container_id 1, pid 3, status 4}.
        let p = [0x0a, 1, b'x', 0x18, 42, 0x20, 2];
        let mut wire = vec![0x0a, p.len() as u8];
        wire.extend(p);
        let r = ListTasksResponse::decode(wire.as_slice()).unwrap();
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(r.tasks[0].container_id, "x");
        assert_eq!(r.tasks[0].pid, 42);
        assert_eq!(r.tasks[0].status(), Status::Running);
    }

    /// A stand-in containerd: an h2 server on a unix socket answering
    /// Tasks.Start with pid 42, Tasks.Get with a trailers-only NotFound,
    /// and Events.Subscribe with two events, checking the namespace header.
    fn fake_containerd(socket: std::path::PathBuf) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let listener = rt.block_on(async { tokio::net::UnixListener::bind(&socket).unwrap() });
        std::thread::spawn(move || {
            rt.block_on(async move {
                loop {
                    let (sock, _) = listener.accept().await.unwrap();
                    tokio::spawn(async move {
                        let mut conn = h2::server::handshake(sock).await.unwrap();
                        while let Some(Ok((req, mut respond))) = conn.accept().await {
                            let path = req.uri().path().to_string();
                            let ns = req.headers()["containerd-namespace"].clone();
                            assert_eq!(ns, "test.ns");
                            let mut body = req.into_body();
                            let mut buf = BytesMut::new();
                            while let Some(d) = body.data().await {
                                buf.extend_from_slice(&d.unwrap());
                            }
                            let ok = http::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(())
                                .unwrap();
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            match path.as_str() {
                                "/containerd.services.tasks.v1.Tasks/Start" => {
                                    let req = StartRequest::decode(
                                        grpc::next_message(&mut buf).unwrap().unwrap(),
                                    )
                                    .unwrap();
                                    assert_eq!(req.container_id, "web");
                                    let mut s = respond.send_response(ok, false).unwrap();
                                    let reply = StartResponse { pid: 42 }.encode_to_vec();
                                    s.send_data(grpc::frame(&reply).into(), false).unwrap();
                                    s.send_trailers(trailers).unwrap();
                                }
                                "/containerd.services.events.v1.Events/Subscribe" => {
                                    let mut s = respond.send_response(ok, false).unwrap();
                                    for (topic, code) in [("/tasks/start", 0), ("/tasks/exit", 7)] {
                                        let ev = TaskExit {
                                            container_id: "web".into(),
                                            id: "web".into(),
                                            pid: 42,
                                            exit_status: code,
                                            exited_at: None,
                                        };
                                        let env = Envelope {
                                            timestamp: None,
                                            namespace: "test.ns".into(),
                                            topic: topic.into(),
                                            event: Some(Any {
                                                type_url: "containerd.events.TaskExit".into(),
                                                value: ev.encode_to_vec(),
                                            }),
                                        };
                                        // Split across two DATA frames.
                                        let f = grpc::frame(&env.encode_to_vec());
                                        s.send_data(f[..3].to_vec().into(), false).unwrap();
                                        s.send_data(f[3..].to_vec().into(), false).unwrap();
                                    }
                                    s.send_trailers(trailers).unwrap();
                                }
                                _ => {
                                    let fail = http::Response::builder()
                                        .header("content-type", "application/grpc")
                                        .header("grpc-status", "5")
                                        .header("grpc-message", "task %22web%22 not found")
                                        .body(())
                                        .unwrap();
                                    respond.send_response(fail, true).unwrap();
                                }
                            }
                        }
                    });
                }
            })
        });
    }

    #[test]
    fn calls_against_a_fake_containerd() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("containerd.sock");
        fake_containerd(sock.clone());
        let mut c = Client::connect(&sock, "test.ns").unwrap();
        assert_eq!(c.namespace(), "test.ns");
        assert_eq!(c.start_task("web").unwrap(), 42);
        // Several calls on one connection.
        assert_eq!(c.start_task("web").unwrap(), 42);
        let e = c.get_task("web").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(
            e.to_string(),
            r#"containerd: task "web" not found (NotFound)"#
        );
        let events: Vec<_> = c.subscribe().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(task_exit(&events[0]), None);
        assert_eq!(task_exit(&events[1]), Some(("web".into(), 7)));
        let e = Client::connect(&d.path().join("nothing"), "x")
            .err()
            .unwrap();
        assert!(e.to_string().contains("nothing"), "{e}");
    }
}
