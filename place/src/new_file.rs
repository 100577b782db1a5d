//! [`NewFile`]: a file that exists under its name only once it is complete.
//!
//! The target's directory may be writable by other users, who can plant symlinks at
//! any name we might pick. So the file is created where no name can be planted: with
//! `O_TMPFILE` it has no name at all until [`NewFile::commit`] links it under a fresh
//! random name (`linkat` never follows a symlink at the new name: a planted one makes
//! it fail with `EEXIST`, and another name is tried) and renames that over the target
//! (`rename` replaces a symlink at the target, never what it points to). A crash, even
//! SIGKILL, leaves nothing behind. Where the filesystem has no `O_TMPFILE`, the file is
//! created under a random hidden name with `O_CREAT | O_EXCL | O_NOFOLLOW`, which also
//! refuses any existing entry, symlinks included; it is removed again on failure.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};

use crate::error::{Error, Result, Unusable, io_error};

/// Random names tried before giving up (each collision needs a planted entry).
const NAME_ATTEMPTS: u32 = 16;

/// How the file is hidden until it is committed.
#[derive(Debug)]
enum Hidden {
    /// `O_TMPFILE`: no name at all.
    Anonymous,
    /// A random hidden name in the same directory, removed unless committed.
    Named(OsString),
}

/// A file being written, invisible under `path` until committed.
#[derive(Debug)]
pub struct NewFile {
    dir: File,
    path: PathBuf,
    name: OsString,
    hidden: Hidden,
    committed: bool,
}

impl NewFile {
    /// Creates the hidden file in `path`'s directory (mode 0644, like `qemu-img`'s
    /// output) and returns it with the open file.
    pub fn create(path: &Path) -> Result<(Self, File)> {
        let name = path
            .file_name()
            .ok_or_else(|| unusable(path, Unusable::NoFileName))?
            .to_owned();
        let dir = open_dir(path)?;
        let (hidden, file) = match anonymous(&dir) {
            Ok(file) => (Hidden::Anonymous, file),
            Err(e) if no_tmpfile(&e) => named(&dir, &name, path)?,
            Err(e) => return Err(io_error("create a file beside", path, 0)(e)),
        };
        let new = Self {
            dir,
            path: path.to_owned(),
            name,
            hidden,
            committed: false,
        };
        Ok((new, file))
    }

    /// Makes `file` (created with this `NewFile`, complete and fsynced) appear under its
    /// name, replacing what was there, and fsyncs the directory.
    pub fn commit(mut self, file: &File) -> Result<()> {
        let hidden_name = match &self.hidden {
            Hidden::Anonymous => self.link_anonymous(file)?,
            Hidden::Named(name) => name.clone(),
        };
        renameat(
            &self.dir,
            hidden_name.as_os_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(|e| io_error("rename into place", &self.path, 0)(e.into()))?;
        self.committed = true;
        self.dir
            .sync_all()
            .map_err(io_error("fsync the directory of", &self.path, 0))
    }

    /// Gives the anonymous file a fresh random name; returns it.
    fn link_anonymous(&self, file: &File) -> Result<OsString> {
        let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
        for _ in 0..NAME_ATTEMPTS {
            let candidate = hidden_name(&self.name);
            let linked = linkat(
                AT_FDCWD,
                proc_path.as_str(),
                &self.dir,
                candidate.as_os_str(),
                AtFlags::AT_SYMLINK_FOLLOW,
            )
            .or_else(|e| match e {
                // No /proc: root may link the descriptor itself.
                Errno::ENOENT => linkat(
                    file.as_fd(),
                    "",
                    &self.dir,
                    candidate.as_os_str(),
                    AtFlags::AT_EMPTY_PATH,
                ),
                e => Err(e),
            });
            match linked {
                Ok(()) => return Ok(candidate),
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(io_error("link", &self.path, 0)(e.into())),
            }
        }
        Err(io_error("link", &self.path, 0)(
            io::ErrorKind::AlreadyExists.into(),
        ))
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        let Hidden::Named(name) = &self.hidden else {
            return;
        };
        if self.committed {
            return;
        }
        if let Err(e) = unlinkat(&self.dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the partial image");
        }
    }
}

fn unusable(path: &Path, problem: Unusable) -> Error {
    Error::Unusable {
        path: path.to_owned(),
        problem,
    }
}

/// The directory `path` is to be created in. The user named it: it is followed.
fn open_dir(path: &Path) -> Result<File> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                unusable(path, Unusable::NoParent)
            }
            _ => io_error("open the directory of", path, 0)(e),
        })
}

fn anonymous(dir: &File) -> io::Result<File> {
    let flags = OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let fd = openat(dir, ".", flags, Mode::from_bits_truncate(0o644))?;
    Ok(File::from(fd))
}

/// Whether creating an `O_TMPFILE` failed because this filesystem or kernel has none.
fn no_tmpfile(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
    )
}

/// The fallback: a random hidden name, created exclusively, never through a symlink.
fn named(dir: &File, name: &OsStr, path: &Path) -> Result<(Hidden, File)> {
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    for _ in 0..NAME_ATTEMPTS {
        let candidate = hidden_name(name);
        match openat(
            dir,
            candidate.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => return Ok((Hidden::Named(candidate), File::from(fd))),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(io_error("create a file beside", path, 0)(e.into())),
        }
    }
    Err(io_error("create a file beside", path, 0)(
        io::ErrorKind::AlreadyExists.into(),
    ))
}

/// `.NAME.<16 random hex digits>.partial`: hidden, and not guessable.
fn hidden_name(name: &OsStr) -> OsString {
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    let mut hidden = OsString::from(".");
    hidden.push(name);
    hidden.push(format!(".{random:016x}.partial"));
    debug_assert!(!hidden.as_bytes().contains(&b'/'));
    hidden
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn the_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.img");
        let (new, mut file) = NewFile::create(&path).unwrap();
        file.write_all(b"disk").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        new.commit(&file).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"disk");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_uncommitted_it_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (new, _file) = NewFile::create(&dir.path().join("vm.img")).unwrap();
        drop(new);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("vm.img");
        symlink(&victim, &path).unwrap();
        let (new, mut file) = NewFile::create(&path).unwrap();
        file.write_all(b"disk").unwrap();
        new.commit(&file).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"disk");
    }

    #[test]
    fn the_fallback_never_opens_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let handle = open_dir(&dir.path().join("vm.img")).unwrap();
        let (hidden, _file) = named(&handle, OsStr::new("vm.img"), dir.path()).unwrap();
        let Hidden::Named(name) = hidden else {
            panic!("named")
        };
        assert!(name.to_string_lossy().starts_with(".vm.img."));
        let missing = dir.path().join("missing/vm.img");
        let err = NewFile::create(&missing).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unusable {
                    problem: Unusable::NoParent,
                    ..
                }
            ),
            "{err}"
        );
    }
}
