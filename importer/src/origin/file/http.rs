//! A disk file over HTTP(S), on the registry client's machinery.
//!
//! The same reqwest client as registries (`registry::session`): CA certificates from
//! `--cert-dir` or `certs.d/HOST:PORT/`, `--tls-verify=false`, proxies from
//! `HTTP(S)_PROXY`/`NO_PROXY`, timeouts, at most 5 redirects; error bodies capped and
//! made printable. Credentials (`--creds`, else the auth file's entry for `HOST:PORT`)
//! and extra headers (`--header`) are sent to the file's own URL and follow a redirect
//! only to the same host (reqwest drops `Authorization` across hosts).
//!
//! One `HEAD` first (or a `GET` whose body is not read, where the server refuses
//! `HEAD`) gives the length, the validators (`ETag`, `Last-Modified`) and whether
//! ranges are served. A dropped download resumes with `Range: bytes=N-` and
//! `If-Range: <validator>`, so a file replaced meanwhile comes back whole (200) and is
//! refused rather than stitched onto the old bytes ([`FileProblem::Changed`]). A server
//! without ranges or validators still works: the download cannot resume, which one
//! log line says when connecting.
//!
//! A poll ([`Probe`]) is one conditional request: `If-None-Match` /
//! `If-Modified-Since` with the validators of the version imported last.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderMap,
    HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::FileProblem;
use crate::blob::Verifier;
use crate::origin::auth::{self, Credentials};
use crate::origin::registry::{self, RegistryError};
use crate::progress::Cancel;
use crate::{Checksum, Digest, Error, ImportOptions, Result, printable};

/// A dropped download is resumed this many times before giving up.
const MAX_RESUMES: u32 = 5;

/// How to fetch single files over HTTP(S), beside the TLS settings of
/// [`RegistryOptions`](crate::RegistryOptions), which apply here too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpOptions {
    /// Basic credentials (`--creds USER:PASSWORD`); else the auth file's entry for the
    /// host.
    pub credentials: Option<Credentials>,
    /// Extra request headers (`--header 'Name: value'`), like CDI's `extraHeaders`.
    pub headers: Vec<ExtraHeader>,
    /// The checksum the file must have (`--checksum`).
    pub checksum: Option<Checksum>,
    /// A checksum file listing the file (`--checksum-url`).
    pub checksum_url: Option<Url>,
}

/// One `Name: value` request header. Its value is never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    name: HeaderName,
    value: HeaderValue,
}

/// Why `--header` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid header {0:?}: expected 'Name: value' with a valid name and value")]
pub struct ParseHeaderError(String);

impl std::str::FromStr for ExtraHeader {
    type Err = ParseHeaderError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let err = || ParseHeaderError(printable(text.split(':').next().unwrap_or(""), 64));
        let (name, value) = text.split_once(':').ok_or_else(err)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| err())?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| err())?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }
}

/// What identifies one version of a file on a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// `Content-Length`.
    pub length: Option<u64>,
}

impl Validators {
    fn of(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| printable(v, 200))
        };
        Self {
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
            length: headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }
    }

    /// A stable text naming this version, if the server gives anything to name it by.
    pub fn identity(&self) -> Option<String> {
        match (&self.etag, &self.last_modified) {
            (Some(etag), _) => Some(format!("etag {etag}")),
            (None, Some(date)) => Some(format!(
                "last-modified {date} length {}",
                self.length.map_or_else(|| "?".into(), |l| l.to_string())
            )),
            (None, None) => None,
        }
    }

    /// What `If-Range` may carry: a strong ETag, else the date.
    fn if_range(&self) -> Option<HeaderValue> {
        let strong = self.etag.as_deref().filter(|e| !e.starts_with("W/"));
        strong
            .or(self.last_modified.as_deref())
            .and_then(|v| HeaderValue::from_str(v).ok())
    }

    /// Whether `other` names the same version (the server ignored a conditional).
    fn same_as(&self, other: &Self) -> bool {
        self.identity().is_some() && self.identity() == other.identity()
    }
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Unchanged since the validators given (304, or the same validators).
    NotModified,
    /// The file as the server describes it now (changed, or nothing was known).
    Changed(Validators),
    /// The checksum configured or listed in the checksum file: it names the content.
    Checksum(Checksum),
    /// The server gives no validators: the sha256 of the file, downloaded to know it.
    Hashed(Digest),
}

/// One disk file's URL, with its client.
#[derive(Debug)]
pub(super) struct HttpFile {
    client: Client,
    url: Url,
    credentials: Option<Credentials>,
    headers: Vec<ExtraHeader>,
    /// From the first answer; `length` is what downloads must deliver.
    validators: Validators,
    /// Whether a dropped download can resume (ranges and a validator for `If-Range`).
    resumable: bool,
    runtime: Handle,
}

impl HttpFile {
    /// The client for `url`, without asking the server anything yet.
    pub fn client_only(url: &Url, options: &ImportOptions) -> Result<Self> {
        let host = host_port(url);
        let registry = &options.registry;
        let credentials = match &options.http.credentials {
            Some(c) => Some(c.clone()),
            None => auth::credentials(registry.auth_file.as_deref(), &host)?,
        };
        let insecure = !registry.tls_verify || registry.insecure_registries.contains(&host);
        Ok(Self {
            client: registry::http_client(&host, registry, insecure)?,
            url: url.clone(),
            credentials,
            headers: options.http.headers.clone(),
            validators: Validators::default(),
            resumable: false,
            runtime: Handle::current(),
        })
    }

    /// Connects: one `HEAD` (or `GET`) for the length, validators and ranges.
    pub async fn connect(url: &Url, options: &ImportOptions) -> Result<Self> {
        let mut file = Self::client_only(url, options)?;
        let answer = file.head(None).await?;
        file.validators = Validators::of(answer.headers());
        let ranges = answer
            .headers()
            .get(ACCEPT_RANGES)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
        file.resumable = ranges && file.validators.if_range().is_some();
        if !file.resumable {
            tracing::warn!(url = %printable(url.as_str(), 300), ranges,
                "the server offers no ranged requests with a validator: a dropped download cannot resume");
        }
        Ok(file)
    }

    pub fn validators(&self) -> &Validators {
        &self.validators
    }

    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let mut r = self
            .client
            .request(method, url.clone())
            .header(ACCEPT_ENCODING, "identity");
        for h in &self.headers {
            r = r.header(&h.name, h.value.clone());
        }
        if let Some(c) = &self.credentials {
            r = r.header(AUTHORIZATION, c.basic_header());
        }
        r
    }

    fn error(&self, source: RegistryError) -> Error {
        Error::Http {
            url: printable(self.url.as_str(), 300),
            source: Box::new(source),
        }
    }

    /// Sends `request`; a status other than success (or 304) is an error.
    async fn send(&self, request: RequestBuilder) -> std::result::Result<Response, RegistryError> {
        let answer = request
            .send()
            .await
            .map_err(|source| RegistryError::Transport {
                url: printable(self.url.as_str(), 300),
                source,
            })?;
        if answer.status() == StatusCode::NOT_MODIFIED {
            return Ok(answer);
        }
        registry::check_response(answer).await
    }

    /// `HEAD`, or a `GET` whose body is dropped where the server refuses `HEAD`;
    /// conditional on `known`.
    async fn head(&self, known: Option<&Validators>) -> Result<Response> {
        let conditional = |mut r: RequestBuilder| {
            if let Some(v) = known {
                if let Some(etag) = &v.etag {
                    r = r.header(IF_NONE_MATCH, etag.as_str());
                }
                if let Some(date) = &v.last_modified {
                    r = r.header(IF_MODIFIED_SINCE, date.as_str());
                }
            }
            r
        };
        let head = self
            .send(conditional(self.request(Method::HEAD, &self.url)))
            .await;
        match head {
            Err(RegistryError::Status {
                status: 405 | 501, ..
            }) => {
                tracing::warn!(url = %printable(self.url.as_str(), 300),
                    "the server refuses HEAD; asking with GET instead");
                self.send(conditional(self.request(Method::GET, &self.url)))
                    .await
                    .map_err(|e| self.error(e))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    /// One conditional request: has the file changed since `known`?
    pub async fn probe(self, known: Option<&Validators>) -> Result<Probe> {
        let answer = self.head(known).await?;
        if answer.status() == StatusCode::NOT_MODIFIED {
            return Ok(Probe::NotModified);
        }
        let now = Validators::of(answer.headers());
        drop(answer);
        if now.identity().is_none() {
            tracing::info!(url = %printable(self.url.as_str(), 300),
                "the server gives no ETag or Last-Modified: downloading the file to tell whether it changed");
            return self.hash().await.map(Probe::Hashed);
        }
        if known.is_some_and(|k| k.same_as(&now)) {
            return Ok(Probe::NotModified);
        }
        Ok(Probe::Changed(now))
    }

    /// The sha256 of the whole file, downloaded and discarded.
    async fn hash(self) -> Result<Digest> {
        let this = Arc::new(self);
        let expected = crate::blob::Expected {
            name: crate::blob::BlobName::File(this.url.as_str().into()),
            size: None,
            checksum: None,
        };
        let (verifier, mut reader) = crate::blob::channel_for(expected, Default::default());
        Self::stream(&this, verifier, Cancel::default());
        tokio::task::spawn_blocking(move || {
            reader.drain()?;
            reader
                .sha256()
                .ok_or_else(|| Error::Internal("a drained stream has no digest".into()))
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing thread failed: {e}")))?
    }

    /// Streams the file into `verifier` on the runtime, resuming where it can.
    pub fn stream(this: &Arc<Self>, mut verifier: Verifier, cancel: Cancel) {
        let this = Arc::clone(this);
        let runtime = this.runtime.clone();
        runtime.spawn(async move {
            let outcome = tokio::select! {
                outcome = this.download(&mut verifier) => outcome,
                () = cancel.cancelled() => Err(Error::Cancelled),
            };
            verifier.finish(outcome).await;
        });
    }

    async fn download(&self, verifier: &mut Verifier) -> Result<()> {
        let mut resumes = 0;
        loop {
            let error = match self.fetch_from(verifier).await {
                Ok(())
                    if self
                        .validators
                        .length
                        .is_none_or(|l| verifier.received() >= l) =>
                {
                    return Ok(());
                }
                Ok(()) => Attempt::Dropped(
                    self.read_error(verifier, std::io::ErrorKind::UnexpectedEof.into()),
                ),
                Err(attempt) => attempt,
            };
            match error {
                Attempt::Dropped(_) if !self.resumable => {
                    return Err(self.problem(FileProblem::NoResume {
                        offset: verifier.received(),
                    }));
                }
                Attempt::Dropped(e) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    tracing::warn!(url = %printable(self.url.as_str(), 300), at = verifier.received(),
                        attempt = resumes, error = %e, "download interrupted; resuming");
                    crate::origin::pause_before_resume(resumes).await;
                }
                Attempt::Dropped(e) | Attempt::Fatal(e) => return Err(e),
            }
        }
    }

    /// Streams from where `verifier` stands to the end of the answer.
    async fn fetch_from(&self, verifier: &mut Verifier) -> std::result::Result<(), Attempt> {
        let offset = verifier.received();
        let mut request = self.request(Method::GET, &self.url);
        if offset > 0 {
            let validator = self.validators.if_range().expect("resumable");
            request = request
                .header(RANGE, format!("bytes={offset}-"))
                .header(IF_RANGE, validator);
        }
        let mut answer = self.send(request).await.map_err(|e| {
            let transient = registry::is_transient(&e);
            let e = self.error(e);
            if transient {
                Attempt::Dropped(e)
            } else {
                Attempt::Fatal(e)
            }
        })?;
        match answer.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                registry::check_range(&answer, offset)
                    .map_err(|e| Attempt::Fatal(self.error(e)))?;
            }
            StatusCode::OK if offset == 0 => {
                let now = Validators::of(answer.headers());
                if now.identity().is_some()
                    && self.validators.identity().is_some()
                    && !self.validators.same_as(&now)
                {
                    return Err(Attempt::Fatal(self.problem(FileProblem::Changed)));
                }
            }
            // If-Range failed: the file is no longer the one we started on.
            _ => return Err(Attempt::Fatal(self.problem(FileProblem::Changed))),
        }
        loop {
            match answer.chunk().await {
                Ok(Some(chunk)) => verifier.push(chunk).await.map_err(Attempt::Fatal)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(Attempt::Dropped(
                        self.read_error(verifier, std::io::Error::other(e)),
                    ));
                }
            }
        }
    }

    fn read_error(&self, verifier: &Verifier, source: std::io::Error) -> Error {
        Error::SourceRead {
            image: self.url.to_string(),
            offset: verifier.received(),
            source,
        }
    }

    fn problem(&self, problem: FileProblem) -> Error {
        Error::FileSource {
            image: self.url.to_string(),
            problem,
        }
    }

    /// The file's last `n` bytes, if the server serves ranges of this version.
    pub fn tail_blocking(&self, n: u64) -> Result<Option<Bytes>> {
        let (Some(validator), true) = (self.validators.if_range(), self.resumable) else {
            return Ok(None);
        };
        self.runtime.block_on(async {
            let request = self
                .request(Method::GET, &self.url)
                .header(RANGE, format!("bytes=-{n}"))
                .header(IF_RANGE, validator);
            let answer = self.send(request).await.map_err(|e| self.error(e))?;
            if answer.status() != StatusCode::PARTIAL_CONTENT {
                return Ok(None);
            }
            let total = answer
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit_once('/'))
                .and_then(|(_, total)| total.parse::<u64>().ok());
            if total != self.validators.length {
                return Ok(None);
            }
            let cap = usize::try_from(n).unwrap_or(usize::MAX);
            registry::read_capped(answer, cap, "file tail")
                .await
                .map(Some)
                .map_err(|e| self.error(e))
        })
    }
}

/// A small file (a checksum file): with `file`'s credentials and headers when it is on
/// the same origin, else with none.
pub(super) async fn fetch_small(
    url: &Url,
    file: Option<&HttpFile>,
    options: &ImportOptions,
    cap: usize,
) -> Result<Bytes> {
    let stranger;
    let client = match file {
        Some(f) if f.url.origin() == url.origin() => f,
        _ => {
            let mut bare = options.clone();
            bare.http.credentials = None;
            bare.http.headers.clear();
            bare.registry.auth_file = None;
            stranger = HttpFile::client_only(url, &bare)?;
            &stranger
        }
    };
    let error = |source| Error::Http {
        url: printable(url.as_str(), 300),
        source: Box::new(source),
    };
    let answer = client
        .send(client.request(Method::GET, url))
        .await
        .map_err(error)?;
    registry::read_capped(answer, cap, "checksum file")
        .await
        .map_err(error)
}

/// `host[:port]`, as certs.d directories and auth files name a server.
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// How a request failed: worth resuming, or not.
enum Attempt {
    Dropped(Error),
    Fatal(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_hide_their_values() {
        let h: ExtraHeader = "X-Token:  s3cret ".parse().unwrap();
        assert_eq!(h.name, "x-token");
        assert_eq!(h.value, "s3cret");
        assert!(!format!("{h:?}").contains("s3cret"));
        assert!("no colon".parse::<ExtraHeader>().is_err());
        assert!("bad name: x".parse::<ExtraHeader>().is_err());
        assert!("X: a\nb".parse::<ExtraHeader>().is_err());
    }

    #[test]
    fn identities_and_if_range() {
        let etag = Validators {
            etag: Some("\"5f-1\"".into()),
            last_modified: Some("Tue, 01 Dec 2026 10:00:00 GMT".into()),
            length: Some(5),
        };
        assert_eq!(etag.identity().as_deref(), Some("etag \"5f-1\""));
        assert_eq!(etag.if_range().unwrap(), "\"5f-1\"");
        let weak = Validators {
            etag: Some("W/\"x\"".into()),
            ..etag.clone()
        };
        assert_eq!(weak.if_range().unwrap(), "Tue, 01 Dec 2026 10:00:00 GMT");
        let none = Validators::default();
        assert_eq!(none.identity(), None);
        assert!(none.if_range().is_none());
        assert!(!none.same_as(&none), "nothing known is never the same");
        assert!(etag.same_as(&etag.clone()));
    }
}
