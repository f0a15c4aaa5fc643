//! The Debian archive client: version ordering against dpkg's own table,
//! sources parsing, the resolver on real `Packages` stanzas, `.deb` reading,
//! and one real end-to-end run against the host's configured mirror.
//!
//! URIs in these tests use the reserved `.test` domain; the real mirror is
//! only ever read from the host's apt sources.

mod common;

use std::cmp::Ordering;
use std::path::Path;

use linuxkit_pkg::debian::index::Release;
use linuxkit_pkg::debian::relation::parse_relations;
use linuxkit_pkg::debian::{
    Client, DebArchive, DebianError, Dependency, PackageIndex, Relation, ResolveOptions, Version,
    deb, resolve, sources, version,
};

const PACKAGES: &str = include_str!("data/debian/Packages");

/// dpkg's `scripts/t/Dpkg_Version.t` comparison table (all but one row,
/// see below), then the cases of `lib/dpkg/t/t-version.c` expressed as
/// strings. `-1` means a << b.
const DPKG_TABLE: &[(&str, &str, i8)] = &[
    ("1.0-1", "2.0-2", -1),
    ("2.2~rc-4", "2.2-1", -1),
    ("2.2-1", "2.2~rc-4", 1),
    ("1.0000-1", "1.0-1", 0),
    ("1", "0:1", 0),
    ("0", "0:0-0", 0),
    ("2:2.5", "1:7.5", 1),
    ("1:0foo", "0foo", 1),
    ("0:0foo", "0foo", 0),
    ("0foo", "0foo", 0),
    ("0foo-", "0foo", 0),
    ("0foo-", "0foo-0", 0),
    ("0foo", "0fo", 1),
    ("0foo-", "0foo+", -1),
    ("0foo~1", "0foo", -1),
    ("0foo~foo+Bar", "0foo~foo+bar", -1),
    ("0foo~~", "0foo~", -1),
    ("1~", "1", -1),
    (
        "12345+that-really-is-some-ver-0",
        "12345+that-really-is-some-ver-10",
        -1,
    ),
    ("0foo-0", "0foo-01", -1),
    ("0foo.bar", "0foobar", 1),
    ("0foo.bar", "0foo1bar", 1),
    ("0foo.bar", "0foo0bar", 1),
    ("0foo1bar-1", "0foobar-1", -1),
    ("0foo2.0", "0foo2", 1),
    ("0foo2.0.0", "0foo2.10.0", -1),
    ("0foo2.0", "0foo2.0.0", -1),
    ("0foo2.0", "0foo2.10", -1),
    ("0foo2.1", "0foo2.10", -1),
    ("1.09", "1.9", 0),
    ("1.0.8+nmu1", "1.0.8", 1),
    ("3.11", "3.10+nmu1", 1),
    ("0.9j-20080306-4", "0.9i-20070324-2", 1),
    ("1.2.0~b7-1", "1.2.0~b6-1", 1),
    ("1.011-1", "1.06-2", 1),
    ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1),
    ("4.6.99+svn6582-1", "4.6.99+svn6496-1", 1),
    ("53", "52", 1),
    ("0.9.9~pre122-1", "0.9.9~pre111-1", 1),
    ("2:2.3.2-2+lenny2", "2:2.3.2-2", 1),
    ("1:3.8.1-1", "3.8.GA-1", 1),
    ("1.0.1+gpl-1", "1.0.1-2", 1),
    ("1a", "1000a", -1),
    // Omitted from the Perl table: ("-0.6.5", "0.9.1", -1). dpkg's C parser
    // (t-version.c: "-0" is invalid) rejects an empty upstream part, and so
    // does Version::parse; see `version_parse_rejects`.
    // t-version.c, test_version_compare / test_version_parse:
    ("0-00", "00-0", 0),
    ("1:2-3", "1:2-3", 0),
    ("0-0", "1:0-0", -1),
    ("a-0", "b-0", -1),
    ("0-a", "0-b", -1),
    ("1-1", "2-1", -1),
    ("1-1", "1-2", -1),
    ("0:0.0-0.0", "0.0-0.0", 0),
    ("5:1", "5:1-", 0),
];

#[test]
fn version_table_matches_dpkg() {
    assert!(DPKG_TABLE.len() >= 40);
    for &(a, b, want) in DPKG_TABLE {
        let want = want.cmp(&0);
        assert_eq!(version::compare(a, b).unwrap(), want, "{a} vs {b}");
        assert_eq!(
            version::compare(b, a).unwrap(),
            want.reverse(),
            "{b} vs {a}"
        );
        // The relations agree with the ordering, as in Dpkg_Version.t's truth table.
        let (va, vb) = (Version::parse(a).unwrap(), Version::parse(b).unwrap());
        for (rel, holds) in [
            (Relation::Lt, want == Ordering::Less),
            (Relation::Le, want != Ordering::Greater),
            (Relation::Eq, want == Ordering::Equal),
            (Relation::Ge, want != Ordering::Less),
            (Relation::Gt, want == Ordering::Greater),
        ] {
            assert_eq!(va.satisfies(rel, &vb), holds, "{a} {rel} {b}");
        }
    }
}

#[test]
fn version_parse_and_display() {
    let v = Version::parse(" 1:1.35.0-4+deb12u1+b1\t").unwrap();
    assert_eq!((v.epoch, v.upstream.as_str()), (1, "1.35.0"));
    assert_eq!(v.revision, "4+deb12u1+b1");
    assert_eq!(v.to_string(), "1:1.35.0-4+deb12u1+b1");
    // Multiple hyphens and colons, as in t-version.c.
    let v = Version::parse("0:0:0-0-0").unwrap();
    assert_eq!(
        (v.epoch, v.upstream.as_str(), v.revision.as_str()),
        (0, "0:0-0", "0")
    );
    // The obsolete `<` and `>` mean `<=` and `>=`, not strict.
    assert_eq!(Relation::parse("<"), Some(Relation::Le));
    assert_eq!(Relation::parse(">"), Some(Relation::Ge));
}

#[test]
fn version_parse_rejects() {
    for bad in [
        "",
        "  ",
        "0:",
        "0:0 0-1",
        "-1:0-1",
        "999999999999999999999999:0-1",
        "a:0-0",
        "-0",
        "0:-0",
    ] {
        assert!(Version::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn sources_deb822_and_one_line() {
    let deb822 = "Types: deb\n# a comment\nURIs: http://archive.test/debian/\nSuites: bookworm bookworm-updates\nComponents: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://src.test/debian\nSuites: trixie\n\nTypes: deb\nEnabled: no\nURIs: http://off.test/debian\nSuites: trixie\n\nTypes: deb\nURIs: http://sec.test/debian-security\nSuites: bookworm-security\nComponents: main\n";
    let srcs = sources::parse_deb822(deb822).unwrap();
    assert_eq!(srcs.len(), 3, "the disabled paragraph is dropped");
    assert_eq!(srcs[0].suites, ["bookworm", "bookworm-updates"]);
    assert_eq!(
        srcs[0].signed_by.as_deref(),
        Some("/usr/share/keyrings/debian-archive-keyring.gpg")
    );
    let m = sources::select(&srcs, Some("bookworm-updates")).unwrap();
    assert_eq!(m.uri, "http://archive.test/debian");
    assert_eq!(m.components, ["main", "contrib"]);
    // deb-src entries never serve binaries.
    assert!(sources::select(&srcs, Some("trixie")).is_none());
    assert_eq!(
        sources::select(&srcs, Some("bookworm-security"))
            .unwrap()
            .uri,
        "http://sec.test/debian-security"
    );
    assert_eq!(sources::select(&srcs, None).unwrap().suite, "bookworm");

    let one = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://one.test/debian bookworm main non-free\ndeb-src http://one.test/debian bookworm main\n";
    let srcs = sources::parse_one_line(one).unwrap();
    assert_eq!(srcs.len(), 2);
    assert_eq!(srcs[0].signed_by.as_deref(), Some("/k.gpg"));
    assert_eq!(srcs[0].components, ["main", "non-free"]);

    // The override replaces the URI, keeps the suite and components.
    let m =
        sources::select_with_override(&srcs, None, Some("http://override.test/debian/")).unwrap();
    assert_eq!(
        (m.uri.as_str(), m.suite.as_str()),
        ("http://override.test/debian", "bookworm")
    );
    let e = sources::select_with_override(&srcs, Some("sid"), None).unwrap_err();
    assert!(
        e.to_string().contains("sid") && e.to_string().contains(sources::MIRROR_ENV),
        "{e}"
    );
}

#[test]
fn release_clearsigned_body() {
    let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: oldstable\nCodename: bookworm\nAcquire-By-Hash: yes\nArchitectures: all amd64\nComponents: main\nSHA256:\n 9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5  8790396 main/binary-amd64/Packages.xz\n- -dash-escaped: line\n-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n";
    let r = Release::parse(text, "bookworm").unwrap();
    assert_eq!(r.codename.as_deref(), Some("bookworm"));
    assert!(r.acquire_by_hash);
    assert_eq!(
        r.sha256["main/binary-amd64/Packages.xz"],
        (
            8790396,
            "9e0b5aabb2465b3d2e7a7fe27f9913846277833f7a2826e7767acccff5b588c5".to_owned()
        )
    );
    assert!(Release::parse("-----BEGIN PGP SIGNED MESSAGE-----\n\nSHA256:\n", "x").is_err());
}

fn index() -> PackageIndex {
    PackageIndex::parse(PACKAGES, "bookworm/amd64", "amd64").unwrap()
}

fn names(pkgs: &[&linuxkit_pkg::debian::Package]) -> Vec<String> {
    pkgs.iter().map(|p| p.name.clone()).collect()
}

fn deps(list: &str) -> Vec<Dependency> {
    parse_relations(list)
        .unwrap()
        .into_iter()
        .map(|mut g| g.remove(0))
        .collect()
}

#[test]
fn packages_stanzas_parse() {
    let idx = index();
    let libgcc = idx.get("libgcc-s1").next().unwrap();
    assert_eq!(libgcc.depends.len(), 2);
    assert_eq!(
        libgcc.depends[0][0].to_string(),
        "gcc-12-base (= 12.2.0-14+deb12u1)"
    );
    assert_eq!(
        libgcc.provides[0].version.as_ref().unwrap().to_string(),
        "1:12.2.0-14+deb12u1"
    );
    let dash = idx.get("dash").next().unwrap();
    assert!(dash.essential);
    assert_eq!(dash.pre_depends[0][0].name, "libc6");
    assert_eq!(idx.providers("awk").count(), 2);
}

#[test]
fn resolve_closes_over_depends_sorted() {
    let idx = index();
    let got = resolve(&idx, &deps("libc6"), &ResolveOptions::default()).unwrap();
    // libc6 -> libgcc-s1 -> gcc-12-base, libc6 (a cycle, already selected).
    assert_eq!(names(&got), ["gcc-12-base", "libc6", "libgcc-s1"]);
    let got = resolve(
        &idx,
        &deps("busybox-static (>= 1:1.30)"),
        &ResolveOptions::default(),
    )
    .unwrap();
    assert_eq!(names(&got), ["busybox-static"]);
}

#[test]
fn resolve_virtual_and_versioned_provides() {
    let idx = index();
    // Two providers of awk: mawk (Priority: required) wins over gawk.
    let got = resolve(&idx, &deps("awk"), &ResolveOptions::default()).unwrap();
    assert_eq!(names(&got), ["gcc-12-base", "libc6", "libgcc-s1", "mawk"]);
    // Versioned Provides: libgcc-s1 provides libgcc1 (= 1:12.2.0-14+deb12u1).
    let got = resolve(&idx, &deps("libgcc1 (>= 1:10)"), &ResolveOptions::default()).unwrap();
    assert!(names(&got).contains(&"libgcc-s1".to_owned()));
    let e = resolve(&idx, &deps("libgcc1 (>= 2:0)"), &ResolveOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("libgcc-s1 provides libgcc1 1:12.2.0-14+deb12u1"),
        "{e}"
    );
    // Unversioned Provides never satisfy a versioned dependency.
    assert!(resolve(&idx, &deps("awk (>= 1)"), &ResolveOptions::default()).is_err());
}

#[test]
fn resolve_alternatives_prefer_selected() {
    // `nosuch | mawk`: the first satisfiable alternative, mawk, is taken.
    // `gawk | mawk`: gawk would be tried first and fail (its libraries are
    // not in the excerpt), but mawk is already selected, so nothing more is
    // needed.
    let text = PACKAGES.to_owned()
        + "Package: uses-alt\nVersion: 1\nArchitecture: all\nDepends: nosuch | mawk, gawk | mawk\nFilename: pool/u.deb\nSize: 1\nSHA256: 00\n";
    let idx2 = PackageIndex::parse(&text, "bookworm/amd64", "amd64").unwrap();
    let got = resolve(&idx2, &deps("uses-alt"), &ResolveOptions::default()).unwrap();
    assert_eq!(
        names(&got),
        ["gcc-12-base", "libc6", "libgcc-s1", "mawk", "uses-alt"]
    );
}

#[test]
fn resolve_arch_qualifiers() {
    let idx = index();
    assert!(resolve(&idx, &deps("libc6:native"), &ResolveOptions::default()).is_ok());
    assert!(resolve(&idx, &deps("libc6:amd64"), &ResolveOptions::default()).is_ok());
    // libc6 is Multi-Arch: same, not allowed: `:any` cannot use it (dpkg's rule).
    let e = resolve(&idx, &deps("libc6:any"), &ResolveOptions::default()).unwrap_err();
    assert!(
        e.to_string().starts_with("libc6:any: no version of libc6"),
        "{e}"
    );
    assert!(resolve(&idx, &deps("libc6:arm64"), &ResolveOptions::default()).is_err());
}

#[test]
fn resolve_essential_only_skipped_on_request() {
    let idx = index();
    let reqs = deps("mawk, debianutils");
    let all = resolve(&idx, &reqs, &ResolveOptions::default()).unwrap();
    assert_eq!(
        names(&all),
        ["debianutils", "gcc-12-base", "libc6", "libgcc-s1", "mawk"]
    );
    let skip = resolve(
        &idx,
        &reqs,
        &ResolveOptions {
            skip_essential: true,
            ..ResolveOptions::default()
        },
    )
    .unwrap();
    assert_eq!(names(&skip), ["gcc-12-base", "libc6", "libgcc-s1", "mawk"]);
    // `dependencies: false`: the requests alone.
    let only = resolve(
        &idx,
        &reqs,
        &ResolveOptions {
            no_dependencies: true,
            ..ResolveOptions::default()
        },
    )
    .unwrap();
    assert_eq!(names(&only), ["debianutils", "mawk"]);
}

#[test]
fn resolve_errors_name_suite_matches_and_chain() {
    let idx = index();
    let e = resolve(&idx, &deps("busybox-statik"), &ResolveOptions::default()).unwrap_err();
    match &e {
        DebianError::UnknownPackage {
            suite, suggestions, ..
        } => {
            assert_eq!(suite, "bookworm/amd64");
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("busybox-static")
            );
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("did you mean busybox-static"), "{e}");

    // dash -> dpkg: dpkg is not in the excerpt.
    let e = resolve(&idx, &deps("dash"), &ResolveOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "dash -> dpkg (>= 1.19.1): no package dpkg in bookworm/amd64"
    );

    // A version that is too old somewhere down the chain.
    let old = PACKAGES.replace(
        "Package: gcc-12-base\nSource: gcc-12\nVersion: 12.2.0-14+deb12u1",
        "Package: gcc-12-base\nSource: gcc-12\nVersion: 12.2.0-13",
    );
    assert_ne!(old, PACKAGES);
    let idx = PackageIndex::parse(&old, "bookworm/amd64", "amd64").unwrap();
    let e = resolve(
        &idx,
        &deps("busybox-static, libgcc-s1"),
        &ResolveOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "libgcc-s1 -> gcc-12-base (= 12.2.0-14+deb12u1): no version of gcc-12-base satisfies gcc-12-base (= 12.2.0-14+deb12u1); available: 12.2.0-13 (amd64)"
    );
}

/// Writes a minimal `.deb` with `ar`, so the reader is tested without the network.
fn fake_deb(dir: &std::path::Path) -> std::path::PathBuf {
    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }
    let control = tar_of(&[(
        "./control",
        b"Package: fake\nVersion: 1.0-1\nArchitecture: all\n",
    )]);
    let data = tar_of(&[("./bin/fake", b"#!/bin/sh\n"), ("./etc/odd", b"x")]);
    let ar = common::deb_bytes(&control, &data);
    let p = dir.join("fake.deb");
    std::fs::write(&p, ar).unwrap();
    p
}

#[test]
fn deb_reader_on_a_hand_made_archive() {
    let dir = tempfile::tempdir().unwrap();
    let deb = DebArchive::open(&fake_deb(dir.path())).unwrap();
    let names: Vec<_> = deb.members().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["debian-binary", "control.tar.gz", "data.tar.zst"]);
    assert_eq!(deb.control().unwrap().get("package"), Some("fake"));
    assert_eq!(deb.data_paths().unwrap(), ["bin/fake", "etc/odd"]);

    std::fs::write(dir.path().join("bad.deb"), b"!<arch>\nnot a header").unwrap();
    assert!(DebArchive::open(&dir.path().join("bad.deb")).is_err());
    let mut cur = std::io::Cursor::new(b"PK\x03\x04".to_vec());
    assert!(deb::read_ar_members(&mut cur).is_err());
}

/// The real thing, against the mirror in the host's apt sources (or
/// `LINUXKIT_DEBIAN_MIRROR`). It fails, rather than skips, when the mirror
/// is unreachable: CI has it, and a silent skip would hide a broken client.
#[test]
fn end_to_end_against_the_configured_mirror() {
    let mirror = sources::find_mirror(None).expect("the host has a Debian apt source");
    let cache = tempfile::tempdir().unwrap();

    let run = |client: &Client| {
        let release = client
            .release(&mirror.suite)
            .unwrap_or_else(|e| panic!("mirror {} unreachable or broken: {e}", mirror.uri));
        assert!(
            release
                .sha256
                .keys()
                .any(|k| k.starts_with("main/binary-amd64/Packages"))
        );
        let idx = client
            .packages(&release, &["main".to_owned()], "amd64")
            .unwrap();
        assert!(idx.packages().len() > 10_000, "a whole suite was indexed");
        let got = resolve(&idx, &deps("busybox-static"), &ResolveOptions::default()).unwrap();
        assert_eq!(names(&got), ["busybox-static"]);
        let deb = client.deb(got[0]).unwrap();
        assert_eq!(
            deb.control().unwrap().get("Package"),
            Some("busybox-static")
        );
        assert!(deb.data_paths().unwrap().iter().any(|p| p == "bin/busybox"));
        // The bytes on disk are the ones the index promised.
        assert_eq!(
            linuxkit_pkg::debian::index::hash_file(deb.path()).unwrap(),
            got[0].sha256
        );
        got[0].clone()
    };

    let first = Client::for_mirror(&mirror, Some(cache.path().to_owned()));
    let pkg = run(&first);
    assert_eq!(first.network_fetches(), 3, "InRelease, Packages, the .deb");

    // Same cache, new client: nothing touches the network.
    let second = Client::for_mirror(&mirror, Some(cache.path().to_owned()));
    run(&second);
    assert_eq!(second.network_fetches(), 0, "served from the cache");

    // A wrong hash is refused, and nothing is cached under it.
    let mut liar = pkg.clone();
    liar.sha256 = "0".repeat(64);
    let e = second.deb(&liar).unwrap_err();
    assert!(matches!(e, DebianError::HashMismatch { .. }), "{e}");
    assert!(
        !cache
            .path()
            .join("by-hash/sha256")
            .join("0".repeat(64))
            .exists()
    );
    assert_eq!(second.network_fetches(), 1);
}

/// Serves `body` for any GET on a loopback port, for `n` requests; returns
/// the base URI.
fn serve(body: Vec<u8>, n: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let mut s = stream.unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/debian")
}

/// The signature of `InRelease` is checked against Debian's archive
/// keyring: the real file verifies; one changed byte in the signed text is
/// refused, and nothing is cached.
#[test]
fn inrelease_signatures_are_verified_against_the_keyring() {
    use linuxkit_pkg::debian::verify::{DEFAULT_KEYRING, Keyring, keyring_path};
    let mirror = sources::find_mirror(None).expect("the host has a Debian apt source");
    let cache = tempfile::tempdir().unwrap();
    let client = Client::for_mirror(&mirror, Some(cache.path().to_owned()));
    client
        .release(&mirror.suite)
        .unwrap_or_else(|e| panic!("mirror {} unreachable or broken: {e}", mirror.uri));
    let cached = walk(cache.path())
        .into_iter()
        .find(|p| p.ends_with("InRelease"))
        .expect("InRelease cached");
    let text = std::fs::read_to_string(&cached).unwrap();

    let keyring = Keyring::load(client.keyring_path()).unwrap();
    let body = keyring.verify_cleartext(&text, "InRelease").unwrap();
    assert!(body.contains(&format!("Codename: {}", mirror.suite)) || body.contains("Suite: "));
    let tampered = text.replacen("\nSHA256:\n", "\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 1 main/evil\n", 1);
    assert_ne!(tampered, text);
    let e = keyring
        .verify_cleartext(&tampered, "InRelease")
        .unwrap_err();
    assert!(matches!(e, DebianError::BadSignature { .. }), "{e}");
    assert!(e.to_string().contains("refusing to use it"), "{e}");

    // Served by a "mirror": refused, and not cached.
    let evil_cache = tempfile::tempdir().unwrap();
    let evil = Client::new(&serve(tampered.into_bytes(), 1), evil_cache.path());
    let e = evil.release(&mirror.suite).unwrap_err();
    assert!(matches!(e, DebianError::BadSignature { .. }), "{e}");
    assert!(walk(evil_cache.path()).is_empty(), "nothing cached");

    // An unsigned file is not a release either.
    let evil = Client::new(&serve(body.into_bytes(), 1), evil_cache.path());
    let e = evil.release(&mirror.suite).unwrap_err();
    assert!(matches!(e, DebianError::BadSignature { .. }), "{e}");

    // A missing keyring says what to install.
    let e = Client::new("http://127.0.0.1:9/debian", evil_cache.path())
        .keyring(evil_cache.path().join("none.gpg"))
        .release(&mirror.suite)
        .unwrap_err();
    assert!(
        e.to_string().contains("debian-archive-keyring")
            && e.to_string().contains("LINUXKIT_DEBIAN_KEYRING"),
        "{e}"
    );
    if std::env::var_os("LINUXKIT_DEBIAN_KEYRING").is_none() {
        assert_eq!(
            keyring_path(Some("/etc/apt/keyrings/x.gpg")),
            Path::new("/etc/apt/keyrings/x.gpg")
        );
        assert_eq!(
            keyring_path(Some("-----BEGIN PGP")),
            Path::new(DEFAULT_KEYRING)
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
