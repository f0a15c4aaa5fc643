//! `runtime.json`, the file between the build and the VM: `linuxkit build`
//! (the `rootfs` crate) writes one per container bundle, and the in-VM init
//! reads it to do what the container needs outside itself, around `runc
//! create` (mounts, directories, cgroups, interfaces, namespace binds).
//!
//! It is one type, here, so that the writer and the reader cannot drift
//! apart. It is not the YAML's [`crate::Runtime`]: that one says which
//! keys the user *set* (an `Option` each, so the YAML's keys can replace
//! the image label's one by one); this one is the resolved result, where
//! every key is always written. How a container's settings are resolved
//! into it, and the bytes, are the writer's business (`rootfs`, which
//! writes it as Go's `json.MarshalIndent` does); the field order and the
//! omitted-when-empty rules are here.
//!
//! Reading is as strict as the YAML's: an unknown key is refused, and a
//! `null` is read as empty wherever the YAML model takes one.

use serde::{Deserialize, Deserializer, Serialize};

use crate::Mount;

/// LinuxKit's per-container runtime settings (`runtime.json`), read by the
/// in-VM runner. Every key is always written; a missing key reads as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeJson {
    /// cgroups to create before the container starts.
    #[serde(deserialize_with = "null_as_empty")]
    pub cgroups: Vec<String>,
    /// Mounts made on the host before `runc create`, in order; relative
    /// destinations are under the bundle's `rootfs`.
    #[serde(deserialize_with = "null_as_empty")]
    pub mounts: Vec<Mount>,
    /// Directories to create (relative ones under the bundle's `rootfs`).
    #[serde(deserialize_with = "null_as_empty")]
    pub mkdir: Vec<String>,
    /// Network interfaces to create in, or move into, the container.
    #[serde(deserialize_with = "null_as_empty")]
    pub interfaces: Vec<RuntimeJsonInterface>,
    /// Namespaces of the started container to bind-mount to these paths.
    #[serde(rename = "bindNS")]
    pub bind_ns: RuntimeJsonBindNs,
    /// The containerd namespace of a service (`""`: the default).
    #[serde(deserialize_with = "null_as_empty")]
    pub namespace: String,
}

/// A network interface to create or move into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeJsonInterface {
    /// The link's name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The kind of link to create (`veth`, `bridge`, ...); `""` moves an
    /// existing link `name` into the container.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub add: String,
    /// A veth's other end.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// Create the link in the init's network namespace, not the
    /// container's.
    #[serde(rename = "createInRoot")]
    pub create_in_root: bool,
}

/// Paths to bind the container's namespaces to; `""` for none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeJsonBindNs {
    /// Where to bind the container's cgroup namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub cgroup: String,
    /// Where to bind the container's IPC namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub ipc: String,
    /// Where to bind the container's mount namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub mnt: String,
    /// Where to bind the container's network namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub net: String,
    /// Where to bind the container's PID namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub pid: String,
    /// Where to bind the container's user namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub user: String,
    /// Where to bind the container's UTS (host name) namespace.
    #[serde(deserialize_with = "null_as_empty")]
    pub uts: String,
}

impl RuntimeJsonBindNs {
    /// The seven namespace kinds (as `/proc/PID/ns/` names them) with
    /// their paths, in the order runtime.json lists them.
    pub fn entries(&self) -> [(&'static str, &str); 7] {
        [
            ("cgroup", &self.cgroup),
            ("ipc", &self.ipc),
            ("mnt", &self.mnt),
            ("net", &self.net),
            ("pid", &self.pid),
            ("user", &self.user),
            ("uts", &self.uts),
        ]
    }
}

/// A `null` reads as the empty value, as the YAML model's `Option` keys
/// read it.
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_and_nulls_read_as_empty_and_unknown_keys_are_refused() {
        let empty: RuntimeJson = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, RuntimeJson::default());
        let nulls: RuntimeJson = serde_json::from_str(
            r#"{"cgroups":null,"mounts":null,"mkdir":null,"interfaces":null,
                "bindNS":{"net":null},"namespace":null}"#,
        )
        .unwrap();
        assert_eq!(nulls, RuntimeJson::default());
        for bad in [
            r#"{"cgroup":[]}"#,
            r#"{"bindNS":{"network":""}}"#,
            r#"{"interfaces":[{"nmae":"eth0"}]}"#,
            r#"{"bindNS":null}"#,
        ] {
            assert!(serde_json::from_str::<RuntimeJson>(bad).is_err(), "{bad}");
        }
    }
}
