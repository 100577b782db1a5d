//! Loop block devices over temporary files, for block-device targets.
//!
//! `losetup -f --show` attaches a free loop device to a backing file in the device's own
//! temporary directory; dropping the [`LoopDevice`] unmounts what [`LoopDevice::mount`]
//! mounted and detaches the device, so parallel tests each get their own and none leaks.
//! Needs root (as the whole suite does) and `util-linux` (`losetup`), `mount` and
//! `e2fsprogs` (`mkfs.ext4`) for the mounted case.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::tools;

/// An attached loop device; detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    device: PathBuf,
    dir: TempDir,
    mountpoint: Option<PathBuf>,
}

impl LoopDevice {
    /// A loop device of `size` bytes over a sparse backing file.
    pub fn attach(size: u64) -> LoopDevice {
        tools::require("losetup", "util-linux");
        let dir = tempfile::Builder::new().prefix("loop-").tempdir().unwrap();
        let backing = dir.path().join("backing.img");
        File::create(&backing).unwrap().set_len(size).unwrap();
        let stdout = tools::run_command(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&backing),
        )
        .stdout;
        let name = String::from_utf8(stdout).unwrap().trim().to_owned();
        assert!(name.starts_with("/dev/loop"), "losetup printed {name:?}");
        LoopDevice {
            device: PathBuf::from(name),
            dir,
            mountpoint: None,
        }
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.device
    }

    /// Overwrites the whole device with `byte` (a "dirty" device), then flushes.
    pub fn fill(&self, byte: u8) {
        let mut device = OpenOptions::new().write(true).open(&self.device).unwrap();
        let size = self.size();
        let chunk = vec![byte; 1 << 20];
        let mut done = 0u64;
        while done < size {
            let len = usize::try_from((size - done).min(chunk.len() as u64)).unwrap();
            device.write_all(&chunk[..len]).unwrap();
            done += len as u64;
        }
        device.sync_all().unwrap();
    }

    /// The device's size in bytes.
    pub fn size(&self) -> u64 {
        let mut device = File::open(&self.device).unwrap();
        device.seek(SeekFrom::End(0)).unwrap()
    }

    /// `len` bytes read from the device at `offset` (through the page cache, which the
    /// importer's writes also go through or invalidate).
    pub fn read_at(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut device = File::open(&self.device).unwrap();
        device.seek(SeekFrom::Start(offset)).unwrap();
        let mut bytes = vec![0u8; len];
        device.read_exact(&mut bytes).unwrap();
        bytes
    }

    /// Makes an ext4 filesystem on the device and mounts it, read-only, in the temporary
    /// directory. Read-only because a read-write ext4 mount writes its own superblock
    /// and inode tables in the background (journal commits, lazy inode-table init) at
    /// moments a loaded machine shifts: a test comparing the device's bytes could not
    /// tell those writes from ours. Read-only, the mount still claims the device.
    pub fn mount(&mut self) {
        tools::require("mkfs.ext4", "e2fsprogs");
        tools::run_command(
            Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .arg(&self.device),
        );
        let mountpoint = self.dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        tools::run_command(
            Command::new("mount")
                .args(["-o", "ro"])
                .arg(&self.device)
                .arg(&mountpoint),
        );
        self.mountpoint = Some(mountpoint);
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // Best effort: a failing test must still release the device.
        if let Some(mountpoint) = self.mountpoint.take() {
            let _ = Command::new("umount").arg(&mountpoint).status();
        }
        let _ = Command::new("losetup")
            .arg("--detach")
            .arg(&self.device)
            .status();
    }
}
