//! Kernel modules without kmod: `modules.dep`, `modules.alias`,
//! `modules.softdep` and `modules.builtin` read as text, modules loaded
//! with `finit_module(2)`.
//!
//! Two users: coldplug at boot ([`coldplug`]: every device's `modalias`
//! under `/sys/bus/*/devices` is matched against the aliases, repeatedly,
//! because loading a bus driver such as `virtio_pci` makes new devices
//! appear), and the kernel's own requests (`request_module("fs-overlay")`),
//! which run `/proc/sys/kernel/modprobe`, i.e. this binary as `modprobe`
//! ([`modprobe_main`]). The reference needs busybox `modprobe` and `mdev`
//! for this; here it is a few hundred lines and no extra binary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses the module
/// itself (Linux 5.17+, `CONFIG_MODULE_DECOMPRESS`).
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;

/// A module's file and what it needs loaded first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Path relative to the module directory (`kernel/fs/overlayfs/overlay.ko`).
    pub path: String,
    /// Names of the modules it depends on (from `modules.dep`).
    pub deps: Vec<String>,
    /// Names of the modules `softdep ... pre:` asks for first.
    pub pre: Vec<String>,
}

/// The module database of one kernel: `/lib/modules/$(uname -r)`.
#[derive(Debug, Default)]
pub struct ModuleDb {
    /// The module directory.
    pub dir: PathBuf,
    /// Modules by name (`-` spelled `_`).
    pub modules: BTreeMap<String, Module>,
    /// `(pattern, module)` from `modules.alias`, in file order.
    pub aliases: Vec<(String, String)>,
    /// Modules built into the kernel: nothing to load.
    pub builtin: BTreeSet<String>,
}

/// A module's name from its file name: `drivers/net/virtio_net.ko.xz` →
/// `virtio_net`; dashes become underscores, as the kernel names them.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

impl ModuleDb {
    /// Reads the database in `dir`; missing files count as empty (a kernel
    /// without modules has none of them).
    pub fn load(dir: &Path) -> io::Result<ModuleDb> {
        let read = |name: &str| match std::fs::read_to_string(dir.join(name)) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        };
        let mut db = ModuleDb::parse(
            &read("modules.dep")?,
            &read("modules.alias")?,
            &read("modules.softdep")?,
            &read("modules.builtin")?,
        );
        db.dir = dir.to_path_buf();
        Ok(db)
    }

    /// The database from the texts of its four files.
    pub fn parse(dep: &str, alias: &str, softdep: &str, builtin: &str) -> ModuleDb {
        let mut db = ModuleDb::default();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            db.modules.insert(
                module_name(path),
                Module {
                    path: path.to_string(),
                    deps: deps.split_whitespace().map(module_name).collect(),
                    pre: Vec::new(),
                },
            );
        }
        for line in alias.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(pat), Some(m)) = (w.next(), w.next(), w.next()) {
                db.aliases.push((pat.to_string(), m.replace('-', "_")));
            }
        }
        for line in softdep.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("softdep") {
                continue;
            }
            let Some(name) = w.next().map(|n| n.replace('-', "_")) else {
                continue;
            };
            let mut pre = Vec::new();
            let mut in_pre = false;
            for word in w {
                match word {
                    "pre:" => in_pre = true,
                    "post:" => in_pre = false,
                    m if in_pre => pre.push(m.replace('-', "_")),
                    _ => {}
                }
            }
            if let Some(m) = db.modules.get_mut(&name) {
                m.pre = pre;
            }
        }
        db.builtin = builtin.lines().map(module_name).collect();
        db
    }

    /// The modules a name stands for: itself if it is a module (or built
    /// in), otherwise every module with a matching alias, in alias order.
    pub fn resolve(&self, name: &str) -> Vec<String> {
        let n = name.replace('-', "_");
        if self.modules.contains_key(&n) || self.builtin.contains(&n) {
            return vec![n];
        }
        let mut out: Vec<String> = Vec::new();
        for (pat, m) in &self.aliases {
            if !out.contains(m) && glob_match(pat, name) {
                out.push(m.clone());
            }
        }
        out
    }

    /// `module` and everything it needs, in load order (dependencies
    /// first), skipping names in `done`, which is extended.
    pub fn load_order(&self, module: &str, done: &mut BTreeSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(module, done, &mut out, 0);
        out
    }

    fn visit(&self, name: &str, done: &mut BTreeSet<String>, out: &mut Vec<String>, depth: usize) {
        if depth > 64 || self.builtin.contains(name) || !done.insert(name.to_string()) {
            return;
        }
        let Some(m) = self.modules.get(name) else {
            return;
        };
        for d in m.pre.iter().chain(&m.deps) {
            self.visit(d, done, out, depth + 1);
        }
        out.push(name.to_string());
    }
}

/// The modules the running kernel has loaded (`/proc/modules`).
pub fn loaded_modules() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Loads one module file (no dependencies) with `params`.
pub fn insert(path: &Path, params: &str) -> io::Result<()> {
    let f = File::open(path)?;
    let compressed = path
        .extension()
        .is_some_and(|e| e == "xz" || e == "zst" || e == "gz");
    let params = std::ffi::CString::new(params).map_err(io::Error::other)?;
    let flags = if compressed {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    use std::os::fd::AsRawFd;
    // SAFETY: finit_module takes an open fd, a NUL-terminated string and
    // flags; all three are valid for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            f.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

/// A loader: the database plus what is already loaded.
pub struct Loader {
    /// Where modules, their dependencies and aliases are looked up.
    pub db: ModuleDb,
    done: BTreeSet<String>,
}

impl Loader {
    /// The loader for the running kernel, or `None` without a module
    /// directory.
    pub fn for_running_kernel() -> Option<Loader> {
        let release = nix::sys::utsname::uname()
            .ok()?
            .release()
            .to_string_lossy()
            .into_owned();
        let dir = Path::new("/lib/modules").join(release);
        if !dir.is_dir() {
            return None;
        }
        let db = ModuleDb::load(&dir).ok()?;
        Some(Loader::new(db, loaded_modules()))
    }

    /// A loader over `db` that treats the modules in `loaded` (by name, as
    /// `/proc/modules` lists them) as loaded already.
    pub fn new(db: ModuleDb, loaded: BTreeSet<String>) -> Loader {
        Loader { db, done: loaded }
    }

    /// Loads what `name` (module or alias) stands for, dependencies first.
    /// Returns the modules newly loaded; errors name the module.
    pub fn load(&mut self, name: &str, params: &str) -> io::Result<Vec<String>> {
        let targets = self.db.resolve(name);
        if targets.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("module {name} not found in {}", self.db.dir.display()),
            ));
        }
        let mut loaded = Vec::new();
        for t in targets {
            for m in self.db.load_order(&t, &mut self.done) {
                let path = self.db.dir.join(&self.db.modules[&m].path);
                let p = if m == t { params } else { "" };
                insert(&path, p).map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENODEV) {
                        return e; // kept raw: coldplug ignores it
                    }
                    io::Error::new(
                        e.kind(),
                        format!("loading module {m} ({}): {e}", path.display()),
                    )
                })?;
                loaded.push(m);
            }
            // A module another process is loading right now is listed in
            // /proc/modules (so `load_order` skipped it) before its init
            // has run: when the kernel runs us for `fs-overlay` while a
            // second mount's modprobe is loading overlay, returning at once
            // makes that mount fail with ENODEV ("request_module fs-overlay
            // succeeded, but still no fs?"). Wait until it is live.
            wait_live(&t);
        }
        Ok(loaded)
    }
}

/// Waits (up to 10 s) while `/sys/module/NAME/initstate` says `coming`,
/// that is while another process's load of the module is still running
/// its init; returns at once for a live, built-in or absent module.
fn wait_live(name: &str) {
    let path = format!("/sys/module/{}/initstate", name.replace('-', "_"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Ok(state) = std::fs::read_to_string(&path) {
        if state.trim() != "coming" || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Loads the drivers of every device the kernel has found, until loading
/// finds no new device. Returns the modules loaded; failures are reported
/// and skipped.
pub fn coldplug(loader: &mut Loader) -> Vec<String> {
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    for _pass in 0..8 {
        let mut aliases: Vec<String> = Vec::new();
        // Every device's `modalias`, class devices included (the power
        // button's input device needs evdev).
        sys_aliases(Path::new("/sys"), &mut |a| {
            if seen.insert(a.clone()) {
                aliases.push(a);
            }
        });
        if aliases.is_empty() {
            break;
        }
        aliases.sort();
        for a in aliases {
            match loader.load(&a, "") {
                Ok(l) => all.extend(l),
                // Drivers that find no device of theirs refuse to load:
                // normal when probing by alias.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => crate::warn!("{e}"),
            }
        }
    }
    all
}

/// Calls `f` with the `modalias` of every device on a bus
/// (`/sys/bus/*/devices/*`), in a class (`/sys/class/*/*`: input devices
/// are on no bus) and of the system devices (`/sys/devices/system/*`: the
/// CPU's alias, with its features, loads the CPU-specific modules).
///
/// These are flat listings of links. A walk of all `/sys/devices` reads
/// every attribute directory of every device: under QEMU TCG it took about
/// 50 ms against 15 ms, and coldplug looks again after each round of
/// loading. A device seen twice (on a bus and in a class) is one alias for
/// the caller.
fn sys_aliases(sys: &Path, f: &mut dyn FnMut(String)) {
    let entries = |dir: PathBuf| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
    };
    let buses = entries(sys.join("bus")).flat_map(|b| entries(b.join("devices")));
    let classes = entries(sys.join("class")).flat_map(entries);
    let system = entries(sys.join("devices/system"));
    for dev in buses.chain(classes).chain(system) {
        if let Ok(a) = std::fs::read_to_string(dev.join("modalias"))
            && !a.trim().is_empty()
        {
            f(a.trim().to_string());
        }
    }
}

/// `modprobe [-q] [-a] [-b] [-v] [--] NAME [PARAMS...]`: what the kernel
/// runs for `request_module()`, and what a user types.
pub fn modprobe_main(args: &[String]) -> i32 {
    let mut quiet = false;
    let mut all = false;
    let mut names = Vec::new();
    let mut opts_done = false;
    for a in args {
        match a.as_str() {
            "--" if !opts_done => opts_done = true,
            s if !opts_done && s.starts_with('-') && s.len() > 1 => {
                for c in s[1..].chars() {
                    match c {
                        'q' => quiet = true,
                        'a' => all = true,
                        'b' | 'v' | 's' => {}
                        _ => {
                            eprintln!("modprobe: unknown option -{c}");
                            return 1;
                        }
                    }
                }
            }
            s => names.push(s.to_string()),
        }
    }
    if names.is_empty() {
        eprintln!("usage: modprobe [-q] [-a] NAME [PARAM=VALUE...]");
        return 1;
    }
    let Some(mut loader) = Loader::for_running_kernel() else {
        if !quiet {
            eprintln!("modprobe: no module directory for the running kernel");
        }
        return 1;
    };
    let (targets, params) = if all {
        (names, String::new())
    } else {
        (vec![names[0].clone()], names[1..].join(" "))
    };
    let mut rc = 0;
    for n in targets {
        if let Err(e) = loader.load(&n, &params) {
            if !quiet {
                eprintln!("modprobe: {e}");
            }
            rc = 1;
        }
    }
    rc
}

/// Shell-style pattern matching (`*`, `?`, `[a-z]`, `[!x]`), as
/// `modules.alias` patterns use it.
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p = pat.as_bytes();
    let s = s.as_bytes();
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(p, pi, s[si]) {
                        if matched {
                            pi = next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the bracket expression at `p[i]` (`[`); returns
/// whether it matched and the index after `]`, or `None` if unterminated.
fn class(p: &[u8], i: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = i + 1;
    let negate = j < p.len() && (p[j] == b'!' || p[j] == b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    while j < p.len() && (p[j] != b']' || first) {
        first = false;
        if j + 2 < p.len() && p[j + 1] == b'-' && p[j + 2] != b']' {
            if p[j] <= c && c <= p[j + 2] {
                matched = true;
            }
            j += 3;
        } else {
            if p[j] == c {
                matched = true;
            }
            j += 1;
        }
    }
    if j >= p.len() {
        return None;
    }
    Some((matched != negate, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_come_from_buses_classes_and_system_devices() {
        let sys = tempfile::tempdir().unwrap();
        let s = sys.path();
        let dev = |p: &str, alias: &str| {
            let d = s.join("devices").join(p);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("modalias"), format!("{alias}\n")).unwrap();
            d
        };
        let link = |d: &Path, at: &str| {
            let l = s.join(at);
            std::fs::create_dir_all(l.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(d, l).unwrap();
        };
        let net = dev(
            "pci0000:00/0000:00:03.0/virtio0",
            "virtio:d00000001v00001AF4",
        );
        link(&net, "bus/virtio/devices/virtio0");
        let button = dev(
            "LNXSYSTM:00/LNXPWRBN:00/input/input0",
            "input:b0019v0000p0001",
        );
        link(&button, "class/input/input0");
        // A device in both: one alias (the caller dedups), read twice.
        link(&net, "class/misc/virtio0");
        dev("system/cpu", "cpu:type:x86,ven0002:feature:,0001");
        // Attribute directories hold no devices of their own.
        dev("pci0000:00/0000:00:03.0/virtio0/power", "bogus:deep");
        let mut seen = BTreeSet::new();
        sys_aliases(s, &mut |a| {
            seen.insert(a);
        });
        let want: BTreeSet<String> = [
            "virtio:d00000001v00001AF4",
            "input:b0019v0000p0001",
            "cpu:type:x86,ven0002:feature:,0001",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(seen, want);
    }

    const DEP: &str = "\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/block/virtio-blk.ko.xz:
";
    const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias fs-overlay overlay
alias virtio:d00000001v* virtio_net
alias virtio:d00000002v* virtio_blk
alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_pci
";

    fn db() -> ModuleDb {
        ModuleDb::parse(
            DEP,
            ALIAS,
            "softdep virtio_net pre: overlay\n",
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
    }

    #[test]
    fn names_from_paths() {
        assert_eq!(
            module_name("kernel/drivers/block/virtio-blk.ko.xz"),
            "virtio_blk"
        );
        assert_eq!(module_name("a/b/overlay.ko"), "overlay");
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let db = db();
        let mut done = BTreeSet::new();
        assert_eq!(
            db.load_order("virtio_net", &mut done),
            ["overlay", "failover", "net_failover", "virtio_net"]
        );
        assert!(db.load_order("net_failover", &mut done).is_empty());
    }

    #[test]
    fn aliases_resolve_by_glob_and_builtins_need_nothing() {
        let db = db();
        assert_eq!(db.resolve("fs-overlay"), ["overlay"]);
        assert_eq!(db.resolve("virtio:d00000001v00001AF4"), ["virtio_net"]);
        assert_eq!(db.resolve("virtio-blk"), ["virtio_blk"]);
        assert!(db.resolve("virtio:d00000009v00001AF4").is_empty());
        assert_eq!(
            db.resolve("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"),
            ["virtio_pci"]
        );
        let mut done = BTreeSet::new();
        assert!(db.load_order("virtio_pci", &mut done).is_empty());
    }

    #[test]
    fn globs() {
        for (p, s, m) in [
            ("abc", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a[bc]d", "acd", true),
            ("a[!bc]d", "acd", false),
            ("a[a-z]d", "aqd", true),
            ("pci:v*d*sv*sd*bc02sc*i*", "pci:v1d2sv3sd4bc02sc00i00", true),
            (
                "pci:v*d*sv*sd*bc02sc*i*",
                "pci:v1d2sv3sd4bc03sc00i00",
                false,
            ),
            ("a[", "a[", true),
            (
                "input:b*v*p*e*-e*k*r*a*m*l*s*f*w*",
                "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw",
                true,
            ),
        ] {
            assert_eq!(glob_match(p, s), m, "{p} vs {s}");
        }
    }
}
