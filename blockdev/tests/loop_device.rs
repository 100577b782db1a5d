//! BlockDevice on a real loop device (needs root and util-linux's losetup).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;

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
            .args(["-f", "--show"])
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
