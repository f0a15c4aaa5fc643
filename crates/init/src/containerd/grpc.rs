//! gRPC's wire format, the part a client needs: length-prefixed messages
//! and the `grpc-status` / `grpc-message` trailers.
//!
//! Each message on an HTTP/2 stream is a 5-byte prefix (a compression flag,
//! always 0 here since we never offer compression, then the length as a
//! big-endian u32) followed by the protobuf bytes. A call's outcome is in
//! the trailers, or in the headers of a "trailers-only" reply (what
//! containerd sends when a call fails before any message).

use std::fmt;

use bytes::{Buf, BytesMut};

/// Refuse messages larger than this: containerd's replies to our calls are
/// a few KB, and a bogus length must not make PID 1 allocate gigabytes.
pub const MAX_MESSAGE: usize = 16 << 20;

/// `message` framed for the wire.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Takes the next whole message off the front of `buf`, if one has arrived.
pub fn next_message(buf: &mut BytesMut) -> Result<Option<BytesMut>, String> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(format!(
            "compressed gRPC message (flag {}) but no compression was offered",
            buf[0]
        ));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(format!("gRPC message of {len} bytes is too large"));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len)))
}

/// A gRPC status code (the numbers are gRPC's, `codes.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub u32);

impl Code {
    /// The call succeeded.
    pub const OK: Code = Code(0);
    /// No such container or task (containerd's `ErrNotFound`).
    pub const NOT_FOUND: Code = Code(5);
    /// A container or task of that id exists already.
    pub const ALREADY_EXISTS: Code = Code(6);
    /// The object is in the wrong state for the call (deleting a
    /// running task).
    pub const FAILED_PRECONDITION: Code = Code(9);
    /// containerd cannot serve the call now (starting up, shutting down).
    pub const UNAVAILABLE: Code = Code(14);
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 17] = [
            "OK",
            "Canceled",
            "Unknown",
            "InvalidArgument",
            "DeadlineExceeded",
            "NotFound",
            "AlreadyExists",
            "PermissionDenied",
            "ResourceExhausted",
            "FailedPrecondition",
            "Aborted",
            "OutOfRange",
            "Unimplemented",
            "Internal",
            "Unavailable",
            "DataLoss",
            "Unauthenticated",
        ];
        match NAMES.get(self.0 as usize) {
            Some(n) => f.write_str(n),
            None => write!(f, "code {}", self.0),
        }
    }
}

/// The status in a header map (`grpc-status`, `grpc-message`), if any.
pub fn status(headers: &http::HeaderMap) -> Option<(Code, String)> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some((Code(code), message))
}

/// `grpc-message` is percent-encoded (RFC 3986 style, UTF-8).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_a_five_byte_prefix() {
        assert_eq!(frame(b""), [0, 0, 0, 0, 0]);
        assert_eq!(frame(b"\x0a\x01a"), [0, 0, 0, 0, 3, 0x0a, 0x01, b'a']);
        let big = vec![7u8; 300];
        assert_eq!(&frame(&big)[..5], &[0, 0, 0, 1, 44]);
    }

    #[test]
    fn messages_are_split_as_they_arrive() {
        let mut buf = BytesMut::new();
        assert_eq!(next_message(&mut buf), Ok(None));
        let mut wire = frame(b"abc");
        wire.extend(frame(b""));
        wire.extend(frame(b"xy"));
        // A message cut in the middle waits for the rest.
        buf.extend_from_slice(&wire[..6]);
        assert_eq!(next_message(&mut buf), Ok(None));
        buf.extend_from_slice(&wire[6..]);
        assert_eq!(next_message(&mut buf).unwrap().unwrap().as_ref(), b"abc");
        assert_eq!(next_message(&mut buf).unwrap().unwrap().as_ref(), b"");
        assert_eq!(next_message(&mut buf).unwrap().unwrap().as_ref(), b"xy");
        assert_eq!(next_message(&mut buf), Ok(None));
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut buf = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
        assert!(next_message(&mut buf).unwrap_err().contains("compressed"));
        let mut buf = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(next_message(&mut buf).unwrap_err().contains("too large"));
    }

    #[test]
    fn statuses_from_trailers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(status(&h), None);
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert(
            "grpc-message",
            "container %22web%22 in namespace %22services.linuxkit%22: not found"
                .parse()
                .unwrap(),
        );
        let (code, msg) = status(&h).unwrap();
        assert_eq!(code, Code::NOT_FOUND);
        assert_eq!(code.to_string(), "NotFound");
        assert_eq!(
            msg,
            r#"container "web" in namespace "services.linuxkit": not found"#
        );
        assert_eq!(Code(99).to_string(), "code 99");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
