//! Trust: `bootsource import --policy` accepts exactly what `skopeo copy` with the same
//! `policy.json` and `registries.d` accepts, and refuses before a layer is read.
//!
//! Simple signatures are made by skopeo and gpg with keys made in the test; skopeo is
//! the oracle for every GPG case. Debian's skopeo cannot check sigstore, so the cosign
//! cases are signed by `openssl` in cosign's format and checked against what cosign
//! documents (see `common::signing`).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::bootsource::{
    ImportReport, PLAIN_HTTP, assert_same_disk, disk_tar, expect_error, expect_success, import,
    inspect_json, serve,
};
use crate::common::daemon::{Daemon, Node, TestDisk, current_digest};
use crate::common::disk;
use crate::common::oci::{Artifact as _, Blob, Image, Index, LayerType, Platform, Schema};
use crate::common::registry::Registry;
use crate::common::signing::{
    self, CosignKey, GpgKey, lookaside_path, skopeo_accepts, skopeo_sign_copy,
};

const REPO: &str = "os/img";

/// A registry serving `os/img:1`, a lookaside store and `registries.d` for it.
struct Case {
    dir: TempDir,
    registry: Registry,
    raw: PathBuf,
    image: Image,
    source: String,
    store: PathBuf,
    registries_d: PathBuf,
}

impl Case {
    fn new() -> Case {
        Case::with_sigstore(false)
    }

    fn with_sigstore(sigstore: bool) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        disk::write_raw_disk(&raw, 1 << 20, 7);
        let image = disk_image(&raw, Platform::linux_amd64());
        let registry = Registry::start();
        let source = serve(&registry, &format!("{REPO}:1"), &image);
        let store = dir.path().join("sigstore");
        let registries_d = dir.path().join("registries.d");
        signing::write_registries_d(&registries_d, &store, sigstore);
        Case {
            dir,
            registry,
            raw,
            image,
            source,
            store,
            registries_d,
        }
    }

    /// The name signatures carry: `HOST:PORT/os/img:1`.
    fn name(&self) -> String {
        self.source.strip_prefix("docker://").unwrap().to_owned()
    }

    /// Puts simple signature `n` of manifest `digest` into the lookaside store.
    fn plant(&self, digest: &str, n: usize, signature: &[u8]) {
        let path = lookaside_path(&self.store, REPO, digest, n);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, signature).unwrap();
    }

    fn policy(&self, policy: Value) -> PathBuf {
        let path = self.dir.path().join("policy.json");
        fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
        path
    }

    /// Imports with `policy`; asserts skopeo decides the same, and that a refused
    /// import read no layer and left no target. Returns whether it was accepted and
    /// bootsource's stderr.
    fn judge(&self, policy: &Path) -> (bool, String) {
        let target = self.dir.path().join(format!(
            "out-{}.raw",
            fs::read_dir(self.dir.path()).unwrap().count()
        ));
        let log_before = self.registry.log().len();
        let output = import(
            &self.source,
            &target,
            &[
                PLAIN_HTTP,
                "--json",
                "--policy",
                policy.to_str().unwrap(),
                "--registries-d",
                self.registries_d.to_str().unwrap(),
            ],
        );
        let accepted = output.status.success();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if accepted {
            let report = ImportReport::parse(&expect_success(&output, "import"));
            assert_same_disk(&self.raw, &target, &report);
        } else {
            assert!(!target.exists(), "a refused import left {target:?}");
            let layer = self.image.layers[0].digest();
            assert!(
                !self.registry.log()[log_before..].contains(&format!("/blobs/{layer}")),
                "a layer was read before the policy refused the image:\n{stderr}"
            );
        }
        let (oracle, skopeo) = skopeo_accepts(policy, &self.registries_d, &self.source);
        assert_eq!(
            accepted, oracle,
            "bootsource accepted: {accepted}, skopeo accepted: {oracle}\n\
             bootsource: {stderr}\nskopeo: {skopeo}"
        );
        (accepted, stderr)
    }
}

fn disk_image(raw: &Path, platform: Platform) -> Image {
    let tar = disk_tar("disk.img", &fs::read(raw).unwrap());
    Image::new(
        Schema::Oci,
        platform,
        vec![Blob::layer(&tar, LayerType::OciTarGzip)],
    )
}

/// A policy: `default` for everything, `scopes` for the docker transport.
fn policy(default: Value, scopes: Value) -> Value {
    json!({"default": [default], "transports": {"docker": scopes}})
}

fn signed_by(key: &Path) -> Value {
    json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": key})
}

fn reject() -> Value {
    json!({"type": "reject"})
}

fn anything() -> Value {
    json!({"type": "insecureAcceptAnything"})
}

fn refused(case: &Case, policy: &Path, phrases: &[&str]) {
    let (accepted, stderr) = case.judge(policy);
    assert!(!accepted, "accepted, expected a refusal");
    let mut all = vec!["signature policy"];
    all.extend_from_slice(phrases);
    expect_error_text(&stderr, &all);
}

fn expect_error_text(stderr: &str, phrases: &[&str]) {
    let lower = stderr.to_lowercase();
    for phrase in phrases {
        assert!(
            lower.contains(&phrase.to_lowercase()),
            "stderr lacks {phrase:?}:\n{stderr}"
        );
    }
}

#[test]
fn trust_signed_by_skopeo_is_accepted_and_inspect_names_the_signer() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    skopeo_sign_copy(&key, &case.registries_d, &case.source, false);
    assert!(lookaside_path(&case.store, REPO, case.image.digest(), 1).is_file());
    let policy = case.policy(policy(
        reject(),
        json!({ case.name(): [signed_by(&key.public)] }),
    ));
    assert!(case.judge(&policy).0);

    let json = inspect_json(
        &case.source,
        &[
            PLAIN_HTTP,
            "--policy",
            policy.to_str().unwrap(),
            "--registries-d",
            case.registries_d.to_str().unwrap(),
        ],
    );
    let trust = &json["trust"];
    assert_eq!(trust["accepted"], true, "{json:#}");
    assert_eq!(trust["signatures"][0]["signer"], key.fingerprint.as_str());
    assert_eq!(trust["signatures"][0]["verified"], true);
    assert_eq!(trust["signatures"][0]["identity"], case.name());
}

#[test]
fn trust_unsigned_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(&case, &policy, &["requires a signature"]);
}

#[test]
fn trust_another_key_is_refused() {
    let case = Case::new();
    let (vendor, intruder) = (GpgKey::generate("vendor"), GpgKey::generate("intruder"));
    skopeo_sign_copy(&intruder, &case.registries_d, &case.source, false);
    let policy = case.policy(policy(signed_by(&vendor.public), json!({})));
    refused(&case, &policy, &["not trust"]);
}

#[test]
fn trust_a_signature_for_another_image_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let other = format!("{}/os/other:1", case.registry.host_port());
    let signature = key.standalone_sign(case.image.manifest.bytes(), &other);
    case.plant(case.image.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(
        &case,
        &policy,
        &["signedIdentity does not accept", "os/other:1"],
    );
}

#[test]
fn trust_a_tampered_payload_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    // Signed for another digest, then altered in place to name this image's.
    let honest = signing::payload(&case.name(), &digest_like(case.image.digest()), false);
    let mut signature = key.sign_uncompressed(&honest);
    let at = find(&signature, &digest_like(case.image.digest())).expect("payload in the clear");
    let digest = case.image.digest().as_bytes();
    signature[at..at + digest.len()].copy_from_slice(digest);
    case.plant(case.image.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(&case, &policy, &["does not verify"]);
}

#[test]
fn trust_a_replayed_older_signature_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let old = case.image.clone();
    let signature = key.standalone_sign(old.manifest.bytes(), &case.name());
    // Version 2 under the same tag, carrying version 1's (valid) signature.
    let raw2 = case.dir.path().join("v2.raw");
    disk::write_raw_disk(&raw2, 1 << 20, 8);
    let new = disk_image(&raw2, Platform::linux_amd64());
    serve(&case.registry, &format!("{REPO}:1"), &new);
    case.plant(new.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    let (accepted, stderr) = case.judge(&policy);
    assert!(!accepted);
    expect_error_text(&stderr, &[old.digest(), "not"]);
}

#[test]
fn trust_a_reject_scope_refuses() {
    let case = Case::new();
    let scope = format!("{}/os", case.registry.host_port());
    let policy = case.policy(policy(anything(), json!({ scope: [reject()] })));
    refused(&case, &policy, &["rejects every image"]);
}

#[test]
fn trust_an_accept_anything_scope_under_a_stricter_default() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let policy = case.policy(policy(
        signed_by(&key.public),
        json!({ format!("{}/os/img", case.registry.host_port()): [anything()] }),
    ));
    assert!(case.judge(&policy).0);
    // A narrower scope for another repository does not apply.
    let other = case.policy(policy_for_other(&case, &key));
    assert!(!case.judge(&other).0);
}

fn policy_for_other(case: &Case, key: &GpgKey) -> Value {
    policy(
        signed_by(&key.public),
        json!({ format!("{}/os/other", case.registry.host_port()): [anything()] }),
    )
}

#[test]
fn trust_a_multi_arch_index_signed_with_its_platform_manifests() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let arm = disk_image(&case.raw, Platform::linux_arm64());
    let index = Index::new(Schema::Oci, vec![case.image.clone(), arm]);
    serve(&case.registry, &format!("{REPO}:1"), &index);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));

    // Only the index signed: skopeo checks the platform manifest it copies, and so do we.
    let signature = key.standalone_sign(index.manifest.bytes(), &case.name());
    case.plant(index.digest(), 1, &signature);
    assert!(!case.judge(&policy).0);

    // What `skopeo copy --all --sign-by` makes: the index and every manifest signed.
    skopeo_sign_copy(&key, &case.registries_d, &case.source, true);
    assert!(lookaside_path(&case.store, REPO, case.image.digest(), 1).is_file());
    assert!(case.judge(&policy).0);
}

#[test]
fn trust_cosign_signatures_are_checked_for_key_digest_and_payload() {
    let case = Case::with_sigstore(true);
    let (key, other) = (CosignKey::generate(), CosignKey::generate());
    let sigstore = |key: &CosignKey| {
        policy(
            reject(),
            json!({ case.name(): [{
                "type": "sigstoreSigned", "keyPath": key.public,
                "signedIdentity": {"type": "matchRepository"},
            }] }),
        )
    };
    let digest = case.image.digest();
    let payload = signing::payload(&case.name(), digest, true);
    let signature = key.sign(&payload);
    let attach = |signed: &[(Vec<u8>, String)]| {
        signing::attach_cosign(&case.registry, REPO, digest, signed);
    };
    let import_with = |policy: &Value| {
        let path = case.policy(policy.clone());
        let target = case.dir.path().join("cosign.raw");
        let _ = fs::remove_file(&target);
        import(
            &case.source,
            &target,
            &[
                PLAIN_HTTP,
                "--policy",
                path.to_str().unwrap(),
                "--registries-d",
                case.registries_d.to_str().unwrap(),
            ],
        )
    };

    // Unsigned.
    expect_error(&import_with(&sigstore(&key)), &["requires a signature"]);
    // Signed with the policy's key.
    attach(&[(payload.clone(), signature.clone())]);
    expect_success(&import_with(&sigstore(&key)), "import");
    // The same signature under a policy trusting another key.
    expect_error(&import_with(&sigstore(&other)), &["does not verify"]);
    // A tampered payload (another identity) with the original signature.
    let tampered = signing::payload(
        &format!("{}/os/evil:1", case.registry.host_port()),
        digest,
        true,
    );
    attach(&[(tampered, signature.clone())]);
    expect_error(&import_with(&sigstore(&key)), &["does not verify"]);
    // A valid signature of another (older) digest, replayed.
    let old = signing::payload(&case.name(), &digest_like(digest), true);
    attach(&[(old.clone(), key.sign(&old))]);
    expect_error(&import_with(&sigstore(&key)), &["signs manifest"]);
}

/// A digest of the same length that is not `digest`.
fn digest_like(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let flipped: String = hex
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    format!("sha256:{flipped}")
}

fn find(haystack: &[u8], needle: &str) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
}

#[test]
fn trust_the_daemon_keeps_the_current_version_when_a_new_one_is_refused() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let key = GpgKey::generate("vendor");
    let (store, registries_d) = (dir.path().join("sigstore"), dir.path().join("registries.d"));
    signing::write_registries_d(&registries_d, &store, false);
    let json = policy(signed_by(&key.public), json!({}));
    let policy = dir.path().join("policy.json");
    fs::write(&policy, serde_json::to_vec(&json).unwrap()).unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 1 << 20, 1);
    let v2 = TestDisk::new(dir.path(), "v2", 1 << 20, 2);
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
    node.config.source("img", &reference);
    let daemon = node.start();
    daemon.wait_for_current("img", &v1.digest);
    let exported = daemon
        .metrics()
        .get("bootsource_rejected_versions_total", &[("source", "img")]);
    assert_eq!(
        exported,
        Some(0.0),
        "exported from 0, for alerts on its increase"
    );

    // v2, unsigned, on the same tag: refused, v1 stays current, status and metric say so.
    v2.push(&registry, &format!("{REPO}:1"));
    node.poll();
    let status = daemon.wait_for("the refusal in status", || {
        let s = daemon.source_status("img");
        (!s["rejected"].is_null()).then_some(s)
    });
    assert_eq!(status["rejected"]["digest"], v2.digest.as_str());
    let reason = status["rejected"]["reason"].as_str().unwrap();
    assert!(reason.contains("requires a signature"), "{reason}");
    assert_eq!(current_digest(&status).as_deref(), Some(v1.digest.as_str()));
    assert_eq!(rejected(&daemon), 1.0);
    assert!(node.status_text().contains("signature policy"));
}

fn rejected(daemon: &Daemon) -> f64 {
    daemon
        .metrics()
        .value("bootsource_rejected_versions_total", &[("source", "img")])
}
