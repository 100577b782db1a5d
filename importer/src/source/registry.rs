//! A registry source through oci-client.
//!
//! The client is built with `Client::try_from` (a bad CA is an error, not a silent
//! fallback to defaults) and a fresh one per `connect`, because oci-client keeps the
//! first credentials it sees for a registry. Blobs are fetched with a `Range` request
//! from byte 0, so the same code path resumes a dropped download from where it broke;
//! the [`Verifier`] hashes across resumes, so no byte is trusted twice or skipped. A
//! blob request is tried again (with backoff, a bounded number of times) when the
//! connection drops and when the registry answers that it cannot serve it *now*: 429,
//! or 500/502/503/504 from it or a proxy in front of it.
//!
//! `--tls-verify=false` (or a host in `insecure_registries`) works as in skopeo: HTTPS
//! without certificate checks if the registry speaks TLS, else plain HTTP.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::Client;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use tokio::runtime::Handle;

use super::{auth, tls};
use crate::blob::{self, BlobReader, Verifier};
use crate::manifest::{ACCEPTED, Layer};
use crate::progress::{Cancel, Progress};
use crate::{Digest, Error, RegistryRef, Result};

/// A dropped blob download is resumed this many times before giving up.
const MAX_RESUMES: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte for this long means the connection is dead; the download resumes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Require HTTPS with verified certificates (skopeo's `--tls-verify`).
    pub tls_verify: bool,
    /// Directory of `*.crt` CA certificates (skopeo's `--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// containers `auth.json` / docker `config.json` (skopeo's `--authfile`).
    pub auth_file: Option<PathBuf>,
    /// `host[:port]` of registries reached without TLS verification.
    pub insecure_registries: Vec<String>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            tls_verify: true,
            cert_dir: None,
            auth_file: None,
            insecure_registries: Vec::new(),
        }
    }
}

/// A connected registry client for one image reference.
pub(crate) struct Registry {
    client: Client,
    auth: RegistryAuth,
    reference: RegistryRef,
    runtime: Handle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("reference", &self.reference.to_string())
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub async fn connect(reference: &RegistryRef, options: &RegistryOptions) -> Result<Self> {
        tls::install_crypto_provider();
        let host = reference.registry();
        let auth = auth::credentials(options.auth_file.as_deref(), host)?;
        let insecure = !options.tls_verify || options.insecure_registries.iter().any(|h| h == host);
        let build = |protocol| client(reference, options, protocol, insecure);
        let mut registry = Self {
            client: build(ClientProtocol::Https)?,
            auth,
            reference: reference.clone(),
            runtime: Handle::current(),
        };
        if insecure && registry.speaks_plain_http().await {
            registry.client = build(ClientProtocol::Http)?;
        }
        Ok(registry)
    }

    /// For an insecure registry: whether HTTPS fails at the transport level, in which
    /// case plain HTTP is what it speaks.
    async fn speaks_plain_http(&self) -> bool {
        let probe = self
            .client
            .fetch_manifest_digest(self.reference.as_oci(), &self.auth)
            .await;
        matches!(probe, Err(OciDistributionError::RequestError(_)))
    }

    /// The digest the reference resolves to, from a `HEAD` request.
    pub async fn head_digest(&self) -> Result<Digest> {
        let text = self
            .client
            .fetch_manifest_digest(self.reference.as_oci(), &self.auth)
            .await
            .map_err(|e| self.error(e))?;
        text.parse().map_err(|_| Error::InvalidManifest {
            reason: format!("registry returned digest {text:?}, which is not sha256"),
        })
    }

    /// The manifest named by the reference, or by `digest`, with the digest it must have.
    pub async fn manifest(&self, digest: Option<Digest>) -> Result<(bytes::Bytes, Option<Digest>)> {
        let reference = match digest {
            Some(d) => self.reference.with_digest(d),
            None => self.reference.clone(),
        };
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference.as_oci(), &self.auth, &ACCEPTED)
            .await
            .map_err(|e| self.error(e))?;
        Ok((bytes, digest.or_else(|| self.reference.digest())))
    }

    pub fn open_blob(
        self: &Arc<Self>,
        layer: &Layer,
        progress: Arc<Progress>,
        cancel: Cancel,
    ) -> BlobReader {
        let (verifier, reader) = blob::channel(layer, progress);
        let this = Arc::clone(self);
        self.runtime
            .spawn(async move { this.stream_blob(verifier, cancel).await });
        reader
    }

    async fn stream_blob(&self, mut verifier: Verifier, cancel: Cancel) {
        // A stalled connection must not hold a cancelled import for a read timeout.
        let outcome = tokio::select! {
            outcome = self.download(&mut verifier) => outcome,
            () = cancel.cancelled() => Err(Error::Cancelled),
        };
        verifier.finish(outcome).await;
    }

    /// Downloads the whole blob, resuming after dropped connections and after answers
    /// that end, cleanly, before the blob does (a short `Content-Length`).
    async fn download(&self, verifier: &mut Verifier) -> Result<()> {
        let mut resumes = 0;
        // Where an answer last ended cleanly before the end of the blob.
        let mut ended_short_at = None;
        loop {
            let failure = match self.fetch_from(verifier).await {
                Ok(()) if verifier.received() == verifier.size() => return Ok(()),
                Ok(()) => {
                    ended_short_at = Some(verifier.received());
                    Failure::Dropped(Error::BlobRead {
                        digest: *verifier.layer(),
                        offset: verifier.received(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Err(failure) => failure,
            };
            match failure {
                Failure::Dropped(e) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    tracing::warn!(
                        layer = %verifier.layer(),
                        at = verifier.received(),
                        attempt = resumes,
                        error = %e,
                        "blob download interrupted; resuming"
                    );
                    tokio::time::sleep(Duration::from_millis(200 << resumes)).await;
                }
                // The registry ended an answer here and serves nothing past it: by its
                // own account the blob ends here, which the size check reports.
                Failure::Dropped(_) | Failure::Fatal(_)
                    if ended_short_at == Some(verifier.received()) =>
                {
                    return Ok(());
                }
                Failure::Dropped(e) | Failure::Fatal(e) => return Err(e),
            }
        }
    }

    /// Streams the blob from where `verifier` stands to the end of the answer.
    async fn fetch_from(&self, verifier: &mut Verifier) -> Result<(), Failure> {
        let offset = verifier.received();
        let digest = verifier.layer().to_string();
        let response = self
            .client
            .pull_blob_stream_partial(self.reference.as_oci(), digest.as_str(), offset, None)
            .await
            .map_err(|e| {
                let error = self.error(e);
                if is_transient(&error) {
                    Failure::Dropped(error)
                } else {
                    Failure::Fatal(error)
                }
            })?;
        // A registry that ignores Range sends the whole blob again: skip what we have.
        let (mut stream, mut skip) = match response {
            BlobResponse::Partial(s) => (s, 0),
            BlobResponse::Full(s) => (s, offset),
        };
        while let Some(item) = stream.next().await {
            let mut chunk = match item {
                Ok(chunk) => chunk,
                // oci-client checks a full response's digest itself at the end; our
                // own check will say precisely what is wrong.
                Err(_) if verifier.received() == verifier.size() => return Ok(()),
                Err(e) => {
                    return Err(Failure::Dropped(Error::BlobRead {
                        digest: *verifier.layer(),
                        offset: verifier.received(),
                        source: e,
                    }));
                }
            };
            let dropped = skip.min(chunk.len() as u64);
            skip -= dropped;
            let _ = chunk.split_to(usize::try_from(dropped).expect("at most the chunk length"));
            if !chunk.is_empty() {
                verifier.push(chunk).await.map_err(Failure::Fatal)?;
            }
        }
        Ok(())
    }

    fn error(&self, source: OciDistributionError) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            source,
        }
    }
}

/// How a blob fetch failed: worth resuming, or not.
enum Failure {
    Dropped(Error),
    Fatal(Error),
}

/// Whether a failed blob request may succeed if tried again: the connection broke, the
/// registry asked us to slow down, or it failed for now (a restart, an overloaded or
/// misconfigured proxy in front of it).
fn is_transient(error: &Error) -> bool {
    use OciDistributionError::{RequestError, ServerError};
    error.is_rate_limited()
        || matches!(
            error,
            Error::Registry {
                source: RequestError(_)
                    | ServerError {
                        code: 408 | 500 | 502 | 503 | 504,
                        ..
                    },
                ..
            }
        )
}

fn client(
    reference: &RegistryRef,
    options: &RegistryOptions,
    protocol: ClientProtocol,
    insecure: bool,
) -> Result<Client> {
    let config = ClientConfig {
        protocol,
        accept_invalid_certificates: insecure,
        extra_root_certificates: tls::extra_roots(
            options.cert_dir.as_deref(),
            reference.registry(),
        )?,
        platform_resolver: None,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: concat!("bootsource/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    Client::try_from(config)
        .map_err(|e| Error::Tls(format!("cannot build the registry client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: u16) -> Error {
        Error::Registry {
            reference: "r/x@sha256:0".into(),
            source: OciDistributionError::ServerError {
                code,
                url: "http://r/v2/x/blobs/sha256:0".into(),
                message: String::new(),
            },
        }
    }

    #[test]
    fn overload_and_rate_limits_are_worth_another_try_refusals_are_not() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&answered(code)), "{code}");
        }
        for code in [400, 403, 404, 416, 501] {
            assert!(!is_transient(&answered(code)), "{code}");
        }
        assert!(!is_transient(&Error::NoDisk));
    }
}
