//! What a write from outside the store must not touch: [`Store::refuse_overlap`], the
//! one check `clone` and the CLI's `import` make before writing a target.
//!
//! A block-device target is compared by device number and sysfs topology
//! ([`bootsource_blockdev::topology`]), never by path: it is refused when it is,
//! contains or is inside a pool device, or the device under the file system of a
//! storage root or of the state directory. So the disk under a pool's
//! partitions, a pool partition reached through `/dev/disk/by-id/…`, and the disk
//! holding `/var/lib/bootsource` are all refused; a sibling partition is not. Any other
//! target is refused when it lands (symlinks and `..` followed) inside the state
//! directory, a storage root or a pool device's path.

use std::path::{Path, PathBuf};

use bootsource_blockdev::topology::{DeviceNumber, Sysfs};

use crate::config::Site;
use crate::error::{Error, Result};
use crate::landing::landing;
use crate::store::Store;

/// A device the store manages, and what it is to the store.
struct ManagedDevice {
    number: DeviceNumber,
    what: String,
}

impl Store {
    /// Refuses `target` if writing it could change anything this store manages (see
    /// the module docs): [`Error::TargetOverlaps`] for a block device,
    /// [`Error::TargetForbidden`] for a path inside a managed directory.
    pub fn refuse_overlap(&self, target: &Path) -> Result<()> {
        let resolved = landing(target);
        if let Some(number) = DeviceNumber::of_block_device(&resolved).map_err(topology_err)? {
            self.refuse_device(&resolved, number)?;
        }
        refuse_inside(&resolved, &self.managed_paths())
    }

    /// Refuses the block device `number` (opened from `target`) if it overlaps a
    /// managed device.
    pub(crate) fn refuse_device(&self, target: &Path, number: DeviceNumber) -> Result<()> {
        let sysfs = Sysfs::system();
        for managed in self.managed_devices(&sysfs)? {
            if let Some(relation) = sysfs
                .overlap(number, managed.number)
                .map_err(topology_err)?
            {
                return Err(Error::TargetOverlaps {
                    target: target.to_owned(),
                    number,
                    relation,
                    managed: managed.number,
                    what: managed.what,
                });
            }
        }
        Ok(())
    }

    /// Every pool device that exists now, and the devices under the state directory's
    /// and each storage root's file system.
    fn managed_devices(&self, sysfs: &Sysfs) -> Result<Vec<ManagedDevice>> {
        let state = self.state_dir();
        let mut managed: Vec<ManagedDevice> = file_system(
            sysfs,
            state,
            format!("the file system of the state directory {}", state.display()),
        )?
        .into_iter()
        .collect();
        for backend in &self.backends {
            match &backend.site {
                Site::Root(root) => managed.extend(file_system(
                    sysfs,
                    root,
                    format!(
                        "the file system of {} (backend {})",
                        root.display(),
                        backend.name
                    ),
                )?),
                Site::Pool(devices) => {
                    for device in devices {
                        managed.extend(
                            DeviceNumber::of_block_device(device)
                                .map_err(topology_err)?
                                .map(|number| ManagedDevice {
                                    number,
                                    what: format!(
                                        "pool device {} of backend {}",
                                        device.display(),
                                        backend.name
                                    ),
                                }),
                        );
                    }
                }
            }
        }
        Ok(managed)
    }
}

/// The device under the file system `path` is (or will be) on, if any.
fn file_system(sysfs: &Sysfs, path: &Path, what: String) -> Result<Option<ManagedDevice>> {
    Ok(sysfs
        .filesystem_device(&landing(path))
        .map_err(topology_err)?
        .map(|number| ManagedDevice { number, what }))
}

/// Refuses `resolved` if it is inside any of `managed` (compared where they land).
pub(crate) fn refuse_inside(resolved: &Path, managed: &[PathBuf]) -> Result<()> {
    match managed
        .iter()
        .map(|m| landing(m))
        .find(|m| resolved.starts_with(m))
    {
        Some(managed) => Err(Error::TargetForbidden {
            target: resolved.to_owned(),
            managed,
        }),
        None => Ok(()),
    }
}

fn topology_err(source: bootsource_blockdev::Error) -> Error {
    Error::BlockDevice {
        purpose: "comparing the target with managed devices".to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn paths_inside_managed_ones_are_refused_where_they_land() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let vms = dir.path().join("vms");
        fs::create_dir_all(root.join("os-images/fedora")).unwrap();
        fs::create_dir_all(&vms).unwrap();
        std::os::unix::fs::symlink(root.join("os-images"), vms.join("sneaky")).unwrap();
        let managed = [root.clone()];

        for bad in [
            root.join("os-images/fedora/vm.img"),
            root.join("vm.img"),
            vms.join("sneaky/vm.img"),
            vms.join("../store/vm.img"),
            vms.join("missing/../../store/vm.img"),
        ] {
            let err = refuse_inside(&landing(&bad), &managed).unwrap_err();
            assert!(
                matches!(err, Error::TargetForbidden { .. }),
                "{bad:?}: {err}"
            );
        }
        refuse_inside(&landing(&vms.join("vm.img")), &managed).unwrap();
        refuse_inside(&landing(&dir.path().join("store2/vm.img")), &managed).unwrap();
    }
}
