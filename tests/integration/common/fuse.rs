//! Small FUSE file systems (Debian's `python3-fusepy`) that misbehave the way real
//! storage does: [`FuseMount`] runs one of the scripts beside this file on a fresh
//! mountpoint and unmounts it (lazily) and kills its server when dropped.
//!
//! - `hung_fs.py`: one file whose reads never return ([`super::hung`]);
//! - `slow_sync_fs.py`: a directory passed through, every fsync slow ([`SlowSyncDir`]).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Python, which `python3-fusepy` installs into (not a `python3` a user put
/// first on `PATH`).
const PYTHON: &str = "/usr/bin/python3";

/// A FUSE server and its mountpoint; unmounted and stopped on drop.
#[derive(Debug)]
pub struct FuseMount {
    server: Child,
    mountpoint: PathBuf,
    _dir: tempfile::TempDir,
}

impl FuseMount {
    /// Runs `script` (a file beside this one) as `script MOUNTPOINT ARGS…` and waits
    /// until `mounted(mountpoint)` says it serves.
    pub fn start(script: &str, args: &[&OsStr], mounted: impl Fn(&Path) -> bool) -> FuseMount {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: apt-get install python3-fusepy"
        );
        let dir = tempfile::Builder::new().prefix("fuse-").tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        fs::create_dir(&mountpoint).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/common")
            .join(script);
        let server = Command::new(PYTHON)
            .arg(&script)
            .arg(&mountpoint)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut mount = FuseMount {
            server,
            mountpoint,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !mounted(&mount.mountpoint) {
            if let Some(status) = mount.server.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}): is python3-fusepy installed and /dev/fuse there?",
                    script.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not mount within 30 s",
                script.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mount
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        // Best effort: a failing test must still release the mount and the server.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .status();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// A directory whose every fsync (of a file or of the directory) first sleeps: a disk
/// whose final flush is slow. Reads and writes pass straight through to a backing
/// directory.
#[derive(Debug)]
pub struct SlowSyncDir {
    mount: FuseMount,
    _backing: tempfile::TempDir,
}

impl SlowSyncDir {
    /// Mounts one whose fsyncs take `seconds` each.
    pub fn new(seconds: f64) -> SlowSyncDir {
        let backing = tempfile::Builder::new()
            .prefix("slow-sync-")
            .tempdir()
            .unwrap();
        let seconds = seconds.to_string();
        let marker = ".mounted";
        fs::write(backing.path().join(marker), b"").unwrap();
        let mount = FuseMount::start(
            "slow_sync_fs.py",
            &[backing.path().as_os_str(), OsStr::new(&seconds)],
            |mountpoint| mountpoint.join(marker).exists(),
        );
        SlowSyncDir {
            mount,
            _backing: backing,
        }
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }
}
