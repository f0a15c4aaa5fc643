//! What `pkg build` shows while it works: each build step named with its
//! elapsed time, and downloads with their bytes.
//!
//! Three ways, chosen by the caller: nothing (`-q`), plain lines on
//! stderr when the output is not a terminal (one line per finished step or
//! download, so a log reads in order), or live bars drawn with `indicatif`
//! (as the registry client draws its blob downloads), a spinner with the
//! elapsed time per running step and a byte bar per download, each
//! replaced by its line when done. Everything goes to stderr: stdout keeps
//! the `REFERENCE@DIGEST` lines scripts read.
//!
//! A leaf of the crate: it knows nothing of packages or archives; the
//! builder names the steps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing.
    Quiet,
    /// A line per finished step or download.
    Plain,
    /// Live bars and spinners.
    Bars,
}

/// Where a build reports its steps; cheap to clone, shared by the parts of
/// one `pkg build`.
#[derive(Clone)]
pub struct Progress {
    mode: Mode,
    prefix: String,
    multi: Arc<MultiProgress>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Progress({:?}, {:?})", self.mode, self.prefix)
    }
}

impl Default for Progress {
    /// Nothing shown: libraries and tests build silently unless told.
    fn default() -> Self {
        Progress::new(Mode::Quiet)
    }
}

/// Seconds with one decimal: `3.2s`.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Bytes in binary units: `1.5 MiB`.
fn bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

impl Progress {
    /// Progress shown in `mode`.
    pub fn new(mode: Mode) -> Progress {
        let target = match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        Progress {
            mode,
            prefix: String::new(),
            multi: Arc::new(MultiProgress::with_draw_target(target)),
        }
    }

    /// How it is shown.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The same, with every line starting `prefix: ` (the package and
    /// platform being built).
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Progress {
        Progress {
            prefix: prefix.into(),
            ..self.clone()
        }
    }

    fn line(&self, text: &str) -> String {
        if self.prefix.is_empty() {
            text.to_string()
        } else {
            format!("{}: {text}", self.prefix)
        }
    }

    /// Takes a finished step's or download's bar off the terminal.
    fn clear(&self, bar: Option<&ProgressBar>) {
        if let Some(b) = bar {
            b.finish_and_clear();
            self.multi.remove(b);
        }
    }

    fn print(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => eprintln!("{}", self.line(text)),
            Mode::Bars => {
                let _ = self.multi.println(self.line(text));
            }
        }
    }

    /// Runs `f`, which writes to the terminal itself (the builder's
    /// output), with the bars hidden meanwhile so the two do not mix.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.mode {
            Mode::Bars => self.multi.suspend(f),
            _ => f(),
        }
    }

    /// Starts the step `name` (`fetch 12 Debian packages`, `compress`);
    /// it is reported with its elapsed time when the [`Step`] is done or
    /// dropped.
    pub fn step(&self, name: impl Into<String>) -> Step {
        let name = name.into();
        let bar = (self.mode == Mode::Bars).then(|| {
            let b = self.multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
            );
            b.set_message(self.line(&name));
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Step {
            progress: self.clone(),
            name,
            start: Instant::now(),
            bar,
            done: false,
        }
    }

    /// Starts a download of `what`, `total` bytes if known; reported with
    /// its size and time when the [`Download`] is done or dropped.
    pub fn download(&self, what: impl Into<String>, total: Option<u64>) -> Download {
        let what = what.into();
        let bar = (self.mode == Mode::Bars).then(|| {
            let b = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b.set_message(self.line(&what));
            b
        });
        Download {
            progress: self.clone(),
            what,
            start: Instant::now(),
            bytes: 0,
            bar,
            done: false,
        }
    }
}

/// A running build step; see [`Progress::step`].
pub struct Step {
    progress: Progress,
    name: String,
    start: Instant,
    bar: Option<ProgressBar>,
    done: bool,
}

impl Step {
    /// Reports the step finished.
    pub fn done(mut self) {
        self.finish(true);
    }

    /// Ends the step; one that ends without [`Step::done`] (an error
    /// returned through it, or a panic) is reported as failed.
    fn finish(&mut self, ok: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.progress.clear(self.bar.as_ref());
        let took = secs(self.start.elapsed());
        let what = if ok { "done" } else { "failed" };
        self.progress
            .print(&format!("{} {what} in {took}", self.name));
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// A running download; see [`Progress::download`].
pub struct Download {
    progress: Progress,
    what: String,
    start: Instant,
    bytes: u64,
    bar: Option<ProgressBar>,
    done: bool,
}

impl Download {
    /// `n` more bytes arrived.
    pub fn inc(&mut self, n: u64) {
        self.bytes += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Starts again from no bytes (a retried download).
    pub fn restart(&mut self) {
        self.bytes = 0;
        if let Some(b) = &self.bar {
            b.set_position(0);
        }
    }

    /// Reports the download finished.
    pub fn done(mut self) {
        self.finish(true);
    }

    /// Ends the download; one that ends without [`Download::done`] is
    /// reported as failed.
    fn finish(&mut self, ok: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.progress.clear(self.bar.as_ref());
        let (what, bytes, took) = (&self.what, bytes(self.bytes), secs(self.start.elapsed()));
        self.progress.print(&if ok {
            format!("downloaded {what} ({bytes}) in {took}")
        } else {
            format!("download of {what} failed after {bytes} in {took}")
        });
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_progress_draws_and_prints_nothing() {
        let p = Progress::default();
        assert_eq!(p.mode(), Mode::Quiet);
        let s = p.with_prefix("linuxkit/x linux/amd64").step("compress");
        assert!(s.bar.is_none());
        s.done();
        let mut d = p.download("a.deb", Some(10));
        d.inc(10);
        assert_eq!(d.bytes, 10);
        assert!(d.bar.is_none());
    }

    #[test]
    fn lines_carry_the_prefix_and_units() {
        let p = Progress::new(Mode::Plain).with_prefix("linuxkit/x linux/amd64");
        assert_eq!(p.line("layer"), "linuxkit/x linux/amd64: layer");
        assert_eq!(secs(Duration::from_millis(3250)), "3.2s");
        assert_eq!(bytes(1536), "1.50 KiB");
    }
}
