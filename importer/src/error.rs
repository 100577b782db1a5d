//! The importer's one error type.
//!
//! Variants say what went wrong and carry where (layer digest, file offset); they do not
//! repeat their source's text, which the reporter prints as the cause chain.

use std::path::PathBuf;

use crate::Digest;

/// Result with the importer's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop an import or an inspection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- registry and layout sources ----
    /// The registry answered with an error or could not be reached.
    #[error("registry request for {reference} failed")]
    Registry {
        /// The image reference or URL involved.
        reference: String,
        /// The client's error, with the registry's own code and URL.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// Credentials could not be read from an auth file.
    #[error("cannot read credentials for {registry} from {path}: {reason}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// The auth file consulted.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A TLS setting (CA directory, certificate) could not be used.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The OCI layout directory is unusable.
    #[error("OCI layout {dir}: {reason}")]
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file that must be a regular file is something else (a FIFO, a device, …).
    #[error("{path} is a {kind}, not a regular file")]
    NotRegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead: `FIFO`, `character device`, `directory`, …
        kind: &'static str,
    },
    /// A symbolic link inside an OCI layout, which is never followed.
    #[error("{path} is a symbolic link; links inside an OCI layout are not followed")]
    LinkRefused {
        /// The link.
        path: PathBuf,
    },
    /// A local file holds more than anything of its kind may.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most we read.
        limit: u64,
    },
    /// A manifest or index could not be understood.
    #[error("invalid manifest: {reason}")]
    InvalidManifest {
        /// What is wrong.
        reason: String,
    },
    /// No entry of an index matches the wanted platform.
    #[error("no image for platform {wanted} (the index offers: {available})")]
    NoMatchingPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms the index lists.
        available: String,
    },
    /// A layer's media type is not a tar layer we can decompress.
    #[error(
        "layer {layer} has media type {media_type}, which is not a tar, tar+gzip or tar+zstd layer"
    )]
    UnsupportedLayerType {
        /// The layer.
        layer: Digest,
        /// Its media type.
        media_type: String,
    },

    // ---- blob integrity ----
    /// The bytes received do not hash to the digest that names them.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// `layer`, `manifest`, …
        what: &'static str,
        /// The digest the manifest names.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// The blob had a different length than its descriptor says.
    #[error("size mismatch for blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size the manifest names.
        expected: u64,
        /// Bytes actually received (so far, if more than expected).
        actual: u64,
    },
    /// Reading a blob failed (network, file).
    #[error("reading blob {digest} at byte {offset} failed")]
    BlobRead {
        /// The blob.
        digest: Digest,
        /// Bytes received before the failure.
        offset: u64,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    // ---- layer contents ----
    /// The layer is not a readable (compressed) tar.
    #[error("layer {layer} is not a valid {what}")]
    CorruptLayer {
        /// The layer.
        layer: Digest,
        /// `gzip stream`, `zstd stream`, `tar archive`.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The layers hold no disk file.
    #[error("no disk image found: no regular file under disk/ in any layer")]
    NoDisk,
    /// The disk/ directory breaks the container-disk rules.
    #[error("layer {layer}: {reason}")]
    BadDiskEntry {
        /// The layer holding the entry.
        layer: Digest,
        /// What is wrong (several files, a link, an unsafe path, …).
        reason: String,
    },
    /// The disk file is in a format we do not convert.
    #[error("disk/{name} is {format}, which bootsource does not convert; publish qcow2 or raw")]
    UnsupportedDiskFormat {
        /// The file name under disk/.
        name: String,
        /// The format we recognised.
        format: &'static str,
    },

    // ---- qcow2 ----
    /// The image uses a feature a standalone streaming import cannot honour.
    #[error("qcow2 image uses {0}, which is not supported")]
    Qcow2Unsupported(String),
    /// The image's metadata is inconsistent.
    #[error("invalid qcow2 image at byte {offset:#x}: {reason}")]
    Qcow2Invalid {
        /// Offset in the qcow2 file of the faulty field or table.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A table or cluster lies beyond the end of the image: it was truncated.
    #[error(
        "truncated qcow2 image: {what} at {offset:#x} (+{len} bytes) lies past its end at {stream_len:#x}"
    )]
    Qcow2PastEnd {
        /// `L1 table`, `L2 table`, `data cluster`, …
        what: &'static str,
        /// Where it should start.
        offset: u64,
        /// How long it is.
        len: u64,
        /// The image's length.
        stream_len: u64,
    },
    /// A compressed cluster did not decompress to a full cluster.
    #[error("compressed cluster at byte {host:#x} (guest {guest:#x}) is corrupt: {reason}")]
    CorruptCluster {
        /// Offset of the compressed bytes in the qcow2 file.
        host: u64,
        /// Guest offset it maps to.
        guest: u64,
        /// What the decompressor said.
        reason: String,
    },
    /// Reading the image needed more passes than any valid layout needs.
    #[error(
        "qcow2 image still has unresolved clusters after {passes} passes; its tables are inconsistent"
    )]
    TooManyPasses {
        /// Passes made.
        passes: u32,
    },
    /// A decoder limit would be exceeded.
    #[error("qcow2 image exceeds the streaming limit: {0}")]
    LimitExceeded(String),

    // ---- target ----
    /// The target cannot be used.
    #[error("target {path}: {reason}")]
    Target {
        /// The target path.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The block device is smaller than the disk.
    #[error("target {path} holds {size} bytes but the disk needs {needed}")]
    TargetTooSmall {
        /// The device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The virtual size of the disk.
        needed: u64,
    },
    /// Writing or syncing the target failed.
    #[error("writing {path} at byte {offset} failed")]
    Write {
        /// The target.
        path: PathBuf,
        /// The guest offset being written.
        offset: u64,
        /// The cause (ENOSPC, EIO, …).
        #[source]
        source: std::io::Error,
    },
    /// An I/O operation on a local path failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`opening`, `reading`, …).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The import was cancelled.
    #[error("import cancelled")]
    Cancelled,
    /// A pipeline thread ended unexpectedly; a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether a registry asked us to slow down (HTTP 429 / `TOOMANYREQUESTS`).
    pub fn is_rate_limited(&self) -> bool {
        use oci_client::errors::{OciDistributionError as Oci, OciErrorCode};
        match self {
            Self::Registry {
                source: Oci::ServerError { code, .. },
                ..
            } => *code == 429,
            Self::Registry {
                source: Oci::RegistryError { envelope, .. },
                ..
            } => envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Toomanyrequests),
            _ => false,
        }
    }

    /// Whether the registry refused our credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        use oci_client::errors::{OciDistributionError as Oci, OciErrorCode};
        match self {
            Self::Registry {
                source: Oci::UnauthorizedError { .. } | Oci::AuthenticationFailure(_),
                ..
            } => true,
            Self::Registry {
                source: Oci::ServerError {
                    code: 401 | 403, ..
                },
                ..
            } => true,
            Self::Registry {
                source: Oci::RegistryError { envelope, .. },
                ..
            } => envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
            _ => false,
        }
    }

    pub(crate) fn qcow2_invalid(offset: u64, reason: impl Into<String>) -> Self {
        Self::Qcow2Invalid {
            offset,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use oci_client::errors::OciDistributionError as Oci;

    use super::*;

    fn registry(source: Oci) -> Error {
        Error::Registry {
            reference: "r/x:1".into(),
            source,
        }
    }

    #[test]
    fn recognises_rate_limiting_by_status_or_error_code() {
        let server = |code| Oci::ServerError {
            code,
            url: "http://r/v2/x/manifests/1".into(),
            message: "slow down".into(),
        };
        assert!(registry(server(429)).is_rate_limited());
        assert!(!registry(server(503)).is_rate_limited());
        let envelope: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"m"}]}"#)
                .unwrap();
        let err = registry(Oci::RegistryError {
            envelope,
            url: "u".into(),
        });
        assert!(err.is_rate_limited());
        assert!(!Error::NoDisk.is_rate_limited());
    }

    #[test]
    fn recognises_refused_credentials() {
        let unauthorized = Oci::UnauthorizedError { url: "u".into() };
        assert!(registry(unauthorized).is_unauthorized());
        let envelope: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"DENIED","message":"m"}]}"#).unwrap();
        assert!(
            registry(Oci::RegistryError {
                envelope,
                url: "u".into()
            })
            .is_unauthorized()
        );
        let missing: oci_client::errors::OciEnvelope =
            serde_json::from_str(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"m"}]}"#)
                .unwrap();
        assert!(
            !registry(Oci::RegistryError {
                envelope: missing,
                url: "u".into()
            })
            .is_unauthorized()
        );
    }
}
