//! Each provider against a local server that answers its documented paths
//! (and refuses requests without the headers the real service demands);
//! the client connects there instead of the link-local address, with the
//! real `Host` header. The same code runs in the VM (see the boot test
//! against moto's instance metadata service).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    peer_port: u16,
}

type Route = dyn Fn(&Seen) -> (u16, Vec<u8>) + Send + Sync;

/// A server on 127.0.0.1 answering with `route`; the requests it saw.
fn serve(route: Box<Route>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let peer_port = s.peer_addr().unwrap().port();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(": ") {
                    headers.insert(k.to_ascii_lowercase(), v.to_string());
                }
            }
            let req = Seen {
                method,
                path,
                headers,
                peer_port,
            };
            let (status, body) = route(&req);
            log.lock().unwrap().push(req);
            // Chunked for every other body, to read both framings.
            let chunked = body.len() % 2 == 1;
            let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n").into_bytes();
            if chunked {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for c in body.chunks(3) {
                    out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            } else {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            let _ = s.write_all(&out);
        }
    });
    (addr, seen)
}

/// A route from a table of path -> body (404 for the rest), answering only
/// requests that carry `need` (403 otherwise).
fn table(need: Option<(&'static str, &'static str)>, t: &[(&str, &str)]) -> Box<Route> {
    let t: HashMap<String, Vec<u8>> = t
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    Box::new(move |r: &Seen| {
        if let Some((k, v)) = need
            && r.headers.get(k).map(String::as_str) != Some(v)
        {
            return (403, b"forbidden".to_vec());
        }
        match t.get(&r.path) {
            Some(b) => (200, b.clone()),
            None => (404, b"not found".to_vec()),
        }
    })
}

fn client(addr: SocketAddr) -> Client {
    Client {
        connect_to: Some(addr),
        ..Client::default()
    }
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mode(dir: &Path, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777
}

#[test]
fn aws_uses_an_imdsv2_token_everywhere() {
    const TOKEN: &str = "tok-123";
    let t = table(
        None,
        &[
            ("/latest/meta-data/hostname", "ip-10-0-0-1.ec2.internal"),
            ("/latest/meta-data/public-ipv4", "198.51.100.7"),
            ("/latest/meta-data/local-ipv4", "10.0.0.1"),
            (
                "/latest/meta-data/placement/availability-zone",
                "eu-west-1b",
            ),
            ("/latest/meta-data/instance-type", "t3.micro"),
            ("/latest/meta-data/instance-id", "i-0abc"),
            ("/latest/meta-data/local-hostname", "ip-10-0-0-1"),
            (
                "/latest/meta-data/public-keys/0/openssh-key",
                "ssh-ed25519 AAAA k\n",
            ),
            ("/latest/user-data", "#!/bin/sh\necho hi\n"),
        ],
    );
    // IMDSv2 required: a token from PUT, 401 without it.
    let (addr, seen) = serve(Box::new(move |r: &Seen| {
        if r.path == "/latest/api/token" {
            return if r.method == "PUT"
                && r.headers
                    .contains_key("x-aws-ec2-metadata-token-ttl-seconds")
            {
                (200, TOKEN.as_bytes().to_vec())
            } else {
                (405, vec![])
            };
        }
        if r.headers
            .get("x-aws-ec2-metadata-token")
            .map(String::as_str)
            != Some(TOKEN)
        {
            return (401, vec![]);
        }
        t(r)
    }));
    let c = client(addr);
    assert!(Net::Aws.probe(&c));
    let d = tempfile::tempdir().unwrap();
    let ud = Net::Aws.extract(&c, d.path()).unwrap();
    assert_eq!(ud.unwrap(), b"#!/bin/sh\necho hi\n");
    let p = d.path();
    assert_eq!(read(p, "hostname"), "ip-10-0-0-1.ec2.internal");
    assert_eq!(read(p, "public_ipv4"), "198.51.100.7");
    assert_eq!(read(p, "local_ipv4"), "10.0.0.1");
    assert_eq!(read(p, "availability_zone"), "eu-west-1b");
    assert_eq!(read(p, "instance_type"), "t3.micro");
    assert_eq!(read(p, "instance_id"), "i-0abc");
    assert_eq!(read(p, "local_hostname"), "ip-10-0-0-1");
    assert_eq!(read(p, "ssh/authorized_keys"), "ssh-ed25519 AAAA k\n");
    assert_eq!(mode(p, "ssh/authorized_keys"), 0o600);
    assert_eq!(mode(p, "ssh"), 0o755);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|r| r.headers["host"] == "169.254.169.254"));
    assert!(seen.iter().any(|r| r.method == "PUT"));
}

#[test]
fn aws_falls_back_to_imdsv1_without_a_token_service() {
    let (addr, _) = serve(table(
        None,
        &[
            ("/latest/meta-data/hostname", "h1"),
            ("/latest/user-data", "ud"),
        ],
    ));
    let c = client(addr);
    assert!(Net::Aws.probe(&c));
    let d = tempfile::tempdir().unwrap();
    assert_eq!(Net::Aws.extract(&c, d.path()).unwrap().unwrap(), b"ud");
    assert_eq!(read(d.path(), "hostname"), "h1");
    // What the service has not is left out.
    assert!(!d.path().join("instance_id").exists());
    assert!(!d.path().join("ssh").exists());
}

#[test]
fn gcp_sends_metadata_flavor_and_gathers_project_keys() {
    let (addr, seen) = serve(table(
        Some(("metadata-flavor", "Google")),
        &[
            (
                "/computeMetadata/v1/instance/hostname",
                "vm1.c.proj.internal",
            ),
            (
                "/computeMetadata/v1/project/attributes/ssh-keys",
                "alice:ssh-rsa AAA alice\nbob:ssh-ed25519 BBB bob\nnot a key line",
            ),
            ("/computeMetadata/v1/instance/attributes/user-data", "{}"),
        ],
    ));
    let c = client(addr);
    assert!(Net::Gcp.probe(&c));
    let d = tempfile::tempdir().unwrap();
    assert_eq!(Net::Gcp.extract(&c, d.path()).unwrap().unwrap(), b"{}");
    assert_eq!(read(d.path(), "hostname"), "vm1.c.proj.internal");
    assert_eq!(
        read(d.path(), "ssh/authorized_keys"),
        "ssh-rsa AAA alice\nssh-ed25519 BBB bob\n"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|r| r.headers["host"] == "metadata.google.internal")
    );
}

#[test]
fn gcp_without_the_header_is_refused_by_the_test_server() {
    // The server above is strict: this client without the header fails.
    let (addr, _) = serve(table(
        Some(("metadata-flavor", "Google")),
        &[("/computeMetadata/v1/instance/hostname", "x")],
    ));
    let c = client(addr);
    assert!(
        c.get(
            "http://metadata.google.internal/computeMetadata/v1/instance/hostname",
            &[]
        )
        .is_err()
    );
}

#[test]
fn hetzner_keys_are_a_json_list() {
    let (addr, _) = serve(table(
        None,
        &[
            ("/latest/meta-data/hostname", "hz1"),
            ("/latest/meta-data/public-ipv4", "203.0.113.4"),
            ("/latest/meta-data/instance-id", "4711"),
            (
                "/latest/meta-data/public-keys",
                r#"["ssh-ed25519 A a","ssh-rsa B b"]"#,
            ),
            ("/latest/user-data", "u"),
        ],
    ));
    let c = client(addr);
    assert!(Net::Hetzner.probe(&c));
    let d = tempfile::tempdir().unwrap();
    assert_eq!(Net::Hetzner.extract(&c, d.path()).unwrap().unwrap(), b"u");
    assert_eq!(read(d.path(), "hostname"), "hz1");
    assert_eq!(read(d.path(), "public_ipv4"), "203.0.113.4");
    assert_eq!(read(d.path(), "instance_id"), "4711");
    assert_eq!(
        read(d.path(), "ssh/authorized_keys"),
        "ssh-ed25519 A a\nssh-rsa B b\n"
    );
}

#[test]
fn openstack_writes_the_aws_compatible_files() {
    let (addr, _) = serve(table(
        None,
        &[
            ("/latest/meta-data/hostname", "os1.novalocal"),
            ("/latest/meta-data/placement/availability-zone", "nova"),
            ("/latest/meta-data/instance-type", "m1.small"),
            ("/latest/meta-data/public-keys/0/openssh-key", "ssh-rsa K"),
        ],
    ));
    let c = client(addr);
    let d = tempfile::tempdir().unwrap();
    assert!(Net::Openstack.probe(&c));
    // No user data is not an error.
    assert!(Net::Openstack.extract(&c, d.path()).unwrap().is_none());
    assert_eq!(read(d.path(), "hostname"), "os1.novalocal");
    assert_eq!(read(d.path(), "availability_zone"), "nova");
    assert_eq!(read(d.path(), "instance_type"), "m1.small");
    assert_eq!(read(d.path(), "ssh/authorized_keys"), "ssh-rsa K");
}

#[test]
fn scaleway_reads_conf_and_user_data_from_a_privileged_port() {
    let conf = "ID=9f1c\nHOSTNAME=scw-1\nLOCATION_ZONE_ID=fr-par-1\nPRIVATE_IP=10.1.2.3\nPUBLIC_IP_ADDRESS=51.15.0.1\nSSH_PUBLIC_KEYS=2\nSSH_PUBLIC_KEYS_0_KEY='ssh-rsa A a'\nSSH_PUBLIC_KEYS_1_KEY='ssh-ed25519 B b'\n";
    let (addr, seen) = serve(Box::new(move |r: &Seen| match r.path.as_str() {
        "/conf" => (200, conf.as_bytes().to_vec()),
        "/user_data/cloud-init" if r.peer_port < 1024 => (200, b"scw-ud".to_vec()),
        "/user_data/cloud-init" => (403, vec![]),
        _ => (404, vec![]),
    }));
    let c = client(addr);
    assert!(Net::Scaleway.probe(&c));
    let d = tempfile::tempdir().unwrap();
    let ud = Net::Scaleway.extract(&c, d.path()).unwrap();
    let p = d.path();
    assert_eq!(read(p, "hostname"), "scw-1");
    assert_eq!(read(p, "instance_id"), "9f1c");
    assert_eq!(read(p, "instance_location"), "fr-par-1");
    assert_eq!(read(p, "public_ip"), "51.15.0.1");
    assert_eq!(read(p, "private_ip"), "10.1.2.3");
    assert_eq!(
        read(p, "ssh/authorized_keys"),
        "ssh-rsa A a\nssh-ed25519 B b\n"
    );
    // Binding a port below 1024 needs CAP_NET_BIND_SERVICE (root here).
    assert_eq!(
        ud.as_deref(),
        Some(&b"scw-ud"[..]),
        "{:?}",
        seen.lock().unwrap()
    );
}

#[test]
fn vultr_and_digitalocean_paths() {
    let (addr, _) = serve(table(
        None,
        &[
            ("/v1/", "{}"),
            ("/v1/hostname", "vultr-1"),
            ("/v1/interfaces/0/ipv4/address", "45.0.0.1"),
            ("/v1/interfaces/1/ipv4/address", "10.5.0.1"),
            ("/v1/interfaces/1/ipv4/netmask", "255.255.0.0"),
            ("/v1/region/regioncode", "AMS"),
            ("/v1/instanceid", "v-1"),
            ("/v1/public-keys", "ssh-rsa V"),
            ("/metadata/v1/", "id\nhostname\n"),
            ("/metadata/v1/hostname", "droplet-1"),
            ("/metadata/v1/interfaces/public/0/ipv4/address", "164.0.0.1"),
            ("/metadata/v1/region", "nyc3"),
            ("/metadata/v1/id", "123456"),
            ("/metadata/v1/public-keys", "ssh-rsa D"),
            ("/metadata/v1/user-data", "do-ud"),
        ],
    ));
    let c = client(addr);
    let d = tempfile::tempdir().unwrap();
    assert!(Net::Vultr.probe(&c));
    assert!(Net::Vultr.extract(&c, d.path()).unwrap().is_none());
    for (f, v) in [
        ("hostname", "vultr-1"),
        ("public_ipv4", "45.0.0.1"),
        ("private_ipv4", "10.5.0.1"),
        ("private_netmask", "255.255.0.0"),
        ("region_code", "AMS"),
        ("instance_id", "v-1"),
        ("ssh/authorized_keys", "ssh-rsa V"),
    ] {
        assert_eq!(read(d.path(), f), v, "{f}");
    }
    let d = tempfile::tempdir().unwrap();
    assert!(Net::DigitalOcean.probe(&c));
    assert_eq!(
        Net::DigitalOcean.extract(&c, d.path()).unwrap().unwrap(),
        b"do-ud"
    );
    for (f, v) in [
        ("hostname", "droplet-1"),
        ("public_ipv4", "164.0.0.1"),
        ("region", "nyc3"),
        ("id", "123456"),
        ("ssh/authorized_keys", "ssh-rsa D"),
    ] {
        assert_eq!(read(d.path(), f), v, "{f}");
    }
    assert!(!d.path().join("private_ipv4").exists());
}

#[test]
fn metaldata_paths_and_host() {
    let (addr, seen) = serve(table(
        None,
        &[
            ("/get/meta/hostname", "m1"),
            ("/get/meta/machine-type", "c3"),
            ("/get/meta/authorized-keys", "ssh-rsa M"),
            ("/get/user", "md-ud"),
        ],
    ));
    let c = client(addr);
    let d = tempfile::tempdir().unwrap();
    assert!(Net::Metaldata.probe(&c));
    assert_eq!(
        Net::Metaldata.extract(&c, d.path()).unwrap().unwrap(),
        b"md-ud"
    );
    assert_eq!(read(d.path(), "hostname"), "m1");
    assert_eq!(read(d.path(), "machine_type"), "c3");
    assert_eq!(read(d.path(), "ssh/authorized_keys"), "ssh-rsa M");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|r| r.headers["host"] == "metaldata")
    );
}

#[test]
fn azure_compute_document_and_base64_user_data() {
    let doc = r#"{"name":"vm-name","osProfile":{"computerName":"az-host"},"vmId":"0d5e-11","location":"westeurope","vmSize":"Standard_B1s","publicKeys":[{"keyData":"ssh-rsa Z z\r\n","path":"/home/u/.ssh/authorized_keys"}]}"#;
    let (addr, _) = serve(table(
        Some(("metadata", "true")),
        &[
            ("/metadata/instance/compute?api-version=2021-02-01", doc),
            (
                "/metadata/instance/compute/userData?api-version=2021-01-01&format=text",
                "aGVsbG8gYXp1cmU=",
            ),
        ],
    ));
    let c = client(addr);
    let d = tempfile::tempdir().unwrap();
    assert!(Net::Azure.probe(&c));
    assert_eq!(
        Net::Azure.extract(&c, d.path()).unwrap().unwrap(),
        b"hello azure"
    );
    assert_eq!(read(d.path(), "hostname"), "az-host");
    assert_eq!(read(d.path(), "instance_id"), "0d5e-11");
    assert_eq!(read(d.path(), "location"), "westeurope");
    assert_eq!(read(d.path(), "vm_size"), "Standard_B1s");
    assert_eq!(read(d.path(), "ssh/authorized_keys"), "ssh-rsa Z z\n");
}

#[test]
fn a_missing_service_fails_the_probe() {
    // A port nothing listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = client(addr);
    for n in [Net::Aws, Net::Hetzner, Net::Vultr, Net::Azure] {
        assert!(!n.probe(&c), "{n:?}");
    }
}

#[test]
fn oversized_and_silent_answers_are_errors() {
    let (addr, _) = serve(Box::new(|_: &Seen| (200, vec![b'x'; 2000])));
    let c = Client {
        limit: 1000,
        ..client(addr)
    };
    let e = c.get("http://169.254.169.254/big", &[]).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    // A server that accepts and never answers: the deadline ends it.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hold = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
        std::thread::sleep(Duration::from_secs(3));
    });
    let c = Client {
        deadline: Duration::from_secs(1),
        ..client(addr)
    };
    let e = c.get("http://169.254.169.254/", &[]).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        "{e:?}"
    );
    hold.join().unwrap();
}
