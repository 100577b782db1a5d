//! Imports that never finish, with the real binary: one whose layer sits on a hung
//! mount (a read that never returns, as on a dead NFS server) does not keep the daemon
//! from stopping: SIGTERM ends it once `stop_timeout` has passed, with a log line; one
//! whose registry sends too slowly to ever finish is cancelled at `import_timeout`,
//! recorded as a failure with a clear error, and frees the import slot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::bootsource::layout;
use crate::common::daemon::{Daemon, Node, TestDisk};
use crate::common::hung::HungFile;
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;
/// The grace the tests configure (`stop_timeout`), and how long after it the daemon
/// may take to be gone (a loaded 2-core machine).
const GRACE: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(10);

fn importing(daemon: &Daemon, digest: &str) -> bool {
    daemon.source_status("fedora")["importing"]["digest"] == digest
}

#[test]
fn sigterm_ends_the_daemon_after_the_grace_when_a_layer_read_never_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk::new(dir.path(), "v1", 4 * MIB, 601);
    let layout_dir = dir.path().join("layout");
    let reference = layout(&layout_dir, "latest", &disk.image);
    let layer_digest = disk.image.layers[0].digest();
    let blob: PathBuf = layout_dir
        .join("blobs/sha256")
        .join(layer_digest.strip_prefix("sha256:").unwrap());
    let _hung = HungFile::over(&blob);

    let mut node = Node::new();
    node.config.set("stop_timeout", "\"2s\"");
    node.config.source("fedora", &reference);
    let daemon = node.start();
    daemon.wait_for("the import to start", || {
        importing(&daemon, &disk.digest).then_some(())
    });

    let asked = Instant::now();
    daemon.signal(Signal::SIGTERM);
    let Some(status) = daemon.wait_exit(GRACE + SLACK) else {
        panic!(
            "still running {:?} after SIGTERM:\n{}",
            asked.elapsed(),
            daemon.log()
        );
    };
    let took = asked.elapsed();
    println!("exited with {status} {took:?} after SIGTERM");
    let log = daemon.log();
    assert!(
        log.contains("did not stop within stop_timeout"),
        "no line says why the daemon exits with an import running:\n{log}"
    );
    assert!(
        took >= GRACE,
        "exited before the grace ran out: {took:?}\n{log}"
    );
    let status_now = node.status();
    assert_eq!(status_now["daemon"]["running"], false, "{status_now}");
    // Whatever the stuck import staged is swept at the next start.
    let _daemon = node.start();
    assert_eq!(node.staging_leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn an_import_past_import_timeout_is_cancelled_and_recorded_as_failed() {
    let registry = Registry::start();
    let throttle = Throttle::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    // 8 MiB at 64 KiB/s would take two minutes; the deadline is 3 s.
    let disk = TestDisk::incompressible(dir.path(), "v1", 8 * MIB, 602);
    disk.push(&registry, "os/fedora:latest");
    throttle.set_rate(64 << 10);

    let mut node = Node::new();
    node.config.set("import_timeout", "\"3s\"");
    node.config.insecure(&throttle.host_port());
    node.config
        .source("fedora", &throttle.reference("os/fedora:latest"));
    let daemon = node.start();
    daemon.wait_for("the import to start", || {
        importing(&daemon, &disk.digest).then_some(())
    });
    let noticed = Instant::now();
    // The status file follows the loop's next turn: wait for it, not only the counter.
    let fedora = daemon.wait_for("the import to be stopped at its deadline", || {
        let fedora = daemon.source_status("fedora");
        let error = fedora["last_error"].as_str().unwrap_or_default();
        (error.contains("import_timeout") && fedora["importing"].is_null()).then_some(fedora)
    });
    println!(
        "stopped {:?} after the test saw it start: {fedora}",
        noticed.elapsed()
    );
    let failure = [("source", "fedora"), ("result", "failure")];
    let failed = daemon.metrics().value("bootsource_imports_total", &failure);
    assert!(failed >= 1.0, "not counted as a failure: {failed}");
    assert!(fedora["current"].is_null(), "{fedora}");
    assert!(
        throttle.forwarded() < disk.layer_size(),
        "the layer came through in full: the deadline proved nothing"
    );
    daemon.wait_for("the staging volume to be removed", || {
        node.staging_leftovers().is_empty().then_some(())
    });
}
