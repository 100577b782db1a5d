//! A raw disk whose length no header tells (gzip, bzip2, pzstd; zstd from a pipe) is
//! read once: it is written as it arrives into a file that grows and takes its length at
//! the end, within `max_virtual_size`. A block device target takes it within its own
//! size. Only a block pool, which must choose a device by size, has the file measured
//! by a first read. Counted from nginx's access log; the oracle is `qemu-img compare`.

use std::fs;
use std::process::Stdio;

use sha2::{Digest as _, Sha256};

use crate::common::bootsource::{
    assert_same_disk, dir_entries, expect_error, import, import_command, import_json,
};
use crate::common::daemon::Node;
use crate::common::loopdev::LoopDevice;
use crate::common::nginx::Nginx;
use crate::common::{disk, tools};

const MIB: u64 = 1 << 20;

/// The `GET`s nginx answered for `name`.
fn gets(nginx: &Nginx, name: &str) -> usize {
    let request = format!("\"GET /{name} HTTP/1.1\"");
    nginx
        .access_log()
        .lines()
        .filter(|l| l.contains(&request))
        .count()
}

#[test]
fn gzip_bzip2_and_pzstd_raw_over_http_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, 24 * MIB, 41);
    let nginx = Nginx::start();
    for (tool, suffix) in [("gzip", "gzip"), ("bzip2", "bzip2"), ("pzstd", "zst")] {
        let name = format!("disk.raw.{suffix}");
        let bytes = tools::compress(tool, &raw);
        if tool == "pzstd" {
            // A skippable frame (pzstd's index) before each zstd frame: the file does not
            // start with a frame's magic, and no header tells the whole length.
            assert_eq!(
                bytes[..4],
                [0x50, 0x2a, 0x4d, 0x18],
                "a skippable frame first"
            );
        }
        nginx.put(&name, &bytes);
        let target = dir.path().join(format!("{tool}.out"));
        let report = import_json(&nginx.url(&name), &target, &[]);
        assert_same_disk(&raw, &target, &report);
        assert_eq!(gets(&nginx, &name), 1, "{name} was read more than once");
        assert_eq!(report.downloaded, bytes.len() as u64, "{name}");
    }
}

#[test]
fn zstd_raw_without_a_content_size_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, 24 * MIB, 42);
    // Compressed from a pipe, zstd cannot write the content size into its frame.
    let mut zstd = std::process::Command::new("zstd");
    zstd.args(["-q", "-c"])
        .stdin(Stdio::from(fs::File::open(&raw).unwrap()));
    let zst = dir.path().join("disk.raw.zst");
    fs::write(&zst, tools::run_command(&mut zstd).stdout).unwrap();
    let target = dir.path().join("out");
    let mut command = import_command("-", &target, &["--json"]);
    command.stdin(Stdio::from(fs::File::open(&zst).unwrap()));
    let output = tools::run_any_status(&mut command);
    let stdout = crate::common::bootsource::expect_success(&output, "zstd from stdin");
    let report = crate::common::bootsource::ImportReport::parse(&stdout);
    assert_same_disk(&raw, &target, &report);
}

#[test]
fn a_growing_disk_is_refused_past_max_virtual_size_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, 24 * MIB, 43);
    let gz = dir.path().join("disk.raw.gz");
    fs::write(&gz, tools::compress("gzip", &raw)).unwrap();
    let before = dir_entries(dir.path());
    let limit = ["--max-virtual-size", "16M"];

    let target = dir.path().join("from-stdin");
    let mut command = import_command("-", &target, &limit);
    command.stdin(Stdio::from(fs::File::open(&gz).unwrap()));
    let output = tools::run_any_status(&mut command);
    expect_error(&output, &["max_virtual_size"]);

    let nginx = Nginx::start();
    nginx.put("disk.raw.gz", &fs::read(&gz).unwrap());
    let target = dir.path().join("from-http");
    let output = import(&nginx.url("disk.raw.gz"), &target, &limit);
    expect_error(&output, &["max_virtual_size"]);
    assert_eq!(
        dir_entries(dir.path()),
        before,
        "a failed import left something"
    );

    // At the limit exactly, it is a disk like any other.
    let target = dir.path().join("at-limit");
    let report = import_json(
        &nginx.url("disk.raw.gz"),
        &target,
        &["--max-virtual-size", "24M"],
    );
    assert_same_disk(&raw, &target, &report);
}

#[test]
fn a_block_device_target_takes_a_growing_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, 24 * MIB, 44);
    let device = LoopDevice::attach(32 * MIB);
    // What the disk leaves zero must read as zero on the device.
    device.fill(0xff);
    let nginx = Nginx::start();
    nginx.put("disk.raw.bz2", &tools::compress("bzip2", &raw));
    let output = import(&nginx.url("disk.raw.bz2"), device.path(), &[]);
    crate::common::bootsource::expect_success(&output, "bzip2 raw to a device");
    let expected = fs::read(&raw).unwrap();
    assert!(
        device.read_at(0, expected.len()) == expected,
        "the device does not hold the disk"
    );
    assert_eq!(gets(&nginx, "disk.raw.bz2"), 1);
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The daemon: a `dir` backend takes the disk in one pass; a block pool, which picks
/// a device by size, has the file read once to measure it and still imports it.
#[test]
fn the_daemon_grows_a_file_volume_and_measures_for_a_block_pool() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, 4 * MIB, 45);
    let bytes = tools::compress("gzip", &raw);
    let nginx = Nginx::start();
    nginx.put("file.raw.gz", &bytes);
    nginx.put("pool.raw.gz", &bytes);
    let device = LoopDevice::attach(8 * MIB);
    device.fill(0xff);

    let mut node = Node::new();
    node.config.source("file", &nginx.url("file.raw.gz"));
    node.config
        .source("pool", &nginx.url("pool.raw.gz"))
        .storage = Some("pool".into());
    node.config.extra = format!(
        "\n[storage.pool]\nkind = \"block\"\ndevices = [\"{}\"]\n",
        device.path().display()
    );
    let daemon = node.start();
    let digest = sha256(&bytes);
    daemon.wait_for_current("file", &digest);
    let pool = daemon.wait_for_current("pool", &digest);

    let file = node.current_link("file");
    assert!(
        disk::qemu_img_compare(&raw, &file),
        "the file volume differs"
    );
    assert_eq!(fs::metadata(&file).unwrap().len(), 4 * MIB);
    let expected = fs::read(&raw).unwrap();
    assert!(device.read_at(0, expected.len()) == expected);
    assert_eq!(pool["current"]["path"], device.path().to_str().unwrap());
    // The import's reads; a poll may add a HEAD, never a GET.
    assert_eq!(
        gets(&nginx, "file.raw.gz"),
        1,
        "the dir volume took one pass"
    );
    assert_eq!(gets(&nginx, "pool.raw.gz"), 2, "the pool measured first");
    assert!(node.staging_leftovers().is_empty());
}
