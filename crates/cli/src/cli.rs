//! The command-line tree, with the reference's command names, flag spellings
//! and defaults, so scripts written for LinuxKit keep working.
//!
//! Note the reference's quirks that we keep on purpose: the single-output
//! flag is the long flag `--o` (not `-o`), and `-v` takes a level (`-v 2`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use linuxkit_base::Arch;
use linuxkit_output::Format;
use std::path::PathBuf;

/// A handler's table of the arguments it reads: (command words, clap ids).
/// Every handler module has one (`HONOURED`); `flags`' tree test checks
/// them against the tree and the handlers' sources.
pub type Honoured = &'static [(&'static str, &'static [&'static str])];

#[derive(Debug, Parser)]
#[command(
    name = "linuxkit",
    version,
    about = "Build and run small, immutable, bootable Linux systems from OCI images described in YAML",
    propagate_version = true,
    disable_help_subcommand = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory for caching and finding cached images [env: LINUXKIT_CACHE; default: ~/.linuxkit/cache]
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Registry mirror: `URL` for docker.io, or `REGISTRY=URL` [env: LINUXKIT_MIRROR]
    #[arg(long, global = true, value_name = "[REGISTRY=]URL")]
    pub mirror: Vec<String>,
    /// PEM file of CA certificate(s) to trust for registries besides the system's (repeatable)
    #[arg(long = "cert-file", global = true, value_name = "FILE")]
    pub cert_file: Vec<PathBuf>,
    /// Quiet execution: only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Verbosity of logging: 0 = quiet, 1 = info, 2 = debug, 3 = trace
    #[arg(short, long, global = true, value_name = "LEVEL", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(0..=3))]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from one or more YAML files
    Build(BuildArgs),
    /// Manage the local image cache
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Create a metadata ISO
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Build and manage packages (component images)
    Pkg(PkgArgs),
    /// Push an image to a cloud provider
    #[command(subcommand)]
    Push(PushCommand),
    /// Run an image on a local hypervisor or a cloud
    Run(RunArgs),
    /// Serve a directory over HTTP (for iPXE and metadata)
    Serve(ServeArgs),
    /// Print the version
    Version(VersionArgs),
    /// Print a shell completion script: `linuxkit completion bash > /etc/bash_completion.d/linuxkit`
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: linuxkit build --format kernel+initrd --dir out linuxkit.yml")]
pub struct BuildArgs {
    /// Configuration files, merged in order; `-` reads standard input
    #[arg(required = true, value_name = "FILE[.yml]")]
    pub files: Vec<String>,
    /// Name to use for output files [default: the last file's base name, `moby` for stdin]
    #[arg(long)]
    pub name: Option<String>,
    /// Directory for output files [default: the current directory]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// File to use for a single output, or '-' for stdout
    #[arg(long = "o", value_name = "FILE")]
    pub output: Option<String>,
    /// Size of the disk formats (M or G suffix; a bare number is GB)
    #[arg(long, value_name = "SIZE", help = size_help())]
    pub size: Option<String>,
    /// Always pull images, even if cached
    #[arg(long)]
    pub pull: bool,
    /// Decompress the Linux kernel
    #[arg(long = "decompress-kernel")]
    pub decompress_kernel: bool,
    /// Target architecture (amd64, arm64, riscv64, s390x, ...; x86_64 and aarch64 too)
    #[arg(long, default_value_t = Arch::host())]
    pub arch: Arch,
    /// Formats to create (repeat or separate by commas) [default: kernel+initrd, or tar with --o]
    #[arg(
        short,
        long = "format",
        value_delimiter = ',',
        value_name = "FORMAT",
        long_help = format_long_help()
    )]
    pub formats: Vec<Format>,
    /// Do not write the consolidated SBOM of the images into the root filesystem
    #[arg(long = "no-sbom")]
    pub no_sbom: bool,
    /// Where the consolidated SBOM goes in the root filesystem
    #[arg(long = "sbom-output", value_name = "PATH", default_value = linuxkit_rootfs::sbom::DEFAULT_SBOM_OUTPUT)]
    pub sbom_output: String,
    /// Date the SBOM with the current time (the build is then not reproducible)
    #[arg(long = "sbom-current-time")]
    pub sbom_current_time: bool,
    /// Print the merged, resolved configuration and stop
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Treat every configuration warning as an error (our addition: things LinuxKit
    /// accepts but that are probably mistakes, such as `binds.add` next to `binds`)
    #[arg(long)]
    pub strict: bool,
    /// Compression of the initrd, in every format that embeds it: gzip (works with every
    /// kernel), zstd (smaller), lz4 (fastest to unpack, larger), none; `zstd:19` sets a level
    #[arg(
        long = "initrd-compression",
        visible_alias = "compression",
        value_name = "gzip|zstd|lz4|none[:LEVEL]",
        default_value = "gzip",
        value_parser = parse_initrd_compression
    )]
    pub compression: InitrdCompression,
    /// Write the image-size report (the table `build` prints) as JSON to FILE
    #[arg(long = "size-report", value_name = "FILE")]
    pub size_report: Option<PathBuf>,
}

/// `build --format`'s long help: every format's name.
fn format_long_help() -> String {
    format!(
        "Formats to create (repeat or separate by commas) [default: kernel+initrd, or tar with --o]\n\nFormats: {}",
        Format::list(Format::ALL)
    )
}

/// `build --size`'s help: the formats it sizes, with their defaults.
fn size_help() -> String {
    let mut groups: Vec<(Option<u64>, Vec<Format>)> = Vec::new();
    for f in Format::ALL.into_iter().filter(|f| f.takes_size()) {
        let mb = f.default_size_mb();
        match groups.iter_mut().find(|g| g.0 == mb) {
            Some(g) => g.1.push(f),
            None => groups.push((mb, vec![f])),
        }
    }
    let defaults: Vec<String> = groups
        .into_iter()
        .map(|(mb, fs)| match mb {
            Some(mb) => format!("{mb}M for {}", Format::list(fs)),
            None => format!("the content's size for {}", Format::list(fs)),
        })
        .collect();
    format!(
        "Size of the disk formats (M or G suffix; a bare number is GB) [default: {}]",
        defaults.join("; ")
    )
}

/// `--initrd-compression`: the method and an optional level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitrdCompression {
    pub method: linuxkit_output::Compression,
    pub level: Option<i32>,
}

/// Parses `gzip`, `zstd`, `lz4`, `none`, optionally with `:LEVEL` (gzip
/// 1-9, zstd 1-22).
fn parse_initrd_compression(s: &str) -> Result<InitrdCompression, String> {
    use linuxkit_output::Compression as C;
    let (name, level) = match s.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (s, None),
    };
    let method = match name {
        "gzip" => C::Gzip,
        "zstd" => C::Zstd,
        "lz4" => C::Lz4,
        "none" => C::None,
        _ => {
            return Err(format!(
                "unknown initrd compression `{name}` (use gzip, zstd, lz4 or none)"
            ));
        }
    };
    let level = match level {
        None => None,
        Some(l) => {
            let range = match method {
                C::Gzip => 1..=9,
                C::Zstd => 1..=22,
                _ => return Err(format!("{name} takes no level")),
            };
            match l.parse::<i32>() {
                Ok(n) if range.contains(&n) => Some(n),
                _ => {
                    return Err(format!(
                        "invalid {name} level `{l}` (use {}-{})",
                        range.start(),
                        range.end()
                    ));
                }
            }
        }
    };
    Ok(InitrdCompression { method, level })
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove the whole cache
    Clean {
        /// Only remove images that their registry has now, with the same digest
        #[arg(long = "published-only")]
        published_only: bool,
    },
    /// Remove images from the cache
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
        /// Only remove images that their registry has now, with the same digest
        #[arg(long = "published-only")]
        published_only: bool,
    },
    /// List images in the cache
    Ls,
    /// Export an image from the cache
    Export {
        image: String,
        /// Architecture to export
        #[arg(long, default_value_t = Arch::host())]
        arch: Arch,
        /// Output file, `-` for standard output
        #[arg(long, required = true)]
        outfile: String,
        #[arg(long, value_enum, default_value = "oci")]
        format: ExportFormat,
        /// Name to give the exported image
        #[arg(long)]
        name: Option<String>,
        /// Platform to export from an index, `OS/ARCH[/VARIANT]` (the reference's flag; `--arch A` is `--platform linux/A`)
        #[arg(long, conflicts_with = "arch", value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Import an OCI tar into the cache (`-` for standard input)
    Import { file: String },
    /// Pull images into the cache
    Pull {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Push images from the cache to their registry
    Push {
        #[arg(required = true)]
        images: Vec<String>,
        /// Push under another name
        #[arg(long = "remote-name")]
        remote_name: Option<String>,
        /// For an index, also tag each platform's image as `TAG-ARCH` in the registry
        #[arg(long = "with-arch-tags")]
        with_arch_tags: bool,
        /// Push even if the tag exists in the registry (without it, an existing tag is left as it is)
        #[arg(long)]
        r#override: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Oci,
    Docker,
    Filesystem,
}

#[derive(Debug, Subcommand)]
pub enum MetadataCommand {
    /// Create an ISO holding a `config` file with DATA, for `run --data`
    Create {
        /// The ISO file to write
        iso: PathBuf,
        /// The metadata (usually JSON)
        data: String,
    },
}

#[derive(Debug, Args)]
pub struct PkgArgs {
    #[command(flatten)]
    pub opts: PkgOpts,
    #[command(subcommand)]
    pub command: PkgCommand,
}

/// Flags shared by every `pkg` sub-command. Only flags given on the command
/// line override the package's build.yml.
#[derive(Debug, Clone, Args)]
pub struct PkgOpts {
    /// Disable build caching
    #[arg(long = "disable-cache", global = true, conflicts_with = "enable_cache")]
    pub disable_cache: bool,
    /// Enable build caching
    #[arg(long = "enable-cache", global = true)]
    pub enable_cache: bool,
    /// Disallow network use during the build
    #[arg(long, global = true, conflicts_with = "network")]
    pub nonetwork: bool,
    /// Allow network use during the build
    #[arg(long, global = true)]
    pub network: bool,
    /// Override the organisation (registry namespace) of the image
    #[arg(long, global = true)]
    pub org: Option<String>,
    /// Override the name of the package's yml file
    #[arg(long = "build-yml", global = true, default_value = "build.yml")]
    pub build_yml: String,
    /// Override the image hash (default: the package's git tree hash)
    #[arg(long, global = true)]
    pub hash: Option<String>,
    /// Override the tag; `{{.Hash}}` stands for the hash
    #[arg(long, global = true)]
    pub tag: Option<String>,
    /// The commit to hash
    #[arg(long = "hash-commit", global = true, default_value = "HEAD")]
    pub hash_commit: String,
    /// Hash this ancestor directory instead of the package directory
    #[arg(long = "hash-path", global = true)]
    pub hash_path: Option<PathBuf>,
    /// Mark the package dirty whatever git says
    #[arg(long = "force-dirty", global = true)]
    pub force_dirty: bool,
    /// Development build: org is $USER, hash is `dev`
    #[arg(long, global = true)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Build packages into the local cache
    Build(PkgBuildArgs),
    /// Manage the package builder
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Build and push packages (deprecated: use `pkg build --push`)
    Push(PkgBuildArgs),
    /// Print the tag a package builds to
    #[command(name = "show-tag")]
    ShowTag {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Show the canonical name, e.g. docker.io/linuxkit/foo:1234
        #[arg(long)]
        canonical: bool,
    },
    /// Push the multi-arch index of packages (not implemented: issue 19)
    #[command(visible_alias = "index")]
    Manifest(RefusedArgs),
    /// Tag an image in a registry with another tag (copying it if the repository differs)
    #[command(name = "remote-tag")]
    RemoteTag { from: String, to: String },
}

#[derive(Debug, Args)]
pub struct PkgBuildArgs {
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Build even if the image is already cached
    #[arg(long, conflicts_with_all = ["nobuild", "pull"])]
    pub force: bool,
    /// Pull the image from its registry if it is not cached, and build only if that fails
    #[arg(long)]
    pub pull: bool,
    /// Push the image after building; with --nobuild, push the cached image without building
    #[arg(long)]
    pub push: bool,
    /// Do not read the builder's download cache: fetch every input again (Debian indices and packages)
    #[arg(long = "ignore-cached")]
    pub ignore_cached: bool,
    /// With --push: push without building (nothing is pushed if the image is not cached)
    #[arg(long)]
    pub nobuild: bool,
    /// With --push: also tag the image `TAG-ARCH` in the registry, as the reference's multi-arch push does
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub manifest: bool,
    /// Print what would be built and stop
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Platforms to build, e.g. linux/amd64,linux/arm64
    #[arg(long)]
    pub platforms: Option<String>,
    /// Platforms not to build, e.g. linux/arm64
    #[arg(long = "skip-platforms", conflicts_with = "platforms")]
    pub skip_platforms: Option<String>,
    /// Refresh the package lockfile (Debian package versions)
    #[arg(long)]
    pub update: bool,
    /// Rebuild the cached image (built here or pulled) in a scratch cache and report every difference
    #[arg(long, conflicts_with_all = ["force", "push", "nobuild", "update", "dry_run"])]
    pub verify: bool,
    /// Progress output: auto (bars on a terminal), plain (no bars), tty (bars)
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Files of build arguments for Dockerfile packages, one KEY=VALUE a line; they override buildArgs in build.yml (relative to the working directory)
    #[arg(long = "build-arg-file", value_name = "FILE")]
    pub build_arg_file: Vec<PathBuf>,
    /// The Dockerfile of a Dockerfile package, in the package directory or below; overrides build.yml's `dockerfile`
    #[arg(long)]
    pub dockerfile: Option<String>,
    /// SSH agent sockets or keys for `RUN --mount=type=ssh` (default|ID[=SOCKET|KEY[,KEY]])
    #[arg(long)]
    pub ssh: Vec<String>,
    /// With --push: also tag the pushed image ORG/IMAGE:RELEASE in the registry (not replacing a tag it already has)
    #[arg(long)]
    pub release: Option<String>,
    /// Docker contexts whose daemon builds Dockerfile packages, per platform: linux/amd64=CONTEXT,... (default: buildah, no daemon)
    #[arg(long)]
    pub builders: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Show the builder's disk use
    Du,
    /// Prune the builder's cache
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Push to Amazon Web Services
    Aws(RefusedArgs),
    /// Push to Microsoft Azure
    Azure(RefusedArgs),
    /// Push to Equinix Metal
    #[command(visible_alias = "packet")]
    Equinixmetal(RefusedArgs),
    /// Push to Google Cloud Platform
    Gcp(RefusedArgs),
    /// Push to OpenStack
    Openstack(RefusedArgs),
    /// Push to Scaleway
    Scaleway(RefusedArgs),
    /// Push to VMware vCenter
    Vcenter(RefusedArgs),
}

/// The arguments of a command we refuse as a whole (see
/// `flags::REFUSED_COMMANDS`): anything, so that the refusal names the
/// command rather than the first flag clap does not know.
#[derive(Debug, Args)]
pub struct RefusedArgs {
    /// The reference's flags and arguments for this command
    #[arg(num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub shared: RunShared,
    /// The image to run with the default backend (QEMU on Linux)
    pub path: Option<String>,
    /// Flags of the default backend (QEMU), for `linuxkit run [FLAGS] PATH`
    #[command(flatten, next_help_heading = "QEMU options (the default backend)")]
    pub qemu: QemuFlags,
    #[command(subcommand)]
    pub backend: Option<RunBackend>,
}

/// Flags of `run` shared by every backend.
#[derive(Debug, Clone, Args)]
pub struct RunShared {
    /// Number of CPUs
    #[arg(long, global = true, default_value_t = 1)]
    pub cpus: u32,
    /// Amount of memory in MB
    #[arg(long, global = true, default_value_t = 1024)]
    pub mem: u32,
    /// Disk config: [file=]path[,size=1G][,format=qcow2|raw]
    #[arg(long, global = true)]
    pub disk: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunBackend {
    /// Run on QEMU
    Qemu(Box<QemuArgs>),
    /// Run on Amazon Web Services
    Aws(RefusedArgs),
    /// Run on Microsoft Azure
    Azure(RefusedArgs),
    /// Run on Equinix Metal
    #[command(visible_alias = "packet")]
    Equinixmetal(RefusedArgs),
    /// Run on Google Cloud Platform
    Gcp(RefusedArgs),
    /// Run on HyperKit (macOS)
    Hyperkit(RefusedArgs),
    /// Run on Hyper-V (Windows)
    Hyperv(RefusedArgs),
    /// Run on OpenStack
    Openstack(RefusedArgs),
    /// Run on Scaleway
    Scaleway(RefusedArgs),
    /// Run on VirtualBox
    Vbox(RefusedArgs),
    /// Run on VMware vCenter
    Vcenter(RefusedArgs),
    /// Run on Apple's Virtualization framework (macOS)
    Virtualization(RefusedArgs),
    /// Run on VMware Workstation/Fusion
    Vmware(RefusedArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Boot test: linuxkit run qemu --accel tcg --expect 'Welcome' --fail-on FAILED --timeout 120 NAME\n\
Stop a detached VM: linuxkit run qemu --stop NAME"
)]
pub struct QemuArgs {
    /// Path prefix of the image (`NAME` for NAME-kernel/NAME-initrd.img), an ISO, or a disk
    pub path: String,
    #[command(flatten)]
    pub flags: QemuFlags,
}

/// The flags of `run qemu` (also accepted by `run PATH`).
#[derive(Debug, Clone, Args)]
pub struct QemuFlags {
    /// Show a graphical console instead of the serial console on stdio
    #[arg(long)]
    pub gui: bool,
    /// Boot with UEFI firmware
    #[arg(long)]
    pub uefi: bool,
    /// Boot the image as an ISO
    #[arg(long)]
    pub iso: bool,
    /// Boot NAME-kernel with NAME-squashfs.img as root
    #[arg(long)]
    pub squashfs: bool,
    /// Boot NAME-kernel with NAME-initrd.img
    #[arg(long)]
    pub kernel: bool,
    /// Boot the kernel+initrd build NAME over the network: write NAME.ipxe beside it, serve its directory as `serve` does, and let the diskless VM's iPXE fetch script, kernel and initrd over HTTP
    #[arg(long, conflicts_with_all = ["kernel", "squashfs", "iso", "detached", "stop"])]
    pub netboot: bool,
    /// Directory for the VM's state [default: PATH-state]
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Metadata for the guest, put on a CD as the file `config`
    #[arg(long, conflicts_with = "data_file")]
    pub data: Option<String>,
    /// File whose contents are the guest's metadata
    #[arg(long = "data-file")]
    pub data_file: Option<PathBuf>,
    /// UEFI firmware file [default: the first of /usr/share/ovmf/OVMF.fd, /usr/share/OVMF/OVMF_CODE.fd, ... that exists]
    #[arg(long)]
    pub fw: Option<PathBuf>,
    /// Accelerator: kvm, tcg, or kvm:tcg [default: kvm:tcg when KVM runs a test guest, else tcg]
    #[arg(long, env = "LINUXKIT_QEMU_ACCEL")]
    pub accel: Option<String>,
    /// Guest architecture: x86_64, aarch64, s390x (amd64 and arm64 too) [default: the image's, else the host's]
    #[arg(long)]
    pub arch: Option<Arch>,
    /// QEMU binary to use [default: qemu-system-ARCH]
    #[arg(long)]
    pub qemu: Option<PathBuf>,
    /// Run in the background: pid in STATE/qemu.pid, console in STATE/console.log
    #[arg(long)]
    pub detached: bool,
    /// Networking: user, bridge[,NAME], tap[,NAME], none
    #[arg(long, default_value = "user")]
    pub networking: String,
    /// Publish a port: HOST:GUEST[/udp] (user networking only)
    #[arg(long)]
    pub publish: Vec<String>,
    /// Enable USB
    #[arg(long)]
    pub usb: bool,
    /// Extra QEMU -device arguments
    #[arg(long)]
    pub device: Vec<String>,
    /// Boot test: succeed only if the console prints TEXT (repeatable; all must appear) and the guest powers off
    #[arg(long, value_name = "TEXT")]
    pub expect: Vec<String>,
    /// Boot test: fail as soon as the console prints TEXT (repeatable)
    #[arg(long = "fail-on", value_name = "TEXT")]
    pub fail_on: Vec<String>,
    /// Boot test: fail if the guest has not powered off after SECONDS; with --stop, how long to wait [default for --stop: 60]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Press the ACPI power button (QMP system_powerdown) when the console prints TEXT
    #[arg(long = "powerdown-after", value_name = "TEXT")]
    pub powerdown_after: Option<String>,
    /// Press the ACPI power button of the VM running with PATH's state directory (see --detached) and wait for it to exit
    #[arg(long, conflicts_with_all = ["detached", "expect", "fail_on", "powerdown_after"])]
    pub stop: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, `[HOST]:PORT` (no host: every interface)
    #[arg(long, default_value = ":8080")]
    pub port: String,
    /// Directory to serve
    #[arg(long, default_value = ".")]
    pub directory: PathBuf,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print only the version number
    #[arg(long, conflicts_with = "commit")]
    pub short: bool,
    /// Print only the commit
    #[arg(long)]
    pub commit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use linuxkit_output::Compression as C;

    #[test]
    fn initrd_compression_values() {
        let p = |s| parse_initrd_compression(s);
        assert_eq!(p("lz4").unwrap().method, C::Lz4);
        assert_eq!(p("zstd:19").unwrap().level, Some(19));
        assert_eq!(p("gzip").unwrap().level, None);
        assert!(p("zstd:23").is_err());
        assert!(p("none:1").is_err());
        assert!(p("xz").unwrap_err().contains("gzip, zstd, lz4 or none"));
    }
}
