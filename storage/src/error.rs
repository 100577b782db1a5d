//! The crate's one error type.
//!
//! Each variant says what failed and carries the path, backend or volume id it failed
//! on; the underlying cause (an `io::Error`, a JSON error, a block-device error) is kept
//! as the `source`, never repeated in the message, so a reporter that prints the chain
//! prints each fact once.

use std::io;
use std::path::{Path, PathBuf};

use bootsource_blockdev::topology::{DeviceNumber, Overlap};

use crate::names::VolumeId;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace, source or backend name that cannot be a path component.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        /// `namespace`, `source` or `backend`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A manifest digest that is not `sha256:` followed by 64 lowercase hex digits.
    #[error(transparent)]
    InvalidDigest(#[from] bootsource_digest::ParseDigestError),
    /// The storage configuration is inconsistent.
    #[error("storage backend {backend}: {problem}")]
    Config {
        /// The backend the problem is in (or `*` for the store as a whole).
        backend: String,
        /// What is wrong and, where it helps, what to do instead.
        problem: crate::ConfigProblem,
    },
    /// A source names a backend the configuration does not define.
    #[error("unknown storage backend {0}")]
    UnknownBackend(String),
    /// A mutating call on a store opened with [`Store::open_read_only`](crate::Store::open_read_only).
    #[error("the store at {0} was opened read-only")]
    ReadOnly(PathBuf),
    /// A file-system operation failed.
    #[error("{op} {path} failed")]
    Io {
        /// What was attempted (`create`, `fsync`, `rename`, `FICLONE`, …).
        op: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A block device could not be opened, sized, zeroed or discarded.
    #[error("block device for {purpose}")]
    BlockDevice {
        /// What the device is for: `volume <id>`, or `the clone target`.
        purpose: String,
        /// The cause, which names the device.
        #[source]
        source: bootsource_blockdev::Error,
    },
    /// A disk being written (a staging volume, a clone) could not be opened,
    /// written, zeroed or synced.
    #[error("cannot complete the disk at {path}")]
    Place {
        /// The staging file or device.
        path: PathBuf,
        /// The cause.
        #[source]
        source: bootsource_place::Error,
    },
    /// The catalog is not valid JSON of the expected shape.
    #[error("catalog {path} is corrupt")]
    CatalogCorrupt {
        /// The catalog file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The catalog was written by a newer bootsource.
    #[error("catalog {path} has format {found}; this bootsource reads format {supported}")]
    CatalogFormat {
        /// The catalog file.
        path: PathBuf,
        /// The format it declares.
        found: u32,
        /// The format this code reads and writes.
        supported: u32,
    },
    /// The catalog parses but contradicts itself (edited by hand?).
    #[error("catalog {path} is inconsistent: {problem}")]
    CatalogInconsistent {
        /// The catalog file.
        path: PathBuf,
        /// What contradicts what.
        problem: crate::CatalogProblem,
    },
    /// Every volume id a digest may have is held by versions of other digests sharing
    /// its prefix (a hostile registry grinding manifests).
    #[error("boot source {name}: every volume id of digest {digest} is held by another digest")]
    VolumeIdTaken {
        /// The digest being imported.
        digest: bootsource_digest::Digest,
        /// The boot source.
        name: String,
    },
    /// Another operation (an import, a removal) is working on this volume right now.
    #[error("volume {volume} on backend {backend} is busy: {why}")]
    VolumeBusy {
        /// The volume.
        volume: VolumeId,
        /// Its backend.
        backend: String,
        /// What holds it.
        why: &'static str,
    },
    /// No device of the block pool is free and large enough.
    #[error("block pool {backend}: no free device of at least {needed} bytes ({devices})")]
    PoolExhausted {
        /// The block backend.
        backend: String,
        /// The virtual size of the image.
        needed: u64,
        /// Each device and why it was not chosen.
        devices: crate::SkippedDevices,
    },
    /// A block pool chooses a device by size: a disk whose size is known only at its
    /// end cannot be staged on one (the importer measures it first for such a pool).
    #[error("block pool {backend}: the disk's size must be known to choose a device")]
    SizeNeeded {
        /// The block backend.
        backend: String,
    },
    /// The staged image does not have the size announced at `begin`.
    #[error("staging volume {volume}: {path} is {actual} bytes, expected {expected}")]
    StagingSize {
        /// The volume.
        volume: VolumeId,
        /// The staged file or device.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The virtual size given to `begin`.
        expected: u64,
    },
    /// The staging record disappeared from the catalog (removed by hand?).
    #[error("staging volume {volume} on backend {backend} is no longer in the catalog")]
    StagingLost {
        /// The volume.
        volume: VolumeId,
        /// Its backend.
        backend: String,
    },
    /// The source has no published version.
    #[error("boot source {name} has no current version")]
    NoCurrentVersion {
        /// The source.
        name: String,
    },
    /// The version was removed (by garbage collection) before it could be held.
    #[error("version {volume} of boot source {name} is no longer in the catalog")]
    VersionGone {
        /// The source.
        name: String,
        /// The volume.
        volume: VolumeId,
    },
    /// A clone or import target inside the golden-image namespace, a storage root or
    /// the block pool.
    #[error("target {target} is inside {managed}, which bootsource manages")]
    TargetForbidden {
        /// The target as resolved.
        target: PathBuf,
        /// The managed root or device it falls in.
        managed: PathBuf,
    },
    /// A block-device target that is, contains or is inside a device the store
    /// manages.
    #[error(
        "target {target} ({number}) {relation} device {managed}, {what}, which bootsource manages"
    )]
    TargetOverlaps {
        /// The target as resolved.
        target: PathBuf,
        /// Its device number.
        number: DeviceNumber,
        /// How it overlaps.
        relation: Overlap,
        /// The managed device's number.
        managed: DeviceNumber,
        /// What that device is to the store (a pool device, a root's file system).
        what: String,
    },
    /// A clone target that exists and is not a block device.
    #[error("clone target {0} already exists (only block devices are written in place)")]
    CloneTargetExists(PathBuf),
    /// A block-device clone target smaller than the image.
    #[error("clone target {target} holds {available} bytes, the image needs {needed}")]
    CloneTargetTooSmall {
        /// The device.
        target: PathBuf,
        /// Its size.
        available: u64,
        /// The image's virtual size.
        needed: u64,
    },
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds [`Error::Io`]; used as `.map_err(io_err("fsync", path))`.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Builds [`Error::BlockDevice`] for a volume.
pub(crate) fn block_err(volume: &str) -> impl FnOnce(bootsource_blockdev::Error) -> Error + '_ {
    move |source| Error::BlockDevice {
        purpose: format!("volume {volume}"),
        source,
    }
}

/// Builds [`Error::Place`] for a staging path.
pub(crate) fn place_err(path: &Path) -> impl FnOnce(bootsource_place::Error) -> Error + '_ {
    move |source| Error::Place {
        path: path.to_owned(),
        source,
    }
}

/// Builds [`Error::BlockDevice`] for a clone target.
pub(crate) fn clone_target_err(source: bootsource_blockdev::Error) -> Error {
    Error::BlockDevice {
        purpose: "the clone target".to_owned(),
        source,
    }
}
