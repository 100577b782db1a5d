//! BlockDevice and the device topology on real loop devices (needs root, util-linux's
//! losetup and partx, fdisk's sfdisk, e2fsprogs and btrfs-progs).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;

use bootsource_blockdev::topology::{DeviceNumber, Overlap, Sysfs};
use bootsource_blockdev::{BlockDevice, Error};

/// A loop device over a temp file, detached on drop.
struct Loop {
    dev: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl Loop {
    fn new(size: u64) -> Self {
        let backing = tempfile::NamedTempFile::new().unwrap();
        backing.as_file().set_len(size).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show", "--partscan"])
            .arg(backing.path())
            .output()
            .expect("losetup (util-linux)");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        Self {
            dev,
            _backing: backing,
        }
    }
}

impl Loop {
    /// A disk with a GPT of `partitions` (sizes in MiB). `partx` adds them through
    /// `BLKPG`, so they appear also where the kernel parses no partition tables.
    fn partitioned(size: u64, partitions: &[u64]) -> Self {
        let lo = Self::new(size);
        let mut table = String::from("label: gpt\n");
        for mib in partitions {
            table.push_str(&format!("size={mib}MiB\n"));
        }
        run(
            Command::new("sfdisk").arg("-q").arg(&lo.dev),
            table.as_bytes(),
        );
        run(Command::new("partx").arg("-u").arg(&lo.dev), b"");
        lo
    }

    fn partition(&self, n: u32) -> PathBuf {
        PathBuf::from(format!("{}p{n}", self.dev.display()))
    }
}

fn run(command: &mut Command, stdin: &[u8]) {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} (fdisk, util-linux): {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn number(path: &std::path::Path) -> DeviceNumber {
    DeviceNumber::of_block_device(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{} is not a block device", path.display()))
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

#[test]
fn geometry_zeroing_and_exclusivity() {
    let lo = Loop::new(8 << 20);
    let dev = BlockDevice::open_exclusive(&lo.dev).unwrap();
    assert_eq!(dev.size(), 8 << 20);
    assert!([512, 4096].contains(&dev.logical_block_size()));

    dev.file().write_all_at(&[0xaa; 8192], 4096).unwrap();
    dev.zero_range(4096, 4096).unwrap();
    let mut back = [0xffu8; 8192];
    dev.file().read_exact_at(&mut back, 4096).unwrap();
    assert!(
        back[..4096].iter().all(|&b| b == 0),
        "zeroed range reads as zeros"
    );
    assert!(
        back[4096..].iter().all(|&b| b == 0xaa),
        "the rest is untouched"
    );

    let second = BlockDevice::open_exclusive(&lo.dev).unwrap_err();
    assert!(matches!(second, Error::Busy(_)), "{second}");
    drop(dev);
    BlockDevice::open_exclusive(&lo.dev).expect("free again once closed");
}

/// Zeroing must not fill thin storage: on a loop device over a sparse file (as on a
/// thin LV or an NVMe namespace that deallocates), a zeroed range reads as zeros and
/// leaves no allocated blocks behind, stale data included.
#[test]
fn zero_range_deallocates_where_the_device_can() {
    use std::os::unix::fs::MetadataExt;
    const SIZE: u64 = 256 << 20;
    let lo = Loop::new(SIZE);
    let dev = BlockDevice::open_exclusive(&lo.dev).unwrap();
    // Stale contents the zeroing must clear: 8 MiB spread over the device.
    for i in 0..8u64 {
        dev.file()
            .write_all_at(&[0xaa; 1 << 20], i * (SIZE / 8))
            .unwrap();
    }
    dev.file().sync_all().unwrap();
    let allocated = || std::fs::metadata(lo._backing.path()).unwrap().blocks() * 512;
    assert!(allocated() >= 8 << 20, "the stale data is allocated");

    dev.zero_range(0, SIZE).unwrap();
    dev.file().sync_all().unwrap();
    assert!(
        allocated() < 1 << 20,
        "{} bytes of the backing file still allocated after zeroing",
        allocated()
    );
    let mut back = vec![0xffu8; 1 << 20];
    for i in 0..8u64 {
        dev.file().read_exact_at(&mut back, i * (SIZE / 8)).unwrap();
        assert!(
            back.iter().all(|&b| b == 0),
            "MiB {} reads as zeros",
            i * 32
        );
    }
}

#[test]
fn a_mounted_device_is_busy() {
    let lo = Loop::new(32 << 20);
    let mkfs = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&lo.dev)
        .status()
        .expect("mkfs.ext4 (e2fsprogs)");
    assert!(mkfs.success());
    let mnt = tempfile::tempdir().unwrap();
    assert!(
        Command::new("mount")
            .arg(&lo.dev)
            .arg(mnt.path())
            .status()
            .unwrap()
            .success()
    );
    let err = BlockDevice::open_exclusive(&lo.dev).unwrap_err();
    let _ = Command::new("umount").arg(mnt.path()).status();
    assert!(matches!(err, Error::Busy(_)), "{err}");
    let mut msg = Vec::new();
    write!(msg, "{err}").unwrap();
    assert!(
        String::from_utf8(msg)
            .unwrap()
            .contains("mounted or in use")
    );
}

#[test]
fn zero_bytes_clears_unaligned_edges_and_nothing_else() {
    let lo = Loop::new(1 << 20);
    let dev = BlockDevice::open_exclusive(&lo.dev).unwrap();
    dev.file().write_all_at(&[0xaa; 1 << 16], 0).unwrap();
    // Starts and ends mid-block, spans whole blocks between.
    let (start, end) = (100, 3 * 4096 + 7);
    dev.zero_bytes(start, end).unwrap();
    // Within one block only.
    dev.zero_bytes(20_000, 20_010).unwrap();
    let mut back = vec![0u8; 1 << 16];
    dev.file().read_exact_at(&mut back, 0).unwrap();
    for (i, &b) in back.iter().enumerate() {
        let i = i as u64;
        let zeroed = (start..end).contains(&i) || (20_000..20_010).contains(&i);
        assert_eq!(b, if zeroed { 0 } else { 0xaa }, "byte {i}");
    }
}

#[test]
fn partitions_overlap_their_disk_by_number_whatever_the_path() {
    let disk = Loop::partitioned(24 << 20, &[8, 8]);
    let other = Loop::new(8 << 20);
    let sysfs = Sysfs::system();
    let (d, p1, p2) = (
        number(&disk.dev),
        number(&disk.partition(1)),
        number(&disk.partition(2)),
    );
    assert_eq!(sysfs.overlap(d, p1).unwrap(), Some(Overlap::Contains));
    assert_eq!(sysfs.overlap(p2, d).unwrap(), Some(Overlap::Inside));
    assert_eq!(sysfs.overlap(p1, p2).unwrap(), None, "siblings");
    assert_eq!(sysfs.overlap(number(&other.dev), d).unwrap(), None);

    // A by-id style symlink, and a device node of its own elsewhere: one device.
    let links = tempfile::tempdir().unwrap();
    let by_id = links.path().join("usb-Test_Disk_0001-part1");
    std::os::unix::fs::symlink(disk.partition(1), &by_id).unwrap();
    assert_eq!(number(&by_id), p1);
    let node = links.path().join("node");
    let status = Command::new("mknod")
        .arg(&node)
        .arg("b")
        .args([p1.major.to_string(), p1.minor.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        sysfs.overlap(number(&node), d).unwrap(),
        Some(Overlap::Inside)
    );
    let opened = BlockDevice::open_exclusive(&by_id).unwrap();
    assert_eq!(opened.number().unwrap(), p1);
    assert_eq!(DeviceNumber::of_block_device(links.path()).unwrap(), None);
}

#[test]
fn a_file_system_is_traced_to_its_block_device() {
    let ext4 = Loop::partitioned(48 << 20, &[40]);
    let btrfs = Loop::new(256 << 20);
    let sysfs = Sysfs::system();
    let mounts: Vec<_> = [
        ("mkfs.ext4", "-F", ext4.partition(1)),
        ("mkfs.btrfs", "-f", btrfs.dev.clone()),
    ]
    .into_iter()
    .map(|(mkfs, force, dev)| {
        run(Command::new(mkfs).args(["-q", force]).arg(&dev), b"");
        let mnt = tempfile::tempdir().unwrap();
        run(Command::new("mount").arg(&dev).arg(mnt.path()), b"");
        (mnt, dev)
    })
    .collect();
    let found: Vec<_> = mounts
        .iter()
        .map(|(mnt, _)| sysfs.filesystem_device(&mnt.path().join("not/yet/made")))
        .collect();
    for (mnt, _) in &mounts {
        let _ = Command::new("umount").arg(mnt.path()).status();
    }
    for ((_, dev), found) in mounts.iter().zip(found) {
        assert_eq!(found.unwrap(), Some(number(dev)), "{}", dev.display());
    }
    let shm = sysfs
        .filesystem_device(std::path::Path::new("/dev/shm"))
        .unwrap();
    assert_eq!(shm, None, "tmpfs is on no block device");
}
