//! Pulls from registries that misbehave on purpose (issue 18): a small
//! HTTP server on loopback, written here, speaks just enough of the
//! distribution API to serve one image and then lies, floods, drips, stalls,
//! rate-limits or hands out garbage tokens. Each test checks that the pull
//! fails (or retries) as docs/cache.md says, says which registry and what,
//! and leaves the cache as it was. Time is asserted only as a generous
//! bound that proves a deadline fired (a 2 s deadline, failing well within
//! 60 s).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use linuxkit_oci::{Limits, Registry, RegistryOptions};
use linuxkit_testing::sha256_digest;

/// What the server does with one request: the request's method and path,
/// the connection to answer on, and how many requests came before it.
type Handler = dyn Fn(&str, &str, &mut TcpStream, usize) + Send + Sync;

/// A registry on loopback that answers every request with `handler`.
struct Hostile {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    fn start(
        handler: impl Fn(&str, &str, &mut TcpStream, usize) + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let (handler, seen, count) = (handler.clone(), seen.clone(), count.clone());
                std::thread::spawn(move || {
                    // One request per connection: answers close it.
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let mut parts = first.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    );
                    seen.lock().unwrap().push(format!("{method} {path}"));
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    handler(&method, &path, &mut conn, n);
                });
            }
        });
        Hostile { addr, requests }
    }

    fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Writes a complete response (closing the connection afterwards).
fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// A one-config image with no layers: the config and the manifest naming
/// it with `config_size` (its real size unless a test lies).
struct Image {
    config: Vec<u8>,
    manifest: Vec<u8>,
}

fn image(config_size: Option<u64>) -> Image {
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(&config),
            "size": config_size.unwrap_or(config.len() as u64),
        },
        "layers": [],
    }))
    .unwrap();
    Image { config, manifest }
}

/// Serves `img`'s manifest (for any tag) and config; `blob` answers the
/// config request instead when given.
fn serve(
    img: Image,
    blob: impl Fn(&mut TcpStream, &[u8]) + Send + Sync + 'static,
) -> impl Fn(&str, &str, &mut TcpStream, usize) + Send + Sync + 'static {
    move |_, path, conn, _| {
        if path.contains("/manifests/") {
            respond(
                conn,
                "200 OK",
                &[
                    ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
                    ("Docker-Content-Digest", &sha256_digest(&img.manifest)),
                ],
                &img.manifest,
            );
        } else if path.contains("/blobs/") {
            blob(conn, &img.config);
        } else {
            respond(conn, "404 Not Found", &[], b"");
        }
    }
}

/// A client with a 2 s request deadline and a short backoff.
fn hasty() -> Registry {
    Registry::new(RegistryOptions {
        limits: Limits {
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
        ..options(None)
    })
    .unwrap()
}

/// Pulls `reference` expecting failure; returns the message and how long
/// the pull took.
fn fails(client: &Registry, cache: &TempCache, reference: &str) -> (String, Duration) {
    let started = Instant::now();
    match client.pull(cache, &image_ref(reference)) {
        Ok(_) => panic!("pulling {reference} from a hostile registry succeeded"),
        Err(e) => {
            let took = started.elapsed();
            let msg = e.to_string();
            eprintln!("after {took:?}: {msg}");
            assert_not_indexed(cache, reference);
            assert_no_temp_files(cache);
            (msg, took)
        }
    }
}

#[test]
fn a_blob_larger_than_its_descriptor_is_cut_off_and_refused() {
    // Without a Content-Length (read until the server closes), the server
    // sends the config and then a megabyte more.
    let server = Hostile::start(serve(image(None), |conn, config| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let _ = conn.write_all(config);
        let junk = vec![b'x'; 64 << 10];
        for _ in 0..16 {
            if conn.write_all(&junk).is_err() {
                return;
            }
        }
    }));
    let cache = TempCache::new();
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/big:1"));
    assert!(
        msg.contains("sent more than the") && msg.contains(&server.addr),
        "{msg}"
    );
    assert_eq!(blob_names(&cache).len(), 0);

    // With a Content-Length that says so, it is refused before reading.
    let server = Hostile::start(serve(image(None), |conn, config| {
        let mut body = config.to_vec();
        body.extend_from_slice(&[b'x'; 4096]);
        respond(conn, "200 OK", &[], &body);
    }));
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/big:1"));
    assert!(
        msg.contains("announces") && msg.contains(&server.addr),
        "{msg}"
    );
}

#[test]
fn an_absurd_declared_size_is_refused_before_downloading() {
    let server = Hostile::start(serve(
        image(Some(1_000_000_000_000_000_000)),
        |conn, config| respond(conn, "200 OK", &[], config),
    ));
    let cache = TempCache::new();
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/huge:1"));
    assert!(
        msg.contains("1000000000000000000 bytes") && msg.contains("LINUXKIT_MAX_BLOB_SIZE"),
        "{msg}"
    );
    assert!(
        !server.requests().iter().any(|r| r.contains("/blobs/")),
        "a blob was requested: {:?}",
        server.requests()
    );
}

#[test]
fn an_endless_chunked_manifest_stops_at_the_limit() {
    let server = Hostile::start(|_, _, conn, _| {
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
        // Stops when the client hangs up (or after 1 GiB, should it not).
        for _ in 0..16384 {
            if conn.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    let cache = TempCache::new();
    let (msg, took) = fails(&hasty(), &cache, &server.image("test/endless:1"));
    assert!(
        msg.contains("larger than the 4194304 bytes") && msg.contains(&server.addr),
        "{msg}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn a_dripping_manifest_times_out() {
    let server = Hostile::start(|_, _, conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        // 70 s of drip at most, enough to outlast the bound below.
        for _ in 0..700 {
            std::thread::sleep(Duration::from_millis(100));
            if conn.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let cache = TempCache::new();
    let (msg, took) = fails(&hasty(), &cache, &server.image("test/drip:1"));
    assert!(
        msg.contains("timed out") && msg.contains(&server.addr),
        "{msg}"
    );
    assert!(
        msg.contains("/manifests/"),
        "the message says what timed out: {msg}"
    );
    assert!(
        took < Duration::from_secs(60),
        "the 2 s deadline did not fire: {took:?}"
    );
}

#[test]
fn a_registry_that_never_answers_times_out() {
    let server = Hostile::start(|_, _, conn, _| {
        // Keep the connection open, say nothing, until the client leaves.
        let mut buf = [0u8; 1024];
        while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    let cache = TempCache::new();
    let (msg, took) = fails(&hasty(), &cache, &server.image("test/silent:1"));
    assert!(
        msg.contains("timed out")
            && msg.contains("LINUXKIT_REGISTRY_TIMEOUT")
            && msg.contains(&server.addr),
        "{msg}"
    );
    assert!(
        took < Duration::from_secs(60),
        "the 2 s deadline did not fire: {took:?}"
    );
}

const TOO_MANY: &[u8] = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit.","detail":null}]}"#;

#[test]
fn rate_limiting_is_retried_as_retry_after_asks_and_said_as_such() {
    // The first manifest request is refused with Retry-After: 1; the next
    // one is served.
    let img = image(None);
    let config = img.config.clone();
    let ok = serve(img, |conn, config| respond(conn, "200 OK", &[], config));
    let server = Hostile::start(move |method, path, conn, n| {
        if n == 0 {
            respond(
                conn,
                "429 Too Many Requests",
                &[("Content-Type", "application/json"), ("Retry-After", "1")],
                TOO_MANY,
            );
        } else {
            ok(method, path, conn, n)
        }
    });
    let cache = TempCache::new();
    let pulled = hasty()
        .pull(&cache, &image_ref(&server.image("test/limited:1")))
        .expect("a pull retried after a 429");
    assert_eq!(pulled.config, config);
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.contains("/manifests/"))
            .count(),
        2,
        "{:?}",
        server.requests()
    );

    // Always refused: the message says rate limited, by whom, and what
    // the registry said.
    let server = Hostile::start(|_, _, conn, _| {
        respond(
            conn,
            "429 Too Many Requests",
            &[("Content-Type", "application/json"), ("Retry-After", "0")],
            TOO_MANY,
        )
    });
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/limited:1"));
    assert!(
        msg.contains(&format!("rate limited by {}", server.addr))
            && msg.contains("pull rate limit")
            && msg.contains("gave up after 4 attempts"),
        "{msg}"
    );

    // A wait longer than we accept fails at once, saying so.
    let server = Hostile::start(|_, _, conn, _| {
        respond(
            conn,
            "429 Too Many Requests",
            &[("Retry-After", "3600")],
            TOO_MANY,
        )
    });
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/limited:1"));
    assert!(
        msg.contains("rate limited") && msg.contains("3600 s") && msg.contains("longer than"),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
}

#[test]
fn a_token_service_that_returns_garbage_is_named_as_such() {
    let realm: Arc<Mutex<String>> = Arc::default();
    let r = realm.clone();
    let server = Hostile::start(move |_, path, conn, _| {
        if path.starts_with("/token") {
            respond(
                conn,
                "200 OK",
                &[("Content-Type", "text/html")],
                b"<html>gateway says hello</html>",
            );
        } else {
            let challenge = format!("Bearer realm=\"{}\",service=\"hostile\"", r.lock().unwrap());
            respond(
                conn,
                "401 Unauthorized",
                &[
                    ("WWW-Authenticate", &challenge),
                    ("Content-Type", "application/json"),
                ],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
        }
    });
    *realm.lock().unwrap() = format!("http://{}/token", server.addr);
    let cache = TempCache::new();
    let (msg, _) = fails(&hasty(), &cache, &server.image("test/tokens:1"));
    assert!(
        msg.contains(&format!(
            "bad token response from http://{}/token",
            server.addr
        )) && msg.contains("<html>"),
        "{msg}"
    );
    assert!(
        !msg.contains("docker login"),
        "sends the user the wrong way: {msg}"
    );
}

/// Writes an endless chunked body after `head` (a status line and
/// headers), until the client hangs up.
fn endless(conn: &mut TcpStream, head: &str) {
    let _ = conn.write_all(format!("{head}Transfer-Encoding: chunked\r\n\r\n").as_bytes());
    let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, " ".repeat(64 << 10));
    while conn.write_all(chunk.as_bytes()).is_ok() {}
}

/// A cache holding a small image (pulled from a well-behaved server), and
/// its name, for the push tests.
fn cached_image() -> (TempCache, String, Hostile) {
    let source = Hostile::start(serve(image(None), |conn, config| {
        respond(conn, "200 OK", &[], config)
    }));
    let cache = TempCache::new();
    let local = source.image("test/src:1");
    hasty()
        .pull(&cache, &image_ref(&local))
        .expect("pulling from the well-behaved server");
    (cache, local, source)
}

/// Pushes `local` to `remote` expecting failure; returns the message and
/// how long the push took.
fn push_fails(
    client: &Registry,
    cache: &TempCache,
    local: &str,
    remote: &str,
) -> (String, Duration) {
    let started = Instant::now();
    match client.push(cache, &image_ref(local), &image_ref(remote)) {
        Ok(()) => panic!("pushing to a hostile registry ({remote}) succeeded"),
        Err(e) => {
            let took = started.elapsed();
            let msg = e.to_string();
            eprintln!("after {took:?}: {msg}");
            (msg, took)
        }
    }
}

#[test]
fn a_push_reads_an_endless_token_response_only_up_to_its_limit() {
    let (cache, local, _source) = cached_image();
    let realm: Arc<Mutex<String>> = Arc::default();
    let r = realm.clone();
    let server = Hostile::start(move |_, path, conn, _| {
        if path.starts_with("/token") {
            endless(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
            );
        } else {
            let challenge = format!("Bearer realm=\"{}\",service=\"hostile\"", r.lock().unwrap());
            respond(
                conn,
                "401 Unauthorized",
                &[("WWW-Authenticate", &challenge)],
                b"",
            );
        }
    });
    *realm.lock().unwrap() = format!("http://{}/token", server.addr);
    let (msg, took) = push_fails(&hasty(), &cache, &local, &server.image("test/dst:1"));
    assert!(
        msg.contains("cannot push")
            && msg.contains(&server.addr)
            && msg.contains("token response")
            && msg.contains("larger than the 65536 bytes"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // It asked for a token allowing the push.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /token") && r.contains("push")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn a_push_reads_an_endless_error_answer_only_up_to_its_limit() {
    let (cache, local, _source) = cached_image();
    // The blob is missing; starting its upload is refused with an error
    // whose body never ends.
    let server = Hostile::start(|method, _, conn, _| match method {
        "HEAD" => respond(conn, "404 Not Found", &[], b""),
        _ => endless(
            conn,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n",
        ),
    });
    let (msg, took) = push_fails(&hasty(), &cache, &local, &server.image("test/dst:1"));
    assert!(
        msg.contains("cannot push")
            && msg.contains(&server.addr)
            && msg.contains("HTTP 400")
            && msg.contains("/blobs/uploads/"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn a_push_answered_with_a_drip_times_out_naming_the_registry() {
    let (cache, local, _source) = cached_image();
    // The upload starts; the blob's PUT gets an answer one byte at a time.
    let server = Hostile::start(|method, _, conn, _| match method {
        "HEAD" => respond(conn, "404 Not Found", &[], b""),
        "POST" => respond(
            conn,
            "202 Accepted",
            &[("Location", "/v2/test/dst/blobs/uploads/1?state=x")],
            b"",
        ),
        _ => {
            // Read the body the client sends, then drip the answer's head:
            // 70 s at most, enough to outlast the bound below.
            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            let _ = conn.write_all(b"HTTP/1.1 201 Created\r\nX-Drip: ");
            for _ in 0..700 {
                std::thread::sleep(Duration::from_millis(100));
                if conn.write_all(b"x").is_err() {
                    return;
                }
            }
        }
    });
    let (msg, took) = push_fails(&hasty(), &cache, &local, &server.image("test/dst:1"));
    assert!(
        msg.contains("cannot push")
            && msg.contains("timed out")
            && msg.contains(&server.addr)
            && msg.contains("PUT"),
        "{msg}"
    );
    assert!(
        took < Duration::from_secs(60),
        "the 2 s deadline did not fire: {took:?}"
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT /v2/test/dst/blobs/uploads/1?state=x&digest=sha256%3A")),
        "the blob was not PUT to the Location with its digest: {:?}",
        server.requests()
    );
}

#[test]
fn a_registry_that_accepts_no_connection_times_out_connecting() {
    // A listener with a backlog of 0 whose queue a first connection fills:
    // the kernel drops the next SYNs, so connecting hangs until a deadline.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(fillers.len() < 64, "the backlog never filled");
    }
    let client = Registry::new(RegistryOptions {
        limits: Limits {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        ..options(None)
    })
    .unwrap();
    let cache = TempCache::new();
    let (msg, took) = fails(&client, &cache, &format!("{addr}/test/unreachable:1"));
    assert!(
        msg.contains("timed out: could not connect to")
            && msg.contains(&addr.to_string())
            && msg.contains("LINUXKIT_REGISTRY_CONNECT_TIMEOUT"),
        "{msg}"
    );
    assert!(
        took < Duration::from_secs(30),
        "the 1 s connect deadline did not fire before the 30 s request deadline: {took:?}"
    );
    drop(fillers);
}
