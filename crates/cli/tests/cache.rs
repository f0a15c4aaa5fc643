//! `linuxkit cache` end to end against a real docker-registry: what
//! `--published-only` removes (issue 17: it used to empty the whole cache,
//! and `cache rm --published-only` ignored it), and that `cache rm/clean`
//! say for whom they wait (issue 18).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use linuxkit_testing::{Auth, Compression, Fixture, Platform, TestRegistry, push_fixture};

fn linuxkit(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_linuxkit"));
    c.arg("--cache")
        .arg(cache)
        .env("DOCKER_CONFIG", cache.join("no-docker-config"))
        .env_remove("LINUXKIT_MIRROR")
        .stdin(Stdio::null());
    c
}

fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listed(cache: &Path) -> Vec<String> {
    let out = ok(linuxkit(cache).args(["cache", "ls"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn hello(text: &str) -> Fixture {
    Fixture::image(
        &[("etc/hello", text)],
        Compression::Gzip,
        &[],
        Platform::linux_amd64(),
    )
}

#[test]
fn published_only_removes_only_what_the_registry_has_with_the_same_digest() {
    let registry = TestRegistry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let same = registry.image_ref("test/same:1");
    let changed = registry.image_ref("test/changed:1");
    let local = registry.image_ref("test/local:1");
    push_fixture(&hello("same"), &registry, "test/same:1");
    push_fixture(&hello("changed, before"), &registry, "test/changed:1");
    ok(linuxkit(&cache).args(["cache", "pull", &same, &changed]));
    // Published since under another digest; and one the registry never had
    // (an export imported under a new name).
    push_fixture(&hello("changed, after"), &registry, "test/changed:1");
    let tar = dir.path().join("local.tar");
    ok(linuxkit(&cache)
        .args(["cache", "export", &same, "--name", &local, "--outfile"])
        .arg(&tar));
    ok(linuxkit(&cache).args(["cache", "import"]).arg(&tar));
    let mut all = vec![changed.clone(), local.clone(), same.clone()];
    all.sort();
    assert_eq!(listed(&cache), all);

    // `rm --published-only` of the changed and the unpublished image keeps
    // both; of the published one removes it.
    ok(linuxkit(&cache).args(["cache", "rm", "--published-only", &changed, &local]));
    assert_eq!(listed(&cache), all);
    ok(linuxkit(&cache).args(["cache", "rm", "--published-only", &same]));
    assert_eq!(listed(&cache), [changed.clone(), local.clone()]);

    // `clean --published-only` keeps both too (it used to empty the
    // cache); once the changed image is pulled again, it goes.
    ok(linuxkit(&cache).args(["cache", "pull", &same]));
    let out = ok(linuxkit(&cache).args(["cache", "clean", "--published-only"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(listed(&cache), [changed.clone(), local.clone()], "{err}");
    assert!(err.contains(&format!("keeping {changed}")), "{err}");
    assert!(err.contains(&format!("keeping {local}")), "{err}");
    ok(linuxkit(&cache).args(["cache", "pull", &changed]));
    ok(linuxkit(&cache).args(["cache", "clean", "--published-only"]));
    assert_eq!(listed(&cache), [local.as_str()]);
    // The unpublished image's blobs are intact: it still exports.
    ok(linuxkit(&cache)
        .args(["cache", "export", &local, "--outfile"])
        .arg(dir.path().join("again.tar")));

    // Plain clean still empties the cache.
    ok(linuxkit(&cache).args(["cache", "clean"]));
    assert!(listed(&cache).is_empty());
}

#[test]
fn rm_and_clean_say_for_whom_they_wait() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(linuxkit(&cache).args(["cache", "ls"]));
    // Hold the cache as a running build does: a shared flock on .gc.lock.
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(cache.join(".gc.lock"))
        .unwrap();
    lock.lock_shared().unwrap();
    let mut child = linuxkit(&cache)
        .args(["cache", "clean"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("cache clean said nothing while it waited");
    assert!(line.contains("waiting"), "{line}");
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "the message does not name the holder: {line}"
    );
    assert!(child.try_wait().unwrap().is_none(), "clean did not wait");
    drop(lock);
    let status = child.wait().unwrap();
    assert!(status.success());
}
