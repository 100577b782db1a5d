//! Where bootsource writes a raw disk: an opened sparse file or block device.
//!
//! The importer writes through the small [`Place`] trait and never opens a path
//! itself. Whoever owns the destination opens it here and hands it over: storage for a
//! staging volume (a file it creates in its own directory, or a pool device it opened
//! exclusively), the CLI for `import --to` ([`Target`]). Every place is a [`Disk`]: zero
//! blocks are skipped, a device's unwritten ranges are zeroed at the end, and written
//! pages leave the page cache as they go. A file the user names appears only once it is
//! complete, and is never created through a planted symlink ([`NewFile`]).
//!
//! A disk's size is usually known before its first byte ([`DiskSize::Known`]); a raw
//! disk inside gzip or bzip2 says its length only at its end ([`DiskSize::Unknown`]).
//! A file place then grows as it is written, within a limit, and takes its length
//! from [`Place::end_at`]; a device place is written within the device's size.
//!
//! ```no_run
//! use bootsource_place::{DiskSize, Target};
//! // Before the download: a busy device or a missing directory fails here.
//! let target = Target::check("/var/lib/vms/fedora.img".as_ref())?;
//! // Once the disk's virtual size is known: sized, all holes, invisible until committed.
//! let open = target.open(DiskSize::Known(5 << 30), Some(1 << 30))?;
//! open.place().write_at(0, &[0xeb, 0x63, 0x90])?;
//! open.commit()?; // zeroes what a device never got, fsyncs, links the file into place
//! # Ok::<(), bootsource_place::Error>(())
//! ```

#![forbid(unsafe_code)]

mod disk;
mod error;
mod new_file;
mod ranges;
mod reserve;
mod target;
pub mod zero;

pub use disk::{Disk, DiskSize};
pub use error::{Error, Result, Unusable};
pub use new_file::NewFile;
pub use reserve::CHECK_EVERY as RESERVE_CHECK_EVERY;
pub use target::{OpenTarget, Target};

/// Where a raw disk is written, at offsets, from several threads.
///
/// What is never written reads as zeros once the owner has finished the place; a
/// writer may therefore skip zero blocks.
pub trait Place: Send + Sync + std::fmt::Debug {
    /// The disk's virtual size as the place was opened for it: writes past it (or
    /// past the limit of an unknown size) fail.
    fn size(&self) -> DiskSize;
    /// Writes `data` at byte `offset` of the disk.
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()>;
    /// The disk ended at `length` bytes. A place opened for a [`DiskSize::Unknown`]
    /// takes that length (within its limit); one of a known size must already have it.
    fn end_at(&self, length: u64) -> Result<()>;
    /// Bytes actually written so far (skipped zero blocks not counted).
    fn bytes_written(&self) -> u64;
}
