//! The daemon against a registry that misbehaves: the node reaches its registry only
//! through a [`FaultProxy`]. A v1 is current first; then v2 is pushed and its import
//! (or the polls that find it) meets faults. Every fault ends in a resume (the import
//! goes on where the bytes stopped), a backoff (the poller tries again later) or a
//! clean failure (counted, `last_error`, the staging volume removed) — and v1, the
//! current version until v2 is published, is never touched.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::bootsource as bs;
use crate::common::daemon::{Daemon, Node, TestDisk, current_digest, source_of};
use crate::common::faults::{Fault, FaultProxy, HOSTILE_BODY, When, has_control_sequences};
use crate::common::registry::Registry;
use crate::common::tools;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
/// Where the plans cut: inside the 2 MiB layers, more than one chunk in.
const CUT: u64 = 256 << 10;
/// The source's poll interval, which also caps its backoff after a failure.
const INTERVAL: &str = "2s";

/// A node whose only way to its registry is the fault proxy; v1 current, v2 ready.
struct Setup {
    registry: Registry,
    proxy: FaultProxy,
    _dir: TempDir,
    v1: TestDisk,
    v2: TestDisk,
    node: Node,
    daemon: Daemon,
}

impl Setup {
    fn new() -> Setup {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let v1 = TestDisk::incompressible(dir.path(), "v1", 2 * MIB, 41);
        let v2 = TestDisk::incompressible(dir.path(), "v2", 2 * MIB, 42);
        v1.push(&registry, "os/fedora:latest");
        let proxy = FaultProxy::start(&registry);
        let mut node = Node::new();
        node.config.insecure(&proxy.host_port());
        node.config
            .source("fedora", &proxy.reference("os/fedora:latest"))
            .interval = Some(INTERVAL.into());
        let daemon = node.start();
        daemon.wait_for_current("fedora", &v1.digest);
        Setup {
            registry,
            proxy,
            _dir: dir,
            v1,
            v2,
            node,
            daemon,
        }
    }

    /// `When` for GETs of v2's layer.
    fn v2_layer(&self) -> When {
        When::get(self.v2.image.layers[0].digest())
    }

    /// Where v1 is kept (its version's path), from `status --json`.
    fn v1_path(&self) -> PathBuf {
        let status = self.daemon.status();
        let versions = source_of(&status, "fedora")["versions"].clone();
        let v1 = versions
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["digest"] == self.v1.digest.as_str())
            .unwrap_or_else(|| panic!("v1 is not kept: {versions}"));
        PathBuf::from(v1["path"].as_str().unwrap())
    }

    fn counter(&self, name: &str, result: &str) -> f64 {
        let labels = [("source", "fedora"), ("result", result)];
        self.daemon.metrics().value(name, &labels)
    }

    /// Waits for a moment with no staging volume on disk and none in the catalog.
    /// Retries may be staging at any moment, but a volume a failed import left behind
    /// would stay, and this would time out.
    fn wait_no_staging(&self) {
        self.daemon.wait_for("no staging volume", || {
            (self.node.staging_leftovers().is_empty() && self.node.catalog_staging().is_empty())
                .then_some(())
        });
    }

    /// v1 is still the current version, byte for byte, and nothing is being staged.
    fn assert_v1_current_and_intact(&self) {
        let status = self.daemon.status();
        assert_eq!(
            current_digest(source_of(&status, "fedora")),
            Some(self.v1.digest.clone())
        );
        assert!(self.v1.same_as(&self.node.current_link("fedora")));
    }
}

#[test]
fn faults_during_an_update_are_resumed_and_the_new_version_published() {
    let s = Setup::new();
    // A script, one fault per request for v2's layer, in this order.
    s.proxy.add(s.v2_layer(), Fault::CutAfter(CUT));
    s.proxy.add(s.v2_layer(), Fault::Status(502));
    s.proxy.add(s.v2_layer(), Fault::CutAfter(CUT));
    s.proxy.add(s.v2_layer(), Fault::LyingLength(-4096));
    let pause = Duration::from_secs(1);
    s.proxy.add(s.v2_layer(), Fault::Stall { after: 1, pause });
    let v1_path = s.v1_path();

    s.v2.push(&s.registry, "os/fedora:latest");
    s.node.poll();
    s.daemon.wait_for_current("fedora", &s.v2.digest);
    println!("faults injected: {:?}", s.proxy.injected_by_kind());
    assert_eq!(s.proxy.injected(), 5);
    assert!(s.v2.same_as(&s.node.current_link("fedora")));
    assert!(s.v1.same_as(&v1_path), "v1 was changed by the import of v2");
    assert_eq!(s.counter("bootsource_imports_total", "failure"), 0.0);
    s.wait_no_staging();
}

#[test]
fn a_failed_import_is_cleaned_up_backed_off_and_retried() {
    let s = Setup::new();
    // Every try at v2: cut, then other bytes on the resumed range (a digest mismatch).
    s.proxy.add(
        s.v2_layer().times(u64::MAX),
        Fault::AlterResumedRange(64 << 10),
    );
    s.proxy
        .add(s.v2_layer().times(u64::MAX), Fault::CutAfter(CUT));

    s.v2.push(&s.registry, "os/fedora:latest");
    s.node.poll();
    s.daemon.wait_for("two failed imports of v2", || {
        (s.counter("bootsource_imports_total", "failure") >= 2.0).then_some(())
    });
    s.assert_v1_current_and_intact();
    let fedora = s.daemon.source_status("fedora");
    let error = fedora["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("digest mismatch"), "last_error: {fedora}");
    s.wait_no_staging();

    // The registry heals: the next try (after a backoff) publishes v2.
    let injected = s.proxy.injected();
    s.proxy.calm();
    s.daemon.wait_for_current("fedora", &s.v2.digest);
    println!("faults injected: {injected}");
    assert!(injected >= 4, "{injected}");
    assert!(s.v2.same_as(&s.node.current_link("fedora")));
    s.wait_no_staging();
}

#[test]
fn rate_limited_and_failing_polls_back_off_and_recover() {
    let s = Setup::new();
    s.proxy.add(
        When::any("/manifests/latest").times(u64::MAX),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    s.v2.push(&s.registry, "os/fedora:latest");
    s.node.poll();
    s.daemon.wait_for("two rate-limited polls", || {
        (s.counter("bootsource_polls_total", "failed") >= 2.0).then_some(())
    });
    let fedora = s.daemon.source_status("fedora");
    assert!(
        fedora["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("429 Too Many Requests")),
        "last_error: {fedora}"
    );
    s.assert_v1_current_and_intact();

    // Then server errors instead, then nothing: polls fail on, then find v2.
    s.proxy.calm();
    s.proxy
        .add(When::any("/manifests/").times(4), Fault::Status(503));
    s.daemon.wait_for_current("fedora", &s.v2.digest);
    let failed = s.counter("bootsource_polls_total", "failed");
    println!(
        "failed polls: {failed}, faults injected: {:?}",
        s.proxy.injected_by_kind()
    );
    assert!(failed >= 3.0, "{failed}");
    assert!(s.v2.same_as(&s.node.current_link("fedora")));
    s.wait_no_staging();
}

/// A hostile error body (terminal control sequences, a forged line) ends up in the
/// daemon's log, `last_error` and `bootsource status`: escaped in all three.
#[test]
fn a_hostile_error_body_is_escaped_in_the_log_and_the_status() {
    let s = Setup::new();
    s.proxy.add(
        When::get("/manifests/").times(u64::MAX),
        Fault::Answer(500, HOSTILE_BODY.into()),
    );
    s.v2.push(&s.registry, "os/fedora:latest");
    s.node.poll();
    let fedora = s
        .daemon
        .wait_for("a poll failed with the hostile answer", || {
            let fedora = s.daemon.source_status("fedora");
            let error = fedora["last_error"].as_str().unwrap_or_default();
            error.contains("owned").then_some(fedora)
        });
    println!("last_error: {}", fedora["last_error"]);
    let mut command = bs::command(["status", "--config"]);
    command.arg(s.node.config_path());
    let text = bs::expect_success(&tools::run_any_status(&mut command), "status");
    assert!(text.contains("owned"), "{text}");
    assert!(!has_control_sequences(&text), "status: {text:?}");
    assert!(!text.lines().any(|l| l.starts_with("hint: run")), "{text}");
    let log = fs::read_to_string(s.daemon.log_path()).unwrap();
    assert!(log.contains("owned"), "{log}");
    assert!(!has_control_sequences(&log), "daemon log: {log:?}");
    s.assert_v1_current_and_intact();
}
