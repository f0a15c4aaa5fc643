//! `runtime.json`: what the in-VM init does for a container outside it,
//! around `runc create`. Its type is `linuxkit_config::RuntimeJson`, the
//! one the init reads; here the container's `runtime:` settings are
//! resolved into it (YAML over label, key by key), the mounts that make the
//! bundle's `rootfs` are put in front, and it is written as the reference
//! writes it.

use linuxkit_config::{
    Image, ImageConfig, Mount, Runtime, RuntimeJson, RuntimeJsonBindNs, RuntimeJsonInterface,
};

use crate::spec::go_json::to_go_json;

/// The container's `runtime:` settings: each key of the YAML's replaces
/// the label's (for `bindNS`, each namespace separately).
fn resolve(image: &Image, label: Option<&ImageConfig>) -> RuntimeJson {
    let empty = Runtime::default();
    let y = image.config.runtime.as_ref().unwrap_or(&empty);
    let l = label.and_then(|l| l.runtime.as_ref()).unwrap_or(&empty);
    fn pick<T: Clone + Default>(l: &Option<T>, y: &Option<T>) -> T {
        y.as_ref().or(l.as_ref()).cloned().unwrap_or_default()
    }
    let (yb, lb) = (&y.bind_ns, &l.bind_ns);
    RuntimeJson {
        cgroups: pick(&l.cgroups, &y.cgroups),
        mounts: pick(&l.mounts, &y.mounts),
        mkdir: pick(&l.mkdir, &y.mkdir),
        interfaces: pick(&l.interfaces, &y.interfaces)
            .into_iter()
            .map(|i| RuntimeJsonInterface {
                name: i.name,
                add: i.add,
                peer: i.peer,
                create_in_root: i.create_in_root,
            })
            .collect(),
        bind_ns: RuntimeJsonBindNs {
            cgroup: pick(&lb.cgroup, &yb.cgroup),
            ipc: pick(&lb.ipc, &yb.ipc),
            mnt: pick(&lb.mnt, &yb.mnt),
            net: pick(&lb.net, &yb.net),
            pid: pick(&lb.pid, &yb.pid),
            user: pick(&lb.user, &yb.user),
            uts: pick(&lb.uts, &yb.uts),
        },
        namespace: pick(&l.namespace, &y.namespace),
    }
}

/// Puts the mounts that make the bundle's `rootfs` in front of the
/// user's: for a read-only root, a bind of the unpacked image
/// (`image_root`, normally `DIR/rootfs` itself, so that it is a mount
/// point); otherwise a tmpfs on `DIR/tmp`, made private, and an overlay
/// of `image_root` (normally `DIR/lower`) and `DIR/tmp/{upper,work}` on
/// `DIR/rootfs`. Paths are absolute paths inside the VM.
fn prepend_rootfs_mounts(rt: &mut RuntimeJson, readonly: bool, bundle_dir: &str, image_root: &str) {
    let dir = abs_dir(bundle_dir);
    let root = abs_dir(image_root);
    let rootfs = format!("{dir}/rootfs");
    let mut first = if readonly {
        vec![Mount {
            destination: rootfs,
            source: root,
            options: vec!["bind".into()],
            ..Mount::default()
        }]
    } else {
        let tmp = format!("{dir}/tmp");
        vec![
            Mount {
                destination: tmp.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                ..Mount::default()
            },
            // Nothing else should see the temporary layers.
            Mount {
                destination: tmp.clone(),
                options: vec!["remount".into(), "private".into()],
                ..Mount::default()
            },
            Mount {
                destination: rootfs,
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir={root}"),
                    format!("upperdir={tmp}/upper"),
                    format!("workdir={tmp}/work"),
                ],
                ..Mount::default()
            },
        ]
    };
    first.append(&mut rt.mounts);
    rt.mounts = first;
}

/// The `runtime.json` text (4-space indent, no trailing newline, as the
/// reference writes it).
pub fn runtime_json_text(rt: &RuntimeJson) -> String {
    to_go_json(rt)
}

/// `/a/b` from `a/b/`, `/a/b/` or `/a/b`.
fn abs_dir(p: &str) -> String {
    let t = p.trim_matches('/');
    format!("/{t}")
}

/// A container's `runtime.json`, for a bundle at `bundle_dir` (an absolute
/// path inside the VM, e.g. `/containers/onboot/000-x`) whose image is
/// unpacked in the bundle itself (`DIR/rootfs` if `readonly`, else
/// `DIR/lower`).
pub fn runtime_config(
    image: &Image,
    label: Option<&ImageConfig>,
    readonly: bool,
    bundle_dir: &str,
) -> String {
    let dir = abs_dir(bundle_dir);
    let root = format!("{dir}/{}", if readonly { "rootfs" } else { "lower" });
    runtime_config_with_root(image, label, readonly, &dir, &root)
}

/// Like [`runtime_config`], for a bundle that shares an image unpacked
/// elsewhere: `image_root` is that directory (e.g. the `lower` of an
/// earlier bundle with the same image).
pub fn runtime_config_with_root(
    image: &Image,
    label: Option<&ImageConfig>,
    readonly: bool,
    bundle_dir: &str,
    image_root: &str,
) -> String {
    runtime_json_text(&runtime_json(
        image, label, readonly, bundle_dir, image_root,
    ))
}

/// The value [`runtime_config_with_root`] writes.
pub fn runtime_json(
    image: &Image,
    label: Option<&ImageConfig>,
    readonly: bool,
    bundle_dir: &str,
    image_root: &str,
) -> RuntimeJson {
    let mut rt = resolve(image, label);
    prepend_rootfs_mounts(&mut rt, readonly, bundle_dir, image_root);
    rt
}
