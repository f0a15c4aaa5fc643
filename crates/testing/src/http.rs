//! A minimal blocking HTTP client for looking at the test registry and the
//! token issuer directly, independently of the client under test.
//!
//! It never follows redirects and never turns an error status into an
//! `Err`: tests want to see the 401s and their `WWW-Authenticate` headers.

use std::time::Duration;

use base64::Engine as _;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 (lossy), for messages and JSON.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `GET url` with extra request headers. Panics on transport errors
/// (connection refused, timeout); use [`try_get`] to see them.
pub fn get(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `GET url`, returning transport errors as `Err` (for "is it down?").
pub fn try_get(url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, String> {
    try_get_with_timeout(url, headers, Duration::from_secs(30))
}

/// [`try_get`] with an explicit overall timeout.
pub fn try_get_with_timeout(
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let mut req = agent(timeout).get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The value of an `Authorization: Basic` header for `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The value of an `Authorization: Bearer` header for `token`.
pub fn bearer_auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// Parses the parameters of a `WWW-Authenticate` challenge such as
/// `Bearer realm="http://…",service="x",scope="repository:a:pull"` into
/// `(scheme, [(key, value)])`. Good enough for the registry's own
/// challenges (quoted values, no escaped quotes).
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.push((key.trim().to_string(), value.to_string()));
        rest = tail.trim_start_matches(',').trim();
    }
    (scheme.to_string(), params)
}
