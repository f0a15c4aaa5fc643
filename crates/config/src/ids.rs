//! uid/gid allocation: a `uid:` or `gid:` may name a container of the same
//! configuration, which owns a fresh id from 100 upwards. This lets a service
//! run as its own user, and `files:` be owned by that user.

use std::collections::BTreeMap;

use crate::model::{IdSpec, Moby};

/// First id handed to a named container.
pub const FIRST_ALLOCATED_ID: u32 = 100;

/// Container name → allocated id, in the reference's order: onboot, then
/// onshutdown, then services, each in YAML order. Every container takes the
/// next id; a name used in two sections ends up with the later one, as in
/// the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    ids: BTreeMap<String, u32>,
}

impl IdMap {
    /// The ids of `moby`'s containers, allocated in the reference's order.
    pub fn new(moby: &Moby) -> IdMap {
        let mut ids = BTreeMap::new();
        for (id, (_, _, c)) in (FIRST_ALLOCATED_ID..).zip(moby.containers()) {
            ids.insert(c.name.clone(), id);
        }
        IdMap { ids }
    }

    /// The numeric id for `spec`: numbers as given, `root` (and an empty name)
    /// as 0, container names as allocated; `None` for an unknown name.
    pub fn resolve(&self, spec: &IdSpec) -> Option<u32> {
        match spec {
            IdSpec::Id(i) => Some(*i),
            IdSpec::Name(n) if n == "root" || n.is_empty() => Some(0),
            IdSpec::Name(n) => self.ids.get(n).copied(),
        }
    }

    /// The id allocated to the container `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The names of the containers that have an id, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.ids.keys().map(String::as_str)
    }
}
