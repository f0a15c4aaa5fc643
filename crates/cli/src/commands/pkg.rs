//! `linuxkit pkg ...`: package tags now; daemonless builds land with the
//! package-builder issue.

use linuxkit_pkg::{Package, PkgOptions};

use crate::cli::{PkgArgs, PkgCommand, PkgOpts};
use crate::error::{Error, Result};

/// The package options given on the command line; the rest comes from each
/// package's build.yml.
pub fn options(o: &PkgOpts) -> PkgOptions {
    PkgOptions {
        build_yml: o.build_yml.clone(),
        org: o.org.clone(),
        hash: o.hash.clone(),
        tag: o.tag.clone(),
        hash_commit: o.hash_commit.clone(),
        hash_path: o.hash_path.clone(),
        force_dirty: o.force_dirty,
        dev: o.dev,
        ..PkgOptions::default()
    }
}

pub fn run(args: &PkgArgs) -> Result<()> {
    let opts = options(&args.opts);
    match &args.command {
        PkgCommand::ShowTag { dirs, canonical } => {
            for dir in dirs {
                let p = Package::load(dir, &opts).map_err(|e| Error::Usage(e.to_string()))?;
                println!("{}", if *canonical { p.full_tag() } else { p.tag() });
            }
            Ok(())
        }
        PkgCommand::Build(_) => Err(Error::NotImplemented("pkg build".into())),
        PkgCommand::Push(_) => Err(Error::NotImplemented("pkg push".into())),
        PkgCommand::Builder(_) => Err(Error::NotImplemented("pkg builder".into())),
        PkgCommand::Manifest { .. } => Err(Error::NotImplemented("pkg manifest".into())),
        PkgCommand::RemoteTag { .. } => Err(Error::NotImplemented("pkg remote-tag".into())),
        PkgCommand::UpdateHashes { .. } => Err(Error::NotImplemented("pkg update-hashes".into())),
    }
}
