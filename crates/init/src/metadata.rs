//! `metadata`: the onboot program that fetches the machine's configuration
//! into `/run/config`, as the reference's `metadata` package does.
//!
//! `metadata [PROVIDER...]`; without arguments, the reference's list: aws,
//! gcp, hetzner, openstack, scaleway, vultr, digitalocean, equinixmetal,
//! metaldata, vmware, cdrom. As in the reference, the network providers
//! are tried first (in the order given), then the CDs, then the files; the
//! first whose probe succeeds is used, and an unknown name is an error.
//!
//! - The network providers ([`net`]): each cloud's metadata service over
//!   HTTP ([`http`]: bounded in size and time), writing the host name, the
//!   SSH keys (`ssh/authorized_keys`) and the provider's other files.
//!   `azure` is ours (the reference has none) and is tried only if named.
//! - `equinixmetal` and `vmware` are named by the reference's default list
//!   but not implemented here: Equinix Metal's service is HTTPS-only (no TLS
//!   in the init binary, and the service ended in 2026), VMware's guestinfo
//!   needs the hypervisor's backdoor I/O port (the reference's build of it
//!   is excluded by its own build tag, so its binary skips it too). Naming
//!   one prints why, and it is skipped.
//! - `cdrom`: CDs labelled `cidata`/`CIDATA`, then every `/dev/sr*`; the
//!   file `user-data`, else `config`, is the user data. This is what
//!   `linuxkit run --data` attaches. The ISO 9660 directory is read
//!   directly from the device, so no `isofs` module or mount (and no
//!   `CAP_SYS_ADMIN`) is needed.
//! - `file=PATH`: a file.
//!
//! The result: `/run/config/provider` (e.g. `CDROM /dev/sr0`, `AWS`),
//! `/run/config/userdata` (if there is user data), and, when the user data
//! is a JSON object of `{name: {perm?, content | entries}}`, the files
//! (0644 unless `perm`) and directories (0755) it describes under
//! `/run/config`. A `hostname` file, from the provider or the user data,
//! also sets the host name.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub mod http;
pub mod net;

use net::Net;

/// Where the configuration goes.
pub const CONFIG_DIR: &str = "/run/config";

/// The ISO 9660 logical block size.
const BLOCK: u64 = 2048;

/// The volume identifier of an ISO 9660 image (`None` if it is not one).
pub fn iso_volume_id(dev: &mut (impl Read + Seek)) -> Option<String> {
    let pvd = read_at(dev, 16 * BLOCK, 2048).ok()?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    Some(String::from_utf8_lossy(&pvd[40..72]).trim_end().to_string())
}

fn read_at(dev: &mut (impl Read + Seek), off: u64, len: usize) -> io::Result<Vec<u8>> {
    dev.seek(SeekFrom::Start(off))?;
    let mut b = vec![0u8; len];
    dev.read_exact(&mut b)?;
    Ok(b)
}

/// Reads a file from the root directory of an ISO 9660 image, matching
/// its Rock Ridge name, or else its ISO name without `;1` and a trailing
/// dot, case-insensitively.
pub fn iso_read_root_file(dev: &mut (impl Read + Seek), name: &str) -> io::Result<Option<Vec<u8>>> {
    let pvd = read_at(dev, 16 * BLOCK, 2048)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an ISO 9660 image",
        ));
    }
    let root = &pvd[156..190];
    let lba = u32::from_le_bytes(root[2..6].try_into().unwrap()) as u64;
    let size = u32::from_le_bytes(root[10..14].try_into().unwrap()) as usize;
    let dir = read_at(dev, lba * BLOCK, size.min(1 << 20))?;
    let mut i = 0;
    while i < dir.len() {
        let len = dir[i] as usize;
        if len == 0 {
            // Records do not cross blocks: skip to the next one.
            i = (i / BLOCK as usize + 1) * BLOCK as usize;
            continue;
        }
        if i + len > dir.len() || len < 34 {
            break;
        }
        let rec = &dir[i..i + len];
        let flags = rec[25];
        let id_len = rec[32] as usize;
        let id = &rec[33..33 + id_len.min(len - 33)];
        let rr = rock_ridge_name(&rec[(33 + id_len + (1 - id_len % 2)).min(len)..]);
        let iso = String::from_utf8_lossy(id);
        let iso = iso.split(';').next().unwrap_or("").trim_end_matches('.');
        let matches = match &rr {
            Some(n) => n == name,
            None => iso.eq_ignore_ascii_case(name),
        };
        if matches && flags & 2 == 0 {
            let flba = u32::from_le_bytes(rec[2..6].try_into().unwrap()) as u64;
            let fsize = u32::from_le_bytes(rec[10..14].try_into().unwrap()) as usize;
            return read_at(dev, flba * BLOCK, fsize).map(Some);
        }
        i += len;
    }
    Ok(None)
}

/// The `NM` (alternate name) of a directory record's system use area.
fn rock_ridge_name(mut su: &[u8]) -> Option<String> {
    let mut name = String::new();
    let mut found = false;
    while su.len() >= 4 {
        let len = su[2] as usize;
        if len < 4 || len > su.len() {
            break;
        }
        if &su[..2] == b"NM" && len >= 5 {
            name.push_str(&String::from_utf8_lossy(&su[5..len]));
            found = true;
        }
        su = &su[len..];
    }
    found.then_some(name)
}

/// Candidate CD devices: labelled `cidata` first, then the other `sr*`.
fn cdroms() -> Vec<PathBuf> {
    let mut labelled = Vec::new();
    let mut others = Vec::new();
    let Ok(rd) = fs::read_dir("/sys/class/block") else {
        return others;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let dev = PathBuf::from("/dev").join(&n);
        let label = fs::File::open(&dev)
            .ok()
            .and_then(|mut f| iso_volume_id(&mut f));
        match label.as_deref() {
            Some("cidata" | "CIDATA") => labelled.push(dev),
            _ if n.starts_with("sr") => others.push(dev),
            _ => {}
        }
    }
    labelled.extend(others);
    labelled
}

/// The user data of the first CD that has some: (device, data).
fn probe_cdrom() -> Option<(PathBuf, Vec<u8>)> {
    for dev in cdroms() {
        let Ok(mut f) = fs::File::open(&dev) else {
            continue;
        };
        for name in ["user-data", "config"] {
            if let Ok(Some(data)) = iso_read_root_file(&mut f, name) {
                return Some((dev, data));
            }
        }
    }
    None
}

/// Writes `/run/config/...` from user data (see the module docs).
pub fn write_config(dir: &Path, provider: &str, userdata: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    net::put(dir, "provider", provider.as_bytes(), 0o644)?;
    net::put(dir, "userdata", userdata, 0o644)?;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(userdata) {
        write_entries(dir, &map)?;
    }
    Ok(())
}

fn write_entries(dir: &Path, map: &serde_json::Map<String, serde_json::Value>) -> io::Result<()> {
    for (name, v) in map {
        if name.contains('/') || name == ".." || name == "." || name.is_empty() {
            continue;
        }
        let path = dir.join(name);
        let perm = v
            .get("perm")
            .and_then(|p| p.as_str())
            .and_then(|p| u32::from_str_radix(p.trim_start_matches("0o"), 8).ok());
        if let Some(serde_json::Value::Object(entries)) = v.get("entries") {
            fs::create_dir_all(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(perm.unwrap_or(0o755)))?;
            write_entries(&path, entries)?;
        } else if let Some(content) = v.get("content").and_then(|c| c.as_str()) {
            fs::write(&path, content)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(perm.unwrap_or(0o644)))?;
        }
    }
    Ok(())
}

/// The reference's providers, in its order, when none is named.
const DEFAULT: &[&str] = &[
    "aws",
    "gcp",
    "hetzner",
    "openstack",
    "scaleway",
    "vultr",
    "digitalocean",
    "equinixmetal",
    "metaldata",
    "vmware",
    "cdrom",
];

/// Where user data may come from, by kind (tried in this order of kinds).
enum Source {
    Net(Net),
    Cdrom,
    File(String),
}

/// `metadata [PROVIDER...]`.
pub fn metadata_main(args: &[String]) -> i32 {
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "-v")
        .collect();
    let names: Vec<&str> = if args.is_empty() {
        DEFAULT.to_vec()
    } else {
        args
    };
    let mut nets = Vec::new();
    let mut cds = Vec::new();
    let mut files = Vec::new();
    for p in &names {
        if let Some(n) = Net::from_arg(p) {
            nets.push(Source::Net(n));
        } else if *p == "cdrom" {
            cds.push(Source::Cdrom);
        } else if let Some(path) = p.strip_prefix("file=") {
            files.push(Source::File(path.to_string()));
        } else if *p == "equinixmetal" {
            println!(
                "metadata: equinixmetal is not supported: its metadata service is HTTPS only, and this client speaks plain HTTP; skipped"
            );
        } else if *p == "vmware" {
            println!(
                "metadata: vmware is not supported: guestinfo needs VMware's backdoor I/O port; skipped"
            );
        } else {
            eprintln!(
                "metadata: unrecognised metadata provider: {p} (known: {}, azure, file=PATH)",
                DEFAULT.join(", ")
            );
            return 1;
        }
    }
    let dir = Path::new(CONFIG_DIR);
    if let Err(e) = fs::create_dir_all(dir) {
        eprintln!("metadata: could not create {CONFIG_DIR}: {e}");
        return 1;
    }
    let client = http::Client::default();
    let mut found = None;
    for s in nets.iter().chain(&cds).chain(&files) {
        found = match s {
            Source::Net(n) => n.probe(&client).then(|| {
                println!("metadata: {}: probe succeeded", n.name());
                let data = n.extract(&client, dir).unwrap_or_else(|e| {
                    println!("metadata: {}: {e}", n.name());
                    None
                });
                (n.name().to_string(), data)
            }),
            Source::Cdrom => {
                probe_cdrom().map(|(dev, d)| (format!("CDROM {}", dev.display()), Some(d)))
            }
            Source::File(path) => fs::read(path).ok().map(|d| (path.clone(), Some(d))),
        };
        if found.is_some() {
            break;
        }
    }
    let Some((provider, data)) = found else {
        println!("metadata: no provider had data ({})", names.join(", "));
        return 0;
    };
    let written = match &data {
        Some(d) => write_config(dir, &provider, d),
        None => net::put(dir, "provider", provider.as_bytes(), 0o644),
    };
    if let Err(e) = written {
        eprintln!("metadata: writing {CONFIG_DIR}: {e}");
        return 1;
    }
    if let Ok(h) = fs::read_to_string(dir.join("hostname")) {
        let h = h.trim();
        if !h.is_empty() {
            match nix::unistd::sethostname(h) {
                Ok(()) => println!("metadata: host name set to {h}"),
                Err(e) => println!("metadata: setting the host name to {h}: {e}"),
            }
        }
    }
    println!(
        "metadata: {provider}: {} bytes of user data in {CONFIG_DIR}",
        data.as_ref().map_or(0, Vec::len)
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_userdata_becomes_files() {
        let d = tempfile::tempdir().unwrap();
        let data = br#"{"hostname":{"content":"web1"},"ssh":{"entries":{"authorized_keys":{"perm":"0600","content":"ssh-ed25519 AAA"}}},"../evil":{"content":"x"}}"#;
        write_config(d.path(), "CDROM /dev/sr0", data).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("provider")).unwrap(),
            "CDROM /dev/sr0"
        );
        assert_eq!(fs::read(d.path().join("userdata")).unwrap(), data);
        assert_eq!(
            fs::read_to_string(d.path().join("hostname")).unwrap(),
            "web1"
        );
        let k = d.path().join("ssh/authorized_keys");
        assert_eq!(fs::read_to_string(&k).unwrap(), "ssh-ed25519 AAA");
        assert_eq!(
            fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!d.path().join("../evil").exists());
    }

    #[test]
    fn plain_userdata_is_kept_as_is() {
        let d = tempfile::tempdir().unwrap();
        write_config(d.path(), "File /x", b"hello").unwrap();
        assert_eq!(fs::read(d.path().join("userdata")).unwrap(), b"hello");
    }
}
