//! `/metrics` of the real daemon, scraped while it works: every series moves as the
//! design says. Imports and polls are counted by result, bytes downloaded and written
//! grow, a running import shows its progress and total in bytes, `source_outdated` is 1
//! while the registry has a digest the node does not (also while auto-update is off)
//! and 0 once imported, `source_versions` counts what is kept, the last successful poll
//! time advances, the seconds each import stage was busy grow where the time goes (the
//! download, behind a slow link); the example alert rules use only series the daemon
//! exports.
//!
//! The long import is made long by a [`Throttle`] between the daemon and the registry.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::daemon::{Daemon, Metrics, Node, TestDisk, current_digest, version_digests};
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;
/// The disk of the long import: 16 s at the throttled 2 MiB/s.
const LARGE: u64 = 32 * MIB;
const FEDORA: (&str, &str) = ("source", "fedora");

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn imports(m: &Metrics, result: &str) -> f64 {
    m.value("bootsource_imports_total", &[FEDORA, ("result", result)])
}

fn polls(m: &Metrics, result: &str) -> f64 {
    m.value("bootsource_polls_total", &[FEDORA, ("result", result)])
}

fn gauge(m: &Metrics, name: &str) -> f64 {
    m.get(name, &[FEDORA])
        .unwrap_or_else(|| panic!("no {name}{{source=\"fedora\"}} in\n{}", m.text))
}

fn stage_seconds(m: &Metrics, stage: &str) -> f64 {
    let labels = [FEDORA, ("stage", stage)];
    m.get("bootsource_import_stage_seconds_total", &labels)
        .unwrap_or_else(|| panic!("no stage_seconds for {stage} in\n{}", m.text))
}

fn decode_waits(m: &Metrics, on: &str) -> f64 {
    m.value(
        "bootsource_import_decode_wait_seconds_total",
        &[FEDORA, ("on", on)],
    )
}

/// Waits for a scrape that satisfies `ok`; returns it.
fn wait_metrics(daemon: &Daemon, what: &str, ok: impl Fn(&Metrics) -> bool) -> Metrics {
    daemon.wait_for(what, || Some(daemon.metrics()).filter(|m| ok(m)))
}

#[test]
fn series_move_through_imports_a_long_import_and_auto_update_off() {
    let registry = Registry::start();
    let throttle = Throttle::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 8 * MIB, 501);
    let v2 = TestDisk::incompressible(dir.path(), "v2", LARGE, 502);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&throttle.host_port());
    node.config
        .source("fedora", &throttle.reference("os/fedora:latest"));
    let started = now();
    let daemon = node.start();

    // After the first import.
    daemon.wait_for_current("fedora", &v1.digest);
    let m = wait_metrics(&daemon, "the first import to be counted", |m| {
        imports(m, "success") == 1.0 && gauge(m, "bootsource_source_versions") == 1.0
    });
    assert_eq!(
        polls(&m, "outdated"),
        1.0,
        "the first poll found a new digest"
    );
    assert_eq!(polls(&m, "failed"), 0.0);
    let downloaded = m.value("bootsource_downloaded_bytes_total", &[FEDORA]);
    let written = m.value("bootsource_written_bytes_total", &[FEDORA]);
    assert!(
        downloaded >= v1.layer_size() as f64,
        "downloaded {downloaded} < layer {}",
        v1.layer_size()
    );
    assert!(
        written > 0.0 && written <= (8 * MIB) as f64,
        "written {written}"
    );
    assert_eq!(gauge(&m, "bootsource_source_outdated"), 0.0);
    assert_eq!(gauge(&m, "bootsource_source_auto_update"), 1.0);
    assert_eq!(gauge(&m, "bootsource_import_progress_bytes"), 0.0);
    assert_eq!(gauge(&m, "bootsource_import_size_bytes"), 0.0);
    let first_poll = gauge(&m, "bootsource_last_successful_poll_timestamp_seconds");
    assert!(
        first_poll >= started.floor() - 1.0 && first_poll <= now() + 1.0,
        "last successful poll at {first_poll}, daemon started at {started}"
    );
    assert_eq!(
        m.value("bootsource_import_duration_seconds_count", &[FEDORA]),
        1.0
    );
    assert!(m.has_family("bootsource_import_duration_seconds"));
    assert_eq!(m.value("bootsource_config_reloads_total", &[]), 0.0);
    for stage in [
        "download",
        "verify",
        "decompress",
        "decode",
        "write",
        "commit",
    ] {
        let busy = stage_seconds(&m, stage);
        assert!(busy >= 0.0, "{stage} busy {busy} s");
    }
    let first_download = stage_seconds(&m, "download");
    assert!(first_download > 0.0, "{}", m.text);
    // Sealing the version fsyncs it: never free, and counted once it is done.
    assert!(stage_seconds(&m, "commit") > 0.0, "{}", m.text);

    // A long import: progress and total in bytes, outdated while it runs.
    v2.push(&registry, "os/fedora:latest");
    throttle.set_rate(2 * MIB);
    node.poll();
    let m = wait_metrics(&daemon, "import progress", |m| {
        gauge(m, "bootsource_import_progress_bytes") > 0.0
    });
    let progress = gauge(&m, "bootsource_import_progress_bytes");
    let size = gauge(&m, "bootsource_import_size_bytes");
    assert!(
        size >= v2.layer_size() as f64 && size < (v2.layer_size() + MIB) as f64,
        "import_size_bytes {size}, layer {}",
        v2.layer_size()
    );
    assert!(progress <= size, "progress {progress} > size {size}");
    assert_eq!(gauge(&m, "bootsource_source_outdated"), 1.0);
    assert_eq!(polls(&m, "outdated"), 2.0);
    assert!(gauge(&m, "bootsource_last_successful_poll_timestamp_seconds") >= first_poll);
    let later = wait_metrics(&daemon, "import progress to grow", |m| {
        gauge(m, "bootsource_import_progress_bytes") > progress
    });
    assert!(
        later.value("bootsource_downloaded_bytes_total", &[FEDORA]) > downloaded,
        "downloaded_bytes_total does not grow during an import"
    );
    // The throttled link is where the time goes, and it shows while the import runs.
    let m = wait_metrics(&daemon, "download seconds to grow", |m| {
        stage_seconds(m, "download") > first_download + 1.0 && decode_waits(m, "input") > 1.0
    });
    assert!(
        decode_waits(&m, "input") > decode_waits(&m, "writers"),
        "{}",
        m.text
    );

    // Auto-update off mid-import: cancelled, and outdated stays 1 — the registry still
    // has a digest the node does not.
    node.config.source_mut("fedora").auto_update = false;
    node.reload();
    let m = wait_metrics(&daemon, "the import to be cancelled", |m| {
        imports(m, "cancelled") == 1.0
    });
    assert_eq!(gauge(&m, "bootsource_source_outdated"), 1.0, "{}", m.text);
    assert_eq!(gauge(&m, "bootsource_source_auto_update"), 0.0);
    assert_eq!(gauge(&m, "bootsource_import_progress_bytes"), 0.0);
    assert_eq!(gauge(&m, "bootsource_import_size_bytes"), 0.0);
    assert_eq!(gauge(&m, "bootsource_source_versions"), 1.0);
    assert_eq!(imports(&m, "success"), 1.0);
    assert_eq!(imports(&m, "failure"), 0.0);
    let fedora = daemon.source_status("fedora");
    assert_eq!(current_digest(&fedora), Some(v1.digest.clone()));
    assert_eq!(fedora["outdated"], true, "{fedora}");
    assert!(node.staging_leftovers().is_empty());
    assert_eq!(node.catalog_staging(), Vec::<String>::new());

    // Back on, full speed: imported, outdated 0, two versions kept.
    throttle.unlimited();
    node.config.source_mut("fedora").auto_update = true;
    node.reload();
    daemon.wait_for_current("fedora", &v2.digest);
    let m = wait_metrics(&daemon, "the second import to be counted", |m| {
        imports(m, "success") == 2.0 && gauge(m, "bootsource_source_versions") == 2.0
    });
    assert_eq!(gauge(&m, "bootsource_source_outdated"), 0.0);
    assert_eq!(gauge(&m, "bootsource_import_progress_bytes"), 0.0);
    let downloaded_now = m.value("bootsource_downloaded_bytes_total", &[FEDORA]);
    assert!(
        downloaded_now >= (v1.layer_size() + v2.layer_size()) as f64,
        "downloaded {downloaded_now}"
    );
    assert!(m.value("bootsource_written_bytes_total", &[FEDORA]) >= LARGE as f64);
    assert_eq!(
        m.value("bootsource_config_reloads_total", &[("result", "success")]),
        3.0,
        "`bootsource poll` and two config changes: three SIGHUPs"
    );
    assert_eq!(
        m.value("bootsource_import_duration_seconds_count", &[FEDORA]),
        3.0,
        "two imports and a cancelled one"
    );
    assert_eq!(version_digests(&daemon.source_status("fedora")).len(), 2);

    // Nothing new on the tag: counted as up to date, the poll time advances.
    let before = gauge(&m, "bootsource_last_successful_poll_timestamp_seconds");
    node.poll();
    let m = wait_metrics(&daemon, "an up-to-date poll", |m| {
        polls(m, "up_to_date") >= 1.0
    });
    assert!(gauge(&m, "bootsource_last_successful_poll_timestamp_seconds") >= before);
    assert_eq!(gauge(&m, "bootsource_source_outdated"), 0.0);
    assert_eq!(imports(&m, "success"), 2.0);

    // The example alert rules only use series this daemon exports.
    let alerts =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/alerts.yml"))
            .unwrap();
    let mut names: Vec<&str> = alerts
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("bootsource_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(!names.is_empty(), "no bootsource_ series in alerts.yml");
    for name in names {
        assert!(
            m.has_family(name),
            "alerts.yml uses {name}, not exported:\n{}",
            m.text
        );
    }
}

#[test]
fn healthz_and_the_metrics_content_type() {
    let registry = Registry::start();
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/absent:latest"));
    let daemon = node.start();
    let agent = ureq::Agent::config_builder()
        .proxy(None)
        .build()
        .new_agent();
    let port = node.config.metrics_port;
    let mut health = agent
        .get(&format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .unwrap();
    assert_eq!(health.body_mut().read_to_string().unwrap().trim(), "ok");
    let metrics = agent
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .unwrap();
    let content_type = metrics
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "{content_type}"
    );
    // A poll of an image that does not exist is a failed poll, counted.
    let m = wait_metrics(&daemon, "a failed poll", |m| polls(m, "failed") >= 1.0);
    assert_eq!(gauge(&m, "bootsource_source_versions"), 0.0);
    assert_eq!(
        m.get(
            "bootsource_last_successful_poll_timestamp_seconds",
            &[FEDORA]
        ),
        None
    );
}
