//! A package image's SBOM and provenance: what `pkg build` knows went into
//! the image, as an SPDX 2.3 document, and how it was built, as an SLSA v1
//! provenance predicate; both attached to the image as BuildKit attaches
//! its attestations ([`linuxkit_oci::attestation`]).
//!
//! The builder does not scan a finished file system: it records what it
//! put in. Each Debian package (from the `debian.lock` pin: name, version,
//! architecture, the `.deb`'s SHA-256; from the `.deb`: its source package
//! and, where `/usr/share/doc/NAME/copyright` is machine-readable, the
//! licences it names), each crate compiled for a `cargo:` binary (cargo's
//! own list of units, with `Cargo.lock`'s checksums and the crates'
//! declared licences), each module and the Go version of a `go:` binary
//! (its embedded build information, what `go version -m` prints) with the
//! Debian build packages it was built from, and each file `files:` adds,
//! with its digests. The image `CONTAINS` its packages and files;
//! binaries `DEPENDS_ON` what is linked into them, and build-only inputs
//! are `BUILD_DEPENDENCY_OF` them.
//!
//! Nothing in either document depends on when or where it is made, so the
//! same inputs give the same bytes (and `pkg build --verify` can compare
//! them): `created` is `SOURCE_DATE_EPOCH` when the environment sets it
//! (it is then recorded in the provenance), else the reference's fixed
//! build time ([`DEFAULT_CREATED`]). Not the git commit's time: the tag
//! hashes the package's tree, and one tree is reached by many commits,
//! which would give one tag many SBOMs.

use std::collections::{BTreeMap, BTreeSet};

use linuxkit_base::Arch;
use linuxkit_oci::{Descriptor, Digest};
use linuxkit_rootfs::sbom::{
    Checksum, CreationInfo, DATA_LICENSE, DEFAULT_CREATED, DOCUMENT_ID, Document, ExtractedLicense,
    File, LICENSE_LIST_VERSION, NOASSERTION, Package as SpdxPackage, Relationship, SPDX_VERSION,
    spdx_id, spdx_time,
};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::Package;
use crate::cargo::Crate;
use crate::go::BuildInfo;
use crate::lock::LockedDeb;

/// The environment variable that dates the documents (seconds since the
/// epoch), as reproducible-builds.org defines it.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The builder's identity in the provenance.
pub const BUILDER_ID: &str = "https://github.com/linuxkit/linuxkit/pkg-build";

/// What went into one platform's image, as the builder put it there.
#[derive(Debug, Default)]
pub struct Contents {
    /// The image's Debian packages, in the order unpacked.
    pub debs: Vec<Deb>,
    /// The build root of `go:` entries (this machine's architecture).
    pub build_debs: Vec<LockedDeb>,
    /// The `cargo:` binaries.
    pub cargo: Vec<CargoBinary>,
    /// The `go:` binaries.
    pub go: Vec<GoBinary>,
    /// The regular files `files:` added: path in the image, content.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A Debian package of the image.
#[derive(Debug)]
pub struct Deb {
    /// Its pin.
    pub locked: LockedDeb,
    /// Its control file's `Source:` (`name` or `name (version)`).
    pub source: Option<String>,
    /// Its `/usr/share/doc/NAME/copyright`, if it has one.
    pub copyright: Option<Vec<u8>>,
}

/// A `cargo:` binary.
#[derive(Debug)]
pub struct CargoBinary {
    /// Its path in the image.
    pub path: String,
    /// The crate it is a binary of.
    pub package: String,
    /// Its SHA-1 and SHA-256.
    pub digests: (String, String),
    /// The crates compiled for it.
    pub crates: Vec<Crate>,
}

/// A `go:` binary.
#[derive(Debug)]
pub struct GoBinary {
    /// Its path in the image.
    pub path: String,
    /// Its SHA-1 and SHA-256.
    pub digests: (String, String),
    /// Its embedded build information, if it has any.
    pub info: Option<BuildInfo>,
}

/// The SHA-1 and SHA-256 of `bytes`, hex.
pub fn digests(bytes: &[u8]) -> (String, String) {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    (hex(&Sha1::digest(bytes)), hex(&Sha256::digest(bytes)))
}

/// `created` of the documents: `SOURCE_DATE_EPOCH` if set (it must be a
/// number of seconds), else [`DEFAULT_CREATED`].
pub fn created() -> Result<String, String> {
    match std::env::var(SOURCE_DATE_EPOCH) {
        Ok(v) => v.trim().parse::<u64>().map(spdx_time).map_err(|_| {
            format!("{SOURCE_DATE_EPOCH}={v:?} is not a number of seconds since 1970; unset it or give one")
        }),
        Err(_) => Ok(DEFAULT_CREATED.to_string()),
    }
}

/// A purl's version or name part: everything but unreserved characters
/// percent-encoded.
fn purl_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH`.
pub fn deb_purl(d: &LockedDeb) -> String {
    format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_encode(&d.name),
        purl_encode(&d.version),
        purl_encode(&d.architecture)
    )
}

/// The `pkg:docker` purl of a package image for `arch`.
pub fn image_purl(pkg: &Package, arch: Arch) -> String {
    format!(
        "pkg:docker/{}@{}?platform={}",
        pkg.image(),
        purl_encode(&pkg.tag_or_latest()),
        purl_encode(arch.oci_platform())
    )
}

/// Debian short licence names → SPDX identifiers, for the names Debian's
/// copyright files use most that differ from (or are) SPDX's.
fn spdx_license(debian: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("apache-2.0", "Apache-2.0"),
        ("apache-2.0+", "Apache-2.0"),
        ("artistic", "Artistic-1.0-Perl"),
        ("artistic-1.0", "Artistic-1.0"),
        ("artistic-2.0", "Artistic-2.0"),
        ("bsd-2-clause", "BSD-2-Clause"),
        ("bsd-3-clause", "BSD-3-Clause"),
        ("bsd-4-clause", "BSD-4-Clause"),
        ("bsl-1.0", "BSL-1.0"),
        ("cc0-1.0", "CC0-1.0"),
        ("cc-by-4.0", "CC-BY-4.0"),
        ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
        ("expat", "MIT"),
        ("mit", "MIT"),
        ("isc", "ISC"),
        ("zlib", "Zlib"),
        ("mpl-1.1", "MPL-1.1"),
        ("mpl-2.0", "MPL-2.0"),
        ("gpl-1", "GPL-1.0-only"),
        ("gpl-1+", "GPL-1.0-or-later"),
        ("gpl-2", "GPL-2.0-only"),
        ("gpl-2+", "GPL-2.0-or-later"),
        ("gpl-2.0", "GPL-2.0-only"),
        ("gpl-2.0+", "GPL-2.0-or-later"),
        ("gpl-3", "GPL-3.0-only"),
        ("gpl-3+", "GPL-3.0-or-later"),
        ("gpl-3.0", "GPL-3.0-only"),
        ("gpl-3.0+", "GPL-3.0-or-later"),
        ("lgpl-2", "LGPL-2.0-only"),
        ("lgpl-2+", "LGPL-2.0-or-later"),
        ("lgpl-2.1", "LGPL-2.1-only"),
        ("lgpl-2.1+", "LGPL-2.1-or-later"),
        ("lgpl-3", "LGPL-3.0-only"),
        ("lgpl-3+", "LGPL-3.0-or-later"),
        ("lgpl-3.0", "LGPL-3.0-only"),
        ("lgpl-3.0+", "LGPL-3.0-or-later"),
        ("agpl-3", "AGPL-3.0-only"),
        ("agpl-3+", "AGPL-3.0-or-later"),
        ("gfdl-1.2", "GFDL-1.2-only"),
        ("gfdl-1.2+", "GFDL-1.2-or-later"),
        ("gfdl-1.3", "GFDL-1.3-only"),
        ("gfdl-1.3+", "GFDL-1.3-or-later"),
        ("openssl", "OpenSSL"),
        ("python-2.0", "Python-2.0"),
        ("psf-2", "PSF-2.0"),
        ("unicode-dfs-2016", "Unicode-DFS-2016"),
        ("x11", "X11"),
        ("curl", "curl"),
        ("ftl", "FTL"),
        ("0bsd", "0BSD"),
        ("unlicense", "Unlicense"),
        ("wtfpl", "WTFPL"),
    ];
    let d = debian.to_ascii_lowercase();
    TABLE.iter().find(|(k, _)| *k == d).map(|(_, v)| *v)
}

/// A licence name that is not on the SPDX list, as a `LicenseRef-`.
fn license_ref(name: &str) -> String {
    spdx_id(&[name]).replacen("SPDXRef-", "LicenseRef-debian-", 1)
}

/// The licence expression of a machine-readable Debian copyright file:
/// the `License:` of every `Files:` paragraph (and the header's), each as
/// an SPDX expression, joined by `AND`; names not on the SPDX list become
/// `LicenseRef-debian-NAME` (added to `refs`). `None` if the file is not
/// machine-readable or names no licence.
fn copyright_license(text: &str, refs: &mut BTreeSet<String>) -> Option<String> {
    let mut paragraphs = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty());
    let header = paragraphs.next()?;
    if !header.starts_with("Format:") || !header.contains("copyright-format") {
        return None;
    }
    let mut exprs: Vec<String> = Vec::new();
    for p in std::iter::once(header).chain(paragraphs) {
        let is_files = p.lines().any(|l| l.starts_with("Files:"));
        if !(is_files || std::ptr::eq(p, header)) {
            continue;
        }
        let Some(line) = p.lines().find_map(|l| l.strip_prefix("License:")) else {
            continue;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let e = expression(line, refs);
        if !exprs.contains(&e) {
            exprs.push(e);
        }
    }
    match exprs.len() {
        0 => None,
        1 => Some(exprs.remove(0)),
        _ => Some(
            exprs
                .iter()
                .map(|e| {
                    if e.contains(' ') {
                        format!("({e})")
                    } else {
                        e.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

/// One `License:` line (`GPL-2+ or Artistic`, `BSD-3-clause, and MIT`) as
/// an SPDX expression; a line that is not names joined by `and`/`or`
/// (`GPL-2+ with OpenSSL exception`) becomes one `LicenseRef-`.
fn expression(line: &str, refs: &mut BTreeSet<String>) -> String {
    let tokens: Vec<&str> = line
        .split_whitespace()
        .map(|t| t.trim_end_matches(','))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut want_name = true;
    let mut ok = true;
    for t in &tokens {
        let lower = t.to_ascii_lowercase();
        match (want_name, lower.as_str()) {
            (false, "or") => out.push("OR".to_string()),
            (false, "and") => out.push("AND".to_string()),
            (true, "or" | "and" | "with") | (false, _) => {
                ok = false;
                break;
            }
            (true, _) => out.push(match spdx_license(t) {
                Some(id) => id.to_string(),
                None => {
                    let r = license_ref(t);
                    refs.insert(r.clone());
                    r
                }
            }),
        }
        want_name = !want_name;
    }
    if ok && !want_name && !out.is_empty() {
        return out.join(" ");
    }
    let r = license_ref(line);
    refs.insert(r.clone());
    r
}

/// A crate's declared licence as an SPDX expression (`MIT/Apache-2.0`,
/// the old form, is `MIT OR Apache-2.0`), or [`NOASSERTION`] if it is not
/// one we can tell is well formed.
fn crate_license(l: Option<&str>) -> String {
    let Some(l) = l else {
        return NOASSERTION.into();
    };
    let l = l.replace('/', " OR ");
    let well_formed = l
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c))
        && !l.trim().is_empty();
    if well_formed {
        l.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        NOASSERTION.into()
    }
}

/// SPDX identifiers of the things one document names, one each:
/// [`spdx_id`] maps several texts to one (`a-b`, `a/b` and `a_b` alike), so
/// a second thing whose identifier is taken gets `-2`, `-3`, ...; the same
/// thing asked for again gets its own. The order of the questions decides,
/// so a document stays reproducible.
struct Ids {
    by_key: BTreeMap<Vec<String>, String>,
    taken: BTreeSet<String>,
}

impl Ids {
    /// With the document's and the image's identifiers taken.
    fn new(reserved: &[&str]) -> Ids {
        Ids {
            by_key: BTreeMap::new(),
            taken: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The identifier of the thing `parts` names, and whether it is new
    /// (not named before in this document).
    fn get(&mut self, parts: &[&str]) -> (String, bool) {
        let key: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        if let Some(id) = self.by_key.get(&key) {
            return (id.clone(), false);
        }
        let base = spdx_id(parts);
        let mut id = base.clone();
        let mut n = 1;
        while self.taken.contains(&id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        self.taken.insert(id.clone());
        self.by_key.insert(key, id.clone());
        (id, true)
    }
}

/// The SPDX file of `path` (in the image) with `digests`, and whether the
/// document names it for the first time.
fn file(ids: &mut Ids, path: &str, digests: &(String, String)) -> (File, bool) {
    let (spdx_id, new) = ids.get(&["File", path.trim_start_matches('/')]);
    let f = File {
        file_name: format!("./{}", path.trim_start_matches('/')),
        spdx_id,
        checksums: vec![
            Checksum {
                algorithm: "SHA1".into(),
                checksum_value: digests.0.clone(),
            },
            Checksum::sha256(digests.1.clone()),
        ],
        license_concluded: NOASSERTION.into(),
        copyright_text: NOASSERTION.into(),
        comment: None,
    };
    (f, new)
}

fn deb_package(id: String, d: &LockedDeb) -> SpdxPackage {
    let mut p = SpdxPackage::new(id, d.name.clone()).with_purl(deb_purl(d));
    p.version_info = Some(d.version.clone());
    p.supplier = Some("Organization: Debian".into());
    p.checksums = vec![Checksum::sha256(d.sha256.clone())];
    p.comment = Some(format!("{} ({})", d.filename, d.architecture));
    p
}

/// The SPDX document of `pkg`'s image for `arch`, whose platform manifest
/// is `manifest`, made of `contents`, dated `created`.
pub fn document(
    pkg: &Package,
    arch: Arch,
    manifest: &Descriptor,
    contents: &Contents,
    created: &str,
) -> Document {
    let mut packages = Vec::new();
    let mut files = Vec::new();
    let mut rels = Vec::new();
    let mut refs = BTreeSet::new();
    let image_id = "SPDXRef-Image".to_string();
    let mut ids = Ids::new(&[DOCUMENT_ID, &image_id]);
    let mut image =
        SpdxPackage::new(image_id.clone(), pkg.image()).with_purl(image_purl(pkg, arch));
    image.version_info = Some(pkg.tag_or_latest());
    image.primary_package_purpose = Some("CONTAINER".into());
    // SPDX lets only a package whose files were analysed contain files.
    image.files_analyzed = true;
    image.comment = Some(format!("platform manifest {}", manifest.digest));
    packages.push(image);
    rels.push(Relationship::new(DOCUMENT_ID, "DESCRIBES", &image_id));
    for d in &contents.debs {
        let (id, _) = ids.get(&["deb", &d.locked.name, &d.locked.architecture]);
        let mut p = deb_package(id.clone(), &d.locked);
        p.source_info = d
            .source
            .as_ref()
            .map(|s| format!("built package from: {s}"));
        if let Some(l) = d
            .copyright
            .as_deref()
            .and_then(|c| copyright_license(&String::from_utf8_lossy(c), &mut refs))
        {
            p.license_declared = l;
        }
        packages.push(p);
        rels.push(Relationship::new(&image_id, "CONTAINS", &id));
    }
    for c in &contents.cargo {
        let (f, new) = file(&mut ids, &c.path, &c.digests);
        let bin = f.spdx_id.clone();
        if new {
            files.push(f);
        }
        rels.push(Relationship::new(&image_id, "CONTAINS", &bin));
        for k in &c.crates {
            let (id, new) = ids.get(&["crate", &k.name, &k.version]);
            if new {
                let mut p = SpdxPackage::new(id.clone(), k.name.clone());
                p.version_info = Some(k.version.clone());
                p.license_declared = crate_license(k.license.as_deref());
                p.primary_package_purpose = Some("LIBRARY".into());
                if k.from_registry() {
                    p = p.with_purl(format!(
                        "pkg:cargo/{}@{}",
                        purl_encode(&k.name),
                        purl_encode(&k.version)
                    ));
                    p.download_location = format!(
                        "https://crates.io/api/v1/crates/{}/{}/download",
                        k.name, k.version
                    );
                } else if k.source.starts_with("path+") {
                    // Not its path: that is this machine's checkout, and
                    // the document must not depend on where it is.
                    p.comment = Some("a crate of the package's Cargo workspace".into());
                } else {
                    p.comment = Some(format!("from {}", k.source));
                }
                if let Some(sum) = &k.checksum {
                    p.checksums = vec![Checksum::sha256(sum.clone())];
                }
                packages.push(p);
            }
            if k.name == c.package && !k.build_only {
                rels.push(Relationship::new(&bin, "GENERATED_FROM", &id));
            } else if k.build_only {
                rels.push(Relationship::new(&id, "BUILD_DEPENDENCY_OF", &bin));
            } else {
                rels.push(Relationship::new(&bin, "DEPENDS_ON", &id));
            }
        }
    }
    if !contents.go.is_empty() {
        for d in &contents.build_debs {
            let (id, new) = ids.get(&["build-deb", &d.name, &d.architecture]);
            if new {
                packages.push(deb_package(id, d));
            }
        }
    }
    for g in &contents.go {
        let (f, new) = file(&mut ids, &g.path, &g.digests);
        let bin = f.spdx_id.clone();
        if new {
            files.push(f);
        }
        rels.push(Relationship::new(&image_id, "CONTAINS", &bin));
        if let Some(info) = &g.info {
            let version = info.go_version.trim_start_matches("go");
            let (id, new) = ids.get(&["go", "stdlib", version]);
            if new {
                let mut p = SpdxPackage::new(id.clone(), "stdlib")
                    .with_purl(format!("pkg:golang/stdlib@{}", purl_encode(version)));
                p.version_info = Some(version.to_string());
                p.license_declared = "BSD-3-Clause".into();
                packages.push(p);
            }
            rels.push(Relationship::new(&bin, "DEPENDS_ON", &id));
            for (path, version, sum) in &info.deps {
                let (id, new) = ids.get(&["go", path, version]);
                if new {
                    let mut p = SpdxPackage::new(id.clone(), path.clone()).with_purl(format!(
                        "pkg:golang/{}@{}",
                        path.split('/')
                            .map(purl_encode)
                            .collect::<Vec<_>>()
                            .join("/"),
                        purl_encode(version)
                    ));
                    p.version_info = Some(version.clone());
                    if !sum.is_empty() {
                        p.comment = Some(format!("go.sum {sum}"));
                    }
                    packages.push(p);
                }
                rels.push(Relationship::new(&bin, "DEPENDS_ON", &id));
            }
            let mut comment = format!("Go {}, main package {}", info.go_version, info.path);
            for (k, v) in &info.settings {
                comment.push_str(&format!("; {k}={v}"));
            }
            if let Some(f) = files.iter_mut().find(|f| f.spdx_id == bin) {
                f.comment = Some(comment);
            }
        }
        for d in &contents.build_debs {
            let (id, _) = ids.get(&["build-deb", &d.name, &d.architecture]);
            rels.push(Relationship::new(&id, "BUILD_DEPENDENCY_OF", &bin));
        }
    }
    for (path, data) in &contents.files {
        let (f, new) = file(&mut ids, path, &digests(data));
        rels.push(Relationship::new(&image_id, "CONTAINS", &f.spdx_id));
        if new {
            files.push(f);
        }
    }
    let has_extracted_licensing_infos = refs
        .into_iter()
        .map(|id| ExtractedLicense {
            extracted_text: format!(
                "A licence a Debian machine-readable copyright file names `{}`; its text is in that file (/usr/share/doc/PACKAGE/copyright).",
                id.trim_start_matches("LicenseRef-debian-")
            ),
            name: Some(id.trim_start_matches("LicenseRef-debian-").to_string()),
            license_id: id,
        })
        .collect();
    let manifest_hex = Digest::parse(&manifest.digest)
        .map(|d| d.hex().to_string())
        .unwrap_or_default();
    Document {
        spdx_version: SPDX_VERSION.into(),
        data_license: DATA_LICENSE.into(),
        spdx_id: DOCUMENT_ID.into(),
        name: format!("{}:{}", pkg.image(), pkg.tag_or_latest()),
        document_namespace: format!(
            "https://github.com/linuxkit/linuxkit/pkg/{}/sha256-{manifest_hex}",
            pkg.image()
        ),
        creation_info: CreationInfo {
            created: created.to_string(),
            creators: vec![
                "Organization: LinuxKit".into(),
                format!("Tool: linuxkit-{}", env!("CARGO_PKG_VERSION")),
            ],
            license_list_version: Some(LICENSE_LIST_VERSION.into()),
        },
        packages,
        files,
        has_extracted_licensing_infos,
        relationships: rels,
    }
}

/// An SLSA v1 provenance predicate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    build_definition: BuildDefinition,
    run_details: RunDetails,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition {
    build_type: String,
    external_parameters: BTreeMap<String, serde_json::Value>,
    internal_parameters: BTreeMap<String, serde_json::Value>,
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    digest: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunDetails {
    builder: Builder,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct Builder {
    id: String,
    version: BTreeMap<String, String>,
}

/// The build type of our provenance.
pub const BUILD_TYPE: &str = "https://github.com/linuxkit/linuxkit/pkg-build/v1";

/// The provenance of `pkg`'s image for `arch`: `build.yml` and
/// `debian.lock` (their SHA-256 and content), the builder's version, the
/// package's tag and source tree, `SOURCE_DATE_EPOCH` if set, and every
/// input's digest (the `.deb`s, the crates, the files' sources). No times
/// and nothing of this machine, so a rebuild elsewhere gives the same
/// bytes.
pub fn provenance(
    pkg: &Package,
    arch: Arch,
    contents: &Contents,
) -> Result<Provenance, std::io::Error> {
    let mut external = BTreeMap::new();
    let build_yml = std::fs::read(pkg.build_yml_path())?;
    let sha = |b: &[u8]| digests(b).1;
    external.insert(
        "buildYml".to_string(),
        serde_json::json!({
            "path": pkg.build_yml_path().file_name().map(|n| n.to_string_lossy().into_owned()),
            "sha256": sha(&build_yml),
            "content": String::from_utf8_lossy(&build_yml),
        }),
    );
    let lock = crate::lock::Lockfile::path_in(pkg.dir());
    if let Ok(l) = std::fs::read(&lock) {
        external.insert(
            "debianLock".to_string(),
            serde_json::json!({
                "sha256": sha(&l),
                "content": String::from_utf8_lossy(&l),
            }),
        );
    }
    external.insert("image".into(), pkg.image().into());
    external.insert("tag".into(), pkg.tag_or_latest().into());
    external.insert("platform".into(), arch.oci_platform().into());
    if let Ok(v) = std::env::var(SOURCE_DATE_EPOCH) {
        external.insert(SOURCE_DATE_EPOCH.into(), v.into());
    }
    let mut internal = BTreeMap::new();
    internal.insert("hash".to_string(), pkg.hash().into());
    internal.insert("dirty".to_string(), pkg.is_dirty().into());
    let mut deps = Vec::new();
    for d in contents
        .debs
        .iter()
        .map(|d| &d.locked)
        .chain(&contents.build_debs)
    {
        deps.push(ResourceDescriptor {
            uri: Some(deb_purl(d)),
            name: Some(d.filename.clone()),
            digest: BTreeMap::from([("sha256".to_string(), d.sha256.clone())]),
        });
    }
    let mut seen = BTreeSet::new();
    for k in contents.cargo.iter().flat_map(|c| &c.crates) {
        if let Some(sum) = &k.checksum
            && seen.insert((k.name.clone(), k.version.clone()))
        {
            deps.push(ResourceDescriptor {
                uri: Some(format!("pkg:cargo/{}@{}", k.name, k.version)),
                name: None,
                digest: BTreeMap::from([("sha256".to_string(), sum.clone())]),
            });
        }
    }
    for (path, data) in &contents.files {
        deps.push(ResourceDescriptor {
            uri: None,
            name: Some(format!("files:{path}")),
            digest: BTreeMap::from([("sha256".to_string(), sha(data))]),
        });
    }
    Ok(Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.into(),
            external_parameters: external,
            internal_parameters: internal,
            resolved_dependencies: deps,
        },
        run_details: RunDetails {
            builder: Builder {
                id: BUILDER_ID.into(),
                version: BTreeMap::from([(
                    "linuxkit".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                )]),
            },
            metadata: BTreeMap::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_licences_become_spdx_expressions() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\nFiles: *\nCopyright: me\nLicense: GPL-2+ or Artistic\n\nFiles: lib/*\nLicense: BSD-3-clause, and Expat\n\nFiles: odd/*\nLicense: GPL-2+ with OpenSSL exception\n\nFiles: pd/*\nLicense: public-domain\n\nLicense: public-domain\n Some text.\n";
        let mut refs = BTreeSet::new();
        let l = copyright_license(text, &mut refs).unwrap();
        assert_eq!(
            l,
            "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND (BSD-3-Clause AND MIT) AND LicenseRef-debian-GPL-2--with-OpenSSL-exception AND LicenseRef-debian-public-domain"
        );
        assert_eq!(refs.len(), 2);
        assert_eq!(copyright_license("Just text\n", &mut refs), None);
    }

    #[test]
    fn things_whose_ids_would_collide_get_ids_of_their_own() {
        let mut ids = Ids::new(&[DOCUMENT_ID, "SPDXRef-Image"]);
        let (a, new_a) = ids.get(&["File", "usr/lib/a-b"]);
        let (b, new_b) = ids.get(&["File", "usr/lib/a/b"]);
        let (c, _) = ids.get(&["File", "usr/lib/a_b"]);
        assert!(new_a && new_b);
        assert_eq!(a, "SPDXRef-File-usr-lib-a-b");
        assert_eq!(b, "SPDXRef-File-usr-lib-a-b-2");
        assert_eq!(c, "SPDXRef-File-usr-lib-a-b-3");
        // The same thing again: its own identifier, not new.
        assert_eq!(ids.get(&["File", "usr/lib/a/b"]), (b, false));
        // A thing whose natural identifier a renamed one took.
        let (d, _) = ids.get(&["File", "usr/lib/a-b-2"]);
        assert_eq!(d, "SPDXRef-File-usr-lib-a-b-2-2");
        // Reserved identifiers are never handed out.
        assert_eq!(ids.get(&["Image"]).0, "SPDXRef-Image-2");
    }

    #[test]
    fn purls_encode_versions() {
        let d = LockedDeb {
            name: "libstdc++6".into(),
            version: "1:12.2.0-14+deb12u1".into(),
            architecture: "amd64".into(),
            filename: "pool/x.deb".into(),
            size: 1,
            sha256: "00".into(),
        };
        assert_eq!(
            deb_purl(&d),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14%2Bdeb12u1?arch=amd64"
        );
    }

    #[test]
    fn crate_licences() {
        assert_eq!(crate_license(Some("MIT/Apache-2.0")), "MIT OR Apache-2.0");
        assert_eq!(
            crate_license(Some("Apache-2.0 WITH LLVM-exception OR MIT")),
            "Apache-2.0 WITH LLVM-exception OR MIT"
        );
        assert_eq!(crate_license(Some("see LICENSE, it's odd")), NOASSERTION);
        assert_eq!(crate_license(None), NOASSERTION);
    }
}
