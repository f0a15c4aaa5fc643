//! The metadata CD: an ISO 9660 image holding one file, `config`, which
//! LinuxKit's `metadata` package (and `linuxkit metadata create`) use to
//! pass data to a guest.

use std::io::{Cursor, Write};
use std::path::Path;

use linuxkit_output::FsTree;
use linuxkit_rootfs::{Entry, EntrySink};

use crate::error::{Error, IoContext, Result};

/// The name of the file on the CD.
pub const CONFIG_FILE: &str = "config";

/// Writes the metadata ISO for `data` to `out`. The same data always gives
/// the same bytes: the file's and the image's times are fixed.
pub fn write_metadata_iso(data: &[u8], out: impl Write) -> Result<()> {
    let mut tree = FsTree::new(None).context(|| "cannot create a spool file".into())?;
    let entry = Entry::file(CONFIG_FILE, data.len() as u64);
    tree.add(&entry, &mut Cursor::new(data))
        .map_err(|e| Error::Usage(format!("cannot add the metadata: {e}")))?;
    linuxkit_output::write_iso(&tree, out).context(|| "cannot write the metadata ISO".into())
}

/// Writes the metadata ISO for `data` to the file `path` (replacing it),
/// through the workspace's atomic writer ([`linuxkit_base::Staged`]).
pub fn create_metadata_iso(path: &Path, data: &[u8]) -> Result<()> {
    let staged_err = |e: linuxkit_base::StagedError| Error::Io {
        context: e.context,
        source: e.source,
    };
    let mut staged = linuxkit_base::Staged::create(path.to_path_buf()).map_err(staged_err)?;
    write_metadata_iso(data, staged.file())?;
    staged.commit().map_err(staged_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The temporary file is not a fixed name (`data.iso.tmp` was, and a
    /// link planted there was followed), and a failed rename leaves none.
    #[test]
    fn the_temporary_file_is_exclusive_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("data.iso.tmp")).unwrap();
        create_metadata_iso(&d.path().join("data.iso"), b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

        let dir = d.path().join("busy.iso");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), b"").unwrap();
        assert!(create_metadata_iso(&dir, b"{}").is_err());
        let mut names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["busy.iso", "data.iso", "data.iso.tmp", "victim"]);
    }

    #[test]
    fn the_iso_is_deterministic_and_holds_config() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_metadata_iso(b"{\"hello\": 1}\n", &mut a).unwrap();
        write_metadata_iso(b"{\"hello\": 1}\n", &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len() % 2048, 0);
        assert_eq!(&a[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
        let pos = a.windows(12).position(|w| w == b"{\"hello\": 1}");
        assert!(pos.is_some(), "the content is in the image");
    }

    /// A real ISO 9660 reader (genisoimage's isoinfo, from scripts/setup)
    /// finds `config` by its Rock Ridge name and by its ISO 9660 name.
    #[test]
    fn isoinfo_reads_config() {
        let d = tempfile::tempdir().unwrap();
        let iso = d.path().join("data.iso");
        let data = b"{\"ssh\": {\"port\": 22}}\nsecond line\n";
        create_metadata_iso(&iso, data).unwrap();
        for (rock_ridge, name) in [(true, "/config"), (false, "/CONFIG.;1")] {
            let mut cmd = std::process::Command::new("isoinfo");
            if rock_ridge {
                cmd.arg("-R");
            }
            let out = cmd
                .arg("-i")
                .arg(&iso)
                .args(["-x", name])
                .output()
                .expect("isoinfo is installed (genisoimage, scripts/setup)");
            assert!(out.status.success(), "{out:?}");
            assert_eq!(out.stdout, data, "{name}");
        }
    }
}
