//! The block device under a file system: what a directory's `st_dev` means.
//!
//! For most file systems `st_dev` is the block device itself. btrfs (and anything else
//! with anonymous device numbers, `0:N`, one per subvolume and not even the number the
//! mount table shows) is the exception: there the mount table says which device was
//! mounted, so `/proc/self/mountinfo` is read for the mount the path is under (the
//! longest mount point above it) and its source taken if it is a block device. A file system
//! on no block device (tmpfs, NFS, overlay) has none. What this module does not own:
//! how devices relate ([`topology`](crate::topology)).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::topology::{DeviceNumber, Sysfs};

const MOUNTINFO: &str = "/proc/self/mountinfo";

impl Sysfs {
    /// The block device holding the file system `path` is on — or, where `path` does not
    /// exist yet, the one its nearest existing ancestor is on. `None` for file systems
    /// on no block device.
    pub fn filesystem_device(&self, path: &Path) -> Result<Option<DeviceNumber>, Error> {
        let (existing, meta) = nearest_existing(path)?;
        let number = DeviceNumber::from_dev_t(meta.dev());
        if self.node(number)?.is_some() {
            return Ok(Some(number));
        }
        let real =
            fs::canonicalize(&existing).map_err(|e| crate::io_error("resolve", &existing, e))?;
        let table = fs::read_to_string(MOUNTINFO)
            .map_err(|e| crate::io_error("read", Path::new(MOUNTINFO), e))?;
        match source_of_mount(&table, &real) {
            Some(source) => DeviceNumber::of_block_device(&source),
            None => Ok(None),
        }
    }
}

fn nearest_existing(path: &Path) -> Result<(PathBuf, fs::Metadata), Error> {
    let mut candidate = path;
    loop {
        match fs::metadata(candidate) {
            Ok(meta) => return Ok((candidate.to_owned(), meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match candidate.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => candidate = parent,
                _ => return Err(crate::io_error("stat", path, e)),
            },
            Err(e) => return Err(crate::io_error("stat", candidate, e)),
        }
    }
}

/// The source of the mount `path` (absolute, resolved) is on: the entry of a
/// `mountinfo` table with the longest mount point above `path`, the later one where two
/// are equal (it is mounted over the other).
///
/// A line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE
/// SUPER_OPTIONS`, with spaces, tabs, newlines and backslashes in fields written as
/// octal escapes (`\040`).
pub(crate) fn source_of_mount(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4).map(unescape) else {
            continue;
        };
        let Some(source) = fields.skip_while(|f| *f != "-").nth(2).map(unescape) else {
            continue;
        };
        let depth = mount_point.components().count();
        if path.starts_with(&mount_point) && best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, source));
        }
    }
    best.map(|(_, source)| source)
}

/// Undoes mountinfo's octal escapes (`\040` → space); anything malformed stays as is.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 22 0:45 / /srv/golden rw,relatime shared:12 - btrfs /dev/loop3 rw,space_cache=v2
32 22 0:45 /snap /srv/snap rw,relatime - btrfs /dev/loop3 rw
33 22 0:46 / /tmp/with\\040space rw shared:9 master:2 - tmpfs tmp\\134fs rw
34 22 7:5 / /mnt/odd rw - ext4 /dev/disk/by-label/a\\040b rw
35 34 7:6 / /mnt/odd/over rw - ext4 /dev/loop8 rw
36 34 7:7 / /mnt/odd/over rw - ext4 /dev/loop9 rw
";

    #[test]
    fn finds_the_mount_a_path_is_under() {
        let source = |path: &str| source_of_mount(TABLE, Path::new(path));
        assert_eq!(source("/srv/golden/os-images"), Some("/dev/loop3".into()));
        assert_eq!(source("/srv/snap"), Some("/dev/loop3".into()));
        assert_eq!(source("/srv/golden-not"), Some("/dev/vda".into()));
        assert_eq!(source("/tmp/with space/x"), Some("tmp\\fs".into()));
        assert_eq!(source("/mnt/odd"), Some("/dev/disk/by-label/a b".into()));
        assert_eq!(
            source("/mnt/odd/over"),
            Some("/dev/loop9".into()),
            "mounted over"
        );
        assert_eq!(
            source_of_mount("garbage\n\n1 2 0:45 / /x\n", Path::new("/x")),
            None
        );
    }

    #[test]
    fn malformed_escapes_stay_as_written() {
        assert_eq!(unescape("a\\04"), PathBuf::from("a\\04"));
        assert_eq!(unescape("\\999x"), PathBuf::from("\\999x"));
        assert_eq!(unescape("\\"), PathBuf::from("\\"));
    }
}
