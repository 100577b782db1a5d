//! What ships in `systemd/`: the unit passes `systemd-analyze verify` and has what a
//! node daemon needs (Type=notify-reload, or Type=notify with reload by SIGHUP in
//! `legacy/` for systemd < 253; a watchdog, hardening, write access to its state only); the alert rules pass `promtool check rules`; the example
//! config is one the binary accepts.
//!
//! Under systemd the daemon speaks `sd_notify`: READY=1 once `/healthz` answers,
//! STATUS= lines, WATCHDOG=1 pings at half `WATCHDOG_USEC`, STOPPING=1 on SIGTERM —
//! checked on a datagram socket standing in for systemd's `NOTIFY_SOCKET`.
//!
//! Needs `systemd` (systemd-analyze) and `prometheus` (promtool): a missing tool fails
//! with the package to install.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::bootsource::{self as bs, BIN, expect_success};
use crate::common::daemon::{Node, WAIT};
use crate::common::tools;
use nix::sys::signal::Signal;

const SYSTEMD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");

/// `[Service]` keys of the unit (a key given twice keeps every value, in order).
fn service_section(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && !line.starts_with('#')
            && let Some((key, value)) = line.split_once('=')
        {
            keys.entry(key.trim().to_owned())
                .or_default()
                .push(value.trim().to_owned());
        }
    }
    keys
}

/// The unit for this machine's systemd: `Type=notify-reload` needs systemd 253.
fn unit_for_this_systemd() -> &'static str {
    let out = tools::run_any_status(Command::new("systemctl").arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    let version: u32 = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read systemd's version from {text:?}"));
    if version >= 253 {
        "bootsource.service"
    } else {
        "legacy/bootsource.service"
    }
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    tools::require("systemd-analyze", "systemd");
    let unit = fs::read_to_string(Path::new(SYSTEMD_DIR).join(unit_for_this_systemd())).unwrap();
    let exec = service_section(&unit)["ExecStart"][0].clone();
    let (program, args) = exec.split_once(' ').unwrap();
    assert_eq!(program, "/usr/local/bin/bootsource");
    assert!(args.starts_with("daemon"), "{exec}");

    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("bootsource.service");
    fs::write(&copy, unit.replace(program, BIN)).unwrap();
    let output = tools::run_any_status(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "systemd-analyze verify failed ({}):\n{stderr}",
        output.status
    );
    // Unknown keys and bad values are only warnings: none may mention the unit.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("bootsource.service"))
        .collect();
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));

    // And the check can fail: a unit whose program does not exist is refused.
    fs::write(&copy, unit.replace(program, "/nonexistent/bootsource")).unwrap();
    let output = tools::run_any_status(Command::new("systemd-analyze").arg("verify").arg(&copy));
    assert!(
        !output.status.success(),
        "verify accepted a missing program"
    );
}

/// The two units differ only in how a reload is announced: `Type=notify-reload`
/// (systemd >= 253, which sends SIGHUP and waits for RELOADING=1 … READY=1) or
/// `Type=notify` with `ExecReload` sending SIGHUP.
#[test]
fn the_two_units_differ_only_in_how_reload_is_announced() {
    let read = |name: &str| fs::read_to_string(Path::new(SYSTEMD_DIR).join(name)).unwrap();
    let (current, legacy) = (
        read("bootsource.service"),
        read("legacy/bootsource.service"),
    );
    let keys = |unit: &str| {
        let mut s = service_section(unit);
        for key in ["Type", "ExecReload", "ReloadSignal"] {
            s.remove(key);
        }
        s
    };
    assert_eq!(keys(&current), keys(&legacy));
    let (c, l) = (service_section(&current), service_section(&legacy));
    assert_eq!(c["Type"], ["notify-reload"]);
    assert_eq!(c["ReloadSignal"], ["SIGHUP"]);
    assert!(
        !c.contains_key("ExecReload"),
        "notify-reload sends the signal itself"
    );
    assert_eq!(l["Type"], ["notify"]);
    let reload = &l["ExecReload"][0];
    assert!(
        reload.contains("kill") && reload.contains("HUP") && reload.contains("$MAINPID"),
        "ExecReload={reload}"
    );
}

#[test]
fn the_unit_has_a_watchdog_and_hardening() {
    let unit = fs::read_to_string(Path::new(SYSTEMD_DIR).join("bootsource.service")).unwrap();
    let service = service_section(&unit);
    let one = |key: &str| -> &str {
        let values = service
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in [Service]:\n{unit}"));
        values.last().unwrap()
    };
    assert!(
        one("WatchdogSec")
            .trim_end_matches('s')
            .parse::<u64>()
            .unwrap()
            > 0
    );
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    let caps = one("CapabilityBoundingSet");
    assert!(
        !caps.is_empty() && !caps.starts_with('~'),
        "not narrow: {caps}"
    );
    assert!(
        !caps.contains("CAP_SYS_PTRACE") && !caps.contains("CAP_NET_ADMIN"),
        "{caps}"
    );
    // ProtectSystem=strict makes everything read-only: the default state directory
    // (also the default `local` backend root) must be writable.
    let writable = one("ReadWritePaths");
    assert!(
        writable
            .split_whitespace()
            .any(|p| p == "/var/lib/bootsource"),
        "ReadWritePaths={writable}"
    );
    // A node runs VMs: the daemon is the one to fail. Memory is bounded (MemoryHigh
    // reclaims before MemoryMax kills, inside this unit only), descriptors allow the
    // metrics endpoint's connection cap with room to spare, threads are bounded.
    let bytes = |key: &str| -> u64 {
        let value = one(key);
        let (digits, unit) = value.split_at(value.len() - 1);
        let shift = match unit {
            "K" => 10,
            "M" => 20,
            "G" => 30,
            _ => panic!("{key}={value}: give a K, M or G size"),
        };
        digits.parse::<u64>().unwrap() << shift
    };
    let (high, max) = (bytes("MemoryHigh"), bytes("MemoryMax"));
    assert!(
        (256 << 20..max).contains(&high) && max <= 4 << 30,
        "MemoryHigh={high} MemoryMax={max}"
    );
    let nofile: u64 = one("LimitNOFILE").parse().unwrap();
    assert!(nofile >= 4096, "LimitNOFILE={nofile}");
    let tasks: u64 = one("TasksMax").parse().unwrap();
    assert!((256..=16384).contains(&tasks), "TasksMax={tasks}");
    let oom: i32 = one("OOMScoreAdjust").parse().unwrap();
    assert!(
        oom > 0,
        "OOMScoreAdjust={oom}: the kernel should pick us before a VM"
    );
    // SIGTERM cleanup (20 s grace in the daemon) fits in the stop timeout.
    let stop = one("TimeoutStopSec")
        .trim_end_matches('s')
        .parse::<u64>()
        .unwrap();
    assert!(stop > 20, "TimeoutStopSec={stop}");
}

#[test]
fn the_alert_rules_pass_promtool() {
    tools::require("promtool", "prometheus");
    let rules = Path::new(SYSTEMD_DIR).join("alerts.yml");
    let output = tools::run_any_status(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(&rules),
    );
    assert!(
        output.status.success(),
        "promtool check rules {} failed:\n{}{}",
        rules.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = fs::read_to_string(&rules).unwrap();
    for alert in ["bootsource_source_outdated", "bootsource_imports_total"] {
        assert!(text.contains(alert), "no rule on {alert}");
    }
    assert!(text.contains("for: 15m"), "outdated for 15 minutes");

    // And the check can fail.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("alerts.yml");
    fs::write(&broken, text.replace("== 1", "== == 1")).unwrap();
    let output = tools::run_any_status(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(&broken),
    );
    assert!(
        !output.status.success(),
        "promtool accepted a broken expression"
    );
}

#[test]
fn the_example_config_is_accepted() {
    // Paths moved into a temporary directory so that nothing of the host is read.
    let dir = tempfile::tempdir().unwrap();
    let example = fs::read_to_string(Path::new(SYSTEMD_DIR).join("config.example.toml")).unwrap();
    assert!(example.contains("/var/lib/bootsource"));
    let text = example.replace("/var/lib/bootsource", dir.path().to_str().unwrap());
    let config = dir.path().join("config.toml");
    fs::write(&config, text).unwrap();
    let mut command = bs::command(["status", "--json", "--config"]);
    command.arg(&config);
    let stdout = expect_success(&tools::run_any_status(&mut command), "status");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["sources"][0]["name"], "fedora", "{status}");
    assert_eq!(status["sources"][0]["storage"], "local", "{status}");
    assert_eq!(status["sources"][1]["name"], "debian", "{status}");
}

/// Every datagram the daemon sent to the notify socket so far, one message each.
fn notifications(socket: &UnixDatagram, seen: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn the_daemon_notifies_systemd_ready_status_watchdog_and_stopping() {
    let mut node = Node::new();
    // Nothing listens on port 9: the poll fails, which changes the status line.
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    node.config.insecure("127.0.0.1:9");
    let path = node.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let daemon = node.start_with_env(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "2000000"),
    ]);

    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    let lines = |seen: &Vec<String>, prefix: &str| -> Vec<String> {
        seen.iter()
            .flat_map(|m| m.lines())
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    loop {
        notifications(&socket, &mut seen);
        let done = !lines(&seen, "READY=1").is_empty()
            && lines(&seen, "WATCHDOG=1").len() >= 3
            && lines(&seen, "STATUS=")
                .iter()
                .any(|l| l.contains("1 failing"));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "notifications so far: {seen:?}\n{}",
            daemon.log()
        );
    }
    assert_eq!(lines(&seen, "READY=1").len(), 1, "{seen:?}");
    assert!(
        seen[0].lines().any(|l| l == "READY=1"),
        "READY=1 is not the first notification: {seen:?}"
    );
    println!("notifications: {seen:?}");

    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(WAIT).expect("exit after SIGTERM");
    assert!(status.success(), "{status}");
    notifications(&socket, &mut seen);
    assert!(!lines(&seen, "STOPPING=1").is_empty(), "{seen:?}");
}
