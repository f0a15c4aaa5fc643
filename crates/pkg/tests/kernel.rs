//! `kernel:` images from the real Debian kernel package
//! `linux-image-cloud-amd64`, from the mirror of the host's apt sources (or
//! `LINUXKIT_DEBIAN_MIRROR`), cached in the default Debian cache so reruns
//! do not download it again. Fails, rather than skips, without the mirror.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use linuxkit_oci::{Cache, Digest};
use linuxkit_pkg::build::{self, BuildOptions};
use linuxkit_pkg::debian::{Client, sources};
use linuxkit_pkg::{Package, PkgOptions};

fn blob(cache: &Cache, digest: &str) -> Vec<u8> {
    cache.read_blob(&Digest::parse(digest).unwrap()).unwrap()
}

/// path → (mode, mtime, content) of a tar.
fn entries(tar: &[u8]) -> BTreeMap<String, (u32, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(tar).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let h = e.header().clone();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.insert(p, (h.mode().unwrap(), h.mtime().unwrap(), b));
    }
    out
}

/// The one layer of a cached image, unpacked.
fn image_layer(cache: &Cache, manifest: &str) -> BTreeMap<String, (u32, u64, Vec<u8>)> {
    let m: serde_json::Value = serde_json::from_slice(&blob(cache, manifest)).unwrap();
    let gz = blob(cache, m["layers"][0]["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    entries(&tar)
}

/// The versioned package `linux-image-cloud-amd64` depends on
/// (`linux-image-6.1.0-NN-cloud-amd64`).
fn versioned_kernel_package(suite: &str) -> String {
    let mirror = sources::find_mirror(Some(suite)).expect("a Debian apt source");
    let client = Client::for_mirror(&mirror, None);
    let release = client
        .release(suite)
        .unwrap_or_else(|e| panic!("mirror {} unreachable: {e}", mirror.uri));
    let index = client
        .packages(&release, &["main".to_string()], "amd64")
        .unwrap();
    let meta = index
        .get("linux-image-cloud-amd64")
        .max_by(|a, b| a.version.cmp(&b.version))
        .expect("linux-image-cloud-amd64 in the suite");
    meta.depends
        .iter()
        .flatten()
        .map(|d| d.name.clone())
        .find(|n| n.starts_with("linux-image-") && n.ends_with("-cloud-amd64"))
        .expect("the metapackage depends on the versioned kernel")
}

fn package(dir: &Path, yml: &str) -> Package {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("build.yml"), yml).unwrap();
    Package::load(dir, &PkgOptions::default()).unwrap()
}

#[test]
fn kernel_images_from_the_debian_cloud_kernel() {
    let suite = sources::find_mirror(None).unwrap().suite;
    let name = versioned_kernel_package(&suite);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::open(&tmp.path().join("cache")).unwrap();
    let opts = BuildOptions {
        arch: linuxkit_base::Arch::Amd64,
        ..BuildOptions::default()
    };

    // Only the listed package (no initramfs-tools & co.), only a few
    // modules and what they need.
    let p = package(
        &tmp.path().join("kernel"),
        &format!(
            "image: kernel\narches: [amd64]\ndebian:\n  suite: {suite}\n  packages: [{name}]\n  dependencies: false\nkernel:\n  modules: [virtio_net, overlay, veth, \"virtio-bl?\"]\n"
        ),
    );
    let built = build::build(&p, &cache, &opts).unwrap();
    assert_eq!(built.packages.len(), 1, "{:?}", built.packages);
    let k = built.kernel.clone().unwrap();
    let version = k.version.clone();
    assert!(name.ends_with(&version), "{name} vs {version}");
    for m in ["virtio_net", "net_failover", "failover", "overlay", "veth"] {
        assert!(
            k.modules.iter().any(|x| x == m),
            "{m} not in {:?}",
            k.modules
        );
    }
    assert!(k.modules.len() < 20, "{:?}", k.modules);

    let layer = image_layer(&cache, &built.manifest.digest);
    assert_eq!(
        layer.keys().collect::<Vec<_>>(),
        ["System.map", "kernel", "kernel.tar"]
    );
    // An x86 bzImage: the "HdrS" setup header signature at 0x202.
    assert_eq!(&layer["kernel"].2[0x202..0x206], b"HdrS");
    // Debian's System.map (a stub pointing at the -dbg package).
    assert!(
        String::from_utf8_lossy(&layer["System.map"].2).contains("System.map"),
        "the package's System.map"
    );
    let kt = entries(&layer["kernel.tar"].2);
    let md = format!("lib/modules/{version}/");
    assert!(kt.contains_key(&format!("lib/modules/{version}/config")));
    assert!(kt.values().all(|(_, mtime, _)| *mtime == 1_492_533_000));
    let kos: Vec<&String> = kt.keys().filter(|p| p.contains(".ko")).collect();
    assert_eq!(kos.len(), k.modules.len(), "{kos:?}");
    assert!(
        kos.iter()
            .any(|p| p.ends_with("/drivers/net/net_failover.ko")),
        "{kos:?}"
    );
    let dep = String::from_utf8(kt[&format!("{md}modules.dep")].2.clone()).unwrap();
    assert_eq!(dep.lines().count(), k.modules.len(), "{dep}");
    assert!(
        dep.lines()
            .any(|l| l.starts_with("kernel/drivers/net/virtio_net.ko:")
                && l.contains("net_failover.ko")),
        "{dep}"
    );
    let alias = String::from_utf8(kt[&format!("{md}modules.alias")].2.clone()).unwrap();
    assert!(alias.lines().any(|l| l.ends_with(" virtio_net")), "{alias}");
    assert!(
        alias
            .lines()
            .all(|l| l.starts_with('#') || k.modules.iter().any(|m| l.ends_with(&format!(" {m}")))),
        "{alias}"
    );
    assert!(kt.contains_key(&format!("{md}modules.builtin")));
    assert!(
        !kt.keys().any(|p| p.ends_with(".bin")),
        "binary indices dropped"
    );
    // No empty directories left from the dropped modules.
    assert!(
        !kt.keys().any(|p| p.contains("/kernel/sound")),
        "sound is gone"
    );

    // Without `modules:`, every module is kept, and the indices with them.
    let full = package(
        &tmp.path().join("full"),
        &format!(
            "image: kernel-full\narches: [amd64]\ndebian:\n  suite: {suite}\n  packages: [{name}]\n  dependencies: false\nkernel: {{}}\n"
        ),
    );
    let built = build::build(&full, &cache, &opts).unwrap();
    let kf = built.kernel.unwrap();
    assert!(kf.modules.len() > 500, "{}", kf.modules.len());
    let layer = image_layer(&cache, &built.manifest.digest);
    let kt = entries(&layer["kernel.tar"].2);
    // Debian ships no modules.dep (dpkg runs depmod): it is generated.
    let dep = String::from_utf8(kt[&format!("{md}modules.dep")].2.clone()).unwrap();
    assert_eq!(dep.lines().count(), kf.modules.len());
    assert_eq!(
        kt.keys().filter(|p| p.contains(".ko")).count(),
        kf.modules.len()
    );
    assert!(kt.contains_key(&format!("{md}modules.order")));

    // The metapackage alone has no kernel: a clear error.
    let meta = package(
        &tmp.path().join("meta"),
        &format!(
            "image: k\narches: [amd64]\ndebian:\n  suite: {suite}\n  packages: [linux-image-cloud-amd64]\n  dependencies: false\nkernel:\n"
        ),
    );
    let e = build::build(&meta, &cache, &opts).unwrap_err().to_string();
    assert!(
        e.contains("meta/build.yml: `kernel:`: the Debian packages have no boot/vmlinuz-*"),
        "{e}"
    );
}
