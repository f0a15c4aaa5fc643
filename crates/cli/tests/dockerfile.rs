//! `linuxkit pkg build` of Dockerfile packages through the binary, with the
//! real buildah and a real `docker-registry`: a `FROM` image fetched from
//! the registry into the cache (the builder itself reaches no registry),
//! `--build-arg-file`, `--dry-run`, `--push` and `--release`.

use std::path::Path;
use std::process::Command;

mod common;
use common::{linuxkit, ok};
use linuxkit_testing::{Auth, TestRegistry};

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args)
        .current_dir(repo)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_dockerfile_package_builds_from_a_registry_image_with_a_build_arg_file_and_is_released() {
    let registry = TestRegistry::start(Auth::None);
    let org = format!("{}/lk", registry.addr());
    let repo = tempfile::tempdir().unwrap();
    let base = repo.path().join("base");
    write(
        &base,
        &[
            ("build.yml", "image: base\narches: [amd64, arm64]\n"),
            ("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\n"),
        ],
    );
    std::fs::copy("/bin/busybox", base.join("busybox")).unwrap();
    let app = repo.path().join("app");
    write(
        &app,
        &[
            ("build.yml", "image: app\narches: [amd64, arm64]\n"),
            (
                "Dockerfile",
                "ARG BASE\nFROM ${BASE}\nARG WHO\n\
                 RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo hello $WHO > /greeting\"]\n\
                 ENTRYPOINT [\"/bin/busybox\", \"cat\", \"/greeting\"]\n",
            ),
        ],
    );
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-qm", "x"]);

    // The base image goes to the registry from one cache...
    let first = tempfile::tempdir().unwrap();
    let pkg = |cache: &Path| {
        let mut c = linuxkit(cache);
        c.args(["pkg", "--org", &org]);
        c
    };
    ok(pkg(first.path()).args(["build", "--push"]).arg(&base));
    let base_tag = stdout(&ok(pkg(first.path()).arg("show-tag").arg(&base)));

    // ...and the package that starts FROM it is built with an empty one.
    let cache = tempfile::tempdir().unwrap();
    let args = repo.path().join("args");
    std::fs::write(&args, format!("BASE={}\nWHO=world\n", base_tag.trim())).unwrap();
    let plan = stdout(&ok(pkg(cache.path())
        .args(["build", "--dry-run", "--build-arg-file"])
        .arg(&args)
        .arg(&app)));
    assert!(
        plan.contains("would build; buildah build of Dockerfile"),
        "{plan}"
    );
    let built = ok(pkg(cache.path())
        .args(["build", "--push", "--release", "v1.0", "--build-arg-file"])
        .arg(&args)
        .arg(&app));
    let line = stdout(&built);
    let digest = line.trim().rsplit_once('@').unwrap().1.to_string();
    let err = String::from_utf8_lossy(&built.stderr);
    assert!(err.contains("released"), "{err}");

    // The base image is in the second cache now, fetched from the registry.
    let ls = stdout(&ok(linuxkit(cache.path()).args(["cache", "ls"])));
    assert!(ls.contains(&format!("{org}/base")), "{ls}");
    // The greeting has the file's argument.
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("app.tar");
    let app_tag = stdout(&ok(pkg(cache.path()).arg("show-tag").arg(&app)));
    ok(linuxkit(cache.path())
        .args(["cache", "export", "--format", "filesystem", "--outfile"])
        .arg(&tar)
        .arg(app_tag.trim()));
    let mut a = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let greeting = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy().trim_start_matches("./") == "greeting")
        .map(|mut e| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            s
        });
    assert_eq!(greeting.as_deref(), Some("hello world\n"));

    // Pushed under its tag, and released as v1.0 with the same digest.
    let hash = app_tag.trim().rsplit_once(':').unwrap().1;
    assert_eq!(
        registry.manifest_digest("lk/app", hash),
        Some(digest.clone())
    );
    assert_eq!(
        registry.manifest_digest("lk/app", "v1.0"),
        Some(digest.clone())
    );

    // Without --release, a push releases under the commit's git tag, as
    // the reference's does.
    git(repo.path(), &["tag", "v2.0"]);
    ok(pkg(cache.path())
        .args(["build", "--push", "--nobuild"])
        .arg(&app));
    assert_eq!(registry.manifest_digest("lk/app", "v2.0"), Some(digest));
}

/// `pkg build` names each step with its elapsed time, as plain lines when
/// stderr is not a terminal (here, a pipe), for Dockerfile and declarative
/// packages alike; nothing of it with `-q`.
#[test]
fn pkg_build_names_its_steps_unless_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let dockerfile = tmp.path().join("df");
    write(
        &dockerfile,
        &[
            ("build.yml", "image: df\narches: [amd64, arm64]\n"),
            ("Dockerfile", "FROM scratch\nCOPY build.yml /etc/df\n"),
        ],
    );
    let declarative = tmp.path().join("decl");
    write(
        &declarative,
        &[(
            "build.yml",
            "image: decl\narches: [amd64, arm64]\nfiles:\n  - path: etc/decl\n    contents: hi\n",
        )],
    );
    let cache = tempfile::tempdir().unwrap();
    let run = |quiet: bool, dir: &Path| {
        let mut c = linuxkit(cache.path());
        if quiet {
            c.arg("-q");
        }
        let out = ok(c.args(["pkg", "build", "--force"]).arg(dir));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(false, &dockerfile);
    for step in [
        "fetch 0 base images done in ",
        "buildah build of Dockerfile done in ",
        "layer, compress and store done in ",
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("linuxkit/df:") && l.contains(step)),
            "{step}: {err}"
        );
    }
    let err = run(false, &declarative);
    for step in ["layer done in ", "compress and store done in "] {
        assert!(err.contains(step), "{step}: {err}");
    }
    for dir in [&dockerfile, &declarative] {
        let err = run(true, dir);
        assert!(!err.contains(" done in "), "{err}");
    }
}
