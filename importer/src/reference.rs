//! Where a container disk comes from, written as skopeo users write it.
//!
//! - `docker://HOST[:PORT]/REPO[:TAG][@sha256:…]`: an image in a registry. Docker Hub
//!   names are normalised as docker does (`docker://fedora` is
//!   `docker.io/library/fedora:latest`).
//! - `oci:DIR[:REF]`: an OCI image layout directory; `REF` names an entry of its
//!   `index.json` by its `org.opencontainers.image.ref.name` annotation. Without `REF`
//!   the index must hold exactly one image, as skopeo requires.
//!
//! ```
//! use bootsource_importer::SourceRef;
//! let src: SourceRef = "docker://127.0.0.1:5000/os/fedora:41".parse().unwrap();
//! assert_eq!(src.to_string(), "docker://127.0.0.1:5000/os/fedora:41");
//! let layout: SourceRef = "oci:./layout:41".parse().unwrap();
//! assert!(matches!(layout, SourceRef::Layout { .. }));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Digest;

/// A parsed image source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    /// An image in a registry.
    Registry(RegistryRef),
    /// An image in an OCI layout directory.
    Layout {
        /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick, if any.
        tag: Option<String>,
    },
}

/// An image in a registry: a repository and a tag, a digest, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef {
    inner: oci_client::Reference,
}

/// Why a source string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseSourceError {
    /// No `docker://` or `oci:` prefix.
    #[error("unsupported transport in {0:?}: use docker://HOST/REPO:TAG or oci:DIR[:TAG]")]
    UnknownTransport(String),
    /// The registry reference does not parse.
    #[error("invalid registry reference {text:?}: {reason}")]
    InvalidReference {
        /// What the user wrote after `docker://`.
        text: String,
        /// Why it is invalid.
        reason: String,
    },
    /// `oci:` with no directory.
    #[error("oci: needs a directory, as in oci:./layout:tag")]
    EmptyLayoutPath,
}

impl RegistryRef {
    /// `host[:port]`, e.g. `127.0.0.1:5000` or `docker.io`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path, e.g. `os/fedora`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The pinned digest, if the reference names one.
    pub fn digest(&self) -> Option<Digest> {
        // Parsing already checked the digest's form.
        self.inner.digest().and_then(|d| d.parse().ok())
    }

    /// The same repository at `digest`.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            inner: oci_client::Reference::with_digest(
                self.registry().to_owned(),
                self.repository().to_owned(),
                digest.to_string(),
            ),
        }
    }

    /// The oci-client form, for the registry client.
    pub(crate) fn as_oci(&self) -> &oci_client::Reference {
        &self.inner
    }

    /// The same reference served by another registry host (a mirror).
    pub fn on_registry(&self, registry: &str) -> Self {
        let mut inner = self.inner.clone();
        inner.set_mirror_registry(registry.to_owned());
        Self { inner }
    }
}

impl FromStr for RegistryRef {
    type Err = ParseSourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| ParseSourceError::InvalidReference {
            text: text.to_owned(),
            reason,
        };
        let inner = oci_client::Reference::try_from(text).map_err(|e| invalid(e.to_string()))?;
        if let Some(digest) = inner.digest() {
            digest
                .parse::<Digest>()
                .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(Self { inner })
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.whole())
    }
}

impl FromStr for SourceRef {
    type Err = ParseSourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(Self::Registry(rest.parse()?));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // As in containers/image: the directory ends at the first ':'.
            let (dir, tag) = match rest.split_once(':') {
                Some((dir, tag)) => (dir, Some(tag.to_owned()).filter(|t| !t.is_empty())),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(ParseSourceError::EmptyLayoutPath);
            }
            return Ok(Self::Layout {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        Err(ParseSourceError::UnknownTransport(text.to_owned()))
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry(r) => write!(f, "docker://{r}"),
            Self::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Self::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_are_normalised() {
        let src: SourceRef = "docker://fedora".parse().unwrap();
        assert_eq!(src.to_string(), "docker://docker.io/library/fedora:latest");
    }

    #[test]
    fn digest_pinned_reference_keeps_its_digest() {
        let d = Digest::of(b"m");
        let SourceRef::Registry(r) = format!("docker://127.0.0.1:5000/os/f@{d}").parse().unwrap()
        else {
            panic!("not a registry ref")
        };
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.tag(), None);
        assert_eq!(r.registry(), "127.0.0.1:5000");
    }

    #[test]
    fn layout_tag_is_optional() {
        assert_eq!(
            "oci:/srv/layout".parse::<SourceRef>().unwrap(),
            SourceRef::Layout {
                dir: "/srv/layout".into(),
                tag: None
            }
        );
        assert_eq!(
            "oci:layout:v1".parse::<SourceRef>().unwrap(),
            SourceRef::Layout {
                dir: "layout".into(),
                tag: Some("v1".into())
            }
        );
    }

    #[test]
    fn bad_sources_are_refused() {
        for bad in [
            "fedora",
            "http://x/y",
            "oci:",
            "docker://",
            "docker://a/b c",
            "docker://h/r@sha256:12",
        ] {
            assert!(bad.parse::<SourceRef>().is_err(), "{bad} accepted");
        }
    }
}
