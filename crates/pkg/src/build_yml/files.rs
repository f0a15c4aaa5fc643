//! `files:`: the schema of a LinuxKit YAML's `files:` (laid out by the
//! same rules, see `linuxkit_rootfs::files`), checked as it is read.

use linuxkit_base::path::normalize;
use linuxkit_config::File;
use serde::Deserialize;
use serde::de::Deserializer;

use super::de::checked_map;

struct CheckedFile(File);

impl<'de> Deserialize<'de> for CheckedFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |f: File| {
            if normalize(&f.path).is_err() {
                return Err(format!(
                    "file needs a `path` in the image without `..` (got {:?})",
                    f.path
                ));
            }
            if f.metadata.is_some() {
                return Err(format!(
                    "file `{}`: `metadata` is only for a LinuxKit YAML's files; use `contents` or `source`",
                    f.path
                ));
            }
            let kinds: Vec<&str> = [
                ("contents", f.contents.is_some()),
                ("source", f.source.is_some()),
                ("symlink", f.symlink.is_some()),
                ("directory", f.directory),
            ]
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect();
            match kinds.as_slice() {
                [_] => {}
                [] => {
                    return Err(format!(
                        "file `{}` needs one of `contents`, `source`, `symlink` or `directory: true`",
                        f.path
                    ));
                }
                [a, b, ..] => {
                    return Err(format!(
                        "file `{}` sets both `{a}` and `{b}`; give only one of contents, source, symlink or directory",
                        f.path
                    ));
                }
            }
            if let Some(m) = &f.mode
                && linuxkit_config::parse_mode(m).is_none()
            {
                return Err(format!(
                    "file `{}`: invalid mode `{m}`: give octal permission bits as a string, such as \"0644\"",
                    f.path
                ));
            }
            Ok(CheckedFile(f))
        })
    }
}

pub(super) fn de_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<File>, D::Error> {
    let v = Vec::<CheckedFile>::deserialize(d)?;
    Ok(v.into_iter().map(|f| f.0).collect())
}
