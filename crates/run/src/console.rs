//! Watching a console stream for texts: what the boot test expects, what
//! means failure, and what triggers the power button. Pure: bytes in,
//! events out, so it is tested without a VM.
//!
//! Texts are matched on the raw bytes, also across chunk boundaries and
//! without waiting for the end of a line (a `login:` prompt has none).

use std::collections::VecDeque;

/// How many console lines a failure shows.
pub const TAIL_LINES: usize = 20;

/// Something the console just printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// An expected text, the first time it appears.
    Seen(String),
    /// A failure text.
    Failed(String),
    /// The `--powerdown-after` text, the first time it appears.
    Powerdown,
}

/// The watcher; feed it the console as it comes.
#[derive(Debug, Clone)]
pub struct ConsoleWatch {
    expect: Vec<(String, bool)>,
    fail_on: Vec<String>,
    powerdown_after: Option<(String, bool)>,
    /// The end of what came before, long enough to complete any text.
    carry: Vec<u8>,
    longest: usize,
    lines: VecDeque<String>,
    partial: Vec<u8>,
    stages: Vec<Stage>,
}

/// A boot stage the LinuxKit init reported: its console lines start with
/// the kernel clock, `[    6.305476] linuxkit: MESSAGE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Seconds since the kernel started.
    pub at: f64,
    /// What the init said.
    pub message: String,
}

/// The stage of a console line, for the init's milestones (the start,
/// mounts, modules, system up, each onboot container's end, containerd,
/// each service, all services, boot complete, shutdown).
pub fn parse_stage(line: &str) -> Option<Stage> {
    let (at, rest) = stamp_of(line, "] linuxkit: ")?;
    let message = rest.strip_prefix("linuxkit: ")?.trim().to_string();
    let milestone = [
        "init starting",
        "filesystems mounted",
        "coldplug:",
        "system up",
        "onboot ",
        "onshutdown ",
        "containerd started",
        "service ",
        "all services started",
        "services started:",
        "boot complete",
        "shutting down",
    ]
    .iter()
    .any(|m| message.starts_with(m))
        && !message.ends_with(": starting");
    if !milestone {
        return None;
    }
    let message = match message.split_once(": ") {
        // "coldplug: 12 modules loaded: a b c" -> "coldplug: 12 modules loaded"
        Some(("coldplug", tail)) => {
            format!("coldplug: {}", tail.split(':').next().unwrap_or(tail))
        }
        _ => message,
    };
    Some(Stage { at, message })
}

/// The kernel-clock seconds of a console line stamped like the kernel's
/// and our init's (`[   12.345678] text`), and the text after the stamp.
fn kernel_stamp(line: &str) -> Option<(f64, &str)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(']')?;
    Some((stamp.trim().parse().ok()?, rest.trim_start()))
}

/// The stamp of the first `what` in a console line: the kernel-clock
/// seconds of the `[   12.345678]` just before it, and the text after that
/// stamp. Another program's output without a line end (a shell's prompt)
/// may stand before the stamp on the same console line.
pub fn stamp_of<'a>(line: &'a str, what: &str) -> Option<(f64, &'a str)> {
    let start = line[..line.find(what)?].rfind('[')?;
    kernel_stamp(&line[start..])
}

impl ConsoleWatch {
    /// A watcher for the boot test's texts: all of `expect` must appear,
    /// any of `fail_on` fails the run, and `powerdown_after` (if given)
    /// presses the power button. Empty texts are ignored.
    pub fn new(
        expect: &[String],
        fail_on: &[String],
        powerdown_after: Option<&str>,
    ) -> ConsoleWatch {
        let expect: Vec<(String, bool)> = expect
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| (t.clone(), false))
            .collect();
        let fail_on: Vec<String> = fail_on.iter().filter(|t| !t.is_empty()).cloned().collect();
        let powerdown_after = powerdown_after
            .filter(|t| !t.is_empty())
            .map(|t| (t.to_string(), false));
        let longest = expect
            .iter()
            .map(|(t, _)| t.len())
            .chain(fail_on.iter().map(String::len))
            .chain(powerdown_after.iter().map(|(t, _)| t.len()))
            .max()
            .unwrap_or(0);
        ConsoleWatch {
            expect,
            fail_on,
            powerdown_after,
            carry: Vec::new(),
            longest,
            lines: VecDeque::new(),
            partial: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// Takes the next piece of console output; returns what it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<ConsoleEvent> {
        self.keep_lines(chunk);
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(chunk);
        let mut events = Vec::new();
        for t in &self.fail_on {
            if contains(&window, t.as_bytes()) {
                events.push(ConsoleEvent::Failed(t.clone()));
            }
        }
        for (t, seen) in &mut self.expect {
            if !*seen && contains(&window, t.as_bytes()) {
                *seen = true;
                events.push(ConsoleEvent::Seen(t.clone()));
            }
        }
        if let Some((t, fired)) = &mut self.powerdown_after
            && !*fired
            && contains(&window, t.as_bytes())
        {
            *fired = true;
            events.push(ConsoleEvent::Powerdown);
        }
        let keep = self.longest.saturating_sub(1).min(window.len());
        self.carry = window[window.len() - keep..].to_vec();
        events
    }

    /// Expected texts not seen yet.
    pub fn missing(&self) -> Vec<String> {
        self.expect
            .iter()
            .filter(|(_, seen)| !seen)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// The init's boot stages seen so far, in console order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The last [`TAIL_LINES`] non-blank lines, escape sequences removed,
    /// the unfinished last line included.
    pub fn tail(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lines.iter().cloned().collect();
        let last = clean_line(&self.partial);
        if !last.trim().is_empty() {
            out.push(last);
        }
        let skip = out.len().saturating_sub(TAIL_LINES);
        out.split_off(skip)
    }

    fn keep_lines(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                let line = clean_line(&self.partial);
                self.partial.clear();
                if line.trim().is_empty() {
                    continue;
                }
                if let Some(st) = parse_stage(&line) {
                    self.stages.push(st);
                }
                if self.lines.len() == TAIL_LINES {
                    self.lines.pop_front();
                }
                self.lines.push_back(line);
            } else if self.partial.len() < 4096 {
                self.partial.push(b);
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A console line for people: terminal escape sequences and carriage
/// returns removed, invalid UTF-8 replaced.
pub fn clean_line(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            0x1b => {
                i += 1;
                match raw.get(i) {
                    // CSI: parameters, then a final byte in 0x40..=0x7e.
                    Some(b'[') => {
                        i += 1;
                        while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                            i += 1;
                        }
                        i += 1;
                    }
                    // OSC: up to BEL or ST.
                    Some(b']') => {
                        while i < raw.len() && raw[i] != 0x07 && raw[i] != b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    Some(_) => i += 1,
                    None => {}
                }
            }
            b'\r' => i += 1,
            b if b < 0x20 && b != b'\t' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn texts_match_across_chunks_and_once() {
        let mut w = ConsoleWatch::new(&s(&["hello world", "bye"]), &s(&["FAILED"]), Some("ready"));
        assert_eq!(w.feed(b"boot... hel"), vec![]);
        assert_eq!(w.feed(b"lo wor"), vec![], "not complete yet");
        assert_eq!(
            w.feed(b"ld\nrea"),
            vec![ConsoleEvent::Seen("hello world".into())]
        );
        assert_eq!(w.feed(b"dy"), vec![ConsoleEvent::Powerdown]);
        assert_eq!(w.feed(b" ready hello world"), vec![], "each fires once");
        assert_eq!(w.missing(), s(&["bye"]));
        assert_eq!(w.feed(b"test FAI"), vec![]);
        assert_eq!(w.feed(b"LED"), vec![ConsoleEvent::Failed("FAILED".into())]);
    }

    #[test]
    fn the_tail_is_clean_and_bounded() {
        let mut w = ConsoleWatch::new(&[], &[], None);
        w.feed(b"\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n\r\n");
        for i in 0..30 {
            w.feed(format!("line {i}\r\n").as_bytes());
        }
        w.feed(b"login: ");
        let t = w.tail();
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t.last().unwrap(), "login: ");
        assert_eq!(t[0], "line 11");
        let mut w = ConsoleWatch::new(&[], &[], None);
        w.feed(b"\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n");
        assert_eq!(w.tail(), ["SeaBIOS"]);
    }

    #[test]
    fn empty_texts_are_ignored() {
        let mut w = ConsoleWatch::new(&s(&[""]), &s(&[""]), Some(""));
        assert_eq!(w.feed(b"anything"), vec![]);
        assert!(w.missing().is_empty());
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;

    #[test]
    fn init_milestones_are_stages() {
        let s = parse_stage("[    2.909799] linuxkit: coldplug: 12 modules loaded: button evdev")
            .unwrap();
        assert_eq!(s.at, 2.909799);
        assert_eq!(s.message, "coldplug: 12 modules loaded");
        assert_eq!(
            parse_stage("[   15.023951] linuxkit: all services started")
                .unwrap()
                .message,
            "all services started"
        );
        assert_eq!(
            parse_stage("[   15.0] linuxkit: services started: 2 of 3, 1 FAILED")
                .unwrap()
                .message,
            "services started: 2 of 3, 1 FAILED"
        );
        assert!(parse_stage("[    5.856821] linuxkit: onboot 000-sysctl: starting").is_none());
        assert!(parse_stage("[    5.856821] linuxkit: onboot 000-sysctl: exited 0").is_some());
        assert!(parse_stage("[    0.1] Run /init as init process").is_none());
        assert!(parse_stage("hello linuxkit: init starting").is_none());
        // after a getty's prompt on the same line
        let s = parse_stage("/ # \x1b[6n[    8.061706] linuxkit: service rngd: started").unwrap();
        assert_eq!(s.message, "service rngd: started");
        assert!((s.at - 8.061706).abs() < 1e-9);
    }
}
