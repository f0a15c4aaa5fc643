//! Restart policies and start ordering of services, declared as OCI
//! annotations so a file that uses them stays the reference's schema.
//!
//! Why annotations and not new YAML keys: the reference refuses unknown
//! keys, so a `restart:` key would make the file unreadable by it, while
//! `annotations` is a field it accepts and copies into the container's
//! spec unchanged. A file using these builds with the reference too (its
//! init just does not act on them), and our init reads them back from the
//! spec (`config.json`) of the service's bundle, the one place both
//! `linuxkit build` and the init see.
//!
//! | annotation | value |
//! |---|---|
//! | `org.linuxkit.restart` | `no` (the default), `always`, `on-failure` or `on-failure:N` (at most N restarts; 5 without N) |
//! | `org.linuxkit.after` | services (comma-separated) that must be running before this one starts |
//! | `org.linuxkit.wait-for` | absolute paths (comma-separated) that must exist before this one starts |
//!
//! `linuxkit build` checks the values, that each service named in `after`
//! exists, and that no services wait for each other (a cycle), with the
//! file, line and column of the annotation.

use std::collections::BTreeMap;
use std::time::Duration;

/// The restart policy's annotation.
pub const RESTART: &str = "org.linuxkit.restart";
/// The annotation naming the services to wait for.
pub const AFTER: &str = "org.linuxkit.after";
/// The annotation naming the paths to wait for.
pub const WAIT_FOR: &str = "org.linuxkit.wait-for";

/// `on-failure`'s limit when none is given.
pub const DEFAULT_LIMIT: u32 = 5;

/// What happens when a service's process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Nothing (the reference's only behaviour).
    #[default]
    No,
    /// Restarted after a non-zero exit, at most `limit` times.
    OnFailure {
        /// Restarts allowed.
        limit: u32,
    },
    /// Restarted whenever it ends (unless stopped on purpose).
    Always,
}

impl Restart {
    /// Parses an `org.linuxkit.restart` value.
    pub fn parse(s: &str) -> Result<Restart, String> {
        let s = s.trim();
        match s {
            "no" | "" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "on-failure" => Ok(Restart::OnFailure {
                limit: DEFAULT_LIMIT,
            }),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .trim()
                    .parse()
                    .map(|limit| Restart::OnFailure { limit })
                    .map_err(|_| {
                        format!("`{RESTART}: {s}`: the limit after `on-failure:` must be a number")
                    }),
                None => Err(format!(
                    "`{RESTART}: {s}`: not a restart policy; use `no`, `always`, `on-failure` or `on-failure:N`"
                )),
            },
        }
    }

    /// Whether the `restarts`+1-th restart is due after an exit with
    /// `status`.
    pub fn restarts(self, status: u32, restarts: u32) -> bool {
        match self {
            Restart::No => false,
            Restart::Always => true,
            Restart::OnFailure { limit } => status != 0 && restarts < limit,
        }
    }

    /// The limit, for messages (`None`: unbounded).
    pub fn limit(self) -> Option<u32> {
        match self {
            Restart::OnFailure { limit } => Some(limit),
            _ => None,
        }
    }
}

/// The wait before restart number `n` (1-based): 1 s, doubling, at most
/// 30 s, so a service that cannot run does not keep the machine busy.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// A comma-separated annotation value as a list (blanks dropped).
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A service's policy and ordering, from its annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePolicy {
    /// What happens when it ends.
    pub restart: Restart,
    /// Services that must be running first.
    pub after: Vec<String>,
    /// Paths that must exist first.
    pub wait_for: Vec<String>,
}

impl ServicePolicy {
    /// Reads the annotations; an error names the annotation at fault.
    pub fn from_annotations(
        a: &BTreeMap<String, String>,
    ) -> Result<ServicePolicy, (String, String)> {
        let restart = match a.get(RESTART) {
            Some(v) => Restart::parse(v).map_err(|e| (RESTART.to_string(), e))?,
            None => Restart::No,
        };
        let after = a.get(AFTER).map(|v| list(v)).unwrap_or_default();
        let wait_for = a.get(WAIT_FOR).map(|v| list(v)).unwrap_or_default();
        if let Some(p) = wait_for.iter().find(|p| !p.starts_with('/')) {
            return Err((
                WAIT_FOR.to_string(),
                format!("`{WAIT_FOR}`: `{p}` is not an absolute path"),
            ));
        }
        Ok(ServicePolicy {
            restart,
            after,
            wait_for,
        })
    }
}

/// A cycle in the `after` graph of `services` (name, the services it
/// waits for), as the names along it (the first repeated at the end), or
/// `None`.
pub fn find_cycle(services: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; services.len()];
    fn visit(
        i: usize,
        services: &[(String, Vec<String>)],
        index: &BTreeMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        path.push(i);
        for dep in &services[i].1 {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if state[j] == 1 {
                let from = path.iter().position(|&k| k == j).unwrap_or(0);
                let mut names: Vec<String> = path[from..]
                    .iter()
                    .map(|&k| services[k].0.clone())
                    .collect();
                names.push(services[j].0.clone());
                return Some(names);
            }
            if state[j] == 0
                && let Some(c) = visit(j, services, index, state, path)
            {
                return Some(c);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    for i in 0..services.len() {
        if state[i] == 0
            && let Some(c) = visit(i, services, &index, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!(Restart::parse("no"), Ok(Restart::No));
        assert_eq!(Restart::parse("always"), Ok(Restart::Always));
        assert_eq!(
            Restart::parse("on-failure"),
            Ok(Restart::OnFailure { limit: 5 })
        );
        assert_eq!(
            Restart::parse("on-failure:2"),
            Ok(Restart::OnFailure { limit: 2 })
        );
        assert!(Restart::parse("on-failure:x").is_err());
        assert!(
            Restart::parse("sometimes")
                .unwrap_err()
                .contains("on-failure:N")
        );
        let p = Restart::OnFailure { limit: 2 };
        assert!(p.restarts(1, 0) && p.restarts(1, 1) && !p.restarts(1, 2));
        assert!(!p.restarts(0, 0));
        assert!(Restart::Always.restarts(0, 100));
        assert!(!Restart::No.restarts(1, 0));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(50), Duration::from_secs(30));
    }

    #[test]
    fn cycles_are_found() {
        let s = |n: &str, d: &[&str]| (n.to_string(), d.iter().map(|x| x.to_string()).collect());
        assert_eq!(
            find_cycle(&[s("a", &["b"]), s("b", &[]), s("c", &["a", "b"])]),
            None
        );
        assert_eq!(
            find_cycle(&[s("a", &["b"]), s("b", &["c"]), s("c", &["a"])]),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(
            find_cycle(&[s("x", &["x"])]),
            Some(vec!["x".into(), "x".into()])
        );
        assert_eq!(find_cycle(&[s("a", &["nosuch"])]), None);
    }

    #[test]
    fn annotations_give_the_policy() {
        let mut a = BTreeMap::new();
        a.insert(RESTART.to_string(), "on-failure:3".to_string());
        a.insert(AFTER.to_string(), "db, cache".to_string());
        a.insert(WAIT_FOR.to_string(), "/run/db.sock".to_string());
        let p = ServicePolicy::from_annotations(&a).unwrap();
        assert_eq!(p.restart, Restart::OnFailure { limit: 3 });
        assert_eq!(p.after, ["db", "cache"]);
        assert_eq!(p.wait_for, ["/run/db.sock"]);
        a.insert(WAIT_FOR.to_string(), "run/x".to_string());
        assert_eq!(ServicePolicy::from_annotations(&a).unwrap_err().0, WAIT_FOR);
    }
}
