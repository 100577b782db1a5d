//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What can go wrong while opening, writing or completing a place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target path cannot be used (a directory, a missing parent, …).
    #[error("target {path} {problem}")]
    Unusable {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: Unusable,
    },
    /// The block device could not be opened or zeroed.
    #[error("target {path}")]
    Device {
        /// The device as given.
        path: PathBuf,
        /// The cause, which says busy, not a device, or the failed ioctl.
        #[source]
        source: bootsource_blockdev::Error,
    },
    /// The device is smaller than the disk.
    #[error("target {path} holds {size} bytes but the disk needs {needed}")]
    TooSmall {
        /// The device.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The disk's virtual size.
        needed: u64,
    },
    /// A write beyond the disk's virtual size: a decoder bug, never a valid image.
    #[error("write at {offset:#x} (+{len:#x} bytes) past the end of {path} at {size:#x}")]
    PastEnd {
        /// The place.
        path: PathBuf,
        /// Where the write started.
        offset: u64,
        /// How long it was.
        len: usize,
        /// The disk's virtual size.
        size: u64,
    },
    /// The disk ended at another length than the place was opened for: a decoder
    /// bug, never a valid image.
    #[error("{path} was opened for {size} bytes but the disk ended at {length}")]
    LengthMismatch {
        /// The place.
        path: PathBuf,
        /// The size it was opened for.
        size: u64,
        /// Where the disk ended.
        length: u64,
    },
    /// A place of unknown size was finished before the disk's end was known.
    #[error("{path} was finished before the disk's length was known")]
    LengthUnknown {
        /// The place.
        path: PathBuf,
    },
    /// The filesystem's free space fell below the configured reserve.
    #[error(
        "{path}: only {available} bytes free on its filesystem, below the reserve of {reserve} bytes (min_free)"
    )]
    BelowReserve {
        /// The file being written.
        path: PathBuf,
        /// Bytes available to us.
        available: u64,
        /// The reserve that must stay free.
        reserve: u64,
    },
    /// A system call on the place failed.
    #[error("{op} {path} failed (at byte {offset})")]
    Io {
        /// What was attempted (`write`, `fsync`, `create`, `link`, …).
        op: &'static str,
        /// The place, as the user or the store named it.
        path: PathBuf,
        /// The byte offset concerned (0 where none applies).
        offset: u64,
        /// The cause (ENOSPC, EIO, EEXIST, …).
        #[source]
        source: io::Error,
    },
}

/// Why a target path cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// It is a directory.
    #[error("is a directory; name the image file to create")]
    IsDirectory,
    /// Its directory does not exist.
    #[error("is in a directory that does not exist")]
    NoParent,
    /// It has no file name (`/`, `..`).
    #[error("names no file")]
    NoFileName,
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds [`Error::Io`]: `.map_err(io_error("fsync", path, 0))`.
pub(crate) fn io_error<'a>(
    op: &'static str,
    path: &'a std::path::Path,
    offset: u64,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        offset,
        source,
    }
}
