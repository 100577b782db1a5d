//! The free-space reserve of a file target (`min_free`).
//!
//! A golden image shares its filesystem with VM disks; filling it would make those VMs
//! fail their writes. A file place given a reserve checks the filesystem's available
//! space when it is opened and again every [`CHECK_EVERY`] bytes written, and fails
//! the import cleanly once less than the reserve is left. Between two checks the
//! writers may eat into the reserve by up to `CHECK_EVERY` bytes; the reserve should be
//! larger than that (the default is).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::statvfs::fstatvfs;

use crate::error::{Error, Result, io_error};

/// Bytes written between two checks of the free space.
pub const CHECK_EVERY: u64 = 64 << 20;

/// A reserve of free bytes to leave on a file's filesystem.
#[derive(Debug)]
pub(crate) struct Reserve {
    bytes: u64,
    since_check: AtomicU64,
}

impl Reserve {
    pub fn new(bytes: u64) -> Self {
        Self {
            bytes,
            since_check: AtomicU64::new(0),
        }
    }

    /// Fails when less than the reserve is available now.
    pub fn check(&self, file: &File, path: &Path) -> Result<()> {
        let stat = fstatvfs(file).map_err(|e| io_error("statvfs", path, 0)(e.into()))?;
        let available = stat.blocks_available().saturating_mul(stat.fragment_size());
        if available < self.bytes {
            return Err(Error::BelowReserve {
                path: path.to_owned(),
                available,
                reserve: self.bytes,
            });
        }
        Ok(())
    }

    /// Counts `bytes` written; checks once enough were written since the last check.
    pub fn wrote(&self, file: &File, path: &Path, bytes: u64) -> Result<()> {
        let total = self.since_check.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total < CHECK_EVERY {
            return Ok(());
        }
        self.since_check.store(0, Ordering::Relaxed);
        self.check(file, path)
    }
}
