//! XFS with reflink on a loop device, mounted in a temporary directory, for the
//! `reflink` backend and clones that share extents.
//!
//! `mkfs.xfs` refuses file systems under 300 MB, so the backing file is 512 MiB,
//! sparse: it costs what is written. Dropping an [`Xfs`] unmounts it, then the loop
//! device is detached ([`LoopDevice`]'s drop). Needs root, `xfsprogs` and `util-linux`;
//! [`shared_extents`] reads `filefrag -v` (`e2fsprogs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::loopdev::LoopDevice;
use super::tools;

/// Size of the backing file: above mkfs.xfs's 300 MB floor.
const SIZE: u64 = 512 << 20;

/// A mounted XFS (reflink=1); unmounted and detached on drop.
#[derive(Debug)]
pub struct Xfs {
    mountpoint: PathBuf,
    // Dropped after `drop` below has unmounted: detaches the device.
    _device: LoopDevice,
    _dir: tempfile::TempDir,
}

impl Xfs {
    /// Makes and mounts the file system.
    pub fn mount() -> Xfs {
        tools::require("mkfs.xfs", "xfsprogs");
        let device = LoopDevice::attach(SIZE);
        tools::run_command(
            Command::new("mkfs.xfs")
                .args(["-q", "-f", "-m", "reflink=1"])
                .arg(device.path()),
        );
        let dir = tempfile::Builder::new().prefix("xfs-").tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        fs::create_dir(&mountpoint).unwrap();
        tools::run_command(Command::new("mount").arg(device.path()).arg(&mountpoint));
        Xfs {
            mountpoint,
            _device: device,
            _dir: dir,
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        // Best effort: a failing test must still release the mount and the device.
        let _ = Command::new("umount").arg(&self.mountpoint).status();
    }
}

/// `(extents, shared extents, filefrag's output)` of `file` as `filefrag -v` reports
/// them (after a sync, so delayed allocation has placed every extent).
pub fn shared_extents(file: &Path) -> (usize, usize, String) {
    tools::require("filefrag", "e2fsprogs");
    tools::run("sync", [file]);
    let out = tools::run("filefrag", [Path::new("-v"), file]);
    let text = String::from_utf8(out).unwrap();
    let extents: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.trim().parse::<u64>().is_ok())
        })
        .collect();
    let shared = extents.iter().filter(|l| l.contains("shared")).count();
    (extents.len(), shared, text)
}
