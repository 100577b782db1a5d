//! What tells an operator (or Kubernetes) the daemon is alive: `/healthz` fails with
//! the reason when the catalog cannot be read, and recovers when it can again;
//! `/metrics` carries `bootsource_build_info` and the standard `process_*` series,
//! checked against `/proc`; under systemd a SIGHUP reload is announced as
//! `Type=notify-reload` expects (RELOADING=1 with MONOTONIC_USEC, then READY=1).

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::daemon::{Node, WAIT};
use nix::sys::signal::Signal;

#[test]
fn healthz_fails_while_the_catalog_is_unreadable() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    node.config.insecure("127.0.0.1:9");
    let daemon = node.start();
    assert!(daemon.healthy());
    let catalog = node.config.state_dir.join("catalog.json");
    // A node that never imported may have no catalog yet: that reads as empty.
    let good = fs::read(&catalog).ok();

    fs::write(&catalog, b"{ not json").unwrap();
    let body = daemon.wait_for("/healthz to fail", || match daemon.get("/healthz") {
        Some((503, body)) => Some(body),
        _ => None,
    });
    assert!(body.contains("catalog"), "{body}");

    match good {
        Some(bytes) => fs::write(&catalog, bytes).unwrap(),
        None => fs::remove_file(&catalog).unwrap(),
    }
    daemon.wait_for("/healthz to recover", || daemon.healthy().then_some(()));
}

#[test]
fn metrics_carry_build_info_and_process_series() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let daemon = node.start();
    let m = daemon.metrics();
    assert_eq!(
        m.get(
            "bootsource_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let rss = m.value("process_resident_memory_bytes", &[]);
    let (low, high) = (daemon.rss() / 2, daemon.rss() * 2);
    assert!(
        (low as f64..high as f64).contains(&rss),
        "rss {rss} vs /proc {}",
        daemon.rss()
    );
    let fds = m.value("process_open_fds", &[]);
    let actual = daemon.open_fds() as f64;
    assert!((fds - actual).abs() <= 4.0, "fds {fds} vs /proc {actual}");
    assert!(m.value("process_max_fds", &[]) >= fds);
    assert!(m.value("process_cpu_seconds_total", &[]) > 0.0);
    let started = m.value("process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 120.0..=now + 1.0).contains(&started),
        "start {started} now {now}"
    );
}

/// CLOCK_MONOTONIC in microseconds, as systemd compares it (`/proc/uptime` counts
/// from the same boot; in a container without suspend the two agree closely).
fn uptime_usec() -> f64 {
    let text = fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace()
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1e6
}

#[test]
fn a_reload_is_announced_as_notify_reload_expects() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let path = node.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let daemon = node.start_with_env(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut seen: Vec<String> = Vec::new();
    let receive = |seen: &mut Vec<String>| {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    let ready = |seen: &Vec<String>| {
        seen.iter()
            .filter(|m| m.lines().any(|l| l == "READY=1"))
            .count()
    };
    let deadline = Instant::now() + WAIT;
    while ready(&seen) == 0 {
        receive(&mut seen);
        assert!(Instant::now() < deadline, "{seen:?}");
    }

    let before = uptime_usec();
    daemon.signal(Signal::SIGHUP);
    while ready(&seen) < 2 {
        receive(&mut seen);
        assert!(
            Instant::now() < deadline,
            "no READY=1 after the reload: {seen:?}"
        );
    }
    let reloading = seen
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1: {seen:?}"));
    let second_ready = seen
        .iter()
        .rposition(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap();
    assert!(reloading < second_ready, "{seen:?}");
    let usec: f64 = seen[reloading]
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {seen:?}"))
        .parse()
        .unwrap();
    assert!(
        (before - 5e6..uptime_usec() + 5e6).contains(&usec),
        "MONOTONIC_USEC={usec}, uptime {before}"
    );
    assert_eq!(daemon.reloads("success"), 1.0);
}
