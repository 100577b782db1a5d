//! Sparse copy of a raw image into a [`Disk`]: only data is written; holes stay holes.
//!
//! The source's data ranges come from `SEEK_DATA`/`SEEK_HOLE` (a source without them,
//! such as a block device, is one data range). Inside a data range the [`Disk`] skips
//! zero blocks itself; what is never written becomes a hole in a fresh file, and is
//! zeroed on a block device when the disk is finished (`BLKZEROOUT`, write-zeroes or
//! unmap where the device can) — the place crate owns all of that.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bootsource_place::{Disk, Place};
use nix::errno::Errno;
use nix::unistd::{Whence, lseek};

use crate::error::{Error, Result, io_err};

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// Copies the first `disk.size()` bytes of `src` into `disk` (opened for a known
/// size) and finishes it (device gaps zeroed, fsynced). Returns the bytes written as
/// data.
pub(crate) fn copy(src: &File, src_path: &Path, disk: &Disk) -> Result<u64> {
    let len = disk.size().capacity();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0;
    while let Some((start, end)) =
        next_data(src, pos, len).map_err(io_err("seek data in", src_path))?
    {
        copy_range(src, src_path, start, end, &mut buf, disk)?;
        pos = end;
    }
    disk.finish().map_err(|source| Error::Place {
        path: disk.path().to_owned(),
        source,
    })
}

/// The next data range at or after `from`, clipped to `len`.
fn next_data(file: &File, from: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    if from >= len {
        return Ok(None);
    }
    let offset = i64::try_from(from).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let data_offset = match lseek(file, offset, Whence::SeekData) {
        Ok(start) => start,
        Err(Errno::ENXIO) => return Ok(None),
        // No SEEK_DATA here (block devices): everything is data.
        Err(Errno::EINVAL) => return Ok(Some((from, len))),
        Err(e) => return Err(e.into()),
    };
    let start =
        u64::try_from(data_offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    if start >= len {
        return Ok(None);
    }
    let end = lseek(file, data_offset, Whence::SeekHole)?;
    let end = u64::try_from(end).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    Ok(Some((start, end.min(len))))
}

/// Copies one data range; the disk skips its zero blocks.
fn copy_range(
    src: &File,
    src_path: &Path,
    start: u64,
    end: u64,
    buf: &mut [u8],
    disk: &Disk,
) -> Result<()> {
    let mut pos = start;
    while pos < end {
        let n = usize::try_from(end - pos).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        src.read_exact_at(chunk, pos)
            .map_err(io_err("read", src_path))?;
        disk.write_at(pos, chunk).map_err(|source| Error::Place {
            path: disk.path().to_owned(),
            source,
        })?;
        pos += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn file_copy_keeps_holes_and_drops_zero_data() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src");
        let src = File::create(&src_path).unwrap();
        let len = 8u64 << 20;
        src.set_len(len).unwrap();
        src.write_all_at(&[7u8; 4096], 1 << 20).unwrap();
        // Written zeros: data to SEEK_DATA, a hole after the copy.
        src.write_all_at(&vec![0u8; 1 << 20], 4 << 20).unwrap();
        src.write_all_at(b"tail", len - 4).unwrap();
        src.sync_all().unwrap();
        let src = File::open(&src_path).unwrap();

        let dst_path = dir.path().join("dst");
        let dst = File::create_new(&dst_path).unwrap();
        let disk = Disk::in_file(
            dst,
            dst_path.clone(),
            bootsource_place::DiskSize::Known(len),
            None,
        )
        .unwrap();
        let written = copy(&src, &src_path, &disk).unwrap();
        assert_eq!(
            std::fs::read(&src_path).unwrap(),
            std::fs::read(&dst_path).unwrap()
        );
        assert_eq!(written, 2 * 4096, "one block of data, one of the tail");
        let allocated = std::fs::metadata(&dst_path).unwrap().blocks() * 512;
        assert!(allocated <= 64 << 10, "{allocated} bytes allocated");
    }
}
