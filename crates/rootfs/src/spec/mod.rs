//! A container bundle's two JSON files: the OCI runtime spec `config.json`
//! (the reference's `moby.ConfigToOCI`) and LinuxKit's own `runtime.json`
//! (what the in-VM runner does around `runc create`).
//!
//! Settings come from three places, and the first that *has* a setting wins:
//! the container's YAML entry, the image's `org.mobyproject.config` label,
//! then the image config (`Entrypoint`, `Cmd`, `Env`, `WorkingDir` only).
//! "Has" means the key is present: `capabilities: []` in YAML replaces the
//! label's list. The output is byte-for-byte what the reference's Go
//! `json.MarshalIndent(v, "", "    ")` writes for the same value: fields in
//! the runtime-spec structs' order, map keys sorted, `<`, `>`, `&` escaped.
//!
//! | module | holds |
//! |---|---|
//! | `image` | the third place: what a container takes from its image config and label |
//! | `layers` | the precedence of the YAML entry over the label |
//! | `config_json` | `config.json`: the runtime-spec shapes, mounts and volumes, the rest of the spec |
//! | `runtime_json` | `runtime.json`: the bundle's own mounts in front of the user's (the type is `linuxkit_config::RuntimeJson`, which the init reads) |
//! | `go_json` | the writer both files go through, Go's `json.MarshalIndent` |
//!
//! Imports run one way: `config_json` uses `layers`, `image` and
//! `go_json`, `runtime_json` uses `go_json`, and those three use nothing
//! here. Only what follows leaves this module (the crate re-exports it);
//! the shapes, the precedence helpers and the writer stay inside.

mod config_json;
mod go_json;
mod image;
mod layers;
mod runtime_json;

pub use config_json::{ALL_CAPABILITIES, OCI_VERSION, VOLUMES_DIR, oci_config};
pub use image::{CONFIG_LABEL, ImageRuntimeDefaults};
pub use layers::readonly_rootfs;
pub use runtime_json::{runtime_config, runtime_config_with_root, runtime_json, runtime_json_text};
