//! What a container takes from its image, the last of the three places a
//! setting comes from: the image config's command, environment and working
//! directory, and its `org.mobyproject.config` label (the container's
//! default LinuxKit settings, parsed as a YAML entry is).

use std::collections::BTreeMap;

use linuxkit_config::ImageConfig;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The image-config label holding a container's default LinuxKit settings.
pub const CONFIG_LABEL: &str = "org.mobyproject.config";

/// What a container takes from its image's config: the command, the
/// environment and the working directory (the image's `User` is ignored, as
/// in the reference), plus the raw `org.mobyproject.config` label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRuntimeDefaults {
    /// The image's `Entrypoint`; empty if it has none.
    pub entrypoint: Vec<String>,
    /// The image's `Cmd` (arguments after the entrypoint, or the whole
    /// command without one); empty if it has none.
    pub cmd: Vec<String>,
    /// The image's `Env`, as `NAME=value` strings in image order.
    pub env: Vec<String>,
    /// The image's `WorkingDir`; empty if it sets none (the process then
    /// starts in `/`).
    pub working_dir: String,
    /// The `org.mobyproject.config` label, if the image has a non-empty one.
    pub label: Option<String>,
}

#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Deserialize)]
struct ConfigSection {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

impl ImageRuntimeDefaults {
    /// Reads `config.{Entrypoint,Cmd,Env,WorkingDir,Labels}` from an OCI or
    /// Docker image config blob. Missing and `null` values are empty.
    pub fn from_image_config_json(blob: &[u8]) -> Result<ImageRuntimeDefaults> {
        let parsed: ConfigBlob = serde_json::from_slice(blob)
            .map_err(|e| Error::Other(format!("cannot read image config: {e}")))?;
        let Some(c) = parsed.config else {
            return Ok(ImageRuntimeDefaults::default());
        };
        Ok(ImageRuntimeDefaults {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            label: c
                .labels
                .and_then(|mut l| l.remove(CONFIG_LABEL))
                .filter(|l| !l.is_empty()),
        })
    }

    /// Parses the `org.mobyproject.config` label (same schema as a YAML
    /// container entry without `name` and `image`); `image` names the image
    /// in errors.
    pub fn parse_label(&self, image: &str) -> Result<Option<ImageConfig>> {
        match &self.label {
            None => Ok(None),
            Some(l) => Ok(Some(linuxkit_config::parse_image_label(image, l)?)),
        }
    }
}
