//! The machine's log: an in-memory ring of lines with the reference's
//! `memlogd` protocol, the kernel's messages, and bounded files in
//! `/var/log`.
//!
//! Why a daemon of our own: the reference's init writes each service's
//! output to a file in `/var/log` that grows until the tmpfs is full,
//! unless the image adds the `memlogd` package (a ring in memory, read
//! with `logread`) and a `logwrite` service (files with size-based
//! rotation). Here both are always there, in the init's own binary, and
//! speak the reference's protocol so the reference's logging images
//! (`linuxkit/logwrite`, `linuxkit/kmsg`, `logread` in a getty) work
//! against it unchanged:
//!
//! - `/var/run/linuxkit-external-logging.sock` (datagram): a message whose
//!   payload is a source name and which carries file descriptors
//!   (`SCM_RIGHTS`); each descriptor is read line by line until its end,
//!   every line an entry of that source;
//! - `/var/run/memlogdq.sock` (stream): a client writes one mode byte (0
//!   dump the ring, 1 follow new entries, 2 dump then follow) and reads
//!   JSON lines `{"time": RFC 3339, "source": ..., "msg": ...}`.
//!
//! Names, as the reference's init gives them: a service's stdout is the
//! source `NAME.out`, its stderr `NAME`; an onboot container's
//! `onboot.NAME.out` and `onboot.NAME` (onshutdown: `shutdown.`); the
//! kernel's messages (read from `/dev/kmsg` by the daemon itself, with
//! their own timestamps) are `kmsg`; the daemon's own lines `memlogd`.
//!
//! The ring keeps the last 5000 lines, each cut at 1024 bytes (the
//! reference's `-max-lines` and `-max-line-len`), so its memory is bounded
//! whatever the services write. Each line of a source other than `kmsg`,
//! `memlogd` and the onboot/onshutdown ones (which have their files in
//! `/run/log`) is also appended to `/var/log/SOURCE.log` (so
//! `/var/log/NAME.log` and `/var/log/NAME.out.log`, the reference's
//! names), rotated as the reference's `logwrite` does: past 1 MiB the
//! file becomes `.1` (`.1` becomes `.2`, ...) and at most 10 files of a
//! source are kept. The lines are written as the service wrote them (as
//! the reference's init does without memlogd), not in `logwrite`'s
//! `TIME SOURCE MSG` form. When the reference's `logwrite` itself connects
//! (its process is named `logwrite`), it writes the same files, so the
//! daemon stops writing them, says so, and leaves them to it.
//!
//! PID 1 binds both sockets and starts the daemon ([`start`]) as a
//! process of its own (`memlogd -fd-log 3 -fd-query 4`, as the
//! reference's `startmemlogd` does), so a fault in it cannot take PID 1
//! down and its memory is its own. `logread` ([`logread_main`]) is an
//! applet of the same binary.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr};
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339_nano;

/// Where descriptors to log are sent (the reference's path).
pub const LOG_SOCKET: &str = "/var/run/linuxkit-external-logging.sock";
/// Where the log is queried (the reference's path).
pub const QUERY_SOCKET: &str = "/var/run/memlogdq.sock";

/// `path` (under `/var/run`) as this process sees it: a container that
/// binds the host's `/run` but has no `/var/run` link to it reaches the
/// socket as `/run/...`.
pub fn socket_path(path: &str) -> String {
    if fs::symlink_metadata(path).is_err()
        && let Some(rest) = path.strip_prefix("/var/run/")
    {
        let alt = format!("/run/{rest}");
        if fs::symlink_metadata(&alt).is_ok() {
            return alt;
        }
    }
    path.to_string()
}

/// A query's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The ring as it is, then the end.
    Dump = 0,
    /// New entries as they come.
    Follow = 1,
    /// The ring, then new entries.
    DumpFollow = 2,
}

/// One line of the log, as the protocol's JSON carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// When the daemon read it, RFC 3339 with nanoseconds, UTC (Go's
    /// `time.Time` in JSON).
    pub time: String,
    /// Who wrote it.
    pub source: String,
    /// The line, without its newline.
    pub msg: String,
}

impl Entry {
    /// `logread`'s form: `TIME;SOURCE;MSG`, `;` in the source escaped.
    pub fn line(&self) -> String {
        format!(
            "{};{};{}",
            self.time,
            self.source.replace(';', "\\;"),
            self.msg
        )
    }
}

/// The daemon's limits (the reference's memlogd and logwrite flags).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Lines kept in memory (`-max-lines`).
    pub max_lines: usize,
    /// Bytes kept of a line (`-max-line-len`); the rest is dropped.
    pub max_line_len: usize,
    /// Where sources' files go (`-log-dir`); `None`: no files.
    pub log_dir: Option<PathBuf>,
    /// A file's size before it is rotated (`-max-log-size`).
    pub max_log_size: u64,
    /// Files kept per source, the current one included (`-max-log-files`).
    pub max_log_files: u32,
    /// Whether the kernel's messages are read (`-kmsg=false`: not).
    pub kmsg: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_lines: 5000,
            max_line_len: 1024,
            log_dir: Some(PathBuf::from("/var/log")),
            max_log_size: 1024 * 1024,
            max_log_files: 10,
            kmsg: true,
        }
    }
}

/// At most this many sources get files (a client could send any number
/// of names); the others are kept in memory only.
const MAX_FILE_SOURCES: usize = 256;
/// At most this many descriptors are read at once (a thread each).
const MAX_READERS: usize = 1024;

/// Whether `source` gets a file in the log directory.
fn has_file(source: &str) -> bool {
    !(source == "kmsg"
        || source == "memlogd"
        || source.starts_with("onboot.")
        || source.starts_with("shutdown."))
}

/// The file name of a source: `SOURCE.log`, with what could leave the
/// directory (`/`, a leading `.`, NUL) replaced by `_`.
pub fn file_name(source: &str) -> String {
    let mut s: String = source
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s.push_str(".log");
    s
}

/// A source's current file.
struct LogFile {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
}

/// Opens `path` to append to it, only if it is (or becomes) a regular
/// file: `/var/log` is shared with containers, and one could plant a link
/// there (not followed), or a FIFO or device, whose open or writes would
/// block the daemon (opened without blocking, then refused).
fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    // Regular files do not block; the flag is cleared all the same.
    let flags = nix::fcntl::OFlag::from_bits_truncate(
        nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?,
    );
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFL(flags - nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok(f)
}

impl LogFile {
    fn open(path: PathBuf) -> io::Result<LogFile> {
        let f = open_append(&path)?;
        let size = f.metadata()?.len();
        Ok(LogFile {
            path,
            out: BufWriter::with_capacity(16 * 1024, f),
            size,
        })
    }

    /// `PATH.(n-1)` dropped, each `PATH.i` renamed `PATH.(i+1)`, `PATH`
    /// renamed `PATH.1`, a new empty `PATH`.
    fn rotate(&mut self, files: u32) -> io::Result<()> {
        self.out.flush()?;
        let nth = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if files <= 1 {
            let _ = fs::remove_file(&self.path);
        } else {
            for i in (1..files - 1).rev() {
                let _ = fs::rename(nth(i), nth(i + 1));
            }
            fs::rename(&self.path, nth(1))?;
        }
        self.out = BufWriter::with_capacity(16 * 1024, open_append(&self.path)?);
        self.size = 0;
        Ok(())
    }
}

/// What the threads share.
struct Shared {
    limits: Limits,
    ring: Mutex<Ring>,
    /// Each source's file; `None` for one whose file could not be opened
    /// or rotated (said once, not tried again for every line).
    files: Mutex<HashMap<String, Option<LogFile>>>,
    /// Cleared when the reference's `logwrite` takes the files over.
    files_on: AtomicBool,
    readers: AtomicUsize,
}

struct Ring {
    lines: VecDeque<Arc<Entry>>,
    followers: Vec<SyncSender<Arc<Entry>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(limits: Limits) -> Arc<Shared> {
        Arc::new(Shared {
            ring: Mutex::new(Ring {
                lines: VecDeque::with_capacity(limits.max_lines.min(1024)),
                followers: Vec::new(),
            }),
            files: Mutex::new(HashMap::new()),
            files_on: AtomicBool::new(limits.log_dir.is_some()),
            readers: AtomicUsize::new(0),
            limits,
        })
    }

    /// Adds an entry to the ring and the followers (a follower too slow to
    /// take it misses it, as in the reference).
    fn push(&self, e: Entry) {
        let e = Arc::new(e);
        let mut r = lock(&self.ring);
        if r.lines.len() >= self.limits.max_lines {
            r.lines.pop_front();
        }
        if self.limits.max_lines > 0 {
            r.lines.push_back(e.clone());
        }
        r.followers
            .retain(|f| !matches!(f.try_send(e.clone()), Err(TrySendError::Disconnected(_))));
    }

    /// Appends `msg` to `source`'s file, rotating it when full.
    fn write_file(&self, source: &str, msg: &[u8]) {
        if !self.files_on.load(Ordering::Relaxed) || !has_file(source) {
            return;
        }
        let Some(dir) = &self.limits.log_dir else {
            return;
        };
        let mut files = lock(&self.files);
        if !files.contains_key(source) {
            if files.len() >= MAX_FILE_SOURCES {
                return;
            }
            match LogFile::open(dir.join(file_name(source))) {
                Ok(f) => {
                    files.insert(source.to_string(), Some(f));
                }
                Err(e) => {
                    files.insert(source.to_string(), None);
                    drop(files);
                    self.say(format!(
                        "{source}: cannot open its file: {e}; its lines stay in memory only"
                    ));
                    return;
                }
            }
        }
        let Some(Some(f)) = files.get_mut(source) else {
            return;
        };
        if f.out
            .write_all(msg)
            .and_then(|()| f.out.write_all(b"\n"))
            .is_err()
        {
            return;
        }
        f.size += msg.len() as u64 + 1;
        if f.size > self.limits.max_log_size
            && let Err(e) = f.rotate(self.limits.max_log_files)
        {
            let p = f.path.display().to_string();
            files.insert(source.to_string(), None);
            drop(files);
            self.say(format!("{p}: rotating: {e}; its lines stay in memory only"));
        }
    }

    fn flush(&self, source: &str) {
        if let Some(Some(f)) = lock(&self.files).get_mut(source) {
            let _ = f.out.flush();
        }
    }

    /// The daemon's own line.
    fn say(&self, msg: String) {
        self.push(Entry {
            time: rfc3339_nano(SystemTime::now()),
            source: "memlogd".into(),
            msg,
        });
    }

    /// Reads `fd` line by line until its end, each line an entry of
    /// `source`.
    fn read_lines(&self, fd: OwnedFd, source: &str) {
        let max = self.limits.max_line_len;
        let mut f = File::from(fd);
        let mut buf = vec![0u8; 64 * 1024];
        let mut line: Vec<u8> = Vec::new();
        let emit = |line: &mut Vec<u8>| {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let msg = String::from_utf8_lossy(line).into_owned();
            self.write_file(source, msg.as_bytes());
            self.push(Entry {
                time: rfc3339_nano(SystemTime::now()),
                source: source.to_string(),
                msg,
            });
            line.clear();
        };
        // Whether the current line already has `max` bytes (and the
        // rest of it is dropped).
        let mut full = false;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (part, nl) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                if !full {
                    let room = max.saturating_sub(line.len());
                    line.extend_from_slice(&part[..part.len().min(room)]);
                    full = line.len() >= max;
                }
                rest = &rest[(part.len() + usize::from(nl)).min(rest.len())..];
                if nl {
                    emit(&mut line);
                    full = false;
                }
            }
            self.flush(source);
        }
        if !line.is_empty() || full {
            emit(&mut line);
        }
        self.flush(source);
    }

    /// Starts a thread reading `fd` as `source`.
    fn spawn_reader(self: &Arc<Self>, fd: OwnedFd, source: String) {
        if self.readers.fetch_add(1, Ordering::SeqCst) >= MAX_READERS {
            self.readers.fetch_sub(1, Ordering::SeqCst);
            self.say(format!(
                "{source}: not logged, {MAX_READERS} descriptors are read already"
            ));
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                me.read_lines(fd, &source);
                me.readers.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.readers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Serves one query connection.
    fn serve_query(self: &Arc<Self>, mut conn: UnixStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut mode = [0u8; 1];
        if conn.read_exact(&mut mode).is_err() {
            self.say("a query sent no mode".into());
            return;
        }
        let _ = conn.set_read_timeout(None);
        let mode = match mode[0] {
            0 => Mode::Dump,
            1 => Mode::Follow,
            2 => Mode::DumpFollow,
            m => {
                self.say(format!("a query with unknown mode {m}"));
                return;
            }
        };
        if mode == Mode::DumpFollow
            && peer_is_logwrite(&conn)
            && self.files_on.swap(false, Ordering::SeqCst)
        {
            let dir = self.limits.log_dir.as_deref().unwrap_or(Path::new(""));
            let msg = format!(
                "logwrite connected: it writes {} from now on, memlogd stops writing its files there",
                dir.display()
            );
            crate::info!("memlogd: {msg}");
            // Dropping the writers flushes them.
            lock(&self.files).clear();
            self.say(msg);
        }
        let (snapshot, rx) = {
            let mut r = lock(&self.ring);
            let snapshot: Vec<Arc<Entry>> = if mode == Mode::Follow {
                Vec::new()
            } else {
                r.lines.iter().cloned().collect()
            };
            let rx = if mode == Mode::Dump {
                None
            } else {
                let (tx, rx) = mpsc::sync_channel(self.limits.max_lines.max(16));
                r.followers.push(tx);
                Some(rx)
            };
            (snapshot, rx)
        };
        let mut out = BufWriter::new(&conn);
        let send = |out: &mut BufWriter<&UnixStream>, e: &Entry| -> io::Result<()> {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")
        };
        for e in &snapshot {
            if send(&mut out, e).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
        if let Some(rx) = rx {
            while let Ok(e) = rx.recv() {
                if send(&mut out, &e).and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether the peer of `conn` is the reference's `logwrite`.
fn peer_is_logwrite(conn: &UnixStream) -> bool {
    let Ok(cred) = nix::sys::socket::getsockopt(conn, nix::sys::socket::sockopt::PeerCredentials)
    else {
        return false;
    };
    fs::read_to_string(format!("/proc/{}/comm", cred.pid()))
        .is_ok_and(|c| c.trim_end() == "logwrite")
}

/// Receives descriptors on the log socket, forever.
fn receive_fds(shared: Arc<Shared>, sock: UnixDatagram) {
    let mut name = [0u8; 512];
    let mut cmsg = nix::cmsg_space!([RawFd; 16]);
    loop {
        let mut iov = [IoSliceMut::new(&mut name)];
        let msg = match nix::sys::socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                shared.say(format!("receiving descriptors: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let n = msg.bytes;
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(r) = c {
                    // SAFETY: the kernel just installed these descriptors
                    // in this process for us (SCM_RIGHTS); nothing else
                    // owns them.
                    fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
        }
        let source = String::from_utf8_lossy(&name[..n]).into_owned();
        for fd in fds {
            shared.spawn_reader(fd, source.clone());
        }
    }
}

/// Reads the kernel's messages (`/dev/kmsg`) as source `kmsg`, each with
/// the time the kernel stamped it.
fn read_kmsg(shared: Arc<Shared>) {
    let Ok(mut f) = File::open("/dev/kmsg") else {
        shared.say("no /dev/kmsg: the kernel's messages are not logged".into());
        return;
    };
    let now = SystemTime::now();
    let up = crate::log::uptime();
    let boot = now.checked_sub(up).unwrap_or(UNIX_EPOCH);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            // EPIPE: records were overwritten before we read them.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if let Some((usec, text)) = parse_kmsg(&buf[..n]) {
            let mut msg = text;
            msg.truncate(shared.limits.max_line_len);
            shared.push(Entry {
                time: rfc3339_nano(boot + Duration::from_micros(usec)),
                source: "kmsg".into(),
                msg: String::from_utf8_lossy(&msg).into_owned(),
            });
        }
    }
}

/// A `/dev/kmsg` record (`PRI,SEQ,USEC,FLAGS;TEXT\n KEY=VALUE...`): its
/// time since boot in microseconds and its text.
pub fn parse_kmsg(rec: &[u8]) -> Option<(u64, Vec<u8>)> {
    let semi = rec.iter().position(|&b| b == b';')?;
    let head = std::str::from_utf8(&rec[..semi]).ok()?;
    let usec = head.split(',').nth(2)?.parse().ok()?;
    let text = &rec[semi + 1..];
    let end = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    Some((usec, text[..end].to_vec()))
}

/// Runs the daemon on the two sockets. Never returns unless a thread
/// cannot start.
pub fn serve(log: UnixDatagram, query: UnixListener, limits: Limits) -> io::Result<()> {
    let shared = Shared::new(limits);
    shared.say("memlogd started".into());
    if shared.limits.kmsg {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("kmsg".into())
            .stack_size(128 * 1024)
            .spawn(move || read_kmsg(s))?;
    }
    {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("fds".into())
            .stack_size(128 * 1024)
            .spawn(move || receive_fds(s, log))?;
    }
    for conn in query.incoming() {
        match conn {
            Ok(c) => {
                let s = shared.clone();
                let _ = std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || s.serve_query(c));
            }
            Err(e) => {
                shared.say(format!("accepting a query: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// Binds a socket at `path`, replacing a stale one.
fn bind_fresh<T>(path: &str, bind: impl Fn(&str) -> io::Result<T>) -> io::Result<T> {
    let _ = fs::remove_file(path);
    bind(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// PID 1's part: binds the two sockets and starts the daemon with them
/// (as the reference's `startmemlogd`). Returns its pid.
pub fn start() -> io::Result<u32> {
    let log = bind_fresh(LOG_SOCKET, |p| UnixDatagram::bind(p))?;
    let query = bind_fresh(QUERY_SOCKET, |p| UnixListener::bind(p))?;
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/sbin/linuxkit-init"));
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["memlogd", "-fd-log", "3", "-fd-query", "4"])
        .stdin(std::process::Stdio::null());
    let _keep = hand_fds(&mut cmd, &[log.as_fd(), query.as_fd()])?;
    let child = cmd.spawn()?;
    Ok(child.id())
}

/// Makes `fds` descriptors 3, 4, ... of the process `cmd` starts. The
/// returned copies (placed above them, so one dup2 cannot overwrite
/// another's source) must be kept until the spawn.
pub fn hand_fds(
    cmd: &mut std::process::Command,
    fds: &[BorrowedFd<'_>],
) -> io::Result<Vec<OwnedFd>> {
    let high: Vec<OwnedFd> = fds
        .iter()
        .map(|fd| {
            let n = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))?;
            // SAFETY: fcntl just made this descriptor and nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(n) })
        })
        .collect::<io::Result<_>>()?;
    let raw: Vec<RawFd> = high.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: between fork and exec only dup2, async-signal-safe, on
    // descriptors the caller keeps open until the spawn returns.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(high)
}

/// `memlogd [-fd-log N -fd-query N | -socket-log P -socket-query P]
/// [-max-lines N] [-max-line-len N] [-log-dir D] [-max-log-size N]
/// [-max-log-files N] [-kmsg=false]`.
pub fn memlogd_main(args: &[String]) -> i32 {
    let _ = nix::sys::prctl::set_name(c"memlogd");
    // Started by PID 1, which blocks the signals it waits for: the
    // daemon must die on the shutdown's TERM like any process, not make
    // the shutdown wait out its grace.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // SAFETY: restoring the default action installs no handler.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let mut limits = Limits::default();
    let (mut fd_log, mut fd_query) = (None::<RawFd>, None::<RawFd>);
    let (mut socket_log, mut socket_query) = (LOG_SOCKET.to_string(), QUERY_SOCKET.to_string());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.trim_start_matches('-');
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (flag, None),
        };
        let Some(v) = inline.or_else(|| it.next().cloned()) else {
            eprintln!("memlogd: {a} needs a value");
            return 2;
        };
        let num = |v: &str| v.parse::<u64>().ok();
        let ok = match flag {
            "fd-log" => v.parse().map(|n| fd_log = Some(n)).is_ok(),
            "fd-query" => v.parse().map(|n| fd_query = Some(n)).is_ok(),
            "socket-log" => {
                socket_log = v.clone();
                true
            }
            "socket-query" => {
                socket_query = v.clone();
                true
            }
            "max-lines" => num(&v).map(|n| limits.max_lines = n as usize).is_some(),
            "max-line-len" => num(&v).map(|n| limits.max_line_len = n as usize).is_some(),
            "log-dir" => {
                limits.log_dir = (!v.is_empty()).then(|| PathBuf::from(&v));
                true
            }
            "max-log-size" => num(&v).map(|n| limits.max_log_size = n).is_some(),
            "max-log-files" => num(&v).map(|n| limits.max_log_files = n as u32).is_some(),
            "kmsg" => v.parse().map(|b| limits.kmsg = b).is_ok(),
            _ => {
                eprintln!("memlogd: unknown flag {a}");
                return 2;
            }
        };
        if !ok {
            eprintln!("memlogd: {a}: not a number: {v}");
            return 2;
        }
    }
    let log = match fd_log {
        // SAFETY: a descriptor our parent handed us for this use
        // (`-fd-log`), owned by nothing else in this process.
        Some(fd) => unsafe { UnixDatagram::from_raw_fd(fd) },
        None => match bind_fresh(&socket_log, |p| UnixDatagram::bind(p)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("memlogd: {e}");
                return 1;
            }
        },
    };
    let query = match fd_query {
        // SAFETY: as for `-fd-log`.
        Some(fd) => unsafe { UnixListener::from_raw_fd(fd) },
        None => match bind_fresh(&socket_query, |p| UnixListener::bind(p)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("memlogd: {e}");
                return 1;
            }
        },
    };
    match serve(log, query, limits) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("memlogd: {e}");
            1
        }
    }
}

/// Sends `fd` to the daemon at `socket` as `source`.
pub fn send_fd(socket: &str, source: &str, fd: RawFd) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let addr = UnixAddr::new(socket).map_err(io::Error::from)?;
    let fds = [fd];
    nix::sys::socket::sendmsg(
        sock.as_raw_fd(),
        &[IoSlice::new(source.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&addr),
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("{socket}: {e}")))?;
    Ok(())
}

/// Whether the daemon's log socket is there (so output may be sent to it).
pub fn running() -> bool {
    fs::symlink_metadata(socket_path(LOG_SOCKET)).is_ok()
}

/// Opens a query of `mode` on `socket`: its entries, one per item.
pub fn query(socket: &str, mode: Mode) -> io::Result<impl Iterator<Item = io::Result<Entry>>> {
    let mut c = UnixStream::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("{socket}: {e}")))?;
    c.write_all(&[mode as u8])?;
    Ok(io::BufReader::new(c).lines().map(|l| {
        let l = l?;
        serde_json::from_str::<Entry>(&l).map_err(io::Error::other)
    }))
}

/// The last `n` entries of the given sources in the ring.
pub fn tail(sources: &[&str], n: usize) -> io::Result<Vec<Entry>> {
    let mut v: VecDeque<Entry> = VecDeque::new();
    for e in query(&socket_path(QUERY_SOCKET), Mode::Dump)? {
        let e = e?;
        if sources.contains(&e.source.as_str()) {
            if v.len() == n {
                v.pop_front();
            }
            v.push_back(e);
        }
    }
    Ok(v.into())
}

/// `logread [-f] [-F] [-socket PATH]`: the log (`-f`: only new lines, as
/// they come; `-F`: all of it, then new lines), one `TIME;SOURCE;MSG` a
/// line, as the reference's `logread`.
pub fn logread_main(args: &[String]) -> i32 {
    let (mut follow, mut dump_follow) = (false, false);
    let mut socket = socket_path(QUERY_SOCKET);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "--f" => follow = true,
            "-F" | "--F" => dump_follow = true,
            "-socket" | "--socket" => match it.next() {
                Some(s) => socket = s.clone(),
                None => {
                    eprintln!("logread: {a} needs a path");
                    return 2;
                }
            },
            s if s.starts_with("-socket=") || s.starts_with("--socket=") => {
                socket = s
                    .split_once('=')
                    .map(|x| x.1.to_string())
                    .unwrap_or_default();
            }
            "-h" | "--help" => {
                println!(
                    "usage: logread [-f] [-F] [-socket PATH]\n  -f  follow new lines\n  -F  all lines, then follow\n  -socket  the query socket (default {QUERY_SOCKET})"
                );
                return 0;
            }
            other => {
                eprintln!(
                    "logread: unknown argument {other}; usage: logread [-f] [-F] [-socket PATH]"
                );
                return 2;
            }
        }
    }
    let mode = if dump_follow {
        Mode::DumpFollow
    } else if follow {
        Mode::Follow
    } else {
        Mode::Dump
    };
    let entries = match query(&socket, mode) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("logread: {e} (is the log daemon running?)");
            return 1;
        }
    };
    let stdout = io::stdout();
    for e in entries {
        match e {
            Ok(e) => {
                let mut o = stdout.lock();
                if writeln!(o, "{}", e.line())
                    .and_then(|()| o.flush())
                    .is_err()
                {
                    return 0;
                }
            }
            Err(e) => {
                eprintln!("logread: {e}");
                return 1;
            }
        }
    }
    0
}

/// `log-forward`, a containerd logging binary (`binary:///sbin/linuxkit-init?log-forward`
/// as a task's stdout and stderr): hands its descriptors 3 (the task's
/// stdout) and 4 (stderr) to the daemon as `ID.out` and `ID` (`ID` from
/// `CONTAINER_ID`), then closes 5 to say it is ready, and exits. Should the
/// daemon be unreachable, it copies them to `/var/log/ID.out.log` and
/// `/var/log/ID.log` itself until they end.
pub fn log_forward_main(_args: &[String]) -> i32 {
    let id = std::env::var("CONTAINER_ID").unwrap_or_default();
    if id.is_empty() {
        eprintln!(
            "log-forward: no CONTAINER_ID (run by a containerd shim for a binary:// log URI)"
        );
        return 2;
    }
    let socket = socket_path(LOG_SOCKET);
    let sent = send_fd(&socket, &format!("{id}.out"), 3).and_then(|()| send_fd(&socket, &id, 4));
    // SAFETY: descriptors 3, 4 and 5 are the shim's hand-over to this
    // process (the binary-logger protocol) and nothing else uses them.
    let (out, err, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(3),
            OwnedFd::from_raw_fd(4),
            OwnedFd::from_raw_fd(5),
        )
    };
    match sent {
        Ok(()) => {
            drop(ready);
            0
        }
        Err(e) => {
            crate::warn!("log-forward {id}: {e}; copying its output to /var/log instead");
            let copy = |fd: OwnedFd, name: String| {
                std::thread::spawn(move || {
                    let path = Path::new("/var/log").join(file_name(&name));
                    if let Ok(mut f) = open_append(&path) {
                        let _ = io::copy(&mut File::from(fd), &mut f);
                    }
                })
            };
            let a = copy(out, format!("{id}.out"));
            let b = copy(err, id);
            drop(ready);
            let _ = a.join();
            let _ = b.join();
            0
        }
    }
}

/// Adds one line to the log as `source` (the init's notes about a
/// service, such as a restart, in that service's log); nothing when the
/// daemon is not running.
pub fn say_as(source: &str, line: &str) {
    if !running() {
        return;
    }
    let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return;
    };
    let mut w = File::from(w);
    if w.write_all(line.as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .is_ok()
    {
        drop(w);
        let _ = send_fd(&socket_path(LOG_SOCKET), source, r.as_raw_fd());
    }
}

/// Hands an already written file to the daemon as `source` (the onboot
/// and onshutdown containers' logs, once they have ended).
pub fn send_file(path: &Path, source: &str) -> io::Result<()> {
    let f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(());
    }
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken from `f`; this owner closes it after
    // the send (the daemon has its own copy).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    send_fd(&socket_path(LOG_SOCKET), source, owned.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_name("web"), "web.log");
        assert_eq!(file_name("web.out"), "web.out.log");
        assert_eq!(file_name("../etc/x"), "_.._etc_x.log");
        assert_eq!(file_name(""), "_.log");
        assert!(!has_file("onboot.dhcpcd") && !has_file("kmsg") && has_file("web"));
    }

    #[test]
    fn kmsg_records_give_time_and_text() {
        let r = b"6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n";
        assert_eq!(
            parse_kmsg(r),
            Some((5_140_900, b"NET: Registered protocol family 10".to_vec()))
        );
        assert_eq!(parse_kmsg(b"garbage"), None);
    }

    fn daemon(dir: &Path, limits: Limits) -> (String, String) {
        let (l, q) = (
            dir.join("log.sock").display().to_string(),
            dir.join("q.sock").display().to_string(),
        );
        let log = UnixDatagram::bind(&l).unwrap();
        let query = UnixListener::bind(&q).unwrap();
        std::thread::spawn(move || serve(log, query, limits));
        (l, q)
    }

    fn wait_for(q: &str, what: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
        for _ in 0..500 {
            let v: Vec<Entry> = query(q, Mode::Dump).unwrap().map(Result::unwrap).collect();
            if what(&v) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the log never got there");
    }

    #[test]
    fn lines_sent_by_descriptor_reach_the_ring_files_and_followers() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("log");
        fs::create_dir(&logs).unwrap();
        let limits = Limits {
            max_lines: 50,
            max_line_len: 10,
            log_dir: Some(logs.clone()),
            max_log_size: 100,
            max_log_files: 3,
            kmsg: false,
        };
        let (l, q) = daemon(dir.path(), limits);
        let mut follow = query(&q, Mode::Follow).unwrap();
        let (mut w, r) = UnixStream::pair().unwrap();
        send_fd(&l, "svc.out", r.as_raw_fd()).unwrap();
        drop(r);
        w.write_all(b"hello\r\na line longer than ten bytes\n")
            .unwrap();
        // 20 lines of 9 bytes: the file rotates, 3 files at most.
        for i in 0..20 {
            writeln!(w, "line {i:03}").unwrap();
        }
        w.write_all(b"no newline").unwrap();
        drop(w);
        let v = wait_for(&q, |v| v.iter().any(|e| e.msg == "no newline"));
        let msgs: Vec<&str> = v
            .iter()
            .filter(|e| e.source == "svc.out")
            .map(|e| e.msg.as_str())
            .collect();
        assert_eq!(&msgs[..3], ["hello", "a line lon", "line 000"]);
        assert_eq!(msgs.len(), 23);
        let first = follow.next().unwrap().unwrap();
        assert!(first.source == "svc.out" || first.source == "memlogd");
        let mut names: Vec<String> = fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["svc.out.log", "svc.out.log.1", "svc.out.log.2"]);
        // The newest lines are at the end of `.1` and the current file.
        let newest = fs::read_to_string(logs.join("svc.out.log.1")).unwrap()
            + &fs::read_to_string(logs.join("svc.out.log")).unwrap();
        assert!(newest.ends_with("line 019\nno newline\n"), "{newest}");
        for n in &names {
            assert!(fs::metadata(logs.join(n)).unwrap().len() <= 100 + 11);
        }
    }

    #[test]
    fn a_fifo_planted_as_a_log_file_is_refused_and_logging_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("log");
        fs::create_dir(&logs).unwrap();
        // A container sharing /var/log made `web.log` a FIFO with no
        // reader: opening it to write would block the daemon for ever.
        nix::unistd::mkfifo(&logs.join("web.log"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        // With a reader (the container's), the open itself succeeds: the
        // file's type refuses it; without one, the open fails at once.
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(logs.join("web.log"))
            .unwrap();
        let limits = Limits {
            log_dir: Some(logs.clone()),
            kmsg: false,
            ..Limits::default()
        };
        let (l, q) = daemon(dir.path(), limits);
        let (mut web, r) = UnixStream::pair().unwrap();
        send_fd(&l, "web", r.as_raw_fd()).unwrap();
        drop(r);
        let (mut db, r) = UnixStream::pair().unwrap();
        send_fd(&l, "db", r.as_raw_fd()).unwrap();
        drop(r);
        for i in 0..3 {
            writeln!(web, "web {i}").unwrap();
        }
        writeln!(db, "db 0").unwrap();
        drop((web, db));
        let v = wait_for(&q, |v| {
            v.iter().any(|e| e.msg == "web 2") && v.iter().any(|e| e.msg == "db 0")
        });
        let refusals: Vec<&Entry> = v
            .iter()
            .filter(|e| e.source == "memlogd" && e.msg.contains("web: cannot open its file"))
            .collect();
        assert_eq!(refusals.len(), 1, "said once: {v:?}");
        assert!(refusals[0].msg.contains("not a regular file"), "{v:?}");
        // The other source's file is written as usual.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fs::read_to_string(logs.join("db.log")).unwrap_or_default() != "db 0\n" {
            assert!(std::time::Instant::now() < deadline, "db.log never written");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_lines: 5,
            log_dir: None,
            kmsg: false,
            ..Limits::default()
        };
        let (l, q) = daemon(dir.path(), limits);
        let (mut w, r) = UnixStream::pair().unwrap();
        send_fd(&l, "x", r.as_raw_fd()).unwrap();
        drop(r);
        for i in 0..100 {
            writeln!(w, "{i}").unwrap();
        }
        drop(w);
        let v = wait_for(&q, |v| v.iter().any(|e| e.msg == "99"));
        assert_eq!(v.len(), 5);
        assert_eq!(v[0].msg, "95");
        assert!(v[0].line().contains(";x;95"));
    }
}
