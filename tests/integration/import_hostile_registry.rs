//! A registry that attacks its client: answers too large to hold, and error pages full
//! of terminal escape sequences. Every body is capped before it is buffered (manifests
//! at 4 MiB, error bodies at 16 KiB), so memory stays flat however much is sent, and
//! nothing a server says reaches a terminal, a log or `status` unescaped.

use crate::common::bootsource::{PLAIN_HTTP, expect_error, import_command, max_rss};
use crate::common::canned::{Answer, Canned};
use crate::common::daemon::Node;

const MIB: u64 = 1 << 20;
/// Far below what buffering the answers below would cost.
const RSS_LIMIT: u64 = 96 * MIB;

fn manifest_of(body_bytes: u64, declare_length: bool) -> Answer {
    Answer {
        status: "200 OK",
        headers: vec!["Content-Type: application/vnd.oci.image.manifest.v1+json".into()],
        pattern: b"{\"schemaVersion\":2,          ".to_vec(),
        body_bytes,
        declare_length,
    }
}

#[test]
fn a_huge_manifest_is_refused_at_its_cap_whatever_its_declared_length() {
    let dir = tempfile::tempdir().unwrap();
    for declare_length in [true, false] {
        let registry = Canned::start(manifest_of(300 * MIB, declare_length));
        let target = dir.path().join("never.img");
        let (output, rss) = max_rss(&import_command(
            &registry.reference("os/huge:1"),
            &target,
            &[PLAIN_HTTP],
        ));
        expect_error(&output, &["manifest is larger than 4194304 bytes"]);
        assert!(
            rss < RSS_LIMIT,
            "peak RSS {} MiB (declared length: {declare_length})",
            rss / MIB
        );
        assert!(!target.exists());
    }
}

#[test]
fn an_error_page_is_cut_and_its_escape_sequences_neutralised() {
    let registry = Canned::start(Answer {
        status: "500 Internal Server Error",
        headers: vec!["Content-Type: text/html".into()],
        pattern: b"\x1b[2J\x1b[31mPWNED\r\n".to_vec(),
        body_bytes: 8 * MIB,
        declare_length: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let (output, rss) = max_rss(&import_command(
        &registry.reference("os/evil:1"),
        &dir.path().join("never.img"),
        &[PLAIN_HTTP],
    ));
    let stderr = expect_error(&output, &["HTTP 500"]);
    assert!(
        !output.stderr.contains(&0x1b),
        "an escape reached the terminal"
    );
    assert!(
        output.stderr.len() < 4096,
        "{} bytes of error output",
        output.stderr.len()
    );
    assert!(stderr.contains("\\u{1b}[31mPWNED"), "{stderr}");
    assert!(rss < RSS_LIMIT, "peak RSS {} MiB", rss / MIB);
}

/// The daemon keeps a failed poll's error for `status`, its state file and its log:
/// all three get the cut, escaped text, never the server's bytes.
#[test]
fn the_daemon_records_a_hostile_error_page_escaped() {
    // The tag resolves (so the daemon imports), then the manifest is an error page.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let head = Answer {
        status: "200 OK",
        headers: vec![format!("Docker-Content-Digest: {digest}")],
        pattern: Vec::new(),
        body_bytes: 0,
        declare_length: true,
    };
    let registry = Canned::start_by_method(
        head,
        Answer {
            status: "500 Internal Server Error",
            headers: vec!["Content-Type: text/html".into()],
            pattern: b"\x1b]0;owned\x07\x1b[31mPWNED\n".to_vec(),
            body_bytes: 8 * MIB,
            declare_length: false,
        },
    );
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("evil", &registry.reference("os/evil:1"))
        .interval = Some("1h".into());
    let daemon = node.start();
    let error = daemon.wait_for("a failed poll recorded", || {
        daemon.source_status("evil")["last_error"]
            .as_str()
            .map(str::to_owned)
    });
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(error.contains("\\u{1b}[31mPWNED"), "{error}");
    assert!(error.len() < 2048, "{} bytes of last_error", error.len());
    let state = std::fs::read(node.config.state_dir.join("daemon-state.json")).unwrap();
    assert!(
        !state.contains(&0x1b),
        "an escape reached daemon-state.json"
    );
    assert!(state.len() < 64 << 10, "{} bytes of state", state.len());
    let log = std::fs::read(daemon.log_path()).unwrap();
    for raw in [&b"\x1b[31mPWNED"[..], b"\x1b]0;owned"] {
        assert!(
            !log.windows(raw.len()).any(|w| w == raw),
            "the server's escape sequence reached the log"
        );
    }
}
