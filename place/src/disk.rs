//! [`Disk`]: an opened sparse file or block device that a raw disk is written into.
//!
//! Writes come from several threads at arbitrary offsets. All-zero blocks are skipped:
//! in a file they stay holes (the file is sized with `ftruncate`, so it starts as all
//! holes); on a block device, whose old contents are not zero, the ranges never written
//! are zeroed by [`Disk::finish`] through blockdev's `zero_bytes`, cheaply where the device
//! can. Written pages are dropped from the page cache as the writes go (a golden image
//! is not read back soon, and a 20 GiB import must not evict the VMs' cache).
//!
//! A disk whose size is [`DiskSize::Unknown`] is written within its limit (and a
//! device's size); a file grows as it is written. [`Place::end_at`] gives it its
//! length (a file is truncated or extended to it, so trailing zeros stay holes), and
//! [`Disk::finish`] refuses a disk that never got one.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use bootsource_blockdev::BlockDevice;
use bootsource_blockdev::pagecache::{self, WriteBehind};

use crate::Place;
use crate::error::{Error, Result, io_error};
use crate::ranges::RangeSet;
use crate::reserve::Reserve;
use crate::zero;

/// Drop written pages from the cache every this many bytes.
const WRITE_BEHIND_WINDOW: u64 = 64 << 20;

enum Medium {
    File {
        file: File,
        reserve: Option<Reserve>,
    },
    Device(BlockDevice),
}

/// How large a disk is when its place is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSize {
    /// Known before the first write (a header, a tar entry, the file's length): the
    /// place is sized at once.
    Known(u64),
    /// Known only at the disk's end (a raw disk in a gzip stream): the place takes
    /// writes below `limit` and its length from [`Place::end_at`].
    Unknown {
        /// The largest disk accepted (`max_virtual_size`).
        limit: u64,
    },
}

impl DiskSize {
    /// The size, once known.
    pub fn known(self) -> Option<u64> {
        match self {
            Self::Known(size) => Some(size),
            Self::Unknown { .. } => None,
        }
    }

    /// The most bytes a disk of this size may hold.
    pub fn capacity(self) -> u64 {
        match self {
            Self::Known(size) => size,
            Self::Unknown { limit } => limit,
        }
    }
}

/// A raw disk, open for writing.
pub struct Disk {
    medium: Medium,
    path: PathBuf,
    size: DiskSize,
    /// Where writes must end: the size, or the limit of an unknown size.
    capacity: u64,
    /// The disk's length: its size if known, else set by [`Place::end_at`].
    length: OnceLock<u64>,
    /// Device only: ranges written, so that [`finish`](Disk::finish) zeroes the rest.
    written: Mutex<RangeSet>,
    bytes_written: AtomicU64,
    write_behind: WriteBehind,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("device", &matches!(self.medium, Medium::Device(_)))
            .finish_non_exhaustive()
    }
}

impl Disk {
    /// A disk in `file`, a new empty file the caller created; a known size is set at
    /// once (all holes), an unknown one grows as written. `path` names it in messages.
    /// With `reserve`, at least that many bytes must stay free on its filesystem,
    /// checked now and while writing.
    pub fn in_file(
        file: File,
        path: PathBuf,
        size: DiskSize,
        reserve: Option<u64>,
    ) -> Result<Self> {
        let reserve = reserve.map(Reserve::new);
        if let Some(reserve) = &reserve {
            reserve.check(&file, &path)?;
        }
        if let DiskSize::Known(len) = size {
            file.set_len(len).map_err(io_error("size", &path, len))?;
        }
        let capacity = size.capacity();
        Ok(Self::new(
            Medium::File { file, reserve },
            path,
            size,
            capacity,
        ))
    }

    /// A disk on `device`, which must hold a disk of a known `size`; one of unknown
    /// size is written within the device's size.
    pub fn on_device(device: BlockDevice, size: DiskSize) -> Result<Self> {
        if let DiskSize::Known(needed) = size
            && device.size() < needed
        {
            return Err(Error::TooSmall {
                path: device.path().to_owned(),
                size: device.size(),
                needed,
            });
        }
        let (path, capacity) = (device.path().to_owned(), size.capacity().min(device.size()));
        Ok(Self::new(Medium::Device(device), path, size, capacity))
    }

    fn new(medium: Medium, path: PathBuf, size: DiskSize, capacity: u64) -> Self {
        let length = OnceLock::new();
        if let DiskSize::Known(len) = size {
            length.set(len).expect("a new cell is empty");
        }
        Self {
            medium,
            path,
            size,
            capacity,
            length,
            written: Mutex::new(RangeSet::default()),
            bytes_written: AtomicU64::new(0),
            write_behind: WriteBehind::new(WRITE_BEHIND_WINDOW),
        }
    }

    /// The open file or device.
    pub fn file(&self) -> &File {
        match &self.medium {
            Medium::File { file, .. } => file,
            Medium::Device(device) => device.file(),
        }
    }

    /// The path it was opened as, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is a block device.
    pub fn is_device(&self) -> bool {
        matches!(self.medium, Medium::Device(_))
    }

    /// The disk's length: its size, or where it ended once [`Place::end_at`] said so.
    pub fn length(&self) -> Option<u64> {
        self.length.get().copied()
    }

    /// Makes the disk complete and durable: zeroes what was never written on a device,
    /// fsyncs, and drops the cached pages. Returns the bytes written.
    pub fn finish(&self) -> Result<u64> {
        let length = self.length().ok_or_else(|| Error::LengthUnknown {
            path: self.path.clone(),
        })?;
        if let Medium::Device(device) = &self.medium {
            let gaps = self.written.lock().expect("not poisoned").gaps(length);
            for (start, end) in gaps {
                device
                    .zero_bytes(start, end)
                    .map_err(|source| Error::Device {
                        path: self.path.clone(),
                        source,
                    })?;
            }
        }
        self.file()
            .sync_all()
            .map_err(io_error("fsync", &self.path, 0))?;
        if let Err(e) = pagecache::drop_clean_pages(self.file()) {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot drop cached pages");
        }
        Ok(self.bytes_written.load(Ordering::Relaxed))
    }

    fn account(&self, bytes: u64) -> Result<()> {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        if let Err(e) = self.write_behind.wrote(self.file(), bytes) {
            tracing::debug!(error = %e, "write-behind failed; the final fsync still applies");
        }
        match &self.medium {
            Medium::File {
                file,
                reserve: Some(reserve),
            } => reserve.wrote(file, &self.path, bytes),
            _ => Ok(()),
        }
    }
}

impl Place for Disk {
    fn size(&self) -> DiskSize {
        self.size
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let past_end = offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > self.capacity);
        if past_end {
            return Err(Error::PastEnd {
                path: self.path.clone(),
                offset,
                len: data.len(),
                size: self.capacity,
            });
        }
        let mut total = 0;
        for (at, run) in zero::nonzero_runs(offset, data) {
            self.file()
                .write_all_at(run, at)
                .map_err(io_error("write", &self.path, at))?;
            if self.is_device() {
                self.written
                    .lock()
                    .expect("not poisoned")
                    .insert(at, at + run.len() as u64);
            }
            total += run.len() as u64;
        }
        self.account(total)
    }

    fn end_at(&self, length: u64) -> Result<()> {
        if let DiskSize::Known(size) = self.size {
            return match size == length {
                true => Ok(()),
                false => Err(Error::LengthMismatch {
                    path: self.path.clone(),
                    size,
                    length,
                }),
            };
        }
        if length > self.capacity {
            return Err(Error::PastEnd {
                path: self.path.clone(),
                offset: length,
                len: 0,
                size: self.capacity,
            });
        }
        if let Medium::File { file, .. } = &self.medium {
            file.set_len(length)
                .map_err(io_error("size", &self.path, length))?;
        }
        match self.length.set(length) {
            Ok(()) => Ok(()),
            Err(_) if self.length() == Some(length) => Ok(()),
            Err(_) => Err(Error::LengthMismatch {
                path: self.path.clone(),
                size: self.length().unwrap_or(length),
                length,
            }),
        }
    }

    fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn zero_blocks_stay_holes_and_data_lands_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let disk = Disk::in_file(
            File::create_new(&path).unwrap(),
            path.clone(),
            DiskSize::Known(8 << 20),
            None,
        )
        .unwrap();
        let mut data = vec![0u8; 3 << 20];
        data[(1 << 20) + 5] = 7;
        disk.write_at(1 << 20, &data).unwrap();
        assert_eq!(disk.finish().unwrap(), 4096);
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 8 << 20);
        assert_eq!(back[(2 << 20) + 5], 7);
        assert_eq!(back.iter().filter(|&&b| b != 0).count(), 1);
        assert!(std::fs::metadata(&path).unwrap().blocks() * 512 <= 64 << 10);
    }

    #[test]
    fn a_write_past_the_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let disk = Disk::in_file(
            File::create_new(&path).unwrap(),
            path,
            DiskSize::Known(4096),
            None,
        )
        .unwrap();
        let err = disk.write_at(4000, &[1; 200]).unwrap_err();
        assert!(matches!(err, Error::PastEnd { offset: 4000, .. }), "{err}");
        let err = disk.write_at(u64::MAX - 1, &[1; 2]).unwrap_err();
        assert!(matches!(err, Error::PastEnd { .. }), "{err}");
    }

    #[test]
    fn an_unknown_size_grows_within_its_limit_and_takes_its_length_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let file = File::create_new(&path).unwrap();
        let disk = Disk::in_file(
            file,
            path.clone(),
            DiskSize::Unknown { limit: 1 << 20 },
            None,
        )
        .unwrap();
        disk.write_at(4096, &[7; 512]).unwrap();
        let err = disk.write_at((1 << 20) - 4, &[1; 8]).unwrap_err();
        assert!(
            matches!(err, Error::PastEnd { size, .. } if size == 1 << 20),
            "{err}"
        );
        // Not ended yet: it cannot be finished.
        assert!(matches!(
            disk.finish().unwrap_err(),
            Error::LengthUnknown { .. }
        ));
        assert!(matches!(
            disk.end_at((1 << 20) + 1).unwrap_err(),
            Error::PastEnd { .. }
        ));
        // Trailing zeros were never written: the length makes them a hole.
        disk.end_at(64 << 10).unwrap();
        assert_eq!(disk.length(), Some(64 << 10));
        assert_eq!(disk.finish().unwrap(), 512);
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 64 << 10);
        assert_eq!(back[4096..4608], [7; 512]);
        assert!(matches!(
            disk.end_at(1000).unwrap_err(),
            Error::LengthMismatch { .. }
        ));
    }

    #[test]
    fn a_known_size_cannot_end_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let file = File::create_new(&path).unwrap();
        let disk = Disk::in_file(file, path, DiskSize::Known(4096), None).unwrap();
        disk.end_at(4096).unwrap();
        let err = disk.end_at(4095).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthMismatch {
                    size: 4096,
                    length: 4095,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_reserve_larger_than_the_free_space_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let err = Disk::in_file(
            File::create_new(&path).unwrap(),
            path,
            DiskSize::Known(4096),
            Some(u64::MAX),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::BelowReserve {
                    reserve: u64::MAX,
                    ..
                }
            ),
            "{err}"
        );
    }
}
