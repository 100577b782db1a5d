//! Advisory locks (`flock`) between the daemon, `bootsource clone` and `status`, and
//! between threads of one process.
//!
//! Two kinds:
//!
//! * the **catalog lock** (`<state>/catalog.lock`, never removed): held exclusively for
//!   every read-modify-write of the catalog, and only for that (milliseconds, except
//!   while a sweep deletes leftovers). The catalog is replaced by rename, so any reader
//!   sees one whole version of it; the store's views ([`FileLock::shared_if_present`])
//!   also hold it shared, so that what they read agrees with what the writer changes
//!   beside the catalog in the same hold — the `current` link a commit switches.
//! * a **volume lock** per volume (`<state>/.locks/<namespace>/<backend>/<volume>.lock`):
//!   exclusive while the volume is being staged or removed, shared while a clone reads
//!   it. A staging volume whose lock can be taken is dead: its process is gone (the
//!   kernel drops `flock`s with the last descriptor, SIGKILL included), which is how
//!   start-up tells leftovers from another process's import in progress. Garbage
//!   collection takes the lock without waiting and skips a version it cannot get.
//!
//! A volume lock file is unlinked by whoever removes the volume, while holding it
//! exclusively. A locker that opened the file before the unlink would then hold a lock
//! on a deleted inode, so every acquisition checks, once locked, that the path still
//! names the inode it locked, and starts over if not.
//!
//! `flock` locks belong to an open file description, so two opens in one process
//! exclude each other just as two processes do; descriptors are close-on-exec.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::durable;
use crate::error::{Result, io_err};

/// How to lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Exclusive, waiting for it.
    Exclusive,
    /// Exclusive, or `None` at once if someone holds it.
    ExclusiveNow,
    /// Shared, waiting for it.
    Shared,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    /// Held for its `Drop`, which unlocks.
    _lock: Flock<File>,
    path: PathBuf,
}

impl FileLock {
    /// Locks `path`, creating it (and its directory) if needed. `None` only for
    /// [`Mode::ExclusiveNow`] when the lock is held elsewhere.
    pub fn acquire(path: &Path, mode: Mode) -> Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            durable::create_dirs(dir)?;
        }
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(io_err("open lock", path))?;
            let arg = match mode {
                Mode::Exclusive => FlockArg::LockExclusive,
                Mode::ExclusiveNow => FlockArg::LockExclusiveNonblock,
                Mode::Shared => FlockArg::LockShared,
            };
            let lock = match Flock::lock(file, arg) {
                Ok(lock) => lock,
                Err((_, Errno::EWOULDBLOCK)) if mode == Mode::ExclusiveNow => return Ok(None),
                Err((_, errno)) => return Err(io_err("flock", path)(errno.into())),
            };
            if Self::still_named_by(&lock, path)? {
                return Ok(Some(Self {
                    _lock: lock,
                    path: path.to_owned(),
                }));
            }
        }
    }

    /// Holds `path` shared if it exists, without creating it or needing write access
    /// (`status` may run as a user who can only read the state directory). `None` if
    /// there is no lock file: nothing has written the catalog either.
    pub fn shared_if_present(path: &Path) -> Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open lock", path)(e)),
        };
        let lock = Flock::lock(file, FlockArg::LockShared)
            .map_err(|(_, errno)| io_err("flock", path)(errno.into()))?;
        Ok(Some(Self {
            _lock: lock,
            path: path.to_owned(),
        }))
    }

    fn still_named_by(lock: &Flock<File>, path: &Path) -> Result<bool> {
        let held = lock.metadata().map_err(io_err("fstat lock", path))?;
        Ok(std::fs::metadata(path)
            .is_ok_and(|now| now.dev() == held.dev() && now.ino() == held.ino()))
    }

    /// Unlinks the lock file, then releases the lock: for the one removing the volume.
    pub fn remove(self) -> Result<()> {
        durable::remove_if_exists(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_even_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/v.lock");
        let shared = FileLock::acquire(&path, Mode::Shared).unwrap().unwrap();
        assert!(
            FileLock::acquire(&path, Mode::ExclusiveNow)
                .unwrap()
                .is_none()
        );
        drop(shared);
        let ex = FileLock::acquire(&path, Mode::ExclusiveNow)
            .unwrap()
            .unwrap();
        assert!(
            FileLock::acquire(&path, Mode::ExclusiveNow)
                .unwrap()
                .is_none()
        );
        ex.remove().unwrap();
        assert!(!path.exists());
        assert!(
            FileLock::acquire(&path, Mode::ExclusiveNow)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_lock_on_an_unlinked_file_is_retaken_on_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.lock");
        let remover = FileLock::acquire(&path, Mode::Exclusive).unwrap().unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || FileLock::acquire(&path, Mode::Shared).unwrap().unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        remover.remove().unwrap();
        let held = waiter.join().unwrap();
        let on_disk = std::fs::metadata(&path).unwrap();
        let locked = held._lock.metadata().unwrap();
        assert_eq!(on_disk.ino(), locked.ino());
    }
}
