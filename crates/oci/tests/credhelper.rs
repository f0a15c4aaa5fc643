//! Credentials from a Docker credential helper (`credHelpers` and
//! `credsStore` in config.json): the helper is a real executable on PATH,
//! as `docker login` sets them up. Its own test binary, because it changes
//! PATH for the process.

mod common;

use common::{TempCache, client, hex_of};
use linuxkit_testing::{Auth, Compression, Fixture, Platform, TestRegistry, push_fixture};

// `unsafe_code` is denied workspace-wide; setting PATH is unsafe since the
// 2024 edition, and the helpers are found only through PATH.
#[allow(unsafe_code)]
#[test]
fn credential_helpers_supply_registry_credentials() {
    let registry = TestRegistry::start(Auth::basic("alice", "s3cret"));
    let fixture = Fixture::image(
        &[("etc/hello", "hello\n")],
        Compression::Gzip,
        &[],
        Platform::linux_amd64(),
    );
    push_fixture(&fixture, &registry, "private/hello:1");
    let reference = common::image_ref(&registry.image_ref("private/hello:1"));

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("helper.log");
    // A helper answers `get` with the server URL it is given on stdin.
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}' \"$server\"\n",
        log.display()
    );
    for name in ["docker-credential-lktest", "docker-credential-lkstore"] {
        let p = bin.join(name);
        std::fs::write(&p, &script).unwrap();
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&p, perm).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: this test binary has a single test and no other threads yet.
    unsafe { std::env::set_var("PATH", path) };

    for (i, config) in [
        format!(r#"{{"credHelpers":{{"{}":"lktest"}}}}"#, registry.addr()),
        r#"{"credsStore":"lkstore"}"#.to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = dir.path().join(format!("config-{i}.json"));
        std::fs::write(&cfg, config).unwrap();
        let cache = TempCache::new();
        let pulled = client(Some(cfg)).pull(&cache, &reference).unwrap();
        assert_eq!(
            hex_of(pulled.manifest_digest.as_str()),
            hex_of(&fixture.digest),
            "pulled through helper {i}"
        );
    }
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(
        asked.contains(&registry.addr()),
        "the helpers were asked for the registry: {asked}"
    );
}
