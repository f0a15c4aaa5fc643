//! Bounded HTTP for the distribution API: the requests a pull and a push
//! make (manifests, blobs, uploads, the bearer-token dance) and the digest
//! look-up of `cache rm/clean --published-only`.
//!
//! A registry is a remote party we do not control, so nothing it sends may
//! cost more than a bound we chose: every request has a connect deadline
//! and an overall deadline ([`Limits`]), manifests, indexes, token and error
//! responses are read into memory only up to a size limit, and a blob is
//! read only up to the size its descriptor declares (see
//! `Registry::download`). A general-purpose client (oci-client) reads
//! whole bodies into memory, even of the short answers a push gets, and
//! swallows a token service's errors, which is why neither pulls nor pushes
//! go through it.
//!
//! Authentication answers the registry's challenge when a request gets a
//! 401: HTTP basic with the Docker config's credentials, or a token from the
//! realm a `Bearer` challenge names. The answer is kept per repository and
//! renewed on the next 401 (tokens expire during long pulls).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Method, StatusCode};
use oci_client::secrets::RegistryAuth;

/// The distribution specification's limit on manifests and indexes that
/// registries must accept (and may refuse above).
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Token responses and error bodies are small JSON documents.
const MAX_SMALL_BODY: u64 = 64 << 10;
/// The largest `Retry-After` a rate-limited request waits for; a registry
/// asking for more fails the pull at once with its answer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The bounds every request runs under. See docs/cache.md for their
/// environment variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// To establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// For a whole request: the answer's head and its body. A blob gets
    /// longer, by its size at [`Limits::min_rate`].
    pub timeout: Duration,
    /// The slowest average a blob download may have before its deadline
    /// (bytes per second).
    pub min_rate: u64,
    /// The largest blob a descriptor may declare.
    pub max_blob_size: u64,
}

/// `LINUXKIT_REGISTRY_CONNECT_TIMEOUT` (seconds).
pub const CONNECT_TIMEOUT_ENV: &str = "LINUXKIT_REGISTRY_CONNECT_TIMEOUT";
/// `LINUXKIT_REGISTRY_TIMEOUT` (seconds).
pub const TIMEOUT_ENV: &str = "LINUXKIT_REGISTRY_TIMEOUT";
/// `LINUXKIT_MAX_BLOB_SIZE` (bytes; `K`, `M`, `G` suffixes).
pub const MAX_BLOB_SIZE_ENV: &str = "LINUXKIT_MAX_BLOB_SIZE";

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(15),
            timeout: Duration::from_secs(120),
            min_rate: 64 << 10,
            max_blob_size: 16 << 30,
        }
    }
}

impl Limits {
    /// The defaults with the environment's overrides; an unreadable value
    /// is an error naming the variable.
    pub fn from_env() -> Result<Limits, String> {
        let mut l = Limits::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let seconds = |name: &str, v: String| -> Result<Duration, String> {
            match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
                _ => Err(format!("{name}={v}: expected a positive number of seconds")),
            }
        };
        if let Some(v) = var(CONNECT_TIMEOUT_ENV) {
            l.connect_timeout = seconds(CONNECT_TIMEOUT_ENV, v)?;
        }
        if let Some(v) = var(TIMEOUT_ENV) {
            l.timeout = seconds(TIMEOUT_ENV, v)?;
        }
        if let Some(v) = var(MAX_BLOB_SIZE_ENV) {
            l.max_blob_size = parse_size(&v).ok_or_else(|| {
                format!(
                    "{MAX_BLOB_SIZE_ENV}={v}: expected a size in bytes (K, M, G suffixes allowed)"
                )
            })?;
        }
        Ok(l)
    }

    /// The deadline of a download of `size` bytes starting now.
    pub fn blob_deadline(&self, size: u64) -> Instant {
        Instant::now() + self.timeout + Duration::from_secs(size / self.min_rate.max(1))
    }

    /// The deadline of a small request (a manifest, a `HEAD`) starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }
}

fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'K' | 'k') => (&v[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&v[..i], 1 << 20),
        (i, 'G' | 'g') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|n| *n > 0)
}

/// Why a request failed, and whether another attempt may do better.
#[derive(Debug)]
pub enum Failure {
    /// Server errors, rate limiting, broken connections; `retry_after` is
    /// what the server asked for.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Everything else: not found, refused credentials, a deadline or a
    /// size limit, a response that is not what the protocol says.
    Fatal(String),
    /// An error of ours (the cache's: a digest mismatch, a full disk),
    /// passed on as it is.
    Local(Box<crate::error::Error>),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient { reason, .. } | Failure::Fatal(reason) => f.write_str(reason),
            Failure::Local(e) => e.fmt(f),
        }
    }
}

impl Failure {
    fn transient(reason: String) -> Failure {
        Failure::Transient {
            reason,
            retry_after: None,
        }
    }
}

/// What a request needs of a repository, which is what a token is asked
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading (`pull`).
    Pull,
    /// Writing (`pull,push`).
    Push,
}

impl Access {
    fn scope(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// A request's body and its `Content-Type`.
pub struct Upload {
    pub data: bytes::Bytes,
    pub content_type: String,
}

/// How requests to a repository authenticate, once a challenge was answered.
#[derive(Clone)]
enum Answer {
    Basic(String, String),
    Bearer(String),
}

/// One registry host (a mirror's, if the image is mirrored).
pub struct Transport {
    http: reqwest::Client,
    /// `http://HOST` or `https://HOST`.
    base: String,
    host: String,
    credentials: RegistryAuth,
    answers: Mutex<HashMap<String, Answer>>,
    pub limits: Limits,
}

impl Transport {
    pub fn new(
        host: &str,
        plain_http: bool,
        credentials: RegistryAuth,
        limits: Limits,
        ca_certificates: &[(String, Vec<u8>)],
    ) -> Result<Transport, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.timeout)
            .user_agent(concat!("linuxkit-rs/", env!("CARGO_PKG_VERSION")));
        // `--cert-file`: trusted besides the system's CAs.
        for (name, pem) in ca_certificates {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("--cert-file {name}: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot set up an HTTP client: {e}"))?;
        Ok(Transport {
            http,
            base: format!("{}://{host}", if plain_http { "http" } else { "https" }),
            host: host.to_string(),
            credentials,
            answers: Mutex::new(HashMap::new()),
            limits,
        })
    }

    /// `host[:port]` requests go to.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn manifest_url(&self, repository: &str, reference: &str) -> String {
        format!("{}/v2/{repository}/manifests/{reference}", self.base)
    }

    pub fn blob_url(&self, repository: &str, digest: &str) -> String {
        format!("{}/v2/{repository}/blobs/{digest}", self.base)
    }

    /// Sends `method url` for `repository`, answering one authentication
    /// challenge, and checks the status: only a 2xx answer is returned.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        accept: Option<&str>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Failure> {
        let resp = self
            .send(
                method,
                url,
                repository,
                Access::Pull,
                accept,
                None,
                deadline,
            )
            .await?;
        self.check(resp, url, deadline).await
    }

    /// Sends `method url` for `repository` with `access` (and `upload` as
    /// the body, resent if a challenge is answered), answering one
    /// authentication challenge; the answer's status is not checked (see
    /// [`Transport::check`]) and its body not read.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        repository: &str,
        access: Access,
        accept: Option<&str>,
        upload: Option<&Upload>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Failure> {
        // A pull token does not allow a push: answers are kept per access.
        let key = format!("{repository} {}", access.scope());
        let mut answered = false;
        loop {
            let mut req = self.http.request(method.clone(), url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(u) = upload {
                req = req
                    .header(CONTENT_TYPE, &u.content_type)
                    .body(u.data.clone());
            }
            let answer = self
                .answers
                .lock()
                .expect("answers lock")
                .get(&key)
                .cloned()
                .or_else(|| match &self.credentials {
                    // An identity token is sent as it is.
                    RegistryAuth::Bearer(t) => Some(Answer::Bearer(t.clone())),
                    _ => None,
                });
            req = match answer {
                Some(Answer::Basic(u, p)) => req.basic_auth(u, Some(p)),
                Some(Answer::Bearer(t)) => req.bearer_auth(t),
                None => req,
            };
            let what = || format!("{method} {url}");
            let resp = self.within(deadline, req.send(), &what).await?;
            if resp.status() == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if let Some(a) = self
                    .answer(&challenge, repository, access, deadline)
                    .await?
                {
                    self.answers
                        .lock()
                        .expect("answers lock")
                        .insert(key.clone(), a);
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Turns a non-2xx answer into a [`Failure`] that says what happened
    /// (reading at most 64 KiB of its body before `deadline`).
    pub async fn check(
        &self,
        resp: reqwest::Response,
        url: &str,
        deadline: Instant,
    ) -> Result<reqwest::Response, Failure> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // The body only explains; a failure to read it changes nothing.
        let body = self
            .read(resp, MAX_SMALL_BODY, deadline, "the error response")
            .await
            .unwrap_or_default();
        let said = registry_message(&body);
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        let host = &self.host;
        Err(match status {
            StatusCode::UNAUTHORIZED => Failure::Fatal(match &self.credentials {
                RegistryAuth::Anonymous => format!(
                    "authentication required: the registry refused anonymous access to {url}{said}; log in with `docker login {host}` or add credentials to the Docker config"
                ),
                _ => format!(
                    "authentication failed: the registry refused the credentials of the Docker config for {url}{said}; check them with `docker login {host}`"
                ),
            }),
            StatusCode::FORBIDDEN => {
                Failure::Fatal(format!("access denied to {url} (HTTP 403){said}"))
            }
            StatusCode::NOT_FOUND => Failure::Fatal(format!("not found: {url}{said}")),
            StatusCode::TOO_MANY_REQUESTS => Failure::Transient {
                reason: format!(
                    "rate limited by {host} (HTTP 429 for {url}{said}{})",
                    retry_after.map_or(String::new(), |d| format!(
                        "; it asks to retry after {} s",
                        d.as_secs()
                    ))
                ),
                retry_after,
            },
            s if s.is_server_error() => Failure::Transient {
                reason: format!(
                    "server error from {host}: HTTP {} for {url}{said}",
                    s.as_u16()
                ),
                retry_after,
            },
            s => Failure::Fatal(format!("unexpected HTTP {} for {url}{said}", s.as_u16())),
        })
    }

    /// What a 401's `WWW-Authenticate` asks for, answered with our
    /// credentials; `None` if we have nothing to answer with.
    async fn answer(
        &self,
        challenge: &str,
        repository: &str,
        access: Access,
        deadline: Instant,
    ) -> Result<Option<Answer>, Failure> {
        let Ok(challenges) = http_auth::parse_challenges(challenge) else {
            return Ok(None);
        };
        let param = |c: &http_auth::ChallengeRef, name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        {
            let Some(realm) = param(bearer, "realm") else {
                return Err(Failure::Fatal(format!(
                    "{} asks for a bearer token without naming where to get one (no realm in `WWW-Authenticate: {challenge}`)",
                    self.host
                )));
            };
            let mut query = vec![(
                "scope".to_string(),
                format!("repository:{repository}:{}", access.scope()),
            )];
            if let Some(service) = param(bearer, "service") {
                query.push(("service".into(), service));
            }
            let url = reqwest::Url::parse_with_params(&realm, &query).map_err(|e| {
                Failure::Fatal(format!(
                    "{} names a token service that is not a URL (`{realm}`: {e})",
                    self.host
                ))
            })?;
            let mut req = self.http.get(url.clone());
            if let RegistryAuth::Basic(u, p) = &self.credentials {
                req = req.basic_auth(u, Some(p));
            }
            let what = || format!("the token request to {realm}");
            let resp = self.within(deadline, req.send(), &what).await?;
            let status = resp.status();
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = self
                .read(resp, MAX_SMALL_BODY, deadline, "the token response")
                .await
                .map_err(|f| match f {
                    Failure::Fatal(r) => Failure::Fatal(format!("token service {realm}: {r}")),
                    t => t,
                })?;
            if !status.is_success() {
                let said = registry_message(&body);
                let reason = format!(
                    "the token service {realm} answered HTTP {}{}",
                    status.as_u16(),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(": {said}")
                    }
                );
                return Err(match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        Failure::Fatal(match &self.credentials {
                            RegistryAuth::Basic(..) => format!(
                                "authentication failed: {reason}; check the credentials with `docker login {}`",
                                self.host
                            ),
                            _ => format!(
                                "authentication required: {reason}; log in with `docker login {}`",
                                self.host
                            ),
                        })
                    }
                    s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                        Failure::transient(reason)
                    }
                    _ => Failure::Fatal(reason),
                });
            }
            #[derive(serde::Deserialize)]
            struct Token {
                token: Option<String>,
                access_token: Option<String>,
            }
            let bad = |why: String| {
                let excerpt: String = String::from_utf8_lossy(&body[..body.len().min(80)])
                    .chars()
                    .map(|c| if c.is_control() { '.' } else { c })
                    .collect();
                Failure::Fatal(format!(
                    "bad token response from {realm} ({why}; content type `{content_type}`, it starts with `{excerpt}`); the registry's token service is broken or is not one"
                ))
            };
            let token: Token =
                serde_json::from_slice(&body).map_err(|e| bad(format!("not a JSON token: {e}")))?;
            let token = token
                .token
                .or(token.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| bad("no `token` or `access_token` in it".into()))?;
            if http::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                return Err(bad("the token has characters a header cannot carry".into()));
            }
            return Ok(Some(Answer::Bearer(token)));
        }
        if challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
            && let RegistryAuth::Basic(u, p) = &self.credentials
        {
            return Ok(Some(Answer::Basic(u.clone(), p.clone())));
        }
        Ok(None)
    }

    /// Reads a whole body of at most `limit` bytes before `deadline`.
    pub async fn read(
        &self,
        mut resp: reqwest::Response,
        limit: u64,
        deadline: Instant,
        what: &str,
    ) -> Result<Vec<u8>, Failure> {
        let url = resp.url().to_string();
        if let Some(len) = resp.content_length()
            && len > limit
        {
            return Err(Failure::Fatal(format!(
                "{what} from {url} is {len} bytes, more than the {limit} we accept"
            )));
        }
        let mut body = Vec::new();
        let reading = || format!("reading {what} from {url}");
        while let Some(chunk) = self.within(deadline, resp.chunk(), &reading).await? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(Failure::Fatal(format!(
                    "{what} from {url} is larger than the {limit} bytes we accept; stopped reading"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Runs `fut` (a step of a request) to `deadline`; a missed deadline or
    /// a failed connection says what and where.
    pub async fn within<T>(
        &self,
        deadline: Instant,
        fut: impl Future<Output = reqwest::Result<T>>,
        what: &dyn Fn() -> String,
    ) -> Result<T, Failure> {
        match tokio::time::timeout_at(deadline.into(), fut).await {
            Err(_) => Err(Failure::Fatal(format!(
                "timed out: {} did not complete within {} s (the deadline of a request; {TIMEOUT_ENV} sets it)",
                what(),
                self.limits.timeout.as_secs_f64()
            ))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_connect() && e.is_timeout() => Err(Failure::Fatal(format!(
                "timed out: could not connect to {} within {} s for {} ({CONNECT_TIMEOUT_ENV} sets it)",
                self.host,
                self.limits.connect_timeout.as_secs_f64(),
                what()
            ))),
            // The read timeout and the deadline can fire together: a drip
            // that outlasts the deadline is a missed deadline.
            Ok(Err(e))
                if e.is_timeout() && Instant::now() + Duration::from_millis(100) >= deadline =>
            {
                Err(Failure::Fatal(format!(
                    "timed out: {} did not complete within {} s (the deadline of a request; {TIMEOUT_ENV} sets it)",
                    what(),
                    self.limits.timeout.as_secs_f64()
                )))
            }
            Ok(Err(e)) if e.is_timeout() => Err(Failure::Fatal(format!(
                "timed out: {} received nothing for {} s ({TIMEOUT_ENV} sets it)",
                what(),
                self.limits.timeout.as_secs_f64()
            ))),
            Ok(Err(e)) => Err(Failure::transient(format!(
                "{}: {}",
                what(),
                with_sources(&e)
            ))),
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `errors` of a distribution API error body (`CODE: message`, joined),
/// else the body's first line if it is short text; empty otherwise.
fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    };
    if let Ok(e) = serde_json::from_slice::<Envelope>(body) {
        return e
            .errors
            .iter()
            .map(|e| {
                clean(&format!("{} {}", e.code, e.message))
                    .trim()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    match std::str::from_utf8(body) {
        Ok(s) => clean(s.lines().next().unwrap_or("").trim()),
        Err(_) => String::new(),
    }
}

/// `e` followed by its chain of causes: transport errors say what went wrong
/// ("connection refused", "end of file before message length reached") only
/// in their sources.
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_sizes() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn error_bodies_say_what_the_registry_said() {
        assert_eq!(
            registry_message(br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#),
            "TOOMANYREQUESTS slow down"
        );
        assert_eq!(registry_message(b"plain text\nmore"), "plain text");
        assert_eq!(registry_message(&[0xff, 0xfe]), "");
    }
}
