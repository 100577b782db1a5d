//! Blobs: bytes, the digest they are known by, and their media type; layer compression.

use std::fmt;
use std::io::Write as _;

use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use super::media_type;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How a layer's tar is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Compresses `tar` (gzip with a zero mtime, zstd level 3: deterministic).
pub fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(tar).unwrap();
            gz.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

/// A layer media type, and the compression it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerType {
    OciTar,
    OciTarGzip,
    OciTarZstd,
    /// Docker schema 2 `rootfs.diff.tar.gzip`.
    DockerTarGzip,
}

impl LayerType {
    pub fn media_type(self) -> &'static str {
        match self {
            LayerType::OciTar => media_type::OCI_LAYER_TAR,
            LayerType::OciTarGzip => media_type::OCI_LAYER_GZIP,
            LayerType::OciTarZstd => media_type::OCI_LAYER_ZSTD,
            LayerType::DockerTarGzip => media_type::DOCKER_LAYER_GZIP,
        }
    }

    pub fn compression(self) -> Compression {
        match self {
            LayerType::OciTar => Compression::None,
            LayerType::OciTarGzip | LayerType::DockerTarGzip => Compression::Gzip,
            LayerType::OciTarZstd => Compression::Zstd,
        }
    }
}

/// Content-addressed bytes with a media type.
///
/// The digest is fixed when the blob is made; only [`Blob::tampered`] makes bytes that no
/// longer hash to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    media_type: String,
    digest: String,
    bytes: Vec<u8>,
    /// sha256 of the uncompressed tar, for a layer's config `diff_ids`.
    diff_id: Option<String>,
}

impl Blob {
    /// Any bytes under any media type (e.g. zstd bytes typed as gzip).
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
            diff_id: None,
        }
    }

    /// A layer: `tar` compressed as `layer_type` says.
    pub fn layer(tar: &[u8], layer_type: LayerType) -> Blob {
        Blob {
            diff_id: Some(sha256_digest(tar)),
            ..Blob::new(
                layer_type.media_type(),
                compress(tar, layer_type.compression()),
            )
        }
    }

    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The digest the blob is known by (`sha256:…`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The uncompressed tar's digest for a layer, else the blob digest.
    pub fn diff_id(&self) -> &str {
        self.diff_id.as_deref().unwrap_or(&self.digest)
    }

    /// Whether the bytes no longer hash to the digest.
    pub fn is_tampered(&self) -> bool {
        sha256_digest(&self.bytes) != self.digest
    }

    /// An OCI descriptor `{mediaType, digest, size}`.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size(),
        })
    }

    /// The same bytes announced under another media type, e.g. a zstd layer typed as gzip.
    pub fn with_media_type(&self, media_type: &str) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            ..self.clone()
        }
    }

    /// A new blob (new digest) with `garbage` after these bytes, e.g. after a gzip member.
    pub fn with_appended(&self, garbage: &[u8]) -> Blob {
        let mut bytes = self.bytes.clone();
        bytes.extend_from_slice(garbage);
        Blob {
            diff_id: self.diff_id.clone(),
            ..Blob::new(&self.media_type, bytes)
        }
    }

    /// The same digest over changed bytes: what a corrupted or malicious registry serves.
    pub fn tampered(&self, change: impl FnOnce(&mut Vec<u8>)) -> Blob {
        let mut blob = self.clone();
        change(&mut blob.bytes);
        assert!(blob.is_tampered(), "the change left the bytes as they were");
        blob
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("media_type", &self.media_type)
            .field("digest", &self.digest)
            .field("size", &self.bytes.len())
            .field("tampered", &self.is_tampered())
            .finish()
    }
}
