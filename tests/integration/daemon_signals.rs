//! The daemon under signals and failures, with the real binary and a real registry: an
//! invalid config on SIGHUP is refused and counted while the old one stays in force; a
//! registry that goes down makes polls fail (counted, `last_error`, retried without
//! spinning) and nothing is lost, and the daemon recovers when it is back; a poll the
//! registry stalls shows in `status` as running now; `kill -9` in
//! the middle of an import leaves the previous current version intact and the next
//! start removes the staging leftovers and completes the import; SIGTERM in the middle
//! of an import exits 0 within a bounded time with the staging volume removed; SIGINT
//! stops an idle daemon with status 0.
//!
//! Imports are caught mid-way by serving the image through a [`Throttle`]: on loopback a
//! 32 MiB layer would be imported before a test could look; at 2 MiB/s it takes 16 s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::daemon::{Daemon, Node, TestDisk, current_digest, version_digests};
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;
use nix::sys::signal::Signal;
use serde_json::Value;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
/// The large image, and the throttled rate: 16 s, far longer than a test needs to see
/// the import under way, even on a loaded machine.
const LARGE: u64 = 32 * MIB;
const SLOW: u64 = 2 * MIB;
/// SIGTERM must end the daemon within this (systemd's TimeoutStopSec is 30 s).
const STOP_BOUND: Duration = Duration::from_secs(30);

fn counter(daemon: &Daemon, name: &str, labels: &[(&str, &str)]) -> f64 {
    daemon.metrics().value(name, labels)
}

/// Waits for the `n`-th successful import of `fedora` and checks the `current` link
/// holds `disk`. Reads only `/metrics` and the link: `bootsource status` refuses to
/// run while the config file on disk is invalid.
fn wait_for_import(daemon: &Daemon, node: &Node, n: f64, disk: &TestDisk) {
    let success = [("source", "fedora"), ("result", "success")];
    daemon.wait_for(&format!("import number {n}"), || {
        (counter(daemon, "bootsource_imports_total", &success) >= n).then_some(())
    });
    assert!(disk.same_as(&node.current_link("fedora")));
}

#[test]
fn an_invalid_config_on_sighup_is_refused_and_the_old_one_stays_in_force() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let disks: Vec<TestDisk> = (1..=4)
        .map(|n| TestDisk::new(dir.path(), &format!("v{n}"), 2 * MIB, 100 + n))
        .collect();
    disks[0].push(&registry, "os/fedora:latest");

    // Polled every 2 s: with no SIGHUP accepted, only the config in force imports.
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .interval = Some("2s".into());
    let daemon = node.start();
    daemon.wait_for_current("fedora", &disks[0].digest);

    // 1. Not TOML at all. `bootsource poll` reads the config too, so signal directly.
    let valid = node.config.to_toml();
    std::fs::write(node.config_path(), format!("{valid}\n[[source]\nname = ")).unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("a refused reload", || {
        (daemon.reloads("failure") == 1.0).then_some(())
    });
    assert!(
        daemon.log().contains("configuration refused"),
        "{}",
        daemon.log()
    );
    disks[1].push(&registry, "os/fedora:latest");
    wait_for_import(&daemon, &node, 2.0, &disks[1]);

    // 2. Valid TOML, but an unknown key in a config that would also turn auto-update
    //    off: if any of it were applied, the next push would not be imported.
    node.config.source_mut("fedora").auto_update = false;
    node.config.extra = "imports_to_kepe = 2\n".into();
    node.write_config();
    let mut poll = common::bootsource::command(["poll", "--config"]);
    poll.arg(node.config_path());
    let refused = common::bootsource::expect_error(
        &common::tools::run_any_status(&mut poll),
        &["imports_to_kepe"],
    );
    println!("bootsource poll on the invalid config:\n{refused}");
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("a second refused reload", || {
        (daemon.reloads("failure") == 2.0).then_some(())
    });
    let log = daemon.log();
    let (at, _) = log
        .match_indices("configuration refused")
        .nth(1)
        .unwrap_or_else(|| panic!("no second refusal in the log:\n{log}"));
    let refusal = &log[at..];
    let line = 1 + node
        .config
        .to_toml()
        .lines()
        .position(|l| l.starts_with("imports_to_kepe"))
        .unwrap();
    assert!(
        refusal.contains("imports_to_kepe") && refusal.contains(&format!("line {line}")),
        "the refusal does not name the key and its line:\n{refusal}"
    );
    disks[2].push(&registry, "os/fedora:latest");
    wait_for_import(&daemon, &node, 3.0, &disks[2]);
    assert_eq!(daemon.reloads("success"), 0.0);

    // A valid config again: accepted and counted.
    node.config.source_mut("fedora").auto_update = true;
    node.config.extra.clear();
    disks[3].push(&registry, "os/fedora:latest");
    node.reload();
    daemon.wait_for_current("fedora", &disks[3].digest);
    assert_eq!(daemon.reloads("success"), 1.0);
    assert_eq!(daemon.reloads("failure"), 2.0);
    assert!(daemon.try_wait().is_none());
}

#[test]
fn polls_fail_while_the_registry_is_down_and_recover_when_it_is_back() {
    let mut registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 201);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 202);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .interval = Some("2s".into());
    let daemon = node.start();
    let before = daemon.wait_for_current("fedora", &v1.digest);
    let failed = [("source", "fedora"), ("result", "failed")];
    assert_eq!(counter(&daemon, "bootsource_polls_total", &failed), 0.0);

    registry.stop();
    let down = Instant::now();
    let fedora = daemon.wait_for("failed polls while the registry is down", || {
        let fedora = daemon.source_status("fedora");
        let failures = counter(&daemon, "bootsource_polls_total", &failed);
        // Between polls: while one is in flight, next_poll is null.
        let between = fedora["last_poll_result"] == "failed" && fedora["next_poll"].is_string();
        (failures >= 3.0 && fedora["last_error"].is_string() && between).then_some(fedora)
    });
    let last_success = daemon.metrics().get(
        "bootsource_last_successful_poll_timestamp_seconds",
        &[("source", "fedora")],
    );
    println!("last_error: {}", fedora["last_error"]);
    assert_eq!(fedora["last_poll_result"], "failed", "{fedora}");
    // Read at any moment, status tells when the retry comes or that it runs now.
    assert!(
        fedora["next_poll"].is_string(),
        "a failed poll is retried: {fedora}"
    );
    assert!(
        fedora["activity"] == "waiting" || fedora["activity"] == "polling",
        "{fedora}"
    );
    // Retried with a delay, not in a loop: the 2 s interval caps the backoff, so a few
    // a second at most (a retry loop would fail hundreds of times a second).
    let failures = counter(&daemon, "bootsource_polls_total", &failed);
    let seconds = down.elapsed().as_secs_f64();
    assert!(
        failures <= 5.0 * seconds.max(1.0),
        "{failures} failed polls in {seconds:.1} s"
    );
    // Nothing lost: same current version, same file, same content.
    assert_eq!(fedora["current"], before["current"]);
    assert_eq!(version_digests(&fedora), vec![v1.digest.clone()]);
    assert!(v1.same_as(&node.current_link("fedora")));
    assert!(node.staging_leftovers().is_empty());

    registry.restart();
    daemon.wait_for("a successful poll after the restart", || {
        let fedora = daemon.source_status("fedora");
        let now = daemon.metrics().get(
            "bootsource_last_successful_poll_timestamp_seconds",
            &[("source", "fedora")],
        );
        (fedora["last_error"].is_null() && now > last_success).then_some(())
    });
    assert_eq!(
        daemon.source_status("fedora")["last_poll_result"],
        "up_to_date"
    );
    v2.push(&registry, "os/fedora:latest");
    daemon.wait_for_current("fedora", &v2.digest);
    assert!(v2.same_as(&node.current_link("fedora")));
}

#[test]
fn a_poll_stalled_by_the_registry_shows_in_status_as_running_now() {
    let registry = Registry::start();
    let throttle = Throttle::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 2 * MIB, 211);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&throttle.host_port());
    node.config
        .source("fedora", &throttle.reference("os/fedora:latest"))
        .interval = Some("2s".into());
    let daemon = node.start();
    daemon.wait_for_current("fedora", &v1.digest);

    // The next poll's answer never comes: the poll stays in flight for as long as we look.
    throttle.hold();
    let fedora = daemon.wait_for("status to show the stalled poll", || {
        let fedora = daemon.source_status("fedora");
        (fedora["activity"] == "polling").then_some(fedora)
    });
    let started: chrono::DateTime<chrono::Utc> = fedora["next_poll"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a running poll has no start time: {fedora}"));
    assert!(started <= chrono::Utc::now(), "{fedora}");
    assert_eq!(fedora["importing"], Value::Null, "{fedora}");
    let text = node.status_text();
    assert!(text.contains("next poll: running now"), "{text}");

    throttle.unlimited();
    daemon.wait_for("the poll to end and the next one to be scheduled", || {
        let fedora = daemon.source_status("fedora");
        let next: Option<chrono::DateTime<chrono::Utc>> =
            fedora["next_poll"].as_str().and_then(|t| t.parse().ok());
        (fedora["activity"] == "waiting" && next > Some(started)).then_some(())
    });
}

/// A node whose source `fedora` is served through a throttle: v1 (small) is current,
/// and a 32 MiB v2 is on the tag, its import started slowly and under way (status
/// shows it with bytes received, its staging volume exists).
struct MidImport {
    // Dropped in this order: the daemon before the node's directory.
    daemon: Daemon,
    node: Node,
    throttle: Throttle,
    _registry: Registry,
    _dir: TempDir,
    v1: TestDisk,
    v2: TestDisk,
    v1_path: PathBuf,
    staging: Vec<PathBuf>,
}

impl MidImport {
    fn start(seed: u64) -> MidImport {
        let registry = Registry::start();
        let throttle = Throttle::start(&registry);
        let dir = tempfile::tempdir().unwrap();
        let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, seed);
        let v2 = TestDisk::incompressible(dir.path(), "v2", LARGE, seed + 1);
        v1.push(&registry, "os/fedora:latest");

        let mut node = Node::new();
        node.config.insecure(&throttle.host_port());
        node.config
            .source("fedora", &throttle.reference("os/fedora:latest"));
        let daemon = node.start();
        let fedora = daemon.wait_for_current("fedora", &v1.digest);
        let v1_path = PathBuf::from(fedora["current"]["path"].as_str().unwrap());

        v2.push(&registry, "os/fedora:latest");
        throttle.set_rate(SLOW);
        node.poll();
        let importing = daemon.wait_for("the import of v2 to be under way", || {
            let importing = daemon.source_status("fedora")["importing"].clone();
            let started = importing["digest"] == v2.digest.as_str()
                && importing["bytes_done"].as_u64().is_some_and(|n| n > 0);
            started.then_some(importing)
        });
        println!("importing: {importing}");
        let staging = daemon.wait_for("the staging volume", || {
            Some(node.staging_leftovers()).filter(|s| !s.is_empty())
        });
        let progress = daemon
            .metrics()
            .value("bootsource_import_progress_bytes", &[("source", "fedora")]);
        assert!(progress > 0.0, "import_progress_bytes is {progress}");
        MidImport {
            daemon,
            node,
            throttle,
            _registry: registry,
            _dir: dir,
            v1,
            v2,
            v1_path,
            staging,
        }
    }

    /// The previous current version is still current and unchanged.
    fn assert_v1_intact(&self, status: &Value) {
        assert_eq!(
            current_digest(status),
            Some(self.v1.digest.clone()),
            "{status}"
        );
        assert_eq!(version_digests(status), vec![self.v1.digest.clone()]);
        assert_eq!(
            Path::new(status["current"]["path"].as_str().unwrap()),
            self.v1_path
        );
        assert!(self.v1.same_as(&self.v1_path));
        assert!(self.v1.same_as(&self.node.current_link("fedora")));
    }
}

#[test]
fn kill_9_mid_import_leaves_the_current_version_and_the_restart_recovers() {
    let mut t = MidImport::start(301);
    t.daemon.kill9();
    assert_eq!(
        t.node.staging_leftovers(),
        t.staging,
        "the crash should leave the staging volume behind (else this test proves nothing)"
    );
    assert_eq!(
        t.node.catalog_staging().len(),
        1,
        "the crash left no staging record"
    );
    let status = common::daemon::source_of(&t.node.status(), "fedora").clone();
    t.assert_v1_intact(&status);

    // Restart with the registry answers held, so nothing new is staged before we look:
    // the leftovers are removed when the store opens, before /healthz answers.
    t.throttle.hold();
    t.daemon = t.node.start();
    assert_eq!(t.node.staging_leftovers(), Vec::<PathBuf>::new());
    assert_eq!(t.node.catalog_staging(), Vec::<String>::new());
    t.assert_v1_intact(&t.daemon.source_status("fedora"));

    // Then the import completes.
    t.throttle.unlimited();
    let fedora = t.daemon.wait_for_current("fedora", &t.v2.digest);
    assert_eq!(
        version_digests(&fedora),
        [t.v1.digest.clone(), t.v2.digest.clone()]
    );
    assert!(t.v2.same_as(&t.node.current_link("fedora")));
    assert!(t.v1.same_as(&t.v1_path));
    assert!(t.node.staging_leftovers().is_empty());
}

#[test]
fn sigterm_mid_import_exits_0_promptly_and_removes_the_staging_volume() {
    let t = MidImport::start(401);
    let asked = Instant::now();
    t.daemon.signal(Signal::SIGTERM);
    let Some(status) = t.daemon.wait_exit(STOP_BOUND) else {
        panic!(
            "the daemon did not exit within {STOP_BOUND:?} of SIGTERM:\n{}",
            t.daemon.log()
        );
    };
    println!("exited with {status} {:?} after SIGTERM", asked.elapsed());
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        t.daemon.log()
    );
    assert_eq!(t.node.staging_leftovers(), Vec::<PathBuf>::new());
    let log = t.daemon.log();
    assert!(log.contains("import cancelled"), "{log}");
    assert_eq!(t.node.catalog_staging(), Vec::<String>::new(), "{log}");
    assert!(
        !t.node.config.state_dir.join("daemon.pid").exists(),
        "pid file left behind"
    );
    let status = t.node.status();
    assert_eq!(status["daemon"]["running"], false);
    let fedora = common::daemon::source_of(&status, "fedora");
    assert_eq!(fedora["importing"], Value::Null, "{fedora}");
    t.assert_v1_intact(fedora);
}

#[test]
fn sigint_stops_an_idle_daemon_with_status_0() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let daemon = node.start();
    daemon.signal(Signal::SIGINT);
    let status = daemon
        .wait_exit(STOP_BOUND)
        .unwrap_or_else(|| panic!("still running after SIGINT:\n{}", daemon.log()));
    assert!(status.success(), "exit status {status}:\n{}", daemon.log());
    assert!(daemon.log().contains("stopped"), "{}", daemon.log());
    assert!(!node.config.state_dir.join("daemon.pid").exists());
}

#[test]
fn sigterm_while_the_registry_stalls_mid_import_still_cleans_up() {
    let t = MidImport::start(451);
    // The registry stops sending in the middle of the layer: the import is blocked in
    // a read (the importer's read timeout is 60 s), not between chunks.
    t.throttle.hold();
    let asked = Instant::now();
    t.daemon.signal(Signal::SIGTERM);
    let Some(status) = t.daemon.wait_exit(STOP_BOUND) else {
        panic!(
            "the daemon did not exit within {STOP_BOUND:?} of SIGTERM:\n{}",
            t.daemon.log()
        );
    };
    let took = asked.elapsed();
    println!("exited with {status} {took:?} after SIGTERM");
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        t.daemon.log()
    );
    let log = t.daemon.log();
    assert!(
        !log.contains("did not stop within"),
        "the import was not cancelled ({took:?} after SIGTERM):\n{log}"
    );
    assert!(log.contains("import cancelled"), "{log}");
    assert_eq!(t.node.staging_leftovers(), Vec::<PathBuf>::new());
    assert_eq!(t.node.catalog_staging(), Vec::<String>::new(), "{log}");
    let status = t.node.status();
    t.assert_v1_intact(common::daemon::source_of(&status, "fedora"));
}

/// A catalog that cannot be read is an error, never "no current version": taken for
/// that, the daemon would import every source again. A reload that cannot read it is
/// refused, the old state stays in force, and no import is attempted.
#[test]
fn an_unreadable_catalog_refuses_the_reload_instead_of_importing_again() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 2 * MIB, 301);
    v1.push(&registry, "os/fedora:latest");
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .interval = Some("1s".into());
    let daemon = node.start();
    daemon.wait_for_current("fedora", &v1.digest);

    let catalog = node.config.state_dir.join("catalog.json");
    let good = std::fs::read(&catalog).unwrap();
    std::fs::write(&catalog, b"{ not json").unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("the reload refused", || {
        (daemon.reloads("failure") == 1.0).then_some(())
    });
    // Polls go on with the version in force: up to date, nothing imported.
    let up_to_date = [("source", "fedora"), ("result", "up_to_date")];
    let before = counter(&daemon, "bootsource_polls_total", &up_to_date);
    daemon.wait_for("a poll after the refused reload", || {
        (counter(&daemon, "bootsource_polls_total", &up_to_date) > before).then_some(())
    });
    let failed = [("source", "fedora"), ("result", "failure")];
    assert_eq!(counter(&daemon, "bootsource_imports_total", &failed), 0.0);

    std::fs::write(&catalog, good).unwrap();
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("the reload accepted", || {
        (daemon.reloads("success") == 1.0).then_some(())
    });
    assert!(v1.same_as(&node.current_link("fedora")));
}
