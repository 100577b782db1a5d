//! The `block` backend: a pool of block devices listed in the config, one version per
//! device.
//!
//! Device use is recorded only in the catalog: a device is taken from the moment a
//! `staging` record names it (written before the importer sees the path) until its
//! record is dropped after the device was discarded. Records of every namespace count,
//! so orphans of an old namespace keep their devices. A device is chosen in config
//! order among those that no record names, that open with `O_EXCL` (the kernel refuses
//! that while the device is mounted or held by LVM, md, dm or another exclusive
//! opener) and that are at least the image's virtual size. The store does not keep the
//! device open: the importer opens it exclusively itself.
//!
//! Sealing opens the device exclusively (which fails if the importer still holds it),
//! checks its size and flushes it. Block versions are not write-protected: the kernel's
//! read-only flag does not survive a reboot, and the catalog's ownership is what keeps
//! the store from reusing a device. Freeing a device discards it whole; a device no
//! longer listed in any pool is forgotten without being touched, since its path may
//! now name someone else's disk.

use std::path::{Path, PathBuf};

use bootsource_blockdev::{self as blockdev, BlockDevice};

use super::Location;
use crate::catalog::{Catalog, VolumeRecord};
use crate::config::{Backend, Site};
use crate::error::{Error, Result, block_err};
use crate::problem::{DeviceUnusable, SkippedDevices};

/// Picks a free device of at least `size` bytes.
pub(crate) fn choose(
    backend: &str,
    devices: &[PathBuf],
    catalog: &Catalog,
    size: u64,
) -> Result<Location> {
    let mut skipped = Vec::new();
    for device in devices {
        let why = match unusable(device, catalog, size) {
            None => {
                return Ok(Location {
                    path: device.clone(),
                    staging_path: device.clone(),
                });
            }
            Some(why) => why,
        };
        tracing::debug!(backend, device = %device.display(), %why, "block device skipped");
        skipped.push((device.clone(), why));
    }
    Err(Error::PoolExhausted {
        backend: backend.to_owned(),
        needed: size,
        devices: SkippedDevices(skipped),
    })
}

/// Why `device` cannot take an image of `size` bytes, if it cannot.
fn unusable(device: &Path, catalog: &Catalog, size: u64) -> Option<DeviceUnusable> {
    if let Some(holder) = catalog.device_holder(device) {
        return Some(DeviceUnusable::Holds {
            volume: holder.volume.clone(),
            namespace: holder.namespace.clone(),
            source: holder.source.clone(),
        });
    }
    match BlockDevice::open_exclusive(device) {
        Err(blockdev::Error::Busy(_)) => Some(DeviceUnusable::Busy),
        Err(blockdev::Error::NotBlockDevice(_)) => Some(DeviceUnusable::NotBlockDevice),
        Err(blockdev::Error::Io { op, source, .. }) => Some(DeviceUnusable::Failed {
            op,
            error: source.to_string(),
        }),
        Ok(dev) if dev.size() < size => Some(DeviceUnusable::TooSmall(dev.size())),
        Ok(_) => None,
    }
}

/// Checks the device is closed by the importer and large enough, and flushes it.
pub(crate) fn seal(record: &VolumeRecord) -> Result<()> {
    let volume = record.volume.as_str();
    let dev = BlockDevice::open_exclusive(&record.path).map_err(block_err(volume))?;
    if dev.size() < record.size {
        return Err(Error::StagingSize {
            volume: record.volume.clone(),
            path: record.path.clone(),
            actual: dev.size(),
            expected: record.size,
        });
    }
    dev.file()
        .sync_all()
        .map_err(|e| crate::error::io_err("fsync", &record.path)(e))
}

/// Frees a device: discards it if it is still in a configured pool.
pub(crate) fn release(record: &VolumeRecord, backends: &[Backend]) -> Result<()> {
    let device = &record.path;
    if !in_a_pool(device, backends) {
        tracing::warn!(device = %device.display(), volume = %record.volume,
            "device is in no configured block pool any more; forgotten without discarding");
        return Ok(());
    }
    let volume = record.volume.as_str();
    let dev = match BlockDevice::open_exclusive(device) {
        Ok(dev) => dev,
        Err(blockdev::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            tracing::warn!(device = %device.display(), volume, "device is gone; nothing to discard");
            return Ok(());
        }
        Err(e) => return Err(block_err(volume)(e)),
    };
    match dev.discard_range(0, dev.size()) {
        Ok(()) => {
            tracing::info!(device = %device.display(), volume, "block device discarded");
            Ok(())
        }
        Err(blockdev::Error::Io { source, .. })
            if source.raw_os_error() == Some(libc::EOPNOTSUPP) =>
        {
            tracing::info!(device = %device.display(), volume, "device cannot discard; freed as is");
            Ok(())
        }
        Err(e) => Err(block_err(volume)(e)),
    }
}

fn in_a_pool(device: &Path, backends: &[Backend]) -> bool {
    let canonical = std::fs::canonicalize(device).ok();
    backends.iter().any(|b| match &b.site {
        Site::Pool(devices) => devices.iter().any(|d| {
            d == device || canonical.is_some() && std::fs::canonicalize(d).ok() == canonical
        }),
        Site::Root(_) => false,
    })
}
