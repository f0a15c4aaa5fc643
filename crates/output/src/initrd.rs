//! The initrd as a concatenation of independently compressed cpio archives,
//! one per part of the root filesystem.
//!
//! The kernel unpacks concatenated archives (compressed or not) one after
//! another; that is also how microcode is prepended. Building the initrd
//! this way lets us
//!
//! - compress the parts on all cores at once, and
//! - cache each keyed part's compressed archive by its key (the image
//!   digest and everything else its entries depend on), so a rebuild
//!   recompresses only what changed and a warm rebuild just concatenates
//!   cached files.
//!
//! Each part is a segment of one `newc` archive: the kernel unpacks a
//! compressed stream that ends after any whole entry, and keeps the inodes
//! it links by until the single `TRAILER!!!` at the end. That lets
//! identical files of different parts be stored once, as hard links (see
//! [`crate::links`]): every part is read once into a manifest (cached for
//! keyed parts), the manifests give each part a link plan, and a keyed
//! part's segment is cached under its key *and* its plan.
//!
//! Reading a part (decompressing and flattening its image's layers) is
//! about a third of a first build's work, so the pass that reads a part
//! for its manifest also writes its segment as if the part shared no file
//! with another, which is what most parts' plans turn out to say; only a
//! part whose plan links or leaves out files is read a second time (see
//! `FirstRead`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use linuxkit_rootfs::{Entry, EntryKind, EntrySink, Part};
use sha2::{Digest, Sha256};

use crate::compress::Compression;
use crate::cpio::{InitrdSink, LinkAction, LinkPlan};
use crate::error::{Error, Result};
use crate::links::{FileRec, MANIFEST_FORMAT, Manifest, ManifestSink, PartPlan};
use linuxkit_base::staged::Staged;
use linuxkit_rootfs::Resolve;

/// How the initrd is compressed (from [`crate::OutputOptions`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct InitrdOptions {
    /// The compression method (`--initrd-compression`).
    pub compression: Compression,
    /// The compression level; `None` for the method's default.
    pub level: Option<i32>,
}

/// Version of the segment format: bump when the bytes we write for the
/// same part and plan change.
const SEGMENT_FORMAT: &str = "newc-4";

/// Compressed per-part archives by key, in a directory (by default
/// `CACHE/.segments`). Entries are written to a temporary name and renamed,
/// so readers never see a partial one and concurrent builds are safe.
#[derive(Debug, Clone)]
pub struct SegmentCache {
    dir: PathBuf,
}

impl SegmentCache {
    /// The cache in `dir`, created when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<SegmentCache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: format!("cannot create {}", dir.display()),
            source,
        })?;
        Ok(SegmentCache { dir })
    }

    /// The cache name of a keyed part's segment: its key, its link plan
    /// and the compression, so segments of different compressions or
    /// plans never mix.
    fn name(&self, key: &str, plan: &str, opts: &InitrdOptions) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "{SEGMENT_FORMAT}\n{:?}\n{:?}\n{plan}\n{key}",
            opts.compression,
            opts.level.or(opts.compression.default_level())
        ));
        format!("{:x}", h.finalize())
    }

    /// Where a keyed part's manifest is kept (whatever the compression).
    fn manifest_path(&self, key: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(format!("{MANIFEST_FORMAT}\n{key}"));
        self.dir.join(format!("{:x}.man", h.finalize()))
    }
}

/// What a part holds and costs in the initrd, for the size report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartReport {
    /// What the part is (see [`linuxkit_rootfs::Part::label`]).
    pub label: String,
    /// See [`linuxkit_rootfs::Part::section`].
    pub section: &'static str,
    /// The image the part comes from, if any.
    pub image: Option<String>,
    /// Content bytes of its regular files, as the images have them.
    pub file_bytes: u64,
    /// Of those, bytes stored once elsewhere (left out as hard links).
    pub dedup_bytes: u64,
    /// Files stored once elsewhere.
    pub dedup_files: u64,
    /// Its compressed segment's bytes in the initrd.
    pub initrd_bytes: u64,
}

/// Where the bytes of an initrd go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitrdReport {
    /// How the initrd was compressed.
    pub compression: Compression,
    /// The whole initrd file.
    pub initrd_bytes: u64,
    /// The kernel file (set by the formats, which hold the kernel).
    pub kernel_bytes: u64,
    /// The uncompressed microcode prefix (part of the kernel's share).
    pub ucode_bytes: u64,
    /// The final trailer segment.
    pub trailer_bytes: u64,
    /// Each part's share, in initrd order.
    pub parts: Vec<PartReport>,
}

/// A produced part: its archive file and its `boot/` files.
struct Segment {
    path: PathBuf,
    boot: HashMap<String, Vec<u8>>,
    /// What identifies its bytes: the cache name of a keyed part (a hash
    /// of its key and the options), else the SHA-256 of the archive.
    id: String,
}

/// `boot/` files are stored beside a cached segment as
/// `(u32 name length, name, u64 length, data)*`.
fn write_boot(path: &Path, boot: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut names: Vec<&String> = boot.keys().collect();
    names.sort();
    let mut w = BufWriter::new(File::create(path)?);
    for n in names {
        w.write_all(&(n.len() as u32).to_le_bytes())?;
        w.write_all(n.as_bytes())?;
        w.write_all(&(boot[n].len() as u64).to_le_bytes())?;
        w.write_all(&boot[n])?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn read_boot(path: &Path) -> std::io::Result<HashMap<String, Vec<u8>>> {
    let mut r = BufReader::new(File::open(path)?);
    let mut out = HashMap::new();
    let mut len4 = [0u8; 4];
    loop {
        match r.read_exact(&mut len4) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(out),
            Err(e) => return Err(e),
        }
        let mut name = vec![0u8; u32::from_le_bytes(len4) as usize];
        r.read_exact(&mut name)?;
        let mut len8 = [0u8; 8];
        r.read_exact(&mut len8)?;
        let mut data = vec![0u8; u64::from_le_bytes(len8) as usize];
        r.read_exact(&mut data)?;
        out.insert(String::from_utf8_lossy(&name).into_owned(), data);
    }
}

/// Produces one part into a compressed archive at `path`.
fn produce(
    part: &Part,
    path: &Path,
    opts: &InitrdOptions,
    plan: &LinkPlan,
) -> Result<HashMap<String, Vec<u8>>> {
    let file = File::create(path).map_err(|source| Error::Io {
        context: format!("cannot create {}", path.display()),
        source,
    })?;
    let mut sink = InitrdSink::with_plan(
        BufWriter::with_capacity(1 << 20, file),
        opts.compression,
        opts.level,
        plan.clone(),
    )
    .map_err(|source| Error::Io {
        context: "cannot start the initrd".into(),
        source,
    })?;
    part.produce(&mut sink)?;
    let io = |source| Error::Io {
        context: format!("cannot write {}", path.display()),
        source,
    };
    let (w, boot) = sink.finish_segment().map_err(io)?;
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(boot)
}

/// Gets a part's segment: from the cache when keyed and present, else the
/// one written while its manifest was read (`first`) when its plan makes
/// every file unique, else by producing it (into the cache when keyed, into
/// `scratch` otherwise).
fn segment(
    part: &Part,
    i: usize,
    opts: &InitrdOptions,
    plan: &PartPlan,
    cache: Option<&SegmentCache>,
    scratch: &Path,
    first: Option<FirstSegment>,
) -> Result<Segment> {
    let cached = match (&part.key, cache) {
        (Some(key), Some(c)) => Some((c, c.name(key, &plan.digest(), opts))),
        _ => None,
    };
    if let Some((c, name)) = &cached {
        let path = c.dir.join(format!("{name}.seg"));
        let boot_path = c.dir.join(format!("{name}.boot"));
        if path.is_file()
            && boot_path.is_file()
            && let Ok(boot) = read_boot(&boot_path)
        {
            return Ok(Segment {
                path,
                boot,
                id: name.clone(),
            });
        }
    }
    let (tmp, boot) = match first {
        Some(f) if f.fits(&plan.plan) => {
            File::open(&f.path)
                .and_then(|f| f.sync_all())
                .map_err(|source| Error::Io {
                    context: format!("cannot write {}", f.path.display()),
                    source,
                })?;
            (f.path, f.boot)
        }
        _ => {
            let tmp = scratch.join(format!("part-{i}"));
            let boot = produce(part, &tmp, opts, &plan.plan)?;
            (tmp, boot)
        }
    };
    let Some((c, name)) = cached else {
        let id = file_sha256(&tmp).map_err(|source| Error::Io {
            context: format!("cannot read {}", tmp.display()),
            source,
        })?;
        return Ok(Segment {
            path: tmp,
            boot,
            id,
        });
    };
    // Boot files first: a segment without its boot file is never used.
    let io = |source| Error::Io {
        context: format!("cannot store a segment in {}", c.dir.display()),
        source,
    };
    let boot_tmp = scratch.join(format!("part-{i}.boot"));
    write_boot(&boot_tmp, &boot).map_err(io)?;
    let path = c.dir.join(format!("{name}.seg"));
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::rename(&boot_tmp, c.dir.join(format!("{name}.boot"))).map_err(io)?;
    Ok(Segment {
        path,
        boot,
        id: name,
    })
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

/// A segment written while the part was read for its manifest, every file
/// as unique (see [`FirstRead`]).
struct FirstSegment {
    path: PathBuf,
    boot: HashMap<String, Vec<u8>>,
    /// How many regular files and hard links it holds.
    entries: usize,
}

impl FirstSegment {
    /// Whether it holds the bytes `plan` asks for: the plan's every action
    /// is [`LinkAction::Unique`], for as many entries.
    fn fits(&self, plan: &LinkPlan) -> bool {
        plan.actions.len() == self.entries && plan.actions.iter().all(|a| *a == LinkAction::Unique)
    }
}

/// Reads a part once for both of its uses when nothing is cached: records
/// its manifest and, on the same pass, writes its segment as if no file
/// were linked to another. Most parts' plans are all unique (an image
/// rarely shares a file with another part), and for them that segment is
/// the one the plan asks for, so the part is decompressed and flattened
/// once, not again for the segment: a first build used to read every
/// image twice and compress it once, and reading is about a third of its
/// work. A part whose plan links or leaves out files is produced again
/// with its plan; to waste little compression on it, a part stops writing
/// its first segment as soon as it meets a file another part has too.
struct FirstRead<'s, W: Write> {
    manifest: ManifestSink,
    /// Dropped at the part's first hard link (such a part's plan is never
    /// all unique: the link names its target's inode), or at a file that
    /// another part has too (its plan almost never is: the identical file
    /// is linked or left out).
    segment: Option<InitrdSink<W>>,
    part: usize,
    shared: &'s Shared,
}

/// What the parts being read tell each other: which part first had each
/// content, and which parts' first segments are not worth finishing.
struct Shared {
    owners: Mutex<HashMap<[u8; 16], usize>>,
    give_up: Vec<AtomicBool>,
}

impl Shared {
    fn new(parts: usize) -> Shared {
        Shared {
            owners: Mutex::new(HashMap::new()),
            give_up: (0..parts).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Notes that `part` has a file with `content`; whether another part
    /// has it too (then both parts give up their first segments).
    fn seen(&self, part: usize, content: [u8; 16]) -> bool {
        let owner = *self
            .owners
            .lock()
            .expect("no panics while held")
            .entry(content)
            .or_insert(part);
        if owner == part {
            return false;
        }
        self.give_up[owner].store(true, Ordering::Relaxed);
        true
    }
}

/// Feeds what it reads through a hasher too.
struct Hashing<'a, R: ?Sized> {
    inner: &'a mut R,
    hash: &'a mut Sha256,
}

impl<R: Read + ?Sized> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> EntrySink for FirstRead<'_, W> {
    fn add(&mut self, e: &Entry, data: &mut dyn Read) -> linuxkit_rootfs::Result<()> {
        if matches!(e.kind, EntryKind::Hardlink { .. })
            || self.shared.give_up[self.part].load(Ordering::Relaxed)
        {
            self.segment = None;
        }
        let Some(segment) = &mut self.segment else {
            let before = self.manifest.manifest.files.len();
            self.manifest.add(e, data)?;
            if let Some(FileRec::File {
                content: Some(c), ..
            }) = self.manifest.manifest.files.get(before)
            {
                self.shared.seen(self.part, *c);
            }
            return Ok(());
        };
        // The segment reads a file's content whole (its size is checked),
        // so the hash covers exactly what the manifest alone would read.
        match ManifestSink::content_hasher(e) {
            Some(mut hash) => {
                segment.add(
                    e,
                    &mut Hashing {
                        inner: data,
                        hash: &mut hash,
                    },
                )?;
                let c = ManifestSink::content_digest(hash);
                if self.shared.seen(self.part, c) {
                    self.segment = None;
                }
                self.manifest.record(e, Some(c))
            }
            None => {
                segment.add(e, data)?;
                self.manifest.record(e, None)
            }
        }
    }
}

/// A part's manifest: from the cache when keyed and present, else by
/// reading the part (into the cache when keyed), which also writes the
/// part's segment for an all-unique plan (see [`FirstRead`]).
fn manifest(
    part: &Part,
    opts: &InitrdOptions,
    cache: Option<&SegmentCache>,
    scratch: &Path,
    i: usize,
    shared: &Shared,
) -> Result<(Manifest, Option<FirstSegment>)> {
    let path = match (&part.key, cache) {
        (Some(key), Some(c)) => Some(c.manifest_path(key)),
        _ => None,
    };
    if let Some(p) = &path
        && let Ok(f) = File::open(p)
        && let Ok(m) = Manifest::read_from(&mut BufReader::new(f))
    {
        return Ok((m, None));
    }
    let first_path = scratch.join(format!("part-{i}.first"));
    let file = File::create(&first_path).map_err(|source| Error::Io {
        context: format!("cannot create {}", first_path.display()),
        source,
    })?;
    let mut sink = FirstRead {
        part: i,
        shared,
        manifest: ManifestSink::default(),
        segment: Some(
            InitrdSink::all_unique(
                BufWriter::with_capacity(1 << 20, file),
                opts.compression,
                opts.level,
            )
            .map_err(|source| Error::Io {
                context: "cannot start the initrd".into(),
                source,
            })?,
        ),
    };
    part.produce(&mut sink)?;
    let first = match sink.segment {
        Some(_) if shared.give_up[i].load(Ordering::Relaxed) => None,
        None => None,
        Some(segment) => {
            let entries = segment.planned_entries();
            let io = |source| Error::Io {
                context: format!("cannot write {}", first_path.display()),
                source,
            };
            let (w, boot) = segment.finish_segment().map_err(io)?;
            w.into_inner().map_err(|e| io(e.into_error()))?;
            Some(FirstSegment {
                path: first_path,
                boot,
                entries,
            })
        }
    };
    let manifest = sink.manifest.manifest;
    if let Some(p) = path {
        let tmp = scratch.join(format!("part-{i}.man"));
        let io = |source| Error::Io {
            context: format!("cannot store a manifest in {}", tmp.display()),
            source,
        };
        let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
        manifest.write_to(&mut w).map_err(io)?;
        w.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        std::fs::rename(&tmp, &p).map_err(io)?;
    }
    Ok((manifest, first))
}

/// Runs `f` on `0..n` on all cores; stops early after an error.
fn par_map<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Vec<Option<Result<T>>> {
    let results: Vec<Mutex<Option<Result<T>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = f(i);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().expect("no panics while held") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("no panics while held"))
        .collect()
}

/// The results of [`par_map`] in order, or the first error.
fn collect<T>(results: Vec<Option<Result<T>>>, parts: &[Part]) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(results.len());
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(s)) => out.push(s),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(Error::Other(format!(
                    "part {} was not built",
                    parts[i].label
                )));
            }
        }
    }
    Ok(out)
}

/// An initrd written by [`build_initrd_with_id`].
pub(crate) struct BuiltInitrd {
    pub staged: Staged,
    /// The `boot/` files (kernel, cmdline, microcode).
    pub boot: HashMap<String, Vec<u8>>,
    /// A SHA-256 identifying the initrd's bytes without reading them: of
    /// the options and each part's id (its cache name, which hashes its
    /// key, or the hash of its archive), and of the microcode.
    pub id: [u8; 32],
    pub report: InitrdReport,
}

/// Writes the initrd of `parts` into a staged file in `dir` (microcode
/// first, uncompressed, as the kernel wants it); returns it with the
/// `boot/` files (kernel, cmdline).
pub fn build_initrd(
    parts: &[Part],
    dest: PathBuf,
    opts: &InitrdOptions,
    cache: Option<&SegmentCache>,
) -> Result<(Staged, HashMap<String, Vec<u8>>)> {
    build_initrd_with_id(parts, dest, opts, cache).map(|b| (b.staged, b.boot))
}

/// [`build_initrd`], with an identifier of the result and its report.
pub(crate) fn build_initrd_with_id(
    parts: &[Part],
    dest: PathBuf,
    opts: &InitrdOptions,
    cache: Option<&SegmentCache>,
) -> Result<BuiltInitrd> {
    let scratch_parent = cache.map(|c| c.dir.clone()).unwrap_or_else(|| {
        dest.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    // Named with our pid, so that the image cache can tell one a killed
    // build left in `.segments` (`Cache::reclaim_and_pin`).
    let scratch = tempfile::Builder::new()
        .prefix(&format!(".initrd-{}-", std::process::id()))
        .tempdir_in(&scratch_parent)
        .map_err(|source| Error::Io {
            context: format!(
                "cannot create a scratch directory in {}",
                scratch_parent.display()
            ),
            source,
        })?;
    let shared = Shared::new(parts.len());
    let (manifests, firsts): (Vec<Manifest>, Vec<Option<FirstSegment>>) = collect(
        par_map(parts.len(), |i| {
            manifest(&parts[i], opts, cache, scratch.path(), i, &shared)
        }),
        parts,
    )?
    .into_iter()
    .unzip();
    if crate::links::meets_links(&manifests) {
        return whole_initrd(parts, &manifests, dest, opts, scratch.path());
    }
    let firsts: Vec<Mutex<Option<FirstSegment>>> = firsts.into_iter().map(Mutex::new).collect();
    let salts: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| match &p.key {
            Some(k) => format!("key {k}"),
            None => format!("part {i} {}", p.label),
        })
        .collect();
    let plans = crate::links::plan(&manifests.iter().collect::<Vec<_>>(), &salts);
    let mut segments = collect(
        par_map(parts.len(), |i| {
            let first = firsts[i].lock().expect("no panics while held").take();
            segment(&parts[i], i, opts, &plans[i], cache, scratch.path(), first)
        }),
        parts,
    )?;
    let mut boot = HashMap::new();
    for s in &mut segments {
        boot.extend(std::mem::take(&mut s.boot));
    }
    let mut initrd = Staged::create(dest)?;
    let out = initrd.file();
    let io = |source| Error::Io {
        context: "cannot write the initrd".into(),
        source,
    };
    let mut id = Sha256::new();
    id.update(format!(
        "{SEGMENT_FORMAT}\n{:?}\n{:?}\n",
        opts.compression, opts.level
    ));
    let mut report = start_initrd(out, &boot, &mut id, opts).map_err(io)?;
    for ((s, p), (m, plan)) in segments.iter().zip(parts).zip(manifests.iter().zip(&plans)) {
        // A part of only `boot/` files (the command line) has an empty
        // archive, and the kernel refuses an empty first stream (it ends
        // before any entry started: "junk at the end").
        let n = if m.paths.is_empty() {
            0
        } else {
            let mut f = File::open(&s.path).map_err(io)?;
            let n = std::io::copy(&mut f, out).map_err(io)?;
            id.update(format!("part {}\n", s.id));
            n
        };
        report.parts.push(PartReport {
            label: p.label.clone(),
            section: p.section,
            image: p.image.clone(),
            file_bytes: m.file_bytes(),
            dedup_bytes: plan.linked_bytes,
            dedup_files: plan.merged_files,
            initrd_bytes: n,
        });
    }
    let trailer = crate::cpio::trailer_archive(opts.compression, opts.level).map_err(io)?;
    out.write_all(&trailer).map_err(io)?;
    report.trailer_bytes = trailer.len() as u64;
    report.initrd_bytes = out.metadata().map_err(io)?.len();
    Ok(BuiltInitrd {
        staged: initrd,
        boot,
        id: id.finalize().into(),
        report,
    })
}

/// The initrd's report, started: the CPU microcode archive (`boot/ucode.cpio`
/// of some image), which must come first and uncompressed, written to
/// `out` and counted in the initrd's identity `id`.
fn start_initrd(
    out: &mut File,
    boot: &HashMap<String, Vec<u8>>,
    id: &mut Sha256,
    opts: &InitrdOptions,
) -> std::io::Result<InitrdReport> {
    let mut report = InitrdReport {
        compression: opts.compression,
        ..Default::default()
    };
    if let Some(ucode) = boot.get("boot/ucode.cpio") {
        out.write_all(ucode)?;
        id.update(b"ucode\n");
        id.update(ucode);
        report.ucode_bytes = ucode.len() as u64;
    }
    Ok(report)
}

/// The initrd as one archive written through [`Resolve`], for a root
/// filesystem where an entry meets a symbolic link of an earlier one
/// ([`crate::links::meets_links`]): segments are produced each on its own,
/// but resolving an entry needs every earlier one. Such an initrd is
/// neither cached by part nor deduplicated; it is rare (no configuration of
/// the reference's examples makes one).
fn whole_initrd(
    parts: &[Part],
    manifests: &[Manifest],
    dest: PathBuf,
    opts: &InitrdOptions,
    scratch: &Path,
) -> Result<BuiltInitrd> {
    let tmp = scratch.join("whole");
    let io_tmp = |source| Error::Io {
        context: format!("cannot write {}", tmp.display()),
        source,
    };
    let file = File::create(&tmp).map_err(io_tmp)?;
    let mut sink = InitrdSink::new(
        BufWriter::with_capacity(1 << 20, file),
        opts.compression,
        opts.level,
    )
    .map_err(|source| Error::Io {
        context: "cannot start the initrd".into(),
        source,
    })?;
    {
        // GNU `cpio -i` does not replace an entry by one as old: links
        // replaced later are left out rather than broken.
        let paths = manifests
            .iter()
            .flat_map(|m| m.paths.iter().map(String::as_str));
        let mut resolved = Resolve::with_lookahead(&mut sink, paths);
        for p in parts {
            p.produce(&mut resolved)?;
        }
    }
    let (w, boot) = sink.finish().map_err(io_tmp)?;
    w.into_inner()
        .map_err(|e| io_tmp(e.into_error()))?
        .sync_all()
        .map_err(io_tmp)?;
    let mut initrd = Staged::create(dest)?;
    let out = initrd.file();
    let io = |source| Error::Io {
        context: "cannot write the initrd".into(),
        source,
    };
    let mut id = Sha256::new();
    id.update(format!("{SEGMENT_FORMAT} whole\n"));
    let mut report = start_initrd(out, &boot, &mut id, opts).map_err(io)?;
    let mut archive = File::open(&tmp).map_err(io)?;
    let mut hashing = HashingWriter {
        out: &mut *out,
        hash: &mut id,
    };
    let n = std::io::copy(&mut archive, &mut hashing).map_err(io)?;
    for (p, m) in parts.iter().zip(manifests) {
        report.parts.push(PartReport {
            label: p.label.clone(),
            section: p.section,
            image: p.image.clone(),
            file_bytes: m.file_bytes(),
            dedup_bytes: 0,
            dedup_files: 0,
            initrd_bytes: 0,
        });
    }
    // One archive: its bytes are the trailer's share.
    report.trailer_bytes = n;
    report.initrd_bytes = out.metadata().map_err(io)?.len();
    Ok(BuiltInitrd {
        staged: initrd,
        boot,
        id: id.finalize().into(),
        report,
    })
}

/// Copies into `out` while hashing.
struct HashingWriter<'a, W: Write> {
    out: &'a mut W,
    hash: &'a mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let mut m = HashMap::new();
        m.insert("boot/kernel".to_string(), vec![1, 2, 3]);
        m.insert("boot/cmdline".to_string(), b"console=ttyS0".to_vec());
        write_boot(&p, &m).unwrap();
        assert_eq!(read_boot(&p).unwrap(), m);
    }

    /// A keyed part of regular files (path, content) and hard links (path,
    /// target, as `None` content), counting how often it is produced.
    fn part<'a>(
        key: Option<&str>,
        files: &'a [(&'a str, Option<Vec<u8>>)],
        count: &'a AtomicUsize,
    ) -> Part<'a> {
        Part::from_fn(key.map(str::to_string), "test", move |sink| {
            count.fetch_add(1, Ordering::Relaxed);
            sink.add(&Entry::dir("d"), &mut std::io::empty())?;
            for (path, content) in files {
                match content {
                    Some(c) => sink.add(
                        &Entry::file(*path, c.len() as u64),
                        &mut std::io::Cursor::new(c),
                    )?,
                    None => {
                        let e = Entry {
                            kind: EntryKind::Hardlink {
                                target: "d/big1".into(),
                            },
                            ..Entry::file(*path, 0)
                        };
                        sink.add(&e, &mut std::io::empty())?
                    }
                }
            }
            Ok(())
        })
    }

    fn bytes(seed: u8, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 7) as u8)
            .collect()
    }

    /// A first build reads a part whose plan links nothing once, not once
    /// for its manifest and again for its segment (issue 25: reading every
    /// image twice made first builds 20% more expensive), and the segment
    /// it keeps is the one a build from cached manifests writes.
    #[test]
    fn a_part_without_links_is_read_once() {
        let shared = bytes(7, 9000);
        let big = [
            ("d/big1", Some(bytes(1, 50_000))),
            ("d/big2", Some(bytes(2, 20_000))),
            ("d/small", Some(b"small".to_vec())),
        ];
        let a = [("d/libc-a", Some(shared.clone()))];
        let b = [("d/libc-b", Some(shared.clone()))];
        let linked = [("d/big1", Some(bytes(3, 6000))), ("d/again", None)];
        let generated = [("d/config", Some(b"x: 1".to_vec()))];
        let counts: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
        let parts = vec![
            part(Some("big"), &big, &counts[0]),
            part(Some("a"), &a, &counts[1]),
            part(Some("b"), &b, &counts[2]),
            part(Some("linked"), &linked, &counts[3]),
            part(None, &generated, &counts[4]),
        ];
        let produced = || -> Vec<usize> {
            counts
                .iter()
                .map(|c| c.swap(0, Ordering::Relaxed))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = SegmentCache::new(dir.path().join("segments")).unwrap();
        let build = |name: &str, cache: Option<&SegmentCache>| {
            let dest = dir.path().join(name);
            let b = build_initrd_with_id(&parts, dest, &InitrdOptions::default(), cache).unwrap();
            let path = b.staged.commit().unwrap();
            (std::fs::read(path).unwrap(), b.report)
        };
        let (first, report) = build("first", Some(&cache));
        assert_eq!(report.parts[2].dedup_files, 1, "b links to a's copy");
        // `a` holds the first name of a linked file and `b` a link, and
        // `linked` has a hard link of its own: those are read again.
        assert_eq!(produced(), [1, 2, 2, 2, 1]);
        // Warm: nothing is read.
        assert_eq!(build("warm", Some(&cache)).0, first);
        assert_eq!(produced(), [0, 0, 0, 0, 1]);
        // From cached manifests, every keyed segment is produced with its
        // plan, in one read each: the same bytes.
        for e in std::fs::read_dir(&cache.dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x != "man") {
                std::fs::remove_file(p).unwrap();
            }
        }
        assert_eq!(build("planned", Some(&cache)).0, first);
        assert_eq!(produced(), [1, 1, 1, 1, 1]);
        // Without a cache, the same bytes too.
        assert_eq!(build("uncached", None).0, first);
        assert_eq!(produced(), [1, 2, 2, 2, 1]);
    }

    #[test]
    fn compression_is_part_of_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = SegmentCache::new(dir.path()).unwrap();
        let gz = InitrdOptions::default();
        let zst = InitrdOptions {
            compression: Compression::Zstd,
            ..Default::default()
        };
        let lz4 = InitrdOptions {
            compression: Compression::Lz4,
            ..Default::default()
        };
        assert_ne!(c.name("k", "p", &gz), c.name("k", "p", &zst));
        assert_ne!(c.name("k", "p", &lz4), c.name("k", "p", &zst));
        assert_eq!(c.name("k", "p", &gz), c.name("k", "p", &gz));
        // ... and so is the link plan.
        assert_ne!(c.name("k", "p", &gz), c.name("k", "q", &gz));
    }
}
