//! The git queries behind a package's hash.
//!
//! A package's tag must be identical to the one the reference LinuxKit
//! computes for the same tree: published images are found by tag, so a
//! different tag means a needless rebuild (or a pull that fails). That is why
//! this module runs the `git` program with the reference's exact commands
//! (`git -C <dir> …`) instead of reading the repository through a library:
//! git's own answer to "what is the tree hash of this directory, is it
//! modified, which files are untracked and not ignored" — honouring
//! `.gitignore`, `core.excludesFile`, index stat caching and so on — is the
//! definition we have to match.
//!
//! Commands inherit the environment, so `GIT_*` variables and the user's git
//! configuration apply just as they do for the reference.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::PkgError;

/// A directory inside a git work tree; every command runs as
/// `git -C <dir> …`.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    dir: PathBuf,
    /// The package the queries are for, for error messages.
    pkg: PathBuf,
}

impl Git {
    /// `Ok(None)` when `dir` is not inside a git work tree
    /// (`git rev-parse --is-inside-work-tree` fails).
    pub(crate) fn open(dir: &Path, pkg: &Path) -> Result<Option<Git>, PkgError> {
        let g = Git {
            dir: dir.to_path_buf(),
            pkg: pkg.to_path_buf(),
        };
        let args = ["rev-parse", "--is-inside-work-tree"].map(OsStr::new);
        let out = g.run(&args)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim() != "true" {
            // `false`: inside the .git directory itself.
            return Err(g.bad_output(&args, &text));
        }
        Ok(Some(g))
    }

    /// The git tree hash of `path` (a directory in this work tree) at
    /// `commit`.
    ///
    /// For the work tree's top directory that is the commit's tree
    /// (`git show --format=%T -s <commit>`); for anything below it is the
    /// entry `git ls-tree --full-tree <commit> -- <path>` prints, which must
    /// be a single line (`040000 tree <sha>\tpkg/foo`). An empty listing
    /// means the directory is not committed.
    pub(crate) fn tree_hash(&self, path: &Path, commit: &str) -> Result<String, PkgError> {
        let top = self.stdout(&[
            OsStr::new("rev-parse"),
            OsStr::new("--prefix"),
            path.as_os_str(),
            OsStr::new("--show-toplevel"),
        ])?;
        let top = String::from_utf8_lossy(&top);
        if same_dir(Path::new(top.trim()), path) {
            let args = [
                OsStr::new("show"),
                OsStr::new("--format=%T"),
                OsStr::new("-s"),
                OsStr::new(commit),
            ];
            let out = self.stdout(&args)?;
            let out = String::from_utf8_lossy(&out);
            let hash = out.trim();
            if !is_object_id(hash) {
                return Err(self.bad_output(&args, &out));
            }
            return Ok(hash.to_string());
        }

        let args = [
            OsStr::new("ls-tree"),
            OsStr::new("--full-tree"),
            OsStr::new(commit),
            OsStr::new("--"),
            path.as_os_str(),
        ];
        let out = self.stdout(&args)?;
        let out = String::from_utf8_lossy(&out);
        if out.is_empty() {
            return Err(PkgError::NotInGit {
                pkg: self.pkg.clone(),
                path: path.to_path_buf(),
                commit: commit.to_string(),
            });
        }
        parse_ls_tree(&out).ok_or_else(|| self.bad_output(&args, &out))
    }

    /// Whether `path` differs from `commit`: modified tracked files, or
    /// untracked files that are not ignored. Only meaningful for `HEAD` (the
    /// work tree is compared with it); any other commit is never dirty.
    pub(crate) fn is_dirty(&self, path: &Path, commit: &str) -> Result<bool, PkgError> {
        if commit != "HEAD" {
            return Ok(false);
        }
        // Tracked changes, without touching the index (`update-index
        // --refresh` would need write access). Like the reference, any
        // unsuccessful exit counts as "changed": in a repository without
        // commits this says dirty, and computing the tree hash then fails
        // with git's own explanation.
        let diff = self.run(&[
            OsStr::new("diff"),
            OsStr::new("--no-ext-diff"),
            OsStr::new("--exit-code"),
            OsStr::new("--quiet"),
            OsStr::new(commit),
            OsStr::new("--"),
            path.as_os_str(),
        ])?;
        if !diff.status.success() {
            return Ok(true);
        }
        // Untracked, non-ignored files: `--error-unmatch` makes the exit
        // status say whether there are any.
        let untracked = self.run(&[
            OsStr::new("ls-files"),
            OsStr::new("--exclude-standard"),
            OsStr::new("--others"),
            OsStr::new("--error-unmatch"),
            OsStr::new("--"),
            path.as_os_str(),
        ])?;
        Ok(untracked.status.success())
    }

    /// The sha256 (hex) of the contents of the files under `dir` (listed by
    /// `git -C <dir> ls-files`, so relative to it):
    /// tracked files in `git ls-files` order, then untracked non-ignored
    /// ones in `git ls-files --exclude-standard --others` order.
    ///
    /// Only contents are hashed (no names, no modes); directories, symlinks
    /// and files that cannot be stat'ed or opened (deleted, or listed with
    /// git's C-style quoting because of unusual characters) are skipped.
    /// Each of these details is the reference's, and all of them matter:
    /// this hash becomes part of a dirty package's tag.
    ///
    /// The reference lists the package directory's files; its newest version
    /// passes the hash path instead, which is the same directory unless
    /// `--hash-path` is given. Hashing the directory whose tree hash was
    /// taken is the consistent choice, so that is what `dir` is.
    pub(crate) fn content_hash(&self, dir: &Path) -> Result<String, PkgError> {
        let g = Git {
            dir: dir.to_path_buf(),
            pkg: self.pkg.clone(),
        };
        g.content_hash_here()
    }

    fn content_hash_here(&self) -> Result<String, PkgError> {
        let tracked = self.stdout(&[OsStr::new("ls-files")])?;
        let untracked =
            self.stdout(&["ls-files", "--exclude-standard", "--others"].map(OsStr::new))?;
        let mut all = tracked;
        all.push(b'\n');
        all.extend_from_slice(&untracked);

        let mut hasher = Sha256::new();
        for line in all.trim_ascii().split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let file = self.dir.join(bytes_to_path(line));
            let Ok(meta) = std::fs::symlink_metadata(&file) else {
                continue;
            };
            if meta.is_dir() || meta.file_type().is_symlink() {
                continue;
            }
            let Ok(mut f) = File::open(&file) else {
                continue;
            };
            io::copy(&mut f, &mut hasher).map_err(|source| PkgError::Io {
                pkg: self.pkg.clone(),
                path: file.clone(),
                source,
            })?;
        }
        Ok(format!("{:x}", hasher.finalize()))
    }

    /// The tags pointing at `commit` (`git tag -l --points-at <commit>`),
    /// the reference's default release for a push.
    pub(crate) fn commit_tags(&self, commit: &str) -> Result<Vec<String>, PkgError> {
        let out = self.stdout(&[
            OsStr::new("tag"),
            OsStr::new("-l"),
            OsStr::new("--points-at"),
            OsStr::new(commit),
        ])?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The full hash of `commit` (`git rev-parse --verify COMMIT^{commit}`).
    pub(crate) fn commit_hash(&self, commit: &str) -> Result<String, PkgError> {
        let arg = format!("{commit}^{{commit}}");
        let args = [
            OsStr::new("rev-parse"),
            OsStr::new("--verify"),
            OsStr::new(&arg),
        ];
        let out = String::from_utf8_lossy(&self.stdout(&args)?)
            .trim()
            .to_string();
        if !is_object_id(&out) {
            return Err(self.bad_output(&args, &out));
        }
        Ok(out)
    }

    /// A Go version of `commit`, as the reference's `GOPKGVERSION` build
    /// argument: the last `vX.Y.Z` tag if `commit` is it, else that tag
    /// (`v0.0.0` without one) followed by the commit's date and its 12-digit
    /// abbreviation, as Go's pseudo-versions (`v0.0.0-20261208021500-abcdef012345`).
    /// The date is UTC, so every machine computes the same version (the
    /// reference uses the local time zone, and its tag pattern, quoted for a
    /// shell it does not run, never matches: it always writes `v0.0.0-...`).
    pub(crate) fn go_pkg_version(&self, commit: &str) -> Result<String, PkgError> {
        let described = self.run(&[
            OsStr::new("describe"),
            OsStr::new("--match=v[0-9].[0-9].[0-9]*"),
            OsStr::new("--abbrev=0"),
            OsStr::new("--tags"),
            OsStr::new(commit),
        ])?;
        let last = String::from_utf8_lossy(&described.stdout)
            .trim()
            .to_string();
        let last = if described.status.success() && !last.is_empty() {
            last
        } else {
            "v0.0.0".to_string()
        };
        let range = if last == "v0.0.0" {
            commit.to_string()
        } else {
            format!("{last}..{commit}")
        };
        let count = self.stdout(&[
            OsStr::new("rev-list"),
            OsStr::new(&range),
            OsStr::new("--count"),
        ])?;
        if String::from_utf8_lossy(&count).trim() == "0" {
            return Ok(last);
        }
        let date = self.stdout(&[
            OsStr::new("-c"),
            OsStr::new("log.showSignature=false"),
            OsStr::new("show"),
            OsStr::new("--quiet"),
            OsStr::new("--abbrev=12"),
            OsStr::new("--date=format:%Y%m%d%H%M%S"),
            OsStr::new("--format=%cd-%h"),
            OsStr::new(commit),
        ])?;
        Ok(format!("{last}-{}", String::from_utf8_lossy(&date).trim()))
    }

    /// Runs `git -C <dir> <args>`, capturing its output; only failing to
    /// start git is an error.
    fn run(&self, args: &[&OsStr]) -> Result<Output, PkgError> {
        Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    PkgError::GitNotFound {
                        pkg: self.pkg.clone(),
                    }
                } else {
                    PkgError::GitSpawn {
                        pkg: self.pkg.clone(),
                        command: self.command_line(args),
                        source,
                    }
                }
            })
    }

    /// Runs a command that must succeed; returns its stdout.
    fn stdout(&self, args: &[&OsStr]) -> Result<Vec<u8>, PkgError> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(PkgError::Git {
                pkg: self.pkg.clone(),
                command: self.command_line(args),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(out.stdout)
    }

    fn bad_output(&self, args: &[&OsStr], output: &str) -> PkgError {
        PkgError::GitOutput {
            pkg: self.pkg.clone(),
            command: self.command_line(args),
            output: output.to_string(),
        }
    }

    /// `git -C <dir> <args>`, for error messages.
    fn command_line(&self, args: &[&OsStr]) -> String {
        let mut s = format!("git -C {}", self.dir.display());
        for a in args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Whether `a` and `b` name the same directory. git prints the top level
/// with symlinks resolved, so compare canonical forms when they exist.
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        )
}

/// A SHA-1 (40) or SHA-256 (64) object id in lower-case hex.
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The object id of the single entry of `ls-tree` output, which must match
/// the reference's `^[0-7]{6} [^ ]+ ([0-9a-f]{40})\t.+\n$` (SHA-256 ids are
/// also accepted).
fn parse_ls_tree(out: &str) -> Option<String> {
    let line = out.strip_suffix('\n')?;
    if line.contains('\n') {
        return None;
    }
    let (meta, name) = line.split_once('\t')?;
    if name.is_empty() {
        return None;
    }
    let (mode, rest) = meta.split_once(' ')?;
    let (kind, id) = rest.rsplit_once(' ')?;
    let mode_ok = mode.len() == 6 && mode.bytes().all(|b| matches!(b, b'0'..=b'7'));
    if !mode_ok || kind.is_empty() || kind.contains(' ') || !is_object_id(id) {
        return None;
    }
    Some(id.to_string())
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(b))
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_tree_output_is_one_entry() {
        let id = "7804129bd06218b72c298139a25698a748d253c6";
        assert_eq!(
            parse_ls_tree(&format!("040000 tree {id}\tpkg/init\n")).as_deref(),
            Some(id)
        );
        for bad in [
            format!("040000 tree {id}\tpkg/init"),
            format!("040000 tree {id}\tpkg/a\n040000 tree {id}\tpkg/b\n"),
            format!("040000 tree {id}\t\n"),
            format!("04000 tree {id}\tpkg/init\n"),
            format!("040000 tree {}\tpkg/init\n", &id[1..]),
            format!("040000 tree {}\tpkg/init\n", id.to_uppercase()),
        ] {
            assert_eq!(parse_ls_tree(&bad), None, "{bad:?}");
        }
    }
}
