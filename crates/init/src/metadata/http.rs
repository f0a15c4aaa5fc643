//! A small blocking HTTP/1.1 client for the cloud metadata services.
//!
//! Why not a crate like `ureq`: the metadata applet is part of the static
//! init binary, every service it talks to is plain HTTP on a link-local
//! address (or a name resolving to one), and a request is a handful of
//! lines; a general client (TLS, pools, redirects, proxies) would add size
//! and behaviour the metadata services do not want (a proxy must never see
//! these requests). The response head is parsed by `httparse`.
//!
//! Every request is bounded: a connect timeout, one deadline for the whole
//! exchange (name resolution included), and a size limit on the response.
//! Requests say `Connection: close`, so a body without a length ends where
//! the server closes.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a connection may take (the reference's whole-request timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole request may take, resolution included.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The largest response (head and body) read: user data is at most 16 KiB
/// on AWS and 256 KiB on GCP; Azure's instance document is a few KiB.
pub const LIMIT: usize = 4 << 20;
/// The largest response head.
const HEAD_LIMIT: usize = 64 << 10;

/// How requests reach their servers.
#[derive(Clone, Debug)]
pub struct Client {
    /// Where every connection goes instead of the URL's host (the tests'
    /// local servers); the `Host` header still names the URL's host.
    pub connect_to: Option<SocketAddr>,
    /// The bound on connecting.
    pub connect_timeout: Duration,
    /// The bound on the whole request.
    pub deadline: Duration,
    /// The largest body accepted.
    pub limit: usize,
}

impl Default for Client {
    fn default() -> Client {
        Client {
            connect_to: None,
            connect_timeout: CONNECT_TIMEOUT,
            deadline: DEADLINE,
            limit: LIMIT,
        }
    }
}

/// An answer: the status and the body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, unchunked.
    pub body: Vec<u8>,
}

/// The parts of an `http://host[:port]/path` URL.
#[derive(Debug, PartialEq)]
pub struct Url<'a> {
    /// The host, a name or an address.
    pub host: &'a str,
    /// The port (80 unless given).
    pub port: u16,
    /// The path and query (`/` if none).
    pub path: &'a str,
}

/// Splits an `http://` URL; other schemes are refused.
pub fn parse_url(url: &str) -> io::Result<Url<'_>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("{url}: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (
            h,
            p.parse()
                .map_err(|_| invalid(format!("{url}: bad port {p:?}")))?,
        ),
        _ => (authority, 80),
    };
    if host.is_empty() {
        return Err(invalid(format!("{url}: no host")));
    }
    Ok(Url { host, port, path })
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what}: deadline passed"))
}

impl Client {
    /// `GET url`: the body of a `200 OK`, else an error naming the status.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> io::Result<Vec<u8>> {
        let r = self.request("GET", url, headers, None)?;
        if r.status != 200 {
            return Err(io::Error::other(format!("{url}: status {}", r.status)));
        }
        Ok(r.body)
    }

    /// One request; `source_port` binds the local end to a port below it
    /// first (Scaleway gives user data only to privileged source ports).
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        source_port_below: Option<u16>,
    ) -> io::Result<Response> {
        let start = Instant::now();
        let u = parse_url(url)?;
        let addr = self.address(&u, start)?;
        let mut s = match source_port_below {
            None => TcpStream::connect_timeout(&addr, self.connect_timeout)?,
            Some(below) => connect_from_low_port(addr, below, self.connect_timeout)?,
        };
        let host = if u.port == 80 {
            u.host.to_string()
        } else {
            format!("{}:{}", u.host, u.port)
        };
        let mut req = format!(
            "{method} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: linuxkit-metadata\r\nConnection: close\r\n",
            u.path
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "PUT" || method == "POST" {
            req.push_str("Content-Length: 0\r\n");
        }
        req.push_str("\r\n");
        self.arm(&s, start, url)?;
        s.write_all(req.as_bytes())?;
        self.read_response(&mut s, start, url)
    }

    fn remaining(&self, start: Instant, what: &str) -> io::Result<Duration> {
        self.deadline
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| timed_out(what))
    }

    fn arm(&self, s: &TcpStream, start: Instant, what: &str) -> io::Result<()> {
        let left = self.remaining(start, what)?;
        s.set_read_timeout(Some(left))?;
        s.set_write_timeout(Some(left))
    }

    /// The address to connect to: the override, a literal address, or the
    /// host name resolved within the deadline (the system resolver has no
    /// timeout of its own we can set, so it runs on a thread we stop
    /// waiting for).
    fn address(&self, u: &Url, start: Instant) -> io::Result<SocketAddr> {
        if let Some(a) = self.connect_to {
            return Ok(a);
        }
        if let Ok(ip) = u.host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, u.port));
        }
        let (tx, rx) = mpsc::channel();
        let name = format!("{}:{}", u.host, u.port);
        std::thread::spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(|mut a| a.next()));
        });
        match rx.recv_timeout(self.remaining(start, u.host)?) {
            Ok(Ok(Some(a))) => Ok(a),
            Ok(Ok(None)) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no address", u.host),
            )),
            Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("{}: {e}", u.host))),
            Err(_) => Err(timed_out(&format!("resolving {}", u.host))),
        }
    }

    fn read_response(&self, s: &mut TcpStream, start: Instant, url: &str) -> io::Result<Response> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        // The head.
        let (status, head_len, framing) = loop {
            self.arm(s, start, url)?;
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{url}: the connection closed before a response"),
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = r.code.unwrap_or(0);
                    break (status, len, Framing::of(r.headers)?);
                }
                Ok(httparse::Status::Partial) if buf.len() < HEAD_LIMIT => {}
                Ok(httparse::Status::Partial) => {
                    return Err(invalid(format!(
                        "{url}: response head over {HEAD_LIMIT} bytes"
                    )));
                }
                Err(e) => return Err(invalid(format!("{url}: bad response: {e}"))),
            }
        };
        let mut body = buf.split_off(head_len);
        // The body, to its length or the connection's end.
        let want = match framing {
            Framing::Length(n) if n > self.limit as u64 => {
                return Err(invalid(format!(
                    "{url}: a body of {n} bytes is over the limit of {}",
                    self.limit
                )));
            }
            Framing::Length(n) => Some(n as usize),
            _ => None,
        };
        while want.is_none_or(|w| body.len() < w) {
            if body.len() > self.limit {
                return Err(invalid(format!(
                    "{url}: the response is over the limit of {} bytes",
                    self.limit
                )));
            }
            self.arm(s, start, url)?;
            let n = s.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        if let Some(w) = want {
            if body.len() < w {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{url}: body ended at {} of {w} bytes", body.len()),
                ));
            }
            body.truncate(w);
        }
        if framing == Framing::Chunked {
            body = dechunk(&body).ok_or_else(|| invalid(format!("{url}: bad chunked body")))?;
        }
        Ok(Response { status, body })
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

impl Framing {
    fn of(headers: &[httparse::Header]) -> io::Result<Framing> {
        let mut f = Framing::Close;
        for h in headers {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let v = String::from_utf8_lossy(h.value);
                if v.trim().eq_ignore_ascii_case("chunked") {
                    return Ok(Framing::Chunked);
                }
                return Err(invalid(format!("unsupported transfer encoding {v:?}")));
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = String::from_utf8_lossy(h.value);
                f = Framing::Length(
                    v.trim()
                        .parse()
                        .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
                );
            }
        }
        Ok(f)
    }
}

/// The data of a chunked body (trailers ignored); `None` if malformed.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        // A size near usize::MAX (from whoever answers) must not wrap.
        let end = size.checked_add(2)?;
        if b.len() < end || &b[size..end] != b"\r\n" {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[end..];
    }
}

/// A connection from the first free local port below `below`, as the
/// reference does for Scaleway's user data (it needs `CAP_NET_BIND_SERVICE`).
/// Linux bounds a blocking `connect` by the socket's send timeout.
fn connect_from_low_port(addr: SocketAddr, below: u16, timeout: Duration) -> io::Result<TcpStream> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, setsockopt, socket,
        sockopt,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let mut last = io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free local port below {below}"),
    );
    for port in 1..below {
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
            .map_err(io::Error::from)?;
        let tv =
            nix::sys::time::TimeVal::new(timeout.as_secs() as i64, timeout.subsec_micros() as i64);
        setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(io::Error::from)?;
        let local = SocketAddr::new(
            if addr.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            },
            port,
        );
        if let Err(e) = bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(local),
        ) {
            last = io::Error::from(e);
            continue;
        }
        match connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(addr),
        ) {
            Ok(()) => return Ok(TcpStream::from(fd)),
            Err(nix::errno::Errno::EADDRINUSE | nix::errno::Errno::EADDRNOTAVAIL) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://169.254.169.254/latest/user-data").unwrap(),
            Url {
                host: "169.254.169.254",
                port: 80,
                path: "/latest/user-data"
            }
        );
        assert_eq!(
            parse_url("http://metaldata:8080").unwrap(),
            Url {
                host: "metaldata",
                port: 8080,
                path: "/"
            }
        );
        assert!(parse_url("https://metadata.packet.net/metadata").is_err());
        assert!(parse_url("http:///x").is_err());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").unwrap(),
            b"hello world"
        );
        assert!(dechunk(b"5\r\nhel").is_none());
        assert!(dechunk(b"zz\r\n").is_none());
        // A size that would wrap when the CRLF is counted.
        assert!(dechunk(b"ffffffffffffffff\r\nx\r\n0\r\n\r\n").is_none());
    }
}
