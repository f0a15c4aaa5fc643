//! Merging several files (`linuxkit build a.yml b.yml`), `@pkg:` templates
//! and uid/gid allocation.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use linuxkit_config::*;

fn checks() -> Checks {
    Checks {
        sources_exist: false,
        home: None,
        ..Checks::default()
    }
}

fn merged(files: &[(&str, &str)]) -> Config {
    Config::parse_all(files.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
}

fn merged_kernel(a: &str, b: &str) -> Kernel {
    merged(&[("a.yml", a), ("b.yml", b)]).moby.kernel
}

fn strict() -> Checks {
    Checks {
        strict: true,
        ..checks()
    }
}

/// The first error of validating the merge of `a.yml` and `b.yml` with
/// `--strict` (so a warning counts too).
fn merge_error(a: &str, b: &str) -> String {
    merged(&[("a.yml", a), ("b.yml", b)])
        .validate(&strict())
        .unwrap_err()
        .to_string()
}

const A_KERNEL: &str = "kernel:\n  image: linuxkit/kernel:a\n  cmdline: console=a\n  binary: a-bin\n  tar: a.tar\n  ucode: a.cpio\n";

// ---------------------------------------------------------------- kernel

#[test]
fn kernel_image_overridden_only_when_set() {
    assert_eq!(merged_kernel(A_KERNEL, "").image, "linuxkit/kernel:a");
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  cmdline: x\n").image,
        "linuxkit/kernel:a"
    );
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  image: linuxkit/kernel:b\n").image,
        "linuxkit/kernel:b"
    );
    // An empty value does not count as set.
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  image: \"\"\n").image,
        "linuxkit/kernel:a"
    );
}

#[test]
fn kernel_cmdline_overridden_only_when_set() {
    assert_eq!(merged_kernel(A_KERNEL, "").cmdline, "console=a");
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  image: k\n").cmdline,
        "console=a"
    );
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  cmdline: console=b\n").cmdline,
        "console=b"
    );
}

#[test]
fn kernel_binary_overridden_only_when_set() {
    assert_eq!(merged_kernel(A_KERNEL, "").binary, "a-bin");
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  binary: b-bin\n").binary,
        "b-bin"
    );
}

#[test]
fn kernel_tar_overridden_only_when_set() {
    assert_eq!(merged_kernel(A_KERNEL, "").tar.as_deref(), Some("a.tar"));
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  tar: none\n")
            .tar
            .as_deref(),
        Some("none")
    );
    // `tar` is a pointer in the reference: an explicit empty string is set.
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  tar: \"\"\n")
            .tar
            .as_deref(),
        Some("")
    );
    assert_eq!(
        merged_kernel("", "kernel:\n  tar: b.tar\n").tar.as_deref(),
        Some("b.tar")
    );
}

#[test]
fn kernel_ucode_overridden_only_when_set() {
    assert_eq!(merged_kernel(A_KERNEL, "").ucode.as_deref(), Some("a.cpio"));
    assert_eq!(
        merged_kernel(A_KERNEL, "kernel:\n  ucode: b.cpio\n")
            .ucode
            .as_deref(),
        Some("b.cpio")
    );
}

#[test]
fn kernel_from_second_file_only() {
    let k = merged_kernel("init: [linuxkit/init:v1]\n", A_KERNEL);
    assert_eq!(k.image, "linuxkit/kernel:a");
    assert_eq!(k.ucode.as_deref(), Some("a.cpio"));
}

// ---------------------------------------------------------------- lists

#[test]
fn init_appended_in_order() {
    let c = merged(&[
        ("a.yml", "init: [i1, i2]\n"),
        ("b.yml", "init: [i3]\n"),
        ("c.yml", "init: [i4]\n"),
    ]);
    assert_eq!(c.moby.init, ["i1", "i2", "i3", "i4"]);
}

fn names(list: &[Image]) -> Vec<&str> {
    list.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn onboot_appended_in_order() {
    let c = merged(&[
        (
            "a.yml",
            "onboot:\n  - {name: a1, image: x}\n  - {name: a2, image: x}\n",
        ),
        ("b.yml", "onboot:\n  - {name: b1, image: x}\n"),
    ]);
    assert_eq!(names(&c.moby.onboot), ["a1", "a2", "b1"]);
}

#[test]
fn onshutdown_appended_in_order() {
    let c = merged(&[
        ("a.yml", "onshutdown:\n  - {name: a1, image: x}\n"),
        (
            "b.yml",
            "onshutdown:\n  - {name: b1, image: x}\n  - {name: b2, image: x}\n",
        ),
    ]);
    assert_eq!(names(&c.moby.onshutdown), ["a1", "b1", "b2"]);
}

#[test]
fn services_appended_in_order() {
    let c = merged(&[
        ("a.yml", "services:\n  - {name: a1, image: x}\n"),
        ("b.yml", ""),
        ("c.yml", "services:\n  - {name: c1, image: x}\n"),
    ]);
    assert_eq!(names(&c.moby.services), ["a1", "c1"]);
}

#[test]
fn files_appended_in_order() {
    let c = merged(&[
        ("a.yml", "files:\n  - {path: a, contents: x}\n"),
        (
            "b.yml",
            "files:\n  - {path: b, contents: x}\n  - {path: c, directory: true}\n",
        ),
    ]);
    let paths: Vec<_> = c.moby.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a", "b", "c"]);
}

#[test]
fn volumes_appended_in_order() {
    let c = merged(&[
        ("a.yml", "volumes:\n  - name: va\n"),
        ("b.yml", "volumes:\n  - name: vb\n"),
    ]);
    let names: Vec<_> = c.moby.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["va", "vb"]);
    // A container of the first file may bind a volume of the second.
    let c = merged(&[
        (
            "a.yml",
            "services:\n  - {name: s, image: x, binds: [\"vb:/data\"]}\n",
        ),
        ("b.yml", "volumes:\n  - name: vb\n"),
    ]);
    c.validate(&checks()).unwrap();
}

#[test]
fn trust_appended() {
    let c = merged(&[
        ("a.yml", "trust:\n  image: [i1]\n  org: [o1]\n"),
        ("b.yml", "trust:\n  image: [i2]\n"),
    ]);
    assert_eq!(
        c.moby.trust,
        Some(Trust {
            image: vec!["i1".into(), "i2".into()],
            org: vec!["o1".into()],
        })
    );
    let c = merged(&[("a.yml", ""), ("b.yml", "trust:\n  org: [o2]\n")]);
    assert_eq!(c.moby.trust.unwrap().org, ["o2"]);
    let c = merged(&[("a.yml", ""), ("b.yml", "")]);
    assert_eq!(c.moby.trust, None);
}

#[test]
fn parse_all_of_nothing_is_empty() {
    let c = Config::parse_all(std::iter::empty::<(&str, &str)>()).unwrap();
    assert_eq!(c.moby, Moby::default());
    assert_eq!(c.file_names().count(), 0);
}

#[test]
fn file_names_in_merge_order() {
    let c = merged(&[("a.yml", ""), ("dir/b.yml", ""), ("<stdin>", "")]);
    assert_eq!(
        c.file_names().collect::<Vec<_>>(),
        ["a.yml", "dir/b.yml", "<stdin>"]
    );
}

#[test]
fn merge_method_equals_parse_all() {
    let a = "init: [i1]\nservices:\n  - {name: s, image: x}\n";
    let b = "kernel:\n  image: k\ninit: [i2]\n";
    let mut m = Config::parse("a.yml", a).unwrap();
    m.merge(Config::parse("b.yml", b).unwrap());
    assert_eq!(m.moby, merged(&[("a.yml", a), ("b.yml", b)]).moby);
}

// ---------------------------------------------------------------- errors after a merge

const A_OK: &str = "\
kernel:
  image: linuxkit/kernel:6.6
init:
  - linuxkit/init:v1
onboot:
  - name: sysctl
    image: linuxkit/sysctl:v1
services:
  - name: getty
    image: linuxkit/getty:v1
";

#[test]
fn syntax_error_in_second_file_names_it() {
    let e = Config::parse_all([("a.yml", A_OK), ("b.yml", "init: [x\n")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.yml:1:7: invalid YAML: this `[` is never closed; add the missing `]`"
    );
}

#[test]
fn unknown_field_in_second_file_names_it() {
    let e = Config::parse_all([("a.yml", A_OK), ("b.yml", "\nservice: []\n")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.yml:2:1: unknown field `service`, did you mean `services`?"
    );
}

#[test]
fn bad_capability_in_second_file() {
    let b = "\
services:
  - name: dhcpcd
    image: linuxkit/dhcpcd:v1
    capabilities:
      - CAP_NET_ADMIN
      - CAP_NET_RAWW
";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:6:9: unknown capability `CAP_NET_RAWW`, did you mean `CAP_NET_RAW`?"
    );
}

#[test]
fn bad_capability_in_first_file_after_merge() {
    let a = "services:\n  - name: x\n    image: y\n    capabilities.add: [SYS_ADMIN]\n";
    assert_eq!(
        merge_error(a, A_OK),
        "a.yml:4:24: unknown capability `SYS_ADMIN`, did you mean `CAP_SYS_ADMIN`?"
    );
}

#[test]
fn error_in_third_file_of_three() {
    let c = merged(&[
        ("a.yml", A_OK),
        ("b.yml", "onboot:\n  - {name: b, image: x}\n"),
        (
            "c.yml",
            "\n\nonboot:\n  - name: c\n    image: x\n    net: bridge\n",
        ),
    ]);
    assert_eq!(
        c.validate(&strict()).unwrap_err().to_string(),
        "c.yml:6:10: `net: bridge` is taken as the path of a namespace to join; write `host`, `new`, `none` or an absolute path"
    );
    let warnings = c.validate(&checks()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn duplicate_service_across_files() {
    let b = "services:\n  - name: getty\n    image: linuxkit/getty:v2\n";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:2:11: duplicate service name `getty` (first used at a.yml:9:11); rename one of them"
    );
}

#[test]
fn duplicate_volume_across_files() {
    assert_eq!(
        merge_error("volumes:\n  - name: data\n", "\nvolumes:\n  - name: data\n"),
        "b.yml:3:11: duplicate volume name `data` (first used at a.yml:2:11); rename one of them"
    );
}

#[test]
fn kernel_image_error_in_the_file_that_set_it() {
    let b = "kernel:\n  image: https://example.com/kernel\n";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:2:10: image reference `https://example.com/kernel` must not have a URL scheme; write it as `registry/repository:tag`"
    );
}

#[test]
fn kernel_without_image_points_at_the_kernel_key() {
    let a = "init: [linuxkit/init:v1]\n";
    let b = "# tweak the command line\nkernel:\n  cmdline: quiet\n";
    assert_eq!(
        merge_error(a, b),
        "b.yml:2:1: the kernel section has no `image`, so it is ignored (no kernel is added); give an `image`"
    );
}

#[test]
fn file_error_in_second_file() {
    let b = "files:\n  - path: etc/x\n    contents: y\n    mode: \"u+rw\"\n";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:4:11: invalid mode `u+rw`: give octal permission bits as a string, such as \"0644\""
    );
}

#[test]
fn bind_in_second_file_to_readonly_volume_of_first() {
    let a = "volumes:\n  - name: certs\n    readonly: true\n";
    let b = "services:\n  - name: s\n    image: x\n    binds:\n      - certs:/etc/ssl\n";
    assert_eq!(
        merge_error(a, b),
        "b.yml:5:9: volume `certs` is read-only but is mounted read-write; add the `ro` option"
    );
}

#[test]
fn error_at_falls_back_to_enclosing_node() {
    let c = merged(&[
        ("a.yml", A_OK),
        ("b.yml", "services:\n  - {name: x, image: y}\n"),
    ]);
    // No `binds` in b.yml's service: the service itself is reported.
    assert_eq!(
        c.error_at("services", 1, "binds[3]", "boom").to_string(),
        "b.yml:2:5: boom"
    );
    assert_eq!(
        c.error_at("services", 0, "image", "boom").to_string(),
        "a.yml:10:12: boom"
    );
    assert_eq!(
        c.error_at("init", 0, "", "boom").to_string(),
        "a.yml:4:5: boom"
    );
    assert_eq!(
        c.kernel_error("image", "boom").to_string(),
        "a.yml:2:10: boom"
    );
    // Out of range: no location, but still an error.
    assert_eq!(c.error_at("services", 9, "", "boom").to_string(), "boom");
}

// ---------------------------------------------------------------- @pkg: templates

/// A resolver that records the directories it is asked for and answers
/// `resolved/<dir>:tag`.
struct FakeResolver {
    asked: RefCell<Vec<PathBuf>>,
}

impl FakeResolver {
    fn new() -> Self {
        FakeResolver {
            asked: RefCell::new(Vec::new()),
        }
    }

    fn resolve(&self, dir: &Path) -> Result<String, String> {
        self.asked.borrow_mut().push(dir.to_path_buf());
        if dir.ends_with("missing") {
            return Err(format!("no build.yml in {}", dir.display()));
        }
        Ok(format!("resolved/{}:tag", dir.display()))
    }
}

#[test]
fn templates_resolved_everywhere_relative_to_their_file() {
    let a = "\
kernel:
  image: \"@pkg:kernel\"
init:
  - \"@pkg:../init\"
  - linuxkit/runc:v1
onboot:
  - name: a
    image: \"@pkg:./pkg/a\"
";
    let b = "\
onshutdown:
  - name: b
    image: \"@pkg:b\"
services:
  - name: c
    image: \"@pkg:/abs/c\"
volumes:
  - name: v
    image: \"@pkg:vol\"
  - name: w
";
    let mut c = merged(&[("conf/a.yml", a), ("other/b.yml", b)]);
    let r = FakeResolver::new();
    c.resolve_templates(|d| r.resolve(d)).unwrap();
    let m = &c.moby;
    assert_eq!(m.kernel.image, "resolved/conf/kernel:tag");
    assert_eq!(m.init, ["resolved/conf/../init:tag", "linuxkit/runc:v1"]);
    assert_eq!(m.onboot[0].image, "resolved/conf/./pkg/a:tag");
    assert_eq!(m.onshutdown[0].image, "resolved/other/b:tag");
    assert_eq!(m.services[0].image, "resolved//abs/c:tag");
    assert_eq!(m.volumes[0].image, "resolved/other/vol:tag");
    assert_eq!(m.volumes[1].image, "");
    // Only templates are resolved, each once.
    assert_eq!(r.asked.borrow().len(), 6);
}

#[test]
fn template_in_stdin_is_relative_to_working_directory() {
    let mut c = merged(&[("<stdin>", "init: [\"@pkg:pkg/init\"]\n")]);
    c.resolve_templates(|d| Ok(d.display().to_string()))
        .unwrap();
    assert_eq!(c.moby.init, ["pkg/init"]);
}

#[test]
fn template_in_file_without_directory() {
    let mut c = merged(&[("a.yml", "init: [\"@pkg:pkg/init\"]\n")]);
    c.resolve_templates(|d| Ok(d.display().to_string()))
        .unwrap();
    assert_eq!(c.moby.init, ["pkg/init"]);
}

#[test]
fn template_resolver_error_is_located() {
    let b = "\nservices:\n  - name: s\n    image: \"@pkg:missing\"\n";
    let mut c = merged(&[("a.yml", A_OK), ("conf/b.yml", b)]);
    let r = FakeResolver::new();
    let e = c.resolve_templates(|d| r.resolve(d)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "conf/b.yml:4:12: cannot resolve `@pkg:missing`: no build.yml in conf/missing"
    );
}

#[test]
fn template_resolver_error_in_init_and_kernel() {
    let mut c = merged(&[("a.yml", "init:\n  - \"@pkg:missing\"\n")]);
    let e = c.resolve_templates(|_| Err("nope".into())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "a.yml:2:5: cannot resolve `@pkg:missing`: nope"
    );
    let mut c = merged(&[("a.yml", "kernel:\n  image: \"@pkg:k\"\n")]);
    let e = c.resolve_templates(|_| Err("nope".into())).unwrap_err();
    assert_eq!(e.to_string(), "a.yml:2:10: cannot resolve `@pkg:k`: nope");
}

#[test]
fn empty_template_is_an_error() {
    for text in ["init: [\"@pkg:\"]\n", "init: [\"@pkg:  \"]\n"] {
        let mut c = merged(&[("a.yml", text)]);
        let e = c
            .resolve_templates(|_| panic!("resolver called for an empty template"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.yml:1:8: `@pkg:` needs a package directory, e.g. `@pkg:./pkg/init`"
        );
    }
}

#[test]
fn template_prefix_constant() {
    assert_eq!(PKG_TEMPLATE_PREFIX, "@pkg:");
}

#[test]
fn no_templates_no_resolver_calls() {
    let mut c = merged(&[("a.yml", A_OK)]);
    let before = c.moby.clone();
    c.resolve_templates(|_| panic!("resolver called")).unwrap();
    assert_eq!(c.moby, before);
}

// ---------------------------------------------------------------- IdMap

#[test]
fn ids_allocated_from_100_onboot_onshutdown_services() {
    let c = merged(&[
        (
            "a.yml",
            "services:\n  - {name: s1, image: x}\nonboot:\n  - {name: b1, image: x}\n  - {name: b2, image: x}\n",
        ),
        (
            "b.yml",
            "services:\n  - {name: s2, image: x}\nonshutdown:\n  - {name: d1, image: x}\n",
        ),
    ]);
    let ids = IdMap::new(&c.moby);
    assert_eq!(ids.get("b1"), Some(100));
    assert_eq!(ids.get("b2"), Some(101));
    assert_eq!(ids.get("d1"), Some(102));
    assert_eq!(ids.get("s1"), Some(103));
    assert_eq!(ids.get("s2"), Some(104));
    assert_eq!(ids.get("nope"), None);
    assert_eq!(
        ids.names().collect::<Vec<_>>(),
        ["b1", "b2", "d1", "s1", "s2"]
    );
}

#[test]
fn ids_repeated_name_gets_the_later_id() {
    let m = Config::parse(
        "a.yml",
        "onboot:\n  - {name: x, image: i}\nservices:\n  - {name: y, image: i}\n  - {name: x, image: i}\n",
    )
    .unwrap()
    .moby;
    let ids = IdMap::new(&m);
    assert_eq!(ids.get("x"), Some(102));
    assert_eq!(ids.get("y"), Some(101));
}

#[test]
fn ids_resolve_root_numbers_and_names() {
    let m = Config::parse("a.yml", "services:\n  - {name: web, image: i}\n")
        .unwrap()
        .moby;
    let ids = IdMap::new(&m);
    assert_eq!(ids.resolve(&IdSpec::Name("root".into())), Some(0));
    assert_eq!(ids.resolve(&IdSpec::Name(String::new())), Some(0));
    assert_eq!(ids.resolve(&IdSpec::Id(0)), Some(0));
    assert_eq!(ids.resolve(&IdSpec::Id(4242)), Some(4242));
    assert_eq!(ids.resolve(&IdSpec::Name("web".into())), Some(100));
    assert_eq!(ids.resolve(&IdSpec::Name("nobody".into())), None);
}

#[test]
fn ids_used_by_files_across_files() {
    let a = "files:\n  - {path: home/web, directory: true, uid: web, gid: web}\n";
    let b = "services:\n  - {name: web, image: nginx}\n";
    let c = merged(&[("a.yml", a), ("b.yml", b)]);
    c.validate(&checks()).unwrap();
    let ids = IdMap::new(&c.moby);
    assert_eq!(
        ids.resolve(c.moby.files[0].uid.as_ref().unwrap()),
        Some(100)
    );
}

#[test]
fn first_allocated_id_constant() {
    assert_eq!(linuxkit_config::IdMap::default().get("x"), None);
}

#[test]
fn services_waiting_for_each_other_are_refused_at_the_wait() {
    let b = "\
services:
  - name: web
    image: x
    annotations:
      org.linuxkit.after: db
  - name: db
    image: x
    annotations:
      org.linuxkit.after: \"cache, web\"
  - name: cache
    image: x
";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:5:27: services wait for each other through `org.linuxkit.after` (web -> db -> web), so none of them would start; remove one of the waits"
    );
}

#[test]
fn service_policies_are_checked_at_their_annotation() {
    let b = "services:\n  - name: web\n    image: x\n    annotations: {org.linuxkit.restart: sometimes}\n";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:4:41: `org.linuxkit.restart: sometimes`: not a restart policy; use `no`, `always`, `on-failure` or `on-failure:N`"
    );
    let b = "services:\n  - name: web\n    image: x\n    annotations: {org.linuxkit.after: gety}\n";
    assert_eq!(
        merge_error(A_OK, b),
        "b.yml:4:39: `org.linuxkit.after`: there is no service `gety`, did you mean `getty`?"
    );
    // Valid ones build, and the reference's schema is untouched.
    let b = "services:\n  - name: web\n    image: x\n    annotations:\n      org.linuxkit.restart: on-failure:2\n      org.linuxkit.after: getty\n      org.linuxkit.wait-for: /run/x.sock\n";
    merged(&[("a.yml", A_OK), ("b.yml", b)])
        .validate(&strict())
        .unwrap();
}
