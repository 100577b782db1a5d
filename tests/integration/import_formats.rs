//! One-shot import of every disk format and qcow2 option, through a real registry.
//!
//! Each test writes a disk with `qemu-img` (and `qemu-io` for images edited after
//! creation), pushes it as `disk/disk.img` in an uncompressed layer, runs `bootsource
//! import` and checks the raw file against the source with `qemu-img compare`, its size
//! against the virtual size, and that it stayed sparse: the disks are mostly zeros, so
//! the imported file must occupy a small part of its length.

use std::fs;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::bootsource::{
    self as bs, ImportReport, PLAIN_HTTP, assert_same_disk, assert_sparse, disk_tar, image,
    import_json, serve,
};
use crate::common::oci::LayerType;
use crate::common::registry::Registry;
use crate::common::{disk, tools};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
/// The disks here are 32 MiB with data in the first quarter and a little further on.
const DISK_SIZE: u64 = 32 * MIB;
/// A mostly-zero disk imports into a file occupying at most this part of its length.
const SPARSE: f64 = 0.3;

/// A test's scratch directory.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A mostly-zero raw disk of `size` bytes: mixed data (see `disk::write_raw_disk`) in
    /// its first quarter, 64 KiB of data in the middle and the last 4 KiB.
    fn raw_disk(&self, size: u64, seed: u64) -> PathBuf {
        let raw = self.path("source.raw");
        disk::write_raw_disk(&raw, size / 4, seed);
        let data = fs::read(&raw).unwrap();
        let file = fs::OpenOptions::new().write(true).open(&raw).unwrap();
        file.set_len(size).unwrap();
        file.write_all_at(&data[..64 << 10], size / 2 + 4096)
            .unwrap();
        file.write_all_at(&data[data.len() - 4096..], size - 4096)
            .unwrap();
        raw
    }

    /// `raw_disk` converted to qcow2 with `options`.
    fn qcow2_disk(&self, options: &[&str]) -> PathBuf {
        let raw = self.raw_disk(DISK_SIZE, 11);
        let qcow2 = self.path("source.qcow2");
        disk::qcow2(&raw, &qcow2, options);
        qcow2
    }
}

/// Pushes `disk_file` as `disk/disk.img` to a fresh registry and imports it.
fn import_disk(scratch: &Scratch, disk_file: &Path, extra: &[&str]) -> (ImportReport, PathBuf) {
    let registry = Registry::start();
    let tar = disk_tar("disk.img", &fs::read(disk_file).unwrap());
    let source = serve(&registry, "os/disk:1", &image(&tar, LayerType::OciTar));
    let target = scratch.path("imported.raw");
    let mut args = vec![PLAIN_HTTP];
    args.extend_from_slice(extra);
    let report = import_json(&source, &target, &args);
    (report, target)
}

/// Imports the qcow2 made with `options` and checks it against its source.
fn check_qcow2(options: &[&str]) -> ImportReport {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(options);
    let (report, target) = import_disk(&scratch, &qcow2, &[]);
    assert_eq!(report.format, "qcow2");
    assert_eq!(report.disk, "disk.img");
    assert_same_disk(&qcow2, &target, &report);
    assert_sparse(&target, SPARSE);
    report
}

/// `qemu-io -c CMD … IMAGE` (writes to a qcow2 in place).
fn qemu_io(image: &Path, commands: &[&str]) {
    tools::require("qemu-io", "qemu-utils");
    let mut command = Command::new("qemu-io");
    for c in commands {
        command.arg("-c").arg(c);
    }
    command.args(["-f", "qcow2"]).arg(image);
    let output = tools::run_command(&mut command);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("error") && !stdout.contains("failed"),
        "qemu-io: {stdout}"
    );
}

fn qemu_img(args: &[&str], image: &Path) {
    tools::run_command(Command::new("qemu-img").args(args).arg(image));
}

#[test]
fn raw_disk_is_copied_sparse() {
    let scratch = Scratch::new();
    let raw = scratch.raw_disk(DISK_SIZE, 1);
    let (report, target) = import_disk(&scratch, &raw, &[]);
    assert_eq!(report.format, "raw");
    assert_same_disk(&raw, &target, &report);
    assert_sparse(&target, SPARSE);
    assert_eq!(report.passes, 1);
    assert!(
        report.written < DISK_SIZE / 2,
        "zeros were written: {report:?}"
    );
}

#[test]
fn qcow2_default_options() {
    let report = check_qcow2(&[]);
    assert_eq!(report.passes, 1);
}

#[test]
fn qcow2_deflate_compressed() {
    check_qcow2(&["-c"]);
}

#[test]
fn qcow2_zstd_compressed() {
    check_qcow2(&["-c", "-o", "compression_type=zstd"]);
}

#[test]
fn qcow2_512_byte_clusters() {
    check_qcow2(&["-o", "cluster_size=512"]);
}

#[test]
fn qcow2_512_byte_clusters_compressed() {
    check_qcow2(&["-c", "-o", "cluster_size=512"]);
}

#[test]
fn qcow2_2m_clusters() {
    check_qcow2(&["-o", "cluster_size=2M"]);
}

#[test]
fn qcow2_2m_clusters_compressed() {
    check_qcow2(&["-c", "-o", "cluster_size=2M"]);
    check_qcow2(&["-c", "-o", "cluster_size=2M,compression_type=zstd"]);
}

#[test]
fn qcow2_preallocated_metadata() {
    check_qcow2(&["-o", "preallocation=metadata"]);
}

#[test]
fn qcow2_version_2() {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(&["-o", "compat=0.10"]);
    assert_eq!(
        disk::qemu_img_info(&qcow2)["format-specific"]["data"]["compat"],
        "0.10"
    );
    let (report, target) = import_disk(&scratch, &qcow2, &[]);
    assert_eq!(report.format, "qcow2");
    assert_same_disk(&qcow2, &target, &report);
    assert_sparse(&target, SPARSE);
}

/// Subclusters: a partial write into an unallocated cluster allocates some of its
/// subclusters only; `write -z` sets zero flags over data (whole and partial clusters).
#[test]
fn qcow2_extended_l2_with_partial_subclusters_and_zero_flags() {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(&["-o", "extended_l2=on,cluster_size=128k"]);
    let raw = scratch.path("source.raw");
    qemu_io(
        &qcow2,
        &[
            // Data clusters partly zeroed by flag: subclusters 2-3 of a cluster with data.
            "write -z 8k 8k",
            // A whole cluster of data turned into zero flags.
            "write -z 1M 128k",
            // Into all-zero space (after the data quarter): 3 subclusters of one cluster.
            "write -P 0xab 20M 12k",
            // An unaligned write crossing a cluster boundary, in zero space.
            "write -P 0xcd 21098496 8192",
        ],
    );
    assert!(
        !disk::qemu_img_compare(&raw, &qcow2),
        "the qemu-io writes changed nothing"
    );
    let (report, target) = import_disk(&scratch, &qcow2, &[]);
    assert_same_disk(&qcow2, &target, &report);
    assert_sparse(&target, SPARSE);
    let bytes = fs::read(&target).unwrap();
    assert!(bytes[8 << 10..16 << 10].iter().all(|&b| b == 0));
    assert!(
        bytes[20 << 20..(20 << 20) + (12 << 10)]
            .iter()
            .all(|&b| b == 0xab)
    );
}

/// `qemu-img resize` grows the L1 table into a new one at the end of the file: every
/// data cluster arrives before the table that maps it. With a spool smaller than that
/// data the importer reads the layer a second time; with the default spool it holds it.
#[test]
fn qcow2_resized_needs_a_second_pass_with_a_small_spool() {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(&["-o", "cluster_size=4096"]);
    let l1_before = l1_table_offset(&qcow2);
    tools::run(
        "qemu-img",
        [
            "resize".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            qcow2.as_os_str(),
            "+16M".as_ref(),
        ],
    );
    qemu_io(&qcow2, &["write -P 0x77 40M 1M"]);
    let l1_after = l1_table_offset(&qcow2);
    let len = fs::metadata(&qcow2).unwrap().len();
    assert!(
        l1_after > l1_before && l1_after > len / 2,
        "the L1 table did not move to the end: {l1_before:#x} → {l1_after:#x} of {len:#x}"
    );

    let (small, target) = import_disk(&scratch, &qcow2, &["--spool-limit", "256K"]);
    assert_same_disk(&qcow2, &target, &small);
    assert_sparse(&target, SPARSE);
    assert!(
        small.passes >= 2,
        "one pass with a 256 KiB spool: {small:?}"
    );
    // The decoder drops the spool once a chunk takes it past the limit (its documented
    // memory bound adds that chunk): allow one stream chunk over.
    assert!(
        small.spool_peak <= (256 << 10) + (64 << 10),
        "spool far over its limit: {small:?}"
    );

    fs::remove_file(&target).unwrap();
    let (default, target) = import_disk(&scratch, &qcow2, &[]);
    assert_same_disk(&qcow2, &target, &default);
    assert!(default.spool_peak <= 64 * MIB, "{default:?}");
    assert!(
        default.passes == 1 && default.spool_peak > 0,
        "the default spool holds these few MiB in one pass: {default:?}"
    );
}

/// An internal snapshot, then writes: clusters are copied on write, refcounts > 1, freed
/// and reused space. The import is the active state, not the snapshot.
#[test]
fn qcow2_with_an_internal_snapshot_imports_the_current_state() {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(&[]);
    let raw = scratch.path("source.raw");
    qemu_img(&["snapshot", "-c", "before"], &qcow2);
    qemu_io(
        &qcow2,
        &[
            "write -P 0x5a 1M 3M",
            "write -z 5M 1M",
            "write -P 0x3c 24M 64k",
        ],
    );
    assert!(!disk::qemu_img_compare(&raw, &qcow2));
    let (report, target) = import_disk(&scratch, &qcow2, &[]);
    assert_same_disk(&qcow2, &target, &report);
    assert_sparse(&target, SPARSE);
}

/// The L1 table offset from a qcow2 header (big-endian u64 at byte 40).
fn l1_table_offset(qcow2: &Path) -> u64 {
    let header = fs::read(qcow2).unwrap();
    u64::from_be_bytes(header[40..48].try_into().unwrap())
}

#[test]
fn sizes_in_the_report_match_the_image() {
    let scratch = Scratch::new();
    let qcow2 = scratch.qcow2_disk(&["-c"]);
    let (report, target) = import_disk(&scratch, &qcow2, &[]);
    let layer_size = fs::metadata(&qcow2).unwrap().len();
    assert!(
        report.downloaded >= layer_size && report.downloaded < layer_size + MIB,
        "downloaded {} for a {layer_size}-byte disk in an uncompressed layer",
        report.downloaded
    );
    let data = bs::dir_entries(target.parent().unwrap());
    assert!(data.contains(&"imported.raw".to_owned()), "{data:?}");
    assert!(report.written > 0 && report.written <= disk::allocated_bytes(&target) + MIB);
}
