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

use crate::common::bootsource::{
    PLAIN_HTTP, disk_tar, expect_error, image, import, import_json, inspect_json, layout, serve,
};
use crate::common::formats::{self, Converted};
use crate::common::oci::LayerType;
use crate::common::registry::Registry;

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
    let (converted, ova) = formats::ova();
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
