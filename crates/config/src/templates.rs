//! `"@pkg:DIR"` image templates.
//!
//! Anywhere an image reference is expected (`kernel.image`, `init`, the
//! container sections, `volumes`), `@pkg:DIR` stands for the image that
//! `linuxkit pkg build DIR` produces, `ORG/IMAGE:TAG` with the package's
//! content-hash tag. `DIR` is relative to the directory of the YAML file that
//! names it. Computing the tag is the package builder's job, so this crate
//! takes it as a callback and stays independent of it.

use std::path::{Path, PathBuf};

use crate::{Config, ConfigError};

/// What starts an image template: `@pkg:DIR`.
pub const PKG_TEMPLATE_PREFIX: &str = "@pkg:";

impl Config {
    /// Replaces every `@pkg:DIR` image reference by `resolve(dir)`, where
    /// `dir` is DIR joined to the directory of the YAML file that wrote it
    /// (the working directory for stdin). Errors from `resolve` are reported
    /// at the template's location.
    pub fn resolve_templates(
        &mut self,
        mut resolve: impl FnMut(&Path) -> Result<String, String>,
    ) -> Result<(), ConfigError> {
        let mut jobs: Vec<(&'static str, usize)> = Vec::new();
        if self.moby.kernel.image.starts_with(PKG_TEMPLATE_PREFIX) {
            jobs.push(("kernel", 0));
        }
        let m = &self.moby;
        let lists: [(&'static str, Vec<&String>); 5] = [
            ("init", m.init.iter().collect()),
            ("onboot", m.onboot.iter().map(|c| &c.image).collect()),
            (
                "onshutdown",
                m.onshutdown.iter().map(|c| &c.image).collect(),
            ),
            ("services", m.services.iter().map(|c| &c.image).collect()),
            ("volumes", m.volumes.iter().map(|v| &v.image).collect()),
        ];
        for (section, refs) in lists {
            for (i, r) in refs.into_iter().enumerate() {
                if r.starts_with(PKG_TEMPLATE_PREFIX) {
                    jobs.push((section, i));
                }
            }
        }
        for (section, i) in jobs {
            let (current, file) = self.image_ref(section, i);
            let dir = current[PKG_TEMPLATE_PREFIX.len()..].trim().to_string();
            let err = |cfg: &Config, msg: String| {
                if section == "kernel" {
                    cfg.kernel_error("image", msg)
                } else {
                    let sub = if section == "init" { "" } else { "image" };
                    cfg.error_at(section, i, sub, msg)
                }
            };
            if dir.is_empty() {
                return Err(err(
                    self,
                    "`@pkg:` needs a package directory, e.g. `@pkg:./pkg/init`".into(),
                ));
            }
            let base = file
                .filter(|f| *f != "<stdin>")
                .and_then(|f| Path::new(f).parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let full: PathBuf = base.join(&dir);
            let resolved = resolve(&full)
                .map_err(|e| err(self, format!("cannot resolve `@pkg:{dir}`: {e}")))?;
            *self.image_ref_mut(section, i) = resolved;
        }
        Ok(())
    }

    fn image_ref(&self, section: &str, i: usize) -> (String, Option<&str>) {
        let file = if section == "kernel" {
            self.origins.kernel.get("image").map(|o| o.file)
        } else {
            self.origin_of(section, i).map(|o| o.file)
        };
        let name = file.map(|f| self.sources[f].name.as_str());
        let m = &self.moby;
        let r = match section {
            "kernel" => &m.kernel.image,
            "init" => &m.init[i],
            "onboot" => &m.onboot[i].image,
            "onshutdown" => &m.onshutdown[i].image,
            "services" => &m.services[i].image,
            _ => &m.volumes[i].image,
        };
        (r.clone(), name)
    }

    fn image_ref_mut(&mut self, section: &str, i: usize) -> &mut String {
        let m = &mut self.moby;
        match section {
            "kernel" => &mut m.kernel.image,
            "init" => &mut m.init[i],
            "onboot" => &mut m.onboot[i].image,
            "onshutdown" => &mut m.onshutdown[i].image,
            "services" => &mut m.services[i].image,
            _ => &mut m.volumes[i].image,
        }
    }
}
