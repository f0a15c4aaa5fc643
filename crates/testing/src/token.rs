//! A tiny token issuer for the registry's token auth (the Docker registry
//! token protocol, as served by Docker Hub, GHCR, Harbor…).
//!
//! With `auth: token:` the registry answers unauthenticated requests with
//! `401` and `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; the
//! client then asks the realm for a token, with HTTP basic credentials and
//! the scopes it needs as `scope` query parameters, and retries with
//! `Authorization: Bearer <token>`. The registry accepts a token only if it
//! is a JWT signed by a key whose certificate chains to its
//! `rootcertbundle`, with the configured issuer and the registry's service
//! as audience, currently valid, and granting the needed `access`.
//!
//! [`TokenIssuer`] is that realm: an HTTP server on `127.0.0.1` on a thread
//! of the test process. It generates a P-256 key and a self-signed
//! certificate for it ([`TokenIssuer::cert_pem`] goes into the
//! `rootcertbundle`), checks the basic credentials it was started with, and
//! answers `{"token", "access_token", "expires_in": 300}` with an ES256 JWT
//! carrying the certificate in its `x5c` header and granting exactly the
//! requested scopes. Every request is recorded so tests can check which
//! scopes the client asked for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;

/// How long issued tokens are valid, in seconds (the `expires_in` answered).
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// One request the issuer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The basic-auth user, if the request carried valid credentials.
    pub account: Option<String>,
    /// Whether credentials were present and correct (a token was issued).
    pub authorized: bool,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// Every requested scope (`scope` parameters, split on spaces).
    pub scopes: Vec<String>,
}

/// Signing material shared between the server thread and the handle.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der: Vec<u8>,
    issuer: String,
    service: String,
}

/// The running token issuer; stops (and joins its thread) on drop.
pub struct TokenIssuer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    signer: Arc<Signer>,
    cert_pem: String,
    realm: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenIssuer {
    /// Starts an issuer on a free port of 127.0.0.1 that accepts only
    /// `user:password` and issues tokens for `service` (the audience) in the
    /// name of `issuer`.
    pub fn start(user: &str, password: &str, service: &str, issuer: &str) -> TokenIssuer {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generate P-256 key");
        let mut params =
            rcgen::CertificateParams::new(vec!["linuxkit-test-token-issuer".to_string()])
                .expect("certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "linuxkit test token issuer");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        let cert = params
            .self_signed(&key_pair)
            .expect("self-sign certificate");
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .expect("load P-256 key into ring");
        let signer = Arc::new(Signer {
            key,
            rng,
            cert_der: cert.der().to_vec(),
            issuer: issuer.to_string(),
            service: service.to_string(),
        });

        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind token issuer"));
        let port = server
            .server_addr()
            .to_ip()
            .expect("token issuer has an IP address")
            .port();
        let realm = format!("http://127.0.0.1:{port}/token");
        let requests = Arc::new(Mutex::new(Vec::new()));

        let thread = {
            let server = Arc::clone(&server);
            let signer = Arc::clone(&signer);
            let requests = Arc::clone(&requests);
            let (user, password) = (user.to_string(), password.to_string());
            std::thread::Builder::new()
                .name("token-issuer".into())
                .spawn(move || {
                    // Ends when `unblock` is called on drop.
                    for request in server.incoming_requests() {
                        handle(request, &signer, &user, &password, &requests);
                    }
                })
                .expect("spawn token issuer thread")
        };

        TokenIssuer {
            server,
            thread: Some(thread),
            signer,
            cert_pem: cert.pem(),
            realm,
            requests,
        }
    }

    /// The realm URL (`http://127.0.0.1:PORT/token`).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The self-signed signing certificate, PEM, for the `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The `iss` claim of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.signer.issuer
    }

    /// The `aud` claim of issued tokens (the registry's `service`).
    pub fn service(&self) -> &str {
        &self.signer.service
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Mints a token directly, without HTTP, granting `scopes`
    /// (`repository:NAME:ACTIONS`), for subject `subject`.
    pub fn mint(&self, subject: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.signer.jwt(subject, &scopes)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Signer {
    /// An ES256 JWT for `subject` granting `scopes`.
    fn jwt(&self, subject: &str, scopes: &[String]) -> String {
        static JTI: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(&self.cert_der)],
        });
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME_SECS,
            // A little slack for clock differences, as real issuers do.
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::Relaxed)),
            "access": scopes.iter().filter_map(|s| access_entry(s)).collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("sign JWT");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// `type:name:action,action` → `{"type", "name", "actions"}`; the name may
/// itself contain colons (`repository(plugin)` types do not matter here).
fn access_entry(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(json!({ "type": kind, "name": name, "actions": actions }))
}

fn handle(
    request: tiny_http::Request,
    signer: &Signer,
    user: &str,
    password: &str,
    requests: &Mutex<Vec<TokenRequest>>,
) {
    let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
    if path != "/token" || *request.method() != tiny_http::Method::Get {
        let _ = request.respond(json_response(404, &json!({ "details": "not found" })));
        return;
    }
    let mut service = None;
    let mut scopes = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match percent_decode(k).as_str() {
            "service" => service = Some(v),
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
            _ => {}
        }
    }
    let credentials = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| {
            h.value
                .as_str()
                .strip_prefix("Basic ")
                .map(str::trim)
                .map(str::to_string)
        })
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let authorized = credentials.as_deref() == Some(&format!("{user}:{password}"));
    requests.lock().unwrap().push(TokenRequest {
        account: authorized.then(|| user.to_string()),
        authorized,
        service: service.clone(),
        scopes: scopes.clone(),
    });

    let response = if !authorized {
        json_response(401, &json!({ "details": "invalid or missing credentials" })).with_header(
            "WWW-Authenticate: Basic realm=\"linuxkit-test-token-issuer\""
                .parse::<tiny_http::Header>()
                .unwrap(),
        )
    } else if service.as_deref() != Some(signer.service.as_str()) {
        json_response(
            400,
            &json!({ "details": format!("unknown service {service:?}") }),
        )
    } else {
        let token = signer.jwt(user, &scopes);
        json_response(
            200,
            &json!({ "token": token, "access_token": token, "expires_in": TOKEN_LIFETIME_SECS }),
        )
    };
    let _ = request.respond(response);
}

fn json_response(
    status: u16,
    body: &serde_json::Value,
) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_data(serde_json::to_vec(body).unwrap())
        .with_status_code(status)
        .with_header(
            "Content-Type: application/json"
                .parse::<tiny_http::Header>()
                .unwrap(),
        )
}

/// Decodes `%XX` escapes and `+` (form encoding) in a query component.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Claims of a JWT, decoded without verification (for assertions).
pub fn jwt_claims(token: &str) -> HashMap<String, serde_json::Value> {
    let payload = token.split('.').nth(1).expect("JWT has three parts");
    let raw = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("JWT payload is base64url");
    serde_json::from_slice(&raw).expect("JWT payload is JSON")
}
