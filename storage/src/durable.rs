//! Durable file-system updates: the only ways this crate replaces a file or a link.
//!
//! A replacement is written beside its target under a temporary name, fsynced, renamed
//! over the target (atomic on POSIX file systems), and the directory is fsynced so the
//! rename itself survives a power cut. A reader therefore sees the old or the new
//! content, never a mix, and after a crash the old or the new one is on disk. Temporary
//! names start with a dot and are only written under the catalog lock, so two writers
//! never share one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};
use crate::step;

/// Opens a directory and fsyncs it, making renames and creations in it durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Fsyncs the parent directory of `path`.
pub(crate) fn fsync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fsync_dir(dir),
        _ => Ok(()),
    }
}

/// Creates `dir` and its parents.
pub(crate) fn create_dirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))
}

/// `<dir>/.<name>.tmp` for `<dir>/<name>`.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Removes the temporary a crash may have left beside `path`.
pub(crate) fn remove_stale_temp(path: &Path) -> Result<()> {
    durable_remove(&temp_beside(path))
}

fn durable_remove(path: &Path) -> Result<()> {
    if remove_if_exists(path)? {
        fsync_parent(path)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes`: tmp + fsync + rename + directory fsync.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(bytes).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    step::reached("catalog.tmp-synced");
    fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
    step::reached("catalog.renamed");
    fsync_parent(path)
}

/// Points the symlink `link` at `target`, atomically; no-op if it already does.
pub(crate) fn replace_symlink(link: &Path, target: &Path) -> Result<()> {
    if fs::read_link(link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let tmp = temp_beside(link);
    remove_if_exists(&tmp)?;
    symlink(target, &tmp).map_err(io_err("create symlink", &tmp))?;
    step::reached("link.tmp-created");
    fs::rename(&tmp, link).map_err(io_err("rename into place", link))?;
    fsync_parent(link)
}

/// Removes a file or symlink; a missing one is fine.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_files_and_links_leaving_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.json");
        replace_file(&file, b"one").unwrap();
        replace_file(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");

        let link = dir.path().join("current");
        replace_symlink(&link, Path::new("/a")).unwrap();
        replace_symlink(&link, Path::new("/b")).unwrap();
        replace_symlink(&link, Path::new("/b")).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("/b"));

        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["catalog.json", "current"]);
    }
}
