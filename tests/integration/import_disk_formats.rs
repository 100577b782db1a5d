//! Other hypervisors' disks imported from container disks: VMDK, VHD, VHDX, VDI, OVA.
//!
//! Each test puts a real ext4 file system (made with `mkfs.ext4 -d` from a small tree
//! of files, on a disk whose size is no multiple of any block or grain size) through
//! `qemu-img convert -O vmdk|vpc|vhdx|vdi` with one subformat, pushes the result as
//! `disk/<name>` in a layer (uncompressed, gzip or zstd), imports it with the real binary
//! and checks it against qemu-img's own reading of the image: the virtual size as
//! `qemu-img info` gives it and the content with `qemu-img compare`. `inspect` must
//! name the format and subformat.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::bootsource::{
    PLAIN_HTTP, disk_tar, expect_error, image, import, import_json, inspect_json, layout, serve,
};
use crate::common::oci::{LayerType, Tar};
use crate::common::registry::Registry;
use crate::common::{disk, tools};
use tempfile::TempDir;

/// 24 MiB and a bit: not a multiple of 512, of a 64 KiB grain or of a 1 or 2 MiB block.
const DISK_SIZE: u64 = (24 << 20) + 12_345;

/// A raw disk holding an ext4 file system with a few files, in `dir`.
fn filesystem_disk(dir: &Path) -> PathBuf {
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
struct Converted {
    _dir: TempDir,
    dir: PathBuf,
    file: PathBuf,
    /// qemu-img's name of the format.
    qemu_format: &'static str,
}

impl Converted {
    fn new(qemu_format: &'static str, options: &[&str], name: &str) -> Converted {
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

    fn name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// The virtual size qemu-img reads from the image (its format given: a fixed VHD
    /// would be probed as raw).
    fn virtual_size(&self) -> u64 {
        let out = tools::run_command(
            Command::new("qemu-img")
                .args(["info", "--output=json", "-f", self.qemu_format])
                .arg(&self.file),
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        info["virtual-size"].as_u64().unwrap()
    }

    /// `qemu-img compare` of the image with a raw file: the same guest content.
    fn assert_same_as(&self, raw: &Path) {
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

/// Imports `converted` from a registry (as `disk/<name>` in a `layer`-type layer) and
/// checks it; returns the inspect JSON of the disk.
fn check(converted: &Converted, layer: LayerType, format: &str) -> serde_json::Value {
    let registry = Registry::start();
    let tar = disk_tar(&converted.name(), &fs::read(&converted.file).unwrap());
    let source = serve(&registry, "os/disk:1", &image(&tar, layer));
    let target = converted.dir.join("imported.raw");
    let report = import_json(&source, &target, &[PLAIN_HTTP]);
    assert_eq!(report.format, format);
    assert_eq!(report.passes, 1, "{report:?}");
    let size = converted.virtual_size();
    assert_eq!(report.virtual_size, size, "reported virtual size");
    assert_eq!(fs::metadata(&target).unwrap().len(), size);
    converted.assert_same_as(&target);
    inspect_json(&source, &[PLAIN_HTTP])["disk"].clone()
}

fn check_subformat(
    qemu_format: &'static str,
    options: &[&str],
    name: &str,
    layer: LayerType,
    format: &str,
    subformat: &str,
) {
    let converted = Converted::new(qemu_format, options, name);
    let disk = check(&converted, layer, format);
    assert_eq!(disk["format"], format, "{disk}");
    assert_eq!(disk["subformat"], subformat, "{disk}");
}

#[test]
fn vmdk_monolithic_sparse() {
    let options = ["-o", "subformat=monolithicSparse"];
    check_subformat(
        "vmdk",
        &options,
        "disk.img",
        LayerType::OciTar,
        "vmdk",
        "monolithicSparse",
    );
}

#[test]
fn vmdk_stream_optimized_in_a_zstd_layer() {
    let options = ["-o", "subformat=streamOptimized"];
    check_subformat(
        "vmdk",
        &options,
        "disk.vmdk",
        LayerType::OciTarZstd,
        "vmdk",
        "streamOptimized",
    );
}

#[test]
fn vhd_dynamic_in_a_gzip_layer() {
    check_subformat(
        "vpc",
        &["-o", "subformat=dynamic"],
        "disk.img",
        LayerType::OciTarGzip,
        "vhd",
        "dynamic",
    );
}

/// A fixed VHD starts like a raw disk: it is known by its name, and its footer checked.
#[test]
fn vhd_fixed_by_its_name() {
    let options = ["-o", "subformat=fixed,force_size=on"];
    check_subformat(
        "vpc",
        &options,
        "azure.vhd",
        LayerType::OciTarZstd,
        "vhd",
        "fixed",
    );
}

#[test]
fn vhdx_dynamic_and_fixed() {
    check_subformat(
        "vhdx",
        &["-o", "subformat=dynamic"],
        "disk.vhdx",
        LayerType::OciTar,
        "vhdx",
        "dynamic",
    );
    let options = ["-o", "subformat=fixed,block_size=1M"];
    check_subformat(
        "vhdx",
        &options,
        "disk.img",
        LayerType::OciTarZstd,
        "vhdx",
        "fixed",
    );
}

#[test]
fn vdi_dynamic_and_static() {
    check_subformat("vdi", &[], "disk.vdi", LayerType::OciTar, "vdi", "dynamic");
    check_subformat(
        "vdi",
        &["-o", "static=on"],
        "disk.img",
        LayerType::OciTarZstd,
        "vdi",
        "static",
    );
}

/// An OVA (the OVF descriptor, then its VMDK) in a container disk, from an OCI layout
/// on disk.
#[test]
fn ova_from_an_oci_layout() {
    let converted = Converted::new(
        "vmdk",
        &["-o", "subformat=streamOptimized"],
        "appliance-disk1.vmdk",
    );
    let ovf = "<?xml version=\"1.0\"?>\n<Envelope><References><File ovf:href=\"appliance-disk1.vmdk\"/></References></Envelope>\n";
    let ova = Tar::new()
        .file("appliance.ovf", ovf.as_bytes())
        .file("appliance-disk1.vmdk", &fs::read(&converted.file).unwrap())
        .file("appliance.mf", b"SHA256(appliance.ovf)= 00\n")
        .finish();
    let tar = disk_tar("appliance.ova", &ova);
    let source = layout(
        &converted.dir.join("layout"),
        "1",
        &image(&tar, LayerType::OciTar),
    );
    let target = converted.dir.join("imported.raw");
    let report = import_json(&source, &target, &[]);
    assert_eq!(report.format, "ova");
    assert_eq!(report.virtual_size, converted.virtual_size());
    converted.assert_same_as(&target);
    let disk = inspect_json(&source, &[])["disk"].clone();
    assert_eq!(
        (disk["format"].as_str(), disk["subformat"].as_str()),
        (Some("ova"), Some("streamOptimized"))
    );
}

/// Disks that need more than one file are refused by kind, and nothing is left behind.
#[test]
fn vmdk_needing_other_files_is_refused_by_kind() {
    let converted = Converted::new("vmdk", &["-o", "subformat=monolithicFlat"], "disk.vmdk");
    let registry = Registry::start();
    let tar = disk_tar("disk.vmdk", &fs::read(&converted.file).unwrap());
    let source = serve(&registry, "os/disk:1", &image(&tar, LayerType::OciTar));
    let target = converted.dir.join("imported.raw");
    let output = import(&source, &target, &[PLAIN_HTTP]);
    expect_error(&output, &["createType \"monolithicFlat\"", "not supported"]);
    assert!(!target.exists());
}
