//! Which block devices overlap: device numbers and the kernel's view of how
//! devices are stacked, read from sysfs.
//!
//! Paths say nothing about identity: `/dev/disk/by-id/…-part1`, `/dev/loop0p1` and a
//! device node made with `mknod` anywhere are one device. So devices are compared by
//! number (`st_rdev`), and relations come from `/sys/dev/block/MAJ:MIN`: a partition
//! (a directory with a `partition` file) sits in its disk's directory, and a
//! device-mapper, LVM or md device lists the devices it is built on in `slaves/`.
//! Following those two links upwards from each device is enough: what is inside a
//! device is exactly what has it above (the kernel's `holders/` is the mirror image of
//! `slaves/`).
//!
//! Two devices [overlap](Sysfs::overlap) when one is the other, contains it (its disk,
//! or a device it is built on, at any depth) or is inside it (a partition of it, or a
//! device built on it). Sibling partitions do not overlap, and neither do two devices
//! merely built on the same device: two LVM volumes of one volume group, or two
//! device-mapper targets on one disk, hold disjoint extents of it (refusing them would
//! refuse every LVM volume on a node whose root file system is on LVM). What this
//! module does not own: deciding which devices matter (storage does), and opening
//! devices (the crate root).
//!
//! ```no_run
//! use bootsource_blockdev::topology::{DeviceNumber, Sysfs};
//! let pool = DeviceNumber::of_block_device("/dev/disk/by-id/nvme-x-part1".as_ref())?;
//! let target = DeviceNumber::of_block_device("/dev/nvme0n1".as_ref())?;
//! if let (Some(pool), Some(target)) = (pool, target) {
//!     assert!(Sysfs::system().overlap(target, pool)?.is_some()); // the disk contains it
//! }
//! # Ok::<(), bootsource_blockdev::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// Most devices one relation is followed through: sysfs is the kernel's, but a bound
/// keeps a surprise (a stack thousands deep) from becoming a hang.
const MAX_DEVICES: usize = 4096;

/// A block device's number, `MAJ:MIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    /// The driver.
    pub major: u32,
    /// The device of that driver.
    pub minor: u32,
}

impl DeviceNumber {
    /// From a `dev_t` (`st_rdev` or `st_dev`).
    pub fn from_dev_t(dev: u64) -> Self {
        Self {
            major: libc::major(dev),
            minor: libc::minor(dev),
        }
    }

    /// The number of the block device at `path` (symlinks followed), or `None` when
    /// `path` does not exist or is not a block device.
    pub fn of_block_device(path: &Path) -> Result<Option<Self>, Error> {
        match fs::metadata(path) {
            Ok(m) if m.file_type().is_block_device() => Ok(Some(Self::from_dev_t(m.rdev()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::io_error("stat", path, e)),
        }
    }
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// How a device overlaps another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// They are one device.
    Same,
    /// The first holds the second: its disk, or a device it is built on.
    Contains,
    /// The first is inside the second: a partition of it, or built on it.
    Inside,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Same => "is",
            Self::Contains => "contains",
            Self::Inside => "is inside",
        })
    }
}

/// The block-device tree under a sysfs mount (`/sys` on a running system).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Sysfs {
    /// The running system's `/sys`.
    pub fn system() -> Self {
        Self::at("/sys")
    }

    /// A sysfs tree mounted (or laid out) at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// How `a` overlaps `b`, if it does. A device sysfs does not know (gone, or never a
    /// block device) overlaps only itself.
    pub fn overlap(&self, a: DeviceNumber, b: DeviceNumber) -> Result<Option<Overlap>, Error> {
        if a == b {
            return Ok(Some(Overlap::Same));
        }
        let (Some(node_a), Some(node_b)) = (self.node(a)?, self.node(b)?) else {
            return Ok(None);
        };
        if self.holding(&node_a)?.contains(&node_b) {
            return Ok(Some(Overlap::Inside));
        }
        if self.holding(&node_b)?.contains(&node_a) {
            return Ok(Some(Overlap::Contains));
        }
        Ok(None)
    }

    /// The device's directory, `/sys/dev/block/MAJ:MIN` resolved; `None` if sysfs has
    /// no such block device. An absent `/sys/dev/block` is an error: without it no
    /// overlap could ever be seen.
    pub(crate) fn node(&self, number: DeviceNumber) -> Result<Option<PathBuf>, Error> {
        let index = self.root.join("dev/block");
        if !index.is_dir() {
            return Err(crate::io_error(
                "read",
                &index,
                io::ErrorKind::NotFound.into(),
            ));
        }
        let link = index.join(number.to_string());
        match fs::canonicalize(&link) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::io_error("resolve", &link, e)),
        }
    }

    /// `start` and every device that holds it: its disk, the devices it is built on,
    /// theirs, and so on.
    fn holding(&self, start: &Path) -> Result<BTreeSet<PathBuf>, Error> {
        let mut seen = BTreeSet::from([start.to_owned()]);
        let mut todo = vec![start.to_owned()];
        while let Some(dir) = todo.pop() {
            let above = parent_disk(&dir).into_iter().chain(linked(&dir, "slaves")?);
            for next in above {
                if seen.len() >= MAX_DEVICES {
                    return Err(crate::io_error(
                        "walk",
                        start,
                        io::Error::other("block devices stacked too deep"),
                    ));
                }
                if seen.insert(next.clone()) {
                    todo.push(next);
                }
            }
        }
        Ok(seen)
    }
}

/// A partition's directory sits inside its disk's.
fn parent_disk(dir: &Path) -> Option<PathBuf> {
    if dir.join("partition").is_file() {
        dir.parent().map(Path::to_owned)
    } else {
        None
    }
}

/// The devices a `slaves/` directory links to, resolved.
fn linked(dir: &Path, relation: &str) -> Result<Vec<PathBuf>, Error> {
    entries(&dir.join(relation))?
        .into_iter()
        .map(|link| fs::canonicalize(&link).map_err(|e| crate::io_error("resolve", &link, e)))
        .collect()
}

/// A directory's entries; a missing directory has none.
fn entries(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::io_error("read", dir, e)),
    };
    read.map(|entry| {
        entry
            .map(|e| e.path())
            .map_err(|e| crate::io_error("read", dir, e))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    //! A sysfs tree laid out as the kernel lays it out, for the stacks this test machine
    //! cannot build (its kernel has no device-mapper or md); partitions of real loop
    //! devices are tested in `tests/loop_device.rs`.

    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree(tempfile::TempDir);

    impl Tree {
        /// loop0 with partitions p1 and p2; dm-0 and dm-1 built on p1, dm-2 on p2,
        /// dm-3 on loop1 and dm-0; loop1 and loop2 whole disks.
        fn new() -> Self {
            let tree = Tree(tempfile::tempdir().unwrap());
            tree.device("loop0", 7, 0);
            tree.device("loop0/loop0p1", 259, 1);
            tree.device("loop0/loop0p2", 259, 2);
            tree.device("loop1", 7, 1);
            tree.device("loop2", 7, 2);
            for (dm, minor, under) in [
                ("dm-0", 0, &["loop0/loop0p1"][..]),
                ("dm-1", 1, &["loop0/loop0p1"]),
                ("dm-2", 2, &["loop0/loop0p2"]),
                ("dm-3", 3, &["loop1", "dm-0"]),
            ] {
                tree.device(dm, 253, minor);
                for lower in under {
                    tree.stack(dm, lower);
                }
            }
            tree
        }

        fn block(&self) -> PathBuf {
            self.0.path().join("devices/virtual/block")
        }

        fn device(&self, rel: &str, major: u32, minor: u32) {
            let dir = self.block().join(rel);
            for sub in ["holders", "slaves"] {
                fs::create_dir_all(dir.join(sub)).unwrap();
            }
            fs::write(dir.join("dev"), format!("{major}:{minor}\n")).unwrap();
            if rel.contains('/') {
                fs::write(dir.join("partition"), "1\n").unwrap();
            }
            let index = self.0.path().join("dev/block");
            fs::create_dir_all(&index).unwrap();
            symlink(&dir, index.join(format!("{major}:{minor}"))).unwrap();
        }

        fn stack(&self, upper: &str, lower: &str) {
            let name = |rel: &str| rel.rsplit('/').next().unwrap().to_owned();
            symlink(
                self.block().join(lower),
                self.block().join(upper).join("slaves").join(name(lower)),
            )
            .unwrap();
            symlink(
                self.block().join(upper),
                self.block().join(lower).join("holders").join(name(upper)),
            )
            .unwrap();
        }
    }

    fn n(major: u32, minor: u32) -> DeviceNumber {
        DeviceNumber { major, minor }
    }

    #[test]
    fn partitions_disks_and_stacks_overlap_and_siblings_do_not() {
        let tree = Tree::new();
        let sysfs = Sysfs::at(tree.0.path());
        let (disk, p1, p2) = (n(7, 0), n(259, 1), n(259, 2));
        let (loop1, loop2) = (n(7, 1), n(7, 2));
        let dm = |minor| n(253, minor);
        let cases = [
            (disk, disk, Some(Overlap::Same)),
            (disk, p1, Some(Overlap::Contains)),
            (p1, disk, Some(Overlap::Inside)),
            (p1, p2, None),
            (dm(0), p1, Some(Overlap::Inside)),
            (p1, dm(0), Some(Overlap::Contains)),
            (disk, dm(2), Some(Overlap::Contains)),
            (dm(0), dm(1), None),
            (dm(1), dm(3), None),
            (dm(3), loop1, Some(Overlap::Inside)),
            (dm(3), disk, Some(Overlap::Inside)),
            (dm(0), dm(2), None),
            (dm(2), dm(3), None),
            (p2, dm(3), None),
            (loop2, disk, None),
            (loop2, dm(3), None),
            (n(9, 9), disk, None),
        ];
        for (a, b, expected) in cases {
            assert_eq!(sysfs.overlap(a, b).unwrap(), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn without_a_sysfs_nothing_is_assumed_disjoint() {
        let empty = tempfile::tempdir().unwrap();
        let err = Sysfs::at(empty.path())
            .overlap(n(7, 0), n(7, 1))
            .unwrap_err();
        assert!(err.to_string().contains("dev/block"), "{err}");
    }
}
