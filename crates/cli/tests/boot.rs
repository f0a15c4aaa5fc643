//! The whole system, booted: this repository's package set built by
//! `linuxkit pkg build` (Debian packages and our Rust init), the examples
//! built by `linuxkit build`, and booted by `linuxkit run qemu` under QEMU
//! TCG with Debian's cloud kernel. What the in-VM issue asks CI to prove:
//!
//! - the `check` image prints `suite PASSED` and powers the machine off;
//!   a deliberately broken check prints `FAILED` and the run fails;
//! - `examples/linuxkit.yml` boots, dhcpcd leases an address from QEMU's
//!   user network, the host reaches nginx through `--publish`, and the ACPI
//!   power button runs the onshutdown container before the VM exits 0;
//! - a service that crashes is reported on the console;
//! - `run --data` reaches `/run/config` through the metadata package;
//! - (boot/cloud.rs) the metadata package reads AWS's instance metadata
//!   from moto at 169.254.169.254, and `examples/linuxkit.yml` boots over
//!   the network from `run qemu --netboot`'s server.
//!
//! The packages go to a cache under Cargo's target tmp dir (package tags
//! are content hashes, so a rebuild is skipped when nothing changed); the
//! Debian downloads are cached in `~/.cache/linuxkit/debian`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Mutex, MutexGuard, OnceLock};

mod common;
use common::{linuxkit, nginx_answers_then_powers_off, root, succeeded};
#[path = "boot/cloud.rs"]
mod cloud;
use std::time::Duration;

/// The packages the tests' images use.
const PACKAGES: &[&str] = &[
    "kernel",
    "init",
    "crun",
    "runc",
    "containerd",
    "containerd-shim-runc",
    "ca-certificates",
    "sysctl",
    "dhcpcd",
    "getty",
    "rngd",
    "nginx",
    "busybox",
    "check",
    "poweroff",
    "metadata",
];

/// The shared cache with the package set built, once per test run.
fn cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("boot-cache");
        std::fs::create_dir_all(&dir).unwrap();
        let dirs: Vec<String> = PACKAGES.iter().map(|p| format!("pkg/{p}")).collect();
        succeeded(
            "linuxkit pkg build",
            linuxkit(&dir)
                .arg("pkg")
                .arg("build")
                .args(&dirs)
                .output()
                .unwrap(),
        );
        dir
    })
}

/// One VM at a time: two cores, and TCG is slow enough.
fn vm_slot() -> MutexGuard<'static, ()> {
    static SLOT: Mutex<()> = Mutex::new(());
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

/// `linuxkit build` of `yml` into `out`; returns the image's path prefix.
fn build(yml: &Path, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    succeeded(
        "linuxkit build",
        linuxkit(cache())
            .args(["build", "--dir"])
            .arg(out)
            .arg(yml)
            .output()
            .unwrap(),
    );
    let name = yml.file_stem().unwrap();
    out.join(name)
}

fn run_qemu(image: &Path, args: &[&str]) -> Output {
    let _slot = vm_slot();
    linuxkit(cache())
        .args(["run", "qemu", "--accel", "tcg", "--mem", "1024"])
        .args(args)
        .arg(image)
        .output()
        .unwrap()
}

/// Writes `DIR/NAME.yml`: a kernel and init images from this repository's
/// packages (`@pkg:` with absolute paths), then `rest`.
fn write_yml(dir: &Path, name: &str, init: &[&str], rest: &str) -> PathBuf {
    let p = root().join("pkg");
    let p = p.display();
    let mut y =
        format!("kernel:\n  image: \"@pkg:{p}/kernel\"\n  cmdline: \"console=ttyS0\"\ninit:\n");
    for i in init {
        y.push_str(&format!("  - \"@pkg:{p}/{i}\"\n"));
    }
    y.push_str(&rest.replace("PKG", &p.to_string()));
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, y).unwrap();
    path
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_image_passes_and_powers_off() {
    let console = check_image_boots_with("gzip");
    assert!(console.contains("Welcome to LinuxKit"), "{console}");
    // examples/ use crun, the init's first choice, run from a sealed copy
    // (so it does not copy itself at every run).
    assert!(
        console
            .contains("linuxkit: containers run with /usr/bin/crun (from a sealed copy in memory)"),
        "{console}"
    );
    // The poweroff container asked init for a clean shutdown.
    assert!(
        console.contains("linuxkit: shutting down (power off)"),
        "{console}"
    );
}

#[test]
fn broken_check_fails_the_run() {
    let out = tempfile::tempdir().unwrap();
    let yml = write_yml(
        out.path(),
        "broken-check",
        &["init", "runc"],
        r#"onboot:
  - name: check
    image: "@pkg:PKG/check"
    env: ["CHECK_REQUIRE=CONFIG_LINUXKIT_NO_SUCH_OPTION"]
  - name: poweroff
    image: "@pkg:PKG/poweroff"
    command: ["/poweroff.sh", "0"]
"#,
    );
    let image = build(&yml, out.path());
    let r = run_qemu(
        &image,
        &[
            "--expect",
            "suite PASSED",
            "--fail-on",
            "suite FAILED",
            "--timeout",
            "600",
        ],
    );
    assert!(!r.status.success(), "a failing check must fail the run");
    let console = text(&r.stdout);
    let err = text(&r.stderr);
    assert!(
        console.contains("check: FAIL CONFIG_LINUXKIT_NO_SUCH_OPTION"),
        "{console}"
    );
    // Without crun in the image, runc (the reference's runtime) runs them.
    assert!(
        console
            .contains("linuxkit: containers run with /usr/bin/runc (from a sealed copy in memory)"),
        "{console}"
    );
    assert!(
        err.contains("suite FAILED"),
        "the error names the failure text: {err}"
    );
    assert!(err.contains("last"), "the error quotes the console: {err}");
}

/// A Dockerfile package (built by buildah, `FROM` this repository's
/// busybox package through the reference's `@lkt:pkg:` build argument)
/// used by `build` like any package, and run in the booted machine.
#[test]
fn a_dockerfile_package_runs_in_the_booted_machine() {
    let out = tempfile::tempdir().unwrap();
    // Not next to the image (`run` would take a `greeting` directory for
    // the image).
    let dir = out.path().join("pkg/greeting");
    std::fs::create_dir_all(&dir).unwrap();
    let busybox = root().join("pkg/busybox");
    std::fs::write(
        dir.join("build.yml"),
        format!(
            "image: greeting\narches: [amd64]\nbuildArgs:\n  - BUSYBOX=@lkt:pkg:{}\n",
            busybox.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "ARG BUSYBOX\nFROM ${BUSYBOX} AS shell\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo hello from a Dockerfile package > /greeting\"]\n\
         FROM scratch\n\
         COPY --from=shell /bin/busybox /bin/busybox\n\
         COPY --from=shell /greeting /greeting\n\
         ENTRYPOINT [\"/bin/busybox\", \"cat\", \"/greeting\"]\n",
    )
    .unwrap();
    succeeded(
        "linuxkit pkg build",
        linuxkit(cache())
            .args(["pkg", "build"])
            .arg(&dir)
            .output()
            .unwrap(),
    );
    let yml = write_yml(
        out.path(),
        "greeting",
        &["init", "runc"],
        &format!(
            r#"onboot:
  - name: greeting
    image: "@pkg:{}"
  - name: poweroff
    image: "@pkg:PKG/poweroff"
    command: ["/poweroff.sh", "0"]
"#,
            dir.display()
        ),
    );
    let image = build(&yml, out.path());
    let r = succeeded(
        "run greeting",
        run_qemu(
            &image,
            &[
                "--expect",
                "hello from a Dockerfile package",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    assert!(
        console.contains("hello from a Dockerfile package"),
        "{console}"
    );
}

/// A service that exits 7 is reported with its status and log, run by
/// `shim` (a `linuxkit.shim=` value; LinuxKit's own when `None`) with runc
/// as the OCI runtime.
fn crashing_service_is_reported_with(shim: Option<&str>) {
    let out = tempfile::tempdir().unwrap();
    let init: &[&str] = match shim {
        Some("runc") => &["init", "runc", "containerd", "containerd-shim-runc"],
        _ => &["init", "runc", "containerd"],
    };
    let yml = write_yml(
        out.path(),
        "crash",
        init,
        // `broken` cannot start at all: its failure, with the runtime's
        // reason, is reported as the services start; `crasher` exits 7
        // two seconds after it started (after the services' summary).
        r#"services:
  - name: broken
    image: "@pkg:PKG/busybox"
    command: ["/nonexistent/program"]
  - name: crasher
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2; echo about to crash; exit 7"]
"#,
    );
    if let Some(shim) = shim {
        let y = std::fs::read_to_string(&yml).unwrap();
        let y = y.replace(
            "console=ttyS0",
            &format!("console=ttyS0 linuxkit.shim={shim}"),
        );
        std::fs::write(&yml, y).unwrap();
    }
    let image = build(&yml, out.path());
    let report = "service crasher: FAILED, exited with status 7";
    let r = succeeded(
        "run crash",
        run_qemu(
            &image,
            &[
                "--expect",
                report,
                "--expect",
                "services started: 1 of 2, 1 FAILED",
                "--powerdown-after",
                report,
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    // The service's own output follows, from its log.
    assert!(console.contains("about to crash"), "{console}");
    // The runtime's reason reaches the console through containerd.
    let failed = console
        .lines()
        .find(|l| l.contains("service broken: FAILED to start"))
        .unwrap_or_else(|| panic!("no start failure for broken in:\n{console}"));
    assert!(failed.contains("/nonexistent/program"), "{failed}");
    // The shim asked for ran it (the init falls back, saying so, when
    // containerd's is missing).
    assert!(!console.contains("linuxkit.shim=runc: no"), "{console}");
}

#[test]
fn crashing_service_is_reported_on_the_console() {
    crashing_service_is_reported_with(None);
}

#[test]
fn crashing_service_is_reported_under_containerds_runc_shim() {
    crashing_service_is_reported_with(Some("runc"));
}

#[test]
fn standard_example_serves_nginx_and_shuts_down_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let image = build(&root().join("examples/linuxkit.yml"), out.path());
    let _slot = vm_slot();
    nginx_answers_then_powers_off(
        || linuxkit(cache()),
        &image,
        out.path(),
        Duration::from_secs(600),
        "120",
    );
}

#[test]
fn metadata_cd_from_run_data_reaches_run_config() {
    let out = tempfile::tempdir().unwrap();
    let yml = write_yml(
        out.path(),
        "metadata",
        &["init", "runc"],
        r#"onboot:
  - name: metadata
    image: "@pkg:PKG/metadata"
  - name: dhcpcd
    image: "@pkg:PKG/dhcpcd"
    command: ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"]
  - name: show
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "echo \"resolv: $(/bin/busybox grep nameserver /etc/resolv.conf)\"; echo \"seen: $(cat /run/config/greeting) on $(hostname)\""]
    binds:
      - /run/config:/run/config
      - /run/resolvconf/resolv.conf:/etc/resolv.conf
    uts: host
  - name: poweroff
    image: "@pkg:PKG/poweroff"
    command: ["/poweroff.sh", "0"]
"#,
    );
    let image = build(&yml, out.path());
    let data = r#"{"hostname":{"content":"mdhost"},"greeting":{"content":"hello from the CD"}}"#;
    let r = succeeded(
        "run --data",
        run_qemu(
            &image,
            &[
                "--data",
                data,
                "--expect",
                "seen: hello from the CD on mdhost",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    assert!(console.contains("metadata: CDROM /dev/sr0"), "{console}");
    // dhcpcd's hook wrote QEMU's DNS server into the host's resolv.conf.
    assert!(console.contains("resolv: nameserver 10.0.2.3"), "{console}");
}

/// A container's first process that sets its TERM handler only after the
/// shutdown's TERM (the kernel drops that one: no handler yet) still gets
/// TERM: the shutdown sends it again while the process is there. `busy`
/// keeps the shutdown waiting long enough for `late` to set its handler.
/// The containers also print their personality: see the end.
#[test]
fn shutdown_reaches_a_service_that_handles_term_late() {
    let out = tempfile::tempdir().unwrap();
    let console_bind = r#"    binds:
      - /dev/console:/dev/console
    devices:
      - {path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}
"#;
    let yml = write_yml(
        out.path(),
        "lateterm",
        &["init", "crun", "containerd"],
        &format!(
            r#"onboot:
  - name: personality
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "echo ONBOOT-PERSONALITY-$(/bin/busybox cat /proc/self/personality)"]
services:
  - name: busy
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "trap '/bin/busybox sleep 2; exit 0' TERM; while :; do /bin/busybox sleep 0.1; done"]
  - name: late
    image: "@pkg:PKG/busybox"
{console_bind}    command: ["/bin/busybox", "sh", "-c", "echo SERVICE-PERSONALITY-$(/bin/busybox cat /proc/self/personality) > /dev/console; /bin/busybox sleep 1; trap 'echo LATE-GOT-TERM > /dev/console; exit 0' TERM; while :; do /bin/busybox sleep 0.1; done"]
"#
        ),
    );
    let image = build(&yml, out.path());
    // The onboot and service bundles as the reference writes them: with
    // `ociVersion` 1.2.1, which Debian 12's crun refuses ("unknown version
    // specified"); the init must make crun accept them (both expectations
    // below need both containers to run).
    with_reference_spec_version(
        &yml,
        &image,
        &[
            "containers/onboot/000-personality/config.json",
            "containers/services/late/config.json",
        ],
    );
    let r = succeeded(
        "run lateterm",
        run_qemu(
            &image,
            &[
                "--expect",
                "LATE-GOT-TERM",
                "--powerdown-after",
                "all services started",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    // Both went on TERM (busy after its 2 s), not on the KILL that ends
    // the grace: only the shims may be left for it.
    let killed = console
        .lines()
        .find(|l| l.contains("processes left after TERM"))
        .unwrap_or("");
    assert!(!killed.contains("busybox"), "{killed}\n{console}");
    // crun runs with a fixed address-space layout (fast under TCG), but
    // sets the spec's standard personality in the containers: their
    // programs are randomized (no ADDR_NO_RANDOMIZE, 0x0040000), onboot
    // (`crun run`, from PID 1) and services (`crun create`, from our shim).
    for what in [
        "ONBOOT-PERSONALITY-00000000",
        "SERVICE-PERSONALITY-00000000",
    ] {
        assert!(
            console.contains(what),
            "{what} not on the console:\n{console}"
        );
    }
}

/// Overrides the `config.json` files at `paths` (in the image built from
/// `yml` at `image`) with the same files saying `"ociVersion": "1.2.1"`, as
/// the reference writes them: a gzip'd newc archive appended to the initrd,
/// whose entries the kernel unpacks over the earlier ones.
fn with_reference_spec_version(yml: &Path, image: &Path, paths: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    succeeded(
        "linuxkit build --format tar",
        linuxkit(cache())
            .args(["build", "--format", "tar", "--dir"])
            .arg(dir.path())
            .arg(yml)
            .output()
            .unwrap(),
    );
    let tar = dir.path().join(format!(
        "{}.tar",
        image.file_name().unwrap().to_string_lossy()
    ));
    let mut found = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if paths.contains(&path.as_str()) {
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            found.insert(path, text);
        }
    }
    assert_eq!(found.len(), paths.len(), "bundles in the tar: {found:?}");
    let mut cpio = Vec::new();
    let mut entry = |name: &str, mode: u32, data: &[u8]| {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        cpio.extend_from_slice(header.as_bytes());
        cpio.extend_from_slice(name.as_bytes());
        cpio.push(0);
        cpio.resize(cpio.len().next_multiple_of(4), 0);
        cpio.extend_from_slice(data);
        cpio.resize(cpio.len().next_multiple_of(4), 0);
    };
    for (path, text) in &found {
        let key = text.find("\"ociVersion\"").expect("an ociVersion");
        let at = key + text[key..].find("\"1.0.2\"").expect("ours is 1.0.2");
        let reference = format!("{}\"1.2.1\"{}", &text[..at], &text[at + 7..]);
        entry(path, 0o100644, reference.as_bytes());
    }
    entry("TRAILER!!!", 0, b"");
    let initrd = PathBuf::from(format!("{}-initrd.img", image.display()));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&initrd)
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(&mut f, flate2::Compression::fast());
    gz.write_all(&cpio).unwrap();
    gz.finish().unwrap();
}

/// Milliseconds on the kernel clock of the first console line holding
/// `what` (`[   12.345678] linuxkit: ...`).
fn console_ms(console: &str, what: &str) -> Option<u64> {
    let line = console.lines().find(|l| l.contains(what))?;
    let (secs, _) = linuxkit_run::console::stamp_of(line, what)?;
    Some((secs * 1000.0) as u64)
}

#[test]
fn onboot_interfaces_reach_the_container_and_shutdown_is_prompt() {
    let out = tempfile::tempdir().unwrap();
    // `veth`: a veth pair made in the root namespace, lkv1 moved into the
    // container (lkv0 stays behind), and a bridge made inside it; its
    // network namespace is bound to a path, so it outlives the container
    // (and lkv0 with it: a veth pair goes when either end does). `joined`
    // joins that namespace and finds lkv1 there; `moved` gets the existing
    // lkv0 moved into its own. `plain` has no interfaces, so it runs
    // through `runc run`. The service `sleeper` is a container's PID 1
    // without a TERM handler, which TERM cannot stop: shutdown must not
    // wait 5 s for it.
    let yml = write_yml(
        out.path(),
        "ifaces",
        &["init", "crun", "containerd"],
        r#"onboot:
  - name: veth
    image: "@pkg:PKG/busybox"
    net: new
    command: ["/bin/busybox", "sh", "-c", "ls /sys/class/net; test -e /sys/class/net/lkv1 && test -e /sys/class/net/lkbr0 && test ! -e /sys/class/net/lkv0 && echo 'ifaces seen: lkv1 lkbr0'"]
    runtime:
      interfaces:
        - name: lkv1
          add: veth
          peer: lkv0
          createInRoot: false
        - name: lkbr0
          add: bridge
      bindNS:
        net: /run/netns/lktest
  - name: joined
    image: "@pkg:PKG/busybox"
    net: /run/netns/lktest
    command: ["/bin/busybox", "sh", "-c", "test -e /sys/class/net/lkv1 && echo 'joined seen: lkv1'"]
  - name: moved
    image: "@pkg:PKG/busybox"
    net: new
    command: ["/bin/busybox", "sh", "-c", "test -e /sys/class/net/lkv0 && echo 'moved seen: lkv0'"]
    runtime:
      interfaces:
        - name: lkv0
  - name: plain
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "echo plain ran; exit 3"]
onshutdown:
  - name: bye
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "echo", "onshutdown says bye"]
services:
  - name: sleeper
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sleep", "1000"]
"#,
    );
    let image = build(&yml, out.path());
    let r = succeeded(
        "run ifaces",
        run_qemu(
            &image,
            &[
                "--expect",
                "ifaces seen: lkv1 lkbr0",
                "--expect",
                "joined seen: lkv1",
                "--expect",
                "moved seen: lkv0",
                "--expect",
                "onshutdown says bye",
                "--powerdown-after",
                "all services started",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    assert!(
        console.contains("veth: interface lkv1: moved into the container"),
        "{console}"
    );
    // `runc run` still logs the output and reports the exit code.
    assert!(console.contains("plain ran"), "{console}");
    assert!(
        console.contains("onboot 003-plain: FAILED with exit code 3"),
        "{console}"
    );
    let bye = console_ms(&console, "onshutdown 000-bye: exited 0").expect("onshutdown ran");
    let off = console_ms(&console, "linuxkit: power off").expect("powered off");
    assert!(
        off - bye < 3000,
        "{} ms from onshutdown to power off:\n{console}",
        off - bye
    );
}

/// The check image built with `--initrd-compression C` boots to `suite
/// PASSED`: the kernel unpacks our zstd frames and LZ4 legacy streams, and
/// the files stored once (hard links across parts) are all there.
/// Returns the console.
fn check_image_boots_with(compression: &str) -> String {
    let out = tempfile::tempdir().unwrap();
    succeeded(
        "linuxkit build",
        linuxkit(cache())
            .args(["build", "--initrd-compression", compression, "--dir"])
            .arg(out.path())
            .arg(root().join("examples/check.yml"))
            .output()
            .unwrap(),
    );
    let image = out.path().join("check");
    let r = succeeded(
        "run check",
        run_qemu(
            &image,
            &[
                "--expect",
                "linuxkit check suite PASSED",
                "--fail-on",
                "FAILED",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    assert!(!console.contains("Initramfs unpacking failed"), "{console}");
    console
}

#[test]
fn check_image_boots_from_a_zstd_initrd() {
    check_image_boots_with("zstd");
}

#[test]
fn check_image_boots_from_an_lz4_initrd() {
    check_image_boots_with("lz4");
}

/// The `service` tool inside the machine (the init's applet, bound into a
/// service container with the containerd socket): `ls` lists the running
/// services, `pids`, `pause` and `resume` reach the shim's Pids, Pause
/// and Resume through containerd, `restart` and `stop` act on one, and the init reports the
/// stop on the console as a stop, not a failure.
#[test]
fn service_tool_lists_restarts_and_stops_services() {
    let out = tempfile::tempdir().unwrap();
    let script = "exec >/dev/console 2>&1; \
        i=0; until /usr/bin/service ls | /bin/busybox grep -q 'sleeper .*RUNNING'; do \
          i=$((i+1)); [ $i -gt 120 ] && echo SVC-NEVER-RUNNING && /usr/bin/service ls; \
          /bin/busybox sleep 1; done; \
        /usr/bin/service ls; \
        /usr/bin/service pids sleeper | /bin/busybox grep -qE '^[0-9]+$' && echo SVC-PIDS-OK; \
        /usr/bin/service pause sleeper && /usr/bin/service ls | /bin/busybox grep -q 'sleeper .*PAUSED' && echo SVC-PAUSED; \
        /usr/bin/service resume sleeper && /usr/bin/service ls | /bin/busybox grep -q 'sleeper .*RUNNING' && echo SVC-RESUMED; \
        /usr/bin/service restart sleeper && echo SVC-RESTARTED; \
        /usr/bin/service ls | /bin/busybox grep -q 'sleeper .*RUNNING' && echo SVC-RUNNING-AGAIN; \
        /usr/bin/service stop sleeper && echo SVC-STOPPED; \
        /usr/bin/service ls; \
        /usr/bin/service stop nosuch || echo SVC-UNKNOWN-REFUSED; \
        echo SVC-TEST-DONE";
    let yml = write_yml(
        out.path(),
        "svc",
        &["init", "crun", "containerd"],
        &format!(
            r#"services:
  - name: sleeper
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sleep", "1000"]
  - name: ctl
    image: "@pkg:PKG/busybox"
    binds:
      - /usr/bin/service:/usr/bin/service
      - /run:/run
      - /containers/services:/containers/services
      - /dev/console:/dev/console
    devices:
      - {{path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}}
    command: ["/bin/busybox", "sh", "-c", "{script}"]
"#
        ),
    );
    let image = build(&yml, out.path());
    let r = succeeded(
        "run svc",
        run_qemu(
            &image,
            &[
                "--expect",
                "SVC-TEST-DONE",
                "--fail-on",
                "SVC-NEVER-RUNNING",
                "--powerdown-after",
                "SVC-TEST-DONE",
                "--timeout",
                "600",
            ],
        ),
    );
    let console = text(&r.stdout);
    for marker in [
        "TASK",
        "SVC-PIDS-OK",
        "SVC-PAUSED",
        "SVC-RESUMED",
        "SVC-RESTARTED",
        "SVC-RUNNING-AGAIN",
        "SVC-STOPPED",
        "SVC-UNKNOWN-REFUSED",
        "service sleeper: stopped",
    ] {
        assert!(console.contains(marker), "no {marker:?} in:\n{console}");
    }
    assert!(
        !console.contains("service sleeper: FAILED"),
        "a requested stop is not a failure:\n{console}"
    );
}

/// The log daemon: a service that writes 50 MB keeps `/var/log` within
/// its rotation bound and the daemon's memory within its ring's, and
/// `logread` (the init's applet, bound into a service) shows its last
/// lines (stdout and stderr as separate sources), an onboot container's
/// output (as `onboot.000-hello.out`: the bundle's name, as the
/// reference's init names it) and the kernel's messages.
#[test]
fn chatty_service_stays_within_the_logs_bounds() {
    let out = tempfile::tempdir().unwrap();
    // 50 MiB of 1000-byte lines (the last one cut short by `head`, so a
    // newline ends it), then a last line on each stream, once
    // `ctl` has seen the lines the flood will push out of the ring.
    let chatty = "B=/bin/busybox; until [ -e /run/chatty-go ]; do $B sleep 1; done; \
        $B yes \\\"$(printf 'chatty%0993d' 0)\\\" | $B head -c 52428800; \
        echo; echo CHATTY-LAST-LINE; echo CHATTY-ERR-LINE >&2; exec $B sleep 100000";
    let script = "B=/bin/busybox; exec >/dev/console 2>&1; \
        i=0; until /usr/bin/logread | $B grep -q ';onboot.000-hello.out;onboot says hello'; do \
          i=$((i+1)); [ $i -gt 60 ] && break; $B sleep 1; done; \
        /usr/bin/logread | $B grep -q ';onboot.000-hello.out;onboot says hello' && echo LOG-ONBOOT-OK; \
        /usr/bin/logread | $B grep -q ';kmsg;Linux version' && echo LOG-KMSG-OK; \
        $B touch /run/chatty-go; \
        i=0; until /usr/bin/logread | $B grep -q ';chatty.out;CHATTY-LAST-LINE'; do \
          i=$((i+1)); [ $i -gt 300 ] && echo LOG-NEVER-DONE && break; $B sleep 3; done; \
        /usr/bin/logread | $B grep -q ';chatty.out;CHATTY-LAST-LINE' && echo LOG-LAST-LINE-OK; \
        /usr/bin/logread | $B grep -q ';chatty;CHATTY-ERR-LINE' && echo LOG-ERR-LINE-OK; \
        $B ls -l /var/log; \
        echo VAR-LOG-KB=$($B du -sk /var/log | $B cut -f1); \
        echo CHATTY-FILES=$($B ls /var/log | $B grep -c '^chatty.out.log'); \
        echo MEMLOGD-RSS-KB=$($B grep VmRSS /proc/$($B pidof memlogd)/status | $B tr -dc 0-9); \
        echo LOG-TEST-DONE";
    let yml = write_yml(
        out.path(),
        "logs",
        &["init", "crun", "containerd"],
        &format!(
            r#"onboot:
  - name: hello
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "echo", "onboot says hello"]
services:
  - name: chatty
    image: "@pkg:PKG/busybox"
    binds:
      - /run:/run
    command: ["/bin/busybox", "sh", "-c", "{chatty}"]
  - name: ctl
    image: "@pkg:PKG/busybox"
    pid: host
    binds:
      - /usr/bin/logread:/usr/bin/logread
      - /run:/run
      - /var/log:/var/log
      - /dev/console:/dev/console
    devices:
      - {{path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}}
    command: ["/bin/busybox", "sh", "-c", "{script}"]
"#
        ),
    );
    let image = build(&yml, out.path());
    let r = succeeded(
        "run logs",
        run_qemu(
            &image,
            &[
                "--expect",
                "LOG-TEST-DONE",
                "--fail-on",
                "LOG-NEVER-DONE",
                "--powerdown-after",
                "LOG-TEST-DONE",
                "--timeout",
                "1500",
            ],
        ),
    );
    let console = text(&r.stdout);
    for marker in [
        "LOG-LAST-LINE-OK",
        "LOG-ERR-LINE-OK",
        "LOG-ONBOOT-OK",
        "LOG-KMSG-OK",
    ] {
        assert!(console.contains(marker), "no {marker:?} in:\n{console}");
    }
    let value = |key: &str| -> u64 {
        console
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in:\n{console}"))
    };
    // 10 files of about 1 MiB for chatty's stdout (the reference's
    // logwrite defaults), little else.
    assert_eq!(value("CHATTY-FILES="), 10, "{console}");
    let var_log = value("VAR-LOG-KB=");
    assert!(
        var_log < 16 * 1024,
        "/var/log holds {var_log} KiB:\n{console}"
    );
    // 5000 lines of at most 1 KiB in the ring.
    let rss = value("MEMLOGD-RSS-KB=");
    assert!(rss < 32 * 1024, "memlogd uses {rss} KiB:\n{console}");
    // The daemon ends on the shutdown's TERM like any process.
    assert!(
        !console
            .lines()
            .any(|l| l.contains("left after TERM") && l.contains("memlogd")),
        "memlogd outlived the TERM:\n{console}"
    );
}

/// Restart policies and ordering (`org.linuxkit.*` annotations): a
/// service that exits 3 twice then stays up is restarted twice (said on
/// the console and in its log) and is running at the end; a service
/// ordered after a later one (by name) starts after it; one waiting for a
/// file starts once the file exists.
#[test]
fn services_restart_by_policy_and_start_in_order() {
    let out = tempfile::tempdir().unwrap();
    let flapper = "B=/bin/busybox; n=$($B cat /run/flaps 2>/dev/null || echo 0); \
        echo $((n+1)) > /run/flaps; [ $n -ge 2 ] && exec $B sleep 100000; echo flap $n; exit 3";
    let script = "B=/bin/busybox; exec >/dev/console 2>&1; \
        i=0; until [ \\\"$($B cat /run/flaps 2>/dev/null)\\\" = 3 ] && /usr/bin/service ls | $B grep -q 'flapper .*RUNNING'; do \
          i=$((i+1)); [ $i -gt 120 ] && echo FLAP-NEVER-UP && break; $B sleep 1; done; \
        $B sleep 5; \
        /usr/bin/service ls | $B grep -q 'flapper .*RUNNING' && [ \\\"$($B cat /run/flaps)\\\" = 3 ] && echo FLAP-STAYED-UP; \
        /usr/bin/logread | $B grep -q ';flapper;linuxkit: service flapper: restarting' && echo FLAP-LOGGED; \
        /usr/bin/service ls; echo ORDER-TEST-DONE";
    let yml = write_yml(
        out.path(),
        "order",
        &["init", "crun", "containerd"],
        &format!(
            r#"services:
  - name: a-dependent
    image: "@pkg:PKG/busybox"
    annotations:
      org.linuxkit.after: z-dependency
    command: ["/bin/busybox", "sleep", "100000"]
  - name: b-waiter
    image: "@pkg:PKG/busybox"
    annotations:
      org.linuxkit.wait-for: /run/z-ready
    binds:
      - /run:/run
      - /dev/console:/dev/console
    devices:
      - {{path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}}
    command: ["/bin/busybox", "sh", "-c", "[ -e /run/z-ready ] && echo WAITFOR-OK >/dev/console; exec /bin/busybox sleep 100000"]
  - name: flapper
    image: "@pkg:PKG/busybox"
    annotations:
      org.linuxkit.restart: on-failure:5
    binds:
      - /run:/run
    command: ["/bin/busybox", "sh", "-c", "{flapper}"]
  - name: z-dependency
    image: "@pkg:PKG/busybox"
    binds:
      - /run:/run
    command: ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 2; /bin/busybox touch /run/z-ready; exec /bin/busybox sleep 100000"]
  - name: ctl
    image: "@pkg:PKG/busybox"
    binds:
      - /usr/bin/service:/usr/bin/service
      - /usr/bin/logread:/usr/bin/logread
      - /run:/run
      - /containers/services:/containers/services
      - /dev/console:/dev/console
    devices:
      - {{path: /dev/console, type: c, major: 5, minor: 1, mode: "0666"}}
    command: ["/bin/busybox", "sh", "-c", "{script}"]
"#
        ),
    );
    let image = build(&yml, out.path());
    let r = succeeded(
        "run order",
        run_qemu(
            &image,
            &[
                "--expect",
                "ORDER-TEST-DONE",
                "--fail-on",
                "FLAP-NEVER-UP",
                "--powerdown-after",
                "ORDER-TEST-DONE",
                "--timeout",
                "900",
            ],
        ),
    );
    let console = text(&r.stdout);
    for marker in [
        "service flapper: restarting in 1 s (restart 1 of 5, exit status 3)",
        "service flapper: restarting in 2 s (restart 2 of 5, exit status 3)",
        "FLAP-STAYED-UP",
        "FLAP-LOGGED",
        "WAITFOR-OK",
        "service a-dependent: starting after z-dependency",
    ] {
        assert!(console.contains(marker), "no {marker:?} in:\n{console}");
    }
    assert!(
        !console.contains("(restart 3 of 5"),
        "a third restart:\n{console}"
    );
    let at = |what: &str| {
        console
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in:\n{console}"))
    };
    assert!(
        at("service z-dependency: started") < at("service a-dependent: started"),
        "a-dependent started before z-dependency:\n{console}"
    );
}
