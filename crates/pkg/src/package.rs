//! A package directory, loaded: its `build.yml` with overrides applied, and
//! its hash and tag.
//!
//! The hash is what makes LinuxKit packages content-addressed: the tag of
//! `linuxkit/init` is the git tree hash of `pkg/init`, so an unchanged
//! directory always maps to an already-published image, and any committed
//! change yields a new tag. Uncommitted changes must never masquerade as a
//! published tag, hence the `-dirty-<content hash>` suffix. The rules below
//! are the reference's `NewFromConfig`, step by step, because a tag that
//! differs from the reference's for the same tree is a bug.

use std::path::{Component, Path, PathBuf};

use linuxkit_config::ImageConfig;
use sha1::{Digest, Sha1};

use crate::git::Git;
use crate::tag::TagTemplate;
use crate::{BuildYml, DEFAULT_TAG_TEMPLATE, PkgError};
use linuxkit_config::reference_expand;

/// The default name of a package's build file.
pub const DEFAULT_BUILD_YML: &str = "build.yml";
/// The default commit whose tree is hashed.
pub const DEFAULT_HASH_COMMIT: &str = "HEAD";

/// How to load packages: the `linuxkit pkg` flags that affect a package's
/// identity. `None` means "not given on the command line": only explicitly
/// given flags override `build.yml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgOptions {
    /// The build file's name in the package directory (`--build-yml`).
    pub build_yml: String,
    /// Use this hash instead of asking git (`--hash`); this also suppresses
    /// the dirty suffix.
    pub hash: Option<String>,
    /// The commit whose tree is hashed (`--hash-commit`).
    pub hash_commit: String,
    /// Hash this directory, a parent of the package's, instead of the
    /// package directory (`--hash-path`).
    pub hash_path: Option<PathBuf>,
    /// Treat the package as dirty even if git says it is clean
    /// (`--force-dirty`).
    pub force_dirty: bool,
    /// Development build (`--dev`): org is `$USER`, hash is `dev`.
    pub dev: bool,
    /// Overrides the tag template of `build.yml` (`--tag`).
    pub tag: Option<String>,
    /// Overrides `org` (`--org`).
    pub org: Option<String>,
    /// Overrides `disable-cache` (`--disable-cache`/`--enable-cache`).
    pub disable_cache: Option<bool>,
    /// Overrides `network` (`--network`/`--nonetwork`).
    pub network: Option<bool>,
}

impl Default for PkgOptions {
    fn default() -> Self {
        PkgOptions {
            build_yml: DEFAULT_BUILD_YML.to_string(),
            hash: None,
            hash_commit: DEFAULT_HASH_COMMIT.to_string(),
            hash_path: None,
            force_dirty: false,
            dev: false,
            tag: None,
            org: None,
            disable_cache: None,
            network: None,
        }
    }
}

/// A directory for the build context: `src` on disk, `dst` in the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Absolute path.
    pub src: PathBuf,
    /// Slash-separated, cleaned (`/` for the package directory itself).
    pub dst: String,
}

/// A loaded package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The directory as the caller named it, for messages.
    pkg: PathBuf,
    /// Absolute, lexically cleaned.
    path: PathBuf,
    build_yml_path: PathBuf,
    /// `build.yml` with the command-line overrides applied.
    info: BuildYml,
    sources: Vec<Source>,
    hash: String,
    /// The rendered tag template; may be empty.
    tag: String,
    dirty: bool,
    commit: String,
    /// The options it was loaded with, for [`Package::reload`].
    opts: PkgOptions,
}

impl Package {
    /// Loads the package in `dir` and computes its hash and tag.
    ///
    /// In order (the reference's `NewFromConfig`):
    ///
    /// 1. `dir` is made absolute; `--hash-path`, if given, must contain it.
    /// 2. `build.yml` (or `opts.build_yml`) is parsed over the defaults;
    ///    `image` is required.
    /// 3. `--dev` sets org to `$USER` and the hash to `dev`; then explicit
    ///    `disable-cache`, `network` and `org` overrides apply.
    /// 4. Each `extra-sources` entry `src:dst` must be in a git work tree;
    ///    its tree hash is recorded.
    /// 5. Outside a git work tree there is no hash (so the tag is `latest`,
    ///    unless `--hash`) and the package is not dirty.
    /// 6. Inside one, the package is dirty if forced or if the hash path has
    ///    modified or untracked files (`HEAD` only). Unless `--hash`/`--dev`
    ///    gave a hash, the hash is the tree hash of the hash path; with
    ///    extra sources it becomes the sha1 of that hash followed by theirs
    ///    (all as hex text); if dirty, `-dirty-` and the first 7 hex digits
    ///    of the sha256 of the package's file contents are appended.
    /// 7. The tag template (`--tag`, else build.yml's `tag`, else
    ///    `{{.Hash}}`) is rendered with the hash.
    pub fn load(dir: &Path, opts: &PkgOptions) -> Result<Package, PkgError> {
        let pkg = dir.to_path_buf();
        let io_err = |path: &Path, source| PkgError::Io {
            pkg: pkg.clone(),
            path: path.to_path_buf(),
            source,
        };

        // 1.
        let path = absolute(dir).map_err(|e| io_err(dir, e))?;
        let hash_path = match &opts.hash_path {
            None => path.clone(),
            Some(h) => {
                let h = absolute(h).map_err(|e| io_err(h, e))?;
                // Whole components: the reference's string prefix test
                // would also accept `pkg/foo` as a parent of `pkg/foobar`.
                if !path.starts_with(&h) {
                    return Err(PkgError::HashPathNotPrefix {
                        pkg,
                        hash_path: h,
                        path,
                    });
                }
                h
            }
        };

        // 2.
        let build_yml_path = path.join(&opts.build_yml);
        let text =
            std::fs::read_to_string(&build_yml_path).map_err(|e| io_err(&build_yml_path, e))?;
        let display_name = dir.join(&opts.build_yml);
        let mut info = BuildYml::parse(&display_name.to_string_lossy(), &text)?;

        // 3.
        let mut hash = opts.hash.clone().filter(|h| !h.is_empty());
        if opts.dev {
            info.org = std::env::var("USER").unwrap_or_default();
            hash.get_or_insert_with(|| "dev".to_string());
        }
        if let Some(d) = opts.disable_cache {
            info.disable_cache = d;
        }
        if let Some(n) = opts.network {
            info.network = n;
        }
        if let Some(o) = &opts.org {
            info.org = o.clone();
        }

        // The template is checked before any git work (the reference checks
        // it last): a typo should not wait for, or hide behind, git.
        let template = {
            let t = match opts.tag.as_deref().filter(|t| !t.is_empty()) {
                Some(t) => t,
                None if info.tag.is_empty() => DEFAULT_TAG_TEMPLATE,
                None => &info.tag,
            };
            TagTemplate::parse(t).map_err(|e| PkgError::TagTemplate {
                pkg: pkg.clone(),
                template: t.to_string(),
                reason: e.to_string(),
            })?
        };

        // 4.
        let mut sources = vec![Source {
            src: path.clone(),
            dst: "/".to_string(),
        }];
        let mut src_hashes = String::new();
        for entry in &info.extra_sources {
            let parts: Vec<&str> = entry.split(':').collect();
            let [src, dst] = parts[..] else {
                return Err(PkgError::BadSource {
                    pkg,
                    entry: entry.clone(),
                });
            };
            let src = clean(&path.join(src));
            let Some(g) = Git::open(&src, &pkg)? else {
                return Err(PkgError::SourceNotInGit { pkg, src });
            };
            src_hashes.push_str(&g.tree_hash(&src, &opts.hash_commit)?);
            sources.push(Source {
                src,
                dst: clean_slash(dst),
            });
        }

        // 5.
        let git = match Git::open(&path, &pkg) {
            Ok(g) => g,
            // Without git there is nothing to ask, but a given hash is
            // enough for a tag (the reference fails here instead).
            Err(PkgError::GitNotFound { .. }) if hash.is_some() => None,
            Err(e) => return Err(e),
        };

        // 6.
        let mut dirty = false;
        if let Some(git) = &git {
            dirty = opts.force_dirty || git.is_dirty(&hash_path, &opts.hash_commit)?;
            if hash.is_none() {
                let mut h = git.tree_hash(&hash_path, &opts.hash_commit)?;
                if !src_hashes.is_empty() {
                    h.push_str(&src_hashes);
                    h = format!("{:x}", Sha1::digest(h.as_bytes()));
                }
                if dirty {
                    let content = git.content_hash(&hash_path)?;
                    h.push_str("-dirty-");
                    h.push_str(&content[..7]);
                }
                hash = Some(h);
            }
        }
        let hash = hash.unwrap_or_default();

        // 7.
        let tag = template.render(&hash);

        Ok(Package {
            pkg,
            path,
            build_yml_path,
            info,
            sources,
            hash,
            tag,
            dirty,
            commit: opts.hash_commit.clone(),
            opts: opts.clone(),
        })
    }

    /// `org/image:tag`, with tag `latest` if the template rendered empty
    /// (as it does outside git).
    pub fn tag(&self) -> String {
        format!("{}:{}", self.image(), self.tag_or_latest())
    }

    /// The tag alone: the rendered template, `latest` if it rendered empty.
    pub fn tag_or_latest(&self) -> String {
        if self.tag.is_empty() {
            "latest".into()
        } else {
            self.tag.clone()
        }
    }

    /// [`tag`](Self::tag) in canonical form, `docker.io/…` for Docker Hub
    /// (see [`reference_expand`]).
    pub fn full_tag(&self) -> String {
        reference_expand(&self.tag())
    }

    /// The reference's default release of a push: the tags of the commit
    /// the package is hashed at (`git tag -l --points-at HEAD`), none
    /// outside git.
    pub fn commit_tags(&self) -> Result<Vec<String>, PkgError> {
        match Git::open(&self.path, &self.pkg)? {
            Some(g) => g.commit_tags(&self.commit),
            None => Ok(Vec::new()),
        }
    }

    /// The reference's `REVISION` and `GOPKGVERSION` build arguments: the
    /// hashed commit's full hash (none for a dirty package, whose sources
    /// are not that commit's) and its Go version (see
    /// `Git::go_pkg_version`); both `None` outside git.
    pub fn revision(&self) -> Result<(Option<String>, Option<String>), PkgError> {
        let Some(g) = Git::open(&self.path, &self.pkg)? else {
            return Ok((None, None));
        };
        let revision = if self.dirty {
            None
        } else {
            Some(g.commit_hash(&self.commit)?)
        };
        Ok((revision, Some(g.go_pkg_version(&self.commit)?)))
    }

    /// `org/image:release`, for releasing this package's sources under a
    /// version; refused for an empty release or a dirty package.
    pub fn release_tag(&self, release: &str) -> Result<String, PkgError> {
        if release.is_empty() {
            return Err(PkgError::ReleaseTagRequired {
                pkg: self.pkg.clone(),
            });
        }
        if self.dirty {
            return Err(PkgError::DirtyRelease {
                pkg: self.pkg.clone(),
            });
        }
        Ok(format!("{}:{release}", self.image()))
    }

    /// `org/image`, without a tag.
    pub fn image(&self) -> String {
        format!("{}/{}", self.info.org, self.info.image)
    }

    /// The hash: git's (with suffixes), `--hash`, `dev`, or empty outside
    /// git.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether the sources differ from the hashed commit (or `--force-dirty`).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The image's runtime configuration, for its `org.mobyproject.config`
    /// label.
    pub fn config(&self) -> Option<&ImageConfig> {
        self.info.config.as_ref()
    }

    /// The package directory, absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The build file, absolute.
    pub fn build_yml_path(&self) -> &Path {
        &self.build_yml_path
    }

    /// `build.yml`, with the command-line overrides (org, network,
    /// disable-cache) applied.
    pub fn build_yml(&self) -> &BuildYml {
        &self.info
    }

    /// The build context's directories: the package itself at `/`, then the
    /// extra sources.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The commit the hash was computed from.
    pub fn hash_commit(&self) -> &str {
        &self.commit
    }

    /// Loads the package again with the same options: its tag changes when
    /// a file in it changes (the builder writes `debian.lock` there).
    pub fn reload(&self) -> Result<Package, PkgError> {
        Package::load(&self.pkg, &self.opts)
    }

    /// The build file as the user named it (`pkg/foo/build.yml`), for
    /// messages.
    pub fn build_yml_name(&self) -> String {
        self.pkg.join(&self.opts.build_yml).display().to_string()
    }

    /// The package directory as the user named it.
    pub fn dir(&self) -> &Path {
        &self.pkg
    }

    /// Packages can only be built from the work tree.
    pub fn check_buildable(&self) -> Result<(), PkgError> {
        if self.commit != DEFAULT_HASH_COMMIT {
            return Err(PkgError::NotHead {
                pkg: self.pkg.clone(),
                commit: self.commit.clone(),
            });
        }
        Ok(())
    }
}

/// Go's `filepath.Abs`: joined to the current directory and cleaned
/// lexically (`..` removes the previous component, symlinks are not
/// resolved).
fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(clean(p))
    } else {
        Ok(clean(&std::env::current_dir()?.join(p)))
    }
}

/// Go's `filepath.Clean` for absolute paths.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `/..` is `/`.
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Go's `path.Clean`: slash-separated, lexical.
fn clean_slash(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_lexical_like_go() {
        assert_eq!(clean(Path::new("/a/./b/../c/")), Path::new("/a/c"));
        assert_eq!(clean(Path::new("/../a")), Path::new("/a"));
        assert_eq!(clean(Path::new("/a/b/../../..")), Path::new("/"));
    }

    #[test]
    fn clean_slash_is_go_path_clean() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("src", "src"),
            ("/src/", "/src"),
            ("a//b/./c/..", "a/b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("a/../..", ".."),
        ] {
            assert_eq!(clean_slash(input), want, "{input:?}");
        }
    }
}
