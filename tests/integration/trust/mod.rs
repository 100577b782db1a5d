//! Trust: `bootsource import --policy` accepts exactly what `skopeo copy` with the same
//! `policy.json` and `registries.d` accepts, and refuses before a layer is read.
//!
//! Simple signatures are made by skopeo and gpg with keys made in the test; skopeo is
//! the oracle for every GPG case. Debian's skopeo cannot check sigstore, so the cosign
//! cases are signed by `openssl` in cosign's format and checked against what cosign
//! documents (see `common::signing`).
//!
//! One fixture ([`Case`]: a registry serving `os/img:1`, a lookaside store and
//! `registries.d`) serves every module: [`signatures`] (good, missing, forged and
//! replayed signatures, cosign), [`identity`] (every `signedIdentity` form), [`scopes`]
//! (which scope of the policy applies), [`layout`] (`oci:` layouts), [`lookaside`]
//! (an `http://` lookaside, per-namespace `registries.d` entries) and [`daemon`].

mod daemon;
mod identity;
mod layout;
mod lookaside;
mod scopes;
mod signatures;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::bootsource::{
    ImportReport, PLAIN_HTTP, assert_same_disk, disk_tar, expect_success, import, serve,
};
use crate::common::disk;
use crate::common::oci::{Artifact as _, Blob, Image, LayerType, Platform, Schema};
use crate::common::registry::Registry;
use crate::common::signing::{self, lookaside_path, skopeo_accepts};

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

    /// `HOST:PORT`, where the registry listens.
    fn host(&self) -> String {
        self.registry.host_port()
    }

    /// The name signatures carry: `HOST:PORT/os/img:1`.
    fn name(&self) -> String {
        self.source.strip_prefix("docker://").unwrap().to_owned()
    }

    /// The image pinned by its digest: `docker://HOST:PORT/os/img@sha256:…`.
    fn by_digest(&self) -> String {
        format!("docker://{}/{REPO}@{}", self.host(), self.image.digest())
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

    /// Rewrites `registries.d` as the single file `text`.
    fn registries_d(&self, text: &str) {
        fs::remove_dir_all(&self.registries_d).unwrap();
        fs::create_dir(&self.registries_d).unwrap();
        fs::write(self.registries_d.join("default.yaml"), text).unwrap();
    }

    /// A fresh target path in the case's directory.
    fn target(&self) -> PathBuf {
        fresh_target(self.dir.path())
    }

    /// `bootsource import` of `source` with `policy` and the case's `registries.d`,
    /// without an oracle (for what Debian's skopeo cannot judge).
    fn import(&self, source: &str, policy: &Path) -> Output {
        import(
            source,
            &self.target(),
            &[
                PLAIN_HTTP,
                "--policy",
                policy.to_str().unwrap(),
                "--registries-d",
                self.registries_d.to_str().unwrap(),
            ],
        )
    }

    /// [`judge_source`](Self::judge_source) of the image as served (by tag).
    fn judge(&self, policy: &Path) -> (bool, String) {
        self.judge_source(&self.source, policy)
    }

    /// Imports `source` (this case's image by some name) with `policy`; asserts skopeo
    /// decides the same, and that a refused import read no layer and left no target.
    /// Returns whether it was accepted and bootsource's stderr.
    fn judge_source(&self, source: &str, policy: &Path) -> (bool, String) {
        let target = self.target();
        let log_before = self.registry.log().len();
        let (accepted, output) = verdicts(source, &target, policy, &self.registries_d);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if accepted {
            let report = ImportReport::parse(&expect_success(&output, "import"));
            assert_same_disk(&self.raw, &target, &report);
        } else {
            let layer = self.image.layers[0].digest();
            assert!(
                !self.registry.log()[log_before..].contains(&format!("/blobs/{layer}")),
                "a layer was read before the policy refused the image:\n{stderr}"
            );
        }
        (accepted, stderr)
    }
}

/// A path in `dir` nothing has used yet (numbered, not counted from the directory's
/// entries: tests remove some of those).
fn fresh_target(dir: &Path) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("out-{n}.raw"))
}

/// bootsource's and skopeo's verdicts on `source` under `policy` and `registries_d`,
/// asserted equal; bootsource imports to `target`, which a refusal must not leave.
/// Returns the verdict and bootsource's output.
fn verdicts(source: &str, target: &Path, policy: &Path, registries_d: &Path) -> (bool, Output) {
    let output = import(
        source,
        target,
        &[
            PLAIN_HTTP,
            "--json",
            "--policy",
            policy.to_str().unwrap(),
            "--registries-d",
            registries_d.to_str().unwrap(),
        ],
    );
    let accepted = output.status.success();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !accepted {
        assert!(!target.exists(), "a refused import left {target:?}");
    }
    let (oracle, skopeo) = skopeo_accepts(policy, registries_d, source);
    assert_eq!(
        accepted, oracle,
        "{source}: bootsource accepted: {accepted}, skopeo accepted: {oracle}\n\
         bootsource: {stderr}\nskopeo: {skopeo}"
    );
    (accepted, output)
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

/// Checks every row's verdict: the expected one, bootsource's and skopeo's (asserted
/// equal by `judge`). Every row runs before a failure is reported, so one run shows
/// all the rows that disagree.
fn check_rows<R: std::fmt::Debug>(
    rows: &[R],
    expected: impl Fn(&R) -> bool,
    judge: impl Fn(&R) -> bool,
) {
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| judge(row)));
            match outcome {
                Ok(accepted) if accepted == expected(row) => None,
                Ok(accepted) => Some(format!(
                    "{row:?}: accepted {accepted}, expected {}",
                    expected(row)
                )),
                Err(panic) => Some(format!("{row:?}: {}", panic_text(&panic))),
            }
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n\n")
    );
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}
