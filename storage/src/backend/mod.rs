//! Backends: where each kind puts a volume, and how it prepares, seals and removes one.
//!
//! Layout of the file-based kinds, under the backend's root:
//!
//! ```text
//! <root>/<namespace>/<source>/<volume>            dir, reflink: the sealed raw file (0444)
//! <root>/<namespace>/<source>/<volume>/disk.img   btrfs: subvolume holding the raw file
//! <root>/<namespace>/<source>/.staging/<volume>   staging file (or subvolume) being written
//! ```
//!
//! A `block` volume is a whole device of the pool; its path is the device path as
//! configured. The dispatch here works from the catalog record (which stores kind and
//! format), not from the config, so a version stays removable after its backend was
//! renamed or dropped from the config.
//!
//! Each kind is its own module: [`files`] (`dir`, and what the others share),
//! [`reflink`], [`btrfs`], [`block`].

pub(crate) mod block;
pub(crate) mod btrfs;
pub(crate) mod files;
pub(crate) mod reflink;

use std::path::{Path, PathBuf};

use bootsource_blockdev::BlockDevice;
use bootsource_place::{Disk, DiskSize};

use crate::catalog::{Catalog, VolumeRecord};
use crate::config::{Backend, BackendKind, Format, Site};
use crate::error::{Result, block_err, place_err};

/// Where a new volume will live.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// The raw disk once sealed.
    pub path: PathBuf,
    /// Where the importer writes.
    pub staging_path: PathBuf,
}

/// Picks the location of a new volume (for `block`, a free device big enough).
pub(crate) fn locate(
    backend: &Backend,
    catalog: &Catalog,
    namespace: &str,
    source: &str,
    volume: &str,
    size: u64,
) -> Result<Location> {
    match &backend.site {
        Site::Root(root) => Ok(files::locate(root, backend.kind, namespace, source, volume)),
        Site::Pool(devices) => block::choose(&backend.name, devices, catalog, size),
    }
}

/// Creates what the importer writes into (after the record is saved).
pub(crate) fn prepare_staging(record: &VolumeRecord) -> Result<()> {
    let Some(staging) = &record.staging_path else {
        return Ok(());
    };
    match record.kind {
        BackendKind::Dir | BackendKind::Reflink => files::prepare(staging),
        BackendKind::Btrfs => btrfs::prepare(staging),
        BackendKind::Block => Ok(()),
    }
}

/// Opens what the importer writes into, once prepared: a new staging file (created
/// exclusively, never through a symlink; `reserve` bytes kept free on its filesystem)
/// or the pool device, exclusively. A file of unknown `size` grows as written.
pub(crate) fn open_staging(
    record: &VolumeRecord,
    size: DiskSize,
    reserve: Option<u64>,
) -> Result<Disk> {
    let volume = record.volume.as_str();
    let opened = match record.kind {
        BackendKind::Block => BlockDevice::open_exclusive(&record.path)
            .map_err(block_err(volume))
            .and_then(|device| Disk::on_device(device, size).map_err(place_err(&record.path)))?,
        BackendKind::Dir | BackendKind::Reflink | BackendKind::Btrfs => {
            let path = record.staging_path.as_ref().unwrap_or(&record.path);
            let file = files::create_staging_file(path)?;
            Disk::in_file(file, path.clone(), size, reserve).map_err(place_err(path))?
        }
    };
    Ok(opened)
}

/// Seals a staged volume at its final path: fsync, read-only, and a snapshot where the
/// format asks for one. Idempotent enough to be retried after a crash: a stale final
/// entry is replaced.
pub(crate) fn seal(record: &VolumeRecord) -> Result<()> {
    let Some(staging) = &record.staging_path else {
        return Ok(());
    };
    match (record.kind, record.format) {
        (BackendKind::Dir | BackendKind::Reflink, Format::Volume) => {
            files::seal_by_rename(record, staging)
        }
        (BackendKind::Reflink, Format::Snapshot) => reflink::seal_by_clone(record, staging),
        (BackendKind::Btrfs, format) => btrfs::seal(record, staging, format),
        (BackendKind::Block, _) => block::seal(record),
        (BackendKind::Dir, Format::Snapshot) => unreachable_format(record),
    }
}

/// Removes everything a record names (its staging and its final data). Missing pieces
/// are fine: removal is retried after crashes.
pub(crate) fn remove(record: &VolumeRecord, backends: &[Backend]) -> Result<()> {
    match record.kind {
        BackendKind::Dir | BackendKind::Reflink => {
            for path in record.staging_path.iter().chain([&record.path]) {
                files::remove(path)?;
            }
            Ok(())
        }
        BackendKind::Btrfs => {
            for path in record.staging_path.iter().chain([&record.path]) {
                btrfs::remove(path)?;
            }
            Ok(())
        }
        BackendKind::Block => block::release(record, backends),
    }
}

/// Checks, at start-up, that a backend's root can do what its kind promises.
pub(crate) fn probe(backend: &Backend) -> Result<()> {
    let Some(root) = backend.root() else {
        return Ok(());
    };
    crate::durable::create_dirs(root)?;
    match backend.kind {
        BackendKind::Reflink => reflink::probe(&backend.name, root),
        BackendKind::Btrfs => btrfs::probe(&backend.name, root),
        BackendKind::Dir | BackendKind::Block => Ok(()),
    }
}

/// The directory of a source's versions under a root.
pub(crate) fn volume_dir(root: &Path, namespace: &str, source: &str) -> PathBuf {
    root.join(namespace).join(source)
}

/// `dir` with `format = "snapshot"` is refused by config validation; a record saying
/// so was edited by hand. Seal it as a volume rather than refuse to finish the import.
fn unreachable_format(record: &VolumeRecord) -> Result<()> {
    tracing::warn!(volume = %record.volume, "dir volume recorded with snapshot format; sealing as volume");
    match &record.staging_path {
        Some(staging) => files::seal_by_rename(record, staging),
        None => Ok(()),
    }
}
