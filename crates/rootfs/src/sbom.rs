//! SBOMs: the SPDX 2.3 JSON document types (one home for them: `pkg
//! build` generates documents with them, `build` consolidates them), and
//! the consolidated SBOM `build` writes into the root filesystem.
//!
//! The reference's `linuxkit build` reads the SPDX documents attested for
//! each image it unpacks (BuildKit's attestations, read here by
//! [`Cache::sboms`](linuxkit_oci::Cache::sboms)), in the order it unpacks
//! them (kernel, init, volumes, onboot, onshutdown, services; an image a
//! container repeats counts once), prefixes each file name (and each
//! package's file name) with where the image is unpacked, and concatenates
//! their packages, files, extracted licences, relationships, annotations
//! and external document references into one document, written last into
//! the root filesystem at `--sbom-output` (`sbom.spdx.json`, mode 0644,
//! root's, the reference's fixed mtime). We do the same, with four
//! deliberate differences (docs/sbom.md):
//!
//! - the document namespace is derived from the document's content, not a
//!   random UUID, so that a build stays byte-reproducible;
//! - an `SPDXID` two documents share (two images with the same Debian
//!   package) is made unique by a suffix in the later one, with its
//!   relationships, where the reference repeats it (a document the SPDX
//!   validator refuses); an extracted licence two documents both declare
//!   is kept once;
//! - `documentDescribes` (SPDX 2.2's form) becomes `DESCRIBES`
//!   relationships, as the reference's SPDX library reads it;
//! - a relative file name keeps its leading `./` after the prefix (the
//!   reference's `filepath.Join` drops it, and SPDX 2.3 asks for it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entry::{DEFAULT_MTIME, Entry};

/// `spdxVersion` of the documents we write.
pub const SPDX_VERSION: &str = "SPDX-2.3";
/// `dataLicense` of every SPDX document.
pub const DATA_LICENSE: &str = "CC0-1.0";
/// The document's own identifier.
pub const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
/// What SPDX says where a value is not known.
pub const NOASSERTION: &str = "NOASSERTION";
/// The default `--sbom-output`: the file's path in the root filesystem.
pub const DEFAULT_SBOM_OUTPUT: &str = "sbom.spdx.json";
/// The reference's fixed build time (its `defaultModTime`), the
/// consolidated document's `created` without `--sbom-current-time`.
pub const DEFAULT_CREATED: &str = "2017-04-18T16:30:00Z";
/// The SPDX licence list version the reference states.
pub const LICENSE_LIST_VERSION: &str = "3.20";

/// An SPDX 2.3 document, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// [`SPDX_VERSION`].
    pub spdx_version: String,
    /// [`DATA_LICENSE`].
    pub data_license: String,
    /// [`DOCUMENT_ID`].
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// The document's name.
    pub name: String,
    /// A URI unique to this document.
    pub document_namespace: String,
    /// Who made it, and when.
    pub creation_info: CreationInfo,
    /// The packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    /// The files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<File>,
    /// The `LicenseRef-` licences the document uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has_extracted_licensing_infos: Vec<ExtractedLicense>,
    /// The relationships between its elements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<Relationship>,
}

impl Document {
    /// The document as stored: compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a document serializes")
    }
}

/// `creationInfo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationInfo {
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created: String,
    /// `Tool: name-version`, `Organization: name`.
    pub creators: Vec<String>,
    /// The SPDX licence list version the licence identifiers are from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_list_version: Option<String>,
}

/// A package: a Debian package, a Go module, a crate, a built binary, the
/// image itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// Its name.
    pub name: String,
    /// `SPDXRef-...`, unique in the document.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    /// The file it came as (a `.deb`'s pool path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_file_name: Option<String>,
    /// Who supplies it (`Organization: Debian`), or [`NOASSERTION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// Where it can be downloaded, or [`NOASSERTION`].
    pub download_location: String,
    /// Whether its files were analysed (they are listed as files of
    /// their own where they are).
    pub files_analyzed: bool,
    /// Its checksums (a `.deb`'s SHA-256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    /// Where it was built from (a Debian source package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    /// The licence concluded, or [`NOASSERTION`].
    pub license_concluded: String,
    /// The licence its authors declare, or [`NOASSERTION`].
    pub license_declared: String,
    /// Copyright notices, or [`NOASSERTION`].
    pub copyright_text: String,
    /// A purl and the like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    /// `CONTAINER`, `LIBRARY`, `APPLICATION`, `SOURCE`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<String>,
    /// Anything else worth saying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Package {
    /// A package named `name` with everything unknown; set what is known.
    pub fn new(spdx_id: String, name: impl Into<String>) -> Package {
        Package {
            name: name.into(),
            spdx_id,
            version_info: None,
            package_file_name: None,
            supplier: None,
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: Vec::new(),
            source_info: None,
            license_concluded: NOASSERTION.into(),
            license_declared: NOASSERTION.into(),
            copyright_text: NOASSERTION.into(),
            external_refs: Vec::new(),
            primary_package_purpose: None,
            comment: None,
        }
    }

    /// Adds `purl` as the package's package-manager reference.
    pub fn with_purl(mut self, purl: String) -> Package {
        self.external_refs.push(ExternalRef {
            reference_category: "PACKAGE-MANAGER".into(),
            reference_type: "purl".into(),
            reference_locator: purl,
        });
        self
    }
}

/// A file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// Its path in the image, `./`-relative as SPDX writes it.
    pub file_name: String,
    /// `SPDXRef-...`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// At least its SHA-1 (SPDX requires one); its SHA-256.
    pub checksums: Vec<Checksum>,
    /// The licence concluded, or [`NOASSERTION`].
    pub license_concluded: String,
    /// Copyright notices, or [`NOASSERTION`].
    pub copyright_text: String,
    /// Anything else worth saying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    /// `SHA1`, `SHA256`, ...
    pub algorithm: String,
    /// Lower-case hex.
    pub checksum_value: String,
}

impl Checksum {
    /// A SHA-256 checksum.
    pub fn sha256(hex: impl Into<String>) -> Checksum {
        Checksum {
            algorithm: "SHA256".into(),
            checksum_value: hex.into(),
        }
    }
}

/// An external reference (a purl).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    /// `PACKAGE-MANAGER`.
    pub reference_category: String,
    /// `purl`.
    pub reference_type: String,
    /// The purl.
    pub reference_locator: String,
}

/// A relationship: `element relationship_type related`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// The subject's `SPDXID`.
    pub spdx_element_id: String,
    /// `DESCRIBES`, `CONTAINS`, `GENERATED_FROM`, ...
    pub relationship_type: String,
    /// The object's `SPDXID`.
    pub related_spdx_element: String,
}

impl Relationship {
    /// `a kind b`.
    pub fn new(a: &str, kind: &str, b: &str) -> Relationship {
        Relationship {
            spdx_element_id: a.into(),
            relationship_type: kind.into(),
            related_spdx_element: b.into(),
        }
    }
}

/// A licence not on the SPDX list, named `LicenseRef-...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractedLicense {
    /// `LicenseRef-...`.
    pub license_id: String,
    /// The licence's text, or what stands for it.
    pub extracted_text: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An `SPDXRef-` identifier from any text: SPDX allows letters, digits,
/// `.` and `-`; everything else becomes `-`.
pub fn spdx_id(parts: &[&str]) -> String {
    let mut id = String::from("SPDXRef");
    for p in parts {
        id.push('-');
        id.extend(p.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        }));
    }
    id
}

/// Go's `path.Join(prefix, name)` (what the reference applies to every
/// file name): the two joined by `/` and cleaned; empty if both are.
fn go_join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() && name.is_empty() {
        return String::new();
    }
    let joined = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    };
    let rooted = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    match (rooted, out.is_empty()) {
        (true, _) => format!("/{}", out.join("/")),
        (false, true) => ".".into(),
        (false, false) => out.join("/"),
    }
}

/// The documents of every image, in unpacking order, merged into one.
#[derive(Debug, Default)]
pub struct Consolidated {
    packages: Vec<Value>,
    files: Vec<Value>,
    licenses: Vec<Value>,
    license_ids: BTreeSet<String>,
    relationships: Vec<Value>,
    annotations: Vec<Value>,
    external_refs: Vec<Value>,
    ids: BTreeSet<String>,
}

fn array(doc: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match doc.remove(key) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

impl Consolidated {
    /// Adds the document `doc` of an image unpacked at `prefix` (`""` at
    /// the root, `containers/services/NAME/rootfs/` for a container);
    /// `what` names the image in errors.
    pub fn add(&mut self, what: &str, prefix: &str, doc: Value) -> crate::Result<()> {
        let Value::Object(mut doc) = doc else {
            return Err(crate::Error::Other(format!(
                "the SBOM attested for {what} is not a JSON object"
            )));
        };
        let mut packages = array(&mut doc, "packages");
        let mut files = array(&mut doc, "files");
        // Identifiers this document uses that an earlier one has: renamed,
        // to names neither an earlier document nor this one uses.
        let own: std::collections::BTreeSet<String> = packages
            .iter()
            .chain(files.iter())
            .filter_map(|e| e.get("SPDXID").and_then(Value::as_str).map(str::to_string))
            .collect();
        let mut renamed: BTreeMap<String, String> = BTreeMap::new();
        for e in packages.iter_mut().chain(files.iter_mut()) {
            let Some(id) = e.get("SPDXID").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let mut new = id.clone();
            let mut n = 1;
            while self.ids.contains(&new)
                || renamed.values().any(|v| *v == new)
                || (new != id && own.contains(&new))
            {
                n += 1;
                new = format!("{id}-{n}");
            }
            if new != id {
                e["SPDXID"] = Value::String(new.clone());
                renamed.insert(id, new);
            }
        }
        let rename = |v: &mut Value| {
            if let Some(s) = v.as_str()
                && let Some(n) = renamed.get(s)
            {
                *v = Value::String(n.clone());
            }
        };
        for f in &mut files {
            if let Some(Value::String(name)) = f.get_mut("fileName") {
                // As the reference, then `./` again before a relative
                // name, which SPDX 2.3 asks of every file name (the
                // reference's join drops it).
                let joined = go_join(prefix, name);
                *name = if joined.starts_with('/') || joined.is_empty() {
                    joined
                } else {
                    format!("./{}", joined.trim_start_matches("./"))
                };
            }
        }
        for p in &mut packages {
            let Value::Object(p) = p else { continue };
            let name = p
                .get("packageFileName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let joined = go_join(prefix, name);
            if joined.is_empty() {
                p.remove("packageFileName");
            } else {
                p.insert("packageFileName".into(), Value::String(joined));
            }
            if let Some(Value::Array(has)) = p.get_mut("hasFiles") {
                has.iter_mut().for_each(rename);
            }
        }
        let mut relationships = array(&mut doc, "relationships");
        for id in array(&mut doc, "documentDescribes") {
            relationships.push(serde_json::json!({
                "spdxElementId": DOCUMENT_ID,
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": id,
            }));
        }
        for r in &mut relationships {
            for k in ["spdxElementId", "relatedSpdxElement"] {
                if let Some(v) = r.get_mut(k) {
                    rename(v);
                }
            }
        }
        let mut annotations = array(&mut doc, "annotations");
        for a in &mut annotations {
            if let Some(v) = a.get_mut("spdxElementId") {
                rename(v);
            }
        }
        for l in array(&mut doc, "hasExtractedLicensingInfos") {
            let id = l
                .get("licenseId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if self.license_ids.insert(id) {
                self.licenses.push(l);
            }
        }
        for e in packages.iter().chain(&files) {
            if let Some(id) = e.get("SPDXID").and_then(Value::as_str) {
                self.ids.insert(id.to_string());
            }
        }
        self.packages.extend(packages);
        self.files.extend(files);
        self.relationships.extend(relationships);
        self.annotations.extend(annotations);
        self.external_refs
            .extend(array(&mut doc, "externalDocumentRefs"));
        Ok(())
    }

    /// The consolidated document, created at `created`
    /// (`YYYY-MM-DDThh:mm:ssZ`), as the bytes written into the image. Its
    /// namespace is derived from everything else in it.
    pub fn finish(self, created: &str) -> Vec<u8> {
        let mut doc = Map::new();
        doc.insert("spdxVersion".into(), SPDX_VERSION.into());
        doc.insert("dataLicense".into(), DATA_LICENSE.into());
        doc.insert("SPDXID".into(), DOCUMENT_ID.into());
        doc.insert("name".into(), "sbom".into());
        doc.insert("documentNamespace".into(), Value::Null);
        doc.insert(
            "creationInfo".into(),
            serde_json::json!({
                "licenseListVersion": LICENSE_LIST_VERSION,
                "creators": ["Organization: LinuxKit", "Tool: linuxkit"],
                "created": created,
            }),
        );
        for (k, v) in [
            ("packages", self.packages),
            ("files", self.files),
            ("hasExtractedLicensingInfos", self.licenses),
            ("relationships", self.relationships),
            ("annotations", self.annotations),
            ("externalDocumentRefs", self.external_refs),
        ] {
            if !v.is_empty() {
                doc.insert(k.into(), Value::Array(v));
            }
        }
        let content = serde_json::to_vec(&doc).expect("a document serializes");
        let hash = linuxkit_oci::Digest::of(&content);
        doc.insert(
            "documentNamespace".into(),
            Value::String(format!(
                "https://github.com/linuxkit/linuxkit/sbom-{}",
                uuid_of(hash.hex())
            )),
        );
        serde_json::to_vec(&doc).expect("a document serializes")
    }
}

/// A version-5-shaped UUID from the first 32 hex digits of a hash.
fn uuid_of(hex: &str) -> String {
    let h: Vec<char> = hex.chars().take(32).collect();
    let s = |a: usize, b: usize| h[a..b].iter().collect::<String>();
    // Version 5 (name-based), RFC 4122 variant.
    let variant = match h[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    format!(
        "{}-{}-5{}-{variant}{}-{}",
        s(0, 8),
        s(8, 12),
        s(13, 16),
        s(17, 20),
        s(20, 32)
    )
}

/// What the consolidated SBOM is, for [`crate::parts`]: where in the root
/// filesystem it goes, and when it says it was made.
#[derive(Debug, Clone)]
pub struct SbomOptions {
    /// Its path in the root filesystem, clean and relative (`--sbom-output`,
    /// checked with [`SbomOptions::new`]).
    path: String,
    /// Its `created` time.
    created: String,
}

impl SbomOptions {
    /// The SBOM at `output` (as `--sbom-output` gives it: relative to the
    /// root, a leading `/` allowed), created at `created`
    /// ([`DEFAULT_CREATED`] keeps the build reproducible). A path that is
    /// empty, the root, or climbs out with `..` is refused with the reason.
    pub fn new(output: &str, created: String) -> Result<SbomOptions, String> {
        let path = linuxkit_base::path::normalize(output)
            .map_err(|e| format!("--sbom-output `{output}` {e}"))?;
        Ok(SbomOptions { path, created })
    }

    /// The file's entry: mode 0644, root's, the reference's mtime.
    pub(crate) fn entry(&self, size: u64) -> Entry {
        Entry {
            mode: 0o644,
            mtime: DEFAULT_MTIME,
            ..Entry::file(self.path.clone(), size)
        }
    }

    /// Its `created` time.
    pub(crate) fn created(&self) -> &str {
        &self.created
    }

    /// Its path in the root filesystem.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

/// `seconds` since the epoch as SPDX writes a time.
pub fn spdx_time(seconds: u64) -> String {
    let (y, m, d, hh, mm, ss) = linuxkit_base::calendar::civil(seconds);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_as_go_path_join() {
        assert_eq!(go_join("", ""), "");
        assert_eq!(go_join("", "/usr/bin/x"), "/usr/bin/x");
        assert_eq!(go_join("", "./usr/bin/x"), "usr/bin/x");
        assert_eq!(
            go_join("containers/services/a/lower/", ""),
            "containers/services/a/lower"
        );
        assert_eq!(
            go_join("containers/services/a/lower/", "/usr/bin/x"),
            "containers/services/a/lower/usr/bin/x"
        );
        assert_eq!(go_join("a/", "../../x"), "../x");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(spdx_time(1_492_533_000), DEFAULT_CREATED);
        assert_eq!(spdx_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(spdx_time(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_rename_never_takes_an_id_the_same_document_uses() {
        let mut c = Consolidated::default();
        c.add(
            "a",
            "",
            serde_json::json!({"packages": [{"SPDXID": "SPDXRef-x", "name": "a"}]}),
        )
        .unwrap();
        // `SPDXRef-x` is taken: its rename must not be `SPDXRef-x-2`, which
        // this document uses itself.
        c.add(
            "b",
            "",
            serde_json::json!({"packages": [
                {"SPDXID": "SPDXRef-x-2", "name": "b1"},
                {"SPDXID": "SPDXRef-x", "name": "b2"},
            ]}),
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&c.finish(DEFAULT_CREATED)).unwrap();
        let ids: Vec<&str> = out["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["SPDXRef-x", "SPDXRef-x-2", "SPDXRef-x-3"]);
    }

    #[test]
    fn shared_ids_are_renamed_and_licences_kept_once() {
        let doc = |name: &str| {
            serde_json::json!({
                "packages": [{"SPDXID": "SPDXRef-libc", "name": name, "packageFileName": ""}],
                "files": [{"SPDXID": "SPDXRef-f", "fileName": "./etc/x"}],
                "hasExtractedLicensingInfos": [{"licenseId": "LicenseRef-a", "extractedText": "a"}],
                "relationships": [{"spdxElementId": "SPDXRef-libc", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-f"}],
                "documentDescribes": ["SPDXRef-libc"],
            })
        };
        let mut c = Consolidated::default();
        c.add("a", "", doc("a")).unwrap();
        c.add("b", "containers/services/b/rootfs/", doc("b"))
            .unwrap();
        let out: Value = serde_json::from_slice(&c.finish(DEFAULT_CREATED)).unwrap();
        let ids: Vec<&str> = out["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["SPDXRef-libc", "SPDXRef-libc-2"]);
        assert_eq!(
            out["packages"][1]["packageFileName"],
            "containers/services/b/rootfs"
        );
        assert!(out["packages"][0].get("packageFileName").is_none());
        assert_eq!(
            out["files"][1]["fileName"],
            "./containers/services/b/rootfs/etc/x"
        );
        assert_eq!(out["files"][0]["fileName"], "./etc/x");
        assert_eq!(out["files"][1]["SPDXID"], "SPDXRef-f-2");
        let rel = &out["relationships"].as_array().unwrap();
        assert_eq!(rel.len(), 4);
        assert_eq!(rel[2]["spdxElementId"], "SPDXRef-libc-2");
        assert_eq!(rel[2]["relatedSpdxElement"], "SPDXRef-f-2");
        assert_eq!(rel[3]["relatedSpdxElement"], "SPDXRef-libc-2");
        assert_eq!(
            out["hasExtractedLicensingInfos"].as_array().unwrap().len(),
            1
        );
        let ns = out["documentNamespace"].as_str().unwrap();
        assert!(
            ns.starts_with("https://github.com/linuxkit/linuxkit/sbom-"),
            "{ns}"
        );
    }
}
