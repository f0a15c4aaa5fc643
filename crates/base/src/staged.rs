//! The workspace's one atomic writer: a file written under a temporary
//! name in its final directory and renamed into place once complete, so
//! that a failed or killed run leaves nothing under the file's name.
//!
//! The temporary file is `.NAME.partial-PID-RANDOM`: created exclusively
//! (`O_CREAT|O_EXCL`, which never follows a link) under a name nobody can
//! guess, because output directories may be writable by others, who could
//! otherwise plant a symlink under the coming name and have a (root) build
//! write through it. The pid is in the name, and the writer holds an
//! exclusive `flock` on the file, so that leftovers of killed runs can be
//! told from files still being written (the lock also by a run in another
//! pid namespace sharing the directory): [`Staged::create`] first removes,
//! once per directory and process, the leftovers whose process is gone
//! ([`reclaim`]). On every error path, and when dropped without
//! [`Staged::commit`], the temporary file is deleted.
//!
//! The cache (`linuxkit-oci`) stages its blobs in its own `.tmp/` with its
//! own reclaiming under its lock; this module is for everything else that
//! writes a file in place (outputs, the metadata ISO, package indexes).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// What failed, and the I/O error.
#[derive(Debug)]
pub struct StagedError {
    /// What was being done, with the path (`cannot create PATH`).
    pub context: String,
    /// The error.
    pub source: std::io::Error,
}

impl fmt::Display for StagedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for StagedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StagedError {
    move |source| StagedError { context, source }
}

/// The marker between a file's name and the pid in a temporary name.
const PARTIAL: &str = ".partial-";

/// A file being written under a temporary name in its final directory;
/// [`Staged::commit`] renames it into place, dropping it deletes it.
pub struct Staged {
    tmp: Option<tempfile::NamedTempFile>,
    dest: PathBuf,
}

impl Staged {
    /// Creates the temporary file for `dest` in `dest`'s directory, open
    /// for reading and writing, after reclaiming what killed runs left
    /// there.
    pub fn create(dest: PathBuf) -> Result<Staged, StagedError> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        reclaim_once(&dir);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A name near NAME_MAX leaves no room for the suffix: shorten the
        // temporary name (the pid and the random part are what matter).
        let name: String = name.chars().take(160).collect();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}{PARTIAL}{}-", std::process::id()))
            .rand_bytes(12)
            .tempfile_in(&dir)
            .map_err(io(format!(
                "cannot create a temporary file for {} in {}",
                dest.display(),
                dir.display()
            )))?;
        // Marks it as being written (see `reclaim`); a file system without
        // locks leaves the pid alone to say so.
        let _ = tmp.as_file().try_lock();
        Ok(Staged {
            tmp: Some(tmp),
            dest,
        })
    }

    /// The file, to write (and read back) the content.
    pub fn file(&mut self) -> &mut File {
        self.tmp
            .as_mut()
            .expect("open until committed")
            .as_file_mut()
    }

    /// Where the content is until the commit.
    pub fn path(&self) -> &Path {
        self.tmp.as_ref().expect("open until committed").path()
    }

    /// Where the content goes on [`Staged::commit`].
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Syncs the content and renames it into place.
    pub fn commit(self) -> Result<PathBuf, StagedError> {
        let dest = self.dest.clone();
        self.commit_to(dest)
    }

    /// Commits under another name than the one it was created for (in the
    /// same file system). On failure the temporary file is deleted.
    pub fn commit_to(mut self, dest: PathBuf) -> Result<PathBuf, StagedError> {
        let tmp = self.tmp.take().expect("open until committed");
        tmp.as_file()
            .sync_all()
            .map_err(io(format!("cannot write {}", tmp.path().display())))?;
        // A failed rename hands the file back; dropping it deletes it.
        tmp.persist(&dest)
            .map_err(|e| io(format!("cannot create {}", dest.display()))(e.error))?;
        Ok(dest)
    }
}

/// Whether the process `pid` runs (on this host's pid namespace).
pub fn pid_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in the name of a temporary file this module (or the initrd
/// builder's scratch directory, `.initrd-PID-RANDOM`) makes, if it is one.
fn owner(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    let rest = name.strip_prefix('.')?;
    let after = match rest.strip_prefix("initrd-") {
        Some(a) => a,
        None => &rest[rest.rfind(PARTIAL)? + PARTIAL.len()..],
    };
    // `PID` (before the names were random) or `PID-RANDOM`.
    let pid = after.split('-').next()?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes the temporary files (and initrd scratch directories) in `dir`
/// whose process is gone; returns how many it removed. A link is removed,
/// never followed. One it cannot remove is left, with a warning on
/// standard error.
pub fn reclaim(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(pid) = owner(&entry.file_name()) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            Ok(t) if t.is_file() && being_written(&path) => continue,
            // Links and the like were planted: removed, never followed.
            _ => std::fs::remove_file(&path),
        };
        match gone {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot remove {}, left by a killed run: {e}",
                path.display()
            ),
        }
    }
    removed
}

/// Whether a process holds the lock of the temporary file `path` (one in
/// another pid namespace, whose pid means nothing here). Opened without
/// following a link (one swapped in since the listing) nor waiting on a
/// FIFO.
fn being_written(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// [`reclaim`], once per directory in this process.
fn reclaim_once(dir: &Path) {
    static DONE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let first = DONE
        .get_or_init(Default::default)
        .lock()
        .map(|mut d| d.insert(key))
        .unwrap_or(true);
    if first {
        reclaim(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_renames_and_drop_deletes() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out.tar");
        let mut s = Staged::create(dest.clone()).unwrap();
        s.file().write_all(b"content").unwrap();
        let tmp = s.path().to_path_buf();
        let name = tmp.file_name().unwrap().to_str().unwrap().to_owned();
        let prefix = format!(".out.tar.partial-{}-", std::process::id());
        assert!(name.starts_with(&prefix), "{name}");
        assert!(name.len() > prefix.len(), "a random part follows the pid");
        assert_eq!(s.commit().unwrap(), dest);
        assert_eq!(std::fs::read(&dest).unwrap(), b"content");
        assert!(!tmp.exists());

        let s = Staged::create(d.path().join("other")).unwrap();
        let tmp = s.path().to_path_buf();
        drop(s);
        assert!(!tmp.exists());
        assert!(!d.path().join("other").exists());
    }

    /// The old, predictable name (`.NAME.partial-PID`) planted as a
    /// symlink for our own pid: the write must not go through it.
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = d
            .path()
            .join(format!(".out.img.partial-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let mut s = Staged::create(d.path().join("out.img")).unwrap();
        assert_ne!(s.path(), link);
        s.file().write_all(b"output").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(d.path().join("out.img")).unwrap(), b"output");
    }

    /// A failed final rename (onto a non-empty directory) leaves no
    /// temporary file.
    #[test]
    fn a_failed_rename_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("x"), b"").unwrap();
        let mut s = Staged::create(dest.clone()).unwrap();
        s.file().write_all(b"output").unwrap();
        let tmp = s.path().to_path_buf();
        let e = s.commit().unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
        assert!(!tmp.exists(), "{} left behind", tmp.display());
    }

    /// Leftovers of dead processes go (files, links and initrd scratch
    /// directories, old names and new), ours and other files stay.
    #[test]
    fn reclaim_removes_only_dead_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        // A pid above pid_max (4194304 at most) runs nowhere.
        let dead = 4_194_305 + 7;
        let me = std::process::id();
        let victim = p.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let gone = [
            format!(".a.tar.partial-{dead}"),
            format!(".a.tar.partial-{dead}-Xy12ab"),
            format!(".b-efi.iso.partial-{dead}-Zz"),
        ];
        for g in &gone {
            std::fs::write(p.join(g), b"junk").unwrap();
        }
        std::os::unix::fs::symlink(&victim, p.join(format!(".c.partial-{dead}"))).unwrap();
        std::fs::create_dir(p.join(format!(".initrd-{dead}-abc"))).unwrap();
        std::fs::write(p.join(format!(".initrd-{dead}-abc/part-0")), b"").unwrap();
        // A build in another pid namespace: its pid is unknown here, its
        // lock says it is at work.
        let other_ns = p.join(format!(".e.tar.partial-{dead}-Ns"));
        let held = File::create(&other_ns).unwrap();
        held.lock().unwrap();
        let kept = [
            format!(".e.tar.partial-{dead}-Ns"),
            format!(".a.tar.partial-{me}-Q1"),
            "a.tar".to_owned(),
            ".partial-x".to_owned(),
            format!("a.tar.partial-{dead}"),
            ".d.partial-".to_owned(),
        ];
        for k in &kept[1..] {
            std::fs::write(p.join(k), b"").unwrap();
        }
        assert_eq!(reclaim(p), gone.len() + 2);
        for k in &kept {
            assert!(p.join(k).exists(), "{k} removed");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let left: Vec<_> = std::fs::read_dir(p).unwrap().collect();
        assert_eq!(left.len(), kept.len() + 1);
    }
}
