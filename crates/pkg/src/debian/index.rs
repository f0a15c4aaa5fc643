//! Archive indices (`InRelease`/`Release`, `Packages`) and the download
//! [`Client`] with its cache.
//!
//! # The hash chain
//!
//! `dists/SUITE/InRelease` lists the SHA256 and size of every index file;
//! each `Packages` stanza lists the SHA256 and size of its `.deb`. The
//! client checks every download against the level above *before* it is
//! cached or parsed, so a corrupt or tampered file is refused rather than
//! remembered. The top, `InRelease`, is checked against the archive
//! keyring's OpenPGP signatures ([`verify`]).
//!
//! # The cache
//!
//! Builds must be repeatable offline, so everything fetched is kept under
//! a cache directory ([`Client::default_cache_dir`]: `$LINUXKIT_DEBIAN_CACHE`,
//! else `$XDG_CACHE_HOME/linuxkit/debian`, else `~/.cache/linuxkit/debian`):
//!
//! * `by-hash/sha256/<hex>` — every verified index and `.deb`, named by its
//!   content hash, so a cached file is re-verified with nothing but its name
//!   and is shared between mirrors and suites;
//! * `mirrors/<mirror>/dists/<suite>/InRelease` (or `Release` and
//!   `Release.gpg`) — the one file that is not content-addressed, verified
//!   again each time it is read. It is reused while younger than
//!   [`Client::release_max_age`] (default six hours), and when the mirror
//!   cannot be reached a stale copy is used rather than failing.
//!
//! Writes go to a temporary file in the same directory and are renamed into
//! place, so an interrupted download never leaves a truncated file behind.
//! [`Client::network_fetches`] counts HTTP requests, which is how the tests
//! prove a second run is served from the cache.

use crate::progress::Progress;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use linuxkit_base::Staged;
use sha2::{Digest, Sha256};

use super::error::{DebianError, Result, hex, io_err, parse_err};
use super::relation::{Dependency, Provide, parse_provides, parse_relations};
use super::sources::Mirror;
use super::version::Version;
use super::{control, verify};

/// A parsed `Release` (or the signed body of `InRelease`).
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// The suite as requested (the directory under `dists/`).
    pub dist: String,
    /// `Suite:` (e.g. `oldstable`).
    pub suite: Option<String>,
    /// `Codename:` (e.g. `bookworm`).
    pub codename: Option<String>,
    /// `Date:`.
    pub date: Option<String>,
    /// `Architectures:`.
    pub architectures: Vec<String>,
    /// `Components:`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: index files can be fetched by their hash,
    /// which avoids races with a mirror update between two requests.
    pub acquire_by_hash: bool,
    /// `SHA256:` entries: path relative to `dists/SUITE/` → (size, hex digest).
    pub sha256: BTreeMap<String, (u64, String)>,
}

impl Release {
    /// Parses a `Release` file, or an `InRelease` file (clear-signed: the
    /// signed body is extracted and dash-unescaped; the signature itself is
    /// not checked).
    pub fn parse(text: &str, dist: &str) -> Result<Release> {
        let body = clearsigned_body(text)?;
        let paras = control::parse(&body).map_err(|m| parse_err("Release", m))?;
        let p = paras
            .first()
            .ok_or_else(|| parse_err("Release", "empty file"))?;
        let mut sha256 = BTreeMap::new();
        for line in p.get("SHA256").unwrap_or("").lines() {
            let mut f = line.split_whitespace();
            let (Some(h), Some(size), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let size = size
                .parse()
                .map_err(|_| parse_err("Release", format!("bad size in {line:?}")))?;
            sha256.insert(path.to_owned(), (size, h.to_ascii_lowercase()));
        }
        if sha256.is_empty() {
            return Err(parse_err("Release", "no SHA256 entries"));
        }
        Ok(Release {
            dist: dist.to_owned(),
            suite: p.get("Suite").map(str::to_owned),
            codename: p.get("Codename").map(str::to_owned),
            date: p.get("Date").map(str::to_owned),
            architectures: control::words(p.get("Architectures")),
            components: control::words(p.get("Components")),
            acquire_by_hash: p
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            sha256,
        })
    }
}

/// The body of a clear-signed OpenPGP message, or `text` itself if unsigned.
fn clearsigned_body(text: &str) -> Result<String> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &str = "-----BEGIN PGP SIGNATURE-----";
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some(BEGIN) {
        return Ok(text.to_owned());
    }
    // Armor headers ("Hash: SHA256") up to the first blank line.
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
    }
    let mut body = String::with_capacity(text.len());
    let mut signed = false;
    for l in lines {
        if l.trim_end() == SIG {
            signed = true;
            break;
        }
        body.push_str(l.strip_prefix("- ").unwrap_or(l));
        body.push('\n');
    }
    if !signed {
        return Err(parse_err(
            "InRelease",
            "clear-signed message without a signature",
        ));
    }
    Ok(body)
}

/// `Multi-Arch:` of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    /// No field.
    #[default]
    No,
    /// `same`: co-installable across architectures.
    Same,
    /// `foreign`: satisfies dependencies of any architecture.
    Foreign,
    /// `allowed`: satisfies `pkg:any` dependencies.
    Allowed,
}

/// One binary package stanza from a `Packages` file (the fields a resolver
/// and a downloader need).
#[derive(Debug, Clone)]
pub struct Package {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: Version,
    /// `Architecture:` (`amd64`, `all`, …).
    pub architecture: String,
    /// `Depends:`: a conjunction of alternatives (`a | b, c`).
    pub depends: Vec<Vec<Dependency>>,
    /// `Pre-Depends:`, same shape.
    pub pre_depends: Vec<Vec<Dependency>>,
    /// `Provides:`: virtual packages, possibly versioned (`= v`).
    pub provides: Vec<Provide>,
    /// `Filename:`: path of the `.deb` relative to the mirror's base URI.
    pub filename: String,
    /// `Size:` of the `.deb`.
    pub size: u64,
    /// `SHA256:` of the `.deb`, lower-case hex.
    pub sha256: String,
    /// `Multi-Arch:`.
    pub multi_arch: MultiArch,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority:` (`required`, `important`, `standard`, `optional`, `extra`).
    pub priority: Option<String>,
}

impl Package {
    /// Builds a package from a `Packages` paragraph.
    pub fn from_paragraph(p: &control::Paragraph<'_>) -> Result<Package> {
        let name = p
            .get("Package")
            .ok_or_else(|| parse_err("Packages", "stanza without Package"))?;
        let what = || format!("Packages stanza {name}");
        let req = |f: &str| {
            p.get(f)
                .ok_or_else(|| parse_err(what(), format!("missing {f}")))
        };
        let relations = |f: &str| match p.get(f) {
            Some(v) => parse_relations(v).map_err(|m| parse_err(what(), format!("{f}: {m}"))),
            None => Ok(Vec::new()),
        };
        Ok(Package {
            name: name.to_owned(),
            version: Version::parse(req("Version")?)?,
            architecture: req("Architecture")?.to_owned(),
            depends: relations("Depends")?,
            pre_depends: relations("Pre-Depends")?,
            provides: match p.get("Provides") {
                Some(v) => {
                    parse_provides(v).map_err(|m| parse_err(what(), format!("Provides: {m}")))?
                }
                None => Vec::new(),
            },
            filename: req("Filename")?.to_owned(),
            size: req("Size")?
                .parse()
                .map_err(|_| parse_err(what(), "bad Size"))?,
            sha256: req("SHA256")?.to_ascii_lowercase(),
            multi_arch: match p.get("Multi-Arch").map(str::to_ascii_lowercase).as_deref() {
                Some("same") => MultiArch::Same,
                Some("foreign") => MultiArch::Foreign,
                Some("allowed") => MultiArch::Allowed,
                _ => MultiArch::No,
            },
            essential: p
                .get("Essential")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            priority: p.get("Priority").map(str::to_owned),
        })
    }
}

/// All packages of one suite and architecture, indexed by name and by the
/// virtual names they provide.
#[derive(Debug, Clone, Default)]
pub struct PackageIndex {
    /// What was indexed, for messages (`bookworm/amd64`).
    pub label: String,
    /// The native architecture.
    pub arch: String,
    packages: Vec<Package>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<usize>>,
}

impl PackageIndex {
    /// An empty index for `arch`; `label` names it in error messages.
    pub fn new(label: impl Into<String>, arch: impl Into<String>) -> Self {
        PackageIndex {
            label: label.into(),
            arch: arch.into(),
            ..Default::default()
        }
    }

    /// Parses a `Packages` file into an index.
    pub fn parse(text: &str, label: &str, arch: &str) -> Result<Self> {
        let mut idx = PackageIndex::new(label, arch);
        idx.add_packages_file(text)?;
        Ok(idx)
    }

    /// Adds the stanzas of another `Packages` file (another component).
    pub fn add_packages_file(&mut self, text: &str) -> Result<()> {
        let paras = control::parse(text).map_err(|m| parse_err("Packages", m))?;
        for p in &paras {
            self.push(Package::from_paragraph(p)?);
        }
        Ok(())
    }

    /// Adds one package.
    pub fn push(&mut self, pkg: Package) {
        let i = self.packages.len();
        self.by_name.entry(pkg.name.clone()).or_default().push(i);
        for pr in &pkg.provides {
            self.providers.entry(pr.name.clone()).or_default().push(i);
        }
        self.packages.push(pkg);
    }

    /// All packages, in file order.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// Every version of the real package `name`.
    pub fn get(&self, name: &str) -> impl Iterator<Item = &Package> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| &self.packages[i])
    }

    /// The packages that `Provides:` the name.
    pub fn providers(&self, name: &str) -> impl Iterator<Item = &Package> {
        self.providers
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| &self.packages[i])
    }

    /// Whether `name` is a real or a virtual package here.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.providers.contains_key(name)
    }

    /// Real and virtual names close to `name`, best first (at most five).
    pub fn close_matches(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &String)> = self
            .by_name
            .keys()
            .chain(self.providers.keys())
            .map(|k| (strsim::jaro_winkler(name, k), k))
            .filter(|(s, _)| *s >= 0.85)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(5).map(|(_, k)| k.clone()).collect()
    }
}

/// A sync, plain-HTTP client for one mirror, with a verified download cache.
#[derive(Debug)]
pub struct Client {
    base: String,
    cache: PathBuf,
    agent: ureq::Agent,
    fetches: AtomicUsize,
    release_max_age: Duration,
    keyring: PathBuf,
    progress: Progress,
}

/// What a download is called in progress lines: the path under `dists/`
/// of an index, the file name of a package (never the mirror's host).
fn short_name(url: &str) -> &str {
    match url.find("/dists/") {
        Some(i) => &url[i + 1..],
        None => url.rsplit('/').next().unwrap_or(url),
    }
}

impl Client {
    /// A client for the archive at `base_uri` (e.g. a `URIs:` value),
    /// caching under `cache_dir`.
    pub fn new(base_uri: &str, cache_dir: impl Into<PathBuf>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .user_agent(concat!("linuxkit-pkg/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            base: base_uri.trim_end_matches('/').to_owned(),
            cache: cache_dir.into(),
            agent,
            fetches: AtomicUsize::new(0),
            release_max_age: Duration::from_secs(6 * 3600),
            keyring: verify::keyring_path(None),
            progress: Progress::default(),
        }
    }

    /// Show downloads (their bytes as they arrive) on `progress`.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Verify release files against the keyring at `path` instead of
    /// [`verify::keyring_path`]'s choice.
    pub fn keyring(mut self, path: impl Into<PathBuf>) -> Self {
        self.keyring = path.into();
        self
    }

    /// The keyring release files are verified against.
    pub fn keyring_path(&self) -> &Path {
        &self.keyring
    }

    /// A client for `mirror`, caching under `cache_dir` or [`Client::default_cache_dir`].
    /// The keyring is the source's `Signed-By` file (unless overridden by
    /// `LINUXKIT_DEBIAN_KEYRING`), else Debian's archive keyring.
    pub fn for_mirror(mirror: &Mirror, cache_dir: Option<PathBuf>) -> Self {
        Client::new(
            &mirror.uri,
            cache_dir.unwrap_or_else(Client::default_cache_dir),
        )
        .keyring(verify::keyring_path(mirror.signed_by.as_deref()))
    }

    /// `$LINUXKIT_DEBIAN_CACHE`, else `$XDG_CACHE_HOME/linuxkit/debian`,
    /// else `~/.cache/linuxkit/debian`, else a directory under the temp dir.
    pub fn default_cache_dir() -> PathBuf {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(d) = env("LINUXKIT_DEBIAN_CACHE") {
            return d;
        }
        env("XDG_CACHE_HOME")
            .or_else(|| env("HOME").map(|h| h.join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("linuxkit/debian")
    }

    /// How long a cached `InRelease` is used without asking the mirror
    /// (`Duration::ZERO` always asks, `Duration::MAX` never does once cached).
    pub fn release_max_age(mut self, age: Duration) -> Self {
        self.release_max_age = age;
        self
    }

    /// The mirror's base URI.
    pub fn base_uri(&self) -> &str {
        &self.base
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// HTTP requests made so far by this client.
    pub fn network_fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The `Release` of `dist` (a codename or suite): `InRelease` if the
    /// mirror has it, else `Release` with its detached `Release.gpg`. The
    /// OpenPGP signature is verified against the keyring (see
    /// [`verify`]) each time, and only the signed text is
    /// parsed. Served from the cache while fresh; a stale cached copy is
    /// used if the mirror cannot be reached. A file whose signature does not
    /// verify is refused and not cached.
    ///
    /// The file must name `dist` as its `Codename` or `Suite`, so a
    /// misconfigured mirror cannot hand over another distribution.
    pub fn release(&self, dist: &str) -> Result<Release> {
        let dir = self.mirror_dir().join("dists").join(dist);
        let keyring = verify::Keyring::load(&self.keyring)?;
        let fresh = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age <= self.release_max_age)
        };
        let (inrel, rel, gpg) = (
            dir.join("InRelease"),
            dir.join("Release"),
            dir.join("Release.gpg"),
        );
        let cached = || -> Option<Result<String>> {
            if inrel.exists() {
                let text = fs::read_to_string(&inrel).ok()?;
                Some(keyring.verify_cleartext(&text, &inrel.display().to_string()))
            } else if rel.exists() && gpg.exists() {
                let (data, sig) = (fs::read(&rel).ok()?, fs::read(&gpg).ok()?);
                let what = rel.display().to_string();
                Some(keyring.verify_detached(&data, &sig, &what).and_then(|()| {
                    String::from_utf8(data).map_err(|_| parse_err(what, "not UTF-8"))
                }))
            } else {
                None
            }
        };
        let mut body = None;
        if fresh(&inrel) || (fresh(&rel) && gpg.exists()) {
            match cached() {
                Some(Ok(b)) => body = Some(b),
                // A cached file that no longer verifies is dropped and fetched again.
                _ => {
                    for p in [&inrel, &rel, &gpg] {
                        let _ = fs::remove_file(p);
                    }
                }
            }
        }
        let body = match body {
            Some(b) => b,
            None => match self.fetch_release(dist, &keyring) {
                Ok((body, files)) => {
                    // Parse before caching: never cache garbage.
                    check_release(&Release::parse(&body, dist)?, dist)?;
                    for p in [&inrel, &rel, &gpg] {
                        let _ = fs::remove_file(p);
                    }
                    for (name, bytes) in files {
                        write_atomic(&dir.join(name), &bytes)?;
                    }
                    body
                }
                Err(e @ DebianError::Http { .. }) => match cached() {
                    Some(Ok(b)) => b,
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            },
        };
        let release = Release::parse(&body, dist)?;
        check_release(&release, dist)?;
        Ok(release)
    }

    /// Downloads and verifies `InRelease`, or `Release` + `Release.gpg`;
    /// returns the signed text and the files to cache.
    #[allow(clippy::type_complexity)]
    fn fetch_release(
        &self,
        dist: &str,
        keyring: &verify::Keyring,
    ) -> Result<(String, Vec<(&'static str, Vec<u8>)>)> {
        let url = format!("{}/dists/{dist}/InRelease", self.base);
        match self.get_bytes(&url) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| parse_err(&url, "not UTF-8"))?;
                let body = keyring.verify_cleartext(&text, &url)?;
                Ok((body, vec![("InRelease", text.into_bytes())]))
            }
            Err(DebianError::Http { ref message, .. }) if message.contains("404") => {
                let url = format!("{}/dists/{dist}/Release", self.base);
                let data = self.get_bytes(&url)?;
                let sig = self.get_bytes(&format!("{url}.gpg"))?;
                keyring.verify_detached(&data, &sig, &url)?;
                let body =
                    String::from_utf8(data.clone()).map_err(|_| parse_err(&url, "not UTF-8"))?;
                Ok((body, vec![("Release", data), ("Release.gpg", sig)]))
            }
            Err(e) => Err(e),
        }
    }

    /// The `Packages` indices of `components` for `arch`, verified against
    /// `release` (`.xz` preferred, then `.gz`, then uncompressed) and merged.
    pub fn packages(
        &self,
        release: &Release,
        components: &[String],
        arch: &str,
    ) -> Result<PackageIndex> {
        let mut idx = PackageIndex::new(format!("{}/{arch}", release.dist), arch);
        for comp in components {
            let dir = format!("{comp}/binary-{arch}");
            let (name, (size, sha)) = ["Packages.xz", "Packages.gz", "Packages"]
                .iter()
                .find_map(|n| release.sha256.get(&format!("{dir}/{n}")).map(|e| (*n, e)))
                .ok_or_else(|| {
                    parse_err(
                        format!("Release of {}", release.dist),
                        format!("no {dir}/Packages listed"),
                    )
                })?;
            let url = if release.acquire_by_hash {
                format!(
                    "{}/dists/{}/{dir}/by-hash/SHA256/{sha}",
                    self.base, release.dist
                )
            } else {
                format!("{}/dists/{}/{dir}/{name}", self.base, release.dist)
            };
            let path = self.fetch_verified(&url, sha, Some(*size))?;
            let file = fs::File::open(&path).map_err(io_err(&path))?;
            let mut reader = decompressor(name, Box::new(std::io::BufReader::new(file)))
                .map_err(io_err(&path))?;
            let mut text = String::new();
            reader
                .read_to_string(&mut text)
                .map_err(io_err(format!("{} ({url})", path.display())))?;
            idx.add_packages_file(&text)?;
        }
        Ok(idx)
    }

    /// `base/rel` downloaded into the content-addressed cache and checked
    /// against `sha256` (and `size`); a cached copy is re-hashed before use.
    /// On mismatch nothing is cached and [`DebianError::HashMismatch`] is returned.
    pub fn fetch_verified(&self, url: &str, sha256: &str, size: Option<u64>) -> Result<PathBuf> {
        let sha256 = sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(parse_err(url, format!("bad SHA256 {sha256:?}")));
        }
        let dir = self.cache.join("by-hash/sha256");
        let dest = dir.join(&sha256);
        if dest.exists() {
            match hash_file(&dest) {
                Ok(h) if h == sha256 => return Ok(dest),
                // Corrupt cache entry: drop it and download again.
                _ => {
                    let _ = fs::remove_file(&dest);
                }
            }
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut tmp = Staged::create(dest.clone()).map_err(|e| io_err(&dir)(e.source))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        {
            let mut resp = self.get(url)?;
            let mut shown = self.progress.download(short_name(url), size);
            let mut body = resp.body_mut().as_reader();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = body.read(&mut buf).map_err(|e| DebianError::Http {
                    url: url.to_owned(),
                    message: e.to_string(),
                })?;
                if n == 0 {
                    break;
                }
                shown.inc(n as u64);
                hasher.update(&buf[..n]);
                written += n as u64;
                tmp.file()
                    .write_all(&buf[..n])
                    .map_err(io_err(tmp.path()))?;
            }
        }
        if let Some(size) = size.filter(|s| *s != written) {
            return Err(DebianError::HashMismatch {
                what: format!("size of {url}"),
                expected: size.to_string(),
                actual: written.to_string(),
            });
        }
        let actual = hex(&hasher.finalize());
        if actual != sha256 {
            return Err(DebianError::HashMismatch {
                what: format!("SHA256 of {url}"),
                expected: sha256,
                actual,
            });
        }
        tmp.commit().map_err(|e| io_err(&dest)(e.source))?;
        Ok(dest)
    }

    fn mirror_dir(&self) -> PathBuf {
        let key: String = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache.join("mirrors").join(key)
    }

    fn get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.agent.get(url).call().map_err(|e| DebianError::Http {
            url: url.to_owned(),
            message: match e {
                ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
                other => other.to_string(),
            },
        })
    }

    fn get_bytes(&self, url: &str) -> Result<Vec<u8>> {
        let mut resp = self.get(url)?;
        let total = resp.body().content_length();
        let mut shown = self.progress.download(short_name(url), total);
        let mut out = Vec::new();
        let mut body = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf).map_err(|e| DebianError::Http {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            shown.inc(n as u64);
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }
}

fn check_release(r: &Release, dist: &str) -> Result<()> {
    if r.codename.as_deref() == Some(dist) || r.suite.as_deref() == Some(dist) {
        return Ok(());
    }
    Err(parse_err(
        format!("Release of {dist}"),
        format!(
            "it describes Suite {:?} / Codename {:?}, not {dist:?}",
            r.suite.as_deref().unwrap_or(""),
            r.codename.as_deref().unwrap_or("")
        ),
    ))
}

/// The SHA256 of a file, lower-case hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok(hex(&h.finalize()))
}

/// The verified copy of the file with SHA256 `sha256` in the Debian cache
/// under `cache_dir`, if there is one. A corrupt copy is removed.
pub fn cached_file(cache_dir: &Path, sha256: &str) -> Option<PathBuf> {
    let sha256 = sha256.to_ascii_lowercase();
    let p = cache_dir.join("by-hash/sha256").join(&sha256);
    if !p.exists() {
        return None;
    }
    match hash_file(&p) {
        Ok(h) if h == sha256 => Some(p),
        _ => {
            let _ = fs::remove_file(&p);
            None
        }
    }
}

/// Writes `data` to `path` via a temporary file and a rename
/// ([`Staged`], the workspace's atomic writer).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = Staged::create(path.to_path_buf()).map_err(|e| io_err(dir)(e.source))?;
    tmp.file().write_all(data).map_err(io_err(tmp.path()))?;
    tmp.commit().map_err(|e| io_err(path)(e.source))?;
    Ok(())
}

/// Wraps `r` in the decompressor that `name`'s extension calls for
/// (`.xz`, `.zst`, `.gz`; anything else is read as is).
pub(crate) fn decompressor<'a>(
    name: &str,
    r: Box<dyn Read + 'a>,
) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(if name.ends_with(".xz") {
        Box::new(lzma_rust2::XzReader::new(r, true))
    } else if name.ends_with(".zst") {
        Box::new(zstd::Decoder::new(r)?)
    } else if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        r
    })
}
