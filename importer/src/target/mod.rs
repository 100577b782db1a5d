//! Where the raw disk goes: a sparse file or a block device.
//!
//! A target is opened in two steps. [`TargetSpec::prepare`] runs before any download
//! and fails fast (a busy block device, a missing directory). [`Prepared::open`] runs
//! once the disk's virtual size is known: a file is created and sized (all holes), a
//! block device is checked to be large enough before a byte is written.
//!
//! Writers call [`Target::write`] from any thread. All-zero blocks are skipped: in a
//! file they stay holes; on a block device the ranges never written are zeroed at the
//! end with `BLKZEROOUT`, which is cheap where the device supports it. A file target
//! named by the user is written under a temporary name beside it and renamed into
//! place only by [`Target::commit`], after `fsync`: a failed import never leaves a file
//! that looks complete, and never damages an existing one.

mod ranges;
pub(crate) mod zero;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bootsource_blockdev::pagecache::{self, WriteBehind};
use bootsource_blockdev::{self as blockdev, BlockDevice};

use crate::{Error, Result};
use ranges::RangeSet;

/// Drop written pages from the cache every this many bytes.
const WRITE_BEHIND_WINDOW: u64 = 64 << 20;

/// A function that names the target once the virtual size is known.
pub type ProvideTarget = Box<dyn FnOnce(u64) -> std::result::Result<PathBuf, String> + Send>;

/// Where to write, as the caller says it.
pub enum TargetSpec {
    /// A path from the user: an existing block device is written in place; anything
    /// else is a file, written beside it and renamed into place on success.
    Path(PathBuf),
    /// A path handed out once the virtual size is known (a storage staging volume):
    /// a file there is created directly, a block device written in place.
    Provided(ProvideTarget),
}

impl std::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Provided(_) => f.write_str("Provided(..)"),
        }
    }
}

/// A target checked before the download starts.
pub(crate) enum Prepared {
    File { path: PathBuf, rename: bool },
    Block(BlockDevice),
    Deferred(ProvideTarget),
}

impl TargetSpec {
    /// Checks the target as far as possible without knowing the disk size.
    pub(crate) fn prepare(self) -> Result<Prepared> {
        match self {
            Self::Provided(provide) => Ok(Prepared::Deferred(provide)),
            Self::Path(path) if blockdev::is_block_device(&path) => {
                open_device(&path).map(Prepared::Block)
            }
            Self::Path(path) => {
                if path.is_dir() {
                    return Err(target_error(
                        &path,
                        "is a directory; name the image file to create",
                    ));
                }
                let parent = parent_dir(&path);
                if !parent.is_dir() {
                    return Err(target_error(
                        &path,
                        format!("directory {} does not exist", parent.display()),
                    ));
                }
                Ok(Prepared::File { path, rename: true })
            }
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn open_device(path: &Path) -> Result<BlockDevice> {
    BlockDevice::open_exclusive(path).map_err(|e| match e {
        blockdev::Error::Busy(_) => {
            target_error(path, "is mounted or in use; refusing to overwrite it")
        }
        e => target_error(path, e.to_string()),
    })
}

fn target_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Target {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Prepared {
    /// Opens the target for a disk of `virtual_size` bytes.
    pub(crate) fn open(self, virtual_size: u64) -> Result<Target> {
        let (kind, path) = match self {
            Self::Deferred(provide) => {
                let path = provide(virtual_size).map_err(|reason| Error::Target {
                    path: PathBuf::from("(staging)"),
                    reason,
                })?;
                let prepared = if blockdev::is_block_device(&path) {
                    Self::Block(open_device(&path)?)
                } else {
                    Self::File {
                        path,
                        rename: false,
                    }
                };
                return prepared.open(virtual_size);
            }
            Self::Block(device) => {
                if device.size() < virtual_size {
                    return Err(Error::TargetTooSmall {
                        path: device.path().to_owned(),
                        size: device.size(),
                        needed: virtual_size,
                    });
                }
                let path = device.path().to_owned();
                (Kind::Block(device), path)
            }
            Self::File { path, rename } => {
                let temp = rename.then(|| temp_path(&path));
                let file = create_file(temp.as_deref().unwrap_or(&path), virtual_size)?;
                (Kind::File { file, temp }, path)
            }
        };
        Ok(Target {
            kind,
            path,
            virtual_size,
            written: Mutex::new(RangeSet::default()),
            bytes_written: AtomicU64::new(0),
            write_behind: WriteBehind::new(WRITE_BEHIND_WINDOW),
            done: false,
        })
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{}.partial", std::process::id()))
}

fn create_file(path: &Path, size: u64) -> Result<File> {
    let error = |e: std::io::Error| Error::Write {
        path: path.to_owned(),
        offset: 0,
        source: e,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(error)?;
    // All holes: nothing but the data will take space.
    file.set_len(size).map_err(error)?;
    Ok(file)
}

enum Kind {
    File { file: File, temp: Option<PathBuf> },
    Block(BlockDevice),
}

/// An open target. Writes may come from several threads.
pub struct Target {
    kind: Kind,
    path: PathBuf,
    virtual_size: u64,
    written: Mutex<RangeSet>,
    bytes_written: AtomicU64,
    write_behind: WriteBehind,
    done: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("path", &self.path)
            .field("virtual_size", &self.virtual_size)
            .finish_non_exhaustive()
    }
}

impl Target {
    fn file(&self) -> &File {
        match &self.kind {
            Kind::File { file, .. } => file,
            Kind::Block(device) => device.file(),
        }
    }

    /// The final path of the target.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes actually written (zero blocks excluded).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Writes `data` at guest offset `offset`, skipping all-zero blocks.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset + data.len() as u64;
        if end > self.virtual_size {
            return Err(Error::Internal(format!(
                "write at {offset:#x}+{:#x} past the disk's end",
                data.len()
            )));
        }
        let mut total = 0;
        for (at, run) in zero::nonzero_runs(offset, data) {
            self.file()
                .write_all_at(run, at)
                .map_err(|e| self.write_error(at, e))?;
            if matches!(self.kind, Kind::Block(_)) {
                self.written
                    .lock()
                    .expect("not poisoned")
                    .insert(at, at + run.len() as u64);
            }
            total += run.len() as u64;
        }
        self.bytes_written.fetch_add(total, Ordering::Relaxed);
        if let Err(e) = self.write_behind.wrote(self.file(), total) {
            tracing::debug!(error = %e, "write-behind failed; the final fsync still applies");
        }
        Ok(())
    }

    fn write_error(&self, offset: u64, source: std::io::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            offset,
            source,
        }
    }

    /// Makes the target complete and durable: zeroes a device's unwritten ranges,
    /// fsyncs, and moves a file into place.
    pub fn commit(mut self) -> Result<u64> {
        if let Kind::Block(device) = &self.kind {
            let gaps = self
                .written
                .lock()
                .expect("not poisoned")
                .gaps(self.virtual_size);
            for (start, end) in gaps {
                zero_device_range(device, start, end).map_err(|e| self.write_error(start, e))?;
            }
        }
        self.file().sync_all().map_err(|e| self.write_error(0, e))?;
        let _ = pagecache::drop_clean_pages(self.file());
        if let Kind::File {
            temp: Some(temp), ..
        } = &self.kind
        {
            std::fs::rename(temp, &self.path).map_err(|e| self.write_error(0, e))?;
            sync_dir(parent_dir(&self.path)).map_err(|e| self.write_error(0, e))?;
        }
        self.done = true;
        Ok(self.bytes_written())
    }
}

/// Zeroes `start..end` on a device: the block-aligned middle with `BLKZEROOUT`, the
/// unaligned edges by writing zeros.
fn zero_device_range(device: &BlockDevice, start: u64, end: u64) -> std::io::Result<()> {
    let block = u64::from(device.logical_block_size());
    let (mid_start, mid_end) = (start.next_multiple_of(block), end / block * block);
    if mid_start >= mid_end {
        return device.file().write_all_at(
            &vec![0; usize::try_from(end - start).expect("below one block")],
            start,
        );
    }
    device.file().write_all_at(
        &vec![0; usize::try_from(mid_start - start).expect("below one block")],
        start,
    )?;
    device
        .zero_range(mid_start, mid_end - mid_start)
        .map_err(std::io::Error::other)?;
    device.file().write_all_at(
        &vec![0; usize::try_from(end - mid_end).expect("below one block")],
        mid_end,
    )
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An uncommitted file target is removed: it must never look complete.
impl Drop for Target {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Kind::File { temp, .. } = &self.kind {
            let path = temp.as_ref().unwrap_or(&self.path);
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the partial image");
            }
        }
    }
}
