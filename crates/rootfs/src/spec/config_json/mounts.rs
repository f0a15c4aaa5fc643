//! A container's mounts: `/proc`, `/dev`, `/dev/pts`, `/sys` and the
//! cgroup tree, then `tmpfs`, `binds` and `mounts` (YAML over label); a
//! later mount on the same destination replaces an earlier one, and they
//! are written in destination order. A bind or bind mount whose source is
//! not an absolute path names a volume of this configuration.

use std::collections::BTreeMap;

use linuxkit_config::{Bind, Mount, ReadOnly, Volume, parse_tmpfs};

use crate::error::Result;
use crate::spec::layers::Layers;

/// Where volume `NAME` lives in the image: `VOLUMES_DIR/NAME/{lower,tmp,merged}`.
pub const VOLUMES_DIR: &str = "/containers/volumes";

fn owned(v: Vec<&str>) -> Vec<String> {
    v.into_iter().map(str::to_string).collect()
}

/// The merged directory of volume `source`, checking that a read-only
/// volume is not mounted read-write.
fn volume_dir(
    l: &Layers,
    volumes: &[Volume],
    what: &str,
    source: &str,
    read_only: bool,
) -> Result<String> {
    let Some(v) = volumes.iter().find(|v| v.name == source) else {
        return Err(l.err(format!(
            "{what}: source `{source}` is neither an absolute path nor a volume defined under `volumes:`"
        )));
    };
    if v.readonly && !read_only {
        return Err(l.err(format!(
            "{what}: volume `{source}` is read-only, but it is mounted read-write; add the `ro` option"
        )));
    }
    Ok(format!("{VOLUMES_DIR}/{source}/merged"))
}

/// Rewrites the source of a YAML bind naming a volume.
fn resolve_bind(l: &Layers, volumes: &[Volume], bind: &str) -> Result<String> {
    let b = Bind::parse(bind).map_err(|m| l.err(m))?;
    if !b.names_volume() {
        return Ok(bind.to_string());
    }
    let ro = ReadOnly::of(b.option_list()).allowed_in_bind();
    let dir = volume_dir(l, volumes, &format!("bind `{bind}`"), b.source, ro)?;
    Ok(match b.options {
        Some(o) => format!("{dir}:{}:{o}", b.destination),
        None => format!("{dir}:{}", b.destination),
    })
}

pub(super) fn mounts(l: &Layers, readonly: bool, volumes: &[Volume]) -> Result<Vec<Mount>> {
    let mount = |dst: &str, kind: &str, opts: &[&str]| Mount {
        destination: dst.into(),
        kind: kind.into(),
        source: kind.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
        ..Mount::default()
    };
    let ro: &[&str] = if readonly { &["ro"] } else { &[] };
    let mut map: BTreeMap<String, Mount> = BTreeMap::new();
    for m in [
        mount("/proc", "proc", &["nosuid", "nodev", "noexec", "relatime"]),
        mount(
            "/dev",
            "tmpfs",
            &[&["nosuid", "strictatime", "mode=755", "size=65536k"], ro].concat(),
        ),
        mount(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            &[&["nosuid", "noexec", "nodev"], ro].concat(),
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ] {
        map.insert(m.destination.clone(), m);
    }

    for t in l.pick(|c| &c.tmpfs).into_iter().flatten() {
        let (dst, options) = parse_tmpfs(t).map_err(|m| l.err(m))?;
        let m = mount(dst, "tmpfs", &options);
        map.insert(m.destination.clone(), m);
    }

    // Volume names are resolved in the YAML's own binds and mounts (an
    // image's label cannot know this configuration's volumes).
    let yaml_binds = |list: &Option<Vec<String>>| -> Result<Option<Vec<String>>> {
        list.as_ref()
            .map(|v| v.iter().map(|b| resolve_bind(l, volumes, b)).collect())
            .transpose()
    };
    // `binds` replaces everything; otherwise the label's binds then the
    // YAML's `binds.add` (the reference's precedence).
    let binds = match yaml_binds(&l.yaml.binds)? {
        Some(b) => b,
        None => {
            let mut b = l.label.binds.clone().unwrap_or_default();
            b.extend(yaml_binds(&l.yaml.binds_add)?.into_iter().flatten());
            b
        }
    };
    for b in &binds {
        let bind = Bind::parse(b).map_err(|m| l.err(m))?;
        let options = match bind.options {
            None => vec!["rw".into(), "rbind".into(), "rshared".into()],
            Some(_) => {
                let mut v = owned(bind.option_list());
                v.push("rbind".into());
                v
            }
        };
        let m = Mount {
            destination: bind.destination.into(),
            kind: "bind".into(),
            source: bind.source.into(),
            options,
            ..Mount::default()
        };
        map.insert(m.destination.clone(), m);
    }

    let yaml_mounts = l
        .yaml
        .mounts
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|m| {
                    if m.kind != "bind" || m.source.is_empty() || m.source.starts_with('/') {
                        return Ok(m.clone());
                    }
                    let what = format!("mount on `{}`", m.destination);
                    let ro = ReadOnly::of(m.options.iter().map(String::as_str)).allowed_in_mount();
                    let source = volume_dir(l, volumes, &what, &m.source, ro)?;
                    Ok(Mount {
                        source,
                        ..m.clone()
                    })
                })
                .collect::<Result<Vec<Mount>>>()
        })
        .transpose()?;
    for m in yaml_mounts
        .as_ref()
        .or(l.label.mounts.as_ref())
        .into_iter()
        .flatten()
    {
        let m = m.completed().map_err(|msg| l.err(msg))?;
        map.insert(m.destination.clone(), m);
    }
    Ok(map.into_values().collect())
}
