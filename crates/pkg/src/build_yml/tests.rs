//! Parsing `build.yml`: every key, the defaults, and the errors.

use super::*;

#[test]
fn defaults_fill_absent_keys() {
    let b = BuildYml::parse("b.yml", "image: foo\n").unwrap();
    assert_eq!(
        b,
        BuildYml {
            image: "foo".into(),
            ..BuildYml::default()
        }
    );
    assert_eq!(b.arches, ["amd64", "arm64", "riscv64"]);
    assert_eq!(b.dockerfile, "Dockerfile");
}

#[test]
fn every_key_with_its_reference_spelling() {
    let text = "\
image: foo
org: acme
tag: v1-{{.Hash}}
dockerfile: Dockerfile.alt
arches: [amd64]
extra-sources:
  - ../src:/src
gitrepo: https://example.com/r
network: true
disable-cache: true
config:
  binds:
    - /a:/a
  capabilities: [all]
buildArgs:
  - A=1
depends:
  docker-images:
    target-dir: imgs
    target: imgs.tar
    from-file: images.lst
    list: [alpine:3.20]
";
    let b = BuildYml::parse("b.yml", text).unwrap();
    assert_eq!(b.org, "acme");
    assert_eq!(b.tag, "v1-{{.Hash}}");
    assert_eq!(b.dockerfile, "Dockerfile.alt");
    assert_eq!(b.arches, ["amd64"]);
    assert_eq!(b.extra_sources, ["../src:/src"]);
    assert_eq!(b.git_repo, "https://example.com/r");
    assert!(b.network && b.disable_cache);
    let config = b.config.unwrap();
    assert_eq!(config.binds.unwrap(), ["/a:/a"]);
    assert_eq!(config.capabilities.unwrap(), ["all"]);
    assert_eq!(b.build_args.unwrap(), ["A=1"]);
    let d = b.depends.docker_images;
    assert_eq!(
        (
            d.target_dir.as_str(),
            d.target.as_str(),
            d.from_file.as_str()
        ),
        ("imgs", "imgs.tar", "images.lst")
    );
    assert_eq!(d.list, ["alpine:3.20"]);
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let e = BuildYml::parse("b.yml", "image: foo\ndepends:\n  docker-image: {}\n").unwrap_err();
    assert!(
        e.to_string().starts_with("b.yml:3:3: ")
            && e.to_string().contains("did you mean `docker-images`?"),
        "{e}"
    );
    let e = BuildYml::parse("b.yml", "image: foo\nconfig:\n  bind: []\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `bind`"), "{e}");
}

#[test]
fn debian_section_and_image_config() {
    let text = "\
image: bb
debian:
  suite: bookworm
  packages: [busybox-static, \"libc6 (>= 2.36)\"]
entrypoint: [/bin/busybox, sh]
cmd: [-c, echo]
env: [A=1]
workdir: /
";
    let b = BuildYml::parse("b.yml", text).unwrap();
    let d = b.debian.unwrap();
    assert_eq!(d.suite.as_deref(), Some("bookworm"));
    assert_eq!(d.packages, ["busybox-static", "libc6 (>= 2.36)"]);
    assert_eq!(d.exclude, DEFAULT_DEBIAN_EXCLUDE);
    assert_eq!(b.entrypoint.unwrap(), ["/bin/busybox", "sh"]);
    assert_eq!(b.cmd.unwrap(), ["-c", "echo"]);
    assert_eq!(b.env.unwrap(), ["A=1"]);
    assert_eq!(b.workdir.as_deref(), Some("/"));

    let b = BuildYml::parse(
        "b.yml",
        "image: x\ndebian:\n  packages: [a]\n  exclude: []\n",
    )
    .unwrap();
    assert!(b.debian.unwrap().exclude.is_empty());

    let b = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: [a]\n  extend_exclude: [usr/bin/ctr, \"lib/*/libm.so.6\"]\n",
        )
        .unwrap();
    let d = b.debian.unwrap();
    assert_eq!(d.exclude, DEFAULT_DEBIAN_EXCLUDE);
    let mut all: Vec<String> = DEFAULT_DEBIAN_EXCLUDE.map(String::from).into();
    all.extend(["usr/bin/ctr".into(), "lib/*/libm.so.6".into()]);
    assert_eq!(d.excluded(), all);
    let e = BuildYml::parse(
        "b.yml",
        "image: x\ndebian:\n  packages: [a]\n  extend_exclude: [\"usr/[lib\"]\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("`debian.extend_exclude`: \"usr/[lib\""),
        "{e}"
    );

    let e = BuildYml::parse(
        "b.yml",
        "image: x\ndebian:\n  packages: [a]\n  include: [\"usr/*/bin\"]\n",
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("b.yml:"), "{e}");
    assert!(e.to_string().contains("`exclude` only"), "{e}");
    let e = BuildYml::parse(
        "b.yml",
        "image: x\ndebian:\n  packages: [a]\n  exclude: [\"usr/[lib\"]\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`debian.exclude`: \"usr/[lib\""),
        "{e}"
    );

    let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  package: [a]\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `package`"), "{e}");
    let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: []\n").unwrap_err();
    assert!(e.to_string().contains("at least one package"), "{e}");
    let e = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: [\"a (>>\"]\n").unwrap_err();
    assert!(e.to_string().contains("bad package"), "{e}");
}

#[test]
fn declarative_keys() {
    let text = "\
image: k
debian:
  components: [main, contrib]
  packages: [linux-image-cloud-amd64]
  dependencies: false
  include: [boot, lib/modules]
kernel:
files:
  - path: /etc/a
    contents: a
    uid: app
users:
  - name: app
    uid: 1000
groups:
  - {name: app, gid: 1001, members: [app]}
labels:
  a: b
cargo:
  - package: hello
    path: /usr/bin/hi
  - package: init
    path: /sbin/init
    rustflags: [-C, relocation-model=static]
";
    let b = BuildYml::parse("b.yml", text).unwrap();
    let d = b.debian.as_ref().unwrap();
    assert_eq!(d.components, ["main", "contrib"]);
    assert!(!d.dependencies);
    assert_eq!(d.include, ["boot", "lib/modules"]);
    assert_eq!(
        b.kernel,
        Some(KernelSpec::default()),
        "`kernel:` alone is the full kernel"
    );
    assert_eq!(
        b.users[0].passwd_line(),
        "app:x:1000:1000::/nonexistent:/usr/sbin/nologin"
    );
    assert_eq!(b.groups[0].group_line(), "app:x:1001:app");
    assert_eq!(b.cargo[0].bin, "hello");
    assert!(b.cargo[0].rustflags.is_empty());
    assert_eq!(b.cargo[1].rustflags, ["-C", "relocation-model=static"]);
    assert_eq!(b.labels["a"], "b");
    assert_eq!(b.resolve_id(&IdSpec::Name("app".into()), false), Some(1001));
    assert!(b.is_declarative());
    let b = BuildYml::parse("b.yml", "image: x\ndebian:\n  packages: [a]\n").unwrap();
    let d = b.debian.unwrap();
    assert_eq!(
        (d.components.as_slice(), d.dependencies),
        (&["main".to_string()][..], true)
    );
    let e = BuildYml::parse("b.yml", "image: x\nkernel:\n  module: [a]\n").unwrap_err();
    assert!(
        e.to_string().starts_with("b.yml:3:3: ")
            && e.to_string().contains("did you mean `modules`?"),
        "{e}"
    );
    let e = BuildYml::parse(
        "b.yml",
        "image: x\nlabels: {org.mobyproject.config: x}\nfiles: [{path: a, contents: b}]\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("use `config:`") || e.to_string().contains("is set from `config:`"),
        "{e}"
    );
}

#[test]
fn build_packages_without_go_entries_are_refused() {
    let e = BuildYml::parse(
        "b.yml",
        "image: c\ndebian:\n  packages: [busybox]\n  build_packages: [golang-go]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`debian.build_packages` are for `go:` entries"),
        "{e}"
    );
}

#[test]
fn go_entries_and_build_packages() {
    let text = "\
image: c
debian:
  packages: []
  build_packages: [golang-go, \"golang-github-containerd-containerd-dev (>= 1.6)\"]
go:
  - main: containerd
    path: /usr/bin/containerd
  - {main: ./cmd//ctr/, path: usr/bin/ctr}
";
    let b = BuildYml::parse("b.yml", text).unwrap();
    assert_eq!(
        b.go,
        [
            GoBinary {
                main: "containerd".into(),
                path: "/usr/bin/containerd".into()
            },
            // cleaned: it becomes part of an import path
            GoBinary {
                main: "cmd/ctr".into(),
                path: "usr/bin/ctr".into()
            }
        ]
    );
    let d = b.debian.as_ref().unwrap();
    assert!(d.packages.is_empty());
    assert_eq!(
        d.build_packages,
        [
            "golang-go",
            "golang-github-containerd-containerd-dev (>= 1.6)"
        ]
    );
    assert!(b.is_declarative());
    // `packages` may be left out when there are build packages.
    let b = BuildYml::parse(
        "b.yml",
        "image: c\ndebian:\n  build_packages: [golang-go]\ngo: [{main: m, path: /m}]\n",
    )
    .unwrap();
    assert!(b.debian.unwrap().packages.is_empty());

    // `go:` needs the toolchain in `debian.build_packages`.
    for text in [
        "image: x\ngo:\n  - {main: m, path: /usr/bin/m}\n",
        "image: x\ndebian:\n  packages: [golang-go]\ngo:\n  - {main: m, path: /usr/bin/m}\n",
    ] {
        let e = BuildYml::parse("b.yml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("b.yml: `go:` needs the Go toolchain")
                && e.contains("`debian.build_packages`"),
            "{e}"
        );
    }

    // `main` is a directory of the package; `path` one of the image.
    let entry = |main: &str, path: &str| {
        format!(
            "image: x\ndebian:\n  build_packages: [golang-go]\ngo:\n  - main: {main}\n    path: {path}\n"
        )
    };
    for main in ["/src/hello", "../hello", "cmd/../../hello", ".", "\"\""] {
        let e = BuildYml::parse("b.yml", &entry(main, "/usr/bin/hello"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("b.yml:5:5: go[0]: `main` ")
                && e.contains("must be a directory of the package"),
            "{main}: {e}"
        );
    }
    for path in ["/usr/../../bin/hello", "/", "\"\""] {
        let e = BuildYml::parse("b.yml", &entry("hello", path))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("b.yml:5:5: go[0]: `path` ")
                && e.contains("the binary's path in the image"),
            "{path}: {e}"
        );
    }
    let e = BuildYml::parse("b.yml", &entry("hello\n    tags: [x]", "/h"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `tags`"), "{e}");

    // One binary per path, whichever builds it ("/usr/bin/a" and
    // "usr/bin/a" are the same).
    let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  build_packages: [golang-go]\ncargo:\n  - {package: a, path: /usr/bin/a}\ngo:\n  - {main: b, path: /usr/bin/b}\n  - {main: a, path: usr/bin/a}\n",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.yml: `go[1]`: path usr/bin/a is used twice"
    );
    let e = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  build_packages: [golang-go]\ngo:\n  - {main: a, path: /a}\n  - {main: b, path: /a}\n",
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "b.yml: `go[1]`: path /a is used twice");

    // `packages: []` needs build packages.
    let b = BuildYml::parse(
            "b.yml",
            "image: x\ndebian:\n  packages: []\n  build_packages: [golang-go]\ngo:\n  - {main: a, path: /a}\n",
        )
        .unwrap();
    assert_eq!(b.debian.unwrap().build_packages, ["golang-go"]);
    for text in [
        "image: x\ndebian:\n  packages: []\n  build_packages: []\n",
        "image: x\ndebian:\n  build_packages: []\n",
        "image: x\ndebian: {}\n",
    ] {
        let e = BuildYml::parse("b.yml", text).unwrap_err().to_string();
        assert!(e.contains("must list at least one package"), "{text}: {e}");
    }

    // Build packages are dependency relations too.
    let e = BuildYml::parse(
        "b.yml",
        "image: x\ndebian:\n  packages: [a]\n  build_packages: [golang-go, \"b (>>\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("b.yml: `debian.build_packages`: bad package \"b (>>\""),
        "{e}"
    );
}

#[test]
fn image_is_required_and_not_empty() {
    for text in ["org: x\n", "image: \"\"\n", ""] {
        let e = BuildYml::parse("p/build.yml", text).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p/build.yml: the `image` field is required (the image name, e.g. `image: init`)"
        );
    }
}
