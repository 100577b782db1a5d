//! `bootsource import` through a registry that misbehaves: every answer passes through a
//! [`FaultProxy`] that cuts downloads at set offsets, answers 500/502/503 and 429, stalls
//! mid-body, sends other bytes on a resumed range and lies in `Content-Length`.
//!
//! Each fault ends in one of two ways: the import resumes (a `Range` request from where
//! the bytes stopped) and the disk is exactly the image's, or it fails cleanly — exit
//! status 1, an `error:` line naming what went wrong — and an existing target file is
//! left as it was, with nothing beside it. Each test counts the faults it injected.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::bootsource::{
    PLAIN_HTTP, dir_entries, expect_error, expect_success, import, import_command, import_json,
    max_rss, serve,
};
use crate::common::daemon::TestDisk;
use crate::common::faults::{Fault, FaultProxy, HOSTILE_BODY, When, has_control_sequences};
use crate::common::registry::Registry;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
/// Where the plans below cut: well inside the 4 MiB layer, more than one chunk in.
const CUT: u64 = MIB;

/// An incompressible 4 MiB disk (its layer is as large) behind a fault proxy.
struct Setup {
    registry: Registry,
    proxy: FaultProxy,
    _dir: TempDir,
    disk: TestDisk,
    /// Holds the target and nothing else.
    out: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let disk = TestDisk::incompressible(dir.path(), "disk", 4 * MIB, 11);
        disk.push(&registry, "os/img:1");
        let proxy = FaultProxy::start(&registry);
        Setup {
            registry,
            proxy,
            _dir: dir,
            disk,
            out: tempfile::tempdir().unwrap(),
        }
    }

    fn source(&self) -> String {
        self.proxy.reference("os/img:1")
    }

    fn target(&self) -> PathBuf {
        self.out.path().join("disk.img")
    }

    fn layer(&self) -> u64 {
        self.disk.layer_size()
    }

    /// Imports, which must succeed with the disk; stderr for the logged resumes.
    fn import_ok(&self) -> String {
        let output = import(&self.source(), &self.target(), &[PLAIN_HTTP]);
        expect_success(&output, "import through the fault proxy");
        assert!(
            self.disk.same_as(&self.target()),
            "the import is not the disk"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Puts an older disk at the target, imports, which must fail with `phrases`, and
    /// checks the older disk is still there, alone. Returns stderr.
    fn import_fails_keeping_target(&self, phrases: &[&str]) -> String {
        let old: Vec<u8> = (0..MIB).map(|i| (i % 253) as u8).collect();
        fs::write(self.target(), &old).unwrap();
        let output = import(&self.source(), &self.target(), &[PLAIN_HTTP]);
        let stderr = expect_error(&output, phrases);
        assert_eq!(dir_entries(self.out.path()), ["disk.img"], "leftovers");
        assert!(
            fs::read(self.target()).unwrap() == old,
            "the existing target was changed by a failed import"
        );
        stderr
    }

    /// `Range` starts of the layer's GET requests, in order (`None`: no `Range`).
    fn layer_ranges(&self) -> Vec<Option<u64>> {
        let layer = self.disk.image.layers[0].digest();
        self.proxy
            .served()
            .iter()
            .filter(|s| s.method == "GET" && s.path.ends_with(layer))
            .map(|s| s.range_start)
            .collect()
    }
}

/// A blob is first asked for whole, with a plain GET: a `Range` header, even
/// `bytes=0-`, makes some site caches and peer-to-peer engines (Dragonfly's proxy keys
/// its tasks by range) treat the request apart from the other nodes' plain ones.
#[test]
fn an_uninterrupted_download_is_one_plain_get() {
    let s = Setup::new();
    s.import_ok();
    assert_eq!(s.layer_ranges(), [None]);
}

#[test]
fn cuts_at_set_offsets_resume_with_range_requests() {
    let s = Setup::new();
    s.proxy
        .add(When::get("/blobs/").times(3), Fault::CutAfter(CUT));
    let report = import_json(&s.source(), &s.target(), &[PLAIN_HTTP]);
    assert!(s.disk.same_as(&s.target()));
    println!("faults injected: {:?}", s.proxy.injected_by_kind());
    assert_eq!(s.proxy.injected(), 3);
    // The first request asks for the whole blob; each resume for the rest from where
    // the bytes stopped; nothing twice.
    let starts: Vec<Option<u64>> = (0..4).map(|n| (n > 0).then_some(n * CUT)).collect();
    assert_eq!(s.layer_ranges(), starts);
    assert_eq!(report.downloaded, s.layer(), "bytes downloaded");
}

#[test]
fn a_burst_of_server_errors_mid_download_is_retried() {
    let s = Setup::new();
    s.proxy.add(When::get("/blobs/"), Fault::CutAfter(CUT));
    for code in [500, 502, 503] {
        s.proxy.add(When::get("/blobs/"), Fault::Status(code));
    }
    let stderr = s.import_ok();
    println!("faults injected: {:?}", s.proxy.injected_by_kind());
    assert_eq!(s.proxy.injected(), 4);
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(
        s.layer_ranges(),
        [None, Some(CUT), Some(CUT), Some(CUT), Some(CUT)]
    );
}

#[test]
fn rate_limiting_mid_download_is_retried() {
    let s = Setup::new();
    s.proxy.add(When::get("/blobs/"), Fault::CutAfter(CUT));
    s.proxy.add(
        When::get("/blobs/").times(2),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    s.import_ok();
    assert_eq!(s.proxy.injected(), 3);
    assert_eq!(s.layer_ranges(), [None, Some(CUT), Some(CUT), Some(CUT)]);
}

#[test]
fn server_errors_without_end_fail_cleanly_and_keep_the_target() {
    let s = Setup::new();
    s.proxy
        .add(When::get("/blobs/").times(u64::MAX), Fault::Status(503));
    s.import_fails_keeping_target(&["503"]);
    // The first try and five retries (the importer's MAX_RESUMES), then a clean end.
    assert_eq!(s.proxy.injected(), 6);
}

#[test]
fn server_errors_on_the_manifest_fail_cleanly_and_keep_the_target() {
    let s = Setup::new();
    s.proxy
        .add(When::get("/manifests/").times(u64::MAX), Fault::Status(500));
    s.import_fails_keeping_target(&["500"]);
    assert!(s.proxy.injected() >= 1);
    assert!(s.layer_ranges().is_empty(), "no layer without a manifest");
}

#[test]
fn other_bytes_on_a_resumed_range_fail_the_digest_check_and_keep_the_target() {
    let s = Setup::new();
    s.proxy.add(When::get("/blobs/"), Fault::CutAfter(CUT));
    // 64 KiB of other bytes inside the disk's data: only the digest can tell.
    s.proxy
        .add(When::get("/blobs/"), Fault::AlterResumedRange(64 << 10));
    let stderr = s.import_fails_keeping_target(&["digest mismatch"]);
    assert!(stderr.contains("hint: "), "no hint:\n{stderr}");
    assert_eq!(s.proxy.injected(), 2);
}

/// Other bytes that also break the tar structure after the disk (its end-of-archive
/// blocks): the import stops at the first broken byte (fail fast: it does not download
/// the rest of the layer to learn its digest) and blames the layer, which is exactly
/// what was served. Either way nothing is written and the old target stays.
#[test]
fn other_bytes_that_break_the_tar_fail_cleanly() {
    let s = Setup::new();
    s.proxy.add(When::get("/blobs/"), Fault::CutAfter(CUT));
    s.proxy
        .add(When::get("/blobs/"), Fault::AlterResumedRange(u64::MAX));
    let stderr = s.import_fails_keeping_target(&["layer sha256:"]);
    assert!(
        stderr.contains("digest mismatch") || stderr.contains("is not a valid"),
        "{stderr}"
    );
}

#[test]
fn a_stall_mid_body_only_delays_the_import() {
    let s = Setup::new();
    let pause = Duration::from_secs(2);
    s.proxy
        .add(When::get("/blobs/"), Fault::Stall { after: CUT, pause });
    s.import_ok();
    assert_eq!(s.proxy.injected(), 1);
    assert_eq!(s.layer_ranges(), [None], "a short stall needs no resume");
}

/// A stall longer than the importer's read timeout (60 s): the connection is given up
/// and the download resumes on a new one.
#[test]
fn a_stall_past_the_read_timeout_resumes() {
    let s = Setup::new();
    let pause = Duration::from_secs(180);
    s.proxy
        .add(When::get("/blobs/"), Fault::Stall { after: CUT, pause });
    let stderr = s.import_ok();
    assert!(stderr.contains("resuming"), "{stderr}");
    assert_eq!(s.proxy.injected(), 1);
    let ranges = s.layer_ranges();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert!(ranges[1] >= Some(CUT), "{ranges:?}");
}

#[test]
fn a_content_length_longer_than_the_body_is_survived() {
    let s = Setup::new();
    // The whole blob arrives, then the connection closes before the declared end.
    s.proxy.add(When::get("/blobs/"), Fault::LyingLength(4096));
    s.import_ok();
    assert_eq!(s.proxy.injected(), 1);
}

#[test]
fn a_content_length_shorter_than_the_body_is_resumed() {
    let s = Setup::new();
    // The answer ends, cleanly, 4 KiB before the blob does.
    s.proxy.add(When::get("/blobs/"), Fault::LyingLength(-4096));
    s.import_ok();
    assert_eq!(s.proxy.injected(), 1);
    assert_eq!(s.layer_ranges(), [None, Some(s.layer() - 4096)]);
}

/// The other side of resuming a short answer: a registry whose blob really is shorter
/// than its descriptor says serves nothing past its end, and that is reported as what
/// it is — a size mismatch — not as a failed registry request.
#[test]
fn a_blob_shorter_than_its_descriptor_is_a_size_mismatch() {
    let s = Setup::new();
    let short = s.disk.image.clone().tamper_layer(0, |bytes| {
        bytes.truncate(bytes.len() - 4096);
    });
    serve(&s.registry, "os/img:1", &short);
    let stderr = s.import_fails_keeping_target(&["size mismatch"]);
    assert!(stderr.contains("hint: "), "no hint:\n{stderr}");
    // Every try after the first asks from where the blob really ends. (distribution
    // 2.8 declares the blob's length on its 416, so the client sees a broken answer
    // and tries again, up to its bound.)
    let ranges = s.layer_ranges();
    assert_eq!(ranges[0], None);
    assert!(
        ranges[1..].iter().all(|r| *r == Some(s.layer() - 4096)),
        "{ranges:?}"
    );
}

/// What a registry says is shown, never obeyed: the control characters of an error
/// body reach the terminal escaped, and its newline cannot forge a line of ours.
#[test]
fn a_hostile_error_body_is_printed_escaped() {
    let s = Setup::new();
    s.proxy.add(
        When::get("/manifests/").times(u64::MAX),
        Fault::Answer(500, HOSTILE_BODY.into()),
    );
    let stderr = s.import_fails_keeping_target(&["500", "owned"]);
    assert!(!has_control_sequences(&stderr), "{stderr:?}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("hint: run")),
        "a forged line:\n{stderr}"
    );
}

/// A registry's error body is read only up to its cap (oci-client used to read it
/// whole: a 256 MiB body cost 1183 MiB peak RSS and 256 MiB of stderr).
#[test]
fn a_huge_error_body_is_not_held_in_memory() {
    let s = Setup::new();
    let body = "x".repeat(128 << 20);
    s.proxy.add(
        When::get("/manifests/").times(u64::MAX),
        Fault::Answer(500, body),
    );
    let (output, rss) = max_rss(&import_command(&s.source(), &s.target(), &[PLAIN_HTTP]));
    expect_error(&output, &["500"]);
    assert!(rss < 96 << 20, "peak RSS {} MiB", rss >> 20);
    assert!(
        output.stderr.len() < 64 << 10,
        "{} bytes of stderr",
        output.stderr.len()
    );
}
