//! One daemon per state directory, and finding it: a second `bootsource daemon` on the
//! same state directory (same config, or another metrics port) is refused before it
//! touches anything, and `poll` still reaches the first; `poll` never signals a process
//! that reused the pid of a dead daemon; `status` run by an unprivileged user sees a
//! running root daemon (where `kill(pid, 0)` says EPERM).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::bootsource::{self as bs, expect_error, expect_success};
use crate::common::daemon::{Node, WAIT, free_port};
use crate::common::tools;

/// The uid and gid of `nobody`.
const NOBODY: &str = "65534";

/// Runs a second `bootsource daemon --config CONFIG`; its exit status and output. A
/// second daemon that keeps running is killed and the test fails.
fn second_daemon(config: &Path) -> (ExitStatus, String) {
    let mut command = bs::command(["daemon", "--config"]);
    let mut child = command
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "a second daemon runs on the same state directory:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status, text)
}

fn pid_file_of(node: &Node) -> String {
    fs::read_to_string(node.config.state_dir.join("daemon.pid")).unwrap_or_default()
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused_and_poll_still_reaches_the_first() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let first = node.start();
    let pid = first.pid().to_string();
    assert_eq!(pid_file_of(&node).trim(), pid);

    // The same config (the reproducer: its port is taken too), and a copy of it
    // on a free port, which alone would start a second daemon on the same state.
    let mut elsewhere = node.config.clone();
    elsewhere.metrics_port = free_port();
    let other_config = node.path().join("other.toml");
    fs::write(&other_config, elsewhere.to_toml()).unwrap();
    for config in [node.config_path(), other_config] {
        let (status, stderr) = second_daemon(&config);
        println!("second daemon ({}): {status}\n{stderr}", config.display());
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("already running") && stderr.contains(&format!("pid {pid}")),
            "the refusal does not name the running daemon:\n{stderr}"
        );
        assert_eq!(pid_file_of(&node).trim(), pid, "daemon.pid was overwritten");
    }

    node.poll();
    first.wait_for("the first daemon to reload", || {
        (first.reloads("success") == 1.0).then_some(())
    });
    assert!(first.try_wait().is_none());
    let status = node.status();
    assert_eq!(status["daemon"]["running"], true, "{status}");
    assert_eq!(status["daemon"]["pid"].to_string(), pid, "{status}");
}

#[test]
fn poll_does_not_signal_a_process_that_reused_a_dead_daemons_pid() {
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    node.write_config();
    fs::create_dir_all(&node.config.state_dir).unwrap();
    // A daemon died by SIGKILL and left daemon.pid; its pid now belongs to this process.
    let mut bystander = Command::new("sleep").arg("600").spawn().unwrap();
    fs::write(
        node.config.state_dir.join("daemon.pid"),
        format!("{}\n", bystander.id()),
    )
    .unwrap();

    let mut poll = bs::command(["poll", "--config"]);
    poll.arg(node.config_path());
    let output = tools::run_any_status(&mut poll);
    let alive = bystander.try_wait().unwrap().is_none();
    let _ = bystander.kill();
    let _ = bystander.wait();
    assert!(alive, "bootsource poll killed an unrelated process");
    expect_error(&output, &["no bootsource daemon is running"]);

    let status = node.status();
    assert_eq!(status["daemon"]["running"], false, "{status}");
}

#[test]
fn status_run_by_an_unprivileged_user_sees_the_running_daemon() {
    tools::require("setpriv", "util-linux");
    let mut node = Node::new();
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    let daemon = node.start();
    // The node lives in a private temporary directory: open it and the config to all,
    // as /etc/bootsource and /var/lib/bootsource are on a node.
    fs::set_permissions(node.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(node.config_path(), fs::Permissions::from_mode(0o644)).unwrap();

    // The build tree may be private (CI clones anywhere): run a copy nobody can reach.
    let binary = node.path().join("bootsource");
    fs::copy(bs::BIN, &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let mut status = Command::new("setpriv");
    status
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
        .arg(&binary)
        .args(["status", "--config"])
        .arg(node.config_path())
        .env("LC_ALL", "C");
    let stdout = expect_success(&tools::run_any_status(&mut status), "status as nobody");
    println!("{stdout}");
    assert!(
        stdout.contains(&format!("daemon: running (pid {})", daemon.pid())),
        "{stdout}"
    );
}
