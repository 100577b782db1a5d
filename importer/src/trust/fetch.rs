//! Gathering an image's signatures, before any of them is believed.
//!
//! From a registry image: the simple signatures in its lookaside store (a `file://`
//! directory or an `http(s)://` server, per [`super::lookaside`]), numbered from 1 up to
//! the first missing one, at most [`MAX_SIGNATURES`]; then, where `registries.d` says
//! `use-sigstore-attachments: true`, the cosign signatures attached in the registry as
//! the `sha256-<hex>.sig` tag. Both are looked up at the digest of the manifest being
//! imported (the platform's manifest for a multi-arch image, as skopeo does) and for
//! the repository actually contacted (a mirror's own configuration applies to it, as
//! in containers). An `oci:` layout carries no signatures, as in containers.
//!
//! Every read is capped ([`super::MAX_SIGNATURE_BYTES`] a signature), a lookaside blob
//! in an unknown format is an error, and nothing is trusted here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::cosign::SIGNATURE_ANNOTATION;
use super::lookaside::{RegistriesD, signature_url};
use super::reference::DockerRef;
use super::scope::Subject;
use super::{FetchProblem, MAX_SIGNATURE_BYTES};
use crate::origin::Origin;
use crate::{Digest, Error, RegistryOptions, Result};

/// More signatures than this for one manifest is taken for a broken server.
pub const MAX_SIGNATURES: usize = 128;

/// A signature as found, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// A GPG simple signature (an OpenPGP message).
    Simple {
        /// Where it was found.
        location: String,
        /// The OpenPGP bytes.
        bytes: Vec<u8>,
    },
    /// A cosign signature attached in the registry.
    Sigstore {
        /// Where it was found.
        location: String,
        /// The layer's media type.
        media_type: String,
        /// The layer's bytes: the signed payload.
        payload: Vec<u8>,
        /// The base64 signature annotation, if present.
        signature: Option<String>,
    },
}

impl Signature {
    /// Where the signature was found.
    pub fn location(&self) -> &str {
        match self {
            Self::Simple { location, .. } | Self::Sigstore { location, .. } => location,
        }
    }
}

/// Every signature of manifest `digest` of the image `origin` serves.
pub async fn signatures(
    origin: &Origin,
    fetched: &Subject,
    digest: &Digest,
    registries: &RegistriesD,
    options: &RegistryOptions,
) -> Result<Vec<Signature>> {
    let (Origin::Registry(registry), Subject::Docker(reference)) = (origin, fetched) else {
        return Ok(Vec::new());
    };
    let base = registries.lookaside(fetched);
    let mut found = lookaside(&base, reference, digest, options).await?;
    if registries.use_sigstore_attachments(fetched) {
        found.extend(attachments(registry, reference, digest).await?);
    }
    Ok(found)
}

async fn lookaside(
    base: &str,
    reference: &DockerRef,
    digest: &Digest,
    options: &RegistryOptions,
) -> Result<Vec<Signature>> {
    let mut found = Vec::new();
    for index in 0..=MAX_SIGNATURES {
        let location = signature_url(base, reference, digest, index);
        if index == MAX_SIGNATURES {
            return Err(fetch_error(&location, FetchProblem::TooMany));
        }
        let Some(bytes) = read_location(&location, options).await? else {
            break;
        };
        let bytes = simple_signature(&bytes).map_err(|p| fetch_error(&location, p))?;
        found.push(Signature::Simple { location, bytes });
    }
    Ok(found)
}

/// One lookaside signature's bytes, `None` if there is none at `location`.
async fn read_location(location: &str, options: &RegistryOptions) -> Result<Option<Vec<u8>>> {
    let url =
        reqwest::Url::parse(location).map_err(|_| fetch_error(location, FetchProblem::BadUrl))?;
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| fetch_error(location, FetchProblem::BadUrl))?;
            read_file(&path)
        }
        "http" | "https" => {
            let bytes = crate::origin::fetch_url(&url, options, MAX_SIGNATURE_BYTES).await?;
            Ok(bytes.map(|b| b.to_vec()))
        }
        _ => Err(fetch_error(location, FetchProblem::BadUrl)),
    }
}

/// A regular file's bytes up to the cap; `None` if it does not exist.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let limit = u64::try_from(MAX_SIGNATURE_BYTES).expect("a small constant");
    match crate::read_regular_file(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The OpenPGP bytes of a lookaside blob: raw (what skopeo writes) or in containers'
/// newer `\0simple-signing\n` envelope.
fn simple_signature(blob: &[u8]) -> std::result::Result<Vec<u8>, FetchProblem> {
    const ENVELOPE: &[u8] = b"\0simple-signing\n";
    match blob.first() {
        None => Err(FetchProblem::Empty),
        // An OpenPGP packet tag: compressed data, one-pass signature or signature.
        Some(0xA0..=0xA3 | 0xC8 | 0x90..=0x92 | 0xC4 | 0x88..=0x8B | 0xC2) => Ok(blob.to_vec()),
        Some(0) if blob.starts_with(ENVELOPE) => Ok(blob[ENVELOPE.len()..].to_vec()),
        Some(_) => Err(FetchProblem::UnknownFormat),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentManifest {
    #[serde(default)]
    layers: Vec<AttachmentLayer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentLayer {
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

async fn attachments(
    registry: &crate::origin::RegistryHandle,
    reference: &DockerRef,
    digest: &Digest,
) -> Result<Vec<Signature>> {
    let tag = format!("sha256-{}.sig", digest.hex());
    let location = format!("{}:{tag}", reference.name());
    let limit = crate::manifest::MAX_MANIFEST_BYTES;
    let Some((bytes, content_type)) = registry.tagged_manifest(&tag, limit).await? else {
        return Ok(Vec::new());
    };
    if content_type.as_deref() != Some(crate::manifest::OCI_MANIFEST) {
        return Err(fetch_error(
            &location,
            FetchProblem::AttachmentType(content_type),
        ));
    }
    let manifest: AttachmentManifest = serde_json::from_slice(&bytes)
        .map_err(|_| fetch_error(&location, FetchProblem::AttachmentManifest))?;
    if manifest.layers.len() > MAX_SIGNATURES {
        return Err(fetch_error(&location, FetchProblem::TooMany));
    }
    let mut found = Vec::new();
    for layer in manifest.layers {
        let blob: Digest = layer
            .digest
            .parse()
            .map_err(|_| fetch_error(&location, FetchProblem::AttachmentManifest))?;
        let payload = registry.small_blob(&blob, MAX_SIGNATURE_BYTES).await?;
        found.push(Signature::Sigstore {
            location: format!("{location} layer {blob}"),
            media_type: crate::printable(&layer.media_type, 100),
            payload: payload.to_vec(),
            signature: layer.annotations.get(SIGNATURE_ANNOTATION).cloned(),
        });
    }
    Ok(found)
}

fn fetch_error(location: &str, problem: FetchProblem) -> Error {
    Error::Signatures {
        location: crate::printable(location, 300),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookaside_blobs_are_raw_openpgp_or_enveloped() {
        assert_eq!(simple_signature(&[0xA3, 1]).unwrap(), [0xA3, 1]);
        assert_eq!(
            simple_signature(b"\0simple-signing\n\xA3\x01").unwrap(),
            [0xA3, 1]
        );
        assert!(matches!(simple_signature(b""), Err(FetchProblem::Empty)));
        assert!(matches!(
            simple_signature(b"<html>"),
            Err(FetchProblem::UnknownFormat)
        ));
        assert!(matches!(
            simple_signature(b"\0sigstore-json\n{}"),
            Err(FetchProblem::UnknownFormat)
        ));
    }

    #[test]
    fn missing_files_end_the_list_and_large_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_file(&dir.path().join("signature-1"))
                .unwrap()
                .is_none()
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0xA3; MAX_SIGNATURE_BYTES + 1]).unwrap();
        assert!(matches!(read_file(&big), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn a_fifo_in_the_lookaside_store_is_refused_without_blocking() {
        use nix::sys::stat::Mode;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("signature-1");
        nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        assert!(matches!(
            read_file(&fifo),
            Err(Error::NotRegularFile { kind: "FIFO", .. })
        ));
    }
}
