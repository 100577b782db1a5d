//! Other hypervisors' disks as single files: every format and subformat (VMDK
//! monolithicSparse and streamOptimized, VHD fixed and dynamic, VHDX fixed and dynamic,
//! VDI static and dynamic, an OVA) from `file:PATH` and from `http://` (Debian's nginx),
//! each as qemu-img wrote it and compressed by the real `gzip`, `xz`, `zstd`, `bzip2`.
//!
//! One table says what each case is; every case goes through every source. The oracle
//! is qemu-img's own reading of the image (`qemu-img info` for the virtual size,
//! `qemu-img compare` for the content), and `inspect` must name the format and
//! subformat from either source. Standard input has no length to give the formats that
//! need one, unless the disk comes in a tar.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use crate::common::bootsource::{
    ImportReport, disk_tar, expect_error, expect_success, import_command, import_json, inspect_json,
};
use crate::common::formats::{self, Converted};
use crate::common::nginx::Nginx;
use crate::common::tools;

/// One disk image, and how it is shipped.
struct Case {
    /// qemu-img's format and its `-o` options.
    qemu_format: &'static str,
    options: &'static [&'static str],
    /// The file's name before any compression suffix.
    name: &'static str,
    /// What bootsource must call it.
    format: &'static str,
    subformat: &'static str,
    /// Compressors besides none.
    compressions: &'static [&'static str],
}

/// The file name suffix each compressor gives.
fn suffix(tool: &str) -> &'static str {
    match tool {
        "gzip" => ".gz",
        "xz" => ".xz",
        "zstd" => ".zst",
        "bzip2" => ".bz2",
        other => panic!("no suffix for {other}"),
    }
}

/// The image's file, plain and compressed, each as `(name, bytes)`.
fn shipped(file: &Path, name: &str, compressions: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![(name.to_owned(), fs::read(file).unwrap())];
    for tool in compressions {
        files.push((
            format!("{name}{}", suffix(tool)),
            tools::compress(tool, file),
        ));
    }
    files
}

/// Imports every shipped file from a local path and over HTTP; checks each import
/// against `oracle` and what `inspect` says of it.
fn check_every_source(case: &Case, oracle: &Converted, files: &[(String, Vec<u8>)]) {
    let nginx = Nginx::start();
    let target = oracle.dir.join("imported.raw");
    for (name, bytes) in files {
        let local = oracle.dir.join("shipped").join(name);
        fs::create_dir_all(local.parent().unwrap()).unwrap();
        fs::write(&local, bytes).unwrap();
        nginx.put(name, bytes);
        for source in [format!("file:{}", local.display()), nginx.url(name)] {
            let _ = fs::remove_file(&target);
            let report = import_json(&source, &target, &[]);
            assert_eq!(report.format, case.format, "{source}");
            assert_eq!(report.passes, 1, "{source}: {report:?}");
            assert_eq!(report.virtual_size, oracle.virtual_size(), "{source}");
            assert_eq!(fs::metadata(&target).unwrap().len(), report.virtual_size);
            oracle.assert_same_as(&target);
            let disk = inspect_json(&source, &[])["disk"].clone();
            assert_eq!(
                (disk["format"].as_str(), disk["subformat"].as_str()),
                (Some(case.format), Some(case.subformat)),
                "{source}: {disk}"
            );
        }
    }
}

fn check(case: &Case) {
    let converted = Converted::new(case.qemu_format, case.options, case.name);
    let files = shipped(&converted.file, case.name, case.compressions);
    check_every_source(case, &converted, &files);
}

const VMDK_SPARSE: Case = Case {
    qemu_format: "vmdk",
    options: &["-o", "subformat=monolithicSparse"],
    name: "disk.vmdk",
    format: "vmdk",
    subformat: "monolithicSparse",
    compressions: &["gzip", "xz", "zstd"],
};

const VMDK_STREAM: Case = Case {
    qemu_format: "vmdk",
    options: &["-o", "subformat=streamOptimized"],
    name: "appliance.vmdk",
    format: "vmdk",
    subformat: "streamOptimized",
    compressions: &["gzip", "xz", "bzip2"],
};

/// A fixed VHD is known by its name: compressed, by its name less the suffix.
const VHD_FIXED: Case = Case {
    qemu_format: "vpc",
    options: &["-o", "subformat=fixed,force_size=on"],
    name: "azure.vhd",
    format: "vhd",
    subformat: "fixed",
    compressions: &["gzip", "xz", "zstd", "bzip2"],
};

const VHD_DYNAMIC: Case = Case {
    qemu_format: "vpc",
    options: &["-o", "subformat=dynamic"],
    name: "disk.vhd",
    format: "vhd",
    subformat: "dynamic",
    compressions: &["gzip", "xz", "zstd"],
};

const VHDX_FIXED: Case = Case {
    qemu_format: "vhdx",
    options: &["-o", "subformat=fixed,block_size=1M"],
    name: "hyperv.vhdx",
    format: "vhdx",
    subformat: "fixed",
    compressions: &["gzip", "xz", "zstd"],
};

const VHDX_DYNAMIC: Case = Case {
    qemu_format: "vhdx",
    options: &["-o", "subformat=dynamic"],
    name: "disk.img",
    format: "vhdx",
    subformat: "dynamic",
    compressions: &["gzip", "xz", "bzip2"],
};

const VDI_STATIC: Case = Case {
    qemu_format: "vdi",
    options: &["-o", "static=on"],
    name: "vbox.vdi",
    format: "vdi",
    subformat: "static",
    compressions: &["gzip", "xz", "zstd", "bzip2"],
};

const VDI_DYNAMIC: Case = Case {
    qemu_format: "vdi",
    options: &[],
    name: "disk.vdi",
    format: "vdi",
    subformat: "dynamic",
    compressions: &["gzip", "xz"],
};

#[test]
fn vmdk_monolithic_sparse() {
    check(&VMDK_SPARSE);
}

#[test]
fn vmdk_stream_optimized() {
    check(&VMDK_STREAM);
}

#[test]
fn vhd_fixed() {
    check(&VHD_FIXED);
}

#[test]
fn vhd_dynamic() {
    check(&VHD_DYNAMIC);
}

#[test]
fn vhdx_fixed() {
    check(&VHDX_FIXED);
}

#[test]
fn vhdx_dynamic() {
    check(&VHDX_DYNAMIC);
}

#[test]
fn vdi_static() {
    check(&VDI_STATIC);
}

#[test]
fn vdi_dynamic() {
    check(&VDI_DYNAMIC);
}

/// An OVA is a tar of several files: read as the appliance, not as a one-file archive.
#[test]
fn ova() {
    let (vmdk, ova) = formats::ova();
    let file = vmdk.dir.join("appliance.ova");
    fs::write(&file, ova).unwrap();
    let case = Case {
        qemu_format: "vmdk",
        options: &[],
        name: "appliance.ova",
        format: "ova",
        subformat: "streamOptimized",
        compressions: &["gzip", "xz", "zstd"],
    };
    let files = shipped(&file, case.name, case.compressions);
    check_every_source(&case, &vmdk, &files);
}

/// `bootsource import - --to TARGET` with `stdin` on its standard input.
fn import_stdin(stdin: &Path, target: &Path) -> std::process::Output {
    let mut command = import_command("-", target, &["--json"]);
    command.stdin(Stdio::from(fs::File::open(stdin).unwrap()));
    tools::run_any_status(&mut command)
}

/// A VDI on a pipe cannot be sized before its end (its block map is checked against the
/// file's length): refused, by what it needs. In a tar, the entry's size says it.
#[test]
fn standard_input_needs_a_tar_around_all_but_qcow2() {
    let vdi = Converted::new("vdi", &[], "disk.vdi");
    let target = vdi.dir.join("imported.raw");
    let output = import_stdin(&vdi.file, &target);
    expect_error(
        &output,
        &["standard input", "length", "a tar holding the disk"],
    );
    assert!(!target.exists());

    let tar = vdi.dir.join("disk.tar");
    fs::write(&tar, disk_tar("disk.vdi", &fs::read(&vdi.file).unwrap())).unwrap();
    let report = ImportReport::parse(&expect_success(&import_stdin(&tar, &target), "stdin"));
    assert_eq!(report.format, "vdi");
    vdi.assert_same_as(&target);
}
