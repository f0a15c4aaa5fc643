//! The LinuxKit YAML configuration: parse, merge, resolve, validate, render.
//!
//! This is the first stage of the pipeline (YAML → resolved config → images →
//! root filesystem → outputs). Everything later works on a [`Config`], which
//! is the merged [`Moby`] value plus where each part of it came from, so that
//! a problem found at any later stage can still be reported as
//! `file.yml:LINE:COLUMN: message`.
//!
//! ```
//! let cfg = linuxkit_config::Config::parse("a.yml", "init: [linuxkit/init:v1]\n").unwrap();
//! assert_eq!(cfg.moby.init, ["linuxkit/init:v1"]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod de;
mod error;
mod ids;
mod metadata;
mod model;
mod mounts;
mod paths;
mod render;
mod runtime_json;
pub mod service_policy;
mod templates;
mod validate;
mod yaml;

pub use error::{ConfigError, Mark};
pub use ids::IdMap;
pub use metadata::{metadata_json, metadata_yaml, reference_expand};
pub use model::*;
pub use mounts::{Bind, ReadOnly, default_destination, parse_tmpfs, split_options};
pub use paths::{PathProblem, image_path};
pub use render::{to_json, to_yaml};
pub use runtime_json::{RuntimeJson, RuntimeJsonBindNs, RuntimeJsonInterface};
pub use templates::PKG_TEMPLATE_PREFIX;
pub use validate::{Checks, expand_home, parse_device_mode, parse_mode};

use std::collections::HashMap;

/// Where a piece of the merged configuration was written: which input file,
/// and its path inside that file (`services[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    file: usize,
    path: String,
}

#[derive(Debug, Clone)]
struct SourceFile {
    name: String,
    spans: HashMap<String, Mark>,
}

/// A configuration made of one or more YAML files, merged in order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The merged configuration.
    pub moby: Moby,
    sources: Vec<SourceFile>,
    origins: Origins,
    /// Warnings found while parsing (an ignored second YAML document),
    /// reported by [`Config::validate`] with the others.
    parse_warnings: Vec<ConfigError>,
}

/// One origin per list element of the merged config, and per kernel field.
#[derive(Debug, Clone, Default)]
struct Origins {
    kernel: HashMap<&'static str, Origin>,
    init: Vec<Origin>,
    onboot: Vec<Origin>,
    onshutdown: Vec<Origin>,
    services: Vec<Origin>,
    files: Vec<Origin>,
    volumes: Vec<Origin>,
}

impl Config {
    /// Parses one YAML document. `name` is how errors refer to it (a path,
    /// or `<stdin>`). No semantic checks yet: see [`Config::validate`].
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let parsed = yaml::parse_first(text).map_err(|e| e.in_file(name))?;
        let node = parsed.root;
        let notes = de::Notes::default();
        let moby: Moby = de::from_node_noting(&node, &notes).map_err(|e| e.in_file(name))?;
        let spans = de::span_table(&node);
        let mut parse_warnings: Vec<ConfigError> = notes
            .into_inner()
            .into_iter()
            .map(|(m, msg)| ConfigError::at(m, msg).in_file(name))
            .collect();
        if let Some(m) = parsed.second_document {
            parse_warnings.push(
                ConfigError::at(
                    m,
                    "a second YAML document starts here and is ignored (LinuxKit reads only the first document of a file); remove it, or split the file and pass both",
                )
                .in_file(name),
            );
        }
        let at = |path: String| Origin { file: 0, path };
        let list = |key: &str, n: usize| (0..n).map(|i| at(format!("{key}[{i}]"))).collect();
        let mut kernel = HashMap::new();
        for key in ["image", "cmdline", "binary", "tar", "ucode"] {
            let path = format!("kernel.{key}");
            if spans.contains_key(&path) {
                kernel.insert(key, at(path));
            }
        }
        let origins = Origins {
            kernel,
            init: list("init", moby.init.len()),
            onboot: list("onboot", moby.onboot.len()),
            onshutdown: list("onshutdown", moby.onshutdown.len()),
            services: list("services", moby.services.len()),
            files: list("files", moby.files.len()),
            volumes: list("volumes", moby.volumes.len()),
        };
        Ok(Config {
            moby,
            sources: vec![SourceFile {
                name: name.to_string(),
                spans,
            }],
            origins,
            parse_warnings,
        })
    }

    /// Appends `other` as LinuxKit does for `build a.yml b.yml`: kernel fields
    /// that `other` sets override ours; every list is appended.
    pub fn merge(&mut self, other: Config) {
        let base = self.sources.len();
        let shift = |o: Origin| Origin {
            file: o.file + base,
            path: o.path,
        };
        let Config {
            moby,
            sources,
            origins,
            parse_warnings,
        } = other;
        self.parse_warnings.extend(parse_warnings);
        let k = moby.kernel;
        let mine = &mut self.moby.kernel;
        if !k.image.is_empty() {
            mine.image = k.image;
        }
        if !k.cmdline.is_empty() {
            mine.cmdline = k.cmdline;
        }
        if !k.binary.is_empty() {
            mine.binary = k.binary;
        }
        if k.tar.is_some() {
            mine.tar = k.tar;
        }
        if k.ucode.is_some() {
            mine.ucode = k.ucode;
        }
        for (key, o) in origins.kernel {
            self.origins.kernel.insert(key, shift(o));
        }
        let m = &mut self.moby;
        m.init.extend(moby.init);
        m.onboot.extend(moby.onboot);
        m.onshutdown.extend(moby.onshutdown);
        m.services.extend(moby.services);
        m.files.extend(moby.files);
        m.volumes.extend(moby.volumes);
        if let Some(t) = moby.trust {
            let mine = m.trust.get_or_insert_with(Trust::default);
            mine.image.extend(t.image);
            mine.org.extend(t.org);
        }
        let o = &mut self.origins;
        o.init.extend(origins.init.into_iter().map(shift));
        o.onboot.extend(origins.onboot.into_iter().map(shift));
        o.onshutdown
            .extend(origins.onshutdown.into_iter().map(shift));
        o.services.extend(origins.services.into_iter().map(shift));
        o.files.extend(origins.files.into_iter().map(shift));
        o.volumes.extend(origins.volumes.into_iter().map(shift));
        self.sources.extend(sources);
    }

    /// Parses and merges several inputs in order: `(name, text)` pairs.
    pub fn parse_all<'a>(
        inputs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Config, ConfigError> {
        let mut merged: Option<Config> = None;
        for (name, text) in inputs {
            let c = Config::parse(name, text)?;
            match &mut merged {
                None => merged = Some(c),
                Some(m) => m.merge(c),
            }
        }
        Ok(merged.unwrap_or_default())
    }

    /// The input files, in merge order.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| s.name.as_str())
    }

    fn origin_of(&self, section: &str, index: usize) -> Option<&Origin> {
        let o = &self.origins;
        match section {
            "init" => o.init.get(index),
            "onboot" => o.onboot.get(index),
            "onshutdown" => o.onshutdown.get(index),
            "services" => o.services.get(index),
            "files" => o.files.get(index),
            "volumes" => o.volumes.get(index),
            _ => None,
        }
    }

    /// An error about `sub` (e.g. `binds[2]`, or `""` for the whole element)
    /// of element `index` of `section` of the merged config, located in the
    /// file and line it was written at. Falls back to the nearest enclosing
    /// node that has a location.
    pub fn error_at(
        &self,
        section: &str,
        index: usize,
        sub: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let message = message.into();
        match self.origin_of(section, index) {
            Some(o) => self.error_at_origin(o, sub, message),
            None => ConfigError::new(message),
        }
    }

    /// Like [`Config::error_at`], for a kernel field (`image`, `cmdline`, ...).
    pub fn kernel_error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        match self.origins.kernel.get(field) {
            Some(o) => self.error_at_origin(o, "", message),
            None => match self.sources.first() {
                Some(s) => ConfigError::new(message).in_file(&s.name),
                None => ConfigError::new(message),
            },
        }
    }

    /// An error about the kernel section as a whole, at its `kernel:` key
    /// in the file that set `field`.
    pub(crate) fn kernel_section_error(&self, field: &str, message: &str) -> ConfigError {
        match self.origins.kernel.get(field) {
            Some(o) => {
                let section = Origin {
                    file: o.file,
                    path: "kernel#key".into(),
                };
                self.error_at_origin(&section, "", message.to_string())
            }
            None => self.kernel_error(field, message),
        }
    }

    fn error_at_origin(&self, o: &Origin, sub: &str, message: String) -> ConfigError {
        let src = &self.sources[o.file];
        let mut path = if sub.is_empty() {
            o.path.clone()
        } else if sub.starts_with('[') {
            format!("{}{sub}", o.path)
        } else {
            format!("{}.{sub}", o.path)
        };
        let mark = loop {
            if let Some(m) = src.spans.get(&path) {
                break Some(*m);
            }
            match path.rfind(['.', '[']) {
                Some(i) => path.truncate(i),
                None => break src.spans.get("").copied(),
            }
        };
        ConfigError::new(message).with_mark(mark).in_file(&src.name)
    }
}

/// Parses an image's `org.mobyproject.config` label (JSON, which is YAML) with
/// the same schema as a YAML container entry, minus `name` and `image`.
/// `image` names the image in error messages.
pub fn parse_image_label(image: &str, label: &str) -> Result<ImageConfig, ConfigError> {
    let name = format!("label org.mobyproject.config of {image}");
    let node = yaml::parse(label).map_err(|e| e.in_file(&name))?;
    de::from_node(&node).map_err(|e| e.in_file(&name))
}

/// Deserializes any schema type from YAML with this crate's parser, so other
/// files (a package's `build.yml`) get the same located errors and
/// go-yaml-compatible scalars. `name` is how errors refer to the input.
pub fn from_yaml_str<T: serde::de::DeserializeOwned>(
    name: &str,
    text: &str,
) -> Result<T, ConfigError> {
    let node = yaml::parse(text).map_err(|e| e.in_file(name))?;
    de::from_node::<T>(&node).map_err(|e| e.in_file(name))
}
