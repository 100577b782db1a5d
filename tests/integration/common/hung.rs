//! A file whose reads never return, as on a hung NFS or SAN mount.
//!
//! [`HungFile::over`] mounts a one-file FUSE file system (`hung_fs.py`, Debian's
//! `python3-fusepy`) and binds its file over an existing one: the path still names a
//! regular file of the same size, so every check a reader makes before reading
//! passes, and the first read blocks in the kernel — killably, as NFS does — until
//! the FUSE server goes away. Dropping a [`HungFile`] unmounts both (lazily: a reader
//! may still be blocked) and kills the server, which fails any read still waiting.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fuse::FuseMount;
use super::tools;

/// A file bound over another, whose reads never return; undone on drop.
#[derive(Debug)]
pub struct HungFile {
    covered: PathBuf,
    _mount: FuseMount,
}

impl HungFile {
    /// Covers `path` (an existing regular file) with a hung file of the same size.
    pub fn over(path: &Path) -> HungFile {
        let size = fs::metadata(path).unwrap().len();
        let mount = FuseMount::start(
            "hung_fs.py",
            &[OsStr::new(&size.to_string())],
            |mountpoint| fs::metadata(mountpoint.join("blob")).map(|m| m.len()).ok() == Some(size),
        );
        tools::run_command(
            Command::new("mount")
                .arg("--bind")
                .arg(mount.path().join("blob"))
                .arg(path),
        );
        HungFile {
            covered: path.to_owned(),
            _mount: mount,
        }
    }
}

impl Drop for HungFile {
    fn drop(&mut self) {
        // Best effort, and before the FUSE mount goes (the field drops after this).
        let _ = Command::new("umount").arg("-l").arg(&self.covered).status();
    }
}
