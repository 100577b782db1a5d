//! The `btrfs` backend: each version its own subvolume holding `disk.img`.
//!
//! Staging creates a subvolume `.staging/<volume>`; the importer writes `disk.img` in
//! it. Sealing fsyncs and chmods the file, then with `format = "snapshot"` takes a
//! read-only snapshot of the staging subvolume at `<volume>` (snapshot creation commits
//! a btrfs transaction, so it is durable when the ioctl returns) and deletes the staging
//! subvolume; with `format = "volume"` it renames the staging subvolume into place.
//! Removal deletes the subvolume (`BTRFS_IOC_SNAP_DESTROY`, which also takes read-only
//! snapshots). Clones reflink `disk.img` out of the snapshot: a writable snapshot would
//! make the VM disk a directory, which VM tools do not expect of a disk path.
//!
//! The ioctls are in [`ioctl`](crate::ioctl); the root must be on btrfs, which start-up
//! checks with `statfs`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::statfs::{BTRFS_SUPER_MAGIC, statfs};

use super::files;
use crate::catalog::VolumeRecord;
use crate::config::Format;
use crate::error::{Error, Result, io_err};
use crate::{durable, ioctl, step};

/// The inode number of every subvolume's root directory.
const SUBVOLUME_ROOT_INO: u64 = 256;

/// Creates the staging subvolume that will hold `disk` (replacing a stale one).
pub(crate) fn prepare(disk: &Path) -> Result<()> {
    let subvolume = container(disk)?;
    let (parent, name) = split(subvolume)?;
    durable::create_dirs(parent)?;
    remove_subvolume(subvolume)?;
    let dir = File::open(parent).map_err(io_err("open", parent))?;
    ioctl::subvolume_create(&dir, name).map_err(io_err("create btrfs subvolume", subvolume))
}

/// Seals the staged `disk.img` (see the module docs).
pub(crate) fn seal(record: &VolumeRecord, staging_disk: &Path, format: Format) -> Result<()> {
    files::check_staged(record, staging_disk)?;
    files::make_read_only(staging_disk)?;
    step::reached("seal.read-only");
    let staging = container(staging_disk)?;
    let sealed = container(&record.path)?;
    match format {
        Format::Volume => files::rename_durably(staging, sealed),
        Format::Snapshot => {
            remove_subvolume(sealed)?;
            let (parent, name) = split(sealed)?;
            let src = File::open(staging).map_err(io_err("open", staging))?;
            let dir = File::open(parent).map_err(io_err("open", parent))?;
            ioctl::snapshot(&src, &dir, name, true)
                .map_err(io_err("create read-only btrfs snapshot", sealed))?;
            durable::fsync_dir(parent)?;
            step::reached("seal.snapshotted");
            remove_subvolume(staging)
        }
    }
}

/// Removes the subvolume holding `disk`; a missing one is fine.
pub(crate) fn remove(disk: &Path) -> Result<()> {
    remove_subvolume(container(disk)?)
}

/// Checks that `root` is on btrfs.
pub(crate) fn probe(backend: &str, root: &Path) -> Result<()> {
    let fs = statfs(root).map_err(|e| io_err("statfs", root)(e.into()))?;
    if fs.filesystem_type() != BTRFS_SUPER_MAGIC {
        return Err(Error::Config {
            backend: backend.to_owned(),
            problem: crate::ConfigProblem::NotBtrfs(root.to_owned()),
        });
    }
    Ok(())
}

fn remove_subvolume(subvolume: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(subvolume) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("stat", subvolume)(e)),
    };
    let (parent, name) = split(subvolume)?;
    if meta.is_dir() && meta.ino() == SUBVOLUME_ROOT_INO {
        let dir = File::open(parent).map_err(io_err("open", parent))?;
        ioctl::subvolume_delete(&dir, name).map_err(io_err("delete btrfs subvolume", subvolume))?;
    } else if meta.is_dir() {
        // Only a hand-made directory at a volume's name; it is ours to remove.
        fs::remove_dir_all(subvolume).map_err(io_err("remove", subvolume))?;
    } else {
        fs::remove_file(subvolume).map_err(io_err("remove", subvolume))?;
    }
    durable::fsync_dir(parent)
}

/// The subvolume directory holding a `disk.img`.
fn container(disk: &Path) -> Result<&Path> {
    disk.parent().ok_or_else(|| not_a_volume_path(disk))
}

fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(not_a_volume_path(path)),
    }
}

fn not_a_volume_path(path: &Path) -> Error {
    io_err("locate subvolume of", path)(io::ErrorKind::InvalidInput.into())
}
