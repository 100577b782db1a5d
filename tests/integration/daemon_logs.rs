//! What the daemon logs, and where: `log_format = "json"` gives one JSON object per line;
//! under systemd (stderr is the stream `JOURNAL_STREAM` names) events go to journald
//! natively with `PRIORITY` and a field per event field; and no credential — the
//! password, the Basic token, the `Authorization` header — ever reaches a log line,
//! in any format, at any level, whether the registry accepts it or refuses it.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::bootsource::BIN;
use crate::common::daemon::{Node, TestDisk, WAIT};
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;
const USER: &str = "alice";
const PASSWORD: &str = "pw-Zq7-must-never-be-logged";

/// Every spelling of the credential a log line could carry.
fn secrets() -> Vec<String> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    vec![
        PASSWORD.to_owned(),
        token,
        "Authorization: Basic".to_owned(),
    ]
}

fn assert_no_secret(log: &str) {
    for secret in secrets() {
        assert!(
            !log.to_ascii_lowercase()
                .contains(&secret.to_ascii_lowercase()),
            "{secret:?} reached the log:\n{log}"
        );
    }
}

/// One daemon per format, at trace level (every library's logs too), importing with
/// the right password and then failing with a wrong one.
#[test]
fn no_credential_reaches_a_log_line_in_any_format() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::with_basic_auth(USER, PASSWORD);
        let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 41);
        v1.push(&registry, "os/fedora:latest");
        let auth = dir.path().join("auth.json");
        registry.write_auth_json(&auth);

        let mut node = Node::new();
        node.config.insecure(&registry.host_port());
        node.config
            .set("auth_file", &format!("{:?}", auth.to_str().unwrap()))
            .set("log_format", &format!("{format:?}"));
        node.config
            .source("fedora", &registry.reference("os/fedora:latest"));
        let daemon = node.start_with_env(&[("RUST_LOG", "trace")]);
        daemon.wait_for_current("fedora", &v1.digest);

        // The registry now refuses the credential: the failure is logged, the secret not.
        let old = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}-old"))
        };
        let wrong = serde_json::json!({"auths": {registry.host_port(): {"auth": old}}});
        fs::write(&auth, wrong.to_string()).unwrap();
        node.reload();
        daemon.wait_for("a failed poll", || {
            let n = daemon.metrics().get(
                "bootsource_polls_total",
                &[("source", "fedora"), ("result", "failed")],
            );
            n.filter(|n| *n >= 1.0)
        });
        let log = daemon.log();
        assert!(log.contains("poll failed"), "{log}");
        assert!(log.lines().count() > 50, "trace logging is off:\n{log}");
        assert_no_secret(&log);
        if format == "json" {
            for line in log.lines() {
                let event: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(
                    event["level"].is_string() && event["message"].is_string(),
                    "{line}"
                );
            }
        }
    }
}

/// Datagrams received on the stand-in journal socket so far.
fn datagrams(socket: &UnixDatagram, seen: &mut Vec<String>) {
    let mut buf = vec![0u8; 256 << 10];
    while let Ok(n) = socket.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn under_systemd_events_go_to_the_journal_with_priorities_and_fields() {
    let mut node = Node::new();
    // Nothing listens on port 9: the poll fails, a warning.
    node.config
        .source("fedora", "docker://127.0.0.1:9/os/fedora:latest");
    node.config.insecure("127.0.0.1:9");
    node.write_config();
    let socket_path = node.path().join("journal.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // systemd's JOURNAL_STREAM names the stream it gave as stderr: here, a file.
    let stderr_path = node.path().join("stderr");
    let stderr = fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let mut child = Command::new(BIN)
        .args(["daemon", "--config"])
        .arg(node.config_path())
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("BOOTSOURCE_JOURNAL_SOCKET", &socket_path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();

    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    let find = |seen: &Vec<String>, needle: &str| -> Option<String> {
        seen.iter().find(|d| d.contains(needle)).cloned()
    };
    let warning = loop {
        datagrams(&socket, &mut seen);
        if let Some(d) = find(&seen, "MESSAGE=poll failed") {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "no poll failure in the journal: {seen:?}\nstderr: {}",
            fs::read_to_string(&stderr_path).unwrap()
        );
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(child.wait().unwrap().success());

    let fields = |d: &str| -> Vec<String> { d.lines().map(str::to_owned).collect() };
    let ready = find(&seen, "MESSAGE=bootsource daemon ready").expect("ready event");
    assert!(fields(&ready).contains(&"PRIORITY=6".to_owned()), "{ready}");
    assert!(fields(&ready).contains(&"SYSLOG_IDENTIFIER=bootsource".to_owned()));
    let w = fields(&warning);
    assert!(w.contains(&"PRIORITY=4".to_owned()), "{warning}");
    assert!(w.contains(&"SOURCE=fedora".to_owned()), "{warning}");
    assert!(w.iter().any(|l| l.starts_with("ERROR=")), "{warning}");
    // Nothing went to stderr: the journal got it all.
    assert_eq!(fs::read_to_string(&stderr_path).unwrap(), "");
}
