//! Where images come from: a registry or an OCI layout directory; and single disk
//! files (HTTP(S), local, stdin), which have no manifest: see [`file`].
//!
//! Both resolve a reference to the manifest for one platform and open its layer blobs
//! as verified byte streams ([`crate::blob`]). Resolving verifies every manifest's
//! digest; the digest reported for an image is the one its reference resolves to (the
//! index digest for a multi-arch tag), which is what a registry's `HEAD` returns and
//! what the poller compares.

pub(crate) mod auth;
pub(crate) mod file;
mod layout;
pub(crate) mod registry;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use crate::blob::BlobReader;
use crate::manifest::{self, Layer, Manifest, ManifestProblem};
use crate::progress::{Cancel, Progress};
use crate::{Digest, Error, ImageRef, Platform, Result};

pub(crate) use auth::parse_credentials;
pub use auth::{Credentials, CredentialsProblem, ParseCredentialsError};
pub use file::{ExtraHeader, FileProblem, HttpOptions, ParseHeaderError, Probe, Validators};
pub use layout::LayoutProblem;
pub(crate) use registry::{Registry as RegistryHandle, fetch_url};
pub use registry::{RegistryError, RegistryOptions};
pub use tls::TlsProblem;

/// An image resolved to one platform's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The digest the reference resolves to: the index digest for a multi-arch image.
    pub digest: Digest,
    /// The digest of the chosen platform's image manifest.
    pub manifest_digest: Digest,
    /// The platform chosen from an index, if the reference named one.
    pub platform: Option<Platform>,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
}

/// Where an image comes from, opened: a registry or an OCI layout. Cheap to clone; blob streams may be opened from any thread.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    Registry(Arc<registry::Registry>),
    Layout(Arc<layout::Layout>),
}

impl Origin {
    /// Prepares access to `image`; for a registry this builds the client (TLS, auth).
    pub async fn connect(image: &ImageRef, options: &RegistryOptions) -> Result<Self> {
        Ok(match image {
            ImageRef::Registry(r) => {
                Self::Registry(Arc::new(registry::Registry::connect(r, options).await?))
            }
            ImageRef::Layout { dir, tag } => {
                Self::Layout(Arc::new(layout::Layout::open(dir, tag.as_deref())?))
            }
            ImageRef::Http(_) | ImageRef::File(_) | ImageRef::Stdin => {
                return Err(Error::Internal(format!(
                    "{image} is a single file, not an image (see origin::file)"
                )));
            }
        })
    }

    /// The digest the reference points at now, as cheaply as the origin allows.
    pub async fn digest(&self) -> Result<Digest> {
        match self {
            Self::Registry(r) => r.head_digest().await,
            Self::Layout(l) => Ok(l.top_digest()),
        }
    }

    /// Resolves the reference to the image for `platform`.
    pub async fn resolve(&self, platform: &Platform) -> Result<ResolvedImage> {
        let (top_bytes, digest) = self.fetch_manifest(None).await?;
        match manifest::parse(&top_bytes, None)? {
            Manifest::Image(m) => Ok(ResolvedImage {
                digest,
                manifest_digest: digest,
                platform: None,
                layers: m.layers,
            }),
            Manifest::Index(entries) => {
                let entry = manifest::select_platform(&entries, platform)?;
                let (bytes, manifest_digest) = self.fetch_manifest(Some(entry.digest)).await?;
                let Manifest::Image(m) = manifest::parse(&bytes, Some(&entry.media_type))? else {
                    return Err(manifest::invalid(ManifestProblem::NestedIndex(
                        entry.digest,
                    )));
                };
                Ok(ResolvedImage {
                    digest,
                    manifest_digest,
                    platform: entry.platform.clone(),
                    layers: m.layers,
                })
            }
        }
    }

    /// The manifest the reference names (`None`) or the one with `digest`, checked
    /// against its digest.
    async fn fetch_manifest(&self, digest: Option<Digest>) -> Result<(bytes::Bytes, Digest)> {
        let (bytes, expected) = match self {
            Self::Registry(r) => r.manifest(digest).await?,
            Self::Layout(l) => l.manifest(digest)?,
        };
        if bytes.len() > manifest::MAX_MANIFEST_BYTES {
            return Err(manifest::invalid(ManifestProblem::TooLarge(bytes.len())));
        }
        let actual = Digest::of(&bytes);
        if let Some(expected) = expected.filter(|e| *e != actual) {
            return Err(Error::DigestMismatch {
                what: "manifest",
                expected,
                actual,
            });
        }
        Ok((bytes, actual))
    }

    /// Starts streaming `layer`; bytes received are counted in `progress`.
    /// `cancel` ends the stream with [`Error::Cancelled`], even mid-read.
    pub fn open_blob(&self, layer: &Layer, progress: Arc<Progress>, cancel: Cancel) -> BlobReader {
        match self {
            Self::Registry(r) => r.open_blob(layer, progress, cancel),
            Self::Layout(l) => l.open_blob(layer, progress, cancel),
        }
    }
}

/// How long to wait before the `resumes`-th resume of a download (1 for the first).
///
/// The first is at once: a dropped connection is usually a one-off, and every pause
/// costs the import that much link time (a cut at 50% cost 11% more time with a
/// 400 ms pause; `benches/resume.sh`). Drops that repeat back off, 400 ms doubling.
pub(crate) async fn pause_before_resume(resumes: u32) {
    if resumes > 1 {
        tokio::time::sleep(Duration::from_millis(200 << (resumes - 1))).await;
    }
}
