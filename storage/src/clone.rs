//! Clones: a new VM disk from a version.
//!
//! The target is a file path that does not exist yet (its directory must), or an
//! existing block device (opened `O_EXCL`, so never a mounted one, and at least the
//! image's size; bytes past the image are left alone). An existing regular file is
//! refused rather than overwritten. So is any target that overlaps what the store
//! manages ([`Store::refuse_overlap`]): a path inside the state directory (and with it
//! every namespace's `current` links) or a backend root (and with it every namespace's
//! volumes), and a device that is, contains or is inside a pool device or the device
//! under a root's file system — compared by device number, checked again on the
//! opened device — as the golden-image namespace is off limits to VM disks.
//!
//! How: a file target gets a reflink (`FICLONE`) of the version's raw file when the
//! file system can (`reflink` and `btrfs` backends, or a `dir` backend on XFS/btrfs,
//! target on the same file system); otherwise, and always for block devices on either
//! side, a [sparse copy](crate::sparse). btrfs clones are reflinks of `disk.img` out of
//! the read-only snapshot rather than writable snapshots, which would make the VM disk
//! a directory. While copying, the version is held (shared volume lock) so garbage
//! collection cannot remove it; its `last_used` is then updated.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use bootsource_blockdev::BlockDevice;
use bootsource_blockdev::topology::DeviceNumber;

use crate::config::BackendKind;
use bootsource_place::{Disk, DiskSize};

use crate::error::{Error, Result, clone_target_err, io_err};
use crate::ioctl;
use crate::lifecycle::Hold;
use crate::names;
use crate::sparse;
use crate::status::Version;
use crate::store::Store;

/// How a clone was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneMethod {
    /// `FICLONE`: the clone shares the version's extents.
    Reflink,
    /// Data copied, holes kept (zeroed on a block device).
    SparseCopy,
}

/// What a clone did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneReport {
    /// The version cloned.
    pub version: Version,
    /// The target, symlinks resolved.
    pub target: PathBuf,
    /// How.
    pub method: CloneMethod,
    /// Bytes written as data (0 for a reflink).
    pub bytes_written: u64,
}

/// A checked clone target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    NewFile(PathBuf),
    Device(PathBuf),
}

/// How many times the current version may vanish under a clone before giving up.
const ATTEMPTS: usize = 3;

impl Store {
    /// Clones the current version of `source` to `target` (see the module docs).
    pub fn clone_current(&self, source: &str, target: &Path) -> Result<CloneReport> {
        self.writable()?;
        names::check_source_name(source)?;
        self.refuse_overlap(target)?;
        let target = resolve_target(target)?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let version = self
                .current(source)?
                .ok_or_else(|| Error::NoCurrentVersion {
                    name: source.to_owned(),
                })?;
            match self.hold(&version) {
                Ok(hold) => return self.clone_held(&hold, &target),
                // Replaced and collected between reading and holding it: take the new one.
                Err(e @ Error::VersionGone { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoCurrentVersion {
            name: source.to_owned(),
        }))
    }

    /// Clones a given version (current or not) to `target`.
    pub fn clone_version(&self, version: &Version, target: &Path) -> Result<CloneReport> {
        self.writable()?;
        self.refuse_overlap(target)?;
        let target = resolve_target(target)?;
        let hold = self.hold(version)?;
        self.clone_held(&hold, &target)
    }

    fn clone_held(&self, hold: &Hold, target: &Target) -> Result<CloneReport> {
        let version = hold.version();
        let (method, bytes_written) = match target {
            Target::NewFile(path) => clone_to_new_file(version, path)?,
            Target::Device(path) => (
                CloneMethod::SparseCopy,
                clone_to_device(version, path, |number| self.refuse_device(path, number))?,
            ),
        };
        self.touch(version)?;
        let target = match target {
            Target::NewFile(p) | Target::Device(p) => p.clone(),
        };
        tracing::info!(source = %version.source, volume = %version.volume,
            target = %target.display(), ?method, bytes_written, "cloned");
        Ok(CloneReport {
            version: version.clone(),
            target,
            method,
            bytes_written,
        })
    }
}

/// Resolves `target` (its directory must exist) and tells what it is.
pub(crate) fn resolve_target(target: &Path) -> Result<Target> {
    let resolved = match fs::canonicalize(target) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(Component::Normal(name)) = target.components().next_back() else {
                return Err(io_err("resolve clone target", target)(
                    io::ErrorKind::InvalidInput.into(),
                ));
            };
            let parent = match target.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            fs::canonicalize(parent)
                .map_err(io_err("resolve directory of clone target", parent))?
                .join(name)
        }
        Err(e) => return Err(io_err("resolve clone target", target)(e)),
    };
    match fs::metadata(&resolved) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::NewFile(resolved)),
        Err(e) => Err(io_err("stat clone target", &resolved)(e)),
        Ok(m) if m.file_type().is_block_device() => Ok(Target::Device(resolved)),
        Ok(_) => Err(Error::CloneTargetExists(resolved)),
    }
}

/// Reflink, or sparse copy where reflinks are not possible; the file is removed again
/// if the clone fails.
fn clone_to_new_file(version: &Version, path: &Path) -> Result<(CloneMethod, u64)> {
    let src = File::open(&version.path).map_err(io_err("open", &version.path))?;
    let dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io_err("create clone target", path))?;
    let result = fill_new_file(version, &src, &dst, path);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

fn fill_new_file(
    version: &Version,
    src: &File,
    dst: &File,
    path: &Path,
) -> Result<(CloneMethod, u64)> {
    if version.kind != BackendKind::Block {
        match ioctl::ficlone(dst, src) {
            Ok(()) => {
                dst.sync_all().map_err(io_err("fsync", path))?;
                return Ok((CloneMethod::Reflink, 0));
            }
            Err(e) if reflink_impossible(&e) => {}
            Err(e) => return Err(io_err("FICLONE to", path)(e)),
        }
    }
    let file = dst.try_clone().map_err(io_err("reopen", path))?;
    let disk = Disk::in_file(file, path.to_owned(), DiskSize::Known(version.size), None).map_err(
        |source| Error::Place {
            path: path.to_owned(),
            source,
        },
    )?;
    let written = sparse::copy(src, &version.path, &disk)?;
    Ok((CloneMethod::SparseCopy, written))
}

/// Errors that mean "no reflink here" rather than "something broke".
fn reflink_impossible(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EXDEV | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOTTY | libc::ENOSYS)
    )
}

/// `refuse` sees the opened device's number before a byte is written: the path may
/// have been swapped for another device since it was checked.
fn clone_to_device(
    version: &Version,
    path: &Path,
    refuse: impl FnOnce(DeviceNumber) -> Result<()>,
) -> Result<u64> {
    let dev = BlockDevice::open_exclusive(path).map_err(clone_target_err)?;
    refuse(dev.number().map_err(clone_target_err)?)?;
    if dev.size() < version.size {
        return Err(Error::CloneTargetTooSmall {
            target: path.to_owned(),
            available: dev.size(),
            needed: version.size,
        });
    }
    let src = File::open(&version.path).map_err(io_err("open", &version.path))?;
    let disk =
        Disk::on_device(dev, DiskSize::Known(version.size)).map_err(|source| Error::Place {
            path: path.to_owned(),
            source,
        })?;
    sparse::copy(&src, &version.path, &disk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_new_files_devices_or_refused_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        let vms = dir.path().join("vms");
        fs::create_dir_all(&vms).unwrap();
        let ok = resolve_target(&vms.join("vm.img")).unwrap();
        assert_eq!(
            ok,
            Target::NewFile(fs::canonicalize(&vms).unwrap().join("vm.img"))
        );

        fs::write(vms.join("exists.img"), b"x").unwrap();
        assert!(matches!(
            resolve_target(&vms.join("exists.img")),
            Err(Error::CloneTargetExists(_))
        ));
        assert!(resolve_target(&vms.join("missing-dir/vm.img")).is_err());
    }
}
