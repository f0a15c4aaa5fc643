//! Dependency resolution: a list of package names → the closed set of
//! packages an image needs.
//!
//! # The algorithm, and why it is this simple
//!
//! An image build is not an upgrade of a live system: there is nothing
//! installed to keep, and the archive of one suite is self-consistent. So
//! instead of a SAT solver (apt's, or aptitude's), this is a deterministic
//! greedy walk, which is easy to predict and to explain when it fails:
//!
//! 1. Requests and then `Pre-Depends` + `Depends` are processed breadth-first,
//!    in the order written.
//! 2. A dependency already satisfied by a selected package (real, or via
//!    `Provides`) costs nothing — this is what makes `a | b` prefer whatever
//!    is already in the set.
//! 3. Otherwise the alternatives are tried in order; the first that some
//!    package can satisfy wins. For one alternative, the real package of
//!    that name is preferred (highest satisfying version), then providers,
//!    ordered by `Priority` (required first) and then name — so a virtual
//!    package always resolves the same way.
//! 4. A package whose name is already selected at another version cannot
//!    be chosen again (there is no backtracking); the error says so.
//!
//! `Conflicts`, `Breaks` and `Recommends` are ignored: they matter when
//! installing into a running system, much less when composing a fixed set
//! from one suite. Essential packages are included like any other unless
//! [`ResolveOptions::skip_essential`] is set, in which case they are assumed
//! present (a base image supplies them) and neither selected nor followed.
//!
//! # Architectures
//!
//! Only the index's native architecture (and `all`) is considered.
//! Qualifiers follow dpkg: `pkg:any` is satisfied only by a
//! `Multi-Arch: allowed` package, `pkg:native` by the native architecture,
//! and `pkg:ARCH` by that architecture.

use std::collections::{BTreeMap, VecDeque};

use super::error::{DebianError, Result};
use super::index::{MultiArch, Package, PackageIndex};
use super::relation::Dependency;
use super::version::Version;

/// How to resolve.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Treat `Essential: yes` packages as already present: never select
    /// them, never follow their dependencies, and count dependencies on
    /// them as satisfied.
    pub skip_essential: bool,
    /// Select the requested packages only: their `Depends` and
    /// `Pre-Depends` are not followed (build.yml's `dependencies: false`).
    pub no_dependencies: bool,
}

/// Resolves `requests` against `index` to a closed set of packages, sorted
/// by name. See the [module docs](self) for the rules.
///
/// Errors: [`DebianError::UnknownPackage`] for a request naming nothing in
/// the index (with close matches), [`DebianError::Unsatisfiable`] with the
/// chain from a request to the dependency that failed.
pub fn resolve<'a>(
    index: &'a PackageIndex,
    requests: &[Dependency],
    opts: &ResolveOptions,
) -> Result<Vec<&'a Package>> {
    let mut r = Resolver {
        index,
        opts,
        selected: BTreeMap::new(),
    };
    let mut queue: VecDeque<(Vec<Dependency>, Vec<String>)> = VecDeque::new();
    for req in requests {
        if !index.knows(&req.name) {
            return Err(DebianError::UnknownPackage {
                name: req.name.clone(),
                suite: index.label.clone(),
                suggestions: index.close_matches(&req.name),
            });
        }
        queue.push_back((vec![req.clone()], Vec::new()));
    }
    while let Some((alts, chain)) = queue.pop_front() {
        let chain_here = |i: usize| {
            let mut c = chain.clone();
            c.push(alts[i].to_string());
            c
        };
        if alts.iter().any(|d| r.satisfied(d)) {
            continue;
        }
        let mut reasons = Vec::new();
        let mut chosen = None;
        for (i, dep) in alts.iter().enumerate() {
            match r.best(dep) {
                Ok(p) => {
                    chosen = Some((p, chain_here(i)));
                    break;
                }
                Err(why) => reasons.push(why),
            }
        }
        let Some((pkg, chain)) = chosen else {
            let mut full = chain.clone();
            full.push(
                alts.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
            return Err(DebianError::Unsatisfiable {
                chain: full,
                reason: reasons.join("; "),
            });
        };
        r.selected.insert(pkg.name.clone(), pkg);
        if opts.no_dependencies {
            continue;
        }
        for group in pkg.pre_depends.iter().chain(&pkg.depends) {
            queue.push_back((group.clone(), chain.clone()));
        }
    }
    Ok(r.selected.into_values().collect())
}

struct Resolver<'a, 'o> {
    index: &'a PackageIndex,
    opts: &'o ResolveOptions,
    selected: BTreeMap<String, &'a Package>,
}

impl<'a> Resolver<'a, '_> {
    /// Whether `pkg`'s architecture can satisfy `dep`'s qualifier.
    fn arch_ok(&self, dep: &Dependency, pkg: &Package) -> bool {
        let native = &self.index.arch;
        let is_native = pkg.architecture == *native || pkg.architecture == "all";
        match dep.arch.as_deref() {
            None | Some("native") => is_native,
            Some("any") => is_native && pkg.multi_arch == MultiArch::Allowed,
            Some(a) => pkg.architecture == a || (a == native && pkg.architecture == "all"),
        }
    }

    fn version_ok(dep: &Dependency, v: &Version) -> bool {
        dep.constraint
            .as_ref()
            .is_none_or(|(rel, bound)| v.satisfies(*rel, bound))
    }

    /// Whether `pkg` satisfies `dep`, as itself or through a `Provides`.
    fn provides(&self, dep: &Dependency, pkg: &Package) -> bool {
        if !self.arch_ok(dep, pkg) {
            return false;
        }
        if pkg.name == dep.name && Self::version_ok(dep, &pkg.version) {
            return true;
        }
        pkg.provides.iter().any(|p| {
            p.name == dep.name
                && match (&dep.constraint, &p.version) {
                    (None, _) => true,
                    // An unversioned Provides never satisfies a versioned dependency.
                    (Some(_), None) => false,
                    (Some(_), Some(v)) => Self::version_ok(dep, v),
                }
        })
    }

    fn satisfied(&self, dep: &Dependency) -> bool {
        let essential_ok = |p: &&Package| self.opts.skip_essential && p.essential;
        self.selected.values().any(|p| self.provides(dep, p))
            || self
                .index
                .get(&dep.name)
                .chain(self.index.providers(&dep.name))
                .filter(essential_ok)
                .any(|p| self.provides(dep, p))
    }

    /// The package to select for `dep`, or why there is none.
    fn best(&self, dep: &Dependency) -> Result<&'a Package, String> {
        let usable = |p: &&'a Package| {
            self.provides(dep, p)
                && self
                    .selected
                    .get(&p.name)
                    .is_none_or(|s| s.version == p.version)
        };
        let mut real: Vec<&'a Package> = self.index.get(&dep.name).filter(usable).collect();
        real.sort_by(|a, b| b.version.cmp(&a.version));
        if let Some(p) = real.first() {
            return Ok(p);
        }
        let mut providers: Vec<&'a Package> =
            self.index.providers(&dep.name).filter(usable).collect();
        providers.sort_by(|a, b| {
            priority_rank(a)
                .cmp(&priority_rank(b))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| b.version.cmp(&a.version))
        });
        if let Some(p) = providers.first() {
            return Ok(p);
        }
        Err(self.why_not(dep))
    }

    fn why_not(&self, dep: &Dependency) -> String {
        if !self.index.knows(&dep.name) {
            return format!("no package {} in {}", dep.name, self.index.label);
        }
        if let Some(sel) = self.selected.get(&dep.name)
            && !Self::version_ok(dep, &sel.version)
        {
            return format!(
                "{} {} is already selected and does not satisfy {dep}",
                sel.name, sel.version
            );
        }
        let mut available: Vec<String> = self
            .index
            .get(&dep.name)
            .map(|p| format!("{} ({})", p.version, p.architecture))
            .chain(self.index.providers(&dep.name).map(|p| {
                let v = p.provides.iter().find(|x| x.name == dep.name);
                let v = v.and_then(|x| x.version.as_ref());
                match v {
                    Some(v) => format!("{} provides {} {v}", p.name, dep.name),
                    None => format!("{} provides {} (unversioned)", p.name, dep.name),
                }
            }))
            .collect();
        available.sort();
        format!(
            "no version of {} satisfies {dep}; available: {}",
            dep.name,
            available.join(", ")
        )
    }
}

/// `required` < `important` < `standard` < `optional` < `extra` < none.
fn priority_rank(p: &Package) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}
