//! A download that breaks mid-layer resumes where it broke: the importer asks for the
//! rest with a `Range` request and hashes across the break, so the disk is complete and
//! verified without downloading the layer again.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::bootsource::import_command;
use crate::common::daemon::TestDisk;
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;

#[test]
fn a_dropped_connection_resumes_where_it_broke() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk::incompressible(dir.path(), "big", 16 * MIB, 7);
    disk.push(&registry, "os/big:1");
    let layer = disk.layer_size();
    let throttle = Throttle::start(&registry);
    throttle.set_rate(4 * MIB);

    let target = dir.path().join("big.img");
    let child = import_command(
        &throttle.reference("os/big:1"),
        &target,
        &["--tls-verify=false"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("bootsource");
    let deadline = Instant::now() + Duration::from_secs(30);
    while throttle.forwarded() < layer / 3 {
        assert!(Instant::now() < deadline, "the download never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before_cut = throttle.forwarded();
    throttle.cut();
    throttle.unlimited();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "import failed after the cut:\n{stderr}"
    );
    assert!(
        stderr.contains("resuming"),
        "no resume was logged:\n{stderr}"
    );
    assert!(disk.same_as(&target), "the resumed import is not the disk");
    // Resumed, not restarted: what came after the cut is about the rest of the layer.
    let after_cut = throttle.forwarded() - before_cut;
    assert!(
        after_cut < layer - before_cut / 2,
        "{after_cut} bytes after the cut at {before_cut} of {layer}: downloaded again from the start"
    );
}
