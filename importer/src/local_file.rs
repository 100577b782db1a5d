//! Local files we did not create: regular files only, read with a cap, and inside a
//! directory we were handed, never through a link.
//!
//! A path a user names (`--auth-file`, `--config`, a CA file) may be a link, but must
//! lead to a regular file ([`open_regular`]): a FIFO blocks whoever opens it until
//! someone writes, and a device such as `/dev/zero` never ends. Below a directory we
//! were handed, an OCI layout on removable media or in a directory another user can
//! write ([`Dir`]), nothing is followed: the daemon runs as root and must not read
//! wherever the layout's author points it, so a link is refused even when it leads to
//! honest bytes. A file's type is checked before it is opened (opening a device can
//! have effects) and again on the opened file, which is what is read; `O_NONBLOCK`
//! keeps a FIFO that appears in between from blocking the open, and means nothing
//! for reading a regular file.
//!
//! Whatever is buffered is capped first ([`read_capped`]): a regular file can be a
//! sparse 8 GiB file as easily as a small one.
//!
//! ```no_run
//! let bytes = bootsource_importer::read_regular_file("/etc/bootsource/auth.json".as_ref(), 1 << 20)?;
//! # Ok::<(), bootsource_importer::Error>(())
//! ```

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstatat};

use crate::{Error, Result};

/// Reads the regular file at `path` (a path the user named: links are followed), or
/// fails if it holds more than `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read_capped(open_regular(path)?, path, limit)
}

/// Opens the regular file at `path` for reading, following links.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let before = std::fs::metadata(path).map_err(io_error("opening", path))?;
    refuse_unless_regular(before.mode(), path)?;
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_error("opening", path))?;
    opened_regular(file, path)
}

/// Reads all of `reader` (the file at `path`) into memory, refusing more than `limit`
/// bytes without buffering them.
fn read_capped(reader: impl Read, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error("reading", path))?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// A directory we were handed (the path to it may be a link); below it, nothing that
/// is a link is followed.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let fd = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .map_err(io_error("opening", path))?;
        Ok(Self {
            fd: fd.into(),
            path: path.to_owned(),
        })
    }

    /// Opens the regular file at `relative` (plain names, such as `blobs/sha256/HEX`),
    /// refusing links and anything but a directory on the way.
    pub fn open_file(&self, relative: &Path) -> Result<File> {
        let names = plain_names(relative)?;
        let (file, dirs) = names
            .split_last()
            .ok_or_else(|| Error::Internal("no file name to open".into()))?;
        let mut here = self.path.clone();
        let mut parent: Option<OwnedFd> = None;
        for name in dirs {
            here.push(name);
            let at = parent.as_ref().unwrap_or(&self.fd);
            parent = Some(open_at(at, name, &here, OFlag::O_DIRECTORY)?);
        }
        here.push(file);
        let at = parent.as_ref().unwrap_or(&self.fd);
        let before = fstatat(at, *file, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| refusal(e, at, file, &here))?;
        refuse_unless_regular(before.st_mode, &here)?;
        let fd = open_at(at, file, &here, OFlag::O_NONBLOCK)?;
        opened_regular(File::from(fd), &here)
    }

    /// Reads the regular file at `relative`, or fails if it holds more than `limit` bytes.
    pub fn read_file(&self, relative: &Path, limit: u64) -> Result<Vec<u8>> {
        let file = self.open_file(relative)?;
        read_capped(file, &self.path.join(relative), limit)
    }
}

/// The names of `relative`, which must be plain names (no `..`, `.` or root).
fn plain_names(relative: &Path) -> Result<Vec<&OsStr>> {
    relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::Internal(format!(
                "{} is not a plain relative path",
                relative.display()
            ))),
        })
        .collect()
}

/// Opens `name` in `at` (the file at `path`) without following a link.
fn open_at(at: &OwnedFd, name: &OsStr, path: &Path, extra: OFlag) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | extra;
    openat(at, name, flags, Mode::empty()).map_err(|e| refusal(e, at, name, path))
}

/// The opened `file` if it is a regular file.
fn opened_regular(file: File, path: &Path) -> Result<File> {
    let mode = file.metadata().map_err(io_error("opening", path))?.mode();
    refuse_unless_regular(mode, path)?;
    Ok(file)
}

fn refuse_unless_regular(mode: u32, path: &Path) -> Result<()> {
    let path = path.to_owned();
    match mode & libc::S_IFMT {
        libc::S_IFREG => Ok(()),
        libc::S_IFLNK => Err(Error::LinkRefused { path }),
        other => Err(Error::NotRegularFile {
            path,
            kind: describe(other),
        }),
    }
}

fn describe(file_type: u32) -> &'static str {
    match file_type {
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "FIFO",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFSOCK => "socket",
        _ => "special file",
    }
}

/// Why `name` in `at` (the file at `path`) did not open. Under `O_NOFOLLOW` a link
/// fails with `ELOOP`, or with `ENOTDIR` when a directory was asked for: name it.
fn refusal(errno: Errno, at: &OwnedFd, name: &OsStr, path: &Path) -> Error {
    let is_link = fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFLNK);
    if is_link {
        Error::LinkRefused {
            path: path.to_owned(),
        }
    } else {
        io_error("opening", path)(io::Error::from(errno))
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn fixture() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("blobs/sha256")).unwrap();
        std::fs::write(tmp.path().join("blobs/sha256/ab"), b"blob").unwrap();
        std::fs::write(tmp.path().join("index.json"), b"{}").unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn reads_regular_files_below_the_directory() {
        let (_tmp, dir) = fixture();
        assert_eq!(dir.read_file("index.json".as_ref(), 2).unwrap(), b"{}");
        assert_eq!(
            dir.read_file("blobs/sha256/ab".as_ref(), 100).unwrap(),
            b"blob"
        );
    }

    #[test]
    fn caps_before_buffering() {
        let (tmp, dir) = fixture();
        let err = dir.read_file("index.json".as_ref(), 1).unwrap_err();
        assert!(
            matches!(&err, Error::TooLarge { path, limit: 1 } if path.ends_with("index.json")),
            "{err:?}"
        );
        // A sparse 1 TiB file is refused after reading the limit, not a terabyte.
        let huge = tmp.path().join("huge");
        File::create(&huge).unwrap().set_len(1 << 40).unwrap();
        assert!(matches!(
            read_regular_file(&huge, 4096),
            Err(Error::TooLarge { limit: 4096, .. })
        ));
    }

    #[test]
    fn refuses_links_below_the_directory_wherever_they_lead() {
        let (tmp, dir) = fixture();
        symlink(tmp.path().join("index.json"), tmp.path().join("link.json")).unwrap();
        std::fs::rename(tmp.path().join("blobs"), tmp.path().join("real-blobs")).unwrap();
        symlink("real-blobs", tmp.path().join("blobs")).unwrap();
        for (relative, shown) in [("link.json", "link.json"), ("blobs/sha256/ab", "blobs")] {
            let err = dir.open_file(relative.as_ref()).unwrap_err();
            assert!(
                matches!(&err, Error::LinkRefused { path } if path.ends_with(shown)),
                "{relative}: {err:?}"
            );
        }
        // The path the user names may be a link.
        assert_eq!(
            read_regular_file(&tmp.path().join("link.json"), 10).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn refuses_fifos_devices_and_directories_without_blocking() {
        let (tmp, dir) = fixture();
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        for (result, kind) in [
            (dir.open_file("fifo".as_ref()), "FIFO"),
            (open_regular(&fifo), "FIFO"),
            (open_regular(Path::new("/dev/zero")), "character device"),
            (dir.open_file("blobs".as_ref()), "directory"),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::NotRegularFile { kind: k, .. } if *k == kind),
                "{err:?}"
            );
        }
    }

    #[test]
    fn only_plain_relative_paths_are_opened() {
        let (_tmp, dir) = fixture();
        for path in ["../x", "/etc/passwd", "", "blobs/../index.json"] {
            assert!(dir.open_file(path.as_ref()).is_err(), "{path}");
        }
    }
}
