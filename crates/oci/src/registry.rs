//! Pulling images from registries into the cache, and pushing them back.
//!
//! Pulls speak the distribution protocol through [`crate::transport`],
//! which bounds every request in time and every response in size (a
//! registry is untrusted input: docs/security.md), and so do pushes. This
//! module adds what
//! LinuxKit needs around them: credentials from `~/.docker/config.json`
//! (including `credsStore`/`credHelpers`), mirrors, plain HTTP only for
//! loopback registries (or ones named insecure), platform selection,
//! parallel downloads with retries (honouring a rate limit's `Retry-After`)
//! and progress bars, and verification of every byte before the cache sees
//! it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use http::Method;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use linuxkit_base::Arch;
use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use sha2::{Digest as _, Sha256};

use crate::cache::{Cache, CachedImage, ImageTree, layout_manifests, parse_json, select_platform};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::ImageRef;
use crate::transport::{
    Access, Failure, Limits, MAX_MANIFEST_SIZE, MAX_RETRY_AFTER, Transport, Upload,
};
use crate::types::{Descriptor, Index, Manifest, Platform, Probe, media_type};

/// A pull-through mirror: images of `registry` are fetched from `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry whose images it serves (`host[:port]`).
    pub registry: String,
    /// `host[:port]` of the mirror.
    pub host: String,
    /// Whether the mirror's URL was `http://`.
    pub plain_http: bool,
}

impl Mirror {
    /// `--mirror` values: `URL` (a mirror of docker.io) or `REGISTRY=URL`,
    /// where URL starts with `http://` or `https://`.
    pub fn parse(s: &str) -> Result<Mirror> {
        let (registry, url) = match s.split_once('=') {
            Some((r, u)) => (r.to_string(), u),
            None => ("docker.io".to_string(), s),
        };
        let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (false, r)
        } else {
            return Err(Error::Other(format!(
                "invalid mirror `{s}`: the URL must start with http:// or https://"
            )));
        };
        let host = rest.trim_end_matches('/').to_string();
        if host.is_empty() || host.contains('/') {
            return Err(Error::Other(format!(
                "invalid mirror `{s}`: expected [REGISTRY=]http(s)://HOST[:PORT]"
            )));
        }
        Ok(Mirror {
            registry,
            host,
            plain_http,
        })
    }
}

/// How a [`Registry`] client pulls and pushes.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The platform a multi-platform image is resolved for.
    pub platform: Platform,
    /// Pull-through mirrors (`--mirror`), tried before the registries
    /// they mirror.
    pub mirrors: Vec<Mirror>,
    /// Registries (`host[:port]`) that may be reached over plain HTTP besides
    /// loopback ones.
    pub insecure: Vec<String>,
    /// Show progress bars (on a terminal).
    pub progress: bool,
    /// Blobs downloaded at once.
    pub concurrency: usize,
    /// Attempts per request on server errors and broken connections.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// The Docker config file to read credentials from (see
    /// [`default_docker_config`]); `None` for anonymous access only.
    pub docker_config: Option<PathBuf>,
    /// CA certificates to trust besides the system's (`--cert-file`): the
    /// file's name (for errors) and its PEM text, one or more certificates.
    pub ca_certificates: Vec<(String, Vec<u8>)>,
    /// Deadlines and size limits of every request. The default reads the
    /// environment ([`Limits::from_env`]); an unreadable value is warned
    /// about and the default kept (the command line refuses it instead).
    pub limits: Limits,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            platform: Platform::linux(Arch::host()),
            mirrors: Vec::new(),
            insecure: Vec::new(),
            progress: true,
            concurrency: 4,
            attempts: 4,
            backoff: Duration::from_millis(300),
            docker_config: default_docker_config(),
            ca_certificates: Vec::new(),
            limits: Limits::from_env().unwrap_or_else(|e| {
                tracing::warn!("ignoring {e}");
                Limits::default()
            }),
        }
    }
}

/// A registry client. Cheap to keep around: it reuses connections and tokens
/// per registry.
pub struct Registry {
    opts: RegistryOptions,
    rt: tokio::runtime::Runtime,
    transports: Mutex<HashMap<String, Arc<Transport>>>,
    progress: MultiProgress,
}

impl Registry {
    /// A client with `opts`; fails when a `--cert-file` cannot be read or
    /// holds no certificate.
    pub fn new(opts: RegistryOptions) -> Result<Registry> {
        // Checked here, before any request, so that a bad file is named
        // at once (each registry's transport is made on first use).
        for (name, pem) in &opts.ca_certificates {
            let bad = |why: String| Error::Other(format!("--cert-file {name}: {why}"));
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(bad("no PEM certificate in it".into()));
            }
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| bad(e.to_string()))?;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Other(format!("cannot start the download runtime: {e}")))?;
        let progress = MultiProgress::with_draw_target(if opts.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Ok(Registry {
            opts,
            rt,
            transports: Mutex::new(HashMap::new()),
            progress,
        })
    }

    /// The oci-client reference for `image`, redirected to its mirror.
    fn target(&self, image: &ImageRef) -> (Reference, bool) {
        let mut r = image.inner().clone();
        let mut plain =
            image.is_loopback() || self.opts.insecure.iter().any(|i| i == image.registry());
        if let Some(m) = self
            .opts
            .mirrors
            .iter()
            .find(|m| m.registry == image.registry())
        {
            r.set_mirror_registry(m.host.clone());
            // An http:// mirror is the user's explicit choice.
            plain = m.plain_http;
        }
        (r, plain)
    }

    /// The transport for `host` (a mirror's, if the image is mirrored).
    fn transport(&self, image: &ImageRef, host: &str, plain_http: bool) -> Result<Arc<Transport>> {
        let mut transports = self.transports.lock().expect("transport map lock");
        if let Some(t) = transports.get(host) {
            return Ok(t.clone());
        }
        let auth = credentials(self.opts.docker_config.as_deref(), image.registry());
        let t = Arc::new(
            Transport::new(
                host,
                plain_http,
                auth,
                self.opts.limits,
                &self.opts.ca_certificates,
            )
            .map_err(Error::Other)?,
        );
        transports.insert(host.to_string(), t.clone());
        Ok(t)
    }

    /// Runs `f` until it succeeds, fails for good, or has used its
    /// attempts; waits between attempts as a rate limit's `Retry-After`
    /// asks (up to [`MAX_RETRY_AFTER`]), else with exponential backoff.
    async fn attempts<T, F, Fut>(&self, mut f: F) -> std::result::Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(f @ (Failure::Fatal(_) | Failure::Local(_))) => return Err(f),
                Err(Failure::Transient { reason, .. }) if attempt >= self.opts.attempts => {
                    return Err(Failure::Fatal(format!(
                        "{reason} (gave up after {attempt} attempts)"
                    )));
                }
                Err(Failure::Transient {
                    reason,
                    retry_after,
                }) => {
                    let wait = match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => {
                            return Err(Failure::Fatal(format!(
                                "{reason}: longer than the {} s we wait, so not retried",
                                MAX_RETRY_AFTER.as_secs()
                            )));
                        }
                        Some(d) => d,
                        None => self.opts.backoff * 2u32.pow(attempt - 1),
                    };
                    tracing::info!("retrying in {:.1} s after: {reason}", wait.as_secs_f64());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Fetches a manifest or index (at most [`MAX_MANIFEST_SIZE`] bytes):
    /// its bytes and the digest the registry claims for it (may be empty).
    async fn fetch_manifest(
        &self,
        t: &Transport,
        repository: &str,
        reference: &str,
    ) -> std::result::Result<(Vec<u8>, String), Failure> {
        let url = t.manifest_url(repository, reference);
        let accept = media_type::ACCEPTED.join(", ");
        self.attempts(|| async {
            let deadline = t.limits.deadline();
            let resp = t
                .request(Method::GET, &url, repository, Some(&accept), deadline)
                .await?;
            let claimed = docker_content_digest(&resp);
            let body = t
                .read(resp, MAX_MANIFEST_SIZE, deadline, "the manifest")
                .await?;
            Ok((body, claimed))
        })
        .await
    }

    /// Where `image` is fetched from: its registry's (or mirror's)
    /// transport, host, repository, and the tag or digest to ask for.
    fn remote(&self, image: &ImageRef) -> Result<Remote> {
        let (target, plain) = self.target(image);
        let host = target.resolve_registry().to_string();
        let t = self.transport(image, &host, plain)?;
        Ok(Remote {
            t,
            repository: target.repository().to_string(),
            reference: target
                .digest()
                .or(target.tag())
                .unwrap_or("latest")
                .to_string(),
            host,
        })
    }

    /// The digest of what `image` names in its registry now (its index or
    /// manifest), as `cache rm/clean --published-only` compares it with
    /// the cache's: the registry's `Docker-Content-Digest` for a `HEAD`,
    /// else the digest of the manifest a `GET` returns.
    pub fn remote_digest(&self, image: &ImageRef) -> Result<Digest> {
        let Remote {
            t,
            host,
            repository,
            reference,
        } = self.remote(image)?;
        let canonical = image.canonical();
        let err = failure(&host, "cannot look up", &canonical);
        self.rt.block_on(async {
            let url = t.manifest_url(&repository, &reference);
            let accept = media_type::ACCEPTED.join(", ");
            let claimed = self
                .attempts(|| async {
                    let resp = t
                        .request(
                            Method::HEAD,
                            &url,
                            &repository,
                            Some(&accept),
                            t.limits.deadline(),
                        )
                        .await?;
                    Ok(docker_content_digest(&resp))
                })
                .await
                .map_err(err)?;
            if let Ok(d) = Digest::parse(&claimed) {
                return Ok(d);
            }
            let (bytes, claimed) = self
                .fetch_manifest(&t, &repository, &reference)
                .await
                .map_err(err)?;
            verified(
                &bytes,
                image.digest().unwrap_or(""),
                &claimed,
                &image.canonical(),
            )
        })
    }

    /// Pulls `image` for the configured platform into `cache`: the index (if
    /// any, as the reference does: the whole index and every manifest it
    /// lists, but only this platform's config and layers, and the configs
    /// of attestation manifests), the manifest, config and layers. Blobs
    /// already cached are not fetched again. The image is named in the
    /// cache only once complete.
    pub fn pull(&self, cache: &Cache, image: &ImageRef) -> Result<CachedImage> {
        self.fetch(cache, image, Want::Platform(&self.opts.platform))?;
        cache
            .image(image, &self.opts.platform)?
            .ok_or_else(|| Error::NotCached {
                image: image.canonical(),
            })
    }

    /// Pulls `image` with the configs and layers of every image manifest of
    /// its index that is for one of `platforms` (all of them when
    /// `platforms` is empty), as the reference does for a volume of
    /// `format: oci`; an index missing one of `platforms` is an error. A
    /// single-platform image is pulled whole.
    pub fn pull_platforms(
        &self,
        cache: &Cache,
        image: &ImageRef,
        platforms: &[Platform],
    ) -> Result<ImageTree> {
        self.fetch(cache, image, Want::Layout(platforms))?;
        cache
            .tree(image, platforms)?
            .ok_or_else(|| Error::NotCached {
                image: image.canonical(),
            })
    }

    fn fetch(&self, cache: &Cache, image: &ImageRef, want: Want<'_>) -> Result<()> {
        let Remote {
            t,
            host,
            repository,
            reference,
        } = self.remote(image)?;
        let name = image.canonical();
        // Reclaim what killed runs left, then keep gc from deleting blobs we
        // have written but not yet named.
        let _pin = cache.reclaim_and_pin()?;
        let err = failure(&host, "cannot pull", &name);
        self.rt.block_on(async {
            let (bytes, claimed) = self
                .fetch_manifest(&t, &repository, &reference)
                .await
                .map_err(err)?;
            let top_digest = verified(&bytes, image.digest().unwrap_or(""), &claimed, &name)?;
            let probe: Probe = parse_json(&bytes, &name, "manifest")?;
            let top_type = probe.kind().to_string();
            let top = Descriptor {
                media_type: top_type.clone(),
                digest: top_digest.to_string(),
                size: bytes.len() as u64,
                platform: None,
                annotations: Default::default(),
            };
            let too_big = |what: &str, d: &Descriptor, limit: u64| {
                err(Failure::Fatal(format!(
                    "{what} {} declares {} bytes, more than the {limit} it may have",
                    d.digest, d.size
                )))
            };
            // The manifests whose configs and layers are fetched, as
            // (digest, bytes).
            let mut full: Vec<(Digest, Vec<u8>)> = Vec::new();
            if media_type::is_index(&top_type) {
                let index: Index = parse_json(&bytes, &name, "index")?;
                let mut wanted: Vec<Descriptor> = match want {
                    Want::Platform(p) => vec![select_platform(&name, &index, p)?],
                    Want::Layout(ps) => layout_manifests(&name, &index, ps)?
                        .into_iter()
                        .cloned()
                        .collect(),
                };
                // The attestations of the wanted manifests come whole (their
                // layers are the SBOM and provenance statements `build`
                // consolidates, as the reference does): small, and what a
                // later push of the image needs.
                let attestations: Vec<Descriptor> = index
                    .manifests
                    .iter()
                    .filter(|m| {
                        crate::attestation::attests(m)
                            .is_some_and(|d| wanted.iter().any(|w| w.digest == d))
                    })
                    .cloned()
                    .collect();
                wanted.extend(attestations);
                // As the reference, keep every manifest the index lists, so
                // another platform or the reference's completeness check
                // (it reads attestation manifests and their configs) finds
                // them; unlike the reference, which also downloads every
                // platform's layers, only the wanted platforms' layers are
                // fetched (docs/cache.md).
                let others = index
                    .manifests
                    .iter()
                    .filter(|m| {
                        media_type::is_manifest(&m.media_type)
                            && !wanted.iter().any(|w| w.digest == m.digest)
                    })
                    .take(MAX_INDEX_MANIFESTS);
                for m in wanted.iter().chain(others) {
                    let md = Digest::parse(&m.digest)?;
                    if m.size > MAX_MANIFEST_SIZE {
                        return Err(too_big("manifest", m, MAX_MANIFEST_SIZE));
                    }
                    let mbytes = if cache.has_blob(&md) {
                        cache.read_blob(&md)?
                    } else {
                        let (b, _) = self
                            .fetch_manifest(&t, &repository, md.as_str())
                            .await
                            .map_err(err)?;
                        verified(&b, md.as_str(), "", &name)?;
                        b
                    };
                    if wanted.iter().any(|w| w.digest == m.digest) {
                        full.push((md, mbytes));
                        continue;
                    }
                    cache.write_blob_verified(&md, &mbytes, "manifest")?;
                    // The reference checks attestation manifests (and entries
                    // without a platform) for a config before it calls a
                    // cached index complete.
                    if m
                        .platform
                        .as_ref()
                        .is_none_or(crate::attestation::is_attestation_platform)
                    {
                        let am: Manifest = parse_json(&mbytes, &name, "manifest")?;
                        if am.config.size > MAX_MANIFEST_SIZE {
                            return Err(too_big("attestation config", &am.config, MAX_MANIFEST_SIZE));
                        }
                        self.fetch_blob(cache, &t, &repository, &am.config, &name)
                            .await?;
                    }
                }
            } else if media_type::is_manifest(&top_type) {
                full.push((top_digest.clone(), bytes.clone()));
            } else {
                return Err(Error::MediaType {
                    image: name.clone(),
                    media_type: top_type,
                });
            }
            let manifests: Vec<Manifest> = full
                .iter()
                .map(|(_, b)| parse_json(b, &name, "manifest"))
                .collect::<Result<_>>()?;
            let mut blobs: Vec<&Descriptor> = Vec::new();
            for m in &manifests {
                for d in std::iter::once(&m.config).chain(&m.layers) {
                    if !blobs.iter().any(|b| b.digest == d.digest) {
                        blobs.push(d);
                    }
                }
            }
            // Refuse absurd sizes before anything is downloaded (statements
            // are read whole: a smaller bound).
            for d in &blobs {
                if d.media_type == crate::attestation::IN_TOTO_MEDIA_TYPE
                    && d.size > crate::attestation::MAX_STATEMENT_SIZE
                {
                    return Err(too_big(
                        "in-toto statement",
                        d,
                        crate::attestation::MAX_STATEMENT_SIZE,
                    ));
                }
                if d.size > t.limits.max_blob_size {
                    return Err(err(Failure::Fatal(format!(
                        "blob {} declares {} bytes, more than the {} bytes a blob may have ({} sets the limit)",
                        d.digest,
                        d.size,
                        t.limits.max_blob_size,
                        crate::transport::MAX_BLOB_SIZE_ENV
                    ))));
                }
            }
            let jobs = blobs
                .into_iter()
                .map(|d| self.fetch_blob(cache, &t, &repository, d, &name));
            stream::iter(jobs)
                .buffer_unordered(self.opts.concurrency.max(1))
                .try_collect::<Vec<()>>()
                .await?;
            for (d, b) in &full {
                cache.write_blob_verified(d, b, "manifest")?;
            }
            if media_type::is_index(&top_type) {
                cache.write_blob_verified(&top_digest, &bytes, "index")?;
            }
            cache.tag(&name, top)?;
            Ok(())
        })
    }

    /// Downloads one blob into the cache unless it is there, verifying its
    /// digest as it streams; retried on transient failures.
    async fn fetch_blob(
        &self,
        cache: &Cache,
        t: &Transport,
        repository: &str,
        d: &Descriptor,
        image: &str,
    ) -> Result<()> {
        let digest = Digest::parse(&d.digest)?;
        if cache.has_blob(&digest) {
            return Ok(());
        }
        let bar = self.progress.add(ProgressBar::new(d.size));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes}/{total_bytes}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(digest.hex()[..12].to_string());
        let result = self
            .attempts(|| {
                bar.set_position(0);
                self.download(cache, t, repository, d.size, &digest, &bar)
            })
            .await
            .map_err(|f| match f {
                Failure::Local(e) => *e,
                f => Error::Registry {
                    registry: t.host().to_string(),
                    action: "cannot pull",
                    image: image.to_string(),
                    reason: format!("blob {digest}: {f}"),
                },
            });
        bar.finish_and_clear();
        result
    }

    /// One attempt at a blob: read at most `size` bytes (its descriptor's)
    /// into a temporary file, hashing them, and move it into the cache if
    /// the digest matches. A server that sends more fails the pull.
    async fn download(
        &self,
        cache: &Cache,
        t: &Transport,
        repository: &str,
        size: u64,
        digest: &Digest,
        bar: &ProgressBar,
    ) -> std::result::Result<(), Failure> {
        let deadline = t.limits.blob_deadline(size);
        let url = t.blob_url(repository, digest.as_str());
        let mut resp = t
            .request(Method::GET, &url, repository, None, deadline)
            .await?;
        if let Some(len) = resp.content_length()
            && len != size
        {
            return Err(Failure::Fatal(format!(
                "the registry announces {len} bytes for a blob whose descriptor declares {size}"
            )));
        }
        let fatal = |e: Error| Failure::Local(Box::new(e));
        let (temp, mut file) = cache.temp_file().map_err(fatal)?;
        // Deletes the partial file on every way out but a commit, including
        // this future being dropped (another blob of the pull failed).
        let mut guard = TempGuard(Some(temp.clone()));
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let reading = || format!("reading blob {digest} from {url}");
        while let Some(chunk) = t.within(deadline, resp.chunk(), &reading).await? {
            written += chunk.len() as u64;
            if written > size {
                return Err(Failure::Fatal(format!(
                    "the registry sent more than the {size} bytes the blob's descriptor declares; stopped reading"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| fatal(crate::error::io("cannot write", &temp)(e)))?;
            bar.inc(chunk.len() as u64);
        }
        if written < size {
            return Err(Failure::Transient {
                reason: format!("the download ended after {written} of {size} bytes"),
                retry_after: None,
            });
        }
        cache
            .commit_blob(
                &temp,
                file,
                digest,
                &Digest::from_hasher(hasher),
                "downloaded content",
            )
            .map_err(fatal)?;
        guard.0 = None;
        Ok(())
    }

    /// Pushes the cached image `local` to the registry as `remote`: every
    /// blob the registry lacks, each platform manifest, then the top-level
    /// index or manifest under the tag. Every request goes through
    /// [`Transport`], bounded as a pull's are: the answers a push reads
    /// (errors, tokens) up to 64 KiB, each request within its deadline.
    pub fn push(&self, cache: &Cache, local: &ImageRef, remote: &ImageRef) -> Result<()> {
        let name = local.canonical();
        // Keep `cache rm`/`clean` from deleting the blobs while we read them.
        let _pin = cache.reclaim_and_pin()?;
        let top = cache.resolve(local)?.ok_or_else(|| Error::NotCached {
            image: name.clone(),
        })?;
        let Remote {
            t,
            host,
            repository,
            reference,
        } = self.remote(remote)?;
        let canonical = remote.canonical();
        let err = failure(&host, "cannot push", &canonical);
        let top_digest = Digest::parse(&top.digest)?;
        let top_bytes = cache.read_blob(&top_digest)?;
        let manifests: Vec<(Digest, String)> = if media_type::is_index(&top.media_type) {
            let index: Index = parse_json(&top_bytes, &name, "index")?;
            index
                .manifests
                .iter()
                .map(|m| Ok((Digest::parse(&m.digest)?, m.media_type.clone())))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let context = |what: String| {
            move |f: Failure| match f {
                Failure::Fatal(r) => Failure::Fatal(format!("{what}: {r}")),
                f => f,
            }
        };
        // Everything must be cached before anything is pushed: a pull keeps
        // every manifest of an index but only its platform's layers.
        for (digest, mt) in &manifests {
            let missing = |what: String| {
                err(Failure::Fatal(format!(
                    "{what} is not in the cache (the image was pulled for one platform only); pull it with `linuxkit cache pull`"
                )))
            };
            if !cache.has_blob(digest) {
                return Err(missing(format!("manifest {digest}")));
            }
            if media_type::is_manifest(mt) {
                let m: Manifest = parse_json(&cache.read_blob(digest)?, &name, "manifest")?;
                for b in std::iter::once(&m.config).chain(&m.layers) {
                    if !cache.has_blob(&Digest::parse(&b.digest)?) {
                        return Err(missing(format!("blob {} of manifest {digest}", b.digest)));
                    }
                }
            }
        }
        self.rt.block_on(async {
            let mut to_push = vec![(top_digest.clone(), top.media_type.clone())];
            to_push.extend(manifests);
            // Platform manifests first, the tag last: the tag must only ever
            // point at complete content.
            for (digest, mt) in to_push.iter().skip(1).chain(std::iter::once(&to_push[0])) {
                if !cache.has_blob(digest) {
                    return Err(err(Failure::Fatal(format!(
                        "manifest {digest} is not in the cache (the image was pulled for one platform only); pull it with `linuxkit cache pull`"
                    ))));
                }
                let bytes = cache.read_blob(digest)?;
                if media_type::is_manifest(mt) {
                    let m: Manifest = parse_json(&bytes, &name, "manifest")?;
                    for b in std::iter::once(&m.config).chain(&m.layers) {
                        let bd = Digest::parse(&b.digest)?;
                        if self
                            .attempts(|| self.blob_exists(&t, &repository, &bd))
                            .await
                            .map_err(err)?
                        {
                            continue;
                        }
                        let upload = Upload {
                            data: cache.read_blob(&bd)?.into(),
                            content_type: "application/octet-stream".into(),
                        };
                        self.attempts(|| self.upload_blob(&t, &repository, &bd, &upload))
                            .await
                            .map_err(context(format!("blob {bd}")))
                            .map_err(err)?;
                    }
                }
                let dest = if digest == &top_digest {
                    reference.clone()
                } else {
                    digest.to_string()
                };
                let url = t.manifest_url(&repository, &dest);
                let upload = Upload {
                    data: bytes.into(),
                    content_type: mt.clone(),
                };
                self.attempts(|| async {
                    let deadline = t.limits.deadline();
                    let resp = t
                        .send(Method::PUT, &url, &repository, Access::Push, None, Some(&upload), deadline)
                        .await?;
                    t.check(resp, &url, deadline).await.map(drop)
                })
                .await
                .map_err(context(format!("manifest {digest}")))
                .map_err(err)?;
            }
            Ok(())
        })
    }

    /// Whether the registry has blob `digest` in `repository` (`HEAD`: 200
    /// yes, 404 no).
    async fn blob_exists(
        &self,
        t: &Transport,
        repository: &str,
        digest: &Digest,
    ) -> std::result::Result<bool, Failure> {
        let url = t.blob_url(repository, digest.as_str());
        let deadline = t.limits.deadline();
        let resp = t
            .send(
                Method::HEAD,
                &url,
                repository,
                Access::Push,
                None,
                None,
                deadline,
            )
            .await?;
        if resp.status() == http::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        t.check(resp, &url, deadline).await.map(|_| true)
    }

    /// Uploads a blob in one piece: `POST` starts an upload, whose
    /// `Location` the blob is `PUT` to with its digest.
    async fn upload_blob(
        &self,
        t: &Transport,
        repository: &str,
        digest: &Digest,
        upload: &Upload,
    ) -> std::result::Result<(), Failure> {
        let start = format!("{}/", t.blob_url(repository, "uploads"));
        let deadline = t.limits.deadline();
        let empty = Upload {
            data: bytes::Bytes::new(),
            content_type: "application/octet-stream".into(),
        };
        let resp = t
            .send(
                Method::POST,
                &start,
                repository,
                Access::Push,
                None,
                Some(&empty),
                deadline,
            )
            .await?;
        let resp = t.check(resp, &start, deadline).await?;
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Failure::Fatal(format!(
                    "POST {start} answered HTTP {} without a Location to upload to",
                    resp.status().as_u16()
                ))
            })?;
        let mut url = resp.url().join(location).map_err(|e| {
            Failure::Fatal(format!(
                "POST {start} answered an upload Location that is not a URL (`{}`: {e})",
                linuxkit_base::text::OneLine(location)
            ))
        })?;
        drop(resp);
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let url = url.to_string();
        let deadline = t.limits.blob_deadline(upload.data.len() as u64);
        let resp = t
            .send(
                Method::PUT,
                &url,
                repository,
                Access::Push,
                None,
                Some(upload),
                deadline,
            )
            .await?;
        t.check(resp, &url, deadline).await.map(drop)
    }
}

/// Deletes a download's temporary file when dropped while still armed: on
/// errors, and when the download is abandoned because its future is dropped
/// (another blob of the same pull failed), which would otherwise leave the
/// partial file in the cache's `.tmp/`.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// See [`Registry::remote`].
struct Remote {
    t: Arc<Transport>,
    host: String,
    repository: String,
    reference: String,
}

/// A transport failure as the error a command reports: local ones as they
/// are, the rest as `action` on `image` at `host`.
fn failure<'a>(
    host: &'a str,
    action: &'static str,
    image: &'a str,
) -> impl Fn(Failure) -> Error + Copy + 'a {
    move |f| match f {
        Failure::Local(e) => *e,
        f => Error::Registry {
            registry: host.to_string(),
            action,
            image: image.to_string(),
            reason: f.to_string(),
        },
    }
}

/// The digest a registry claims for a manifest (`Docker-Content-Digest`),
/// or empty.
fn docker_content_digest(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Checks fetched manifest bytes against the digest we asked for (if any)
/// and the one the registry claims, returning their real digest.
fn verified(bytes: &[u8], wanted: &str, claimed: &str, image: &str) -> Result<Digest> {
    let actual = Digest::of(bytes);
    for expected in [wanted, claimed] {
        if !expected.is_empty() && expected != actual.as_str() {
            return Err(Error::DigestMismatch {
                expected: expected.to_string(),
                actual: actual.to_string(),
                what: format!("manifest of {image}"),
            });
        }
    }
    Ok(actual)
}

/// What a pull fetches configs and layers of.
#[derive(Clone, Copy)]
enum Want<'a> {
    /// The one manifest for this platform.
    Platform(&'a Platform),
    /// Every image manifest for one of these platforms; all when empty.
    Layout(&'a [Platform]),
}

/// At most this many manifests of an index are stored besides the chosen
/// platform's (an index is at most 4 MiB, so this bounds the requests a pull
/// makes; real indexes list a few dozen).
pub const MAX_INDEX_MANIFESTS: usize = 256;

/// The Docker client configuration file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
}

/// Credentials for `registry` from a Docker config file (`auths`,
/// `credsStore`, `credHelpers`); anonymous if there are none.
pub(crate) fn credentials(config: Option<&Path>, registry: &str) -> RegistryAuth {
    let Some(bytes) = config.and_then(|p| std::fs::read(p).ok()) else {
        return RegistryAuth::Anonymous;
    };
    let keys: Vec<String> = if registry == "docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    for k in keys {
        match docker_credential::get_credential_from_reader(&bytes[..], &k) {
            Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
                return RegistryAuth::Basic(u, p);
            }
            Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
                return RegistryAuth::Bearer(t);
            }
            Err(_) => continue,
        }
    }
    RegistryAuth::Anonymous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors() {
        let m = Mirror::parse("http://127.0.0.1:5001").unwrap();
        assert_eq!(m.registry, "docker.io");
        assert_eq!(
            (m.registry.as_str(), m.host.as_str(), m.plain_http),
            ("docker.io", "127.0.0.1:5001", true)
        );
        let m = Mirror::parse("ghcr.io=https://mirror.example/").unwrap();
        assert_eq!(
            (m.registry.as_str(), m.host.as_str(), m.plain_http),
            ("ghcr.io", "mirror.example", false)
        );
        assert!(Mirror::parse("mirror.example").is_err());
        assert!(Mirror::parse("https://a/b").is_err());
    }

    #[test]
    fn manifest_verification() {
        let d = Digest::of(b"x");
        assert_eq!(verified(b"x", d.as_str(), "", "i").unwrap(), d);
        assert!(verified(b"y", d.as_str(), "", "i").is_err());
        assert!(verified(b"y", "", d.as_str(), "i").is_err());
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn reads_auths_of_a_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        // base64("user:pass")
        std::fs::write(&p, r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}}}"#).unwrap();
        assert_eq!(
            format!("{:?}", credentials(Some(&p), "127.0.0.1:5000")),
            format!("{:?}", RegistryAuth::Basic("user".into(), "pass".into()))
        );
        assert!(
            matches!(credentials(Some(&p), "docker.io"), RegistryAuth::Basic(u, _) if u == "hub")
        );
        assert!(matches!(
            credentials(Some(&p), "ghcr.io"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            credentials(None, "127.0.0.1:5000"),
            RegistryAuth::Anonymous
        ));
    }
}
