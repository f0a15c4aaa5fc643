//! The kernel command line (`/proc/cmdline`) as the init reads it.

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    words: Vec<String>,
}

impl Cmdline {
    /// Reads `/proc/cmdline` (empty if unreadable).
    pub fn read() -> Cmdline {
        Cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }

    /// Splits on whitespace, honouring double quotes as the kernel does.
    pub fn parse(text: &str) -> Cmdline {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in text.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            words.push(cur);
        }
        Cmdline { words }
    }

    /// Every value of `key=` (in order).
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.words
            .iter()
            .filter_map(move |w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// The last value of `key=`, as the kernel's own parameters work.
    pub fn value<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.values(key).last()
    }

    /// Whether `key=1` (or `key=true`) is given.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.value(key), Some("1" | "true" | "yes" | "on"))
    }

    /// The console devices (`console=ttyS0,115200` → `/dev/ttyS0`), in
    /// order; `/dev/console` when there is none.
    pub fn consoles(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in self.values("console") {
            let dev = v.split(',').next().unwrap_or(v);
            if dev.is_empty() {
                continue;
            }
            let path = format!("/dev/{dev}");
            if !out.contains(&path) {
                out.push(path);
            }
        }
        if out.is_empty() {
            out.push("/dev/console".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_consoles_flags_and_quotes() {
        let c = Cmdline::parse(
            "console=tty0 console=ttyS0,115200 linuxkit.runc_debug=1 x=\"a b\" quiet\n",
        );
        assert_eq!(c.consoles(), ["/dev/tty0", "/dev/ttyS0"]);
        assert!(c.flag("linuxkit.runc_debug"));
        assert!(!c.flag("linuxkit.runc_console"));
        assert_eq!(c.value("x"), Some("a b"));
        assert_eq!(Cmdline::parse("quiet").consoles(), ["/dev/console"]);
    }
}
