//! Where an import's time went: the `--json` report's `stages` names the stage that
//! set the pace, and the summary line says it. A [`Throttle`] makes the link the
//! limit beyond doubt (4 MiB/s, against decoding and writing at hundreds), so the
//! report must blame the download, whatever else the machine is doing. A
//! [`SlowSyncDir`] makes the final fsync slow beyond doubt, so the report must count
//! it as the commit, inside its seconds. A gzip layer of literals makes inflating it
//! most of the decoding thread's work, which the report must count as `decompress`.

use std::time::Instant;

use crate::common::bootsource::{PLAIN_HTTP, expect_success, import, import_json};
use crate::common::daemon::TestDisk;
use crate::common::fuse::SlowSyncDir;
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;

fn seconds(value: &serde_json::Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number of seconds: {value}"))
}

#[test]
fn a_slow_link_is_reported_as_the_stage_that_limited_the_import() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // 8 MiB on the wire at 4 MiB/s: about 2 s of downloading.
    let disk = TestDisk::incompressible(dir.path(), "slow", 8 * MIB, 23);
    disk.push(&registry, "os/slow:1");
    let throttle = Throttle::start(&registry);
    throttle.set_rate(4 * MIB);

    let target = dir.path().join("slow.img");
    let report = import_json(&throttle.reference("os/slow:1"), &target, &[PLAIN_HTTP]);
    assert!(disk.same_as(&target));
    let stages = &report.json["stages"];
    println!("{stages}");
    assert_eq!(stages["limited_by"], "download", "{stages}");
    let wall = seconds(&report.json["seconds"]);
    let download = seconds(&stages["download"]);
    assert!(
        download > 1.0 && download <= wall,
        "download {download} s of {wall} s"
    );
    let starved = seconds(&stages["decode_waiting_for_input"]);
    assert!(starved > 1.0, "the decoder waited {starved} s for input");
    for stage in ["verify", "decode", "write", "decode_waiting_for_writers"] {
        let busy = seconds(&stages[stage]);
        assert!(busy >= 0.0 && busy < download, "{stage}: {busy} s");
    }

    // The summary line says it too.
    let again = dir.path().join("again.img");
    throttle.unlimited();
    let stdout = expect_success(
        &import(&throttle.reference("os/slow:1"), &again, &[PLAIN_HTTP]),
        "import",
    );
    assert!(stdout.contains("limited by "), "{stdout}");
}

#[test]
fn inflating_the_layer_is_reported_as_decompress_apart_from_the_decoding() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // Inflating 32 MiB of Huffman-coded literals takes a tenth of a second or more;
    // walking the tar and cutting a raw disk into 32 chunks, even in a debug build,
    // a few milliseconds.
    let letters = TestDisk::letters(dir.path(), "letters", 32 * MIB, 37);
    letters.push(&registry, "os/letters:1");
    let target = dir.path().join("letters.img");
    let report = import_json(&registry.reference("os/letters:1"), &target, &[PLAIN_HTTP]);
    assert!(letters.same_as(&target));
    let stages = &report.json["stages"];
    println!("{stages}");
    let (decompress, decode) = (seconds(&stages["decompress"]), seconds(&stages["decode"]));
    assert!(
        decompress > 0.0 && decompress > decode,
        "decompress {decompress} s, decode {decode} s"
    );

    // An uncompressed layer has nothing to decompress.
    let plain = TestDisk::incompressible(dir.path(), "plain", 4 * MIB, 31);
    plain.push(&registry, "os/plain:1");
    let target = dir.path().join("plain.img");
    let report = import_json(&registry.reference("os/plain:1"), &target, &[PLAIN_HTTP]);
    assert!(plain.same_as(&target));
    let stages = &report.json["stages"];
    assert_eq!(seconds(&stages["decompress"]), 0.0, "{stages}");
}

#[test]
fn a_slow_final_fsync_is_counted_as_the_commit_within_the_seconds() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk::incompressible(dir.path(), "commit", 4 * MIB, 29);
    disk.push(&registry, "os/commit:1");
    // The file's fsync and then its directory's each sleep 1 s; the disk is below one
    // write-behind window, so the pipeline itself never syncs.
    let slow = SlowSyncDir::new(1.0);
    let target = slow.path().join("commit.img");

    let started = Instant::now();
    let report = import_json(&registry.reference("os/commit:1"), &target, &[PLAIN_HTTP]);
    let outside = started.elapsed().as_secs_f64();
    assert!(disk.same_as(&target));
    let stages = &report.json["stages"];
    println!("{stages}");
    let commit = seconds(&stages["commit"]);
    let wall = seconds(&report.json["seconds"]);
    assert!(commit >= 1.9, "the commit took {commit} s, its fsyncs 2 s");
    assert!(
        commit <= wall && wall <= outside,
        "commit {commit} s, report {wall} s, measured from outside {outside} s"
    );
    assert_ne!(stages["limited_by"], "commit", "{stages}");
}
