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
        /// The image reference involved.
        reference: String,
        /// What happened, with the registry's own codes and the URL.
        #[source]
        source: Box<crate::RegistryError>,
    },
    /// Credentials could not be read from an auth file.
    #[error("cannot use the credentials for {registry} in {path}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// The auth file consulted.
        path: PathBuf,
        /// What was wrong.
        #[source]
        problem: crate::origin::CredentialsProblem,
    },
    /// A TLS setting (CA directory, certificate) could not be used.
    #[error("TLS settings for {host}")]
    Tls {
        /// The registry host.
        host: String,
        /// What is wrong.
        #[source]
        problem: crate::TlsProblem,
    },
    /// The OCI layout directory is unusable.
    #[error("OCI layout {dir}: {problem}")]
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// What is wrong with it.
        problem: crate::LayoutProblem,
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
    #[error("invalid manifest")]
    InvalidManifest(#[source] crate::manifest::ManifestProblem),
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

    // ---- trust ----
    /// The signature policy or `registries.d` cannot be used.
    #[error("signature policy {path}")]
    Policy {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: crate::trust::PolicyProblem,
    },
    /// An image's signatures could not be gathered.
    #[error("cannot read signatures at {location}")]
    Signatures {
        /// Where they were looked for.
        location: String,
        /// What went wrong.
        #[source]
        problem: crate::trust::FetchProblem,
    },
    /// The signature policy refuses the image.
    #[error("the signature policy refuses {image}")]
    Refused {
        /// The image as named.
        image: String,
        /// Which policy, which section, and why.
        #[source]
        refusal: Box<crate::trust::PolicyRefusal>,
    },
    // ---- single-file sources (https://, file:, -) ----
    /// An HTTP(S) request for a disk file (or its checksum file) failed.
    #[error("HTTP request for {url} failed")]
    Http {
        /// The URL asked for.
        url: String,
        /// What happened: the server's status and first words, or the transport error.
        #[source]
        source: Box<crate::RegistryError>,
    },
    /// Reading a single-file source failed (the network without a way to resume, a
    /// local disk, the pipe).
    #[error("reading {image} at byte {offset} failed")]
    SourceRead {
        /// The source as given.
        image: String,
        /// Bytes received before the failure.
        offset: u64,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes received do not match the checksum given for them.
    #[error("checksum mismatch for {image}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The source as given.
        image: String,
        /// The checksum given (`--checksum`, the checksum file).
        expected: Box<crate::Checksum>,
        /// The checksum of the bytes received.
        actual: Box<crate::Checksum>,
    },
    /// A single-file source cannot be imported as it is.
    #[error("{image}: {problem}")]
    FileSource {
        /// The source as given.
        image: String,
        /// What is wrong.
        problem: crate::FileProblem,
    },
    /// The checksum file cannot be used.
    #[error("checksum file {url}: {problem}")]
    ChecksumFile {
        /// Where it came from.
        url: String,
        /// What is wrong.
        problem: crate::ChecksumFileProblem,
    },
    /// A single file is not a valid compressed stream or tar archive.
    #[error("{image} is not a valid {what}")]
    CorruptFile {
        /// The source as given.
        image: String,
        /// `gzip stream`, `xz stream`, `tar archive`, …
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A tar archive given as a single file does not hold exactly one disk file.
    #[error("{image}: {problem}")]
    BadArchive {
        /// The source as given.
        image: String,
        /// What is wrong (no file, several, a link, an unsafe path, a bad sparse map).
        problem: crate::ArchiveProblem,
    },
    /// A raw disk's stream was longer or shorter than its headers announced.
    #[error("the raw disk is {actual} bytes long, not the {announced} bytes announced")]
    DiskLengthMismatch {
        /// From the compression's headers (zstd frame, xz index).
        announced: u64,
        /// Bytes that arrived (at least).
        actual: u64,
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
    #[error("layer {layer}: {problem}")]
    BadDiskEntry {
        /// The layer holding the entry.
        layer: Digest,
        /// What is wrong (several files, a link, an unsafe path, …).
        problem: crate::DiskEntryProblem,
    },
    /// The disk file is in a format we do not convert.
    #[error(
        "disk/{name} is {format}, which bootsource does not convert; publish the disk file uncompressed"
    )]
    UnsupportedDiskFormat {
        /// The file name under disk/.
        name: String,
        /// The format we recognised.
        format: &'static str,
    },

    // ---- qcow2 ----
    /// The image uses a feature a standalone streaming import cannot honour.
    #[error("qcow2 image uses {0}, which is not supported")]
    Qcow2Unsupported(crate::qcow2::Qcow2Feature),
    /// The image's metadata is inconsistent.
    #[error("invalid qcow2 image at byte {offset:#x}: {problem}")]
    Qcow2Invalid {
        /// Offset in the qcow2 file of the faulty field or table.
        offset: u64,
        /// What is wrong.
        problem: crate::qcow2::Qcow2Problem,
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
    #[error("compressed cluster at byte {host:#x} (guest {guest:#x}) is corrupt")]
    CorruptCluster {
        /// Offset of the compressed bytes in the qcow2 file.
        host: u64,
        /// Guest offset it maps to.
        guest: u64,
        /// What the decompressor said.
        #[source]
        source: crate::qcow2::InflateError,
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
    LimitExceeded(crate::qcow2::Limit),

    // ---- VMDK, VHD, VHDX, VDI ----
    /// The image's metadata is inconsistent.
    #[error("invalid {format} image at byte {offset:#x}: {problem}")]
    InvalidImage {
        /// The format.
        format: crate::DiskFormat,
        /// Offset in the image file of the faulty field, table or block.
        offset: u64,
        /// What is wrong.
        problem: crate::blockmap::ImageProblem,
    },
    /// The image is of a kind a standalone streaming import cannot convert.
    #[error("disk is {feature}, which is not supported")]
    UnsupportedImage {
        /// The format.
        format: crate::DiskFormat,
        /// What it is.
        feature: crate::blockmap::ImageFeature,
    },
    /// A table or block lies beyond the end of the image: it was truncated.
    #[error(
        "truncated {format} image: {what} at {offset:#x} (+{len} bytes) lies past its end at {stream_len:#x}"
    )]
    ImagePastEnd {
        /// The format.
        format: crate::DiskFormat,
        /// `BAT`, `grain table`, `data block`, …
        what: &'static str,
        /// Where it should start.
        offset: u64,
        /// How long it is.
        len: u64,
        /// The image's length.
        stream_len: u64,
    },
    /// Reading the image needed more passes than any valid layout needs.
    #[error(
        "{format} image still has unresolved blocks after {passes} passes; its tables are inconsistent"
    )]
    ImageTooManyPasses {
        /// The format.
        format: crate::DiskFormat,
        /// Passes made.
        passes: u32,
    },
    /// A streaming limit would be exceeded.
    #[error("{format} image exceeds the streaming limit: {limit}")]
    ImageLimit {
        /// The format.
        format: crate::DiskFormat,
        /// Which limit.
        limit: crate::qcow2::Limit,
    },

    /// The disk is larger than the configured limit (`max_virtual_size`).
    #[error(
        "the disk's virtual size of {virtual_size} bytes exceeds the limit of {limit} bytes (max_virtual_size)"
    )]
    DiskTooLarge {
        /// What the image says.
        virtual_size: u64,
        /// The limit in force.
        limit: u64,
    },

    // ---- the place written ----
    /// Writing the disk into its place failed.
    #[error("cannot write the disk")]
    Place(#[from] bootsource_place::Error),
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
    /// The registry's answer, when it answered with an error status.
    fn status(&self) -> Option<(u16, &[String])> {
        match self {
            Self::Registry { source, .. } | Self::Http { source, .. } => match &**source {
                crate::RegistryError::Status { status, codes, .. } => Some((*status, codes)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether a registry asked us to slow down (HTTP 429 / `TOOMANYREQUESTS`).
    pub fn is_rate_limited(&self) -> bool {
        self.status().is_some_and(|(status, codes)| {
            status == 429 || codes.iter().any(|c| c == "TOOMANYREQUESTS")
        })
    }

    /// The registry's `Retry-After`, as sent (with a 429 or a 503).
    pub fn retry_after(&self) -> Option<&str> {
        match self {
            Self::Registry { source, .. } | Self::Http { source, .. } => match &**source {
                crate::RegistryError::Status { retry_after, .. } => retry_after.as_deref(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the registry refused our credentials (or their absence).
    pub fn is_unauthorized(&self) -> bool {
        self.status().is_some_and(|(status, codes)| {
            matches!(status, 401 | 403)
                || codes.iter().any(|c| c == "UNAUTHORIZED" || c == "DENIED")
        })
    }

    /// Whether the registry's TLS certificate was not trusted (unknown CA, wrong name,
    /// expired), found by the TLS library's error type in the cause chain.
    pub fn is_untrusted_certificate(&self) -> bool {
        self.causes().any(|cause| {
            cause.downcast_ref::<rustls::Error>().is_some_and(|e| {
                matches!(
                    e,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
                )
            })
        })
    }

    /// Whether the registry answered a TLS handshake with something that is not TLS
    /// (a plain-HTTP registry reached over HTTPS).
    pub fn is_not_tls(&self) -> bool {
        self.causes().any(|cause| {
            cause
                .downcast_ref::<rustls::Error>()
                .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(_)))
        })
    }

    /// Whether the registry could not be reached at all (refused, unreachable, timed
    /// out), found by the I/O error kind in the cause chain.
    pub fn is_unreachable(&self) -> bool {
        use std::io::ErrorKind as Kind;
        self.causes().any(|cause| {
            cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                matches!(
                    e.kind(),
                    Kind::ConnectionRefused
                        | Kind::HostUnreachable
                        | Kind::NetworkUnreachable
                        | Kind::TimedOut
                )
            })
        })
    }

    /// This error's causes, innermost last, looking inside `io::Error`s too (TLS and
    /// connection errors travel wrapped in them).
    fn causes(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let mut next = std::error::Error::source(self);
        std::iter::from_fn(move || {
            let current = next?;
            next = current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| {
                    io.get_ref()
                        .map(|inner| inner as &(dyn std::error::Error + 'static))
                })
                .or_else(|| current.source());
            Some(current)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistryError;

    fn answered(status: u16, codes: &[&str]) -> Error {
        Error::Registry {
            reference: "r/x:1".into(),
            source: Box::new(RegistryError::Status {
                url: "http://r/v2/x/manifests/1".into(),
                status,
                codes: codes.iter().map(|c| (*c).to_owned()).collect(),
                message: "m".into(),
                retry_after: Some("30".into()),
            }),
        }
    }

    #[test]
    fn recognises_rate_limiting_by_status_or_error_code() {
        assert!(answered(429, &[]).is_rate_limited());
        assert!(!answered(503, &[]).is_rate_limited());
        assert!(answered(400, &["TOOMANYREQUESTS"]).is_rate_limited());
        assert_eq!(answered(429, &[]).retry_after(), Some("30"));
        assert!(!Error::NoDisk.is_rate_limited());
    }

    #[test]
    fn recognises_refused_credentials() {
        assert!(answered(401, &[]).is_unauthorized());
        assert!(answered(400, &["DENIED"]).is_unauthorized());
        assert!(!answered(404, &["MANIFEST_UNKNOWN"]).is_unauthorized());
    }
}
