//! Sparse copy of a raw image: only data is written; holes stay holes.
//!
//! The source's data ranges come from `SEEK_DATA`/`SEEK_HOLE` (a source without them,
//! such as a block device, is one data range); inside a data range every 64 KiB grain
//! of zeros is treated as a hole too. What happens to a hole depends on the target:
//! a fresh file, already sized with `ftruncate`, leaves it unallocated; a block device,
//! whose old contents are not zero, gets the range zeroed with `BLKZEROOUT` (write-zeroes
//! or unmap where the device can), adjacent runs merged into one request. Only the
//! sub-sector edges of a zero run that is not aligned to the logical block size are
//! written as zero bytes, because the ioctl cannot express them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bootsource_blockdev::BlockDevice;
use nix::errno::Errno;
use nix::unistd::{Whence, lseek};

use crate::error::{Result, clone_target_err, io_err};

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;
/// Granularity of zero detection inside data ranges.
const ZERO_GRAIN: usize = 64 << 10;

/// Where copied bytes go.
pub(crate) trait Sink {
    /// Writes `bytes` at `offset`.
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Makes `offset..offset + len` read as zeros.
    fn zeros(&mut self, offset: u64, len: u64) -> Result<()>;
    /// Flushes everything to stable storage.
    fn finish(&mut self) -> Result<()>;
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CopyStats {
    /// Bytes written as data.
    pub data_bytes: u64,
    /// Bytes left as holes or zeroed.
    pub zero_bytes: u64,
}

/// Copies the first `len` bytes of `src` to `sink`.
pub(crate) fn copy(
    src: &File,
    src_path: &Path,
    len: u64,
    sink: &mut dyn Sink,
) -> Result<CopyStats> {
    let mut stats = CopyStats::default();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0;
    while let Some((start, end)) =
        next_data(src, pos, len).map_err(io_err("seek data in", src_path))?
    {
        if start > pos {
            sink.zeros(pos, start - pos)?;
            stats.zero_bytes += start - pos;
        }
        copy_range(src, src_path, start, end, &mut buf, sink, &mut stats)?;
        pos = end;
    }
    if pos < len {
        sink.zeros(pos, len - pos)?;
        stats.zero_bytes += len - pos;
    }
    sink.finish()?;
    Ok(stats)
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

/// Copies one data range, turning zero grains into holes.
fn copy_range(
    src: &File,
    src_path: &Path,
    start: u64,
    end: u64,
    buf: &mut [u8],
    sink: &mut dyn Sink,
    stats: &mut CopyStats,
) -> Result<()> {
    let mut pos = start;
    while pos < end {
        let n = usize::try_from(end - pos).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        src.read_exact_at(chunk, pos)
            .map_err(io_err("read", src_path))?;
        for (run_start, run_len, zero) in runs(chunk) {
            let offset = pos + run_start as u64;
            if zero {
                sink.zeros(offset, run_len as u64)?;
                stats.zero_bytes += run_len as u64;
            } else {
                sink.data(offset, &chunk[run_start..run_start + run_len])?;
                stats.data_bytes += run_len as u64;
            }
        }
        pos += n as u64;
    }
    Ok(())
}

/// Splits a chunk into maximal runs of all-zero and not-all-zero grains:
/// `(start, len, is_zero)`.
fn runs(chunk: &[u8]) -> Vec<(usize, usize, bool)> {
    let mut out: Vec<(usize, usize, bool)> = Vec::new();
    for (i, grain) in chunk.chunks(ZERO_GRAIN).enumerate() {
        let zero = grain.iter().all(|&b| b == 0);
        match out.last_mut() {
            Some(last) if last.2 == zero => last.1 += grain.len(),
            _ => out.push((i * ZERO_GRAIN, grain.len(), zero)),
        }
    }
    out
}

/// A new regular file, already sized: holes need nothing.
#[derive(Debug)]
pub(crate) struct FileSink<'a> {
    pub file: &'a File,
    pub path: &'a Path,
}

impl Sink for FileSink<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(io_err("write", self.path))
    }

    fn zeros(&mut self, _offset: u64, _len: u64) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.file.sync_all().map_err(io_err("fsync", self.path))
    }
}

/// A block device: zero runs are merged and zeroed with `BLKZEROOUT`.
#[derive(Debug)]
pub(crate) struct DeviceSink<'a> {
    dev: &'a BlockDevice,
    path: PathBuf,
    pending: Option<(u64, u64)>,
}

impl<'a> DeviceSink<'a> {
    pub fn new(dev: &'a BlockDevice) -> Self {
        Self {
            dev,
            path: dev.path().to_owned(),
            pending: None,
        }
    }

    fn flush_zeros(&mut self) -> Result<()> {
        let Some((start, end)) = self.pending.take() else {
            return Ok(());
        };
        let block = u64::from(self.dev.logical_block_size());
        let inner_start = start.div_ceil(block) * block;
        let inner_end = end / block * block;
        if inner_start >= inner_end {
            return self.write_zeros(start, end);
        }
        self.write_zeros(start, inner_start)?;
        self.dev
            .zero_range(inner_start, inner_end - inner_start)
            .map_err(clone_target_err)?;
        self.write_zeros(inner_end, end)
    }

    /// For the unaligned edges only (less than a block each).
    fn write_zeros(&self, start: u64, end: u64) -> Result<()> {
        if start >= end {
            return Ok(());
        }
        let len = usize::try_from(end - start)
            .map_err(|_| io_err("zero", &self.path)(io::ErrorKind::InvalidInput.into()))?;
        self.dev
            .file()
            .write_all_at(&vec![0u8; len], start)
            .map_err(io_err("write", &self.path))
    }
}

impl Sink for DeviceSink<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.flush_zeros()?;
        self.dev
            .file()
            .write_all_at(bytes, offset)
            .map_err(io_err("write", &self.path))
    }

    fn zeros(&mut self, offset: u64, len: u64) -> Result<()> {
        match &mut self.pending {
            Some((_, end)) if *end == offset => *end += len,
            _ => {
                self.flush_zeros()?;
                self.pending = Some((offset, offset + len));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.flush_zeros()?;
        self.dev
            .file()
            .sync_all()
            .map_err(io_err("fsync", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn runs_split_zero_and_data_grains() {
        let mut chunk = vec![0u8; 4 * ZERO_GRAIN + 10];
        chunk[ZERO_GRAIN + 5] = 1;
        chunk[2 * ZERO_GRAIN] = 1;
        assert_eq!(
            runs(&chunk),
            [
                (0, ZERO_GRAIN, true),
                (ZERO_GRAIN, 2 * ZERO_GRAIN, false),
                (3 * ZERO_GRAIN, ZERO_GRAIN + 10, true),
            ]
        );
    }

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
        let dst = File::create(&dst_path).unwrap();
        dst.set_len(len).unwrap();
        let stats = copy(
            &src,
            &src_path,
            len,
            &mut FileSink {
                file: &dst,
                path: &dst_path,
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::read(&src_path).unwrap(),
            std::fs::read(&dst_path).unwrap()
        );
        assert!(stats.data_bytes <= 2 * ZERO_GRAIN as u64, "{stats:?}");
        assert_eq!(stats.data_bytes + stats.zero_bytes, len);
        let allocated = std::fs::metadata(&dst_path).unwrap().blocks() * 512;
        assert!(
            allocated <= 2 * ZERO_GRAIN as u64,
            "{allocated} bytes allocated"
        );
    }
}
