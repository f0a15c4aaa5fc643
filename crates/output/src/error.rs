//! The crate's error type. A leaf but for [`Format`], which the errors a
//! format causes name.

use crate::format::Format;
use linuxkit_base::staged::StagedError;

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the root filesystem stream failed.
    #[error(transparent)]
    Rootfs(#[from] linuxkit_rootfs::Error),
    /// A file of the output could not be read, written or renamed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A format made of the kernel, and the root filesystem has none.
    #[error("{0} needs a kernel: the configuration has no `kernel` section")]
    NoKernel(Format),
    /// A bootable format, and the boot loaders were not given
    /// ([`crate::OutputOptions::bootloader`]).
    #[error(
        "{format} needs the boot loaders of {}, which were not given",
        crate::BOOTLOADER_PACKAGE
    )]
    NoBootloader {
        /// The format being written.
        format: Format,
    },
    /// A bootable format the given boot loaders' architecture cannot boot
    /// (see [`crate::format_unavailable`]).
    #[error("{0}")]
    FormatArch(String),
    /// `--size` is smaller than what the disk holds.
    #[error(
        "format {format}: content {} MiB does not fit in --size {}M",
        content.div_ceil(1 << 20),
        size >> 20
    )]
    TooSmall {
        /// The disk format being written.
        format: Format,
        /// The content, in bytes.
        content: u64,
        /// `--size`, in bytes.
        size: u64,
    },
    /// A format this build of linuxkit does not write
    /// ([`Format::is_implemented`]).
    #[error("`linuxkit build --format {format}` is not implemented yet: {why}")]
    NotImplemented {
        /// The format asked for.
        format: Format,
        /// Why it is not written ([`Format::not_implemented_why`]).
        why: &'static str,
    },
    /// Two formats of one build that would write the same file.
    #[error(
        "formats {first} and {second} both write {file}; build them in separate runs or with different --name"
    )]
    SameFile {
        /// The first of the two, in the order given.
        first: Format,
        /// The second.
        second: Format,
        /// The file, for output name `NAME`.
        file: String,
    },
    /// A format that is not one stream (see [`Format::streams`]) asked
    /// for as one (`build --o`).
    #[error(
        "--o cannot be used for format {0}: it cannot be streamed (only tar and docker can; use --dir and --name)"
    )]
    NotStreamable(Format),
    /// `--decompress-kernel` could not decompress the kernel.
    #[error("--decompress-kernel: {0}")]
    DecompressKernel(String),
    /// A failure that is none of the above (an internal invariant).
    #[error("{0}")]
    Other(String),
}

impl From<StagedError> for Error {
    fn from(e: StagedError) -> Error {
        Error::Io {
            context: e.context,
            source: e.source,
        }
    }
}

impl Error {
    /// The refusal of a format this build does not write, with the reason
    /// ([`Format::not_implemented_why`]).
    pub fn not_implemented(format: Format) -> Error {
        Error::NotImplemented {
            format,
            why: format
                .not_implemented_why()
                .unwrap_or("this build of linuxkit does not write it"),
        }
    }
}

/// The crate's result, with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error's mapping to [`Error::Io`] with `context` (what was being
/// done).
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Refuses an entry that Linux could not create from `format`'s output
/// (see [`linuxkit_base::path::beyond_limits`]), naming the entry and the
/// image it came from.
pub(crate) fn check_limits(
    e: &linuxkit_rootfs::Entry,
    format: &str,
    whole_path: bool,
) -> linuxkit_rootfs::Result<()> {
    let target = match &e.kind {
        linuxkit_rootfs::EntryKind::Symlink { target } => Some(target.as_str()),
        _ => None,
    };
    let Some(why) = linuxkit_base::path::beyond_limits(&e.path, target, whole_path) else {
        return Ok(());
    };
    let from = e
        .provenance
        .as_ref()
        .map(|(source, _)| format!(" (from {source})"))
        .unwrap_or_default();
    Err(linuxkit_rootfs::Error::Other(format!(
        "cannot write `{}`{from} to the {format}: {why}",
        e.path
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_names_both_sizes() {
        let e = Error::TooSmall {
            format: Format::RawBios,
            content: (70 << 20) + 1,
            size: 64 << 20,
        };
        assert_eq!(
            e.to_string(),
            "format raw-bios: content 71 MiB does not fit in --size 64M"
        );
    }
}
