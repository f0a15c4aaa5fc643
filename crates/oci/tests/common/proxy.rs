//! [`Proxy`]: a TCP proxy in front of a [`TestRegistry`](linuxkit_testing::TestRegistry)
//! that misbehaves on purpose, to test the client against broken and slow
//! connections without touching the registry.
//!
//! It listens on a free port of `127.0.0.1` and, for each client connection,
//! opens one to the registry and relays HTTP/1.1 exchanges one at a time
//! (the client under test does not pipeline): it reads a request head (and
//! body, by `Content-Length`), forwards it, reads the response head and
//! relays the body by `Content-Length`, chunked encoding or until the
//! registry closes. Knowing where each response starts and ends lets it
//! single out blob downloads (`GET …/blobs/…` answered `200`) and
//!
//! * cut them short: forward the head and half the body, then close the
//!   connection ([`Proxy::truncate_blobs`], [`Proxy::truncate_all_blobs`]);
//! * slow them down: a fixed number of bytes per tick, the first after one
//!   tick ([`Proxy::throttle`]).
//!
//! Everything else is relayed untouched. Settings can change while clients
//! are connected; they apply to responses that start afterwards.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Truncate every blob response.
const ALWAYS: u64 = u64::MAX;
/// How long a relay waits for either side before giving up.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Relay buffer size when not throttled.
const CHUNK: usize = 64 * 1024;

#[derive(Default)]
struct State {
    upstream: String,
    /// Blob responses still to cut short ([`ALWAYS`]: all of them).
    truncate: AtomicU64,
    /// Bytes per tick for blob bodies; 0 means no throttling.
    throttle_bytes: AtomicU64,
    throttle_tick_ms: AtomicU64,
    /// Blob responses seen, and how many of them were cut short.
    blob_responses: AtomicU64,
    truncated: AtomicU64,
    stop: AtomicBool,
}

impl State {
    /// Whether the next blob response is to be cut short (uses up one).
    fn take_fault(&self) -> bool {
        self.truncate
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                ALWAYS => Some(ALWAYS),
                n => Some(n - 1),
            })
            .is_ok()
    }

    fn throttle(&self) -> Option<(usize, Duration)> {
        match self.throttle_bytes.load(Ordering::SeqCst) {
            0 => None,
            n => Some((
                n as usize,
                Duration::from_millis(self.throttle_tick_ms.load(Ordering::SeqCst)),
            )),
        }
    }
}

/// The running proxy; stops accepting on drop (open relays end when their
/// client or the registry closes).
pub struct Proxy {
    port: u16,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`host:port`) that relays faithfully
    /// until told otherwise.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            ..State::default()
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("fault-proxy".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if state.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || {
                            // A relay ends with an error whenever a side
                            // hangs up; that is expected, not a failure.
                            let _ = relay(conn, &state);
                        });
                    }
                })
                .expect("spawn proxy thread")
        };
        Proxy {
            port,
            state,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references through the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/{repo_and_tag}`.
    pub fn image_ref(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr())
    }

    /// Cut the next `n` blob responses short.
    pub fn truncate_blobs(&self, n: u64) {
        self.state.truncate.store(n, Ordering::SeqCst);
    }

    /// Cut every blob response short.
    pub fn truncate_all_blobs(&self) {
        self.truncate_blobs(ALWAYS);
    }

    /// Relay blob bodies at `bytes` per `tick`.
    pub fn throttle(&self, bytes: usize, tick: Duration) {
        self.state
            .throttle_tick_ms
            .store(tick.as_millis() as u64, Ordering::SeqCst);
        self.state
            .throttle_bytes
            .store(bytes as u64, Ordering::SeqCst);
    }

    /// Relay at full speed again (responses already being slowed down stay
    /// slow).
    pub fn unthrottle(&self) {
        self.state.throttle_bytes.store(0, Ordering::SeqCst);
    }

    /// Blob responses that started so far.
    pub fn blob_responses(&self) -> u64 {
        self.state.blob_responses.load(Ordering::SeqCst)
    }

    /// Blob responses cut short so far.
    pub fn truncated(&self) -> u64 {
        self.state.truncated.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop up so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a response body is delimited.
enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Relays HTTP exchanges between `client` and a new connection to the
/// registry until either side closes.
fn relay(client: TcpStream, state: &State) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut upstream = TcpStream::connect(&state.upstream)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut from_upstream = BufReader::new(upstream.try_clone()?);
    loop {
        let Some(request) = read_head(&mut from_client)? else {
            return Ok(());
        };
        let (method, path) = request_line(&request);
        upstream.write_all(&request)?;
        match body_of_request(&request) {
            Body::Length(n) => copy_exact(&mut from_client, &mut upstream, n, None)?,
            Body::Chunked => copy_chunked(&mut from_client, &mut upstream)?,
            Body::UntilClose => {}
        }

        let Some(response) = read_head(&mut from_upstream)? else {
            return Ok(());
        };
        let status = status_code(&response);
        let body = if method == "HEAD" || status == 204 || status == 304 || status < 200 {
            Body::Length(0)
        } else {
            body_of_response(&response)
        };
        let is_blob = method == "GET" && path.contains("/blobs/") && status == 200;
        if is_blob {
            state.blob_responses.fetch_add(1, Ordering::SeqCst);
            if let Body::Length(n) = body
                && state.take_fault()
            {
                state.truncated.fetch_add(1, Ordering::SeqCst);
                to_client.write_all(&response)?;
                copy_exact(&mut from_upstream, &mut to_client, n / 2, None)?;
                to_client.flush()?;
                let _ = to_client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        to_client.write_all(&response)?;
        let throttle = if is_blob { state.throttle() } else { None };
        match body {
            Body::Length(n) => copy_exact(&mut from_upstream, &mut to_client, n, throttle)?,
            Body::Chunked => copy_chunked(&mut from_upstream, &mut to_client)?,
            Body::UntilClose => {
                io::copy(&mut from_upstream, &mut to_client)?;
                return Ok(());
            }
        }
        to_client.flush()?;
    }
}

/// Reads an HTTP head up to and including the empty line; `None` at a clean
/// end of stream before it.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let n = r.read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "end of stream inside an HTTP head",
                ))
            };
        }
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Some(head));
        }
    }
}

fn lines(head: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(head)
        .unwrap_or_default()
        .split("\r\n")
        .filter(|l| !l.is_empty())
}

/// `(method, path)` of a request head.
fn request_line(head: &[u8]) -> (String, String) {
    let first = lines(head).next().unwrap_or_default();
    let mut parts = first.split(' ');
    (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    )
}

fn status_code(head: &[u8]) -> u16 {
    lines(head)
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    lines(head).skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn is_chunked(head: &[u8]) -> bool {
    header(head, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(head: &[u8]) -> Option<u64> {
    header(head, "content-length").and_then(|v| v.parse().ok())
}

fn body_of_request(head: &[u8]) -> Body {
    if is_chunked(head) {
        Body::Chunked
    } else {
        Body::Length(content_length(head).unwrap_or(0))
    }
}

fn body_of_response(head: &[u8]) -> Body {
    if is_chunked(head) {
        Body::Chunked
    } else if let Some(n) = content_length(head) {
        Body::Length(n)
    } else {
        Body::UntilClose
    }
}

/// Copies exactly `n` bytes. With `throttle = (bytes, tick)`, waits a tick
/// before each `bytes`, the first included, so that a throttled body never
/// arrives right behind its head: a client has seen the head of every
/// throttled response (and started its download) before any such body is
/// complete.
fn copy_exact(
    from: &mut impl Read,
    to: &mut impl Write,
    mut n: u64,
    throttle: Option<(usize, Duration)>,
) -> io::Result<()> {
    let step = throttle.map_or(CHUNK, |(bytes, _)| bytes.max(1));
    let mut buf = vec![0u8; step];
    while n > 0 {
        let want = (n as usize).min(step);
        from.read_exact(&mut buf[..want])?;
        if let Some((_, tick)) = throttle {
            to.flush()?;
            std::thread::sleep(tick);
        }
        to.write_all(&buf[..want])?;
        n -= want as u64;
    }
    Ok(())
}

/// Copies a chunked body, chunk by chunk, up to and including its trailer.
fn copy_chunked(from: &mut impl BufRead, to: &mut impl Write) -> io::Result<()> {
    loop {
        let mut line = Vec::new();
        if from.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        to.write_all(&line)?;
        let size = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.trim().split(';').next())
            .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let mut l = Vec::new();
                if from.read_until(b'\n', &mut l)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                to.write_all(&l)?;
                if l == b"\r\n" {
                    return Ok(());
                }
            }
        }
        copy_exact(from, to, size + 2, None)?;
    }
}
