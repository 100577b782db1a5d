//! Other hypervisors' disks made the way their users make them: a real ext4 file system
//! put through `qemu-img convert -O vmdk|vpc|vhdx|vdi` with one subformat, an OVA
//! around a VMDK, and the oracle for each (`qemu-img info` and `qemu-img compare`
//! with the format named, since a fixed VHD would be probed as raw).
//!
//! ```ignore
//! let vhd = Converted::new("vpc", &["-o", "subformat=dynamic"], "disk.vhd");
//! // bootsource import file:{vhd.file} --to out.raw
//! vhd.assert_same_as(&out);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::oci::Tar;
use super::{disk, tools};

/// 24 MiB and a bit: not a multiple of 512, of a 64 KiB grain or of a 1 or 2 MiB block.
pub const DISK_SIZE: u64 = (24 << 20) + 12_345;

/// A raw disk holding an ext4 file system with a few files, in `dir`.
pub fn filesystem_disk(dir: &Path) -> PathBuf {
    tools::require("mkfs.ext4", "e2fsprogs");
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(
        tree.join("etc/os-release"),
        "NAME=\"golden\"\nVERSION_ID=11\n",
    )
    .unwrap();
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..(3 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    fs::write(tree.join("random.bin"), noise).unwrap();
    fs::write(
        tree.join("text.txt"),
        "a golden image line\n".repeat(50_000),
    )
    .unwrap();
    let raw = dir.join("fs.raw");
    fs::File::create(&raw).unwrap().set_len(DISK_SIZE).unwrap();
    tools::run_command(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E", "root_owner=0:0", "-d"])
            .arg(&tree)
            .arg(&raw),
    );
    raw
}

/// A disk image of one format made by qemu-img from a file system.
pub struct Converted {
    _dir: TempDir,
    pub dir: PathBuf,
    pub file: PathBuf,
    /// qemu-img's name of the format.
    pub qemu_format: &'static str,
}

impl Converted {
    /// `qemu-img convert -O {qemu_format} {options}` of a fresh file system, as `name`.
    pub fn new(qemu_format: &'static str, options: &[&str], name: &str) -> Converted {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let raw = filesystem_disk(&path);
        let file = path.join(name);
        disk::convert(&raw, &file, qemu_format, options);
        fs::remove_file(&raw).unwrap();
        Converted {
            _dir: dir,
            dir: path,
            file,
            qemu_format,
        }
    }

    /// The image file's name.
    pub fn name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// The virtual size qemu-img reads from the image (its format given: a fixed VHD
    /// would be probed as raw).
    pub fn virtual_size(&self) -> u64 {
        let out = tools::run_command(
            Command::new("qemu-img")
                .args(["info", "--output=json", "-f", self.qemu_format])
                .arg(&self.file),
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        info["virtual-size"].as_u64().unwrap()
    }

    /// `qemu-img compare` of the image with a raw file: the same guest content.
    pub fn assert_same_as(&self, raw: &Path) {
        let mut command = Command::new("qemu-img");
        command
            .args(["compare", "-f", self.qemu_format, "-F", "raw"])
            .arg(&self.file)
            .arg(raw);
        let out = tools::run_any_status(&mut command);
        assert!(
            out.status.success(),
            "{} differs from {}: {}",
            raw.display(),
            self.file.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// An OVA as appliance vendors ship it: the OVF descriptor, the VMDK it names (a
/// streamOptimized one, made from a file system), then a manifest.
pub fn ova() -> (Converted, Vec<u8>) {
    let vmdk = Converted::new(
        "vmdk",
        &["-o", "subformat=streamOptimized"],
        "appliance-disk1.vmdk",
    );
    let ovf = "<?xml version=\"1.0\"?>\n<Envelope><References><File ovf:href=\"appliance-disk1.vmdk\"/></References></Envelope>\n";
    let ova = Tar::new()
        .file("appliance.ovf", ovf.as_bytes())
        .file("appliance-disk1.vmdk", &fs::read(&vmdk.file).unwrap())
        .file("appliance.mf", b"SHA256(appliance.ovf)= 00\n")
        .finish();
    (vmdk, ova)
}
