//! `linuxkit` (also answering to `moby`): a thin layer that turns the
//! command line into calls on the library crates and every failure into one
//! `Error: ...` line.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;
mod flags;
mod global;

use clap::FromArgMatches;
use clap::error::ErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;

use cli::{Cli, Command, GlobalArgs, MetadataCommand, PushCommand, RunArgs, RunBackend};
use error::{Error, Result};
use global::{cache_dir, registry};

/// The arguments `main` reads (see `flags`): those of the commands it
/// handles itself (the global ones are `global`'s).
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const HONOURED: cli::Honoured = &[
    ("metadata create", &["iso", "data"]),
    ("version", &["short", "commit"]),
    ("completion", &["shell"]),
    ("run", &["path"]),
    ("run qemu", &["path"]),
];

fn main() -> ExitCode {
    let matches = match flags::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(&cli.global);
    match flags::refuse(&matches).and_then(|()| run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go to stdout as usual; a usage mistake becomes the same
/// single `Error: ...` line and exit status 1 as every other failure (the
/// reference exits 0 or 1 only).
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    eprintln!("Error: {first} (see --help)");
    ExitCode::FAILURE
}

/// `-q` shows only errors; `-v 0..3` is quiet, info (default), debug, trace.
fn init_logging(g: &GlobalArgs) {
    use tracing::Level;
    let GlobalArgs { quiet, verbose, .. } = g;
    let level = match (quiet, verbose) {
        (true, _) | (false, 0) => Level::ERROR,
        (false, 1) => Level::INFO,
        (false, 2) => Level::DEBUG,
        _ => Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}

/// The name we were invoked as: `moby` for the seeds' old name, else `linuxkit`.
fn program_name() -> &'static str {
    let arg0 = std::env::args_os().next().map(PathBuf::from);
    match arg0.as_deref().and_then(|p| p.file_stem()) {
        Some(s) if s == "moby" => "moby",
        _ => "linuxkit",
    }
}

/// A command refused as a whole (`flags::REFUSED_COMMANDS`).
fn refused_command(what: &str, why: &str) -> Result<()> {
    Err(Error::RefusedCommand {
        what: what.to_string(),
        why: why.to_string(),
    })
}

/// Why the cloud and foreign-hypervisor commands are refused.
const CLOUDS: &str = "the cloud and foreign-hypervisor back-ends come with issue 23; build a disk image (`build --format aws|gcp|azure|vhd|vmdk|raw-efi`) and upload it with the cloud's own tools, or boot it here with `linuxkit run qemu`";

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Build(args) => commands::build::run(
            args,
            &linuxkit_pkg::PkgOptions::default(),
            &cache_dir(&cli.global),
            &cli.global.cert_file,
            || registry(&cli.global, linuxkit_oci::Platform::linux(args.arch)),
        ),
        Command::Pkg(args) => commands::pkg::run(args, &cache_dir(&cli.global), &cli.global),
        Command::Cache(c) => commands::cache::run(c, &cache_dir(&cli.global), || {
            registry(
                &cli.global,
                linuxkit_oci::RegistryOptions::default().platform,
            )
        }),
        Command::Metadata(MetadataCommand::Create { iso, data }) => Ok(
            linuxkit_run::metadata::create_metadata_iso(iso, data.as_bytes())?,
        ),
        Command::Push(p) => refused_command(
            match p {
                PushCommand::Aws(_) => "push aws",
                PushCommand::Azure(_) => "push azure",
                PushCommand::Equinixmetal(_) => "push equinixmetal",
                PushCommand::Gcp(_) => "push gcp",
                PushCommand::Openstack(_) => "push openstack",
                PushCommand::Scaleway(_) => "push scaleway",
                PushCommand::Vcenter(_) => "push vcenter",
            },
            CLOUDS,
        ),
        Command::Run(r) => run_backend(r, &cli.global),
        Command::Serve(s) => commands::serve::run(s),
        Command::Version(v) => {
            let version = env!("CARGO_PKG_VERSION");
            let commit = option_env!("LINUXKIT_COMMIT").unwrap_or("unknown");
            if v.short {
                println!("{version}");
            } else if v.commit {
                println!("{commit}");
            } else {
                println!("{} version {version}", program_name());
                println!("commit: {commit}");
            }
            Ok(())
        }
        Command::Completion { shell } => {
            let mut cmd = flags::command();
            let shell = match shell {
                cli::Shell::Bash => clap_complete::Shell::Bash,
                cli::Shell::Zsh => clap_complete::Shell::Zsh,
                cli::Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut cmd, program_name(), &mut std::io::stdout());
            Ok(())
        }
    }
}

fn run_backend(r: &RunArgs, g: &GlobalArgs) -> Result<()> {
    let name = match (&r.backend, &r.path) {
        (None, None) => {
            return Err(Error::Usage(
                "run needs an image: `linuxkit run qemu NAME` (or `linuxkit run NAME` for the default backend)".into(),
            ));
        }
        // The default backend on Linux is QEMU.
        (None, Some(path)) => return commands::run::run(path, &r.shared, &r.qemu, g),
        (Some(RunBackend::Qemu(q)), _) => {
            return commands::run::run(&q.path, &r.shared, &q.flags, g);
        }
        (Some(RunBackend::Aws(_)), _) => "run aws",
        (Some(RunBackend::Azure(_)), _) => "run azure",
        (Some(RunBackend::Equinixmetal(_)), _) => "run equinixmetal",
        (Some(RunBackend::Gcp(_)), _) => "run gcp",
        (Some(RunBackend::Hyperkit(_)), _) => "run hyperkit",
        (Some(RunBackend::Hyperv(_)), _) => "run hyperv",
        (Some(RunBackend::Openstack(_)), _) => "run openstack",
        (Some(RunBackend::Scaleway(_)), _) => "run scaleway",
        (Some(RunBackend::Vbox(_)), _) => "run vbox",
        (Some(RunBackend::Vcenter(_)), _) => "run vcenter",
        (Some(RunBackend::Virtualization(_)), _) => "run virtualization",
        (Some(RunBackend::Vmware(_)), _) => "run vmware",
    };
    refused_command(name, CLOUDS)
}
