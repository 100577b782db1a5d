//! Block devices and the page cache: the one place bootsource makes raw system calls.
//!
//! Opening is exclusive (`O_EXCL` on a block device): the kernel refuses it while the
//! device is mounted, part of an md/LVM/dm stack, or opened exclusively by someone
//! else, which is exactly when writing a disk image onto it would destroy something.
//! Zeroing goes through `fallocate(PUNCH_HOLE)` (zero and deallocate, or refuse), then
//! `BLKZEROOUT`; discarding through `BLKDISCARD`. Devices and loop files implement
//! them without writing zeros where they can. [`topology`] tells
//! which devices overlap (by device number and sysfs, never by path), and
//! which device holds a file system.
//!
//! ```no_run
//! use bootsource_blockdev::BlockDevice;
//! let dev = BlockDevice::open_exclusive("/dev/loop0".as_ref())?;
//! dev.zero_range(0, dev.size())?;
//! # Ok::<(), bootsource_blockdev::Error>(())
//! ```

mod mounts;
pub mod pagecache;
pub mod topology;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

mod ioctl {
    //! The raw requests, from `<linux/fs.h>`.
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), libc::c_int);
    nix::ioctl_write_ptr_bad!(blkdiscard, nix::request_code_none!(0x12, 119), [u64; 2]);
    nix::ioctl_write_ptr_bad!(blkzeroout, nix::request_code_none!(0x12, 127), [u64; 2]);
}

/// What can go wrong with a block device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is not a block device.
    #[error("{0} is not a block device")]
    NotBlockDevice(PathBuf),
    /// The kernel refused the exclusive open.
    #[error("{0} is mounted or in use (held by a filesystem, LVM, md, or another program)")]
    Busy(PathBuf),
    /// Any other failure, with the operation that failed.
    #[error("{op} on {path} failed")]
    Io {
        /// The operation (`open`, `BLKGETSIZE64`, `BLKZEROOUT`, …).
        op: &'static str,
        /// The device.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusively opened block device.
#[derive(Debug)]
pub struct BlockDevice {
    file: File,
    path: PathBuf,
    size: u64,
    logical_block_size: u32,
}

/// Whether `path` names a block device (following symlinks).
pub fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

impl BlockDevice {
    /// Opens `path` read-write and exclusively, and reads its geometry.
    pub fn open_exclusive(path: &Path) -> Result<Self, Error> {
        if !is_block_device(path) {
            return Err(Error::NotBlockDevice(path.to_owned()));
        }
        let file = open_excl(path)?;
        let fd = file.as_raw_fd();
        let mut size = 0u64;
        // SAFETY: `fd` is an open block device and `size` is a valid u64 to write to.
        unsafe { ioctl::blkgetsize64(fd, &mut size) }
            .map_err(|e| io_error("BLKGETSIZE64", path, e.into()))?;
        let mut block: libc::c_int = 0;
        // SAFETY: `fd` is an open block device and `block` is a valid c_int to write to.
        unsafe { ioctl::blksszget(fd, &mut block) }
            .map_err(|e| io_error("BLKSSZGET", path, e.into()))?;
        Ok(Self {
            file,
            path: path.to_owned(),
            size,
            logical_block_size: u32::try_from(block).unwrap_or(512),
        })
    }

    /// The open device, for reads and writes at offsets.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its device number, from the open file (so a path swapped after opening cannot
    /// name another device).
    pub fn number(&self) -> Result<topology::DeviceNumber, Error> {
        use std::os::unix::fs::MetadataExt;
        let meta = self
            .file
            .metadata()
            .map_err(|e| io_error("fstat", &self.path, e))?;
        Ok(topology::DeviceNumber::from_dev_t(meta.rdev()))
    }

    /// The smallest unit it can address (512 or 4096).
    pub fn logical_block_size(&self) -> u32 {
        self.logical_block_size
    }

    /// Makes `offset..offset+len` read as zeros, cheaply where the device can
    /// (write-zeroes with unmap), else by the kernel writing zeros. Both ends must be
    /// multiples of the logical block size.
    ///
    /// First `fallocate(PUNCH_HOLE)`: the kernel zeroes *and deallocates* or refuses
    /// (it never falls back to writing), so thin storage — a loop file, a thin LV, an
    /// NVMe namespace that deallocates — is not filled with zeros. `BLKZEROOUT` alone
    /// asks the device to keep the blocks allocated: on a 64 GiB loop device holding
    /// 2 GiB it allocated all 64 GiB of the file under it (benches/size.sh).
    pub fn zero_range(&self, offset: u64, len: u64) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let punched = match (i64::try_from(offset), i64::try_from(len)) {
            (Ok(start), Ok(length)) => nix::fcntl::fallocate(
                &self.file,
                nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                    | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                start,
                length,
            ),
            _ => Err(nix::Error::EINVAL),
        };
        match punched {
            Ok(()) => return Ok(()),
            // The device cannot zero without writing: BLKZEROOUT writes.
            Err(nix::Error::EOPNOTSUPP) => {}
            Err(e) => return Err(io_error("fallocate(PUNCH_HOLE)", &self.path, e.into())),
        }
        self.range_ioctl("BLKZEROOUT", offset, len, |fd, r| {
            // SAFETY: `fd` is an open block device; `r` points to two valid u64s.
            unsafe { ioctl::blkzeroout(fd, r) }
        })
    }

    /// Makes `start..end` read as zeros, at any byte offsets: the block-aligned middle
    /// with [`zero_range`](Self::zero_range), the sub-block edges (which the ioctl
    /// cannot express) by writing zero bytes. The one place bootsource zeroes a device.
    pub fn zero_bytes(&self, start: u64, end: u64) -> Result<(), Error> {
        if start >= end {
            return Ok(());
        }
        let block = u64::from(self.logical_block_size);
        let (mid_start, mid_end) = (start.next_multiple_of(block), end / block * block);
        if mid_start >= mid_end {
            return self.write_zeros(start, end);
        }
        self.write_zeros(start, mid_start)?;
        self.zero_range(mid_start, mid_end - mid_start)?;
        self.write_zeros(mid_end, end)
    }

    /// Writes zero bytes over `start..end`, which is shorter than a block.
    fn write_zeros(&self, start: u64, end: u64) -> Result<(), Error> {
        if start >= end {
            return Ok(());
        }
        let len = usize::try_from(end - start)
            .map_err(|_| io_error("write", &self.path, std::io::ErrorKind::InvalidInput.into()))?;
        self.file
            .write_all_at(&vec![0; len], start)
            .map_err(|e| io_error("write", &self.path, e))
    }

    /// Tells the device `offset..offset+len` is unused. Contents afterwards are
    /// device-specific: use [`zero_range`](Self::zero_range) where zeros matter.
    pub fn discard_range(&self, offset: u64, len: u64) -> Result<(), Error> {
        self.range_ioctl("BLKDISCARD", offset, len, |fd, r| {
            // SAFETY: `fd` is an open block device; `r` points to two valid u64s.
            unsafe { ioctl::blkdiscard(fd, r) }
        })
    }

    fn range_ioctl(
        &self,
        op: &'static str,
        offset: u64,
        len: u64,
        call: impl Fn(libc::c_int, *const [u64; 2]) -> nix::Result<libc::c_int>,
    ) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let range = [offset, len];
        call(self.file.as_raw_fd(), &range).map_err(|e| io_error(op, &self.path, e.into()))?;
        Ok(())
    }
}

/// Transient exclusive holders exist — udev rereading partitions after a writer
/// closed the device, a filesystem finishing its unmount — so a busy device is tried
/// again for a moment before it counts as in use.
const BUSY_RETRIES: u32 = 10;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

fn open_excl(path: &Path) -> Result<File, Error> {
    let mut attempt = 0;
    loop {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
            .open(path);
        match opened {
            Ok(file) => return Ok(file),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(BUSY_PAUSE);
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(Error::Busy(path.to_owned()));
            }
            Err(e) => return Err(io_error("open", path, e)),
        }
    }
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_not_a_block_device() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(!is_block_device(f.path()));
        let err = BlockDevice::open_exclusive(f.path()).unwrap_err();
        assert!(matches!(err, Error::NotBlockDevice(_)), "{err}");
    }
}
