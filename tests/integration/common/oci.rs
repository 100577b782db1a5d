//! Container disks built from Rust, byte for byte, for every odd case.
//!
//! A layer starts as tar bytes — from the [`Tar`] builder (any entry, any name, whiteouts,
//! links, devices, `..` paths, no footer) or from GNU tar for sparse entries
//! ([`gnu_tar`]) — and becomes a [`Blob`] once compressed and given a media type
//! ([`LayerType`], or any type with [`Blob::new`]). An [`Image`] (OCI or Docker schema 2
//! manifest, generated config) or an [`Index`] (OCI index or Docker manifest list) holds
//! blobs; both are [`Artifact`]s that [`Layout`] writes as an OCI layout directory and
//! `push` sends to a registry. Blobs keep the digest they were named by:
//! [`Blob::tampered`] changes the bytes under it (a digest mismatch), while
//! [`Blob::with_appended`] makes a new, honest blob (e.g. garbage after a gzip member).
//!
//! ```ignore
//! let tar = Tar::new().dir("disk/").file("disk/disk.img", &qcow2_bytes).finish();
//! let amd64 = Image::new(Schema::Oci, Platform::linux_amd64(), vec![Blob::layer(&tar, LayerType::OciTarZstd)]);
//! let arm64 = Image::new(Schema::Oci, Platform::linux_arm64(), vec![Blob::layer(&tar, LayerType::OciTarGzip)]);
//! let index = Index::new(Schema::Oci, vec![amd64, arm64]);
//! Layout::create(&dir).add(&index, "41");
//! ```

mod blob;
mod image;
mod layer;
mod layout;

pub use blob::{Blob, Compression, LayerType, compress, sha256_digest};
pub use image::{Artifact, Image, Index, Platform, Schema};
pub use layer::{GnuTarFormat, LongNames, Tar, gnu_tar};
pub use layout::Layout;

/// Media types of manifests, configs and layers.
pub mod media_type {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Whether `media_type` is an image manifest or an index (pushed to `/manifests/`).
    pub fn is_manifest(media_type: &str) -> bool {
        [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ]
        .contains(&media_type)
    }
}
