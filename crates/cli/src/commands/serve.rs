//! `linuxkit serve`: a directory over HTTP, as the reference's (Go's
//! `http.FileServer`), for iPXE to fetch a kernel, initrd and script from:
//! GET and HEAD, `index.html` for a directory that has one, else a listing,
//! a redirect from `dir` to `dir/`, each request logged.
//!
//! Deliberately stricter than the reference: a path that leaves the
//! directory through a symbolic link is not served (404), as nothing
//! outside what the user named should reach the network; `Range` requests
//! get the whole file.
//!
//! Bounded: a fixed pool of workers answers requests; the HTTP parsing
//! (and its limits on request lines and headers) is tiny_http's.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};

use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

use crate::cli::ServeArgs;
use crate::error::{Error, IoContext, Result};

/// The arguments this handler reads (see `crate::flags`).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: crate::cli::Honoured = &[("serve", &["port", "directory"])];

/// Requests answered at once.
const WORKERS: usize = 4;

/// `--port`: `[HOST]:PORT`, as Go's `ListenAndServe` takes it; no host
/// means every interface.
pub fn listen_addr(port: &str) -> Result<Vec<SocketAddr>> {
    let bad = || {
        Error::Usage(format!(
            "invalid --port `{port}`: expected [HOST]:PORT, e.g. :8080 or 127.0.0.1:8080"
        ))
    };
    let (host, p) = port.rsplit_once(':').ok_or_else(bad)?;
    let p: u16 = p.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Ok(vec![
            SocketAddr::from(([0u16; 8], p)),
            SocketAddr::from(([0u8; 4], p)),
        ]);
    }
    let addrs: Vec<SocketAddr> = (host, p)
        .to_socket_addrs()
        .map_err(|e| Error::Usage(format!("--port `{port}`: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(bad());
    }
    Ok(addrs)
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let ServeArgs { port, directory } = args;
    let (root, server, bound) = listen(directory, port)?;
    // stderr, unconditionally: a caller that asked for port 0 learns the port.
    let _ = writeln!(
        std::io::stderr(),
        "serving {} on http://{bound}/",
        root.display()
    );
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while let Ok(request) = server.recv() {
                    answer(&root, None, request);
                }
            });
        }
    });
    Ok(())
}

/// The directory (canonical), its server, and the address it listens on.
fn listen(directory: &Path, port: &str) -> Result<(PathBuf, Server, SocketAddr)> {
    let root = directory
        .canonicalize()
        .context(|| format!("--directory {}", directory.display()))?;
    if !root.is_dir() {
        return Err(Error::Usage(format!(
            "--directory {}: not a directory",
            directory.display()
        )));
    }
    let addrs = listen_addr(port)?;
    let listener = TcpListener::bind(&addrs[..]).context(|| format!("cannot listen on {port}"))?;
    let bound = listener
        .local_addr()
        .context(|| format!("cannot listen on {port}"))?;
    let server = Server::from_listener(listener, None)
        .map_err(|e| Error::Usage(format!("cannot serve on {bound}: {e}")))?;
    Ok((root, server, bound))
}

/// Serves the files `only` names in `directory` (nothing else: not the
/// rest of a directory the user happens to build in, e.g. a home with its
/// keys) on `port` from background threads for the rest of the process
/// (`run qemu --netboot`); returns the address bound.
pub fn spawn(directory: &Path, port: &str, only: Vec<String>) -> Result<SocketAddr> {
    let (root, server, bound) = listen(directory, port)?;
    let server = std::sync::Arc::new(server);
    let shared = std::sync::Arc::new((root, only));
    for _ in 0..WORKERS {
        let (server, shared) = (server.clone(), shared.clone());
        std::thread::spawn(move || {
            while let Ok(request) = server.recv() {
                answer(&shared.0, Some(&shared.1), request);
            }
        });
    }
    Ok(bound)
}

/// Whether `url` names one of the files `only` lists, directly under the
/// root.
fn allowed(only: &[String], url: &str) -> bool {
    matches!(clean_path(url), Some((parts, false)) if parts.len() == 1 && only.contains(&parts[0]))
}

/// The request path made relative: percent-decoded, `.` and `..` resolved
/// lexically as Go's `path.Clean` does (nothing climbs above the root).
/// `None` for a path that does not decode to UTF-8.
pub fn clean_path(url: &str) -> Option<(Vec<String>, bool)> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let dir_form = decoded.ends_with('/');
    let mut parts: Vec<String> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s.to_string()),
        }
    }
    Some((parts, dir_form))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "ipxe" | "cfg" | "yml" | "yaml") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("tar") => "application/x-tar",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// What a request is answered with, before the answer is sent.
enum Answer {
    Text(u16, String),
    Redirect(String),
    Html(String),
    File(PathBuf),
}

/// Resolves a request for `url` under `root`.
fn resolve(root: &Path, url: &str) -> Answer {
    let Some((parts, dir_form)) = clean_path(url) else {
        return Answer::Text(400, "400 bad request\n".into());
    };
    let mut path = root.to_path_buf();
    for p in &parts {
        path.push(p);
    }
    // Symbolic links are followed only while they stay under the root.
    let Ok(real) = path.canonicalize() else {
        return Answer::Text(404, "404 page not found\n".into());
    };
    if !real.starts_with(root) {
        return Answer::Text(404, "404 page not found\n".into());
    }
    let last = parts.last().map(String::as_str).unwrap_or("");
    if real.is_dir() {
        if !dir_form {
            return Answer::Redirect(format!("{last}/"));
        }
        let index = real.join("index.html");
        if index.is_file() && index.canonicalize().is_ok_and(|i| i.starts_with(root)) {
            return Answer::File(index);
        }
        let Ok(entries) = std::fs::read_dir(&real) else {
            return Answer::Text(500, "500 cannot list the directory\n".into());
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| {
                let mut n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() {
                    n.push('/');
                }
                n
            })
            .collect();
        names.sort();
        let mut html = String::from(
            "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
        );
        for n in names {
            let e = escape_html(&n);
            html.push_str(&format!("<a href=\"{e}\">{e}</a>\n"));
        }
        html.push_str("</pre>\n");
        return Answer::Html(html);
    }
    if last == "index.html" {
        return Answer::Redirect("./".into());
    }
    if dir_form {
        return Answer::Text(404, "404 page not found\n".into());
    }
    Answer::File(real)
}

/// Answers `request` from `root`; with `only`, just those files.
fn answer(root: &Path, only: Option<&[String]>, request: Request) {
    // Each request on stderr as the reference logs it; written directly,
    // as a server must outlive a closed stderr (tracing's writer panics).
    if tracing::enabled!(tracing::Level::INFO) {
        let _ = writeln!(std::io::stderr(), "{} {}", request.method(), request.url());
    }
    if !matches!(request.method(), Method::Get | Method::Head) {
        let _ = request.respond(
            text(405, "405 method not allowed\n").with_header(header("Allow", "GET, HEAD")),
        );
        return;
    }
    let found = match only {
        Some(names) if !allowed(names, request.url()) => {
            Answer::Text(404, "404 page not found\n".into())
        }
        _ => resolve(root, request.url()),
    };
    let result = match found {
        Answer::Text(status, body) => request.respond(text(status, &body)),
        Answer::Redirect(to) => {
            request.respond(Response::empty(StatusCode(301)).with_header(header("Location", &to)))
        }
        Answer::Html(html) => request.respond(
            Response::from_string(html)
                .with_header(header("Content-Type", "text/html; charset=utf-8")),
        ),
        Answer::File(path) => match std::fs::File::open(&path) {
            Ok(f) => request.respond(
                Response::from_file(f).with_header(header("Content-Type", content_type(&path))),
            ),
            Err(_) => request.respond(text(404, "404 page not found\n")),
        },
    };
    if let Err(e) = result {
        tracing::debug!("answering a request: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_files_are_allowed() {
        let only = ["a.ipxe".to_string(), "a-kernel".to_string()];
        assert!(allowed(&only, "/a.ipxe"));
        assert!(allowed(&only, "/x/../a-kernel"));
        assert!(!allowed(&only, "/"));
        assert!(!allowed(&only, "/a.ipxe/"));
        assert!(!allowed(&only, "/.ssh/id_ed25519"));
        assert!(!allowed(&only, "/sub/a.ipxe"));
    }

    #[test]
    fn paths_are_cleaned_as_go_does() {
        let c = |s| clean_path(s).unwrap();
        assert_eq!(c("/a/b/../c"), (vec!["a".into(), "c".into()], false));
        assert_eq!(
            c("/../../etc/passwd"),
            (vec!["etc".into(), "passwd".into()], false)
        );
        assert_eq!(c("/%2e%2e/x/"), (vec!["x".into()], true));
        assert_eq!(c("/a%20b?x=1"), (vec!["a b".into()], false));
        assert!(clean_path("/%ff").is_none());
        assert!(clean_path("/%00").is_none());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr(":8080").unwrap().len(), 2);
        assert_eq!(
            listen_addr("127.0.0.1:0").unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 0))]
        );
        assert!(listen_addr("8080").is_err());
        assert!(listen_addr(":http").is_err());
    }
}
