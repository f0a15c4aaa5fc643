//! `kernel:` images: a Debian kernel package laid out as a LinuxKit kernel
//! image.
//!
//! LinuxKit's kernel images hold, at their root:
//!
//! * `/kernel` — the bootable image (`bzImage` on x86), here the Debian
//!   package's `boot/vmlinuz-VERSION`;
//! * `/kernel.tar` — a tar expanded at `/` of the system: the modules,
//!   `lib/modules/VERSION/...`, and the build configuration,
//!   `lib/modules/VERSION/config` (where Fedora and Arch ship it too: `boot/`
//!   is kept out of LinuxKit root filesystems, it holds the separate boot
//!   files);
//! * `/System.map` — the symbol table, `boot/System.map-VERSION`.
//!
//! `kernel.tar` is written like the image's layer: sorted by path, every
//! mtime [`DEFAULT_MTIME`](linuxkit_rootfs::DEFAULT_MTIME), so it is
//! reproducible too.
//!
//! # Choosing modules
//!
//! Debian's kernel packages do not ship `modules.dep` and friends: dpkg
//! runs `depmod` after unpacking. So this module does depmod's text part
//! itself: it reads every module's `.modinfo` ELF section (`depends=`,
//! `alias=`, `softdep=`) and writes `modules.dep` (each module's
//! dependency closure, ordered as depmod does: a module before what it
//! needs), `modules.alias`, `modules.softdep` and `modules.devname`. The
//! binary `*.bin` indices are not written: run `depmod` in the image if
//! its `modprobe` needs them (kmod's does; busybox's reads the text files).
//!
//! A distribution kernel has thousands of modules; a VM needs a handful.
//! With `kernel.modules` (name globs, `*` and `?`, `-` and `_` alike),
//! only the matching modules and their dependency closure are kept, and
//! the index files mention only those: the generated ones, and
//! `modules.order` and `modules.symbols` (filtered), while
//! `modules.builtin*` (about built-in code) stay as they are and any
//! `*.bin` index is dropped. A glob that matches no module and no built-in
//! is an error. Without `modules:` every file is kept (the "full"
//! variant). Module files may be `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`.

use std::collections::{BTreeMap, BTreeSet};

use linuxkit_base::Arch;
use linuxkit_rootfs::{Entry, EntryKind};

use crate::KernelSpec;
use crate::error::BuildError;
use crate::glob::Wildcard;
use crate::layer::LayerTree;

/// What [`layout`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// The kernel release (`6.1.0-35-cloud-amd64`).
    pub version: String,
    /// The module names kept (normalized: `_` for `-`), sorted.
    pub modules: Vec<String>,
}

/// The module name of a module file path: base name without `.ko[.xz|.zst|.gz]`,
/// with `-` normalized to `_`.
pub fn module_name(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .map(underscored)
}

/// A module name as the kernel keeps it: `-` is `_`.
fn underscored(name: &str) -> String {
    name.replace('-', "_")
}

/// A `kernel.modules` glob (`*` any run, `?` one character; `-` and `_`
/// alike), compiled.
fn module_glob(glob: &str) -> Wildcard {
    Wildcard::name(&underscored(glob))
}

/// Whether module `name` matches `glob` (`*` any run, `?` one character;
/// `-` and `_` alike).
pub fn glob_match(glob: &str, name: &str) -> bool {
    module_glob(glob).is_match(&underscored(name))
}

/// The `.modinfo` section of a kernel module (an ELF relocatable file):
/// its `key=value` strings, in order. `None` if `ko` is not an ELF file or
/// has no such section.
pub fn modinfo(ko: &[u8]) -> Option<Vec<(String, String)>> {
    if ko.len() < 0x40 || &ko[..4] != b"\x7fELF" {
        return None;
    }
    let wide = match ko[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = ko[5] == 1;
    let int = |off: usize, len: usize| -> Option<u64> {
        let b = ko.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (int(0x28, 8)?, int(0x3a, 2)?, int(0x3c, 2)?, int(0x3e, 2)?)
    } else {
        (int(0x20, 4)?, int(0x2e, 2)?, int(0x30, 2)?, int(0x32, 2)?)
    };
    let section = |i: u64| -> Option<(u64, u64, u64)> {
        let h = (shoff + i * shentsize) as usize;
        let name = int(h, 4)?;
        if wide {
            Some((name, int(h + 24, 8)?, int(h + 32, 8)?))
        } else {
            Some((name, int(h + 16, 4)?, int(h + 20, 4)?))
        }
    };
    let bytes = |off: u64, size: u64| ko.get(off as usize..(off + size) as usize);
    let (_, str_off, str_size) = section(shstrndx)?;
    let strtab = bytes(str_off, str_size)?;
    let data = (0..shnum).find_map(|i| {
        let (name, off, size) = section(i)?;
        let n = strtab.get(name as usize..)?;
        let n = &n[..n.iter().position(|b| *b == 0)?];
        (n == b".modinfo").then(|| bytes(off, size)).flatten()
    })?;
    Some(
        data.split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = std::str::from_utf8(kv).ok()?;
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// The uncompressed bytes of a module file (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`).
fn decompress(path: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    if path.ends_with(".xz") {
        lzma_rust2::XzReader::new(data, true).read_to_end(&mut out)?;
    } else if path.ends_with(".zst") {
        out = zstd::decode_all(data)?;
    } else if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    } else {
        out = data.to_vec();
    }
    Ok(out)
}

/// What depmod reads from one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `name=` (else from the file name), normalized.
    pub name: String,
    /// `depends=`, normalized names.
    pub depends: Vec<String>,
    /// `alias=` values.
    pub aliases: Vec<String>,
    /// `softdep=` values (`pre: a post: b`).
    pub softdeps: Vec<String>,
}

impl ModuleInfo {
    fn from_modinfo(path: &str, kv: &[(String, String)]) -> ModuleInfo {
        let mut m = ModuleInfo {
            name: module_name(path).unwrap_or_default(),
            ..ModuleInfo::default()
        };
        for (k, v) in kv {
            match k.as_str() {
                "name" if !v.is_empty() => m.name = underscored(v),
                "depends" => m
                    .depends
                    .extend(v.split(',').filter(|d| !d.is_empty()).map(underscored)),
                "alias" => m.aliases.push(v.clone()),
                "softdep" => m.softdeps.push(v.clone()),
                _ => {}
            }
        }
        m
    }
}

/// `modules.dep` as depmod computes it: module path → the paths of its
/// dependency closure, each module before the ones it needs (modprobe
/// loads them from the end).
pub fn dependency_map(mods: &BTreeMap<String, ModuleInfo>) -> BTreeMap<String, Vec<String>> {
    let by_name: BTreeMap<&str, &str> = mods
        .iter()
        .map(|(p, m)| (m.name.as_str(), p.as_str()))
        .collect();
    fn visit<'a>(
        p: &'a str,
        mods: &'a BTreeMap<String, ModuleInfo>,
        by_name: &BTreeMap<&str, &'a str>,
        seen: &mut BTreeSet<&'a str>,
        post: &mut Vec<&'a str>,
    ) {
        if !seen.insert(p) {
            return;
        }
        for d in &mods[p].depends {
            if let Some(dp) = by_name.get(d.as_str()) {
                visit(dp, mods, by_name, seen, post);
            }
        }
        post.push(p);
    }
    mods.keys()
        .map(|p| {
            let (mut seen, mut post) = (BTreeSet::new(), Vec::new());
            visit(p, mods, &by_name, &mut seen, &mut post);
            post.pop(); // the module itself
            post.reverse();
            (p.clone(), post.into_iter().map(str::to_string).collect())
        })
        .collect()
}

/// The text indices depmod writes, for the modules in `mods`.
fn generated_indices(
    mods: &BTreeMap<String, ModuleInfo>,
    dep: &BTreeMap<String, Vec<String>>,
) -> Vec<(&'static str, String)> {
    let mut modules_dep = String::new();
    for (p, deps) in dep {
        modules_dep.push_str(p);
        modules_dep.push(':');
        for d in deps {
            modules_dep.push(' ');
            modules_dep.push_str(d);
        }
        modules_dep.push('\n');
    }
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    let mut softdep = String::from("# Soft dependencies extracted from modules themselves.\n");
    let mut devname = String::from("# Device nodes to trigger on-demand module loading.\n");
    let mut by_name: Vec<&ModuleInfo> = mods.values().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    for m in by_name {
        for a in &m.aliases {
            alias.push_str(&format!("alias {a} {}\n", m.name));
        }
        for s in &m.softdeps {
            softdep.push_str(&format!("softdep {} {s}\n", m.name));
        }
        let node = m.aliases.iter().find_map(|a| a.strip_prefix("devname:"));
        let dev = m.aliases.iter().find_map(|a| {
            let (kind, rest) = if let Some(r) = a.strip_prefix("char-major-") {
                ('c', r)
            } else {
                ('b', a.strip_prefix("block-major-")?)
            };
            let (maj, min) = rest.split_once('-')?;
            Some(format!("{kind}{maj}:{min}"))
        });
        if let (Some(node), Some(dev)) = (node, dev) {
            devname.push_str(&format!("{} {node} {dev}\n", m.name));
        }
    }
    vec![
        ("modules.dep", modules_dep),
        ("modules.alias", alias),
        ("modules.softdep", softdep),
        ("modules.devname", devname),
    ]
}

/// Parses `modules.dep`: module path → its dependencies' paths.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, Vec<String>> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            Some((
                m.trim().to_string(),
                deps.split_whitespace().map(str::to_string).collect(),
            ))
        })
        .collect()
}

/// The modules to keep: those matching `globs`, plus their closure in `dep`.
/// Errors name the globs that match neither a module nor a built-in.
pub fn select_modules(
    dep: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
    globs: &[String],
) -> Result<BTreeSet<String>, Vec<String>> {
    let by_name: BTreeMap<String, &String> = dep
        .keys()
        .filter_map(|p| module_name(p).map(|n| (n, p)))
        .collect();
    let mut queue: Vec<&String> = Vec::new();
    let mut unmatched = Vec::new();
    for g in globs {
        let m = module_glob(g);
        let before = queue.len();
        queue.extend(
            by_name
                .iter()
                .filter(|(n, _)| m.is_match(n))
                .map(|(_, p)| *p),
        );
        if queue.len() == before && !builtin.iter().any(|b| m.is_match(&underscored(b))) {
            unmatched.push(g.clone());
        }
    }
    if !unmatched.is_empty() {
        return Err(unmatched);
    }
    let mut kept = BTreeSet::new();
    while let Some(p) = queue.pop() {
        if kept.insert(p.clone()) {
            for d in dep.get(p).into_iter().flatten() {
                if let Some(k) = dep.get_key_value(d) {
                    queue.push(k.0);
                }
            }
        }
    }
    Ok(kept)
}

/// `modules.builtin`: the names of built-in modules.
fn builtin_names(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(module_name).collect()
}

/// Rewrites a module index file to mention only modules in `kept` (names).
/// `None` drops the file.
fn filter_index(file: &str, text: &str, kept: &BTreeSet<String>) -> Option<String> {
    let keep_name = |n: &str| kept.contains(&underscored(n));
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        let keep = if t.is_empty() || t.starts_with('#') {
            true
        } else {
            match file {
                "modules.dep" => t
                    .split_once(':')
                    .and_then(|(m, _)| module_name(m))
                    .is_some_and(|n| kept.contains(&n)),
                "modules.order" => module_name(t).is_some_and(|n| kept.contains(&n)),
                // `alias PATTERN MODULE`, `alias symbol:SYM MODULE`
                "modules.alias" | "modules.symbols" => {
                    t.split_whitespace().nth(2).is_some_and(keep_name)
                }
                // `MODULE DEVNAME TYPE`
                "modules.devname" => t.split_whitespace().next().is_some_and(keep_name),
                // `softdep MODULE pre: A B post: C`: keep the line for a kept
                // module, with only kept modules named.
                "modules.softdep" => {
                    let words: Vec<&str> = t.split_whitespace().collect();
                    if words.len() < 2 || !keep_name(words[1]) {
                        false
                    } else {
                        let mut w: Vec<&str> = words[..2].to_vec();
                        let mut any = false;
                        for x in &words[2..] {
                            if x.ends_with(':') {
                                w.push(x);
                            } else if keep_name(x) {
                                w.push(x);
                                any = true;
                            }
                        }
                        if any {
                            out.push_str(&w.join(" "));
                            out.push('\n');
                        }
                        continue;
                    }
                }
                _ => true,
            }
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    Some(out)
}

/// The globs of `kernel.modules` a kernel for `arch` selects: an entry
/// may name architectures as `debian.packages` does (`ata_piix [amd64]`,
/// `pl061 [!amd64]`), the same [`Request`](crate::debian::Request) grammar.
pub fn globs_for(entries: &[String], arch: Arch) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in entries {
        let (glob, admitted) = match e.split_once('[') {
            None => (e.trim(), true),
            Some((g, _)) => {
                let r = crate::debian::Request::parse(&format!("x {}", &e[g.len()..]))
                    .map_err(|m| format!("`kernel.modules`: bad entry {e:?}: {m}"))?;
                (g.trim(), r.applies_to(arch))
            }
        };
        if admitted {
            out.push(glob.to_string());
        }
    }
    Ok(out)
}

/// Lays `tree` (the Debian packages' files) out as a kernel image;
/// `build_yml` names the file in errors.
pub fn layout(
    tree: &LayerTree,
    spec: &KernelSpec,
    arch: Arch,
    build_yml: &str,
) -> Result<(LayerTree, KernelInfo), BuildError> {
    let err = |message: String| BuildError::Package {
        build_yml: build_yml.to_string(),
        message,
    };
    let kernels: Vec<(&Entry, &[u8])> = tree
        .iter()
        .filter(|(e, _)| {
            e.path.starts_with("boot/vmlinuz-")
                && matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. })
        })
        .collect();
    let (vmlinuz, version) = match kernels.as_slice() {
        [(e, data)] => (*data, e.path["boot/vmlinuz-".len()..].to_string()),
        [] => {
            return Err(err(
                "`kernel:`: the Debian packages have no boot/vmlinuz-*; list a kernel package such as linux-image-cloud-amd64 (or its versioned linux-image-VERSION) in `debian.packages`".into(),
            ));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|(e, _)| e.path.as_str()).collect();
            return Err(err(format!(
                "`kernel:`: the Debian packages have several kernels ({}); list only one kernel package",
                names.join(", ")
            )));
        }
    };
    let moddir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| format!("{d}/{version}"))
        .find(|d| tree.get(d).is_some() || tree.paths().any(|p| p.starts_with(&format!("{d}/"))))
        .ok_or_else(|| {
            err(format!(
                "`kernel:`: no lib/modules/{version} in the Debian packages; is `debian.include`/`exclude` dropping it?"
            ))
        })?;
    let text_of = |name: &str| {
        tree.get(&format!("{moddir}/{name}"))
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
    };
    let prefix = format!("{moddir}/");

    // depmod: every module's .modinfo.
    let mut mods: BTreeMap<String, ModuleInfo> = BTreeMap::new();
    for (e, data) in tree.iter() {
        let Some(rel) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        if e.kind == EntryKind::Dir || module_name(rel).is_none() {
            continue;
        }
        let raw = decompress(rel, data)
            .map_err(|x| err(format!("`kernel:`: cannot decompress {}: {x}", e.path)))?;
        let kv = modinfo(&raw).ok_or_else(|| {
            err(format!(
                "`kernel:`: {} is not a kernel module (no .modinfo ELF section)",
                e.path
            ))
        })?;
        mods.insert(rel.to_string(), ModuleInfo::from_modinfo(rel, &kv));
    }
    let dep = dependency_map(&mods);

    let kept: Option<BTreeSet<String>> = match &spec.modules {
        None => None,
        Some(globs) => {
            let globs = globs_for(globs, arch).map_err(err)?;
            let globs = &globs;
            let builtin = builtin_names(&text_of("modules.builtin").unwrap_or_default());
            let paths = select_modules(&dep, &builtin, globs).map_err(|bad| {
                err(format!(
                    "`kernel.modules`: no module of linux {version} matches {} (neither a module nor built in); fix the glob or remove it",
                    bad.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
                ))
            })?;
            Some(paths.iter().filter_map(|p| module_name(p)).collect())
        }
    };
    let kept_mods: BTreeMap<String, ModuleInfo> = mods
        .into_iter()
        .filter(|(_, m)| kept.as_ref().is_none_or(|k| k.contains(&m.name)))
        .collect();
    let kept_dep: BTreeMap<String, Vec<String>> = dep
        .into_iter()
        .filter(|(p, _)| kept_mods.contains_key(p))
        .collect();
    let generated = generated_indices(&kept_mods, &kept_dep);

    // kernel.tar: lib/modules/VERSION/..., the config as lib/modules/VERSION/config.
    let mut tar = LayerTree::new();
    let target = format!("lib/modules/{version}");
    let mut kept_files: Vec<String> = Vec::new();
    let mut dirs: Vec<(Entry, String)> = Vec::new();
    for (e, data) in tree.iter() {
        let Some(rel) = e
            .path
            .strip_prefix(&prefix)
            .or_else(|| (e.path == moddir).then_some(""))
        else {
            continue;
        };
        let new_path = if rel.is_empty() {
            target.clone()
        } else {
            format!("{target}/{rel}")
        };
        let mut entry = e.clone();
        entry.path = new_path.clone();
        if let EntryKind::Hardlink { .. } = entry.kind {
            entry.kind = EntryKind::File;
            entry.size = data.len() as u64;
        }
        if entry.kind == EntryKind::Dir {
            dirs.push((entry, rel.to_string()));
            continue;
        }
        let top = !rel.contains('/');
        if top && generated.iter().any(|(n, _)| *n == rel) {
            continue; // replaced by the generated index
        }
        let mut data = data.to_vec();
        if let Some(kept) = &kept {
            if let Some(n) = module_name(rel) {
                if !kept.contains(&n) {
                    continue;
                }
            } else if top && rel.ends_with(".bin") {
                continue;
            } else if top && rel.starts_with("modules.") && !rel.starts_with("modules.builtin") {
                let Some(t) = filter_index(rel, &String::from_utf8_lossy(&data), kept) else {
                    continue;
                };
                data = t.into_bytes();
                entry.size = data.len() as u64;
            }
        }
        kept_files.push(new_path);
        tar.put(entry, data);
    }
    for (name, text) in generated {
        let path = format!("{target}/{name}");
        kept_files.push(path.clone());
        tar.put(
            Entry {
                mode: 0o644,
                ..Entry::file(path, text.len() as u64)
            },
            text.into_bytes(),
        );
    }
    // Directories: all of them for the full set; with a selection, those
    // that still hold something.
    for (d, _) in dirs {
        let needed = kept.is_none()
            || kept_files
                .iter()
                .any(|f| f.starts_with(&format!("{}/", d.path)));
        if needed {
            tar.put(d, Vec::new());
        }
    }
    if let Some((e, data)) = tree.get(&format!("boot/config-{version}")) {
        let mut e = e.clone();
        e.path = format!("lib/modules/{version}/config");
        e.kind = EntryKind::File;
        e.size = data.len() as u64;
        tar.put(e, data.to_vec());
    }
    let kernel_tar = tar.to_tar()?;

    let mut out = LayerTree::new();
    out.put(
        Entry::file("kernel", vmlinuz.len() as u64),
        vmlinuz.to_vec(),
    );
    out.put(
        Entry::file("kernel.tar", kernel_tar.len() as u64),
        kernel_tar,
    );
    if let Some((_, map)) = tree.get(&format!("boot/System.map-{version}")) {
        out.put(Entry::file("System.map", map.len() as u64), map.to_vec());
    }
    let mut modules: Vec<String> = kept_mods.into_values().map(|m| m.name).collect();
    modules.sort();
    modules.dedup();
    Ok((out, KernelInfo { version, modules }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_entries_name_their_architectures() {
        let e: Vec<String> = ["virtio_net", "ata_piix [amd64]", "pl061 [!amd64]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            globs_for(&e, Arch::Amd64).unwrap(),
            ["virtio_net", "ata_piix"]
        );
        assert_eq!(globs_for(&e, Arch::Arm64).unwrap(), ["virtio_net", "pl061"]);
        assert!(globs_for(&["x [vax]".to_string()], Arch::Amd64).is_err());
    }

    #[test]
    fn names_and_globs() {
        assert_eq!(
            module_name("kernel/drivers/net/virtio_net.ko").as_deref(),
            Some("virtio_net")
        );
        assert_eq!(
            module_name("kernel/fs/fuse/virtio-fs.ko.xz").as_deref(),
            Some("virtio_fs")
        );
        assert_eq!(module_name("kernel/x/a.ko.zst").as_deref(), Some("a"));
        assert_eq!(module_name("modules.dep"), None);
        assert!(glob_match("virtio*", "virtio_net"));
        assert!(glob_match("virtio-*", "virtio_net"));
        assert!(glob_match("9p", "9p"));
        assert!(!glob_match("9p", "9pnet"));
        assert!(glob_match("9p*", "9pnet_virtio"));
        assert!(glob_match("v?th", "veth"));
        assert!(!glob_match("overlay", "overlayfs"));
    }

    const DEP: &str = "\
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/fs/overlayfs/overlay.ko.xz:
kernel/sound/core/snd.ko.xz: kernel/sound/core/snd-timer.ko.xz
kernel/sound/core/snd-timer.ko.xz:
";

    #[test]
    fn the_closure_follows_modules_dep() {
        let dep = parse_modules_dep(DEP);
        let builtin = builtin_names("kernel/drivers/virtio/virtio.ko\n");
        let kept = select_modules(&dep, &builtin, &["virtio_net".into()]).unwrap();
        let mut names: Vec<String> = kept.iter().filter_map(|p| module_name(p)).collect();
        names.sort();
        assert_eq!(names, ["failover", "net_failover", "virtio_net"]);
        // A built-in matches without adding anything; a miss is an error.
        let kept = select_modules(&dep, &builtin, &["virtio".into()]).unwrap();
        assert!(kept.is_empty());
        let bad = select_modules(&dep, &builtin, &["nope*".into(), "overlay".into()]).unwrap_err();
        assert_eq!(bad, ["nope*"]);
    }

    /// A minimal ELF64 little-endian relocatable file with a `.modinfo`.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.modinfo\0";
        let mut f = vec![0u8; 0x40];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        let strtab_off = f.len() as u64;
        f.extend_from_slice(shstrtab);
        let modinfo_off = f.len() as u64;
        f.extend_from_slice(modinfo);
        let shoff = f.len() as u64;
        let mut sh = |name: u32, off: u64, size: u64| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&h);
        };
        sh(0, 0, 0);
        sh(1, strtab_off, shstrtab.len() as u64);
        sh(11, modinfo_off, modinfo.len() as u64);
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        f
    }

    #[test]
    fn modinfo_and_the_dependency_order() {
        let ko = elf_with_modinfo(
            b"alias=virtio:d00000001v*\0depends=virtio_ring,virtio,net_failover\0name=virtio_net\0",
        );
        let kv = modinfo(&ko).unwrap();
        assert_eq!(
            kv[1],
            ("depends".into(), "virtio_ring,virtio,net_failover".into())
        );
        assert_eq!(
            modinfo(b"not an elf file at all, not at all, no, not even close to one"),
            None
        );
        let info = |path: &str, deps: &str| {
            let kv = vec![("depends".to_string(), deps.to_string())];
            (path.to_string(), ModuleInfo::from_modinfo(path, &kv))
        };
        let mods: BTreeMap<String, ModuleInfo> = [
            info(
                "kernel/drivers/net/virtio_net.ko",
                "virtio_ring,virtio,net_failover",
            ),
            info("kernel/drivers/net/net_failover.ko", "failover"),
            info("kernel/net/core/failover.ko", ""),
            info("kernel/drivers/virtio/virtio.ko", ""),
            info("kernel/drivers/virtio/virtio_ring.ko", ""),
        ]
        .into_iter()
        .collect();
        let dep = dependency_map(&mods);
        // Each module comes before what it needs: modprobe loads from the end.
        assert_eq!(
            dep["kernel/drivers/net/virtio_net.ko"],
            [
                "kernel/drivers/net/net_failover.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko"
            ]
        );
        assert!(dep["kernel/net/core/failover.ko"].is_empty());
        let mut dev = ModuleInfo::from_modinfo("kernel/fs/fuse/fuse.ko", &[]);
        dev.aliases = vec![
            "devname:fuse".into(),
            "char-major-10-229".into(),
            "fs-fuse".into(),
        ];
        let one: BTreeMap<String, ModuleInfo> = [("kernel/fs/fuse/fuse.ko".to_string(), dev)]
            .into_iter()
            .collect();
        let idx = generated_indices(&one, &dependency_map(&one));
        assert_eq!(
            idx[0],
            ("modules.dep", "kernel/fs/fuse/fuse.ko:\n".to_string())
        );
        assert!(idx[1].1.ends_with(
            "alias devname:fuse fuse\nalias char-major-10-229 fuse\nalias fs-fuse fuse\n"
        ));
        assert!(idx[3].1.ends_with("fuse fuse c10:229\n"));
    }

    #[test]
    fn index_files_mention_only_kept_modules() {
        let kept: BTreeSet<String> = ["snd", "snd_timer", "overlay"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let dep = filter_index("modules.dep", DEP, &kept).unwrap();
        assert_eq!(
            dep,
            "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/sound/core/snd.ko.xz: kernel/sound/core/snd-timer.ko.xz\nkernel/sound/core/snd-timer.ko.xz:\n"
        );
        let alias = "# Aliases extracted from modules themselves.\nalias fs-overlay overlay\nalias virtio:d00000001v* virtio_net\nalias char-major-116-33 snd-timer\n";
        assert_eq!(
            filter_index("modules.alias", alias, &kept).unwrap(),
            "# Aliases extracted from modules themselves.\nalias fs-overlay overlay\nalias char-major-116-33 snd-timer\n"
        );
        let soft = "softdep snd pre: snd_timer virtio_net post: x\nsoftdep virtio_net pre: failover\nsoftdep overlay post: x\n";
        assert_eq!(
            filter_index("modules.softdep", soft, &kept).unwrap(),
            "softdep snd pre: snd_timer post:\n"
        );
        let order = "kernel/fs/overlayfs/overlay.ko\nkernel/drivers/net/virtio_net.ko\n";
        assert_eq!(
            filter_index("modules.order", order, &kept).unwrap(),
            "kernel/fs/overlayfs/overlay.ko\n"
        );
        assert_eq!(
            filter_index(
                "modules.devname",
                "overlay overlay c10:1\nfuse fuse c10:229\n",
                &kept
            )
            .unwrap(),
            "overlay overlay c10:1\n"
        );
    }
}
