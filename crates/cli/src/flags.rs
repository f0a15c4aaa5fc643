//! Which flags of the reference we honour and which we refuse, in one place,
//! so that no flag is parsed and then silently dropped.
//!
//! Every argument of the command tree is one of two kinds:
//!
//! * **honoured**: a field of a clap struct in `cli.rs`, listed in the
//!   `HONOURED` table of the handler that reads it (`commands::*`, `main`).
//!   Handlers take their arguments apart with an exhaustive pattern (no
//!   `..`, no `field: _`), so a new field that no handler binds does not
//!   compile, and one that is bound but never read trips `unused_variables`
//!   (denied in CI). The test `every_argument_is_honoured_or_refused` walks
//!   the whole tree and fails on any argument missing from the tables, and
//!   on patterns that drop a field.
//! * **refused**: a flag of the reference that we cannot honour here. It is
//!   not a struct field at all: [`REFUSED`] defines it, [`command`] adds it
//!   to the tree (so `--help` shows it and its reason), and [`refuse`] turns
//!   its use into one `Error:` line naming the flag, why, and what to use
//!   instead, before any handler runs.
//!
//! Whole commands we do not implement (the clouds, `pkg manifest`) take any
//! arguments and are refused by their handler, naming the command; see
//! [`REFUSED_COMMANDS`].

#[cfg(test)]
use clap::FromArgMatches;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory};

use crate::cli::Cli;
use crate::error::{Error, Result};

/// How a refused flag is spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch; like the reference's (cobra) booleans it also takes
    /// `--flag=false`, which asks for nothing and is accepted.
    Bool,
    /// A flag with a value (repeatable, as the reference's string slices).
    Value,
}

/// A reference flag we refuse, and why.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    /// The commands it belongs to, space separated words per command
    /// (`"pkg build"`); a flag of `pkg` itself applies to all under it.
    pub commands: &'static [&'static str],
    /// The long name, without dashes.
    pub long: &'static str,
    pub kind: Kind,
    /// Whether it is a persistent flag of its command (the reference's
    /// `PersistentFlags`): accepted after any sub-command too.
    pub global: bool,
    /// Why, and what to use instead; completes "`linuxkit CMD --FLAG` is
    /// not supported: ...".
    pub why: &'static str,
}

const PKG_BUILD: &[&str] = &["pkg build", "pkg push"];
const QEMU: &[&str] = &["run", "run qemu"];
const BUILDKIT: &str = "it configures the reference's BuildKit container, and our package builder runs none (declarative packages are built in-process, Dockerfile packages with buildah; `--builders linux/ARCH=CONTEXT` names a Docker daemon instead); drop the flag";

/// Every reference flag we refuse.
pub const REFUSED: &[Refused] = &[
    Refused {
        commands: &["build"],
        long: "docker",
        kind: Kind::Bool,
        global: false,
        why: "images are never looked up in a Docker daemon; load them into the cache with `docker save IMAGE | linuxkit cache import -` and build again",
    },
    Refused {
        commands: &["build"],
        long: "input-tar",
        kind: Kind::Value,
        global: false,
        why: "reusing a previous build's tar is not implemented; build without it (unchanged images are read from the cache, and the initrd's unchanged sections from its segment cache, anyway)",
    },
    Refused {
        commands: PKG_BUILD,
        long: "docker",
        kind: Kind::Bool,
        global: false,
        why: "packages are stored in the linuxkit cache only; load one into Docker with `linuxkit cache export --format docker --outfile - IMAGE | docker load`",
    },
    Refused {
        commands: PKG_BUILD,
        long: "builder-name",
        kind: Kind::Value,
        global: false,
        why: BUILDKIT,
    },
    Refused {
        commands: PKG_BUILD,
        long: "builder-image",
        kind: Kind::Value,
        global: false,
        why: BUILDKIT,
    },
    Refused {
        commands: PKG_BUILD,
        long: "builder-config",
        kind: Kind::Value,
        global: false,
        why: BUILDKIT,
    },
    Refused {
        commands: PKG_BUILD,
        long: "builder-restart",
        kind: Kind::Bool,
        global: false,
        why: BUILDKIT,
    },
    Refused {
        commands: PKG_BUILD,
        long: "precache-images",
        kind: Kind::Bool,
        global: false,
        why: "the images a Dockerfile starts from are always fetched into the cache before it is built (`linuxkit cache pull` fetches others); drop the flag",
    },
    Refused {
        commands: PKG_BUILD,
        long: "sbom-scanner",
        kind: Kind::Value,
        global: false,
        why: "no scanner image is run: the package builder records each package's SBOM itself from what it builds the image from (Debian packages, crates, Go binaries, files; docs/sbom.md); drop the flag",
    },
    Refused {
        commands: &["pkg"],
        long: "registry-creds",
        kind: Kind::Value,
        global: true,
        why: "credentials for `FROM` images and for `--push` are read from the Docker config; log in with `docker login` instead",
    },
    Refused {
        commands: &["pkg builder"],
        long: "builders",
        kind: Kind::Value,
        global: true,
        why: BUILDKIT,
    },
    Refused {
        commands: &["pkg builder"],
        long: "builder-name",
        kind: Kind::Value,
        global: true,
        why: BUILDKIT,
    },
    Refused {
        commands: &["pkg builder"],
        long: "builder-image",
        kind: Kind::Value,
        global: true,
        why: BUILDKIT,
    },
    Refused {
        commands: &["pkg builder"],
        long: "builder-config",
        kind: Kind::Value,
        global: true,
        why: BUILDKIT,
    },
    Refused {
        commands: &["pkg builder"],
        long: "platforms",
        kind: Kind::Value,
        global: true,
        why: "the builder's cache (Debian downloads) is shared by every architecture and is measured or pruned as a whole; drop the flag",
    },
    Refused {
        commands: &["pkg remote-tag"],
        long: "release",
        kind: Kind::Value,
        global: false,
        why: "the reference parses it but never uses it; drop the flag",
    },
    Refused {
        commands: QEMU,
        long: "virtiofs",
        kind: Kind::Value,
        global: false,
        why: "sharing host directories through virtiofsd is not implemented; pass data with --data/--data-file, a disk with --disk, or put the files in the image (`files:`)",
    },
    Refused {
        commands: QEMU,
        long: "virtiofsd",
        kind: Kind::Value,
        global: false,
        why: "sharing host directories through virtiofsd is not implemented; pass data with --data/--data-file, a disk with --disk, or put the files in the image (`files:`)",
    },
];

/// Commands of the reference we refuse as a whole (every argument with
/// them): the handler names the command and the issue that brings it.
#[cfg_attr(not(test), allow(dead_code))] // read by the tree test (`flags`)
pub const REFUSED_COMMANDS: &[&str] = &[
    "pkg manifest",
    "push aws",
    "push azure",
    "push equinixmetal",
    "push gcp",
    "push openstack",
    "push scaleway",
    "push vcenter",
    "run aws",
    "run azure",
    "run equinixmetal",
    "run gcp",
    "run hyperkit",
    "run hyperv",
    "run openstack",
    "run scaleway",
    "run vbox",
    "run vcenter",
    "run virtualization",
    "run vmware",
];

/// The command tree: `Cli`'s, with the refused flags added where the
/// reference has them.
pub fn command() -> Command {
    let mut cmd = Cli::command();
    for r in REFUSED {
        for path in r.commands {
            let words: Vec<&str> = path.split(' ').collect();
            cmd = add_at(cmd, &words, r);
        }
    }
    cmd
}

fn add_at(cmd: Command, path: &[&str], r: &Refused) -> Command {
    match path.split_first() {
        Some((first, rest)) => cmd.mut_subcommand(*first, |sub| add_at(sub, rest, r)),
        None => {
            let arg = Arg::new(r.long)
                .long(r.long)
                .global(r.global)
                .help(format!("Not supported: {}", short_reason(r.why)));
            cmd.arg(match r.kind {
                Kind::Bool => arg
                    .action(ArgAction::Set)
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_parser(clap::builder::BoolishValueParser::new()),
                Kind::Value => arg.action(ArgAction::Append).value_name("VALUE"),
            })
        }
    }
}

/// The reason up to its first `;` (the help line; the error has it all).
fn short_reason(why: &str) -> &str {
    why.split(';').next().unwrap_or(why)
}

/// The matches of the sub-command at `path` (words), if that is the one
/// given.
fn matches_at<'a>(m: &'a ArgMatches, path: &[&str]) -> Option<&'a ArgMatches> {
    match path.split_first() {
        None => Some(m),
        Some((first, rest)) => match m.subcommand() {
            Some((name, sub)) if name == *first => matches_at(sub, rest),
            _ => None,
        },
    }
}

/// The first refused flag given on the command line, as an error.
pub fn refuse(m: &ArgMatches) -> Result<()> {
    for r in REFUSED {
        for path in r.commands {
            let words: Vec<&str> = path.split(' ').collect();
            // A persistent flag may be given after a deeper sub-command.
            let mut level = matches_at(m, &words);
            while let Some(sub) = level {
                let given = sub.value_source(r.long) == Some(ValueSource::CommandLine)
                    // `--flag=false` asks for the default, which is what we do.
                    && !(r.kind == Kind::Bool && sub.get_one::<bool>(r.long) == Some(&false));
                if given {
                    return Err(Error::Refused {
                        what: format!("{path} --{}", r.long),
                        why: r.why.to_string(),
                    });
                }
                level = if r.global {
                    sub.subcommand().map(|(_, s)| s)
                } else {
                    None
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every honoured argument, by the command that has it (words, `""` for
    /// the global ones) and its clap id (the field's name), from each
    /// handler's table.
    pub fn honoured() -> Vec<(&'static str, &'static str, &'static str)> {
        let tables: &[(&str, crate::cli::Honoured)] = &[
            ("src/main.rs", crate::HONOURED),
            ("src/global.rs", crate::global::HONOURED),
            ("src/commands/build.rs", crate::commands::build::HONOURED),
            ("src/commands/cache.rs", crate::commands::cache::HONOURED),
            ("src/commands/pkg.rs", crate::commands::pkg::HONOURED),
            ("src/commands/run.rs", crate::commands::run::HONOURED),
            ("src/commands/serve.rs", crate::commands::serve::HONOURED),
        ];
        let mut out = Vec::new();
        for (file, table) in tables {
            for (command, ids) in *table {
                for id in *ids {
                    out.push((*file, *command, *id));
                }
            }
        }
        out
    }

    /// An argument of the tree: the command's words (`""` for the top),
    /// the clap id, the long flag if it has one, whether it is positional.
    #[derive(Debug, Clone)]
    struct TreeArg {
        command: String,
        id: String,
        long: Option<String>,
    }

    /// Every argument of every command of the built tree, each where it is
    /// defined (a global one only at its own command).
    fn tree() -> Vec<TreeArg> {
        fn walk(cmd: &Command, path: &str, inherited: &BTreeSet<String>, out: &mut Vec<TreeArg>) {
            let mut globals = inherited.clone();
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str().to_string();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.is_global_set() {
                    if inherited.contains(&id) {
                        continue;
                    }
                    globals.insert(id.clone());
                }
                out.push(TreeArg {
                    command: path.to_string(),
                    id,
                    long: a.get_long().map(str::to_string),
                });
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                let p = if path.is_empty() {
                    sub.get_name().to_string()
                } else {
                    format!("{path} {}", sub.get_name())
                };
                walk(sub, &p, &globals, out);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut out = Vec::new();
        walk(&cmd, "", &BTreeSet::new(), &mut out);
        out
    }

    fn is_refused(command: &str, id: &str) -> bool {
        REFUSED
            .iter()
            .any(|r| r.long == id && r.commands.contains(&command))
    }

    /// Whether `src` reads the field `ident`: a field access (`.ident`), or a
    /// binding by name in a pattern (`{ ident,` / `, ident }`), whose use the
    /// compiler's `unused_variables` checks. `ident: _` is neither.
    fn reads(src: &str, ident: &str) -> bool {
        let bytes = src.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'#';
        let mut from = 0;
        while let Some(i) = src[from..].find(ident).map(|i| i + from) {
            from = i + 1;
            let end = i + ident.len();
            if (i > 0 && word(bytes[i - 1])) || (end < bytes.len() && word(bytes[end])) {
                continue;
            }
            let before = src[..i].trim_end().as_bytes().last().copied();
            let after = src[end..].trim_start().as_bytes().first().copied();
            if before == Some(b'.') && !src[..i].trim_end().ends_with("..") {
                return true;
            }
            if matches!(before, Some(b'{' | b',')) && matches!(after, Some(b',' | b'}')) {
                return true;
            }
        }
        false
    }

    /// The walk of the whole tree: every argument of every command is
    /// honoured (listed by the handler that reads it, and read there) or
    /// refused (defined in `REFUSED`, or under a refused command); nothing
    /// in the tables is missing from the tree.
    #[test]
    fn every_argument_is_honoured_or_refused() {
        let tree = tree();
        // Not vacuous: the tree is the whole command line.
        assert!(
            tree.len() > 100,
            "only {} arguments in the tree",
            tree.len()
        );
        let honoured = honoured();
        let mut problems = Vec::new();
        for a in &tree {
            if REFUSED_COMMANDS.contains(&a.command.as_str()) {
                continue;
            }
            let h = honoured
                .iter()
                .any(|(_, c, id)| *c == a.command && *id == a.id);
            let r = is_refused(&a.command, &a.id);
            match (h, r) {
                (true, true) => problems.push(format!(
                    "`{}` `{}` is both honoured and refused",
                    a.command, a.id
                )),
                (false, false) => problems.push(format!(
                    "`{}` `{}` (--{}) is parsed but no handler lists it as read and `flags::REFUSED` does not refuse it",
                    a.command,
                    a.id,
                    a.long.as_deref().unwrap_or("positional")
                )),
                _ => {}
            }
        }
        for (file, command, id) in &honoured {
            if !tree.iter().any(|a| a.command == *command && a.id == *id) {
                problems.push(format!(
                    "{file} lists `{command}` `{id}`, which the tree lacks"
                ));
            }
            let src = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
            )
            .unwrap();
            let ident = if *id == "override" { "r#override" } else { id };
            if !reads(&src, ident) {
                problems.push(format!(
                    "{file} lists `{command}` `{id}` as honoured but never reads it"
                ));
            }
        }
        for r in REFUSED {
            for c in r.commands {
                if !tree.iter().any(|a| a.command == *c && a.id == r.long) {
                    problems.push(format!("refused `{c} --{}` is not in the tree", r.long));
                }
            }
        }
        for c in REFUSED_COMMANDS {
            let words: Vec<&str> = c.split(' ').collect();
            let mut cmd = command();
            cmd.build();
            let mut at = Some(&cmd);
            for w in &words {
                at = at.and_then(|x| x.find_subcommand(w));
            }
            if at.is_none() {
                problems.push(format!("refused command `{c}` is not in the tree"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// The check of reads is not vacuous: an unread field fails it.
    #[test]
    fn reads_sees_only_real_reads() {
        assert!(reads("let x = args.pull;", "pull"));
        assert!(reads("let BuildArgs { files, pull } = a;", "pull"));
        assert!(reads("let BuildArgs {\n    pull,\n    x } = a;", "pull"));
        assert!(!reads("let BuildArgs { pull: _, x } = a;", "pull"));
        assert!(!reads("let pullover = 1; // pull", "pullo"));
        assert!(!reads("\"pull\", ", "pull"));
        assert!(!reads("..pull", "pull"));
    }

    /// Required positionals of the command at `words`, filled with `x`.
    fn argv(words: &[&str], flag: &str) -> Vec<String> {
        let mut cmd = command();
        cmd.build();
        let mut at = &cmd;
        for w in words {
            at = at.find_subcommand(w).unwrap();
        }
        let mut v: Vec<String> = std::iter::once("linuxkit")
            .chain(words.iter().copied())
            .map(String::from)
            .collect();
        v.push(flag.to_string());
        // A persistent flag of a command that needs a sub-command: take
        // the first one.
        while at.is_subcommand_required_set() {
            at = at.get_subcommands().next().unwrap();
            v.push(at.get_name().to_string());
        }
        for a in at.get_positionals() {
            if a.is_required_set() {
                v.push("x".into());
            }
        }
        v
    }

    /// Every refused flag, on every command that has it, is parsed and then
    /// refused with a message naming the command, the flag and why;
    /// `--flag=false` of a switch asks for nothing and passes.
    #[test]
    fn every_refused_flag_is_refused_by_name() {
        for r in REFUSED {
            for c in r.commands {
                let words: Vec<&str> = c.split(' ').collect();
                let flag = match r.kind {
                    Kind::Bool => format!("--{}", r.long),
                    Kind::Value => format!("--{}=v", r.long),
                };
                let m = command()
                    .try_get_matches_from(argv(&words, &flag))
                    .unwrap_or_else(|e| panic!("{c} {flag}: {e}"));
                let e = refuse(&m).expect_err(&format!("{c} {flag} is not refused"));
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("`linuxkit {c} --{}` is not supported", r.long))
                        && msg.contains(r.why),
                    "{msg}"
                );
                if r.kind == Kind::Bool {
                    let m = command()
                        .try_get_matches_from(argv(&words, &format!("--{}=false", r.long)))
                        .unwrap();
                    assert!(refuse(&m).is_ok(), "{c} --{}=false is refused", r.long);
                }
            }
        }
        // A persistent refused flag after a deeper sub-command.
        let m = command()
            .try_get_matches_from(["linuxkit", "pkg", "show-tag", "--registry-creds=a=b:c", "x"])
            .unwrap();
        assert!(
            refuse(&m)
                .unwrap_err()
                .to_string()
                .contains("--registry-creds")
        );
        // Flags that are not refused pass.
        let m = command()
            .try_get_matches_from(["linuxkit", "build", "--pull", "x"])
            .unwrap();
        assert!(refuse(&m).is_ok());
    }

    /// Every refused command is refused by name, whatever follows it.
    #[test]
    fn every_refused_command_is_refused_by_name() {
        for c in REFUSED_COMMANDS {
            let mut v: Vec<&str> = vec!["linuxkit"];
            v.extend(c.split(' '));
            v.extend(["--zone", "x", "image"]);
            let m = command()
                .try_get_matches_from(&v)
                .unwrap_or_else(|e| panic!("{c}: {e}"));
            refuse(&m).unwrap();
            let cli = Cli::from_arg_matches(&m).unwrap();
            let e = crate::run(cli).expect_err(c);
            assert!(
                e.to_string()
                    .starts_with(&format!("`linuxkit {c}` is not implemented: ")),
                "{e}"
            );
        }
    }

    /// docs/cli.md has a row for every flag of the tree: `| `CMD` | `--FLAG` |`.
    #[test]
    fn docs_list_every_flag() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md"),
        )
        .unwrap();
        let mut missing = Vec::new();
        for a in tree() {
            let Some(long) = &a.long else { continue };
            if REFUSED_COMMANDS.contains(&a.command.as_str()) {
                continue;
            }
            let cmd = if a.command.is_empty() {
                "(global)"
            } else {
                &a.command
            };
            let row = format!("| `{cmd}` | `--{long}`");
            if !doc.lines().any(|l| l.starts_with(&row)) {
                missing.push(row);
            }
        }
        assert!(
            missing.is_empty(),
            "docs/cli.md lacks rows:\n{}",
            missing.join("\n")
        );
    }
}
