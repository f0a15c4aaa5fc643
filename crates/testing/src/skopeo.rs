//! Pushing fixture layouts into a [`TestRegistry`] with `skopeo`.
//!
//! `skopeo` (containers/image) is an independent registry client: images it
//! uploads exercise the client under test on content it did not write, and
//! it speaks every auth scheme the test registry offers. It runs as
//!
//! ```text
//! skopeo --insecure-policy copy --preserve-digests [--all] \
//!   --dest-tls-verify=false (--dest-creds U:P | --dest-no-creds) \
//!   --digestfile FILE oci:LAYOUT:TAG docker://127.0.0.1:PORT/REPO:TAG
//! ```
//!
//! `--insecure-policy` spares the machine a `/etc/containers/policy.json`;
//! `--dest-no-creds` keeps any auth file of the user out of it;
//! `--preserve-digests` makes skopeo fail rather than rewrite a manifest
//! (e.g. compress an uncompressed layer), so the digests a [`Fixture`]
//! computed are the digests in the registry. The digest skopeo reports
//! (`--digestfile`) is returned, so tests can rely on it even where skopeo
//! converts ([`push_as_v2s2`]).

use std::path::Path;
use std::process::Command;

use super::fixture::Fixture;
use super::registry::TestRegistry;

/// Copies tag `tag_in_layout` of the OCI layout at `layout_dir` to
/// `registry` as `dest` (`repo:tag`), with `creds` if given, and with every
/// platform of an index if `all_platforms` (else skopeo picks this
/// machine's platform). Digests are preserved. Returns the pushed digest
/// (of the index with `all_platforms`). Panics with skopeo's output on
/// failure.
pub fn push(
    layout_dir: &Path,
    tag_in_layout: &str,
    registry: &TestRegistry,
    dest: &str,
    creds: Option<(&str, &str)>,
    all_platforms: bool,
) -> String {
    copy_layout(
        layout_dir,
        tag_in_layout,
        registry,
        dest,
        creds,
        all_platforms,
        &["--preserve-digests"],
    )
}

/// Like [`push`], but has skopeo convert the OCI image (or index) to Docker
/// schema 2 (`--format v2s2`) on the way. Manifest and config digests
/// change (layer digests of gzip layers do not); the new top-level digest
/// is returned.
pub fn push_as_v2s2(
    layout_dir: &Path,
    tag_in_layout: &str,
    registry: &TestRegistry,
    dest: &str,
    creds: Option<(&str, &str)>,
    all_platforms: bool,
) -> String {
    copy_layout(
        layout_dir,
        tag_in_layout,
        registry,
        dest,
        creds,
        all_platforms,
        &["--format", "v2s2"],
    )
}

/// Copies tag `tag_in_layout` of an OCI layout with extra skopeo flags.
fn copy_layout(
    layout_dir: &Path,
    tag_in_layout: &str,
    registry: &TestRegistry,
    dest: &str,
    creds: Option<(&str, &str)>,
    all_platforms: bool,
    flags: &[&str],
) -> String {
    let source = format!("oci:{}:{tag_in_layout}", layout_dir.display());
    copy(&source, registry, dest, creds, all_platforms, flags)
}

/// Pushes `fixture` (OCI or Docker, see [`Fixture::skopeo_source`]) to
/// `registry` as `dest` (`repo:tag`) with the registry's own credentials
/// and all platforms of an index, digests preserved, and checks that the
/// registry got the fixture's digest. Returns that digest.
pub fn push_fixture(fixture: &Fixture, registry: &TestRegistry, dest: &str) -> String {
    let digest = copy(
        &fixture.skopeo_source(),
        registry,
        dest,
        registry.credentials(),
        fixture.is_index(),
        &["--preserve-digests"],
    );
    assert_eq!(
        digest, fixture.digest,
        "skopeo pushed {dest} with another digest than the fixture's"
    );
    digest
}

/// Runs `skopeo copy` from `source` (any skopeo transport reference) to
/// `docker://ADDR/dest` and returns the digest it reports.
fn copy(
    source: &str,
    registry: &TestRegistry,
    dest: &str,
    creds: Option<(&str, &str)>,
    all_platforms: bool,
    extra: &[&str],
) -> String {
    let digest_dir = tempfile::tempdir().unwrap();
    let digest_file = digest_dir.path().join("digest");
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .args(extra);
    if all_platforms {
        cmd.arg("--all");
    }
    match creds {
        Some((user, password)) => cmd.arg(format!("--dest-creds={user}:{password}")),
        None => cmd.arg("--dest-no-creds"),
    };
    cmd.arg("--digestfile").arg(&digest_file);
    cmd.arg(source)
        .arg(format!("docker://{}/{dest}", registry.addr()));
    let output = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run skopeo ({e}); install Debian's skopeo (scripts/setup)")
    });
    assert!(
        output.status.success(),
        "skopeo failed ({}): {cmd:?}\n--- stderr ---\n{}\n--- stdout ---\n{}\n--- registry log ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
        registry.log(),
    );
    std::fs::read_to_string(&digest_file)
        .unwrap_or_else(|e| panic!("skopeo wrote no digest file: {e}"))
        .trim()
        .to_string()
}
