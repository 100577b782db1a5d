//! The daemon keeps a boot source up to date: the real `bootsource daemon` against a real
//! registry. A first push is imported at start-up; a new push to the same tag is
//! imported on `bootsource poll` (SIGHUP) and becomes current, older versions kept up to
//! `imports_to_keep`, the least recently used collected, never the current one (also
//! with `imports_to_keep = 1`);
//! `auto_update = false` keeps the current version until it is switched back on;
//! `bootsource status` reads the catalog and the last state with the daemon stopped.

use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::common;
use crate::common::daemon::{Node, TestDisk, current_digest, source_of, version_digests};
use crate::common::registry::Registry;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// `current.path` of a status entry.
fn current_path(source: &Value) -> &Path {
    Path::new(source["current"]["path"].as_str().expect("current.path"))
}

#[test]
fn a_new_push_becomes_current_on_poll_and_old_versions_are_collected() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 1);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 2);
    let v3 = TestDisk::new(dir.path(), "v3", 6 * MIB, 3);
    let v4 = TestDisk::new(dir.path(), "v4", 2 * MIB, 4);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .imports_to_keep = Some(2);
    let daemon = node.start();

    // Imported at start-up: the current version and the stable `current` link hold v1.
    let fedora = daemon.wait_for_current("fedora", &v1.digest);
    assert_eq!(fedora["auto_update"], true);
    assert_eq!(version_digests(&fedora), vec![v1.digest.clone()]);
    let v1_path = current_path(&fedora).to_owned();
    assert!(v1.same_as(&v1_path), "{} is not v1", v1_path.display());
    assert!(v1.same_as(&node.current_link("fedora")));
    assert_eq!(fedora["current"]["volume"], fedora["versions"][0]["volume"]);
    assert!(
        fedora["current"]["volume"]
            .as_str()
            .unwrap()
            .starts_with("fedora-"),
        "{fedora}"
    );

    // v2 on the same tag, and `bootsource poll`: current within seconds, v1 kept.
    v2.push(&registry, "os/fedora:latest");
    let asked = Instant::now();
    node.poll();
    let fedora = daemon.wait_for_current("fedora", &v2.digest);
    println!("v2 current {:?} after `bootsource poll`", asked.elapsed());
    assert_eq!(
        version_digests(&fedora),
        [v1.digest.clone(), v2.digest.clone()]
    );
    assert!(v2.same_as(current_path(&fedora)));
    assert!(v2.same_as(&node.current_link("fedora")));
    assert!(v1.same_as(&v1_path), "v1 was changed after v2 was imported");

    // v3 with imports_to_keep = 2: v1, the least recently used, goes; never the current.
    v3.push(&registry, "os/fedora:latest");
    node.poll();
    let fedora = daemon.wait_for_current("fedora", &v3.digest);
    let versions = daemon.wait_for("v1 to be garbage-collected", || {
        let versions = version_digests(&daemon.source_status("fedora"));
        (versions.len() == 2).then_some(versions)
    });
    assert_eq!(versions, [v2.digest.clone(), v3.digest.clone()]);
    assert!(!v1_path.exists(), "{} was not removed", v1_path.display());
    assert!(v3.same_as(current_path(&fedora)));
    assert!(v3.same_as(&node.current_link("fedora")));
    assert!(
        node.staging_leftovers().is_empty(),
        "{:?}",
        node.staging_leftovers()
    );

    // The same digest again (nothing new on the tag): no new version, nothing removed.
    node.poll();
    daemon.wait_for("a poll that finds the tag up to date", || {
        let m = daemon.metrics();
        (m.value(
            "bootsource_polls_total",
            &[("source", "fedora"), ("result", "up_to_date")],
        ) >= 1.0)
            .then_some(())
    });
    let fedora = daemon.source_status("fedora");
    assert_eq!(current_digest(&fedora), Some(v3.digest.clone()));
    assert_eq!(version_digests(&fedora).len(), 2);

    // imports_to_keep = 1: after the next import only the new current version is left.
    node.config.source_mut("fedora").imports_to_keep = Some(1);
    v4.push(&registry, "os/fedora:latest");
    node.reload();
    daemon.wait_for_current("fedora", &v4.digest);
    let fedora = daemon.wait_for("every version but the current one to be removed", || {
        let fedora = daemon.source_status("fedora");
        (version_digests(&fedora).len() == 1).then_some(fedora)
    });
    assert_eq!(version_digests(&fedora), vec![v4.digest.clone()]);
    assert!(v4.same_as(&node.current_link("fedora")));
}

#[test]
fn auto_update_off_keeps_the_current_version_until_switched_back_on() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 11);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 12);
    let w1 = TestDisk::new(dir.path(), "w1", 2 * MIB, 21);
    let w2 = TestDisk::new(dir.path(), "w2", 2 * MIB, 22);
    v1.push(&registry, "os/fedora:latest");
    w1.push(&registry, "os/witness:latest");

    // A second source that stays on auto-update: once it has its new version, the
    // daemon has certainly polled after the SIGHUP, so a fedora still on v1 is a
    // decision, not a slow daemon.
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"));
    node.config
        .source("witness", &registry.reference("os/witness:latest"));
    let daemon = node.start();
    daemon.wait_for_current("fedora", &v1.digest);
    daemon.wait_for_current("witness", &w1.digest);

    node.config.source_mut("fedora").auto_update = false;
    node.reload();
    daemon.wait_for("the reload to be counted", || {
        let m = daemon.metrics();
        (m.value("bootsource_config_reloads_total", &[("result", "success")]) >= 1.0).then_some(())
    });
    assert_eq!(daemon.source_status("fedora")["auto_update"], false);
    assert_eq!(
        daemon
            .metrics()
            .get("bootsource_source_auto_update", &[("source", "fedora")]),
        Some(0.0)
    );

    v2.push(&registry, "os/fedora:latest");
    w2.push(&registry, "os/witness:latest");
    node.poll();
    daemon.wait_for_current("witness", &w2.digest);
    let fedora = daemon.source_status("fedora");
    assert_eq!(
        current_digest(&fedora),
        Some(v1.digest.clone()),
        "fedora was updated with auto_update = false:\n{}",
        daemon.log()
    );
    assert_eq!(version_digests(&fedora), vec![v1.digest.clone()]);
    assert!(v1.same_as(&node.current_link("fedora")));
    assert_eq!(
        daemon
            .metrics()
            .value("bootsource_imports_total", &[("source", "fedora")]),
        1.0,
        "only the first import of fedora"
    );

    // Back on: imported at once.
    node.config.source_mut("fedora").auto_update = true;
    node.reload();
    let fedora = daemon.wait_for_current("fedora", &v2.digest);
    assert_eq!(fedora["auto_update"], true);
    assert_eq!(
        version_digests(&fedora),
        [v1.digest.clone(), v2.digest.clone()]
    );
    assert!(v2.same_as(&node.current_link("fedora")));
}

#[test]
fn status_reads_the_catalog_and_last_state_with_the_daemon_stopped() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 31);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"));
    node.config
        .source("never", &registry.reference("os/never:latest"));

    // Before any daemon ran: every configured source, nothing current.
    node.write_config();
    let status = node.status();
    assert_eq!(status["daemon"]["running"], false, "{status}");
    assert_eq!(source_of(&status, "fedora")["current"], Value::Null);

    let daemon = node.start();
    let running = daemon.wait_for_current("fedora", &v1.digest);
    let never = daemon.wait_for("the missing image's poll to fail", || {
        let never = daemon.source_status("never");
        never["last_error"].is_string().then_some(never)
    });
    let status = daemon.status();
    assert_eq!(status["daemon"]["running"], true);
    assert_eq!(status["daemon"]["pid"], daemon.pid());
    assert!(running["last_poll"].is_string(), "{running}");
    assert_eq!(running["last_error"], Value::Null);

    daemon.kill9();
    let status = node.status();
    assert_eq!(status["daemon"]["running"], false, "{status}");
    assert_eq!(status["daemon"]["pid"], Value::Null);
    let fedora = source_of(&status, "fedora");
    assert_eq!(fedora["current"], running["current"]);
    assert_eq!(fedora["versions"], running["versions"]);
    assert_eq!(fedora["last_poll"], running["last_poll"]);
    assert_eq!(fedora["importing"], Value::Null);
    assert_eq!(
        fedora["next_poll"],
        Value::Null,
        "a stopped daemon polls nothing"
    );
    let stopped_never = source_of(&status, "never");
    assert_eq!(stopped_never["last_error"], never["last_error"]);
    assert_eq!(stopped_never["current"], Value::Null);
    assert!(v1.same_as(current_path(fedora)));

    // The text form too.
    let mut command = common::bootsource::command(["status", "--config"]);
    command.arg(node.config_path());
    let text =
        common::bootsource::expect_success(&common::tools::run_any_status(&mut command), "status");
    assert!(text.contains("daemon: not running"), "{text}");
    assert!(text.contains(&v1.digest), "{text}");
    assert!(
        fs::metadata(node.config.state_dir.join("daemon-state.json")).is_ok(),
        "no daemon-state.json"
    );
}
