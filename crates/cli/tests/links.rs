//! A root filesystem whose parts meet at a symbolic link (issue 18): an
//! `init` image ships `abs`, `up` and `lib` as links out of any
//! extraction directory (absolute, and climbing with `..`), a later image
//! and `files:` write beneath them (`lib` is a directory of the kernel's
//! modules already, which the VM keeps), and `files:` replaces the
//! standard `etc/resolv.conf` link with a file. The reference writes such
//! a stream as it is, and the extractors that follow links they have just
//! made (Python's `tarfile` without a filter) wrote outside their
//! destination. Each output that stores a tree is extracted here by the
//! real tools (Python's `tarfile` with its default filter and with
//! `filter='data'`, GNU tar, GNU cpio, unsquashfs, fsck.erofs, xorriso)
//! into a directory next to an `outside` one, which must stay empty; the
//! trees of all but Python (which stops at a link it cannot replace) must
//! be what the VM's kernel makes of the stream: `abs`, `up` and
//! `etc/resolv.conf` replaced by what came after them, `lib` the
//! directory.

use std::path::Path;
use std::process::Command;

mod common;
use common::succeeded;

use linuxkit_testing::{
    Auth, Compression, Fixture, Format, ImageSpec, LayerSpec, Platform, TestRegistry, push_fixture,
};

fn linuxkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_linuxkit"))
}

fn image(layer: LayerSpec) -> Fixture {
    Fixture::build(
        Format::Oci,
        "t",
        &[ImageSpec::new(Platform::linux_amd64()).layer(layer)],
        false,
    )
}

/// Everything below `dir`, as sorted relative paths.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.symlink_metadata().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Asserts that `dest` holds what the VM's kernel makes of the stream.
fn assert_kernel_view(dest: &Path, tool: &str) {
    let lib = dest.join("lib");
    assert!(
        lib.symlink_metadata().unwrap().is_dir(),
        "{tool}: lib is not a directory: {:?}",
        tree(dest)
    );
    assert_eq!(std::fs::read(lib.join("x")).unwrap(), b"X", "{tool}");
    assert!(
        dest.join("up").symlink_metadata().unwrap().is_dir(),
        "{tool}"
    );
    assert_eq!(std::fs::read(dest.join("up/z")).unwrap(), b"Z", "{tool}");
    assert!(
        dest.join("abs").symlink_metadata().unwrap().is_dir(),
        "{tool}"
    );
    assert_eq!(std::fs::read(dest.join("abs/w")).unwrap(), b"W", "{tool}");
    let resolv = dest.join("etc/resolv.conf");
    if tool == "GNU tar" && resolv.symlink_metadata().unwrap().is_symlink() {
        // GNU tar makes the standard link (an absolute target) last from a
        // placeholder file, and takes the file that replaced it for the
        // placeholder when it got the same inode number: its link is then
        // last, as in the reference's tar. It leads nowhere GNU tar writes.
        return;
    }
    assert!(
        resolv.symlink_metadata().unwrap().is_file(),
        "{tool}: etc/resolv.conf is not a file"
    );
    assert_eq!(
        std::fs::read(resolv).unwrap(),
        b"nameserver 10.0.0.1\n",
        "{tool}"
    );
}

#[test]
fn links_met_by_later_parts_lead_no_extractor_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let climb = format!(
        "{}{}",
        "../".repeat(40),
        outside.display().to_string().trim_start_matches('/')
    );
    let registry = TestRegistry::start(Auth::None);
    let first = image(
        LayerSpec::new(Compression::Gzip)
            .file_mode("init", "#!/bin/sh\n", 0o755)
            .symlink("lib", &outside.display().to_string())
            .symlink("up", &climb)
            .symlink("abs", &outside.display().to_string()),
    );
    let second = image(
        LayerSpec::new(Compression::Gzip)
            .file("lib/x", "X")
            .file("abs/w", "W"),
    );
    let modules = LayerSpec::new(Compression::None)
        .file("lib/modules/6.1.0/kernel/foo.ko", "module")
        .tar();
    let kernel = image(
        LayerSpec::new(Compression::Gzip)
            .file("kernel", "BZIMAGE")
            .file("kernel.tar", &modules),
    );
    push_fixture(&kernel, &registry, "kernel:1");
    push_fixture(&first, &registry, "links:1");
    push_fixture(&second, &registry, "beneath:1");
    let r = registry.addr();
    let yml = tmp.path().join("t.yml");
    std::fs::write(
        &yml,
        format!(
            "kernel:\n  image: {r}/kernel:1\n  cmdline: console=ttyS0\ninit:\n  - {r}/links:1\n  - {r}/beneath:1\nfiles:\n  - path: up/z\n    contents: Z\n  - path: etc/resolv.conf\n    contents: \"nameserver 10.0.0.1\\n\"\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let built = linuxkit()
        .arg("--cache")
        .arg(tmp.path().join("cache"))
        .args([
            "build",
            "--format",
            "tar",
            "--format",
            "kernel+initrd",
            "--format",
            "kernel+squashfs",
            "--format",
            "kernel+erofs",
            "--format",
            "kernel+iso",
            "--name",
            "t",
            "--dir",
        ])
        .arg(&out)
        .arg(&yml)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    eprintln!("{stderr}");
    let tar = out.join("t.tar");

    // Python's tarfile: the default filter (which follows links it made)
    // and the `data` filter, carrying on after errors and stopping at the
    // first.
    for filter in ["None", "'data'"] {
        for errorlevel in [0, 1] {
            let dest = tmp.path().join(format!("py-{}-{errorlevel}", filter.len()));
            std::fs::create_dir(&dest).unwrap();
            let py = format!(
                "import tarfile\nt = tarfile.open({tar:?})\nt.errorlevel = {errorlevel}\ntry:\n    t.extractall({dest:?}, filter={filter}) if hasattr(tarfile, 'data_filter') else t.extractall({dest:?})\nexcept Exception as e:\n    print('stopped:', e)\n",
            );
            succeeded(
                "Python's tarfile",
                Command::new("python3").arg("-c").arg(&py).output().unwrap(),
            );
            assert_eq!(
                tree(&outside),
                Vec::<String>::new(),
                "Python's tarfile (filter={filter}, errorlevel={errorlevel}) wrote outside its destination"
            );
        }
    }

    // GNU tar: nothing outside, and the VM's tree.
    let dest = tmp.path().join("gnutar");
    std::fs::create_dir(&dest).unwrap();
    let run = Command::new("tar")
        .args(["--warning=no-unknown-keyword", "-xf"])
        .arg(&tar)
        .arg("-C")
        .arg(&dest)
        .output()
        .unwrap();
    // GNU tar makes a link with `..` or an absolute target last, from a
    // placeholder; when the placeholder was replaced (by the directory the
    // VM has there too) it says so and fails, as for the reference's tar.
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.lines()
            .all(|l| l.ends_with(": Cannot unlink: Is a directory")
                || l.contains("Exiting with failure status due to previous errors")),
        "{said}"
    );
    assert_eq!(tree(&outside), Vec::<String>::new(), "GNU tar");
    assert_kernel_view(&dest, "GNU tar");

    // The initrd's cpio, with GNU cpio.
    let dest = tmp.path().join("cpio");
    std::fs::create_dir(&dest).unwrap();
    let cpio = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {} | cpio -idm --quiet",
            out.join("t-initrd.img").display()
        ))
        .current_dir(&dest)
        .output()
        .unwrap();
    eprintln!("cpio: {}", String::from_utf8_lossy(&cpio.stderr));
    assert_eq!(tree(&outside), Vec::<String>::new(), "GNU cpio");

    // squashfs: a tree, which unsquashfs writes as the kernel's.
    let dest = tmp.path().join("squashfs");
    succeeded(
        "unsquashfs",
        Command::new("unsquashfs")
            .arg("-no-xattrs")
            .arg("-d")
            .arg(&dest)
            .arg(out.join("t-squashfs.img"))
            .output()
            .unwrap(),
    );
    assert_eq!(tree(&outside), Vec::<String>::new(), "unsquashfs");
    assert_kernel_view(&dest, "unsquashfs");

    // EROFS and ISO 9660 are trees too (the same one).
    let dest = tmp.path().join("erofs");
    succeeded(
        "fsck.erofs",
        Command::new("fsck.erofs")
            .arg(format!("--extract={}", dest.display()))
            .arg(out.join("t-erofs.img"))
            .output()
            .unwrap(),
    );
    assert_eq!(tree(&outside), Vec::<String>::new(), "fsck.erofs");
    assert_kernel_view(&dest, "fsck.erofs");
    let dest = tmp.path().join("iso");
    succeeded(
        "xorriso",
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(out.join("t.iso"))
            .args(["-extract", "/"])
            .arg(&dest)
            .output()
            .unwrap(),
    );
    assert_eq!(tree(&outside), Vec::<String>::new(), "xorriso");
    assert_kernel_view(&dest, "xorriso");
}
