//! A file written under a temporary name in its final directory and
//! renamed into place once complete, so that a failed or killed build
//! leaves no partial output under the output's name.
//!
//! A leaf with its own error type ([`StagedError`]): it knows nothing of
//! the formats, so that it can move to the workspace's bottom crate. (Its
//! temporary name is `.NAME.partial-PID` for now.)

use std::fs::File;
use std::path::{Path, PathBuf};

/// What failed, and the I/O error.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StagedError {
    /// What was being done, naming the file.
    pub context: String,
    /// What the operating system said.
    pub source: std::io::Error,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StagedError {
    move |source| StagedError { context, source }
}

/// A file being written under a temporary name in its final directory;
/// [`Staged::commit`] renames it into place, dropping it deletes it.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl Staged {
    /// Creates the temporary file for `dest`, open for reading and
    /// writing.
    pub fn create(dest: PathBuf) -> Result<Staged, StagedError> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(format!("cannot create {}", tmp.display())))?;
        Ok(Staged {
            tmp,
            dest,
            file: Some(file),
        })
    }

    /// The file, to write (and read back) the content.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until committed")
    }

    /// Where the content is until the commit.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Syncs the content and renames it into place.
    pub fn commit(self) -> Result<PathBuf, StagedError> {
        let dest = self.dest.clone();
        self.commit_to(dest)
    }

    /// Commits under another name than the one it was created for.
    pub fn commit_to(mut self, dest: PathBuf) -> Result<PathBuf, StagedError> {
        let f = self.file.take().expect("open until committed");
        f.sync_all()
            .map_err(io(format!("cannot write {}", self.tmp.display())))?;
        drop(f);
        std::fs::rename(&self.tmp, &dest)
            .map_err(io(format!("cannot create {}", dest.display())))?;
        Ok(dest)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
