//! What the registry side holds of an image's signatures: cosign attachments in the
//! registry itself, and simple signatures on a lookaside web server.
//!
//! A cosign attachment is a manifest tagged `sha256-<hex>.sig` in the image's own
//! repository; its layers are small blobs (each payload is a few hundred bytes). A
//! lookaside signature is one HTTP(S) GET per signature, numbered from 1 until the
//! server answers 404. Every body is capped like the registry's own answers, and
//! reached with the TLS settings of the host it is on.

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::response::{self, printable};
use super::session;
use super::{Registry, RegistryError, RegistryOptions};
use crate::manifest::OCI_MANIFEST;
use crate::{Digest, Error, Result};

impl Registry {
    /// The manifest tagged `tag` in this repository and its content type; `None` when
    /// the registry has no such tag (404).
    pub async fn tagged_manifest(
        &self,
        tag: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, Option<String>)>> {
        let url = self.session.url("manifests", tag);
        let answer = self
            .session
            .send(Method::GET, &url, |r| r.header(ACCEPT, OCI_MANIFEST))
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(RegistryError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| printable(v, 100));
        let bytes = response::read_capped(response, limit, "signature manifest")
            .await
            .map_err(|e| self.error(e))?;
        Ok(Some((bytes, content_type)))
    }

    /// A small blob of this repository, read up to `limit` bytes and checked against
    /// its digest.
    pub async fn small_blob(&self, digest: &Digest, limit: usize) -> Result<Bytes> {
        let url = self.session.url("blobs", &digest.to_string());
        let response = self
            .session
            .send(Method::GET, &url, |r| r)
            .await
            .map_err(|e| self.error(e))?;
        let bytes = response::read_capped(response, limit, "signature")
            .await
            .map_err(|e| self.error(e))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: "signature",
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }
}

/// GETs `url` (http or https) with the TLS settings of its host, reading at most
/// `limit` bytes; `None` when the server answers 404.
pub(crate) async fn fetch_url(
    url: &reqwest::Url,
    options: &RegistryOptions,
    limit: usize,
) -> std::result::Result<Option<Bytes>, Error> {
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    super::tls::install_crypto_provider();
    let insecure = !options.tls_verify || options.insecure_registries.contains(&host);
    let client = session::client(&host, options, insecure)?;
    let shown = printable(url.as_str(), 300);
    let lookaside = |source| Error::Registry {
        reference: shown.clone(),
        source: Box::new(source),
    };
    let answer = client.get(url.clone()).send().await.map_err(|source| {
        lookaside(RegistryError::Transport {
            url: shown.clone(),
            source,
        })
    })?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let answer = response::check(answer).await.map_err(lookaside)?;
    response::read_capped(answer, limit, "signature")
        .await
        .map(Some)
        .map_err(lookaside)
}
