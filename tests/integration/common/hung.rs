//! A file whose reads never return, as on a hung NFS or SAN mount.
//!
//! [`HungFile::over`] mounts a one-file FUSE file system (`hung_fs.py`, Debian's
//! `python3-fusepy`) and binds its file over an existing one: the path still names a
//! regular file of the same size, so every check a reader makes before reading
//! passes, and the first read blocks in the kernel — killably, as NFS does — until
//! the FUSE server goes away. Dropping a [`HungFile`] unmounts both (lazily: a reader
//! may still be blocked) and kills the server, which fails any read still waiting.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tools;

/// Debian's Python, which `python3-fusepy` installs into (not a `python3` a user put
/// first on `PATH`).
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/integration/common/hung_fs.py"
);

/// A file bound over another, whose reads never return; undone on drop.
#[derive(Debug)]
pub struct HungFile {
    server: Child,
    mountpoint: PathBuf,
    covered: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl HungFile {
    /// Covers `path` (an existing regular file) with a hung file of the same size.
    pub fn over(path: &Path) -> HungFile {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: apt-get install python3-fusepy"
        );
        let size = fs::metadata(path).unwrap().len();
        let dir = tempfile::Builder::new().prefix("hung-").tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        fs::create_dir(&mountpoint).unwrap();
        let server = Command::new(PYTHON)
            .arg(SCRIPT)
            .arg(&mountpoint)
            .arg(size.to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut hung = HungFile {
            server,
            mountpoint,
            covered: None,
            _dir: dir,
        };
        hung.wait_for_mount(size);
        tools::run_command(
            Command::new("mount")
                .arg("--bind")
                .arg(hung.mountpoint.join("blob"))
                .arg(path),
        );
        hung.covered = Some(path.to_owned());
        hung
    }

    fn wait_for_mount(&mut self, size: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let blob = self.mountpoint.join("blob");
        while fs::metadata(&blob).map(|m| m.len()).ok() != Some(size) {
            if let Some(status) = self.server.try_wait().unwrap() {
                panic!(
                    "hung_fs.py exited ({status}): is python3-fusepy installed and /dev/fuse there?"
                );
            }
            assert!(
                Instant::now() < deadline,
                "hung_fs.py did not mount within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HungFile {
    fn drop(&mut self) {
        // Best effort: a failing test must still release the mounts and the server.
        if let Some(covered) = &self.covered {
            let _ = Command::new("umount").arg("-l").arg(covered).status();
        }
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
