//! Signing images as vendors do, and skopeo as the judge of a signature policy.
//!
//! GPG simple signing is done by the real tools: a throw-away `ed25519` key in a
//! private `GNUPGHOME` ([`GpgKey`]), `skopeo copy --sign-by` writing to a lookaside
//! staging directory, `skopeo standalone-sign` for a signature of a chosen manifest
//! under a chosen name, and `gpg --sign` for a signed message whose bytes a test can
//! alter. [`skopeo_accepts`] is the oracle: `skopeo copy` with the same `policy.json`
//! and `registries.d`, which checks the policy before it copies a layer.
//!
//! Debian's skopeo has sigstore switched off (see `/work/shared/notes/trust.md`), so
//! cosign signatures are made here as cosign makes them ([`CosignKey`]): `openssl`
//! signs the payload with an ECDSA P-256 key (SHA-256, DER), and the signature is
//! attached as the `sha256-<hex>.sig` tag with the `dev.cosignproject.cosign/signature`
//! annotation. Nothing here decides whether a signature is good.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::json;
use tempfile::TempDir;

use super::oci::sha256_digest;
use super::registry::Registry;
use super::tools;

/// A GPG key made for one test, in its own `GNUPGHOME`.
pub struct GpgKey {
    home: TempDir,
    /// The primary key's fingerprint.
    pub fingerprint: String,
    /// The armored public key (what a policy's `keyPath` names).
    pub public: PathBuf,
}

impl GpgKey {
    /// A new signing-only ed25519 key for `name`, without a passphrase.
    pub fn generate(name: &str) -> GpgKey {
        tools::require("gpg", "gnupg");
        let home = tempfile::tempdir().unwrap();
        let key = GpgKey {
            home,
            fingerprint: String::new(),
            public: PathBuf::new(),
        };
        let uid = format!("{name} <{name}@test.invalid>");
        key.gpg(&["--quick-gen-key", &uid, "ed25519", "sign", "never"]);
        let listing = String::from_utf8(key.gpg(&["--with-colons", "--list-keys"])).unwrap();
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .expect("gpg listed no fingerprint")
            .to_owned();
        let public = key.home.path().join("public.asc");
        let armored = key.gpg(&["--armor", "--export", &fingerprint]);
        fs::write(&public, armored).unwrap();
        GpgKey {
            fingerprint,
            public,
            ..key
        }
    }

    /// Runs gpg in this key's home, non-interactively.
    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let mut command = Command::new("gpg");
        command
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .arg("--homedir")
            .arg(self.home.path())
            .args(args);
        tools::run_command(&mut command).stdout
    }

    /// A command that signs with this key (`GNUPGHOME` set).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("GNUPGHOME", self.home.path());
        command
    }

    /// `skopeo standalone-sign`: a simple signature of `manifest` naming `reference`.
    pub fn standalone_sign(&self, manifest: &[u8], reference: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("manifest"), dir.path().join("signature"));
        fs::write(&input, manifest).unwrap();
        let mut command = self.command("skopeo");
        command
            .arg("standalone-sign")
            .arg("--output")
            .arg(&output)
            .arg(&input)
            .args([reference, &self.fingerprint]);
        tools::run_command(&mut command);
        fs::read(output).unwrap()
    }

    /// An OpenPGP signed message of `payload`, uncompressed, so a test can alter the
    /// payload's bytes in place.
    pub fn sign_uncompressed(&self, payload: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("payload"), dir.path().join("signed"));
        fs::write(&input, payload).unwrap();
        let (input, output) = (input.to_str().unwrap(), output.to_str().unwrap());
        self.gpg(&[
            "--local-user",
            &self.fingerprint.clone(),
            "--compress-algo",
            "none",
            "--output",
            output,
            "--sign",
            input,
        ]);
        fs::read(output).unwrap()
    }
}

/// A `registries.d` directory whose default lookaside (and staging) is the directory
/// `store`, reading cosign attachments when `sigstore` is set.
pub fn write_registries_d(dir: &Path, store: &Path, sigstore: bool) {
    fs::create_dir_all(dir).unwrap();
    let url = format!("file://{}", store.display());
    fs::write(
        dir.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside: {url}\n  lookaside-staging: {url}\n  use-sigstore-attachments: {sigstore}\n"
        ),
    )
    .unwrap();
}

/// Where simple signature `n` (from 1) of manifest `digest` of `repo` lives in a
/// lookaside `store`.
pub fn lookaside_path(store: &Path, repo: &str, digest: &str, n: usize) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    store
        .join(format!("{repo}@sha256={hex}"))
        .join(format!("signature-{n}"))
}

/// `skopeo copy --sign-by` of `reference` onto itself (with `--all`, every manifest of
/// an index too): the signatures land in the lookaside staging of `registries_d`.
pub fn skopeo_sign_copy(key: &GpgKey, registries_d: &Path, reference: &str, all: bool) {
    let mut command = key.command("skopeo");
    command
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg("--registries.d")
        .arg(registries_d)
        .args(["--sign-by", &key.fingerprint]);
    if all {
        command.arg("--all");
    }
    command.args([reference, reference]);
    tools::run_command(&mut command);
}

/// Whether `skopeo copy` with `policy` and `registries_d` accepts `reference` (copied
/// into a scratch layout that is removed afterwards), and skopeo's stderr.
pub fn skopeo_accepts(policy: &Path, registries_d: &Path, reference: &str) -> (bool, String) {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new("skopeo");
    command
        .arg("--policy")
        .arg(policy)
        // An OCI layout cannot hold signatures; the policy is checked at the source
        // before anything is copied either way.
        .args(["copy", "--remove-signatures", "--src-tls-verify=false"])
        .arg("--registries.d")
        .arg(registries_d)
        .arg(reference)
        .arg(format!("oci:{}:copy", scratch.path().display()));
    let output = tools::run_any_status(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

/// An ECDSA P-256 key pair in cosign's formats, made by `openssl`.
pub struct CosignKey {
    dir: TempDir,
    /// The PEM public key (what a policy's `keyPath` names).
    pub public: PathBuf,
}

impl CosignKey {
    pub fn generate() -> CosignKey {
        tools::require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("cosign.key");
        let public = dir.path().join("cosign.pub");
        tools::run(
            "openssl",
            [
                "ecparam".as_ref(),
                "-name".as_ref(),
                "prime256v1".as_ref(),
                "-genkey".as_ref(),
                "-noout".as_ref(),
                "-out".as_ref(),
                private.as_os_str(),
            ],
        );
        tools::run(
            "openssl",
            [
                "ec".as_ref(),
                "-in".as_ref(),
                private.as_os_str(),
                "-pubout".as_ref(),
                "-out".as_ref(),
                public.as_os_str(),
            ],
        );
        CosignKey { dir, public }
    }

    /// The base64 DER ECDSA signature of SHA-256(`payload`), as cosign annotates it.
    pub fn sign(&self, payload: &[u8]) -> String {
        let input = self.dir.path().join("payload");
        fs::write(&input, payload).unwrap();
        let der = tools::run(
            "openssl",
            [
                "dgst".as_ref(),
                "-sha256".as_ref(),
                "-sign".as_ref(),
                self.dir.path().join("cosign.key").as_os_str(),
                input.as_os_str(),
            ],
        );
        base64::engine::general_purpose::STANDARD.encode(der)
    }
}

/// The JSON a signature signs, as skopeo (`simple`) or cosign writes it.
pub fn payload(reference: &str, digest: &str, cosign: bool) -> Vec<u8> {
    let kind = if cosign {
        "cosign container image signature"
    } else {
        "atomic container signature"
    };
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": null,
    }))
    .unwrap()
}

/// Attaches cosign signatures (`(payload, base64 signature)`) to manifest `digest` of
/// `repo`: blobs, then the `sha256-<hex>.sig` manifest, as cosign pushes them.
pub fn attach_cosign(registry: &Registry, repo: &str, digest: &str, signed: &[(Vec<u8>, String)]) {
    let client = registry.client();
    let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    client.upload_blob(repo, &sha256_digest(config), config);
    let layers: Vec<_> = signed
        .iter()
        .map(|(payload, signature)| {
            client.upload_blob(repo, &sha256_digest(payload), payload);
            json!({
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "size": payload.len(),
                "digest": sha256_digest(payload),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": sha256_digest(config),
        },
        "layers": layers,
    }))
    .unwrap();
    let tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    client
        .put_manifest(
            repo,
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .expect(201, "pushing the cosign signature manifest");
}
