//! The precedence of a container's own settings: the YAML entry over the
//! image's label, key by key, with the reference's rules for empty strings
//! and for lists with an `.add` companion. The image config, the third
//! place, is consulted by the caller only where the reference does.

use linuxkit_config::{Image, ImageConfig};

use crate::error::Error;

/// The YAML entry over the label (either may lack the key).
pub(super) struct Layers<'a> {
    pub(super) name: &'a str,
    pub(super) yaml: &'a ImageConfig,
    pub(super) label: &'a ImageConfig,
}

impl<'a> Layers<'a> {
    /// The first present value: YAML, then label.
    pub(super) fn pick<T>(&self, f: impl Fn(&'a ImageConfig) -> &'a Option<T>) -> Option<&'a T> {
        f(self.yaml).as_ref().or(f(self.label).as_ref())
    }

    /// For settings the reference keeps as plain Go strings, where an empty
    /// value is the same as no value.
    pub(super) fn pick_str(
        &self,
        f: impl Fn(&'a ImageConfig) -> &'a Option<String>,
    ) -> Option<&'a str> {
        let nonempty = |o: &'a Option<String>| o.as_deref().filter(|s| !s.is_empty());
        nonempty(f(self.yaml)).or(nonempty(f(self.label)))
    }

    /// A list with an `.add` companion, as the reference merges it: a YAML
    /// `base` is the whole list (a YAML `add` next to it is ignored, which
    /// validation warns about); otherwise the label's list followed by the
    /// YAML `add` (no de-duplication, as the reference's `mergeStrings`).
    pub(super) fn with_add(
        &self,
        base: impl Fn(&'a ImageConfig) -> &'a Option<Vec<String>>,
        add: &'a Option<Vec<String>>,
    ) -> Vec<String> {
        if let Some(v) = base(self.yaml) {
            return v.clone();
        }
        let mut v: Vec<String> = base(self.label).clone().unwrap_or_default();
        v.extend(add.iter().flatten().cloned());
        v
    }

    pub(super) fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Other(format!("container {}: {msg}", self.name))
    }
}

/// Whether the container's root filesystem is read-only (`readonly:`, YAML
/// over label, default false). Decides the bundle layout.
pub fn readonly_rootfs(image: &Image, label: Option<&ImageConfig>) -> bool {
    let empty = ImageConfig::default();
    let label = label.unwrap_or(&empty);
    image.config.readonly.or(label.readonly).unwrap_or(false)
}
