//! A registry source: the OCI distribution protocol over reqwest, every answer capped.
//!
//! Our own client rather than oci-client, which reads whole manifests and error bodies
//! before anyone can cap them, drops `Retry-After`, and looks settings up by the
//! origin's host while talking to a mirror. Here: one [`Session`] per host contacted,
//! with that host's credentials, CA and `insecure` flag; manifests read up to 4 MiB,
//! error bodies to 16 KiB and reduced to the registry's codes and first message, made
//! printable; `Retry-After` kept for the poller.
//!
//! A blob is first asked for whole with a plain `GET` (what mirrors and caches expect
//! of every client); after a drop, with a `Range` request from where the [`Verifier`]
//! stands; the verifier hashes across resumes, so no byte is trusted twice or skipped.
//! A registry that ignores `Range` sends the whole blob again and the bytes already had
//! are skipped. A blob request is tried again (with backoff, a bounded number of times)
//! when the connection drops, when an answer ends cleanly before the blob does (a short
//! `Content-Length`), and when the registry answers that it cannot serve it *now*: 408,
//! 429, or 500/502/503/504 from it or a proxy in front of it.
//!
//! `--tls-verify=false` (or a host in `insecure_registries`) works as in skopeo: HTTPS
//! without certificate checks if the registry speaks TLS, else plain HTTP.

mod challenge;
mod response;
mod session;
mod signatures;

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use tokio::runtime::Handle;

use super::tls;
use crate::blob::{self, BlobReader, Verifier};
use crate::manifest::{ACCEPTED, Layer, MAX_MANIFEST_BYTES};
use crate::progress::{Cancel, Progress};
use crate::{Digest, Error, RegistryRef, Result};

pub(crate) use response::printable;
pub(crate) use response::{check as check_response, read_capped};
use session::Session;
pub(crate) use session::client as http_client;
pub(crate) use signatures::fetch_url;

/// A dropped blob download is resumed this many times before giving up.
const MAX_RESUMES: u32 = 5;

/// How to reach registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Require HTTPS with verified certificates (skopeo's `--tls-verify`).
    pub tls_verify: bool,
    /// Directory of `*.crt` CA certificates for every host (skopeo's `--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// Without `cert_dir`: directories holding one `HOST[:PORT]/` directory of
    /// certificates per registry (`certs.d`; default: containers' then docker's).
    pub certs_d: Vec<PathBuf>,
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
            certs_d: tls::SYSTEM_CERTS_D.iter().map(PathBuf::from).collect(),
            auth_file: None,
            insecure_registries: Vec::new(),
        }
    }
}

/// What went wrong talking to a registry; every text in it came through [`printable`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error(
        "{url} answered HTTP {status}{}{}{}",
        reason_text(*status),
        codes_text(codes),
        message_text(message)
    )]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error codes (`MANIFEST_UNKNOWN`, `TOOMANYREQUESTS`, …).
        codes: Vec<String>,
        /// The registry's first message, or the start of a body that is not an
        /// error envelope.
        message: String,
        /// `Retry-After`, as sent.
        retry_after: Option<String>,
    },
    /// The request failed below HTTP: connection, TLS, timeout.
    #[error("request to {url} failed")]
    Transport {
        /// The request's URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A body was larger than its cap.
    #[error("{url}: the {what} is larger than {limit} bytes")]
    TooLarge {
        /// The request's URL.
        url: String,
        /// `manifest`, `token answer`.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The registry asks for an authentication scheme other than Basic or Bearer.
    #[error("{url} asks for {scheme} authentication, which is not supported")]
    UnsupportedAuth {
        /// The request's URL.
        url: String,
        /// The scheme it named.
        scheme: String,
    },
    /// The token service's answer held no usable token.
    #[error("the token service at {realm} answered without a usable token")]
    BadToken {
        /// The token service.
        realm: String,
    },
    /// A `HEAD` answer without `Docker-Content-Digest`, or with one that is no digest.
    #[error("{url} answered without a valid Docker-Content-Digest")]
    NoDigest {
        /// The request's URL.
        url: String,
    },
    /// A ranged answer for another range than asked.
    #[error("{url} answered a request for bytes {asked}- with {got}")]
    WrongRange {
        /// The request's URL.
        url: String,
        /// Where the request started.
        asked: u64,
        /// The `Content-Range` received.
        got: String,
    },
}

fn reason_text(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

fn codes_text(codes: &[String]) -> String {
    if codes.is_empty() {
        String::new()
    } else {
        format!(" {}", codes.join(", "))
    }
}

fn message_text(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// A connected registry for one image reference.
#[derive(Debug)]
pub(crate) struct Registry {
    session: Session,
    reference: RegistryRef,
    runtime: Handle,
}

impl Registry {
    pub async fn connect(reference: &RegistryRef, options: &RegistryOptions) -> Result<Self> {
        Ok(Self {
            session: Session::open(reference.registry(), reference.repository(), options).await?,
            reference: reference.clone(),
            runtime: Handle::current(),
        })
    }

    /// The digest the reference resolves to, from a `HEAD` request.
    pub async fn head_digest(&self) -> Result<Digest> {
        let url = self.manifest_url(None);
        let response = self
            .session
            .send(Method::HEAD, &url, |r| {
                r.header(ACCEPT, ACCEPTED.join(", "))
            })
            .await
            .map_err(|e| self.error(e))?;
        response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                self.error(RegistryError::NoDigest {
                    url: printable(&url, 300),
                })
            })
    }

    /// The manifest named by the reference, or by `digest`, with the digest it must have.
    pub async fn manifest(&self, digest: Option<Digest>) -> Result<(bytes::Bytes, Option<Digest>)> {
        let url = self.manifest_url(digest);
        let response = self
            .session
            .send(Method::GET, &url, |r| r.header(ACCEPT, ACCEPTED.join(", ")))
            .await
            .map_err(|e| self.error(e))?;
        let bytes = response::read_capped(response, MAX_MANIFEST_BYTES, "manifest")
            .await
            .map_err(|e| self.error(e))?;
        Ok((bytes, digest.or_else(|| self.reference.digest())))
    }

    fn manifest_url(&self, digest: Option<Digest>) -> String {
        let reference =
            digest.map_or_else(|| self.reference.manifest_reference(), |d| d.to_string());
        self.session.url("manifests", &reference)
    }

    pub fn open_blob(
        self: &Arc<Self>,
        layer: &Layer,
        progress: Arc<Progress>,
        cancel: Cancel,
    ) -> BlobReader {
        let (verifier, reader) = blob::channel(layer, progress);
        let this = Arc::clone(self);
        let layer = layer.clone();
        self.runtime
            .spawn(async move { this.stream_blob(&layer, verifier, cancel).await });
        reader
    }

    async fn stream_blob(&self, layer: &Layer, mut verifier: Verifier, cancel: Cancel) {
        // A stalled connection must not hold a cancelled import for a read timeout.
        let outcome = tokio::select! {
            outcome = self.download(layer, &mut verifier) => outcome,
            () = cancel.cancelled() => Err(Error::Cancelled),
        };
        verifier.finish(outcome).await;
    }

    /// Downloads the whole blob, resuming after dropped connections, transient server
    /// errors and answers that end before the blob does.
    async fn download(&self, layer: &Layer, verifier: &mut Verifier) -> Result<()> {
        let mut resumes = 0;
        // Where an answer last ended cleanly before the end of the blob.
        let mut ended_short_at = None;
        loop {
            let attempt = match self.fetch_from(layer, verifier).await {
                Ok(()) if verifier.received() >= layer.size => return Ok(()),
                Ok(()) => {
                    ended_short_at = Some(verifier.received());
                    Attempt::Dropped(Error::BlobRead {
                        digest: layer.digest,
                        offset: verifier.received(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Err(attempt) => attempt,
            };
            match attempt {
                Attempt::Dropped(e) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    tracing::warn!(
                        layer = %layer.digest,
                        at = verifier.received(),
                        attempt = resumes,
                        error = %e,
                        "blob download interrupted; resuming"
                    );
                    super::pause_before_resume(resumes).await;
                }
                // The registry ended an answer here and serves nothing past it: by its
                // own account the blob ends here, which the size check reports.
                Attempt::Dropped(_) | Attempt::Fatal(_)
                    if ended_short_at == Some(verifier.received()) =>
                {
                    return Ok(());
                }
                Attempt::Dropped(e) | Attempt::Fatal(e) => return Err(e),
            }
        }
    }

    /// Streams the blob from where `verifier` stands to the end of the answer.
    async fn fetch_from(&self, layer: &Layer, verifier: &mut Verifier) -> Result<(), Attempt> {
        let offset = verifier.received();
        let url = self.session.url("blobs", &layer.digest.to_string());
        let mut response = self
            .session
            .send(Method::GET, &url, |r| {
                // The first request is a plain GET, as every other client's: caches
                // and peer-to-peer engines key ranged requests apart.
                if offset == 0 {
                    r
                } else {
                    r.header(RANGE, format!("bytes={offset}-"))
                }
            })
            .await
            .map_err(|e| Attempt::of(self.error(e)))?;
        // A registry that ignores Range sends the whole blob again: skip what we have.
        let mut skip = match response.status() {
            StatusCode::PARTIAL_CONTENT => {
                check_range(&response, offset).map_err(|e| Attempt::Fatal(self.error(e)))?;
                0
            }
            _ => offset,
        };
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(()),
                // The whole blob is here and only the answer's end went wrong (a lying
                // Content-Length): the digest check says whether the bytes are right.
                Err(_) if verifier.received() == layer.size => return Ok(()),
                Err(e) => {
                    return Err(Attempt::Dropped(Error::BlobRead {
                        digest: layer.digest,
                        offset: verifier.received(),
                        source: std::io::Error::other(e),
                    }));
                }
            };
            let mut chunk = chunk;
            let dropped = skip.min(chunk.len() as u64);
            skip -= dropped;
            let _ = chunk.split_to(usize::try_from(dropped).expect("at most the chunk length"));
            if !chunk.is_empty() {
                verifier.push(chunk).await.map_err(Attempt::Fatal)?;
            }
        }
    }

    fn error(&self, source: RegistryError) -> Error {
        Error::Registry {
            reference: self.reference.to_string(),
            source: Box::new(source),
        }
    }
}

/// Checks a 206 answer starts where asked (`Content-Range: bytes START-END/SIZE`).
pub(crate) fn check_range(response: &reqwest::Response, asked: u64) -> Result<(), RegistryError> {
    let got = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let start = got
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('-'))
        .and_then(|(start, _)| start.parse::<u64>().ok());
    if start == Some(asked) {
        return Ok(());
    }
    Err(RegistryError::WrongRange {
        url: printable(response.url().as_str(), 300),
        asked,
        got: printable(got, 64),
    })
}

/// How a blob fetch failed: worth resuming, or not.
enum Attempt {
    Dropped(Error),
    Fatal(Error),
}

impl Attempt {
    /// Whether a failed blob request may succeed if tried again: the connection broke,
    /// the registry asked us to slow down, or it failed for now (a restart, an
    /// overloaded or misconfigured proxy in front of it).
    fn of(e: Error) -> Self {
        let transient = match &e {
            Error::Registry { source, .. } => is_transient(source),
            _ => false,
        };
        if transient {
            Self::Dropped(e)
        } else {
            Self::Fatal(e)
        }
    }
}

/// Whether a failed request may succeed if tried again: the connection broke, the
/// server asked us to slow down, or it failed for now (a restart, an overloaded or
/// misconfigured proxy in front of it).
pub(crate) fn is_transient(e: &RegistryError) -> bool {
    match e {
        RegistryError::Transport { .. } => true,
        RegistryError::Status { status, .. } => {
            matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Error {
        Error::Registry {
            reference: "r/x@sha256:0".into(),
            source: Box::new(RegistryError::Status {
                url: "http://r/v2/x/blobs/sha256:0".into(),
                status,
                codes: Vec::new(),
                message: String::new(),
                retry_after: None,
            }),
        }
    }

    #[test]
    fn overload_and_rate_limits_are_worth_another_try_refusals_are_not() {
        for status in [408, 429, 500, 502, 503, 504] {
            let attempt = Attempt::of(answered(status));
            assert!(matches!(attempt, Attempt::Dropped(_)), "{status}");
        }
        for status in [400, 403, 404, 416, 501] {
            let attempt = Attempt::of(answered(status));
            assert!(matches!(attempt, Attempt::Fatal(_)), "{status}");
        }
        assert!(matches!(Attempt::of(Error::NoDisk), Attempt::Fatal(_)));
    }
}
