//! The network metadata providers: the reference's (aws, gcp, hetzner,
//! openstack, scaleway, vultr, digitalocean, metaldata) on the same URLs,
//! probed the same way and writing the same files under `/run/config`,
//! plus Azure's instance metadata service, which the reference has not.
//!
//! Each provider's probe is one request that must answer `200` (the host
//! name, or the service's index); its extraction writes the host name (which
//! must succeed), then the provider's other files, each optional (a failure
//! is printed and the rest goes on, as in the reference), and returns the
//! user data if the service has some. The generic writing of `provider`,
//! `userdata` and the JSON user data's files is the caller's.
//!
//! Differences from the reference, each for a reason (see docs/clouds.md):
//! - AWS asks for an IMDSv2 session token first and sends it with every
//!   request; without a token (an IMDSv1-only service) it asks as the
//!   reference does. The reference is IMDSv1 only, which instances that
//!   require IMDSv2 (the default for new AMIs) refuse.
//! - GCP falls back to 169.254.169.254 (Google's documented address of the
//!   same server) when `metadata.google.internal` does not resolve, with
//!   the same `Host` header.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::http::Client;

/// The AWS-compatible metadata URLs (AWS, Hetzner, OpenStack).
const META: &str = "http://169.254.169.254/latest/meta-data/";
const USER: &str = "http://169.254.169.254/latest/user-data";
const AWS_TOKEN: &str = "http://169.254.169.254/latest/api/token";
const GCP_HOST: &str = "metadata.google.internal";
const GCP_INSTANCE: &str = "/computeMetadata/v1/instance/";
const GCP_PROJECT: &str = "/computeMetadata/v1/project/";
const SCALEWAY: &str = "http://169.254.42.42/";
const VULTR: &str = "http://169.254.169.254/v1/";
const DIGITALOCEAN: &str = "http://169.254.169.254/metadata/v1/";
const METALDATA_META: &str = "http://metaldata/get/meta/";
const METALDATA_USER: &str = "http://metaldata/get/user";
const AZURE_COMPUTE: &str =
    "http://169.254.169.254/metadata/instance/compute?api-version=2021-02-01";
const AZURE_USERDATA: &str =
    "http://169.254.169.254/metadata/instance/compute/userData?api-version=2021-01-01&format=text";

/// A network provider, by the name the command line gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// AWS's instance metadata service (IMDSv2 tokens, IMDSv1 fallback).
    Aws,
    /// Google Compute Engine's metadata server.
    Gcp,
    /// Hetzner Cloud's AWS-compatible service.
    Hetzner,
    /// OpenStack's AWS-compatible service.
    Openstack,
    /// Scaleway's `conf` service at 169.254.42.42.
    Scaleway,
    /// Vultr's `/v1/` service.
    Vultr,
    /// DigitalOcean's `/metadata/v1/` service.
    DigitalOcean,
    /// The `metaldata` host's service.
    Metaldata,
    /// Azure's instance metadata service (ours: not in the reference).
    Azure,
}

impl Net {
    /// The provider of a command-line name.
    pub fn from_arg(s: &str) -> Option<Net> {
        Some(match s {
            "aws" => Net::Aws,
            "gcp" => Net::Gcp,
            "hetzner" => Net::Hetzner,
            "openstack" => Net::Openstack,
            "scaleway" => Net::Scaleway,
            "vultr" => Net::Vultr,
            "digitalocean" => Net::DigitalOcean,
            "metaldata" => Net::Metaldata,
            "azure" => Net::Azure,
            _ => return None,
        })
    }

    /// The name written to `/run/config/provider` (the reference's).
    pub fn name(self) -> &'static str {
        match self {
            Net::Aws => "AWS",
            Net::Gcp => "GCP",
            Net::Hetzner => "Hetzner",
            Net::Openstack => "openstack",
            Net::Scaleway => "Scaleway",
            Net::Vultr => "Vultr",
            Net::DigitalOcean => "DigitalOcean",
            Net::Metaldata => "metaldata",
            Net::Azure => "Azure",
        }
    }

    /// Whether this provider's service answers.
    pub fn probe(self, c: &Client) -> bool {
        let r = match self {
            Net::Aws => Aws::new(c).get("hostname").map(drop),
            Net::Gcp => gcp_get(c, GCP_INSTANCE, "hostname").map(drop),
            Net::Hetzner | Net::Openstack => c.get(&format!("{META}hostname"), &[]).map(drop),
            Net::Scaleway => c.get(&format!("{SCALEWAY}conf"), &[]).map(drop),
            Net::Vultr => c.get(VULTR, &[]).map(drop),
            Net::DigitalOcean => c.get(DIGITALOCEAN, &[]).map(drop),
            Net::Metaldata => c.get(&format!("{METALDATA_META}hostname"), &[]).map(drop),
            Net::Azure => c.get(AZURE_COMPUTE, AZURE_HEADERS).map(drop),
        };
        if let Err(e) = &r {
            println!("metadata: {}: probe failed: {e}", self.name());
        }
        r.is_ok()
    }

    /// Writes the provider's files into `dir`; returns its user data.
    pub fn extract(self, c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
        match self {
            Net::Aws => aws(c, dir),
            Net::Gcp => gcp(c, dir),
            Net::Hetzner => hetzner(c, dir),
            Net::Openstack => openstack(c, dir),
            Net::Scaleway => scaleway(c, dir),
            Net::Vultr => vultr(c, dir),
            Net::DigitalOcean => digitalocean(c, dir),
            Net::Metaldata => metaldata(c, dir),
            Net::Azure => azure(c, dir),
        }
    }
}

/// Writes `dir/name` (no link followed), replacing what was there.
pub fn put(dir: &Path, name: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let path = dir.join(name);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    f.write_all(data)
}

/// `dir/ssh/authorized_keys` (0600, in a 0755 `ssh`).
fn authorized_keys(dir: &Path, keys: &[u8]) -> io::Result<()> {
    let ssh = dir.join("ssh");
    match fs::DirBuilder::new().mode(0o755).create(&ssh) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    put(&ssh, "authorized_keys", keys, 0o600)
}

/// Prints a failure of an optional part, as the reference logs it.
fn optional(provider: Net, what: &str, r: io::Result<()>) {
    if let Err(e) = r {
        println!("metadata: {}: {what}: {e}", provider.name());
    }
}

/// `GET base+lookup` written to `dir/file` (0644), if the service has it.
fn meta_file(p: Net, c: &Client, base: &str, dir: &Path, lookup: &str, file: &str) {
    optional(
        p,
        lookup,
        c.get(&format!("{base}{lookup}"), &[])
            .and_then(|v| put(dir, file, &v, 0o644)),
    );
}

/// User data is optional: a failure is printed and there is none.
fn user_data(p: Net, r: io::Result<Vec<u8>>) -> Option<Vec<u8>> {
    r.map_err(|e| println!("metadata: {}: no user data: {e}", p.name()))
        .ok()
}

/// AWS's instance metadata service, with an IMDSv2 token when it gives one.
struct Aws<'a> {
    c: &'a Client,
    token: Option<String>,
}

impl<'a> Aws<'a> {
    fn new(c: &'a Client) -> Aws<'a> {
        let token = c
            .request(
                "PUT",
                AWS_TOKEN,
                &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                None,
            )
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| String::from_utf8(r.body).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && !t.contains(['\r', '\n']));
        Aws { c, token }
    }

    fn get_url(&self, url: &str) -> io::Result<Vec<u8>> {
        match &self.token {
            Some(t) => self.c.get(url, &[("X-aws-ec2-metadata-token", t)]),
            None => self.c.get(url, &[]),
        }
    }

    fn get(&self, lookup: &str) -> io::Result<Vec<u8>> {
        self.get_url(&format!("{META}{lookup}"))
    }
}

fn aws(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let a = Aws::new(c);
    put(dir, "hostname", &a.get("hostname")?, 0o644)?;
    for (lookup, file) in [
        ("public-ipv4", "public_ipv4"),
        ("local-ipv4", "local_ipv4"),
        ("placement/availability-zone", "availability_zone"),
        ("instance-type", "instance_type"),
        ("instance-id", "instance_id"),
        ("local-hostname", "local_hostname"),
    ] {
        optional(
            Net::Aws,
            lookup,
            a.get(lookup).and_then(|v| put(dir, file, &v, 0o644)),
        );
    }
    optional(
        Net::Aws,
        "ssh keys",
        a.get("public-keys/0/openssh-key")
            .and_then(|k| authorized_keys(dir, &k)),
    );
    Ok(user_data(Net::Aws, a.get_url(USER)))
}

/// The AWS-compatible services of Hetzner and OpenStack (the reference's
/// paths: Hetzner's keys are a JSON list, OpenStack's one key).
fn hetzner(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Hetzner;
    put(
        dir,
        "hostname",
        &c.get(&format!("{META}hostname"), &[])?,
        0o644,
    )?;
    meta_file(p, c, META, dir, "public-ipv4", "public_ipv4");
    meta_file(p, c, META, dir, "local-ipv4", "local_ipv4");
    meta_file(p, c, META, dir, "instance-id", "instance_id");
    optional(
        p,
        "ssh keys",
        c.get(&format!("{META}public-keys"), &[]).and_then(|j| {
            let keys: Vec<String> = serde_json::from_slice(&j)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
            authorized_keys(dir, text.as_bytes())
        }),
    );
    Ok(user_data(p, c.get(USER, &[])))
}

fn openstack(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Openstack;
    put(
        dir,
        "hostname",
        &c.get(&format!("{META}hostname"), &[])?,
        0o644,
    )?;
    for (lookup, file) in [
        ("public-ipv4", "public_ipv4"),
        ("local-ipv4", "local_ipv4"),
        ("placement/availability-zone", "availability_zone"),
        ("instance-type", "instance_type"),
        ("instance-id", "instance_id"),
        ("local-hostname", "local_hostname"),
    ] {
        meta_file(p, c, META, dir, lookup, file);
    }
    optional(
        p,
        "ssh keys",
        c.get(&format!("{META}public-keys/0/openssh-key"), &[])
            .and_then(|k| authorized_keys(dir, &k)),
    );
    Ok(user_data(p, c.get(USER, &[])))
}

const GCP_HEADERS: &[(&str, &str)] = &[("Metadata-Flavor", "Google")];

/// `GET` from GCP's metadata server: by name, else at its documented
/// address with the name as `Host`.
fn gcp_get(c: &Client, base: &str, lookup: &str) -> io::Result<Vec<u8>> {
    let by_name = c.get(&format!("http://{GCP_HOST}{base}{lookup}"), GCP_HEADERS);
    match by_name {
        Err(e) if c.connect_to.is_none() && e.kind() != io::ErrorKind::Other => {
            // Not resolved or not reachable by name: the address.
            let mut at = c.clone();
            at.connect_to = Some(([169, 254, 169, 254], 80).into());
            at.get(&format!("http://{GCP_HOST}{base}{lookup}"), GCP_HEADERS)
        }
        r => r,
    }
}

fn gcp(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Gcp;
    put(
        dir,
        "hostname",
        &gcp_get(c, GCP_INSTANCE, "hostname")?,
        0o644,
    )?;
    // Project-wide keys, `user:key` a line; the user names are dropped and
    // every key goes to root's file, as in the reference.
    optional(
        p,
        "ssh keys",
        gcp_get(c, GCP_PROJECT, "attributes/ssh-keys").and_then(|k| {
            let text: String = String::from_utf8_lossy(&k)
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(_, key)| format!("{key}\n"))
                .collect();
            authorized_keys(dir, text.as_bytes())
        }),
    );
    Ok(user_data(
        p,
        gcp_get(c, GCP_INSTANCE, "attributes/user-data"),
    ))
}

/// The value of `KEY=` in Scaleway's `conf` (the key upper-cased).
fn scaleway_value<'a>(conf: &'a str, key: &str) -> io::Result<&'a str> {
    let q = format!("{}=", key.to_uppercase());
    conf.lines()
        .find_map(|l| l.strip_prefix(&q))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {key} found")))
}

fn scaleway(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Scaleway;
    let conf = c.get(&format!("{SCALEWAY}conf"), &[])?;
    let conf = String::from_utf8_lossy(&conf);
    put(
        dir,
        "hostname",
        scaleway_value(&conf, "hostname")?.as_bytes(),
        0o644,
    )?;
    put(
        dir,
        "instance_id",
        scaleway_value(&conf, "id")?.as_bytes(),
        0o644,
    )?;
    put(
        dir,
        "instance_location",
        scaleway_value(&conf, "location_zone_id")?.as_bytes(),
        0o644,
    )?;
    match scaleway_value(&conf, "public_ip_address") {
        Ok(ip) => put(dir, "public_ip", ip.as_bytes(), 0o644)?,
        Err(e) => println!("metadata: Scaleway: public ip: {e}"),
    }
    put(
        dir,
        "private_ip",
        scaleway_value(&conf, "private_ip")?.as_bytes(),
        0o644,
    )?;
    optional(
        p,
        "ssh keys",
        (|| {
            let n: usize = scaleway_value(&conf, "ssh_public_keys")?
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}")))?;
            let mut text = String::new();
            for i in 0..n.min(1024) {
                let k = scaleway_value(&conf, &format!("ssh_public_keys_{i}_key"))?;
                text.push_str(k.trim_matches('\''));
                text.push('\n');
            }
            authorized_keys(dir, text.as_bytes())
        })(),
    );
    // User data is served only to privileged source ports.
    let ud = c
        .request(
            "GET",
            &format!("{SCALEWAY}user_data/cloud-init"),
            &[],
            Some(1024),
        )
        .and_then(|r| match r.status {
            200 => Ok(r.body),
            s => Err(io::Error::other(format!("status {s}"))),
        });
    Ok(user_data(p, ud))
}

fn vultr(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Vultr;
    put(
        dir,
        "hostname",
        &c.get(&format!("{VULTR}hostname"), &[])?,
        0o644,
    )?;
    for (lookup, file) in [
        ("interfaces/0/ipv4/address", "public_ipv4"),
        ("interfaces/1/ipv4/address", "private_ipv4"),
        ("interfaces/1/ipv4/netmask", "private_netmask"),
        ("region/regioncode", "region_code"),
        ("instanceid", "instance_id"),
    ] {
        meta_file(p, c, VULTR, dir, lookup, file);
    }
    optional(
        p,
        "ssh keys",
        c.get(&format!("{VULTR}public-keys"), &[])
            .and_then(|k| authorized_keys(dir, &k)),
    );
    // The reference reads no user data from Vultr.
    Ok(None)
}

fn digitalocean(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::DigitalOcean;
    put(
        dir,
        "hostname",
        &c.get(&format!("{DIGITALOCEAN}hostname"), &[])?,
        0o644,
    )?;
    for (lookup, file) in [
        ("interfaces/public/0/ipv4/address", "public_ipv4"),
        ("interfaces/private/0/ipv4/address", "private_ipv4"),
        ("region", "region"),
        ("id", "id"),
    ] {
        meta_file(p, c, DIGITALOCEAN, dir, lookup, file);
    }
    optional(
        p,
        "ssh keys",
        c.get(&format!("{DIGITALOCEAN}public-keys"), &[])
            .and_then(|k| authorized_keys(dir, &k)),
    );
    Ok(user_data(
        p,
        c.get(&format!("{DIGITALOCEAN}user-data"), &[]),
    ))
}

fn metaldata(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let p = Net::Metaldata;
    put(
        dir,
        "hostname",
        &c.get(&format!("{METALDATA_META}hostname"), &[])?,
        0o644,
    )?;
    for (lookup, file) in [
        ("public-ipv4", "public_ipv4"),
        ("private-ipv4", "private_ipv4"),
        ("failure-domain", "failure_domain"),
        ("machine-id", "machine_id"),
        ("machine-type", "machine_type"),
    ] {
        meta_file(p, c, METALDATA_META, dir, lookup, file);
    }
    optional(
        p,
        "ssh keys",
        c.get(&format!("{METALDATA_META}authorized-keys"), &[])
            .and_then(|k| authorized_keys(dir, &k)),
    );
    Ok(user_data(p, c.get(METALDATA_USER, &[])))
}

const AZURE_HEADERS: &[(&str, &str)] = &[("Metadata", "true")];

/// Azure's instance metadata service (not in the reference): the compute
/// document gives the host name (`osProfile.computerName`, else `name`),
/// `instance_id` (`vmId`), `location`, `vm_size` and the SSH keys; user
/// data comes base64-encoded from its own endpoint.
fn azure(c: &Client, dir: &Path) -> io::Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    let p = Net::Azure;
    let doc = c.get(AZURE_COMPUTE, AZURE_HEADERS)?;
    let doc: serde_json::Value = serde_json::from_slice(&doc)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("compute: {e}")))?;
    let s = |ptr: &str| {
        doc.pointer(ptr)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let host = s("/osProfile/computerName")
        .or_else(|| s("/name"))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "compute: no name"))?;
    put(dir, "hostname", host.as_bytes(), 0o644)?;
    for (ptr, file) in [
        ("/vmId", "instance_id"),
        ("/location", "location"),
        ("/vmSize", "vm_size"),
    ] {
        if let Some(v) = s(ptr) {
            optional(p, file, put(dir, file, v.as_bytes(), 0o644));
        }
    }
    if let Some(keys) = doc.pointer("/publicKeys").and_then(|k| k.as_array()) {
        let text: String = keys
            .iter()
            .filter_map(|k| k.get("keyData").and_then(|d| d.as_str()))
            .map(|k| format!("{}\n", k.trim_end()))
            .collect();
        if !text.is_empty() {
            optional(p, "ssh keys", authorized_keys(dir, text.as_bytes()));
        }
    }
    let ud = c.get(AZURE_USERDATA, AZURE_HEADERS).and_then(|b| {
        let b: Vec<u8> = b.into_iter().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("userData: {e}")))
    });
    Ok(user_data(p, ud).filter(|d| !d.is_empty()))
}

#[cfg(test)]
mod tests;
