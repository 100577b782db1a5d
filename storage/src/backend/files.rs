//! The `dir` backend, and the file handling the other file-based kinds share.
//!
//! Staging makes sure the staging file's directory exists and nothing stale sits at its
//! name, then creates the file exclusively (`O_EXCL | O_NOFOLLOW`: nothing planted at
//! its name is ever followed) for the importer to write into.
//! Sealing checks the size, fsyncs the data, makes the file read-only (mode 0444) and
//! renames it to its final name; the rename and both directories are fsynced. Only the
//! catalog write that follows makes it a version: a sealed file the catalog does not
//! list is a leftover, and its record (still `staging`) says to remove it.

use std::fs::{self, File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::Location;
use crate::catalog::VolumeRecord;
use crate::config::BackendKind;
use crate::error::{Error, Result, io_err};
use crate::{durable, step};

/// Name of the staging directory inside a source's directory.
pub(crate) const STAGING_DIR: &str = ".staging";
/// Name of the raw file inside a btrfs volume's subvolume.
pub(crate) const DISK_FILE: &str = "disk.img";

/// Paths of a new volume under `root`.
pub(crate) fn locate(
    root: &Path,
    kind: BackendKind,
    namespace: &str,
    source: &str,
    volume: &str,
) -> Location {
    let dir = super::volume_dir(root, namespace, source);
    let staging = dir.join(STAGING_DIR).join(volume);
    match kind {
        BackendKind::Btrfs => Location {
            path: dir.join(volume).join(DISK_FILE),
            staging_path: staging.join(DISK_FILE),
        },
        _ => Location {
            path: dir.join(volume),
            staging_path: staging,
        },
    }
}

/// Makes the staging file's directory; removes a stale file at its name.
pub(crate) fn prepare(staging: &Path) -> Result<()> {
    if let Some(dir) = staging.parent() {
        durable::create_dirs(dir)?;
    }
    durable::remove_if_exists(staging)?;
    Ok(())
}

/// Creates the staging file, which must not exist (`prepare` removed any leftover).
pub(crate) fn create_staging_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("create staging file", path))
}

/// Opens the staged file, checks it is a regular file of the announced size, and
/// fsyncs it.
pub(crate) fn check_staged(record: &VolumeRecord, staging: &Path) -> Result<File> {
    let file = File::open(staging).map_err(io_err("open staged image", staging))?;
    let meta = file.metadata().map_err(io_err("stat", staging))?;
    if !meta.is_file() || meta.len() != record.size {
        return Err(Error::StagingSize {
            volume: record.volume.clone(),
            path: staging.to_owned(),
            actual: meta.len(),
            expected: record.size,
        });
    }
    file.sync_all().map_err(io_err("fsync", staging))?;
    Ok(file)
}

/// Makes a file read-only for everyone.
pub(crate) fn make_read_only(path: &Path) -> Result<()> {
    fs::set_permissions(path, Permissions::from_mode(0o444)).map_err(io_err("chmod 0444", path))
}

/// Seals by fsync + chmod 0444 + rename to the final name.
pub(crate) fn seal_by_rename(record: &VolumeRecord, staging: &Path) -> Result<()> {
    check_staged(record, staging)?;
    make_read_only(staging)?;
    step::reached("seal.read-only");
    rename_durably(staging, &record.path)
}

/// Renames and fsyncs both directories.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(io_err("rename staged volume to", to))?;
    durable::fsync_parent(to)?;
    durable::fsync_parent(from)
}

/// Removes a volume file; a missing one is fine.
pub(crate) fn remove(path: &Path) -> Result<()> {
    if durable::remove_if_exists(path)? {
        durable::fsync_parent(path)?;
    }
    Ok(())
}
