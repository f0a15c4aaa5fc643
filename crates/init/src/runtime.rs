//! `runtime.json`: what a bundle needs done outside the container, before
//! `runc create` (mounts, directories, cgroups) and after it (namespaces
//! bound to paths, network interfaces).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use linuxkit_config::{RuntimeJson, RuntimeJsonInterface};

use crate::info;
use crate::mount::{mount_words, unescape_path};
use crate::netlink::{self, IFNAME_MAX};

/// Reads `DIR/runtime.json`; a bundle without one has nothing to prepare.
pub fn load(bundle: &Path) -> io::Result<RuntimeJson> {
    let path = bundle.join("runtime.json");
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RuntimeJson::default()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// A path of runtime.json: relative ones live in the bundle's `rootfs`.
fn resolve(bundle: &Path, p: &str) -> PathBuf {
    if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        bundle.join("rootfs").join(p)
    }
}

/// Before `runc create`: the mounts in order (creating each destination
/// and any overlay `upperdir`/`workdir`), then `mkdir`, then `cgroups`.
///
/// A destination that is already a mount point was prepared by an earlier
/// start of the same bundle (`service restart`) and is left as it is:
/// mounting again would stack a fresh tmpfs or overlay on it at every
/// restart, hiding the old one but keeping its memory.
pub fn prepare_filesystem(bundle: &Path, rt: &RuntimeJson) -> io::Result<()> {
    let mounted = mount_points();
    for m in &rt.mounts {
        let dest = resolve(bundle, &m.destination);
        if mounted.contains(&dest) {
            continue;
        }
        fs::create_dir_all(&dest)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", dest.display())))?;
        for o in &m.options {
            if let Some(d) = o
                .strip_prefix("upperdir=")
                .or_else(|| o.strip_prefix("workdir="))
            {
                fs::create_dir_all(d)
                    .map_err(|e| io::Error::new(e.kind(), format!("mkdir {d}: {e}")))?;
            }
        }
        mount_words(&m.source, &dest, &m.kind, &m.options)?;
    }
    for d in &rt.mkdir {
        let d = resolve(bundle, d);
        fs::create_dir_all(&d)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", d.display())))?;
    }
    for c in &rt.cgroups {
        let d = Path::new("/sys/fs/cgroup").join(c);
        fs::create_dir_all(&d)
            .map_err(|e| io::Error::new(e.kind(), format!("mkdir {}: {e}", d.display())))?;
    }
    Ok(())
}

/// The mount points of this mount namespace, from `/proc/self/mountinfo`
/// (field 5, with the kernel's octal escapes of space, tab, newline and
/// backslash undone); empty if it cannot be read.
fn mount_points() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mount_points(&text)
}

fn parse_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_path(p)))
        .collect()
}

/// Whether the bundle needs [`prepare_process`]: work between `runc
/// create` and `runc start` (interfaces to create or move, namespaces to
/// bind). A bundle without any can be run with a single `runc run`.
pub fn needs_process_step(rt: &RuntimeJson) -> bool {
    !rt.interfaces.is_empty() || rt.bind_ns.entries().iter().any(|(_, p)| !p.is_empty())
}

/// One netlink step of runtime.json's `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStep {
    /// Create link `name` of `kind` (a veth with its other end `peer`),
    /// directly in the container's network namespace if `in_container`,
    /// else in the init's.
    Create {
        /// The new link's name (`eth0`).
        name: String,
        /// The link type, as `ip link add ... type` takes it (`veth`,
        /// `bridge`, `dummy`, ...).
        kind: String,
        /// For a veth, the name of its other end; `None` for other kinds.
        peer: Option<String>,
        /// Create the link inside the container's network namespace
        /// (`createInNamespace`) rather than in the init's.
        in_container: bool,
    },
    /// Move the existing link `name` into the container's namespace.
    Move {
        /// The link to move, as the init's namespace names it.
        name: String,
    },
}

/// The steps for `interfaces`, worked out (and checked) before anything
/// is done, with the reference's rules:
///
/// - a `peer` without `add` means `add: veth`, and a veth needs a `peer`;
/// - a veth, or any link with `createInRoot`, is created in the init's
///   namespace and its `name` end then moved into the container (a veth's
///   `peer` stays behind: that is the point of it);
/// - any other `add` is created straight inside the container;
/// - no `add`: an existing link is moved in.
///
/// Links are never brought up or given addresses: that is the container's
/// business (as in the reference).
pub fn interface_steps(ifaces: &[RuntimeJsonInterface]) -> Result<Vec<LinkStep>, String> {
    let mut steps = Vec::new();
    for (i, ifc) in ifaces.iter().enumerate() {
        let name = ifc.name.as_str();
        if name.is_empty() {
            return Err(format!("interfaces[{i}] has no `name`"));
        }
        for n in [name, ifc.peer.as_str()] {
            if n.len() > IFNAME_MAX || n.contains(['/', ' ', '\0']) || n == "." || n == ".." {
                return Err(format!("interface {name}: `{n}` is not a valid link name"));
            }
        }
        let kind = if ifc.add.is_empty() && !ifc.peer.is_empty() {
            "veth"
        } else {
            ifc.add.as_str()
        };
        if kind.is_empty() {
            steps.push(LinkStep::Move { name: name.into() });
            continue;
        }
        if kind == "veth" && ifc.peer.is_empty() {
            return Err(format!("interface {name}: a veth pair needs a `peer`"));
        }
        if kind != "veth" && !ifc.peer.is_empty() {
            return Err(format!(
                "interface {name}: `peer` is only for veth pairs, not `{kind}`"
            ));
        }
        let in_root = ifc.create_in_root || kind == "veth";
        steps.push(LinkStep::Create {
            name: name.into(),
            kind: kind.into(),
            peer: (!ifc.peer.is_empty()).then(|| ifc.peer.clone()),
            in_container: !in_root,
        });
        if in_root {
            steps.push(LinkStep::Move { name: name.into() });
        }
    }
    Ok(steps)
}

/// Carries out `steps` for the container whose first process is `pid`.
fn apply_link_steps(name: &str, steps: &[LinkStep], pid: i32) -> io::Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    let mut nl = netlink::Socket::open()
        .map_err(|e| io::Error::new(e.kind(), format!("opening a netlink socket: {e}")))?;
    for step in steps {
        match step {
            LinkStep::Create {
                name: link,
                kind,
                peer,
                in_container,
            } => {
                let ns = in_container.then_some(pid);
                nl.add_link(link, kind, peer.as_deref(), ns).map_err(|e| {
                    let peer = peer
                        .as_deref()
                        .map(|p| format!(", peer {p}"))
                        .unwrap_or_default();
                    let place = if *in_container {
                        "in the container"
                    } else {
                        "in the root namespace"
                    };
                    io::Error::new(
                        e.kind(),
                        format!("interface {link} ({kind}{peer}): creating it {place}: {e}"),
                    )
                })?;
                info!("{name}: interface {link}: created ({kind})");
            }
            LinkStep::Move { name: link } => {
                nl.move_link(link, pid).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("interface {link}: moving it into the container (pid {pid}): {e}"),
                    )
                })?;
                info!("{name}: interface {link}: moved into the container");
            }
        }
    }
    Ok(())
}

/// After `runc create`, with the container's first process `pid` (its
/// namespaces exist, its program has not started): runtime.json's
/// `interfaces` created in or moved into its network namespace, then its
/// namespaces bound to the paths `bindNS` names, so later containers can
/// join them (`net: /run/netns/x`) and find the interfaces there.
pub fn prepare_process(name: &str, rt: &RuntimeJson, pid: i32) -> io::Result<()> {
    let steps = interface_steps(&rt.interfaces)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    apply_link_steps(name, &steps, pid)?;
    for (kind, path) in rt.bind_ns.entries() {
        if path.is_empty() {
            continue;
        }
        let target = Path::new(path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir)?;
        }
        if !target.exists() {
            fs::File::create(target)
                .map_err(|e| io::Error::new(e.kind(), format!("create {path}: {e}")))?;
        }
        let src = format!("/proc/{pid}/ns/{kind}");
        crate::mount::mount(&src, target, "", nix::mount::MsFlags::MS_BIND, "")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_come_from_mountinfo_with_escapes_undone() {
        let info = "22 1 0:21 / / ro,relatime - rootfs rootfs rw\n\
            40 22 0:33 / /containers/services/a\\040b/tmp rw - tmpfs tmpfs rw\n\
            41 22 0:34 / /x\\134y\\7 rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse_mount_points(info),
            [
                PathBuf::from("/"),
                PathBuf::from("/containers/services/a b/tmp"),
                PathBuf::from("/x\\y\\7"),
            ]
        );
    }

    fn ifc(name: &str, add: &str, peer: &str, create_in_root: bool) -> RuntimeJsonInterface {
        RuntimeJsonInterface {
            name: name.into(),
            add: add.into(),
            peer: peer.into(),
            create_in_root,
        }
    }

    fn create(name: &str, kind: &str, peer: Option<&str>, in_container: bool) -> LinkStep {
        LinkStep::Create {
            name: name.into(),
            kind: kind.into(),
            peer: peer.map(String::from),
            in_container,
        }
    }

    fn mv(name: &str) -> LinkStep {
        LinkStep::Move { name: name.into() }
    }

    #[test]
    fn a_veth_is_made_in_the_root_and_one_end_moved_in() {
        for add in ["veth", ""] {
            let s = interface_steps(&[ifc("veth1", add, "veth0", false)]).unwrap();
            assert_eq!(
                s,
                [create("veth1", "veth", Some("veth0"), false), mv("veth1")]
            );
        }
    }

    #[test]
    fn other_kinds_are_made_inside_unless_create_in_root() {
        let s = interface_steps(&[
            ifc("br0", "bridge", "", false),
            ifc("wg0", "wireguard", "", true),
        ])
        .unwrap();
        assert_eq!(
            s,
            [
                create("br0", "bridge", None, true),
                create("wg0", "wireguard", None, false),
                mv("wg0"),
            ]
        );
    }

    #[test]
    fn a_name_alone_moves_an_existing_link() {
        assert_eq!(
            interface_steps(&[ifc("eth1", "", "", false)]).unwrap(),
            [mv("eth1")]
        );
        // createInRoot means nothing without `add`.
        assert_eq!(
            interface_steps(&[ifc("eth1", "", "", true)]).unwrap(),
            [mv("eth1")]
        );
    }

    #[test]
    fn bad_entries_are_refused_before_anything_is_done() {
        let e = interface_steps(&[
            ifc("a", "veth", "b", false),
            ifc("veth9", "veth", "", false),
        ])
        .unwrap_err();
        assert!(e.contains("veth9") && e.contains("peer"), "{e}");
        let e = interface_steps(&[ifc("", "veth", "b", false)]).unwrap_err();
        assert!(e.contains("interfaces[0]"), "{e}");
        let e = interface_steps(&[ifc("br0", "bridge", "x", false)]).unwrap_err();
        assert!(e.contains("br0") && e.contains("only for veth"), "{e}");
        let e = interface_steps(&[ifc("a-very-long-interface", "veth", "b", false)]).unwrap_err();
        assert!(e.contains("not a valid link name"), "{e}");
    }

    #[test]
    fn only_interfaces_or_binds_need_the_process_step() {
        let mut rt = RuntimeJson::default();
        // runtime.json as `linuxkit build` writes it: every bindNS key, "".
        assert!(!needs_process_step(&rt));
        rt.bind_ns.net = "/run/netns/x".into();
        assert!(needs_process_step(&rt));
        rt.bind_ns.net.clear();
        rt.interfaces = vec![ifc("eth1", "", "", false)];
        assert!(needs_process_step(&rt));
    }
}

/// The netlink steps for real, in network namespaces of the test's own
/// (needs root: the test fails, saying so, where a namespace cannot be made;
/// nothing is skipped silently).
#[cfg(test)]
mod netns_tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn links_of(pid: &str) -> String {
        fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default()
    }

    #[test]
    fn interfaces_are_created_and_moved_into_a_process_namespace() {
        std::thread::spawn(|| {
            // This thread gets a network namespace of its own, so the
            // links made "in the root" are made there, not on the host.
            if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
                panic!("cannot make a network namespace ({e}): run the tests as root, as CI does");
            }
            let mut child = Command::new("unshare")
                .args(["-n", "sleep", "30"])
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("unshare(1) is needed (util-linux; scripts/setup installs it): {e}")
                });
            let pid = child.id() as i32;
            // Wait until the child is in its namespace.
            let mine = fs::read_link("/proc/thread-self/ns/net").unwrap();
            while fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_ref() == Some(&mine) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(
                matches!(child.try_wait(), Ok(None)),
                "unshare -n failed: run the tests as root, as CI does"
            );
            let steps = interface_steps(&[
                RuntimeJsonInterface {
                    name: "lkv1".into(),
                    add: "veth".into(),
                    peer: "lkv0".into(),
                    create_in_root: false,
                },
                RuntimeJsonInterface {
                    name: "lkb0".into(),
                    add: "bridge".into(),
                    ..RuntimeJsonInterface::default()
                },
            ])
            .unwrap();
            let r = apply_link_steps("test", &steps, pid);
            let theirs = links_of(&pid.to_string());
            let ours = links_of("thread-self");
            let r2 = apply_link_steps(
                "test",
                &[LinkStep::Move {
                    name: "lkv0".into(),
                }],
                pid,
            );
            let theirs2 = links_of(&pid.to_string());
            let missing = apply_link_steps(
                "test",
                &[LinkStep::Move {
                    name: "nope0".into(),
                }],
                pid,
            )
            .unwrap_err()
            .to_string();
            let _ = child.kill();
            let _ = child.wait();
            if let Err(e) = &r
                && e.kind() == io::ErrorKind::Unsupported
            {
                panic!("this kernel lacks veth or bridge, which the test needs: {e}");
            }
            r.unwrap();
            r2.unwrap();
            assert!(
                theirs.contains("lkv1:") && theirs.contains("lkb0:"),
                "{theirs}"
            );
            assert!(ours.contains("lkv0:") && !ours.contains("lkv1:"), "{ours}");
            assert!(theirs2.contains("lkv0:"), "{theirs2}");
            assert!(
                missing.contains("interface nope0") && missing.contains("moving it"),
                "{missing}"
            );
        })
        .join()
        .unwrap();
    }
}
