//! ttrpc, containerd's RPC protocol for shims: protobuf messages in
//! length-prefixed frames over a unix socket, without HTTP/2.
//!
//! A frame is a 10-byte header (payload length u32, stream id u32, type
//! u8, flags u8; big-endian) and the payload. A call is one request frame
//! (a [`Request`] naming service and method, the method's message inside)
//! answered by one response frame on the same stream id (a [`Response`]:
//! a status and the reply message). Clients number their streams with odd
//! ids; calls on one connection may be answered out of order, so the
//! server runs each call on a thread of its own (Wait blocks until a
//! process exits while other calls go on).

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use prost::Message;

use super::proto::{KeyValue, Request, Response, RpcStatus};

const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;
/// ttrpc's limit on a message.
const MAX_MESSAGE: usize = 4 << 20;

/// gRPC status codes (the numbers ttrpc and containerd's errdefs use).
pub mod code {
    /// The request could not be decoded.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// No such task or exec process.
    pub const NOT_FOUND: i32 = 5;
    /// A task of that id exists already.
    pub const ALREADY_EXISTS: i32 = 6;
    /// The task is in the wrong state for the call (deleting a running
    /// one).
    pub const FAILED_PRECONDITION: i32 = 9;
    /// A call this shim does not implement (exec, checkpoint, update,
    /// stats, ...), or an unknown method.
    pub const UNIMPLEMENTED: i32 = 12;
    /// The OCI runtime or the system failed.
    pub const INTERNAL: i32 = 13;
}

/// A failed call: a gRPC code and a message containerd passes on.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// A gRPC status code, one of [`code`]'s.
    pub code: i32,
    /// What went wrong, for people; containerd shows it to its caller.
    pub message: String,
}

impl CallError {
    /// A failed call with `code` (one of [`code`]'s) and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> CallError {
        CallError {
            code,
            message: message.into(),
        }
    }
}

/// One frame as read from the wire.
#[derive(Debug, PartialEq)]
pub struct Frame {
    /// The stream id, which pairs a response with its request (odd ids
    /// for the client's calls).
    pub stream: u32,
    /// The message type: 1 a request, 2 a response.
    pub kind: u8,
    /// The message: an encoded [`Request`] or [`Response`].
    pub payload: Vec<u8>,
}

/// Reads one frame; `None` at a clean end of the stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut header = [0u8; 10];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let stream = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ttrpc message of {len} bytes exceeds the {MAX_MESSAGE}-byte limit"),
        ));
    }
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame {
        stream,
        kind: header[8],
        payload,
    }))
}

/// Encodes a frame (header and payload in one buffer, so one write puts it
/// on the wire whole).
pub fn frame(stream: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// What a server does with a call: `(service, method, request message)`
/// to the reply message.
pub type Handler = dyn Fn(&str, &str, &[u8]) -> Result<Vec<u8>, CallError> + Send + Sync;

/// Serves calls on every connection `listener` accepts, for ever; each
/// connection and each call on it gets a thread. `after` runs once a
/// call's response is written (the shim exits there after Shutdown).
pub fn serve(
    listener: UnixListener,
    handler: Arc<Handler>,
    after: Arc<dyn Fn(&str) + Send + Sync>,
) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (handler, after) = (handler.clone(), after.clone());
        std::thread::spawn(move || serve_connection(conn, handler, after));
    }
}

fn serve_connection(
    conn: UnixStream,
    handler: Arc<Handler>,
    after: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let Ok(writer) = conn.try_clone() else { return };
    let writer = Arc::new(Mutex::new(writer));
    let mut reader = conn;
    while let Ok(Some(f)) = read_frame(&mut reader) {
        if f.kind != TYPE_REQUEST {
            continue;
        }
        let (handler, after, writer) = (handler.clone(), after.clone(), writer.clone());
        std::thread::spawn(move || {
            let (reply, method) = match Request::decode(f.payload.as_slice()) {
                Ok(req) => (handler(&req.service, &req.method, &req.payload), req.method),
                Err(e) => (
                    Err(CallError::new(
                        code::INVALID_ARGUMENT,
                        format!("bad ttrpc request: {e}"),
                    )),
                    String::new(),
                ),
            };
            let resp = match reply {
                Ok(payload) => Response {
                    status: Some(RpcStatus::default()),
                    payload,
                },
                Err(e) => Response {
                    status: Some(RpcStatus {
                        code: e.code,
                        message: e.message,
                    }),
                    payload: Vec::new(),
                },
            };
            let bytes = frame(f.stream, TYPE_RESPONSE, &resp.encode_to_vec());
            let written = writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(&bytes);
            if written.is_ok() {
                after(&method);
            }
        });
    }
}

/// A ttrpc client for one call at a time (the shim's event publisher).
pub struct Client {
    conn: UnixStream,
    next_stream: u32,
}

impl Client {
    /// Connects to the ttrpc socket at `path` (containerd's, for events).
    pub fn connect(path: &str) -> io::Result<Client> {
        Ok(Client {
            conn: UnixStream::connect(path)?,
            next_stream: 1,
        })
    }

    /// Calls `service`/`method` with `payload`; returns the reply message.
    pub fn call(
        &mut self,
        service: &str,
        method: &str,
        payload: Vec<u8>,
        metadata: Vec<KeyValue>,
    ) -> io::Result<Result<Vec<u8>, CallError>> {
        let stream = self.next_stream;
        self.next_stream += 2;
        let req = Request {
            service: service.into(),
            method: method.into(),
            payload,
            timeout_nano: 0,
            metadata,
        };
        self.conn
            .write_all(&frame(stream, TYPE_REQUEST, &req.encode_to_vec()))?;
        loop {
            let f = read_frame(&mut self.conn)?
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            if f.kind != TYPE_RESPONSE || f.stream != stream {
                continue;
            }
            let resp = Response::decode(f.payload.as_slice())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return Ok(match resp.status {
                Some(s) if s.code != 0 => Err(CallError::new(s.code, s.message)),
                _ => Ok(resp.payload),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_the_wire_header() {
        let bytes = frame(3, TYPE_REQUEST, b"abc");
        assert_eq!(&bytes[..10], &[0, 0, 0, 3, 0, 0, 0, 3, 1, 0]);
        let f = read_frame(&mut bytes.as_slice()).unwrap().unwrap();
        assert_eq!(
            f,
            Frame {
                stream: 3,
                kind: TYPE_REQUEST,
                payload: b"abc".to_vec()
            }
        );
        assert!(read_frame(&mut &[][..]).unwrap().is_none());
        assert!(read_frame(&mut &bytes[..5]).is_err());
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut header = frame(1, TYPE_REQUEST, b"").to_vec();
        header[0..4].copy_from_slice(&((MAX_MESSAGE as u32) + 1).to_be_bytes());
        assert!(read_frame(&mut header.as_slice()).is_err());
    }

    #[test]
    fn a_server_answers_calls_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let handler: Arc<Handler> = Arc::new(|service, method, payload| {
            if method == "Echo" {
                Ok([service.as_bytes(), payload].concat())
            } else {
                Err(CallError::new(code::UNIMPLEMENTED, format!("{method}?")))
            }
        });
        std::thread::spawn(move || serve(listener, handler, Arc::new(|_| {})));
        let mut c = Client::connect(path.to_str().unwrap()).unwrap();
        let ok = c.call("svc", "Echo", b"!".to_vec(), vec![]).unwrap();
        assert_eq!(ok, Ok(b"svc!".to_vec()));
        let err = c.call("svc", "Nope", vec![], vec![]).unwrap();
        assert_eq!(err, Err(CallError::new(code::UNIMPLEMENTED, "Nope?")));
    }
}
