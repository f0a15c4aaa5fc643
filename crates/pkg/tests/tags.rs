//! Package tags computed in real git repositories, checked against what git
//! itself prints (and, for dirty packages, against a content hash computed
//! here independently of the library).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use linuxkit_pkg::{Package, PkgError, PkgOptions, reference_expand};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The environment every git command of these tests runs with: no user or
/// system configuration (a global `core.excludesFile` or `commit.gpgSign`
/// would change results), a fixed identity, and no repository discovery
/// above the temporary directory (which might itself be inside a checkout).
fn git_env() -> Vec<(&'static str, String)> {
    let tmp = std::env::temp_dir();
    let tmp = tmp.canonicalize().unwrap_or(tmp);
    vec![
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_AUTHOR_NAME", "Test".into()),
        ("GIT_AUTHOR_EMAIL", "test@example.com".into()),
        ("GIT_COMMITTER_NAME", "Test".into()),
        ("GIT_COMMITTER_EMAIL", "test@example.com".into()),
        ("GIT_CEILING_DIRECTORIES", tmp.display().to_string()),
    ]
}

const GIT_UNSET: [&str; 4] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
];

/// The library's own git commands inherit the process environment, so it
/// gets the same isolation as [`git`]. Called first thing in every test.
// `unsafe_code` is denied workspace-wide; changing the environment is
// unsafe since the 2024 edition.
#[allow(unsafe_code)]
fn isolate() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in git_env() {
            // SAFETY: this test binary reads the environment only through
            // std (`Command`, `env::var`, `env::temp_dir`), which takes the
            // same lock as `set_var`; no foreign code reads it concurrently.
            unsafe { std::env::set_var(k, v) };
        }
        for k in GIT_UNSET {
            // SAFETY: as above.
            unsafe { std::env::remove_var(k) };
        }
    });
}

/// Runs git in `dir`, which must succeed; returns trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for (k, v) in git_env() {
        cmd.env(k, v);
    }
    for k in GIT_UNSET {
        cmd.env_remove(k);
    }
    let out = cmd
        .output()
        .expect("git must be installed to run these tests");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Repo {
    dir: TempDir,
}

impl Repo {
    fn new() -> Repo {
        isolate();
        let dir = TempDir::new().unwrap();
        git(dir.path(), &["init", "-q"]);
        Repo { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        git(self.dir.path(), args)
    }

    fn commit_all(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "commit"]);
    }

    /// A repository with a committed package `pkg/foo` (plus a sibling).
    fn with_foo(build_yml: &str) -> Repo {
        let r = Repo::new();
        r.write("pkg/foo/build.yml", build_yml);
        r.write("pkg/foo/Dockerfile", "FROM scratch\n");
        r.write("pkg/foo/src/b.c", "int b;\n");
        r.write("pkg/foo/src/a.c", "int a;\n");
        r.write("pkg/bar/build.yml", "image: bar\n");
        r.commit_all();
        r
    }

    fn tree(&self, rev_path: &str) -> String {
        self.git(&["rev-parse", rev_path])
    }
}

fn load(dir: &Path) -> Result<Package, PkgError> {
    Package::load(dir, &PkgOptions::default())
}

/// What the `-dirty-` suffix must be, computed without the library: sha256
/// over the contents of the files git lists for `dir` (tracked, then
/// untracked), skipping anything that is not a regular file.
fn expected_content_hash(dir: &Path) -> String {
    let tracked = git(dir, &["ls-files"]);
    let untracked = git(dir, &["ls-files", "--exclude-standard", "--others"]);
    let mut h = Sha256::new();
    for name in tracked.lines().chain(untracked.lines()) {
        let p = dir.join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => h.update(std::fs::read(&p).unwrap()),
            _ => {}
        }
    }
    format!("{:x}", h.finalize())[..7].to_string()
}

#[test]
fn clean_package_is_tagged_with_its_tree_hash() {
    let r = Repo::with_foo("image: foo\n");
    let tree = r.tree("HEAD:pkg/foo");
    let p = load(&r.path("pkg/foo")).unwrap();
    assert_eq!(p.hash(), tree);
    assert_eq!(p.tag(), format!("linuxkit/foo:{tree}"));
    assert_eq!(p.full_tag(), format!("docker.io/linuxkit/foo:{tree}"));
    assert!(!p.is_dirty());
    assert_eq!(p.release_tag("v1.0").unwrap(), "linuxkit/foo:v1.0");
    assert_eq!(p.path(), r.path("pkg/foo"));
    assert!(p.config().is_none());
    p.check_buildable().unwrap();

    // The same directory by a non-canonical name.
    let p = load(&r.path("pkg/bar/../foo/.")).unwrap();
    assert_eq!(p.hash(), tree);
    assert_eq!(p.path(), r.path("pkg/foo"));
}

#[test]
fn modified_tracked_file_makes_it_dirty_with_a_content_hash() {
    let r = Repo::with_foo("image: foo\n");
    let tree = r.tree("HEAD:pkg/foo");
    r.write("pkg/foo/src/a.c", "int a = 1;\n");
    // Not regular files, or gone: skipped by the content hash.
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.c", r.path("pkg/foo/src/link.c")).unwrap();
    std::fs::remove_file(r.path("pkg/foo/Dockerfile")).unwrap();

    let p = load(&r.path("pkg/foo")).unwrap();
    let suffix = expected_content_hash(&r.path("pkg/foo"));
    assert_eq!(suffix.len(), 7);
    assert_eq!(p.hash(), format!("{tree}-dirty-{suffix}"));
    assert_eq!(p.tag(), format!("linuxkit/foo:{tree}-dirty-{suffix}"));
    assert!(p.is_dirty());
    let e = p.release_tag("v1").unwrap_err();
    assert!(
        e.to_string().ends_with("cannot release a dirty package"),
        "{e}"
    );
    assert!(
        p.release_tag("")
            .unwrap_err()
            .to_string()
            .ends_with("a release tag is required")
    );

    // Changing content changes the suffix; the tree hash part stays.
    r.write("pkg/foo/src/a.c", "int a = 2;\n");
    let p2 = load(&r.path("pkg/foo")).unwrap();
    assert_ne!(p2.hash(), p.hash());
    assert!(p2.hash().starts_with(&format!("{tree}-dirty-")));

    // A change elsewhere in the repository does not affect pkg/bar.
    let bar = load(&r.path("pkg/bar")).unwrap();
    assert_eq!(bar.hash(), r.tree("HEAD:pkg/bar"));
    assert!(!bar.is_dirty());
}

#[test]
fn untracked_file_makes_it_dirty_but_ignored_files_do_not() {
    let r = Repo::with_foo("image: foo\n");
    let tree = r.tree("HEAD:pkg/foo");

    r.write(".gitignore", "*.o\n");
    r.commit_all();
    r.write("pkg/foo/src/a.o", "object\n");
    let p = load(&r.path("pkg/foo")).unwrap();
    assert!(!p.is_dirty());
    assert_eq!(p.hash(), tree);

    r.write("pkg/foo/new.txt", "new\n");
    let p = load(&r.path("pkg/foo")).unwrap();
    assert!(p.is_dirty());
    let suffix = expected_content_hash(&r.path("pkg/foo"));
    assert_eq!(p.hash(), format!("{tree}-dirty-{suffix}"));
}

#[test]
fn force_dirty_adds_the_suffix_to_a_clean_package() {
    let r = Repo::with_foo("image: foo\n");
    let tree = r.tree("HEAD:pkg/foo");
    let opts = PkgOptions {
        force_dirty: true,
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    let suffix = expected_content_hash(&r.path("pkg/foo"));
    assert_eq!(p.hash(), format!("{tree}-dirty-{suffix}"));
}

#[test]
fn package_at_the_repository_root_uses_the_commit_tree() {
    let r = Repo::new();
    r.write("build.yml", "image: root\n");
    r.write("Dockerfile", "FROM scratch\n");
    r.commit_all();
    let tree = r.git(&["show", "--format=%T", "-s", "HEAD"]);
    let p = load(r.dir.path()).unwrap();
    assert_eq!(p.tag(), format!("linuxkit/root:{tree}"));
}

#[test]
fn extra_sources_are_hashed_with_sha1_after_the_package() {
    let yml = "image: foo\nextra-sources:\n  - ../../src/common:/common/\n  - ../bar:/bar\n";
    let r = Repo::with_foo(yml);
    r.write("src/common/x.h", "#define X\n");
    r.commit_all();
    let concat = format!(
        "{}{}{}",
        r.tree("HEAD:pkg/foo"),
        r.tree("HEAD:src/common"),
        r.tree("HEAD:pkg/bar")
    );
    let want = format!("{:x}", Sha1::digest(concat.as_bytes()));

    let p = load(&r.path("pkg/foo")).unwrap();
    assert_eq!(p.hash(), want);
    let sources: Vec<_> = p
        .sources()
        .iter()
        .map(|s| (s.src.clone(), s.dst.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            (r.path("pkg/foo"), "/"),
            (r.path("src/common"), "/common"),
            (r.path("pkg/bar"), "/bar"),
        ]
    );
}

#[test]
fn extra_sources_must_be_src_colon_dst_and_in_git() {
    let r = Repo::with_foo("image: foo\nextra-sources: [../bar]\n");
    let e = load(&r.path("pkg/foo")).unwrap_err();
    assert!(matches!(e, PkgError::BadSource { .. }), "{e}");
    assert!(
        e.to_string().contains("bad source format in \"../bar\""),
        "{e}"
    );

    let outside = TempDir::new().unwrap();
    let yml = format!(
        "image: foo\nextra-sources: ['{}:/x']\n",
        outside.path().display()
    );
    r.write("pkg/foo/build.yml", &yml);
    r.commit_all();
    let e = load(&r.path("pkg/foo")).unwrap_err();
    assert!(matches!(e, PkgError::SourceNotInGit { .. }), "{e}");
    assert!(e.to_string().contains("not in a git repository"), "{e}");
}

#[test]
fn outside_git_the_tag_is_latest() {
    isolate();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("build.yml"), "image: foo\norg: acme\n").unwrap();
    let p = load(dir.path()).unwrap();
    assert_eq!(p.hash(), "");
    assert_eq!(p.tag(), "acme/foo:latest");
    assert_eq!(p.full_tag(), "docker.io/acme/foo:latest");
    assert!(!p.is_dirty());

    let opts = PkgOptions {
        hash: Some("1234".into()),
        ..PkgOptions::default()
    };
    assert_eq!(
        Package::load(dir.path(), &opts).unwrap().tag(),
        "acme/foo:1234"
    );
}

#[test]
fn hash_option_overrides_git_and_the_dirty_suffix() {
    let r = Repo::with_foo("image: foo\n");
    r.write("pkg/foo/src/a.c", "changed\n");
    let opts = PkgOptions {
        hash: Some("abc123".into()),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    assert_eq!(p.tag(), "linuxkit/foo:abc123");
    // Still known to be dirty, so it cannot be released.
    assert!(p.is_dirty());
}

#[test]
fn dev_uses_user_as_org_and_dev_as_hash() {
    let r = Repo::with_foo("image: foo\n");
    let opts = PkgOptions {
        dev: true,
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    let user = std::env::var("USER").unwrap_or_default();
    assert_eq!(p.tag(), format!("{user}/foo:dev"));

    // An explicit org still wins.
    let opts = PkgOptions {
        dev: true,
        org: Some("me".into()),
        ..PkgOptions::default()
    };
    assert_eq!(
        Package::load(&r.path("pkg/foo"), &opts).unwrap().tag(),
        "me/foo:dev"
    );
}

#[test]
fn tag_templates_wrap_the_hash() {
    let r = Repo::with_foo("image: foo\ntag: v1-{{.Hash}}\n");
    let tree = r.tree("HEAD:pkg/foo");
    let p = load(&r.path("pkg/foo")).unwrap();
    assert_eq!(p.tag(), format!("linuxkit/foo:v1-{tree}"));
    assert_eq!(p.hash(), tree);

    // --tag overrides build.yml; an empty build.yml tag is the default.
    let opts = PkgOptions {
        tag: Some("{{ .Hash }}-debug".into()),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    assert_eq!(p.tag(), format!("linuxkit/foo:{tree}-debug"));

    r.write("pkg/foo/build.yml", "image: foo\ntag: \"\"\n");
    r.commit_all();
    let p = load(&r.path("pkg/foo")).unwrap();
    assert_eq!(p.tag(), format!("linuxkit/foo:{}", r.tree("HEAD:pkg/foo")));
}

#[test]
fn invalid_tag_template_is_an_error() {
    let r = Repo::with_foo("image: foo\ntag: \"{{.Version}}\"\n");
    let e = load(&r.path("pkg/foo")).unwrap_err();
    assert!(matches!(e, PkgError::TagTemplate { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("invalid tag template \"{{.Version}}\"")
            && msg.contains("only `{{.Hash}}` is supported"),
        "{msg}"
    );
}

#[test]
fn missing_image_is_an_error_naming_the_file() {
    let r = Repo::with_foo("org: acme\n");
    let e = load(&r.path("pkg/foo")).unwrap_err();
    let file = r.path("pkg/foo/build.yml");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: the `image` field is required (the image name, e.g. `image: init`)",
            file.display()
        )
    );
}

#[test]
fn unknown_build_yml_field_is_located_with_a_suggestion() {
    let r = Repo::with_foo("image: foo\norg: acme\narchs: [amd64]\n");
    let e = load(&r.path("pkg/foo")).unwrap_err();
    let file = r.path("pkg/foo/build.yml");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:1: unknown field `archs`, did you mean `arches`?",
            file.display()
        )
    );
}

#[test]
fn other_build_yml_names_and_missing_files() {
    let r = Repo::with_foo("image: foo\n");
    r.write("pkg/foo/build-debug.yml", "image: foo-debug\n");
    r.commit_all();
    let opts = PkgOptions {
        build_yml: "build-debug.yml".into(),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    assert_eq!(
        p.tag(),
        format!("linuxkit/foo-debug:{}", r.tree("HEAD:pkg/foo"))
    );

    let e = load(&r.path("pkg/none")).unwrap_err();
    assert!(matches!(e, PkgError::Io { .. }), "{e}");
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn hash_path_hashes_a_parent_directory() {
    let r = Repo::with_foo("image: foo\n");
    let opts = PkgOptions {
        hash_path: Some(r.path("pkg")),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    assert_eq!(p.hash(), r.tree("HEAD:pkg"));

    // A change in a sibling makes it dirty, hashed over the hash path.
    r.write("pkg/bar/x", "x\n");
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    let suffix = expected_content_hash(&r.path("pkg"));
    assert_eq!(p.hash(), format!("{}-dirty-{suffix}", r.tree("HEAD:pkg")));

    let opts = PkgOptions {
        hash_path: Some(r.path("pkg/bar")),
        ..PkgOptions::default()
    };
    let e = Package::load(&r.path("pkg/foo"), &opts).unwrap_err();
    assert!(matches!(e, PkgError::HashPathNotPrefix { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("is not a prefix of the package path"),
        "{e}"
    );
}

#[test]
fn hash_commit_selects_an_older_tree_and_skips_dirtiness() {
    let r = Repo::with_foo("image: foo\n");
    let old = r.tree("HEAD:pkg/foo");
    r.write("pkg/foo/src/a.c", "v2\n");
    r.commit_all();
    r.write("pkg/foo/src/a.c", "v3, uncommitted\n");
    let opts = PkgOptions {
        hash_commit: "HEAD~1".into(),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    assert_eq!(p.hash(), old);
    assert!(!p.is_dirty());
    assert!(
        p.check_buildable()
            .unwrap_err()
            .to_string()
            .contains("!= HEAD")
    );
}

#[test]
fn uncommitted_package_is_not_in_git() {
    let r = Repo::with_foo("image: foo\n");
    r.write("pkg/new/build.yml", "image: new\n");
    let e = load(&r.path("pkg/new")).unwrap_err();
    assert!(matches!(e, PkgError::NotInGit { .. }), "{e}");
    assert!(e.to_string().contains("is not in git at HEAD"), "{e}");
}

#[test]
fn repository_without_commits_reports_git_error() {
    let r = Repo::new();
    r.write("pkg/foo/build.yml", "image: foo\n");
    let e = load(&r.path("pkg/foo")).unwrap_err();
    let PkgError::Git {
        command, stderr, ..
    } = &e
    else {
        panic!("{e}");
    };
    assert!(command.contains("ls-tree --full-tree HEAD --"), "{command}");
    assert!(!stderr.is_empty());
    assert!(e.to_string().contains(stderr.trim()), "{e}");
}

#[test]
fn overrides_apply_to_build_yml() {
    let r = Repo::with_foo("image: foo\nnetwork: true\ndisable-cache: true\n");
    let opts = PkgOptions {
        network: Some(false),
        disable_cache: Some(false),
        org: Some("ghcr.io/acme".into()),
        ..PkgOptions::default()
    };
    let p = Package::load(&r.path("pkg/foo"), &opts).unwrap();
    let b = p.build_yml();
    assert!(!b.network && !b.disable_cache);
    assert_eq!(b.org, "ghcr.io/acme");
    let tree = r.tree("HEAD:pkg/foo");
    assert_eq!(p.full_tag(), format!("ghcr.io/acme/foo:{tree}"));
}

#[test]
fn config_is_the_image_label() {
    let r = Repo::with_foo("image: foo\nconfig:\n  pid: host\n  binds: [/a:/a]\n");
    let p = load(&r.path("pkg/foo")).unwrap();
    let c = p.config().unwrap();
    assert_eq!(c.pid.as_deref(), Some("host"));
    assert_eq!(c.binds.as_deref(), Some(&["/a:/a".to_string()][..]));
}

#[test]
fn full_tag_expansion() {
    for (tag, want) in [
        ("redis", "docker.io/library/redis"),
        ("redis:7", "docker.io/library/redis:7"),
        ("linuxkit/init:abc", "docker.io/linuxkit/init:abc"),
        ("localhost/init:abc", "localhost/init:abc"),
        ("localhost:5000/init:abc", "localhost:5000/init:abc"),
        ("ghcr.io/init:abc", "ghcr.io/init:abc"),
        ("ghcr.io/acme/init:abc", "ghcr.io/acme/init:abc"),
        ("docker.io/linuxkit/init:abc", "docker.io/linuxkit/init:abc"),
        ("a/b/c:abc", "a/b/c:abc"),
    ] {
        assert_eq!(reference_expand(tag), want, "{tag}");
    }

    isolate();
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("build.yml"), "image: foo\n").unwrap();
    for (org, want) in [
        ("linuxkit", "docker.io/linuxkit/foo:h"),
        ("localhost", "localhost/foo:h"),
        ("registry:5000", "registry:5000/foo:h"),
        ("quay.io", "quay.io/foo:h"),
        ("quay.io/acme", "quay.io/acme/foo:h"),
    ] {
        let opts = PkgOptions {
            org: Some(org.into()),
            hash: Some("h".into()),
            ..PkgOptions::default()
        };
        let p = Package::load(dir.path(), &opts).unwrap();
        assert_eq!(p.full_tag(), want, "{org}");
    }
}
