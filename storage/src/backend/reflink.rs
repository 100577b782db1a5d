//! The `reflink` backend: raw files on XFS (`reflink=1`) or btrfs.
//!
//! With `format = "snapshot"` a sealed version is a read-only reflinked copy
//! (`FICLONE`) of what the importer wrote: it shares every extent, costs no copy, and is
//! a different inode from the staging file, which is then removed. With `format =
//! "volume"` the staging file itself is renamed into place, as for `dir`. Clones of
//! either are reflinks (see [`clone`](crate::clone)).
//!
//! At start-up the root is probed with a real `FICLONE` of a small file, so XFS made
//! without `reflink=1` or ext4 is a config error naming the backend, not a failure at
//! the first import.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::files;
use crate::catalog::VolumeRecord;
use crate::error::{Error, Result, io_err};
use crate::{durable, ioctl, step};

/// Seals by reflinking the staged file to its final name (mode 0444).
pub(crate) fn seal_by_clone(record: &VolumeRecord, staging: &Path) -> Result<()> {
    let staged = files::check_staged(record, staging)?;
    let sealed_path = &record.path;
    durable::remove_if_exists(sealed_path)?;
    let sealed = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(sealed_path)
        .map_err(io_err("create", sealed_path))?;
    ioctl::ficlone(&sealed, &staged).map_err(io_err("FICLONE to", sealed_path))?;
    sealed.sync_all().map_err(io_err("fsync", sealed_path))?;
    durable::fsync_parent(sealed_path)?;
    step::reached("seal.cloned");
    files::remove(staging)
}

/// Checks that `root` supports `FICLONE`.
pub(crate) fn probe(backend: &str, root: &Path) -> Result<()> {
    let src_path = root.join(format!(".reflink-probe-{}", std::process::id()));
    let dst_path = root.join(format!(".reflink-probe-{}.clone", std::process::id()));
    let result = try_clone(&src_path, &dst_path);
    let _ = std::fs::remove_file(&src_path);
    let _ = std::fs::remove_file(&dst_path);
    result.map_err(|e| match e {
        Error::Io {
            op: "FICLONE to", ..
        } => Error::Config {
            backend: backend.to_owned(),
            problem: crate::ConfigProblem::NoReflinks(root.to_owned()),
        },
        other => other,
    })
}

fn try_clone(src_path: &Path, dst_path: &Path) -> Result<()> {
    // FICLONE reads the source: it must be open for reading too.
    let mut src = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(src_path)
        .map_err(io_err("create", src_path))?;
    src.write_all(&[0xb5; 4096])
        .and_then(|()| src.sync_all())
        .map_err(io_err("write", src_path))?;
    let dst = File::create(dst_path).map_err(io_err("create", dst_path))?;
    ioctl::ficlone(&dst, &src).map_err(io_err("FICLONE to", dst_path))
}
