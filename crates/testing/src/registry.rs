//! [`TestRegistry`]: a real `docker-registry` (distribution 2.8) per test.
//!
//! Each registry gets a temporary directory holding its `config.yml`, its
//! filesystem storage (`storage/`), its log (`registry.log`, stdout and
//! stderr of every run, appended) and, depending on [`Auth`], an
//! `htpasswd` file or the token issuer's certificate (`token.crt`). It
//! listens on `127.0.0.1` on a port that was free when it started, and
//! [`TestRegistry::start`] returns only once `/v2/` answers.
//!
//! Why a real registry: the client has to cope with what registries really
//! do (401 challenges, content negotiation on `Accept`, the
//! `Docker-Content-Digest` header, chunked blob uploads, cross-repository
//! mounts), and a mock would only encode our own reading of the spec.
//!
//! The storage layout is distribution's: blobs live at
//! `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`
//! ([`TestRegistry::blob_data_path`]) and are served from there as they are,
//! so a test can corrupt one and check that the client notices.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::http::{self, HttpResponse};
use super::token::TokenIssuer;

/// The registry binary; override with `LINUXKIT_TEST_REGISTRY_BIN`.
const REGISTRY_BIN: &str = "docker-registry";
/// The `service` of a token-auth registry (the tokens' audience).
pub const TOKEN_SERVICE: &str = "linuxkit-test-registry";
/// The `issuer` a token-auth registry expects in tokens.
pub const TOKEN_ISSUER: &str = "linuxkit-test-token-issuer";
/// The realm of a basic-auth registry.
pub const BASIC_REALM: &str = "linuxkit-test-registry";
/// How long to wait for `/v2/` to answer after starting the process.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the registry authenticates clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous read and write.
    None,
    /// htpasswd (bcrypt) basic auth: every request needs these credentials.
    Basic { user: String, password: String },
    /// Token auth: the registry sends clients to a [`TokenIssuer`] that
    /// accepts these credentials (HTTP basic) and grants any scope asked.
    /// The issuer refuses anonymous token requests (401), so anonymous
    /// clients get nothing from this registry.
    Token { user: String, password: String },
}

impl Auth {
    pub fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn token(user: &str, password: &str) -> Auth {
        Auth::Token {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The credentials a client needs, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Basic { user, password } | Auth::Token { user, password } => {
                Some((user.as_str(), password.as_str()))
            }
        }
    }
}

/// A running `docker-registry`; killed on drop (its storage goes with the
/// temporary directory).
pub struct TestRegistry {
    dir: TempDir,
    port: u16,
    auth: Auth,
    child: Option<Child>,
    issuer: Option<TokenIssuer>,
}

impl TestRegistry {
    /// Starts a registry with `auth` on a free port and waits until it
    /// answers. Panics (with the registry's log) if it does not.
    pub fn start(auth: Auth) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("linuxkit-test-registry-")
            .tempdir()
            .expect("create registry temp dir");
        fs::create_dir_all(dir.path().join("storage")).unwrap();
        let issuer = match &auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                fs::write(dir.path().join("htpasswd"), htpasswd_line(user, password)).unwrap();
                None
            }
            Auth::Token { user, password } => {
                let issuer = TokenIssuer::start(user, password, TOKEN_SERVICE, TOKEN_ISSUER);
                fs::write(dir.path().join("token.crt"), issuer.cert_pem()).unwrap();
                Some(issuer)
            }
        };
        let mut registry = TestRegistry {
            dir,
            port: 0,
            auth,
            child: None,
            issuer,
        };
        // The port is free when probed but another process may take it
        // before the registry binds it: try a few ports.
        let mut last_error = String::new();
        for _ in 0..5 {
            registry.port = free_port();
            registry.write_config();
            match registry.spawn_and_wait() {
                Ok(()) => return registry,
                Err(e) => {
                    registry.kill();
                    if !registry.log().contains("address already in use") {
                        panic!("{e}\n--- registry log ---\n{}", registry.log());
                    }
                    last_error = e;
                }
            }
        }
        panic!(
            "registry never bound a free port: {last_error}\n--- registry log ---\n{}",
            registry.log()
        )
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:PORT/{repo_and_tag}`, a full image reference.
    pub fn image_ref(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr())
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The credentials clients need, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.credentials()
    }

    /// The token issuer of an [`Auth::Token`] registry.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.issuer.as_ref()
    }

    /// The registry's storage root (`rootdirectory`).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the bytes of blob `digest` (`sha256:<hex>`
    /// or bare hex). Overwrite it to make the registry serve bad content.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        assert!(hex.len() == 64, "not a sha256 digest: {digest}");
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Flips the bits of the last byte of blob `digest` on disk: same size,
    /// different content, so only a digest check can tell.
    pub fn corrupt_blob(&self, digest: &str) {
        let path = self.blob_data_path(digest);
        let mut data = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let last = data.last_mut().expect("blob is not empty");
        *last ^= 0xff;
        fs::write(&path, data).unwrap();
    }

    /// Everything the registry has logged so far (all runs).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the registry and waits for it; storage and port are kept for
    /// [`restart`](Self::restart). Requests meanwhile fail to connect.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the registry again (after [`stop`](Self::stop), or kills it
    /// first) on the same port, with the same storage and auth.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn_and_wait() {
            self.kill();
            panic!(
                "registry restart failed: {e}\n--- registry log ---\n{}",
                self.log()
            );
        }
    }

    /// The manifest (or index) digest the registry has for `repo:tag`, as
    /// its `Docker-Content-Digest`; `None` if it has none.
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let r = self.get(
            &format!("/v2/{repo}/manifests/{tag}"),
            &[(
                "Accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            )],
        );
        (r.status == 200).then(|| r.header("docker-content-digest").unwrap().to_string())
    }

    /// `GET path` as an authorised client would: with basic credentials, or
    /// after answering the registry's Bearer challenge with a token from the
    /// issuer. `headers` are added to every attempt (e.g. `Accept`).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let url = self.url(path);
        match &self.auth {
            Auth::None => http::get(&url, headers),
            Auth::Basic { user, password } => {
                let auth = http::basic_auth(user, password);
                http::get(&url, &with_header(headers, "Authorization", &auth))
            }
            Auth::Token { .. } => {
                let first = http::get(&url, headers);
                if first.status != 401 {
                    return first;
                }
                let challenge = first
                    .header("www-authenticate")
                    .unwrap_or_default()
                    .to_string();
                let (_, params) = http::parse_challenge(&challenge);
                let scopes: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v.as_str())
                    .collect();
                let token = self.token(&scopes);
                http::get(
                    &url,
                    &with_header(headers, "Authorization", &http::bearer_auth(&token)),
                )
            }
        }
    }

    /// Fetches a token for `scopes` from the issuer over HTTP with the
    /// registry's credentials (token auth only).
    pub fn token(&self, scopes: &[&str]) -> String {
        let issuer = self
            .issuer
            .as_ref()
            .expect("token() needs an Auth::Token registry");
        let (user, password) = self.auth.credentials().unwrap();
        let mut url = format!("{}?service={}", issuer.realm(), TOKEN_SERVICE);
        for scope in scopes {
            url.push_str("&scope=");
            url.push_str(&scope.replace(' ', "+"));
        }
        let resp = http::get(
            &url,
            &[("Authorization", &http::basic_auth(user, password))],
        );
        assert_eq!(resp.status, 200, "token request failed: {}", resp.text());
        resp.json()["token"]
            .as_str()
            .expect("token in response")
            .to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn write_config(&self) {
        let dir = self.dir.path();
        let auth = match &self.auth {
            Auth::None => String::new(),
            Auth::Basic { .. } => format!(
                "auth:\n  htpasswd:\n    realm: {BASIC_REALM}\n    path: {}\n",
                dir.join("htpasswd").display()
            ),
            Auth::Token { .. } => format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                self.issuer.as_ref().unwrap().realm(),
                dir.join("token.crt").display()
            ),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: linuxkit-test-registry-secret\n\
             {auth}",
            storage = self.storage_dir().display(),
            port = self.port,
        );
        fs::write(self.config_path(), config).unwrap();
    }

    /// Spawns the process with output appended to the log, then waits until
    /// `/v2/` answers 200 or 401.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let bin =
            std::env::var("LINUXKIT_TEST_REGISTRY_BIN").unwrap_or_else(|_| REGISTRY_BIN.into());
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "--- starting {bin} on port {} ---", self.port).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The registry lets REGISTRY_* variables override its config.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run `{bin}` ({e}); install Debian's docker-registry (scripts/setup)")
        });
        self.child = Some(child);
        let url = self.url("/v2/");
        wait_ready(self.child.as_mut().unwrap(), &url)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers 200 or 401, the process exits, or
/// [`READY_TIMEOUT`] passes.
fn wait_ready(child: &mut Child, url: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited before answering: {status}"));
        }
        match http::try_get_with_timeout(url, &[], Duration::from_secs(2)) {
            Ok(resp) if resp.status == 200 || resp.status == 401 => return Ok(()),
            Ok(resp) if start.elapsed() > READY_TIMEOUT => {
                return Err(format!(
                    "GET {url} answered {}: {}",
                    resp.status,
                    resp.text()
                ));
            }
            Err(e) if start.elapsed() > READY_TIMEOUT => {
                return Err(format!(
                    "GET {url} never answered within {READY_TIMEOUT:?}: {e}"
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// An htpasswd line with a bcrypt hash, as `htpasswd -Bbn` writes it (the
/// registry accepts only bcrypt). Cost 5 keeps tests fast.
pub fn htpasswd_line(user: &str, password: &str) -> String {
    let hash = bcrypt::hash_with_result(password, 5).expect("bcrypt hash");
    format!(
        "{user}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    )
}

fn with_header<'a>(
    headers: &[(&'a str, &'a str)],
    name: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut all = headers.to_vec();
    all.push((name, value));
    all
}
