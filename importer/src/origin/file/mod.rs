//! Single-file origins: a disk file over HTTP(S), on this machine, or on standard input.
//!
//! No manifest and no layers: the file is one blob, and nothing names it before it
//! arrives. It is streamed through the same [`Verifier`](crate::blob) as a layer, which
//! always computes its sha256 (the version's digest) and checks the checksum the user
//! gave (`--checksum`, or the vendor's checksum file via `--checksum-url`), if any.
//!
//! What an origin can do differs, and the pipeline asks rather than assumes: its
//! length (`Content-Length`, the file's size; stdin has none), whether it can be read
//! again (stdin cannot: a qcow2 that needs a second pass, or a compressed raw disk
//! whose length is unknown, fails with a clear error), and its tail (for the length of
//! an xz file, from its index). See [`http`] for resuming, redirects and validators.

mod http;
mod local;
mod problem;

use std::sync::Arc;

use bytes::Bytes;

use crate::blob::{BlobName, BlobReader, Expected};
use crate::checksum_file;
use crate::progress::{Cancel, Progress};
use crate::{Checksum, Error, ImageRef, ImportOptions, Result};

pub use http::{ExtraHeader, HttpOptions, ParseHeaderError, Probe, Validators};
pub use problem::FileProblem;

/// A single disk file, opened.
#[derive(Debug)]
pub(crate) struct FileOrigin {
    image: Arc<str>,
    name: String,
    checksum: Option<Checksum>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Http(Arc<http::HttpFile>),
    Local(local::LocalFile),
    Stdin(local::StdinOnce),
}

impl FileOrigin {
    /// Opens `image` (a single-file source): for HTTP one `HEAD` (or `GET` where the
    /// server refuses `HEAD`) for the length and validators, and the checksum file.
    pub async fn connect(image: &ImageRef, options: &ImportOptions) -> Result<Self> {
        let shown: Arc<str> = image.to_string().into();
        let name = image.file_name().unwrap_or_else(|| "stdin".to_owned());
        let (kind, client) = match image {
            ImageRef::Http(url) => {
                let file = http::HttpFile::connect(url, options).await?;
                let client = Arc::new(file);
                (Kind::Http(Arc::clone(&client)), Some(client))
            }
            ImageRef::File(path) => (Kind::Local(local::LocalFile::open(path)?), None),
            ImageRef::Stdin => (Kind::Stdin(local::StdinOnce::default()), None),
            _ => return Err(Error::Internal(format!("{image} is not a single file"))),
        };
        let checksum = match (&options.http.checksum, &options.http.checksum_url) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(url)) => Some(checksum_from(url, &name, client.as_deref(), options).await?),
            (None, None) => None,
        };
        Ok(Self {
            image: shown,
            name,
            checksum,
            kind,
        })
    }

    /// The source as the user wrote it.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The file's name (`stdin` for standard input).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checksum the bytes are checked against, if any.
    pub fn checksum(&self) -> Option<&Checksum> {
        self.checksum.as_ref()
    }

    /// The file's length, where the origin says it.
    pub fn length(&self) -> Option<u64> {
        match &self.kind {
            Kind::Http(h) => h.validators().length,
            Kind::Local(l) => Some(l.length()),
            Kind::Stdin(_) => None,
        }
    }

    /// The HTTP validators of the file, for a later conditional poll.
    pub fn validators(&self) -> Option<Validators> {
        match &self.kind {
            Kind::Http(h) => Some(h.validators().clone()),
            _ => None,
        }
    }

    /// Whether the file can be read again from its start.
    pub fn rereadable(&self) -> bool {
        !matches!(self.kind, Kind::Stdin(_))
    }

    /// Streams the file from its start, verified; blocking callers only.
    pub fn open(&self, progress: Arc<Progress>, cancel: Cancel) -> Result<BlobReader> {
        let expected = Expected {
            name: BlobName::File(Arc::clone(&self.image)),
            size: self.length(),
            checksum: self.checksum.clone(),
        };
        let (verifier, reader) = crate::blob::channel_for(expected, progress);
        match &self.kind {
            Kind::Http(h) => http::HttpFile::stream(h, verifier, cancel),
            Kind::Local(l) => l.stream(&self.image, verifier, cancel)?,
            Kind::Stdin(s) => s.stream(&self.image, verifier, cancel)?,
        }
        Ok(reader)
    }

    /// The last `n` bytes (fewer if the file is shorter), where the origin can seek:
    /// `None` for stdin and for servers without ranged requests. Blocking.
    pub fn tail(&self, n: u64) -> Result<Option<Bytes>> {
        match &self.kind {
            Kind::Http(h) => h.tail_blocking(n),
            Kind::Local(l) => l.tail(&self.image, n).map(Some),
            Kind::Stdin(_) => Ok(None),
        }
    }
}

/// The checksum the file at `url` lists for `name`. Credentials and extra headers go
/// only to the disk file's own origin (`client`), never to another host.
async fn checksum_from(
    url: &reqwest::Url,
    name: &str,
    client: Option<&http::HttpFile>,
    options: &ImportOptions,
) -> Result<Checksum> {
    let bytes =
        http::fetch_small(url, client, options, checksum_file::MAX_CHECKSUM_FILE_BYTES).await?;
    let problem = |problem| Error::ChecksumFile {
        url: crate::printable(url.as_str(), 300),
        problem,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| problem(checksum_file::ChecksumFileProblem::NotText))?;
    checksum_file::find(text, name).map_err(problem)
}

/// What a poll of a single-file source found. See [`Probe`].
pub async fn probe(
    image: &ImageRef,
    options: &ImportOptions,
    known: Option<&Validators>,
) -> Result<Probe> {
    if let Some(c) = &options.http.checksum {
        return Ok(Probe::Checksum(c.clone()));
    }
    let ImageRef::Http(url) = image else {
        return Err(Error::Internal(format!("{image} cannot be polled")));
    };
    if let Some(checksum_url) = &options.http.checksum_url {
        let name = image.file_name().unwrap_or_default();
        let file = http::HttpFile::client_only(url, options)?;
        return Ok(Probe::Checksum(
            checksum_from(checksum_url, &name, Some(&file), options).await?,
        ));
    }
    http::HttpFile::client_only(url, options)?
        .probe(known)
        .await
}
