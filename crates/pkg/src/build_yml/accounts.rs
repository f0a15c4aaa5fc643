//! `users:` and `groups:`: lines of `/etc/passwd` and `/etc/group`,
//! checked as they are read.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::de::checked_map;

/// One `users:` entry: a line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id; default: the uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// The home directory; default [`DEFAULT_HOME`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// The login shell; default [`DEFAULT_SHELL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// The home directory of a `users:` entry that gives none.
pub const DEFAULT_HOME: &str = "/nonexistent";
/// The shell of a `users:` entry that gives none.
pub const DEFAULT_SHELL: &str = "/usr/sbin/nologin";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    name: String,
    uid: u32,
    gid: Option<u32>,
    home: Option<String>,
    shell: Option<String>,
}

impl User {
    /// The user's primary group id.
    pub fn gid(&self) -> u32 {
        self.gid.unwrap_or(self.uid)
    }

    /// The `/etc/passwd` line, without the newline.
    pub fn passwd_line(&self) -> String {
        format!(
            "{}:x:{}:{}::{}:{}",
            self.name,
            self.uid,
            self.gid(),
            self.home.as_deref().unwrap_or(DEFAULT_HOME),
            self.shell.as_deref().unwrap_or(DEFAULT_SHELL)
        )
    }
}

/// One `groups:` entry: a line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group name.
    pub name: String,
    /// The group id.
    pub gid: u32,
    /// Supplementary members (user names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    gid: u32,
    #[serde(default)]
    members: Vec<String>,
}

impl Group {
    /// The `/etc/group` line, without the newline.
    pub fn group_line(&self) -> String {
        format!("{}:x:{}:{}", self.name, self.gid, self.members.join(","))
    }
}

/// A name for `/etc/passwd` or `/etc/group`.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad {what} name {name:?}: use letters, digits, `_`, `-` and `.` (at most 32, not starting with `-`)"
        ))
    }
}

fn check_field(what: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(v) if v.contains([':', '\n']) => Err(format!(
            "`{what}` {v:?} must not contain `:` or a line break"
        )),
        _ => Ok(()),
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawUser| {
            check_name("user", &r.name)?;
            check_field("home", &r.home)?;
            check_field("shell", &r.shell)?;
            Ok(User {
                name: r.name,
                uid: r.uid,
                gid: r.gid,
                home: r.home,
                shell: r.shell,
            })
        })
    }
}

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map(d, |r: RawGroup| {
            check_name("group", &r.name)?;
            for m in &r.members {
                check_name("member", m)?;
            }
            Ok(Group {
                name: r.name,
                gid: r.gid,
                members: r.members,
            })
        })
    }
}
