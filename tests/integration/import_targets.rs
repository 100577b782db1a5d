//! Where the raw disk goes: a new or existing file, a loop block device (dirty, too small,
//! mounted), a path whose directory does not exist.
//!
//! Loop devices come from `losetup` over temporary files and are detached on drop.

use std::fs;
use std::os::unix::fs::FileTypeExt as _;
use std::path::PathBuf;

use crate::common;
use crate::common::bootsource::{
    self as bs, PLAIN_HTTP, assert_same_disk, disk_tar, expect_error, hint, image, import,
    import_json, layout, serve,
};
use crate::common::disk;
use crate::common::loopdev::LoopDevice;
use crate::common::oci::LayerType;
use crate::common::registry::Registry;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
const DISK_SIZE: u64 = 16 * MIB;

/// A 16 MiB qcow2 disk served from an OCI layout (and a registry when asked).
struct Fixture {
    dir: TempDir,
    qcow2: PathBuf,
    source: String,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        let qcow2 = dir.path().join("source.qcow2");
        disk::write_raw_disk(&raw, DISK_SIZE, seed);
        disk::qcow2(&raw, &qcow2, &[]);
        let tar = disk_tar("disk.img", &fs::read(&qcow2).unwrap());
        let source = layout(
            &dir.path().join("layout"),
            "1",
            &image(&tar, LayerType::OciTarZstd),
        );
        Fixture { dir, qcow2, source }
    }

    /// An OCI layout whose layer blob was tampered with: every import of it fails after
    /// the target has been opened and partly written.
    fn tampered_source(&self) -> String {
        let tar = disk_tar("disk.img", &fs::read(&self.qcow2).unwrap());
        let image = image(&tar, LayerType::OciTar);
        let dir = self.dir.path().join("tampered");
        let source = layout(&dir, "1", &image);
        let layout = common::oci::Layout::create(&dir);
        layout.tamper_blob(image.layers[0].digest(), |bytes| {
            let last = bytes.len() - 2000;
            bytes[last] ^= 0xff;
        });
        source
    }
}

#[test]
fn file_target_is_sparse_sized_and_leaves_nothing_else() {
    let fixture = Fixture::new(1);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("fedora.img");
    let report = import_json(&fixture.source, &target, &[]);
    assert_same_disk(&fixture.qcow2, &target, &report);
    assert_eq!(bs::dir_entries(out.path()), ["fedora.img"]);
    assert!(disk::allocated_bytes(&target) < DISK_SIZE);
    assert_eq!(report.json["target"], target.display().to_string());
}

/// An existing file survives a failed import byte for byte, and is replaced by a
/// successful one; neither leaves a temporary file beside it.
#[test]
fn existing_file_is_replaced_only_on_success() {
    let fixture = Fixture::new(2);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("disk.img");
    let old = b"the previous version of this disk\n".repeat(1000);
    fs::write(&target, &old).unwrap();

    expect_error(
        &import(&fixture.tampered_source(), &target, &[]),
        &["digest mismatch"],
    );
    assert_eq!(
        fs::read(&target).unwrap(),
        old,
        "a failed import touched the file"
    );
    assert_eq!(bs::dir_entries(out.path()), ["disk.img"]);

    let report = import_json(&fixture.source, &target, &[]);
    assert_same_disk(&fixture.qcow2, &target, &report);
    assert_eq!(bs::dir_entries(out.path()), ["disk.img"]);
}

/// A device full of 0xff gets the disk; the ranges the disk leaves zero read back as
/// zeros, though the importer never wrote them.
#[test]
fn loop_device_gets_the_disk_and_its_zero_ranges_are_zeroed() {
    let fixture = Fixture::new(3);
    let device = LoopDevice::attach(DISK_SIZE);
    device.fill(0xff);
    let registry = Registry::start();
    let tar = disk_tar("disk.img", &fs::read(&fixture.qcow2).unwrap());
    let source = serve(&registry, "os/dev:1", &image(&tar, LayerType::OciTarGzip));

    let report = import_json(&source, device.path(), &[PLAIN_HTTP]);
    assert_eq!(report.json["target"], device.path().display().to_string());
    assert_eq!(report.virtual_size, DISK_SIZE);
    assert!(
        fs::metadata(device.path())
            .unwrap()
            .file_type()
            .is_block_device(),
        "the device was replaced"
    );
    assert!(
        report.written < DISK_SIZE,
        "zero ranges were written as data: {report:?}"
    );
    assert!(disk::qemu_img_compare(&fixture.qcow2, device.path()));
    // A chunk the source leaves zero reads as zeros, not 0xff.
    let source_raw = fixture.dir.path().join("source.raw");
    let raw = fs::read(&source_raw).unwrap();
    let zero_chunk = raw
        .chunks(64 << 10)
        .position(|c| c.iter().all(|&b| b == 0))
        .expect("a zero chunk in the source");
    let offset = zero_chunk as u64 * (64 << 10);
    assert!(
        device.read_at(offset, 64 << 10).iter().all(|&b| b == 0),
        "zero range at {offset:#x} still dirty"
    );
    assert_eq!(device.read_at(0, 512), raw[..512]);
}

#[test]
fn device_smaller_than_the_disk_is_refused_before_writing() {
    let fixture = Fixture::new(4);
    let device = LoopDevice::attach(DISK_SIZE / 2);
    device.fill(0xff);
    let stderr = expect_error(
        &import(&fixture.source, device.path(), &[]),
        &[
            &device.path().display().to_string(),
            &(DISK_SIZE / 2).to_string(),
            &DISK_SIZE.to_string(),
        ],
    );
    assert!(
        hint(&stderr).is_some_and(|h| h.contains("larger")),
        "{stderr}"
    );
    let bytes = device.read_at(0, usize::try_from(DISK_SIZE / 2).unwrap());
    assert!(
        bytes.iter().all(|&b| b == 0xff),
        "bytes were written to a device that is too small"
    );
}

#[test]
fn mounted_device_is_refused() {
    let fixture = Fixture::new(5);
    let mut device = LoopDevice::attach(DISK_SIZE * 2);
    device.mount();
    let before = device.read_at(0, 2 << 20);
    expect_error(
        &import(&fixture.source, device.path(), &[]),
        &[&device.path().display().to_string(), "mounted or in use"],
    );
    assert_eq!(
        device.read_at(0, 2 << 20),
        before,
        "the mounted filesystem was written"
    );
}

/// Another process (here: this one) holds the device open with O_EXCL, as a mounted
/// filesystem, a device-mapper table or another import would.
#[test]
fn device_held_open_exclusively_is_refused() {
    use std::os::unix::fs::OpenOptionsExt as _;
    /// `O_EXCL` on Linux (x86_64 and aarch64): on a block device, an exclusive open.
    const O_EXCL: i32 = 0o200;
    let fixture = Fixture::new(8);
    let device = LoopDevice::attach(DISK_SIZE);
    device.fill(0xab);
    let holder = fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_EXCL)
        .open(device.path())
        .unwrap();
    expect_error(
        &import(&fixture.source, device.path(), &[]),
        &[&device.path().display().to_string(), "in use"],
    );
    assert!(device.read_at(0, 1 << 20).iter().all(|&b| b == 0xab));
    drop(holder);
    let report = import_json(&fixture.source, device.path(), &[]);
    assert_eq!(report.virtual_size, DISK_SIZE);
    assert!(disk::qemu_img_compare(&fixture.qcow2, device.path()));
}

#[test]
fn missing_directory_and_directory_targets_are_errors() {
    let fixture = Fixture::new(6);
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("no/such/dir/disk.img");
    expect_error(
        &import(&fixture.source, &missing, &[]),
        &[
            "does not exist",
            &out.path().join("no/such/dir").display().to_string(),
        ],
    );
    assert!(!out.path().join("no").exists());

    expect_error(
        &import(&fixture.source, out.path(), &[]),
        &["is a directory"],
    );
    assert!(bs::dir_entries(out.path()).is_empty());
}

/// A target in a directory where no file can be created (/proc: root passes permission
/// checks, but not there).
#[test]
fn unwritable_target_is_an_error() {
    let fixture = Fixture::new(7);
    let stderr = expect_error(
        &import(
            &fixture.source,
            &PathBuf::from("/proc/bootsource-test.img"),
            &[],
        ),
        &["/proc/bootsource-test.img"],
    );
    assert!(!stderr.contains("digest"), "{stderr}");
}
