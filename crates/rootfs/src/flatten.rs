//! Flattening an image's layers into the root filesystem stream (OCI image
//! spec, "Applying Changesets").
//!
//! # Merge semantics
//!
//! Layers are given bottom (first) to top (last). The merged tree is what
//! extracting them in order would produce:
//!
//! - A path comes from the topmost layer that has it. A directory in an
//!   upper layer gives the directory's metadata but does not hide the lower
//!   layers' children; any other kind of object hides the lower subtree,
//!   even if the same or a higher layer makes the path a directory again
//!   (extraction would have removed that subtree).
//! - `.wh.NAME` hides `NAME` and its subtree in lower layers;
//!   `.wh..wh..opq` hides every lower-layer child of its directory (the
//!   reference, go-containerregistry's `mutate.Extract`, ignores opaque
//!   whiteouts). Whiteouts never hide entries of their own layer and are
//!   never emitted. Other `.wh..wh.*` names (aufs bookkeeping) are ignored.
//! - Within one layer, a later entry for the same path replaces the earlier
//!   one, as tar extraction does (`mutate.Extract` keeps the first).
//! - The image root (`./`) is not emitted: the caller owns the directory at
//!   `prefix`. Parent directories that no layer provides are synthesised
//!   (0755, root, [`DEFAULT_MTIME`](crate::DEFAULT_MTIME)).
//! - Sockets, global PAX headers and unknown entry types are skipped with a
//!   debug log; GNU sparse files become regular files, their holes zeros
//!   (at most [`MAX_SPARSE_HOLES`] per layer: every output writes them).
//!
//! # Output order
//!
//! Extraction and the initrd need a directory before its children and a
//! hard link target before the link; top-layer-first emission (the
//! reference) breaks both. But file contents can only be streamed in blob
//! order, and only regular files have contents: everything else is
//! metadata. So there are two passes:
//!
//! 1. **Scan** the layers top to bottom, headers only, keeping the
//!    whiteouts, opaque directories and non-directory paths of the layers
//!    above, and one node per surviving path (metadata plus the layer and
//!    entry index its contents live at). Then check the tree (every parent
//!    is a directory), apply the filter, and resolve hard links.
//! 2. **Emit** in `(layer, entry index)` order, bottom layer first. Files
//!    are copied from the blob as the reader passes them; metadata-only
//!    entries are emitted at their slot without reading anything. Before an
//!    entry, any not-yet-emitted ancestor directory is emitted (its winning
//!    metadata is known from pass 1, even when it comes from an upper
//!    layer). A hard link's target is always emitted at an earlier slot.
//!
//! The order is a pure function of the layer contents, so the stream is
//! deterministic. It is not sorted by path; nothing downstream needs that.
//!
//! Cost: memory is O(number of entries) (paths, metadata, whiteouts),
//! never O(bytes): no content is held or spooled. I/O: pass 1 decompresses
//! each blob once (uncompressed blobs on disk skip contents by seeking);
//! pass 2 reads a blob only if it provides a surviving non-empty file, and
//! only up to its last such file. So at most two decompressions per layer,
//! and no temporary files.
//!
//! # Hard links
//!
//! A tar hard link must name an earlier entry of its own layer (OCI: the
//! linkname is within the changeset; docker, buildkit and containerd write
//! layers that way). The links that survive, plus their target if it
//! survives as that same entry, share one inode: the target (or, if it was
//! hidden, dropped or replaced, the first surviving link, which becomes a
//! copy of the target with its contents and metadata) is emitted, and the
//! others become [`EntryKind::Hardlink`] to it.
//!
//! # Path safety
//!
//! Names are normalised (`./a`, `a//b`, `a/` → `a`; a leading `/` is
//! stripped, so `/etc/x` is `etc/x`). [`Error::UnsafeEntry`] rejects: NUL
//! bytes, non-UTF-8 names, `..` components (also in hard link targets and
//! whiteouts), a non-directory at the root, whiteouts naming `.`, `..` or
//! nothing, a whiteout name used as a directory, any entry whose parent in
//! the merged tree is a symlink (extraction would write through it) or
//! another non-directory, and hard links to a directory or to a path that
//! is not an earlier entry of the same layer. Symlink targets are kept
//! verbatim: they are only followed at run time, inside the VM.
//!
//! All of this is checked in pass 1, so a rejected image pushes nothing
//! into the sink. Errors name the entry as it is in the layer (normalised
//! when possible, without the prefix). A blob that differs between the two
//! passes is an [`Error::Layer`].

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use linuxkit_base::path::{PathError, normalize_or_root};

use crate::entry::{Entry, EntryKind, EntrySink};
use crate::error::{Error, Result};

/// Buffer for compressed input.
const IN_BUF: usize = 256 << 10;
/// Buffer for decompressed tar data.
const OUT_BUF: usize = 1 << 20;
/// Buffer for uncompressed blobs read with seeks (kept small: a seek past
/// the buffer refills it).
const SEEK_BUF: usize = 64 << 10;

/// The most the holes of a layer's GNU sparse files may add up to. A
/// sparse entry stores only its data and a map; every output writes it in
/// full (cpio, squashfs, EROFS and ISO 9660 as LinuxKit does; tar as
/// LinuxKit does too, which expands sparse files on reading), so a layer of
/// a kilobyte could otherwise claim terabytes. No image builder writes
/// sparse entries (Docker's and BuildKit's tar writers cannot), so a real
/// image never comes near this.
pub const MAX_SPARSE_HOLES: u64 = 1 << 30;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`...tar+gzip`, and the Docker layer media type).
    Gzip,
    /// zstd (`...tar+zstd`).
    Zstd,
}

impl Compression {
    /// The compression of a layer with this media type. Parameters
    /// (`; ...`) are ignored; unknown types are an error.
    pub fn from_media_type(media_type: &str) -> Result<Compression> {
        let base = media_type.split(';').next().unwrap_or("").trim();
        Ok(match base {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            _ => {
                return Err(Error::Other(format!(
                    "unsupported layer media type `{media_type}` (expected \
                     application/vnd.oci.image.layer.v1.tar, +gzip or +zstd, or \
                     application/vnd.docker.image.rootfs.diff.tar.gzip)"
                )));
            }
        })
    }
}

type Opener = dyn Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync;

enum Source {
    Path(PathBuf),
    Bytes(Arc<[u8]>),
    Opener(Box<Opener>),
}

/// One layer blob. It is read twice, so it is given as something that can
/// be opened again: a file, bytes, or an opener function.
pub struct Layer {
    digest: String,
    compression: Compression,
    source: Source,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Path(p) => format!("{}", p.display()),
            Source::Bytes(b) => format!("{} bytes in memory", b.len()),
            Source::Opener(_) => "opener".to_string(),
        };
        f.debug_struct("Layer")
            .field("digest", &self.digest)
            .field("compression", &self.compression)
            .field("source", &source)
            .finish()
    }
}

impl Layer {
    /// A blob file (e.g. in the cache).
    pub fn from_path(
        digest: impl Into<String>,
        compression: Compression,
        path: impl Into<PathBuf>,
    ) -> Layer {
        Layer {
            digest: digest.into(),
            compression,
            source: Source::Path(path.into()),
        }
    }

    /// A blob held in memory.
    pub fn from_bytes(
        digest: impl Into<String>,
        compression: Compression,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Layer {
        Layer {
            digest: digest.into(),
            compression,
            source: Source::Bytes(bytes.into()),
        }
    }

    /// A blob opened by `open`, which must give the same bytes every time.
    pub fn from_opener(
        digest: impl Into<String>,
        compression: Compression,
        open: impl Fn() -> io::Result<Box<dyn Read + Send>> + Send + Sync + 'static,
    ) -> Layer {
        Layer {
            digest: digest.into(),
            compression,
            source: Source::Opener(Box::new(open)),
        }
    }

    /// The blob of a manifest's layer descriptor in the cache.
    pub fn cached(
        image: &str,
        cache: &linuxkit_oci::Cache,
        desc: &linuxkit_oci::Descriptor,
    ) -> Result<Layer> {
        let compression =
            Compression::from_media_type(&desc.media_type).map_err(|e| Error::Layer {
                image: image.to_string(),
                layer: desc.digest.clone(),
                reason: e.to_string(),
            })?;
        let digest = linuxkit_oci::Digest::parse(&desc.digest)?;
        Ok(Layer::from_path(
            desc.digest.clone(),
            compression,
            cache.blob_path(&digest),
        ))
    }

    /// The layer's blob digest (`sha256:...`), which names it in errors.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// How the layer blob is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    fn error(&self, image: &str, reason: impl Into<String>) -> Error {
        Error::Layer {
            image: image.to_string(),
            layer: self.digest.clone(),
            reason: reason.into(),
        }
    }

    fn open(&self) -> io::Result<Stream> {
        let raw: Box<dyn Read> = match (&self.source, self.compression) {
            (Source::Path(p), Compression::None) => {
                let file = BufReader::with_capacity(SEEK_BUF, File::open(p)?);
                return Ok(Stream::Seek(tar::Archive::new(Box::new(RelSeek(file)))));
            }
            (Source::Bytes(b), Compression::None) => {
                return Ok(Stream::Seek(tar::Archive::new(Box::new(Cursor::new(
                    b.clone(),
                )))));
            }
            (Source::Path(p), _) => Box::new(File::open(p)?),
            (Source::Bytes(b), _) => Box::new(Cursor::new(b.clone())),
            (Source::Opener(open), _) => open()?,
        };
        let input = BufReader::with_capacity(IN_BUF, raw);
        let decoded: Box<dyn Read> = match self.compression {
            Compression::None => Box::new(BufReader::with_capacity(OUT_BUF, input)),
            Compression::Gzip => Box::new(BufReader::with_capacity(
                OUT_BUF,
                flate2::bufread::MultiGzDecoder::new(input),
            )),
            Compression::Zstd => Box::new(BufReader::with_capacity(
                OUT_BUF,
                zstd::stream::read::Decoder::with_buffer(input)?,
            )),
        };
        Ok(Stream::Plain(tar::Archive::new(decoded)))
    }

    /// Calls `f` with each entry and its index until it returns `false`.
    fn walk(
        &self,
        image: &str,
        f: &mut dyn FnMut(u64, &mut dyn RawEntry) -> Result<bool>,
    ) -> Result<()> {
        let stream = self
            .open()
            .map_err(|e| self.error(image, format!("cannot open: {e}")))?;
        let start = |e: io::Error| self.error(image, e.to_string());
        match stream {
            Stream::Seek(mut a) => self.drive(image, a.entries_with_seek().map_err(start)?, f),
            Stream::Plain(mut a) => self.drive(image, a.entries().map_err(start)?, f),
        }
    }

    fn drive<R: Read>(
        &self,
        image: &str,
        entries: tar::Entries<'_, R>,
        f: &mut dyn FnMut(u64, &mut dyn RawEntry) -> Result<bool>,
    ) -> Result<()> {
        for (index, entry) in (0u64..).zip(entries) {
            let mut entry =
                entry.map_err(|e| self.error(image, format!("tar entry {index}: {e}")))?;
            if !f(index, &mut entry)? {
                break;
            }
        }
        Ok(())
    }
}

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

enum Stream {
    Seek(tar::Archive<Box<dyn ReadSeek>>),
    Plain(tar::Archive<Box<dyn Read>>),
}

/// A buffered file whose relative seeks (all tar uses) keep the buffer
/// when they land inside it.
struct RelSeek<R>(BufReader<R>);

impl<R: Read> Read for RelSeek<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read + Seek> Seek for RelSeek<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Current(n) => {
                self.0.seek_relative(n)?;
                self.0.stream_position()
            }
            other => self.0.seek(other),
        }
    }
}

/// The parts of a `tar::Entry` we use, independent of its reader type.
trait RawEntry: Read {
    fn header(&self) -> &tar::Header;
    fn path_bytes(&self) -> Cow<'_, [u8]>;
    fn link_name_bytes(&self) -> Option<Cow<'_, [u8]>>;
    fn pax(&mut self) -> io::Result<Option<tar::PaxExtensions<'_>>>;
    fn size(&self) -> u64;
}

impl<R: Read> RawEntry for tar::Entry<'_, R> {
    fn header(&self) -> &tar::Header {
        tar::Entry::header(self)
    }
    fn path_bytes(&self) -> Cow<'_, [u8]> {
        tar::Entry::path_bytes(self)
    }
    fn link_name_bytes(&self) -> Option<Cow<'_, [u8]>> {
        tar::Entry::link_name_bytes(self)
    }
    fn pax(&mut self) -> io::Result<Option<tar::PaxExtensions<'_>>> {
        self.pax_extensions()
    }
    fn size(&self) -> u64 {
        tar::Entry::size(self)
    }
}

/// What to do with a path of the merged image (given without the prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Emit the path as the image has it.
    Keep,
    /// Leave out the path and, for a directory, its subtree.
    Drop,
    /// Emit this instead of the path (only if the image has it), keeping
    /// the original's mode, owner, time and xattrs. A directory's subtree
    /// is dropped.
    Replace(Replacement),
}

/// What a [`Filter::Replace`] puts at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// Any kind but [`EntryKind::Hardlink`].
    pub kind: EntryKind,
    /// The contents, for [`EntryKind::File`]; ignored otherwise.
    pub data: Vec<u8>,
}

/// Counts from one [`flatten_layers`] run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenStats {
    /// Entries pushed into the sink, synthesised directories included.
    pub entries: u64,
    /// File content bytes pushed into the sink.
    pub bytes: u64,
    /// Whiteout entries read (opaque ones included).
    pub whiteouts: u64,
    /// Entries hidden by an upper layer (overridden or whited out).
    pub hidden: u64,
    /// Entries left out by the filter, subtrees included.
    pub dropped: u64,
    /// Entries replaced by the filter.
    pub replaced: u64,
    /// Hard links turned into a copy because their target is gone.
    pub link_copies: u64,
    /// Parent directories no layer provides.
    pub synthesized: u64,
    /// Entries of unsupported types (sockets, ...).
    pub skipped: u64,
}

#[derive(Debug, Clone)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    /// The metadata of a directory no layer provides: that of a generated
    /// [`Entry::dir`].
    fn generated_dir() -> Meta {
        let e = Entry::dir("");
        Meta {
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: 0,
            xattrs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    /// A parent directory no layer provides.
    Synth,
    File,
    Symlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// A tar hard link, before resolution.
    Link(Rc<Obj>),
    /// A hard link to the emitted node at this path.
    LinkTo(Rc<str>),
}

impl Kind {
    fn is_dir(&self) -> bool {
        matches!(self, Kind::Dir | Kind::Synth)
    }

    fn describe(&self) -> &'static str {
        match self {
            Kind::Dir | Kind::Synth => "directory",
            Kind::File => "regular file",
            Kind::Symlink(_) => "symlink",
            Kind::Char(..) => "character device",
            Kind::Block(..) => "block device",
            Kind::Fifo => "fifo",
            Kind::Link(_) | Kind::LinkTo(_) => "hard link",
        }
    }
}

/// A non-directory entry of a layer, as a hard link target.
#[derive(Debug)]
struct Obj {
    layer: usize,
    index: u64,
    path: Rc<str>,
    kind: Kind,
    meta: Meta,
}

#[derive(Debug)]
enum State {
    Keep,
    Cut,
    Replaced(Replacement),
}

#[derive(Debug)]
struct Node {
    path: Rc<str>,
    layer: usize,
    /// The entry's own index in its layer.
    index: u64,
    /// Where it is emitted: its own index, or its contents' index for a
    /// hard link turned into a copy.
    slot: u64,
    /// The path at `slot` in the layer (checked in pass 2).
    src: Rc<str>,
    kind: Kind,
    meta: Meta,
    state: State,
    emitted: bool,
}

impl Node {
    fn needs_content(&self) -> bool {
        matches!(self.state, State::Keep) && matches!(self.kind, Kind::File) && self.meta.size > 0
    }
}

enum Parsed {
    Skip,
    Root,
    Whiteout(String),
    Opaque(String),
    Item {
        path: String,
        kind: Kind,
        link: Option<String>,
        meta: Meta,
    },
}

/// Merges `layers` (bottom first) into `sink`, every path under `prefix`
/// (`""` for the root, else e.g. `containers/onboot/000-x/lower`; a
/// trailing `/` is fine). `filter` sees each surviving path without the
/// prefix, parents before children; the caller emits the prefix
/// directories itself. See the module docs for semantics and order.
pub fn flatten_layers(
    image: &str,
    layers: &[Layer],
    prefix: &str,
    filter: &dyn Fn(&str) -> Filter,
    sink: &mut dyn EntrySink,
) -> Result<FlattenStats> {
    let prefix = entry_path(prefix.as_bytes()).map_err(|reason| Error::UnsafeEntry {
        image: image.to_string(),
        path: prefix.to_string(),
        reason: format!("invalid prefix: {reason}"),
    })?;
    let mut stats = FlattenStats::default();
    let mut tree = scan(image, layers, &mut stats)?;
    tree.check_parents(image, &mut stats)?;
    tree.apply_filter(filter, &mut stats)?;
    tree.resolve_links(&mut stats);
    let mut out = Out {
        image,
        prefix: &prefix,
        sink,
        stats: &mut stats,
    };
    tree.emit_all(layers, &mut out)?;
    tracing::debug!(
        image,
        prefix = %prefix,
        layers = layers.len(),
        ?stats,
        "flattened image"
    );
    Ok(stats)
}

#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
    by_path: HashMap<Rc<str>, usize>,
}

enum Local {
    Dir,
    Obj(Rc<Obj>),
}

/// Pass 1: headers only, top layer first.
fn scan(image: &str, layers: &[Layer], stats: &mut FlattenStats) -> Result<Tree> {
    let mut tree = Tree::default();
    let mut whiteouts: HashSet<String> = HashSet::new();
    let mut opaque: HashSet<String> = HashSet::new();
    // Paths some upper layer has a non-directory at: extracting it
    // removes the lower subtree, even if the same or a yet higher layer
    // makes the path a directory again.
    let mut barriers: HashSet<Rc<str>> = HashSet::new();
    for (l, layer) in layers.iter().enumerate().rev() {
        // This layer's entries so far, for hard links.
        let mut local: HashMap<Rc<str>, Local> = HashMap::new();
        let mut new_whiteouts = Vec::new();
        let mut new_opaque = Vec::new();
        let mut new_barriers = Vec::new();
        let mut holes = 0u64;
        layer.walk(image, &mut |index, entry| {
            if entry.header().entry_type().is_gnu_sparse() {
                let stored = entry.header().entry_size().unwrap_or(0);
                holes = holes.saturating_add(entry.size().saturating_sub(stored));
                if holes > MAX_SPARSE_HOLES {
                    return Err(layer.error(
                        image,
                        format!(
                            "`{}`: a sparse file of {} bytes storing {stored}; this layer's sparse files would expand by more than {} GiB of zeros, which every output writes in full: refused",
                            display(&entry.path_bytes()),
                            entry.size(),
                            MAX_SPARSE_HOLES >> 30
                        ),
                    ));
                }
            }
            let (path, kind, link, meta) = match parse(image, layer, entry)? {
                Parsed::Skip => {
                    stats.skipped += 1;
                    return Ok(true);
                }
                Parsed::Root => return Ok(true),
                Parsed::Whiteout(p) => {
                    stats.whiteouts += 1;
                    new_whiteouts.push(p);
                    return Ok(true);
                }
                Parsed::Opaque(p) => {
                    stats.whiteouts += 1;
                    new_opaque.push(p);
                    return Ok(true);
                }
                Parsed::Item {
                    path,
                    kind,
                    link,
                    meta,
                } => (Rc::<str>::from(path), kind, link, meta),
            };
            let kind = match link {
                None => kind,
                Some(target) => match local.get(target.as_str()) {
                    Some(Local::Obj(o)) => Kind::Link(o.clone()),
                    Some(Local::Dir) => {
                        return Err(unsafe_entry(
                            image,
                            &path,
                            format!("hard link target `{target}` is a directory"),
                        ));
                    }
                    None => {
                        return Err(unsafe_entry(
                            image,
                            &path,
                            format!(
                                "hard link target `{target}` is not an earlier entry of the same layer"
                            ),
                        ));
                    }
                },
            };
            if !kind.is_dir() {
                new_barriers.push(path.clone());
            }
            let rec = match &kind {
                Kind::Dir => Local::Dir,
                Kind::Link(o) => Local::Obj(o.clone()),
                other => Local::Obj(Rc::new(Obj {
                    layer: l,
                    index,
                    path: path.clone(),
                    kind: other.clone(),
                    meta: meta.clone(),
                })),
            };
            local.insert(path.clone(), rec);
            if tree.hidden(&path, l, &whiteouts, &opaque, &barriers) {
                stats.hidden += 1;
                return Ok(true);
            }
            tree.put(Node {
                path: path.clone(),
                layer: l,
                index,
                slot: index,
                src: path,
                kind,
                meta,
                state: State::Keep,
                emitted: false,
            });
            Ok(true)
        })?;
        whiteouts.extend(new_whiteouts);
        opaque.extend(new_opaque);
        barriers.extend(new_barriers);
    }
    Ok(tree)
}

fn unsafe_entry(image: &str, path: &str, reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        image: image.to_string(),
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// A raw name for error messages: as is when it is clean UTF-8.
fn display(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) if !s.contains('\0') => s.to_string(),
        _ => raw.escape_ascii().to_string(),
    }
}

/// `./a//b/` → `a/b`; a leading `/` is stripped; `""` is the root (see
/// [`linuxkit_base::path`]); the name must be UTF-8.
fn entry_path(raw: &[u8]) -> std::result::Result<String, String> {
    if raw.contains(&0) {
        return Err(PathError::Nul.to_string());
    }
    let s = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8".to_string())?;
    normalize_or_root(s).map_err(|e| e.to_string())
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn parse(image: &str, layer: &Layer, entry: &mut dyn RawEntry) -> Result<Parsed> {
    let raw = entry.path_bytes().into_owned();
    let path =
        entry_path(&raw).map_err(|r| unsafe_entry(image, &display(&raw), format!("path {r}")))?;
    let bad = |reason: String| unsafe_entry(image, &path, reason);

    let (dir, base) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path.as_str()),
    };
    for c in dir.split('/') {
        if c.starts_with(".wh..wh.") {
            tracing::debug!(image, layer = %layer.digest, path, "ignoring aufs metadata");
            return Ok(Parsed::Skip);
        }
        if c.starts_with(".wh.") {
            return Err(bad(format!("whiteout name `{c}` used as a directory")));
        }
    }
    if let Some(name) = base.strip_prefix(".wh.") {
        if name == ".wh..opq" {
            return Ok(Parsed::Opaque(dir.to_string()));
        }
        if name.starts_with(".wh.") {
            tracing::debug!(image, layer = %layer.digest, path, "ignoring aufs metadata");
            return Ok(Parsed::Skip);
        }
        return match name {
            "" => Err(bad("empty whiteout name".into())),
            "." | ".." => Err(bad(format!("whiteout of `{name}`"))),
            _ => Ok(Parsed::Whiteout(join(dir, name))),
        };
    }

    let header = entry.header();
    let herr = |e: io::Error| layer.error(image, format!("`{path}`: bad tar header: {e}"));
    let id = |v: u64, what: &str| {
        u32::try_from(v)
            .map_err(|_| layer.error(image, format!("`{path}`: {what} {v} is too large")))
    };
    let mode = header.mode().map_err(herr)? & 0o7777;
    let uid = id(header.uid().map_err(herr)?, "uid")?;
    let gid = id(header.gid().map_err(herr)?, "gid")?;
    let mut mtime = header.mtime().map_err(herr)?;
    let mut link = None;
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            // Pre-POSIX tars mark directories with a trailing slash.
            if header.as_bytes()[156] == 0 && raw.ends_with(b"/") {
                Kind::Dir
            } else {
                Kind::File
            }
        }
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => {
            let t = entry.link_name_bytes().unwrap_or_default().into_owned();
            if t.is_empty() {
                return Err(bad("symlink with an empty target".into()));
            }
            if t.contains(&0) {
                return Err(bad("symlink target contains a NUL byte".into()));
            }
            match String::from_utf8(t) {
                Ok(t) => Kind::Symlink(t),
                Err(_) => return Err(bad("symlink target is not valid UTF-8".into())),
            }
        }
        tar::EntryType::Link => {
            let t = entry.link_name_bytes().unwrap_or_default().into_owned();
            if t.is_empty() {
                return Err(bad("hard link with an empty target".into()));
            }
            let target = entry_path(&t).map_err(|r| {
                bad(format!(
                    "hard link target `{}` {r} (it must stay inside the image)",
                    display(&t)
                ))
            })?;
            if target.is_empty() {
                return Err(bad(format!(
                    "hard link target `{}` is a directory",
                    display(&t)
                )));
            }
            link = Some(target);
            Kind::File // replaced by the caller
        }
        t @ (tar::EntryType::Char | tar::EntryType::Block) => {
            let major = header.device_major().map_err(herr)?.unwrap_or(0);
            let minor = header.device_minor().map_err(herr)?.unwrap_or(0);
            if t == tar::EntryType::Char {
                Kind::Char(major, minor)
            } else {
                Kind::Block(major, minor)
            }
        }
        tar::EntryType::Fifo => Kind::Fifo,
        other => {
            tracing::debug!(
                image,
                layer = %layer.digest,
                path,
                entry_type = ?other,
                "skipping unsupported tar entry type"
            );
            return Ok(Parsed::Skip);
        }
    };
    if path.is_empty() {
        if kind.is_dir() {
            tracing::debug!(image, layer = %layer.digest, "not emitting the image root");
            return Ok(Parsed::Root);
        }
        return Err(bad(format!(
            "a {} replaces the image root (`{}`)",
            kind.describe(),
            display(&raw)
        )));
    }
    let size = if matches!(kind, Kind::File) && link.is_none() {
        entry.size()
    } else {
        0
    };
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax().map_err(herr)? {
        for ext in pax {
            let ext = ext.map_err(herr)?;
            let key = ext.key_bytes();
            if key == b"mtime" {
                // `secs[.frac]`; negative times clamp to 0.
                let v = String::from_utf8_lossy(ext.value_bytes());
                let secs = v.split('.').next().unwrap_or("");
                if let Ok(s) = secs.parse::<i64>() {
                    mtime = u64::try_from(s).unwrap_or(0);
                }
            } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                let name = String::from_utf8_lossy(name).into_owned();
                xattrs.push((name, ext.value_bytes().to_vec()));
            }
        }
    }
    xattrs.sort();
    Ok(Parsed::Item {
        path,
        kind,
        link,
        meta: Meta {
            mode,
            uid,
            gid,
            mtime,
            size,
            xattrs,
        },
    })
}

/// Compares paths component by component, so a directory's subtree sorts
/// right after it.
fn path_order(a: &str, b: &str) -> Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

impl Tree {
    fn get(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Whether an entry of layer `l` at `path` is hidden by upper layers.
    fn hidden(
        &self,
        path: &str,
        l: usize,
        whiteouts: &HashSet<String>,
        opaque: &HashSet<String>,
        barriers: &HashSet<Rc<str>>,
    ) -> bool {
        if self.get(path).is_some_and(|id| self.nodes[id].layer != l) {
            return true;
        }
        if whiteouts.contains(path) || opaque.contains("") {
            return true;
        }
        path.match_indices('/').any(|(i, _)| {
            let a = &path[..i];
            whiteouts.contains(a) || opaque.contains(a) || barriers.contains(a)
        })
    }

    fn put(&mut self, node: Node) {
        match self.get(&node.path) {
            // A later entry of the same layer replaces the earlier one.
            Some(id) => self.nodes[id] = node,
            None => {
                self.by_path.insert(node.path.clone(), self.nodes.len());
                self.nodes.push(node);
            }
        }
    }

    /// Node ids in stream order.
    fn stream_order(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..self.nodes.len()).collect();
        ids.sort_by_key(|&id| {
            let n = &self.nodes[id];
            (n.layer, n.slot, n.index)
        });
        ids
    }

    /// Every parent must be a directory; missing ones are synthesised.
    fn check_parents(&mut self, image: &str, stats: &mut FlattenStats) -> Result<()> {
        for id in self.stream_order() {
            let path = self.nodes[id].path.clone();
            let mut p: &str = &path;
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                match self.get(p) {
                    Some(pid) => {
                        let reason = match &self.nodes[pid].kind {
                            k if k.is_dir() => break,
                            Kind::Symlink(t) => {
                                format!("it would be written through the symlink `{p}` -> `{t}`")
                            }
                            k => format!("parent `{p}` is not a directory but a {}", k.describe()),
                        };
                        return Err(unsafe_entry(image, &path, reason));
                    }
                    None => {
                        stats.synthesized += 1;
                        let p: Rc<str> = p.into();
                        self.by_path.insert(p.clone(), self.nodes.len());
                        self.nodes.push(Node {
                            path: p.clone(),
                            layer: usize::MAX,
                            index: 0,
                            slot: 0,
                            src: p,
                            kind: Kind::Synth,
                            meta: Meta::generated_dir(),
                            state: State::Keep,
                            emitted: false,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks the filter about each path, parents first.
    fn apply_filter(
        &mut self,
        filter: &dyn Fn(&str) -> Filter,
        stats: &mut FlattenStats,
    ) -> Result<()> {
        let mut ids: Vec<usize> = (0..self.nodes.len()).collect();
        ids.sort_by(|&a, &b| path_order(&self.nodes[a].path, &self.nodes[b].path));
        for id in ids {
            let path = self.nodes[id].path.clone();
            let parent_cut = self
                .get(parent(&path))
                .is_some_and(|pid| !matches!(self.nodes[pid].state, State::Keep));
            let state = if parent_cut {
                stats.dropped += 1;
                State::Cut
            } else {
                match filter(&path) {
                    Filter::Keep => State::Keep,
                    Filter::Drop => {
                        stats.dropped += 1;
                        State::Cut
                    }
                    Filter::Replace(r) => {
                        if matches!(r.kind, EntryKind::Hardlink { .. }) {
                            return Err(Error::Other(format!(
                                "the filter replaced `{path}` with a hard link, which is not supported"
                            )));
                        }
                        stats.replaced += 1;
                        State::Replaced(r)
                    }
                }
            };
            self.nodes[id].state = state;
        }
        Ok(())
    }

    /// Picks one emitted node per hard-linked object (the target if it
    /// survives, else the first surviving link, made a copy) and points
    /// the other links at it.
    fn resolve_links(&mut self, stats: &mut FlattenStats) {
        let mut leaders: HashMap<(usize, u64), Rc<str>> = HashMap::new();
        for id in self.stream_order() {
            let node = &self.nodes[id];
            let origin = match (&node.state, &node.kind) {
                (State::Keep, Kind::Link(o)) => o.clone(),
                _ => continue,
            };
            let key = (origin.layer, origin.index);
            let leader = match leaders.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let target_survives = self.get(&origin.path).is_some_and(|tid| {
                        let t = &self.nodes[tid];
                        t.layer == origin.layer
                            && t.index == origin.index
                            && matches!(t.state, State::Keep)
                    });
                    if target_survives {
                        leaders.insert(key, origin.path.clone());
                        origin.path.clone()
                    } else {
                        stats.link_copies += 1;
                        let node = &mut self.nodes[id];
                        leaders.insert(key, node.path.clone());
                        node.kind = origin.kind.clone();
                        node.meta = origin.meta.clone();
                        node.slot = origin.index;
                        node.src = origin.path.clone();
                        continue;
                    }
                }
            };
            self.nodes[id].kind = Kind::LinkTo(leader);
        }
    }

    /// Pass 2.
    fn emit_all(&mut self, layers: &[Layer], out: &mut Out<'_>) -> Result<()> {
        let plan: Vec<usize> = self
            .stream_order()
            .into_iter()
            .filter(|&id| {
                let n = &self.nodes[id];
                !matches!(n.state, State::Cut) && !matches!(n.kind, Kind::Synth)
            })
            .collect();
        for (l, layer) in layers.iter().enumerate() {
            let start = plan.partition_point(|&id| self.nodes[id].layer < l);
            let end = plan.partition_point(|&id| self.nodes[id].layer <= l);
            let items = &plan[start..end];
            let mut next = 0;
            if items.iter().any(|&id| self.nodes[id].needs_content()) {
                layer.walk(out.image, &mut |pos, entry| {
                    while let Some(&id) = items.get(next) {
                        let node = &self.nodes[id];
                        if !node.needs_content() {
                            next += 1;
                            self.emit(id, out, &mut io::empty())?;
                            continue;
                        }
                        if node.slot > pos {
                            return Ok(true);
                        }
                        let found = entry_path(&entry.path_bytes()).ok();
                        if node.slot < pos
                            || found.as_deref() != Some(&*node.src)
                            || entry.size() != node.meta.size
                        {
                            return Err(changed(out.image, layer, node));
                        }
                        next += 1;
                        let size = node.meta.size;
                        self.emit(
                            id,
                            out,
                            &mut Exact {
                                inner: entry,
                                left: size,
                            },
                        )?;
                    }
                    Ok(false)
                })?;
            }
            for &id in &items[next..] {
                if self.nodes[id].needs_content() {
                    return Err(changed(out.image, layer, &self.nodes[id]));
                }
                self.emit(id, out, &mut io::empty())?;
            }
        }
        Ok(())
    }

    /// Emits `id` after any ancestor not emitted yet.
    fn emit(&mut self, id: usize, out: &mut Out<'_>, data: &mut dyn Read) -> Result<()> {
        if self.nodes[id].emitted {
            return Ok(());
        }
        let path = self.nodes[id].path.clone();
        let mut pending = Vec::new();
        let mut p: &str = &path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            match self.get(p) {
                Some(pid) if !self.nodes[pid].emitted => pending.push(pid),
                _ => break,
            }
        }
        for pid in pending.into_iter().rev() {
            self.emit_one(pid, out, &mut io::empty())?;
        }
        self.emit_one(id, out, data)
    }

    fn emit_one(&mut self, id: usize, out: &mut Out<'_>, data: &mut dyn Read) -> Result<()> {
        let node = &mut self.nodes[id];
        node.emitted = true;
        let path = join(out.prefix, &node.path);
        let meta = &node.meta;
        let (kind, size, mut replaced): (EntryKind, u64, Option<&[u8]>) = match &node.state {
            State::Replaced(r) => match &r.kind {
                EntryKind::File => (
                    EntryKind::File,
                    r.data.len() as u64,
                    Some(r.data.as_slice()),
                ),
                k => (k.clone(), 0, None),
            },
            _ => match &node.kind {
                Kind::Dir | Kind::Synth => (EntryKind::Dir, 0, None),
                Kind::File => (EntryKind::File, meta.size, None),
                Kind::Symlink(t) => (EntryKind::Symlink { target: t.clone() }, 0, None),
                Kind::Char(major, minor) => (
                    EntryKind::Char {
                        major: *major,
                        minor: *minor,
                    },
                    0,
                    None,
                ),
                Kind::Block(major, minor) => (
                    EntryKind::Block {
                        major: *major,
                        minor: *minor,
                    },
                    0,
                    None,
                ),
                Kind::Fifo => (EntryKind::Fifo, 0, None),
                Kind::LinkTo(t) => (
                    EntryKind::Hardlink {
                        target: join(out.prefix, t),
                    },
                    0,
                    None,
                ),
                Kind::Link(_) => {
                    return Err(Error::Other(format!(
                        "internal error: unresolved hard link `{}`",
                        node.path
                    )));
                }
            },
        };
        let entry = Entry {
            path,
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            size,
            xattrs: meta.xattrs.clone(),
            provenance: None,
        };
        out.stats.entries += 1;
        out.stats.bytes += size;
        match &mut replaced {
            Some(bytes) => out.sink.add(&entry, bytes),
            None if size == 0 => out.sink.add(&entry, &mut io::empty()),
            None => out.sink.add(&entry, data),
        }
    }
}

fn changed(image: &str, layer: &Layer, node: &Node) -> Error {
    layer.error(
        image,
        format!(
            "the blob changed while it was read: tar entry {} is no longer `{}` ({} bytes)",
            node.slot, node.src, node.meta.size
        ),
    )
}

struct Out<'a> {
    image: &'a str,
    prefix: &'a str,
    sink: &'a mut dyn EntrySink,
    stats: &'a mut FlattenStats,
}

/// File contents: exactly `left` bytes, or an error if the blob ends early.
struct Exact<'a> {
    inner: &'a mut dyn RawEntry,
    left: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer blob ends in the middle of a file",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
