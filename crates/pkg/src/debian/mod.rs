//! A Debian archive client: from `apt` sources to the files inside `.deb`s.
//!
//! This is the groundwork for `linuxkit pkg build` assembling images from
//! Debian packages *without* Docker or `apt`: it finds a mirror, downloads
//! and verifies the archive's indices, resolves a package list to a closed
//! set, downloads the `.deb`s and streams their contents. Each step is a
//! module, usable on its own:
//!
//! | module | does | why it exists |
//! |---|---|---|
//! | [`sources`] | parses `sources.list` / deb822 `*.sources`, picks a mirror | the mirror is configuration, never a constant |
//! | [`version`] | dpkg's version ordering and relations (`<<`, `>=`, …) | every constraint in the archive depends on it |
//! | [`control`] | the deb822 paragraph format | `Release`, `Packages`, `*.sources` and `control` all use it |
//! | [`verify`] | OpenPGP signatures of `InRelease` against the keyring | the root of the trust chain |
//! | [`index`] | `InRelease`/`Release` + `Packages`, the [`Client`] and its cache | the trust chain and offline rebuilds |
//! | [`resolve`](mod@resolve) | `Depends`/`Pre-Depends` closure | which `.deb`s make up an image |
//! | [`deb`] | `.deb` download, `ar` + `tar` reading | the files that go into the image |
//!
//! ```no_run
//! use linuxkit_pkg::debian::{Client, ResolveOptions, resolve, sources};
//! let mirror = sources::find_mirror(Some("bookworm"))?;
//! let client = Client::for_mirror(&mirror, None);
//! let release = client.release(&mirror.suite)?;
//! let index = client.packages(&release, &mirror.components, "amd64")?;
//! let wanted = ["busybox-static".parse()?];
//! for pkg in resolve(&index, &wanted, &ResolveOptions::default())? {
//!     let deb = client.deb(pkg)?;
//!     println!("{} {}: {:?}", pkg.name, pkg.version, deb.data_paths()?);
//! }
//! # Ok::<(), linuxkit_pkg::debian::DebianError>(())
//! ```
//!
//! # Trust
//!
//! Everything downloaded is verified against a SHA256 before it is used or
//! cached: `Packages` files against the `Release` file, `.deb`s against the
//! `Packages` file. The root of that chain is the `Release` file itself,
//! whose OpenPGP signature is verified against the archive keyring
//! ([`verify`]) every time it is read, before it is cached or used.
//!
//! # What is not done
//!
//! No maintainer scripts (`preinst`, `postinst`, …) are ever run, and no
//! `dpkg` database is written: the [`deb`] module only *reads* archives.
//! Images built from packages that need their scripts must do that work
//! themselves.

pub mod control;
pub mod deb;
mod error;
pub mod index;
pub mod relation;
pub mod resolve;
pub mod sources;
pub mod verify;
pub mod version;

pub use deb::DebArchive;
pub(crate) use error::hex;
pub use error::{DebianError, Result};
pub use index::{Client, Package, PackageIndex, Release};
pub use relation::{ArchRestriction, Dependency, Provide, Request};
pub use resolve::{ResolveOptions, resolve};
pub use sources::{Mirror, Source};
pub use version::{Relation, Version};
