//! [`Target`]: the place a user names with `--to`: a block device, or a file to create.
//!
//! A target is taken in two steps. [`Target::check`] runs before anything is
//! downloaded and fails fast: a block device is opened exclusively at once (the kernel
//! refuses while it is mounted or held by LVM, md or another program), a file's
//! directory must exist. [`Target::open`] runs once the disk's virtual size is known:
//! a device is checked to be large enough, a file is created hidden ([`NewFile`]) and
//! sized. [`OpenTarget::commit`] makes it complete and durable and, for a file, puts it
//! under its name; dropped uncommitted, a file target leaves nothing behind and an
//! existing file of that name is untouched.
//!
//! A device path may be a symlink (`/dev/disk/by-id/…`): the user chose it, and a
//! device cannot be planted by an unprivileged user. A file is never created through a
//! path component we do not control beyond the directory the user named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bootsource_blockdev::{self as blockdev, BlockDevice};

use crate::Place;
use crate::disk::{Disk, DiskSize};
use crate::error::{Error, Result, Unusable};
use crate::new_file::NewFile;

/// A target checked before the download.
#[derive(Debug)]
pub enum Target {
    /// A file to create (or replace) at this path.
    File(PathBuf),
    /// A block device, already opened exclusively.
    Device(BlockDevice),
}

impl Target {
    /// Checks `path` as far as possible without knowing the disk's size.
    pub fn check(path: &Path) -> Result<Self> {
        if blockdev::is_block_device(path) {
            return BlockDevice::open_exclusive(path)
                .map(Self::Device)
                .map_err(|source| Error::Device {
                    path: path.to_owned(),
                    source,
                });
        }
        let problem = if path.is_dir() {
            Some(Unusable::IsDirectory)
        } else if path.file_name().is_none() {
            Some(Unusable::NoFileName)
        } else if !parent(path).is_dir() {
            Some(Unusable::NoParent)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::Unusable {
                path: path.to_owned(),
                problem,
            }),
            None => Ok(Self::File(path.to_owned())),
        }
    }

    /// Opens the target for a disk of `size` (known, or known at the end: a file then
    /// grows as written, a device takes it within its own size). A file target keeps
    /// `reserve` bytes free on its filesystem (`min_free`), if given.
    pub fn open(self, size: DiskSize, reserve: Option<u64>) -> Result<OpenTarget> {
        match self {
            Self::Device(device) => Ok(OpenTarget {
                disk: Arc::new(Disk::on_device(device, size)?),
                new_file: None,
            }),
            Self::File(path) => {
                let (new_file, file) = NewFile::create(&path)?;
                Ok(OpenTarget {
                    disk: Arc::new(Disk::in_file(file, path, size, reserve)?),
                    new_file: Some(new_file),
                })
            }
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An opened target, being written.
#[derive(Debug)]
pub struct OpenTarget {
    disk: Arc<Disk>,
    new_file: Option<NewFile>,
}

impl OpenTarget {
    /// Where the importer writes.
    pub fn place(&self) -> Arc<dyn Place> {
        Arc::clone(&self.disk) as Arc<dyn Place>
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        self.disk.path()
    }

    /// Completes the disk (see [`Disk::finish`]) and puts a file under its name.
    /// Returns the bytes written.
    pub fn commit(self) -> Result<u64> {
        let written = self.disk.finish()?;
        if let Some(new_file) = self.new_file {
            new_file.commit(self.disk.file())?;
        }
        Ok(written)
    }
}
