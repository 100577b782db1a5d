//! Where an import's time went: the `--json` report's `stages` names the stage that
//! set the pace, and the summary line says it. A [`Throttle`] makes the link the
//! limit beyond doubt (4 MiB/s, against decoding and writing at hundreds), so the
//! report must blame the download, whatever else the machine is doing.

use crate::common::bootsource::{PLAIN_HTTP, expect_success, import, import_json};
use crate::common::daemon::TestDisk;
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
