//! One daemon per state directory: the instance lock, the pid file, and how `poll` and
//! `status` find the running daemon.
//!
//! The daemon holds a POSIX write lock (`fcntl(F_SETLK)`) on `<state>/daemon.lock` from
//! before it opens the store until it exits; the kernel drops it with the process,
//! SIGKILL included. A second daemon on the same state directory finds the lock taken
//! and stops before it touches anything (the store's start-up sweep would otherwise
//! remove the first daemon's staging volume).
//!
//! The lock, not the pid file, says which process is the daemon: `F_GETLK` names the
//! holder's pid, so `bootsource poll` never signals a process that merely reused a dead
//! daemon's pid. The query needs only read access, so `status` run by an unprivileged
//! user sees a root daemon where `kill(pid, 0)` would say EPERM. A POSIX lock rather
//! than `flock` for that query: `flock` has none, only `/proc/locks`, whose device
//! numbers do not match `stat` on btrfs. POSIX locks belong to the process and go with
//! the first `close` of *any* descriptor of the file, so this module is the only code
//! that opens `daemon.lock`.
//!
//! `daemon.pid` is written once the lock is held and the metrics endpoint is bound, for
//! people and tools that expect one; nothing here trusts it.
//!
//! Not here: the daemon's run-time state (`state`), the store's own locks.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

const LOCK_FILE: &str = "daemon.lock";
const PID_FILE: &str = "daemon.pid";

/// Held by the one daemon of a state directory; released when dropped or at exit.
#[derive(Debug)]
pub struct InstanceLock {
    /// Holds the POSIX lock: closing it releases the lock.
    _file: File,
    state_dir: PathBuf,
}

/// Whether a daemon runs on a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The process holding the instance lock.
    Running(i32),
    /// Nothing holds the lock.
    Stopped,
    /// The lock cannot be read (e.g. the state directory is not readable); why.
    Unknown(String),
}

impl InstanceLock {
    /// Takes the lock of `state_dir` (created if missing), or says which daemon has it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
        let path = lock_file(state_dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match fcntl(&file, FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK))) {
            Ok(_) => Ok(Self {
                _file: file,
                state_dir: state_dir.to_owned(),
            }),
            Err(Errno::EAGAIN | Errno::EACCES) => {
                let holder = match holder(&file) {
                    Ok(Some(pid)) => format!(" (pid {pid})"),
                    _ => String::new(),
                };
                bail!(
                    "another bootsource daemon{holder} is already running on {}",
                    state_dir.display()
                )
            }
            Err(e) => Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }

    /// Writes this process's pid to `daemon.pid`.
    pub fn write_pid(&self) -> anyhow::Result<()> {
        let path = pid_file(&self.state_dir);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{}", std::process::id()))
            .with_context(|| format!("writing the pid file {}", path.display()))
    }

    /// Removes `daemon.pid` (at a clean exit; the lock goes with the process).
    pub fn remove_pid(&self) {
        let _ = std::fs::remove_file(pid_file(&self.state_dir));
    }
}

/// The pid file the daemon writes.
pub fn pid_file(state_dir: &Path) -> PathBuf {
    state_dir.join(PID_FILE)
}

/// The instance lock file.
pub fn lock_file(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCK_FILE)
}

/// Who holds the instance lock of `state_dir`, if anyone.
pub fn find_daemon(state_dir: &Path) -> Liveness {
    let path = lock_file(state_dir);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Stopped,
        Err(e) => return Liveness::Unknown(format!("cannot open {}: {e}", path.display())),
    };
    match holder(&file) {
        Ok(Some(pid)) => Liveness::Running(pid),
        Ok(None) => Liveness::Stopped,
        Err(e) => Liveness::Unknown(format!("cannot query the lock on {}: {e}", path.display())),
    }
}

/// The pid of the process holding a lock that conflicts with a write lock on `file`.
fn holder(file: &File) -> nix::Result<Option<i32>> {
    let mut query = whole_file(libc::F_WRLCK);
    fcntl(file, FcntlArg::F_GETLK(&mut query))?;
    Ok((i32::from(query.l_type) != libc::F_UNLCK).then_some(query.l_pid))
}

/// A lock request of `kind` (`F_WRLCK`, …) over the whole file, however long it grows.
fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: libc::c_short::try_from(kind).expect("lock types are small"),
        l_whence: libc::c_short::try_from(libc::SEEK_SET).expect("SEEK_SET is 0"),
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_alone_is_no_daemon_and_the_lock_writes_its_own() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_daemon(dir.path()), Liveness::Stopped);
        // A pid file alone (a crashed daemon, the pid reused by this test) is no daemon.
        std::fs::write(pid_file(dir.path()), format!("{}\n", std::process::id())).unwrap();
        assert_eq!(find_daemon(dir.path()), Liveness::Stopped);

        // F_GETLK does not report this process's own lock; the integration tests
        // (`daemon_instance`) query it from other processes.
        let lock = InstanceLock::acquire(dir.path()).unwrap();
        lock.write_pid().unwrap();
        assert_eq!(
            std::fs::read_to_string(pid_file(dir.path())).unwrap(),
            format!("{}\n", std::process::id())
        );
        lock.remove_pid();
        assert!(!pid_file(dir.path()).exists());
        drop(lock);
        assert_eq!(find_daemon(dir.path()), Liveness::Stopped);
    }
}
