//! The daemon under a signature policy: a refused new version is not imported, the
//! current one stays, `status` says why, and `bootsource_rejected_versions_total`
//! counts each refused digest once, however often it is polled.

use std::fs;

use serde_json::json;
use tempfile::TempDir;

use super::{REPO, policy, signed_by};
use crate::common::daemon::{Daemon, Node, TestDisk, current_digest};
use crate::common::registry::Registry;
use crate::common::signing::{self, GpgKey, skopeo_sign_copy};

/// A daemon whose policy wants the vendor's signature; v1, signed, is current.
struct Setup {
    _key: GpgKey,
    registry: Registry,
    dir: TempDir,
    v1: TestDisk,
    node: Node,
    daemon: Daemon,
}

impl Setup {
    /// `interval`: the source's poll interval (which also caps the backoff after a
    /// refusal), or the default.
    fn new(interval: Option<&str>) -> Setup {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let key = GpgKey::generate("vendor");
        let (store, registries_d) = (dir.path().join("sigstore"), dir.path().join("registries.d"));
        signing::write_registries_d(&registries_d, &store, false);
        let json = policy(signed_by(&key.public), json!({}));
        let policy = dir.path().join("policy.json");
        fs::write(&policy, serde_json::to_vec(&json).unwrap()).unwrap();
        let v1 = TestDisk::new(dir.path(), "v1", 1 << 20, 1);
        let reference = registry.reference(&format!("{REPO}:1"));
        v1.push(&registry, &format!("{REPO}:1"));
        skopeo_sign_copy(&key, &registries_d, &reference, false);

        let mut node = Node::new();
        node.config.insecure(&registry.host_port());
        node.config
            .set("policy", &format!("{:?}", policy.to_str().unwrap()))
            .set(
                "registries_d",
                &format!("{:?}", registries_d.to_str().unwrap()),
            );
        node.config.source("img", &reference).interval = interval.map(str::to_owned);
        let daemon = node.start();
        daemon.wait_for_current("img", &v1.digest);
        Setup {
            _key: key,
            registry,
            dir,
            v1,
            node,
            daemon,
        }
    }

    /// An unsigned version `name` pushed on the tag.
    fn push_unsigned(&self, name: &str, seed: u64) -> TestDisk {
        let disk = TestDisk::new(self.dir.path(), name, 1 << 20, seed);
        disk.push(&self.registry, &format!("{REPO}:1"));
        disk
    }

    fn rejected(&self) -> f64 {
        metric(&self.daemon, "bootsource_rejected_versions_total", &[])
    }

    fn refused_imports(&self) -> f64 {
        metric(
            &self.daemon,
            "bootsource_imports_total",
            &[("result", "rejected")],
        )
    }

    /// Waits until `n` imports in all were refused.
    fn wait_refused_imports(&self, n: f64) {
        self.daemon.wait_for(&format!("{n} refused imports"), || {
            (self.refused_imports() >= n).then_some(())
        });
    }
}

fn metric(daemon: &Daemon, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut all = vec![("source", "img")];
    all.extend_from_slice(labels);
    daemon.metrics().get(name, &all).unwrap_or(0.0)
}

#[test]
fn trust_the_daemon_keeps_the_current_version_when_a_new_one_is_refused() {
    let s = Setup::new(None);
    let exported = s
        .daemon
        .metrics()
        .get("bootsource_rejected_versions_total", &[("source", "img")]);
    assert_eq!(
        exported,
        Some(0.0),
        "exported from 0, for alerts on its increase"
    );

    // v2, unsigned, on the same tag: refused, v1 stays current, status and metric say so.
    let v2 = s.push_unsigned("v2", 2);
    s.node.poll();
    let status = s.daemon.wait_for("the refusal in status", || {
        let status = s.daemon.source_status("img");
        (!status["rejected"].is_null()).then_some(status)
    });
    assert_eq!(status["rejected"]["digest"], v2.digest.as_str());
    let reason = status["rejected"]["reason"].as_str().unwrap();
    assert!(reason.contains("requires a signature"), "{reason}");
    assert_eq!(
        current_digest(&status).as_deref(),
        Some(s.v1.digest.as_str())
    );
    assert_eq!(s.rejected(), 1.0);
    assert!(s.node.status_text().contains("signature policy"));
}

#[test]
fn trust_a_refused_digest_is_counted_once_however_often_it_is_polled() {
    // Polls every 2 s: every refused import is followed by another poll soon.
    let s = Setup::new(Some("2s"));
    let v2 = s.push_unsigned("v2", 2);
    s.wait_refused_imports(3.0);
    assert_eq!(s.rejected(), 1.0, "v2, refused 3 times");

    // v3 refused, then the tag back on v2: two distinct refused digests, however
    // they alternate.
    let v3 = s.push_unsigned("v3", 3);
    s.daemon.wait_for("v3 refused", || {
        let status = s.daemon.source_status("img");
        (status["rejected"]["digest"] == v3.digest.as_str()).then_some(())
    });
    v2.push(&s.registry, &format!("{REPO}:1"));
    s.daemon.wait_for("v2 refused again", || {
        let status = s.daemon.source_status("img");
        (status["rejected"]["digest"] == v2.digest.as_str()).then_some(())
    });
    let refused = s.refused_imports();
    s.wait_refused_imports(refused + 2.0);
    assert_eq!(s.rejected(), 2.0, "v2 and v3, each refused many times");
    let status = s.daemon.source_status("img");
    assert_eq!(
        current_digest(&status).as_deref(),
        Some(s.v1.digest.as_str())
    );
    let reason = status["rejected"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("requires a signature"), "{status}");
}
