//! The metrics endpoint under hostile clients and reloads, with the real binary: 300
//! half-open connections (some silent, some stuck mid-request) neither keep `/healthz`
//! from answering nor make a SIGHUP reload fail for want of file descriptors, and the
//! daemon's descriptors stay bounded; a reload that changes `metrics_address` moves the
//! endpoint there.
//!
//! The daemon runs under `prlimit --nofile` with a limit below the flood, as the issue's
//! reproducer did: without a connection cap, every descriptor goes to the flood.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::common::daemon::{Daemon, Node, WAIT, free_port};
use crate::common::tools;

/// The daemon's descriptor limit in the flood test, and the flood.
const NOFILE: usize = 192;
const FLOOD: usize = 300;

fn open_fds(daemon: &Daemon) -> usize {
    fs::read_dir(format!("/proc/{}/fd", daemon.pid()))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// `GET /healthz` on `port` with a fresh connection: the body, if it answered 200.
fn healthz(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

#[test]
fn half_open_connections_neither_starve_healthz_nor_break_reload() {
    tools::require("prlimit", "util-linux");
    let mut node = Node::new();
    node.launcher = ["prlimit", &format!("--nofile={NOFILE}:{NOFILE}"), "--"]
        .map(String::from)
        .to_vec();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let daemon = node.start();
    let idle = open_fds(&daemon);

    // Half say nothing; half stop in the middle of their request head.
    let flood: Vec<TcpStream> = (0..FLOOD)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", node.config.metrics_port)).unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    let mut busiest = 0;
    daemon.wait_for("/healthz to answer during the flood", || {
        busiest = busiest.max(open_fds(&daemon));
        daemon.healthy().then_some(())
    });
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for("the reload", || {
        (daemon.reloads("success") == 1.0).then_some(())
    });
    assert_eq!(daemon.reloads("failure"), 0.0, "{}", daemon.log());
    println!("open descriptors: {idle} idle, {busiest} under a flood of {FLOOD}");
    assert!(busiest < NOFILE - 32, "{busiest} descriptors open");

    // The server hung up on the flood: a silent client reads EOF (or a reset).
    let mut first = &flood[0];
    first.set_read_timeout(Some(WAIT)).unwrap();
    let mut byte = [0u8; 1];
    match first.read(&mut byte) {
        Ok(0) | Err(_) => {}
        Ok(_) => panic!("a silent client got an answer"),
    }
    assert!(daemon.try_wait().is_none());
}

#[test]
fn a_reload_that_changes_metrics_address_moves_the_endpoint() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let daemon = node.start();
    let old = node.config.metrics_port;
    assert_eq!(healthz(old).as_deref(), Some("ok\n"));

    let new = free_port();
    node.config.metrics_port = new;
    node.reload();
    daemon.wait_for("the endpoint on the new address", || {
        healthz(new).filter(|body| body == "ok\n")
    });
    assert_eq!(healthz(old), None, "the old address still answers");
    assert!(
        daemon.log().contains("metrics endpoint moved"),
        "{}",
        daemon.log()
    );

    // A taken address refuses the whole config; the endpoint stays where it was.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    node.config.metrics_port = taken.local_addr().unwrap().port();
    node.reload();
    daemon.wait_for("the refused reload", || {
        daemon.log().contains("configuration refused").then_some(())
    });
    assert_eq!(healthz(new).as_deref(), Some("ok\n"));
}
