//! What can be wrong with a storage configuration or a catalog, and why a pool device
//! was passed over, as values: callers tell one case from another by variant.

use std::fmt;
use std::path::PathBuf;

use bootsource_blockdev::topology::{DeviceNumber, Overlap};

use crate::config::BackendKind;
use crate::names::VolumeId;

/// A configuration that cannot work (what [`Error::Config`] carries).
///
/// [`Error::Config`]: crate::Error::Config
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// `state_dir` is relative.
    RelativeStateDir(PathBuf),
    /// `format = "snapshot"` on a kind that cannot snapshot.
    SnapshotUnsupported(BackendKind),
    /// A pool device given as a relative path.
    RelativeDevice(PathBuf),
    /// A block backend without devices, or with a `path`.
    BlockNeedsDevices,
    /// A file-based backend without an absolute `path`, or with devices.
    FilesNeedPath(BackendKind),
    /// A root inside or around another root or the state directory.
    RootsOverlap {
        /// This backend's root, where it lands.
        root: PathBuf,
        /// The other tree, where it lands.
        other: PathBuf,
        /// What the other tree is (`the state directory`, `backend NAME`).
        what: String,
    },
    /// One device listed twice (by any name).
    DeviceListedTwice {
        /// The device as written.
        device: PathBuf,
        /// The backend that listed it first.
        other_backend: String,
    },
    /// A device that is, contains or is inside another pool device.
    DevicesOverlap {
        /// The device as written.
        device: PathBuf,
        /// Its number.
        number: DeviceNumber,
        /// The other device as written.
        other: PathBuf,
        /// Its number.
        other_number: DeviceNumber,
        /// The backend listing the other.
        other_backend: String,
        /// How they overlap.
        relation: Overlap,
    },
    /// The root's filesystem cannot do what the kind promises.
    NoReflinks(PathBuf),
    /// A btrfs backend whose root is on another filesystem.
    NotBtrfs(PathBuf),
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RelativeStateDir(p) => write!(f, "state_dir {} must be absolute", p.display()),
            Self::SnapshotUnsupported(kind) => write!(
                f,
                "format = \"snapshot\" needs a backend that can snapshot (kind = \"reflink\" or \"btrfs\"); \
                 a {kind} backend supports format = \"volume\""
            ),
            Self::RelativeDevice(p) => write!(f, "device {} must be an absolute path", p.display()),
            Self::BlockNeedsDevices => {
                f.write_str("a block backend takes `devices = [...]` (at least one) and no `path`")
            }
            Self::FilesNeedPath(kind) => {
                write!(
                    f,
                    "a {kind} backend takes an absolute `path` and no `devices`"
                )
            }
            Self::RootsOverlap { root, other, what } => write!(
                f,
                "root {} overlaps {} ({what})",
                root.display(),
                other.display()
            ),
            Self::DeviceListedTwice {
                device,
                other_backend,
            } => write!(
                f,
                "device {} is also listed by backend {other_backend}",
                device.display()
            ),
            Self::DevicesOverlap {
                device,
                number,
                other,
                other_number,
                other_backend,
                relation,
            } => write!(
                f,
                "device {} ({number}) overlaps {} ({other_number}) of backend {other_backend}: one {relation} the other",
                device.display(),
                other.display()
            ),
            Self::NoReflinks(root) => write!(
                f,
                "{} does not support reflinks (FICLONE); a reflink backend needs XFS made \
                 with -m reflink=1, or btrfs",
                root.display()
            ),
            Self::NotBtrfs(root) => write!(f, "{} is not on btrfs", root.display()),
        }
    }
}

/// A catalog that parses but contradicts itself (what [`Error::CatalogInconsistent`]
/// carries).
///
/// [`Error::CatalogInconsistent`]: crate::Error::CatalogInconsistent
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogProblem {
    /// A volume listed twice.
    #[error("volume {0} is listed twice")]
    DuplicateVolume(VolumeId),
    /// A current version that is not sealed.
    #[error("the current version of {0} is not sealed")]
    CurrentNotSealed(String),
    /// A source with two current versions.
    #[error("{0} has two current versions")]
    TwoCurrent(String),
}

/// Why a pool device could not take a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceUnusable {
    /// It holds a version (of any namespace).
    Holds {
        /// The version.
        volume: VolumeId,
        /// Its namespace.
        namespace: String,
        /// Its boot source.
        source: String,
    },
    /// The kernel refused the exclusive open.
    Busy,
    /// The path is not a block device.
    NotBlockDevice,
    /// Opening or sizing it failed.
    Failed {
        /// The failed operation.
        op: &'static str,
        /// The error, as text (the device is reported, not the cause chain).
        error: String,
    },
    /// Smaller than the disk.
    TooSmall(u64),
}

impl fmt::Display for DeviceUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Holds {
                volume,
                namespace,
                source,
            } => write!(f, "holds {volume} of {namespace}/{source}"),
            Self::Busy => f.write_str("mounted or in use"),
            Self::NotBlockDevice => f.write_str("not a block device"),
            Self::Failed { op, error } => write!(f, "{op} failed: {error}"),
            Self::TooSmall(size) => write!(f, "{size} bytes, too small"),
        }
    }
}

/// Each device of an exhausted pool and why it was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SkippedDevices(pub Vec<(PathBuf, DeviceUnusable)>);

impl fmt::Display for SkippedDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (device, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {why}", device.display())?;
        }
        Ok(())
    }
}
