//! `debian.lock`: the Debian packages of a package's image, pinned.
//!
//! Resolving `debian.packages` against the mirror's current index gives
//! whatever the suite holds today, so the same tag could name different
//! images over time. The lockfile, next to `build.yml`, records what a
//! resolution chose: the suite and, per architecture, every package's
//! name, version, architecture, pool path, size and SHA256. A build with
//! an up-to-date lockfile reads no index at all: each `.deb` comes from the
//! Debian cache by its SHA256, and is downloaded by its pool path only if
//! it is missing. So a rebuild is offline and byte-identical.
//!
//! The image's packages are keyed by the target architecture (each
//! platform of a multi-platform build has its own); `build_packages`, the
//! toolchain of `go:` entries, by the architecture of the machine that
//! builds, since that is where they run (Go cross-compiles to the target).
//!
//! The file also keeps the `debian:` request it was resolved from (suite,
//! components, packages, dependencies). When `build.yml` asks for something
//! else the lockfile is *stale*, and the build stops and says to run
//! `linuxkit pkg build --update`, which resolves again and rewrites it.
//!
//! The format is YAML written here by hand: every string double-quoted,
//! packages sorted by name and architectures by name, one field per line,
//! so that it diffs well and reads back with the project's YAML parser
//! (errors have a `debian.lock:LINE:COLUMN`).
//!
//! This module is the file; [`ensure_lock`] and [`lock_status`] are the
//! logic around it (is the lockfile current for this build, and if not,
//! resolve and rewrite it).

mod ensure;

pub use ensure::{ensure_lock, lock_status};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use linuxkit_base::Arch;
use linuxkit_config::ConfigError;
use serde::{Deserialize, Serialize};

use crate::DebianSource;
use crate::debian::Package as IndexPackage;

/// The lockfile's name, in the package directory.
pub const LOCKFILE: &str = "debian.lock";
/// The format version written and understood.
pub const LOCK_VERSION: u32 = 1;

/// A parsed `debian.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// [`LOCK_VERSION`].
    pub version: u32,
    /// The `debian:` request the pins were resolved from.
    pub request: LockRequest,
    /// The suite the packages come from (the request's, or the host's
    /// default suite when the request has none).
    pub suite: String,
    /// Debian architecture → the resolved packages, sorted by name.
    pub packages: BTreeMap<String, Vec<LockedDeb>>,
    /// Debian architecture → the resolved `debian.build_packages` (the
    /// build root of `go:` entries, not in the image); absent when there
    /// are none. Keyed by the architecture of the machine that builds,
    /// whose toolchain runs there and cross-compiles for every target.
    #[serde(default)]
    pub build_packages: BTreeMap<String, Vec<LockedDeb>>,
}

/// What `build.yml`'s `debian:` asked for, as far as resolution goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    /// `debian.suite`, `None` for the host's.
    #[serde(default)]
    pub suite: Option<String>,
    /// `debian.components`.
    pub components: Vec<String>,
    /// `debian.packages`, as written.
    pub packages: Vec<String>,
    /// `debian.dependencies`.
    pub dependencies: bool,
    /// `debian.build_packages`, as written (absent when there are none).
    #[serde(default)]
    pub build_packages: Vec<String>,
}

impl LockRequest {
    /// The request of a `debian:` section.
    pub fn of(src: &DebianSource) -> LockRequest {
        LockRequest {
            suite: src.suite.clone(),
            components: src.components.clone(),
            packages: src.packages.clone(),
            dependencies: src.dependencies,
            build_packages: src.build_packages.clone(),
        }
    }

    /// How `self` (the lockfile's) differs from `now` (build.yml's), in words.
    pub fn difference(&self, now: &LockRequest) -> String {
        let mut out = Vec::new();
        let list = |v: &[String]| format!("[{}]", v.join(", "));
        if self.packages != now.packages {
            out.push(format!(
                "packages {} → {}",
                list(&self.packages),
                list(&now.packages)
            ));
        }
        if self.build_packages != now.build_packages {
            out.push(format!(
                "build_packages {} → {}",
                list(&self.build_packages),
                list(&now.build_packages)
            ));
        }
        if self.suite != now.suite {
            let s = |s: &Option<String>| s.clone().unwrap_or_else(|| "(host suite)".into());
            out.push(format!("suite {} → {}", s(&self.suite), s(&now.suite)));
        }
        if self.components != now.components {
            out.push(format!(
                "components {} → {}",
                list(&self.components),
                list(&now.components)
            ));
        }
        if self.dependencies != now.dependencies {
            out.push(format!(
                "dependencies {} → {}",
                self.dependencies, now.dependencies
            ));
        }
        out.join("; ")
    }
}

/// One pinned `.deb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDeb {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:` (`amd64`, `all`, …).
    pub architecture: String,
    /// `Filename:`, the pool path relative to the mirror's base URI.
    pub filename: String,
    /// `Size:`.
    pub size: u64,
    /// `SHA256:`, lower-case hex.
    pub sha256: String,
}

impl From<&IndexPackage> for LockedDeb {
    fn from(p: &IndexPackage) -> Self {
        LockedDeb {
            name: p.name.clone(),
            version: p.version.to_string(),
            architecture: p.architecture.clone(),
            filename: p.filename.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
        }
    }
}

impl Lockfile {
    /// An empty lockfile for `request`, resolved in `suite`.
    pub fn new(request: LockRequest, suite: String) -> Lockfile {
        Lockfile {
            version: LOCK_VERSION,
            request,
            suite,
            packages: BTreeMap::new(),
            build_packages: BTreeMap::new(),
        }
    }

    /// Whether every set of packages the request needs is pinned for a
    /// build for `target` (keyed by its Debian name) on a machine of
    /// `build_host`: the image's packages for the target, the build
    /// packages (if any are asked for) for the machine that runs them.
    pub fn pins(&self, target: Arch, build_host: Arch) -> bool {
        self.packages.contains_key(target.debian()) && self.pins_build(build_host)
    }

    /// Whether the build packages a machine of `build_host` needs are
    /// pinned (always, when the request has none).
    pub fn pins_build(&self, build_host: Arch) -> bool {
        self.request.build_packages.is_empty()
            || self.build_packages.contains_key(build_host.debian())
    }

    /// The path of the lockfile of the package in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(LOCKFILE)
    }

    /// Parses a lockfile; `name` is how errors refer to it.
    pub fn parse(name: &str, text: &str) -> Result<Lockfile, ConfigError> {
        let l: Lockfile = linuxkit_config::from_yaml_str(name, text)?;
        if l.version != LOCK_VERSION {
            return Err(ConfigError::new(format!(
                "lockfile version {} is not supported (this linuxkit writes version {LOCK_VERSION}); run `linuxkit pkg build --update` to rewrite it",
                l.version
            ))
            .in_file(name));
        }
        for (key, arch, debs) in l.packages.iter().map(|(a, d)| ("packages", a, d)).chain(
            l.build_packages
                .iter()
                .map(|(a, d)| ("build_packages", a, d)),
        ) {
            for d in debs {
                if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ConfigError::new(format!(
                        "{key}.{arch}: {}: bad sha256 {:?}; run `linuxkit pkg build --update` to rewrite the lockfile",
                        d.name, d.sha256
                    ))
                    .in_file(name));
                }
                if d.filename.is_empty() || d.filename.split('/').any(|c| c == "..") {
                    return Err(ConfigError::new(format!(
                        "{key}.{arch}: {}: bad filename {:?}",
                        d.name, d.filename
                    ))
                    .in_file(name));
                }
            }
        }
        Ok(l)
    }

    /// The lockfile's text: deterministic, sorted, one field per line.
    pub fn to_text(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
        let list = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| q(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = String::new();
        out.push_str(
            "# The Debian packages of this image, pinned by `linuxkit pkg build`: builds\n\
             # use exactly these .debs and read no index. `linuxkit pkg build --update`\n\
             # resolves build.yml's `debian:` again and rewrites this file.\n",
        );
        let _ = writeln!(out, "version: {}", self.version);
        out.push_str("request:\n");
        let _ = writeln!(
            out,
            "  suite: {}",
            self.request.suite.as_deref().map_or("null".to_string(), q)
        );
        let _ = writeln!(out, "  components: {}", list(&self.request.components));
        out.push_str(if self.request.packages.is_empty() {
            "  packages: []\n"
        } else {
            "  packages:\n"
        });
        for p in &self.request.packages {
            let _ = writeln!(out, "    - {}", q(p));
        }
        let _ = writeln!(out, "  dependencies: {}", self.request.dependencies);
        // Only when there are some, so that the lockfiles of packages
        // without them (and so their tags) stay as they were.
        if !self.request.build_packages.is_empty() {
            out.push_str("  build_packages:\n");
            for p in &self.request.build_packages {
                let _ = writeln!(out, "    - {}", q(p));
            }
        }
        let _ = writeln!(out, "suite: {}", q(&self.suite));
        write_pins(&mut out, "packages", &self.packages);
        if !self.build_packages.is_empty() {
            write_pins(&mut out, "build_packages", &self.build_packages);
        }
        out
    }
}

/// `KEY:` and its pinned packages per architecture, sorted.
fn write_pins(out: &mut String, key: &str, pins: &BTreeMap<String, Vec<LockedDeb>>) {
    let q = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let _ = writeln!(out, "{key}:");
    if pins.is_empty() {
        // An empty mapping, not YAML's null.
        out.pop();
        out.push_str(" {}\n");
    }
    for (arch, debs) in pins {
        let _ = writeln!(
            out,
            "  {}:{}",
            q(arch),
            if debs.is_empty() { " []" } else { "" }
        );
        let mut debs: Vec<&LockedDeb> = debs.iter().collect();
        debs.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.architecture.cmp(&b.architecture))
        });
        for d in debs {
            let _ = writeln!(out, "    - name: {}", q(&d.name));
            let _ = writeln!(out, "      version: {}", q(&d.version));
            let _ = writeln!(out, "      architecture: {}", q(&d.architecture));
            let _ = writeln!(out, "      filename: {}", q(&d.filename));
            let _ = writeln!(out, "      size: {}", d.size);
            let _ = writeln!(out, "      sha256: {}", q(&d.sha256));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        let mut l = Lockfile::new(
            LockRequest {
                suite: None,
                components: vec!["main".into()],
                packages: vec!["busybox-static".into(), "libc6 (>= 2.36)".into()],
                dependencies: true,
                build_packages: Vec::new(),
            },
            "bookworm".into(),
        );
        let deb = |name: &str| LockedDeb {
            name: name.into(),
            version: "1:1.35.0-4+b3".into(),
            architecture: "amd64".into(),
            filename: format!("pool/main/x/{name}_1_amd64.deb"),
            size: 42,
            sha256: "ab".repeat(32),
        };
        l.packages
            .insert("amd64".into(), vec![deb("zlib1g"), deb("busybox-static")]);
        l
    }

    #[test]
    fn round_trips_sorted_and_quoted() {
        let l = sample();
        let text = l.to_text();
        assert!(text.contains("    - name: \"busybox-static\"\n"), "{text}");
        assert!(
            text.contains("      version: \"1:1.35.0-4+b3\"\n"),
            "{text}"
        );
        assert!(text.contains("  suite: null\n"), "{text}");
        assert!(
            text.find("busybox-static\"\n      version").unwrap()
                < text.find("zlib1g\"\n      version").unwrap(),
            "sorted by name: {text}"
        );
        let back = Lockfile::parse("debian.lock", &text).unwrap();
        assert_eq!(back.request, l.request);
        assert_eq!(back.packages["amd64"][0].name, "busybox-static");
        assert_eq!(back.to_text(), text, "writing is deterministic");
    }

    #[test]
    fn bad_lockfiles_are_located() {
        let text = sample().to_text().replace("size: 42", "size: big");
        let e = Lockfile::parse("p/debian.lock", &text).unwrap_err();
        assert!(e.to_string().starts_with("p/debian.lock:"), "{e}");
        assert!(e.mark.is_some(), "{e}");
        let text = sample().to_text().replace("version: 1\n", "version: 9\n");
        let e = Lockfile::parse("p/debian.lock", &text).unwrap_err();
        assert!(e.to_string().contains("--update"), "{e}");
    }

    /// What `to_text` wrote for [`sample`] before `build_packages`
    /// existed: lockfiles without build packages must stay byte for byte
    /// the same, as every package's tag covers its lockfile.
    const SAMPLE_TEXT: &str = "\
# The Debian packages of this image, pinned by `linuxkit pkg build`: builds
# use exactly these .debs and read no index. `linuxkit pkg build --update`
# resolves build.yml's `debian:` again and rewrites this file.
version: 1
request:
  suite: null
  components: [\"main\"]
  packages:
    - \"busybox-static\"
    - \"libc6 (>= 2.36)\"
  dependencies: true
suite: \"bookworm\"
packages:
  \"amd64\":
    - name: \"busybox-static\"
      version: \"1:1.35.0-4+b3\"
      architecture: \"amd64\"
      filename: \"pool/main/x/busybox-static_1_amd64.deb\"
      size: 42
      sha256: \"abababababababababababababababababababababababababababababababab\"
    - name: \"zlib1g\"
      version: \"1:1.35.0-4+b3\"
      architecture: \"amd64\"
      filename: \"pool/main/x/zlib1g_1_amd64.deb\"
      size: 42
      sha256: \"abababababababababababababababababababababababababababababababab\"
";

    #[test]
    fn without_build_packages_the_text_is_unchanged() {
        let l = sample();
        assert_eq!(l.to_text(), SAMPLE_TEXT);
        assert!(!l.to_text().contains("build_packages"));
        let back = Lockfile::parse("debian.lock", SAMPLE_TEXT).unwrap();
        assert_eq!(back.request, l.request);
        assert_eq!(back.to_text(), SAMPLE_TEXT);
        assert!(back.request.build_packages.is_empty() && back.build_packages.is_empty());
    }

    /// Every lockfile of the repository's packages reads back to the same
    /// text (with build packages or not): what `linuxkit pkg build` wrote
    /// is what it writes.
    #[test]
    fn the_repository_lockfiles_round_trip() {
        let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pkg");
        let mut seen = 0;
        let mut with_build = 0;
        for e in std::fs::read_dir(&pkg).unwrap() {
            let path = e.unwrap().path().join(LOCKFILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let name = path.display().to_string();
            let l = Lockfile::parse(&name, &text).unwrap();
            assert_eq!(l.to_text(), text, "{name}");
            assert_eq!(
                text.contains("build_packages"),
                !l.request.build_packages.is_empty(),
                "{name}"
            );
            seen += 1;
            with_build += usize::from(!l.build_packages.is_empty());
        }
        assert!(
            seen >= 10 && with_build >= 1,
            "{seen} lockfiles, {with_build} with build packages"
        );
    }

    fn with_build_packages() -> Lockfile {
        let mut l = sample();
        l.request.packages.clear();
        l.request.build_packages = vec!["golang-go".into(), "golang-x-dev (>= 1.0)".into()];
        let deb = |name: &str, arch: &str| LockedDeb {
            name: name.into(),
            version: "2:1.19~1".into(),
            architecture: arch.into(),
            filename: format!("pool/main/g/{name}_1_{arch}.deb"),
            size: 7,
            sha256: "cd".repeat(32),
        };
        l.packages = BTreeMap::from([("amd64".into(), Vec::new()), ("arm64".into(), Vec::new())]);
        l.build_packages = BTreeMap::from([
            (
                "amd64".into(),
                vec![deb("golang-x-dev", "all"), deb("golang-go", "amd64")],
            ),
            ("arm64".into(), vec![deb("golang-go", "arm64")]),
        ]);
        l
    }

    #[test]
    fn build_packages_round_trip() {
        let l = with_build_packages();
        let text = l.to_text();
        for part in [
            "  packages: []\n  dependencies: true\n  build_packages:\n    - \"golang-go\"\n    - \"golang-x-dev (>= 1.0)\"\nsuite: \"bookworm\"\n",
            "\npackages:\n  \"amd64\": []\n  \"arm64\": []\nbuild_packages:\n  \"amd64\":\n    - name: \"golang-go\"\n",
            "\n  \"arm64\":\n    - name: \"golang-go\"\n      version: \"2:1.19~1\"\n      architecture: \"arm64\"\n",
        ] {
            assert!(text.contains(part), "{part:?} not in\n{text}");
        }
        let back = Lockfile::parse("debian.lock", &text).unwrap();
        assert_eq!(back.request, l.request);
        assert_eq!(back.packages, l.packages);
        assert_eq!(
            back.build_packages["amd64"]
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["golang-go", "golang-x-dev"],
            "sorted by name"
        );
        assert_eq!(back.to_text(), text);

        // No architecture at all: an empty mapping, not null.
        let mut l = with_build_packages();
        l.packages.clear();
        l.build_packages.clear();
        let text = l.to_text();
        assert!(text.ends_with("\npackages: {}\n"), "{text}");
        let back = Lockfile::parse("debian.lock", &text).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.to_text(), text);
    }

    #[test]
    fn pins_need_the_build_packages_of_the_building_machine() {
        let mut l = with_build_packages();
        assert!(l.pins(Arch::Amd64, Arch::Amd64) && l.pins(Arch::Arm64, Arch::Amd64));
        assert!(l.pins(Arch::Amd64, Arch::Arm64));
        assert!(
            !l.pins(Arch::Riscv64, Arch::Amd64),
            "no packages for the target"
        );
        l.build_packages.remove("arm64");
        assert!(
            l.pins(Arch::Arm64, Arch::Amd64),
            "an amd64 machine cross-builds arm64 with its own build packages"
        );
        assert!(
            !l.pins(Arch::Amd64, Arch::Arm64) && !l.pins_build(Arch::Arm64),
            "build packages asked for, not pinned for the machine that builds"
        );
        l.packages.insert("riscv64".into(), Vec::new());
        assert!(l.pins(Arch::Riscv64, Arch::Amd64));
        let l = sample();
        assert!(
            l.pins(Arch::Amd64, Arch::Arm64) && l.pins_build(Arch::Riscv64),
            "nothing to build with: the packages are enough"
        );
        assert!(!l.pins(Arch::Arm64, Arch::Amd64));
    }

    #[test]
    fn bad_build_packages_are_named() {
        let text = with_build_packages()
            .to_text()
            .replacen(&"cd".repeat(32), "xyz", 1);
        let e = Lockfile::parse("p/debian.lock", &text).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p/debian.lock: build_packages.amd64: golang-go: bad sha256 \"xyz\"")
                && e.to_string().contains("--update"),
            "{e}"
        );
        let text = with_build_packages()
            .to_text()
            .replace("pool/main/g/golang-go_1_arm64.deb", "pool/../etc/x.deb");
        let e = Lockfile::parse("p/debian.lock", &text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p/debian.lock: build_packages.arm64: golang-go: bad filename \"pool/../etc/x.deb\""
        );
        // The image's own are still named as before.
        let text = sample().to_text().replacen(&"ab".repeat(32), "xyz", 1);
        let e = Lockfile::parse("p/debian.lock", &text).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p/debian.lock: packages.amd64: busybox-static: bad sha256"),
            "{e}"
        );
    }

    #[test]
    fn differences_are_described() {
        let a = sample().request;
        let mut b = a.clone();
        b.packages.push("kmod".into());
        b.dependencies = false;
        let d = a.difference(&b);
        assert!(d.contains("packages [") && d.contains("kmod]"), "{d}");
        assert!(d.contains("dependencies true → false"), "{d}");

        let mut c = a.clone();
        c.build_packages.push("golang-go".into());
        assert_eq!(a.difference(&c), "build_packages [] → [golang-go]");
        assert_ne!(a, c, "a lockfile without the build packages is stale");
        let mut d = c.clone();
        d.build_packages.push("golang-x-dev".into());
        assert_eq!(
            c.difference(&d),
            "build_packages [golang-go] → [golang-go, golang-x-dev]"
        );
    }
}
