//! Leaving this machine (issue 23), booted: the metadata package against a
//! real AWS instance metadata service, and network boot from `serve`.
//!
//! The metadata VM runs in a network namespace this test creates, where
//! 169.254.169.254 is a local address with moto's server on it: QEMU's
//! user network connects from the namespace, so the guest reaches the
//! service at the real link-local address and the provider code is the
//! one a cloud runs. The other providers' clients are tested against local
//! servers of their documented paths in crates/init (the same code).

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// moto's server, as scripts/setup installs it (pinned in scripts/check-tools): its instance
/// metadata answers the IMDSv2 token PUT and the meta-data paths the AWS
/// provider reads.
const MOTO: &str = "moto_server";

/// `linuxkit ARGS` run inside a new network namespace whose loopback has
/// 169.254.169.254 with moto's server listening on port 80.
fn in_netns_with_moto(args: &[&std::ffi::OsStr]) -> Output {
    let script = r#"set -e
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
"$MOTO" -H 169.254.169.254 -p 80 >"$MOTO_LOG" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; wait $moto 2>/dev/null' EXIT
# Until moto answers (it takes a few seconds to import its services).
python3 - <<'PY'
import socket, time, sys
for _ in range(600):
    try:
        socket.create_connection(("169.254.169.254", 80), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("moto_server did not listen on 169.254.169.254:80")
PY
set +e
"$@"
"#;
    let lk = linuxkit(cache());
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto.log");
    let mut c = std::process::Command::new("unshare");
    c.args(["--net", "--", "sh", "-c", script, "sh"])
        .arg(lk.get_program())
        .args(args)
        .env("MOTO", MOTO)
        .env("MOTO_LOG", &log)
        .current_dir(root())
        .stdin(std::process::Stdio::null());
    for (k, v) in lk.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().unwrap();
    if !out.status.success() {
        eprintln!(
            "moto's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    out
}

#[test]
fn metadata_reads_aws_imds_from_moto_at_the_link_local_address() {
    let out = tempfile::tempdir().unwrap();
    // The metadata container with the reference's default provider list
    // (no command): aws is probed first, after dhcpcd has the network up.
    let yml = write_yml(
        out.path(),
        "awsmeta",
        &["init", "runc"],
        r#"onboot:
  - name: dhcpcd
    image: "@pkg:PKG/dhcpcd"
    command: ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf", "-1"]
  - name: metadata
    image: "@pkg:PKG/metadata"
  - name: show
    image: "@pkg:PKG/busybox"
    command: ["/bin/busybox", "sh", "-c", "cd /run/config && echo \"imds: $(cat provider) $(cat hostname) $(cat instance_id) $(cat instance_type) $(cat availability_zone) $(cat public_ipv4) on $(hostname)\""]
    binds:
      - /run/config:/run/config
    uts: host
  - name: poweroff
    image: "@pkg:PKG/poweroff"
    command: ["/poweroff.sh", "0"]
"#,
    );
    let image = build(&yml, out.path());
    let _slot = vm_slot();
    let args: Vec<&std::ffi::OsStr> = [
        "run",
        "qemu",
        "--accel",
        "tcg",
        "--mem",
        "1024",
        "--expect",
        "imds: AWS moto-instance.ec2.internal i-fake moto.virtual us-east-1a 198.51.100.1 on moto-instance.ec2.internal",
        "--timeout",
        "600",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .chain([image.as_os_str()])
    .collect();
    let r = succeeded("run qemu in a netns with moto", in_netns_with_moto(&args));
    let console = text(&r.stdout);
    assert!(
        console.contains("metadata: AWS: probe succeeded"),
        "{console}"
    );
    // moto has no user data (its S3 answers the path): not an error.
    assert!(console.contains("metadata: AWS: no user data"), "{console}");
}

/// `examples/linuxkit.yml` boots over the network: a QEMU machine with no
/// disk and no `-kernel` gets the iPXE script's URL from QEMU's DHCP, and
/// iPXE fetches script, kernel and initrd from the directory `run qemu
/// --netboot` serves (serve's code); the services come up and the power
/// button shuts it down cleanly.
#[test]
fn standard_example_boots_over_the_network() {
    let out = tempfile::tempdir().unwrap();
    let image = build(&root().join("examples/linuxkit.yml"), out.path());
    let r = succeeded(
        "run qemu --netboot",
        run_qemu(
            &image,
            &[
                "--netboot",
                "--powerdown-after",
                "all services started",
                "--expect",
                "so long and thanks for all the fish",
                "--timeout",
                "900",
            ],
        ),
    );
    let console = text(&r.stdout);
    let stderr = text(&r.stderr);
    // iPXE fetched the three files from serve (its request log), not
    // from QEMU's -kernel.
    for f in ["linuxkit.ipxe", "linuxkit-kernel", "linuxkit-initrd.img"] {
        assert!(
            stderr.contains(&format!("GET /{f}")),
            "{f} was not requested:\n{stderr}\n{console}"
        );
    }
    assert!(console.contains("iPXE"), "{console}");
    assert!(console.contains("all services started"), "{console}");
    assert!(!console.contains("FAILED"), "{console}");
    let script = std::fs::read_to_string(out.path().join("linuxkit.ipxe")).unwrap();
    assert!(script.starts_with("#!ipxe\n"), "{script}");
}

/// `GET path` from `addr`: the status line and the body.
fn get_raw(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let status = r.lines().next().unwrap_or("").to_string();
    let body = r
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// `serve` (what iPXE fetches from) serves the directory's files and links
/// that stay inside it, and nothing outside: no `..` climbs above it and
/// no link leads out of it.
#[test]
fn serve_keeps_to_its_directory() {
    use std::io::BufRead;
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("www");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.ipxe"), "#!ipxe\n").unwrap();
    std::fs::write(top.path().join("secret"), "outside").unwrap();
    std::os::unix::fs::symlink("a.ipxe", dir.join("inside")).unwrap();
    std::os::unix::fs::symlink("../secret", dir.join("outside")).unwrap();
    std::os::unix::fs::symlink(top.path(), dir.join("up")).unwrap();
    let mut child = linuxkit(top.path())
        .args(["serve", "--port", "127.0.0.1:0", "--directory"])
        .arg(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let results: Vec<(&str, (String, String))> = [
        "/a.ipxe",
        "/inside",
        "/outside",
        "/up/secret",
        "/../secret",
        "/%2e%2e/secret",
    ]
    .iter()
    .map(|p| (*p, get_raw(&addr, p)))
    .collect();
    let _ = child.kill();
    let _ = child.wait();
    for (p, (status, body)) in &results {
        let served = matches!(*p, "/a.ipxe" | "/inside");
        if served {
            assert!(status.contains(" 200 "), "{p}: {status}");
            assert_eq!(body, "#!ipxe\n", "{p}");
        } else {
            assert!(status.contains(" 404 "), "{p}: {status}");
            assert!(!body.contains("outside"), "{p}: {body}");
        }
    }
}
