//! An OCI image layout directory (`oci:DIR[:REF]`), for air-gapped nodes.
//!
//! `DIR/oci-layout` marks the layout, `DIR/index.json` lists images (tagged by their
//! `org.opencontainers.image.ref.name` annotation) and `DIR/blobs/sha256/<hex>` holds
//! every manifest and layer. Blobs are read by a thread that verifies them exactly as
//! registry downloads are: a layout on removable media is no more trusted than a
//! network. Its files are opened below the directory without following links, must
//! be regular files, and are capped before they are read into memory
//! ([`crate::local_file`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blob::{self, BlobReader};
use crate::local_file::Dir;
use crate::manifest::{self, Layer, Manifest};
use crate::progress::{Cancel, Progress};
use crate::{Digest, Error, Result};

/// `oci-layout` holds one small JSON object.
const MARKER_LIMIT: u64 = 64 << 10;
/// `index.json` and manifests: the bound a registry's manifests have.
const MANIFEST_LIMIT: u64 = manifest::MAX_MANIFEST_BYTES as u64;

#[derive(Debug)]
pub(crate) struct Layout {
    dir: Dir,
    /// The descriptor `index.json` gives for the chosen image.
    top: Digest,
}

impl Layout {
    /// Opens `dir` and finds the image tagged `tag`, or the only image without a tag.
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<Self> {
        let err = |problem| Error::Layout {
            dir: dir.to_owned(),
            problem,
        };
        let layout = Dir::open(dir)?;
        let marker = match layout.read_file("oci-layout".as_ref(), MARKER_LIMIT) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(err(LayoutProblem::NoMarker));
            }
            other => other?,
        };
        if !String::from_utf8_lossy(&marker).contains("imageLayoutVersion") {
            return Err(err(LayoutProblem::NoVersion));
        }
        let index = layout.read_file("index.json".as_ref(), MANIFEST_LIMIT)?;
        let Manifest::Index(entries) = manifest::parse(&index, Some(manifest::OCI_INDEX))? else {
            return Err(err(LayoutProblem::NotAnIndex));
        };
        let chosen = match tag {
            Some(t) => entries.iter().find(|e| e.ref_name.as_deref() == Some(t)),
            None if entries.len() == 1 => entries.first(),
            None => {
                return Err(err(LayoutProblem::SeveralImages(entries.len())));
            }
        };
        let top = chosen
            .ok_or_else(|| {
                err(LayoutProblem::NoSuchTag {
                    tag: tag.unwrap_or_default().to_owned(),
                    tags: entries.iter().filter_map(|e| e.ref_name.clone()).collect(),
                })
            })?
            .digest;
        Ok(Self { dir: layout, top })
    }

    pub fn top_digest(&self) -> Digest {
        self.top
    }

    /// `blobs/sha256/<hex>`, below the layout directory.
    fn blob_path(digest: &Digest) -> PathBuf {
        Path::new("blobs/sha256").join(digest.hex())
    }

    /// The chosen image's manifest (or the one with `digest`) and the digest it must have.
    pub fn manifest(&self, digest: Option<Digest>) -> Result<(bytes::Bytes, Option<Digest>)> {
        let digest = digest.unwrap_or(self.top);
        let bytes = self
            .dir
            .read_file(&Self::blob_path(&digest), MANIFEST_LIMIT)?;
        Ok((bytes.into(), Some(digest)))
    }

    pub fn open_blob(&self, layer: &Layer, progress: Arc<Progress>, cancel: Cancel) -> BlobReader {
        let (verifier, reader) = blob::channel(layer, progress);
        let file = self.dir.open_file(&Self::blob_path(&layer.digest));
        let digest = layer.digest;
        blob::pump_on_thread(
            "layout-blob",
            move || file,
            verifier,
            cancel,
            move |offset, e| read_error(digest, offset, e),
        );
        reader
    }
}

fn read_error(digest: Digest, offset: u64, source: std::io::Error) -> Error {
    Error::BlobRead {
        digest,
        offset,
        source,
    }
}

/// Why a directory is not a usable OCI layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutProblem {
    /// No `oci-layout` file.
    #[error("no oci-layout file: not an OCI layout")]
    NoMarker,
    /// An `oci-layout` file without `imageLayoutVersion`.
    #[error("oci-layout does not declare an imageLayoutVersion")]
    NoVersion,
    /// `index.json` is a manifest, not an index.
    #[error("index.json is not an image index")]
    NotAnIndex,
    /// Several untagged images, and no tag named.
    #[error("holds {0} images; name one as oci:DIR:TAG")]
    SeveralImages(usize),
    /// No image under the tag named.
    #[error("no image tagged {tag:?} (tags: {})", tags.join(", "))]
    NoSuchTag {
        /// The tag asked for.
        tag: String,
        /// The tags the layout has.
        tags: Vec<String>,
    },
}
