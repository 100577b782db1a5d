//! Where images come from: registry tags and digests, multi-arch indexes, OCI layouts,
//! basic auth, TLS with a private CA, plain HTTP, and an HTTP proxy (`tinyproxy`).
//!
//! Every registry and proxy is a real process on 127.0.0.1; the oracle for the imported
//! disk is `qemu-img compare`.

use std::fs;
use std::path::PathBuf;

use crate::common;
use crate::common::bootsource::{
    self as bs, PLAIN_HTTP, assert_same_disk, disk_tar, expect_error, expect_success, hint, import,
    import_command, import_json, layout, serve,
};
use crate::common::oci::{Artifact as _, Blob, Image, Index, LayerType, Layout, Platform, Schema};
use crate::common::proxy::Proxy;
use crate::common::registry::Registry;
use crate::common::{disk, tools};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;

/// A small qcow2 source disk (16 MiB virtual) and a place to import it.
struct Fixture {
    dir: TempDir,
    qcow2: PathBuf,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        let qcow2 = dir.path().join("source.qcow2");
        disk::write_raw_disk(&raw, 16 * MIB, seed);
        disk::qcow2(&raw, &qcow2, &["-c"]);
        Fixture { dir, qcow2 }
    }

    fn tar(&self) -> Vec<u8> {
        disk_tar("disk.img", &fs::read(&self.qcow2).unwrap())
    }

    /// A one-layer image of this disk for `platform`.
    fn image(&self, schema: Schema, platform: Platform) -> Image {
        let layer_type = match schema {
            Schema::Oci => LayerType::OciTarZstd,
            Schema::Docker => LayerType::DockerTarGzip,
        };
        Image::new(schema, platform, vec![Blob::layer(&self.tar(), layer_type)])
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("imported.raw")
    }

    /// Imports `source` with `extra` flags and checks the disk.
    fn import_ok(&self, source: &str, extra: &[&str]) -> bs::ImportReport {
        let _ = fs::remove_file(self.target());
        let report = import_json(source, &self.target(), extra);
        assert_same_disk(&self.qcow2, &self.target(), &report);
        report
    }

    /// Imports `source`, which must fail mentioning `phrases`, leaving no target.
    fn import_fails(&self, source: &str, extra: &[&str], phrases: &[&str]) -> String {
        let _ = fs::remove_file(self.target());
        let stderr = expect_error(&import(source, &self.target(), extra), phrases);
        assert!(!self.target().exists(), "a failed import left its target");
        stderr
    }
}

/// The platform this test runs on, in GOARCH spelling.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[test]
fn registry_by_tag_with_summary_and_json() {
    let fixture = Fixture::new(1);
    let registry = Registry::start();
    let image = fixture.image(Schema::Oci, Platform::linux_amd64());
    let source = serve(&registry, "os/fedora:41", &image);

    let report = fixture.import_ok(&source, &[PLAIN_HTTP]);
    assert_eq!(report.digest, image.digest());
    assert_eq!(report.manifest_digest, image.digest());
    assert_eq!(report.layer, image.layers[0].digest());
    assert_eq!(report.json["source"], source);
    assert_eq!(
        report.json["target"],
        fixture.target().display().to_string()
    );
    assert_eq!(report.passes, 1);

    // Without --json: one summary line with the digest, the format and the target.
    fs::remove_file(fixture.target()).unwrap();
    let output = import(&source, &fixture.target(), &[PLAIN_HTTP]);
    let stdout = expect_success(&output, "import");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    for part in [image.digest(), "qcow2", "16.0 MiB"] {
        assert!(stdout.contains(part), "summary lacks {part:?}: {stdout}");
    }
    assert!(stdout.contains(&fixture.target().display().to_string()));
    assert!(disk::qemu_img_compare(&fixture.qcow2, &fixture.target()));
}

/// A digest-pinned reference keeps importing the pinned image after the tag moves.
#[test]
fn digest_pinned_reference() {
    let old = Fixture::new(2);
    let new = Fixture::new(3);
    let registry = Registry::start();
    let old_image = old.image(Schema::Oci, Platform::linux_amd64());
    let new_image = new.image(Schema::Oci, Platform::linux_amd64());
    serve(&registry, "os/pinned:latest", &old_image);
    serve(&registry, "os/pinned:latest", &new_image);

    let pinned = registry.reference(&format!("os/pinned@{}", old_image.digest()));
    let report = old.import_ok(&pinned, &[PLAIN_HTTP]);
    assert_eq!(report.digest, old_image.digest());
    let report = new.import_ok(&registry.reference("os/pinned:latest"), &[PLAIN_HTTP]);
    assert_eq!(report.digest, new_image.digest());

    // A digest the registry does not have.
    let missing = format!("sha256:{}", "0".repeat(64));
    let unknown = registry.reference(&format!("os/pinned@{missing}"));
    old.import_fails(&unknown, &[PLAIN_HTTP], &["os/pinned"]);
}

/// amd64 and arm64 images hold different disks; the host's is the default and
/// `--platform linux/arm64` picks the other, from an OCI index and a Docker list.
#[test]
fn multi_arch_index_and_manifest_list_choose_the_platform() {
    let amd64 = Fixture::new(4);
    let arm64 = Fixture::new(5);
    let registry = Registry::start();
    for (schema, repo) in [
        (Schema::Oci, "os/multi-oci"),
        (Schema::Docker, "os/multi-docker"),
    ] {
        let index = Index::new(
            schema,
            vec![
                amd64.image(schema, Platform::linux_amd64()),
                arm64.image(schema, Platform::linux_arm64()),
            ],
        );
        let source = serve(&registry, &format!("{repo}:latest"), &index);

        let report = arm64.import_ok(&source, &[PLAIN_HTTP, "--platform", "linux/arm64"]);
        assert_eq!(report.digest, index.digest(), "{schema:?}");
        assert_eq!(
            report.manifest_digest,
            index.image(&Platform::linux_arm64()).digest()
        );
        assert_eq!(report.platform.as_deref(), Some("linux/arm64/v8"));

        let host = match host_architecture() {
            "arm64" => &arm64,
            _ => &amd64,
        };
        let report = host.import_ok(&source, &[PLAIN_HTTP]);
        let platform = report.platform.clone().unwrap();
        assert!(
            platform.starts_with(&format!("linux/{}", host_architecture())),
            "{schema:?}: default platform {platform}"
        );
        assert_eq!(report.digest, index.digest());
        assert_ne!(report.manifest_digest, index.digest());
    }
}

#[test]
fn no_matching_platform_lists_the_available_ones() {
    let fixture = Fixture::new(6);
    let registry = Registry::start();
    let index = Index::new(
        Schema::Oci,
        vec![
            fixture.image(Schema::Oci, Platform::linux_amd64()),
            fixture.image(Schema::Oci, Platform::linux_arm64()),
        ],
    );
    let source = serve(&registry, "os/multi:1", &index);
    let stderr = fixture.import_fails(
        &source,
        &[PLAIN_HTTP, "--platform", "linux/riscv64"],
        &["linux/riscv64", "linux/amd64", "linux/arm64"],
    );
    assert!(
        hint(&stderr).is_some_and(|h| h.contains("--platform")),
        "{stderr}"
    );
}

#[test]
fn oci_layout_by_tag_and_single_image() {
    let fixture = Fixture::new(7);
    let other = Fixture::new(8);
    let image = fixture.image(Schema::Oci, Platform::linux_amd64());

    // A layout with two tags: by tag works, the bare directory is ambiguous.
    let dir = fixture.dir.path().join("layout");
    let source = layout(&dir, "41", &image);
    Layout::create(&dir).add(&other.image(Schema::Oci, Platform::linux_amd64()), "40");
    let report = fixture.import_ok(&source, &[]);
    assert_eq!(report.digest, image.digest());
    let report = other.import_ok(&format!("oci:{}:40", dir.display()), &[]);
    assert_ne!(report.digest, image.digest());
    fixture.import_fails(
        &format!("oci:{}", dir.display()),
        &[],
        &["holds 2 images", "oci:DIR:TAG"],
    );
    fixture.import_fails(
        &format!("oci:{}:39", dir.display()),
        &[],
        &["39", "40", "41"],
    );

    // A layout holding one image: `oci:DIR` picks it.
    let single = fixture.dir.path().join("single");
    layout(&single, "latest", &image);
    let report = fixture.import_ok(&format!("oci:{}", single.display()), &[]);
    assert_eq!(report.digest, image.digest());

    // A layout holding a multi-arch index.
    let multi = fixture.dir.path().join("multi");
    let index = Index::new(
        Schema::Oci,
        vec![
            other.image(Schema::Oci, Platform::linux_arm64()),
            fixture.image(Schema::Oci, Platform::new("linux", host_architecture())),
        ],
    );
    let report = fixture.import_ok(&layout(&multi, "1", &index), &[]);
    assert_eq!(report.digest, index.digest());

    // Not a layout at all.
    fixture.import_fails(
        &format!("oci:{}", fixture.dir.path().display()),
        &[],
        &["oci-layout"],
    );
}

#[test]
fn basic_auth_with_auth_file_and_refused_anonymously() {
    let fixture = Fixture::new(9);
    let registry = Registry::with_basic_auth("alice", "s3cret pass");
    let source = serve(
        &registry,
        "os/private:1",
        &fixture.image(Schema::Oci, Platform::linux_amd64()),
    );
    let auth = fixture.dir.path().join("auth.json");
    registry.write_auth_json(&auth);
    let auth_arg = auth.display().to_string();

    fixture.import_ok(&source, &[PLAIN_HTTP, "--auth-file", &auth_arg]);

    // $REGISTRY_AUTH_FILE is the fallback for --auth-file.
    let _ = fs::remove_file(fixture.target());
    let mut command = import_command(&source, &fixture.target(), &[PLAIN_HTTP]);
    command.env("REGISTRY_AUTH_FILE", &auth);
    expect_success(&tools::run_any_status(&mut command), "import");
    assert!(disk::qemu_img_compare(&fixture.qcow2, &fixture.target()));

    // Anonymous: a clear refusal.
    let stderr = import_anonymously(&fixture, &source);
    assert!(
        is_auth_failure(&stderr),
        "no authentication failure named: {stderr}"
    );

    // Wrong password.
    let wrong = fixture.dir.path().join("wrong.json");
    common::auth::write_auth_json(
        &wrong,
        &registry.host_port(),
        &common::auth::Credentials::new("alice", "wrong"),
    );
    let stderr = fixture.import_fails(
        &source,
        &[PLAIN_HTTP, "--auth-file", &wrong.display().to_string()],
        &["os/private"],
    );
    assert!(is_auth_failure(&stderr), "{stderr}");

    // An auth file that does not parse is named.
    let broken = fixture.dir.path().join("broken.json");
    fs::write(&broken, b"{ not json").unwrap();
    fixture.import_fails(
        &source,
        &[PLAIN_HTTP, "--auth-file", &broken.display().to_string()],
        &["broken.json"],
    );
}

#[test]
fn bearer_token_auth_through_a_token_server() {
    let fixture = Fixture::new(10);
    let mut registry = Registry::start();
    let source = serve(
        &registry,
        "os/private:1",
        &fixture.image(Schema::Oci, Platform::linux_amd64()),
    );
    // From now on the registry wants Bearer tokens, which only the token server gives,
    // and only to alice.
    let alice = common::auth::Credentials::new("alice", "t0ken pass");
    let tokens =
        common::token::TokenServer::start(&fixture.dir.path().join("token"), alice.clone());
    registry.require_token_auth(&tokens);

    let stderr = import_anonymously(&fixture, &source);
    assert!(
        is_auth_failure(&stderr),
        "no authentication failure named: {stderr}"
    );
    assert!(
        tokens.refused() > 0,
        "the client never asked the token server"
    );

    let auth = fixture.dir.path().join("auth.json");
    common::auth::write_auth_json(&auth, &registry.host_port(), &alice);
    let _ = fs::remove_file(fixture.target());
    fixture.import_ok(
        &source,
        &[PLAIN_HTTP, "--auth-file", &auth.display().to_string()],
    );
    assert!(tokens.issued() > 0, "imported without a token");
}

/// Imports `source` without credentials: HOME and the XDG directories are emptied so
/// that no credentials from the machine's usual locations apply. Must fail; stderr.
fn import_anonymously(fixture: &Fixture, source: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let _ = fs::remove_file(fixture.target());
    let mut command = import_command(source, &fixture.target(), &[PLAIN_HTTP]);
    command
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("XDG_CONFIG_HOME", home.path());
    let stderr = expect_error(&tools::run_any_status(&mut command), &["os/private"]);
    assert!(!fixture.target().exists());
    stderr
}

/// Whether an error names the registry's refusal of the credentials.
fn is_auth_failure(stderr: &str) -> bool {
    let lower = stderr.to_lowercase();
    ["401", "unauthorized", "not authorized"]
        .iter()
        .any(|p| lower.contains(p))
}

/// The binary means to add "log in … or pass --auth-file" to a 401, but matches the
/// text "401"/"UNAUTHORIZED" while oci-client says "Not authorized: url …".
#[test]
fn anonymous_refusal_hints_at_the_auth_file() {
    let fixture = Fixture::new(14);
    let registry = Registry::with_basic_auth("alice", "s3cret pass");
    let source = serve(
        &registry,
        "os/private:1",
        &fixture.image(Schema::Oci, Platform::linux_amd64()),
    );
    let stderr = import_anonymously(&fixture, &source);
    assert!(
        hint(&stderr).is_some_and(|h| h.contains("--auth-file")),
        "{stderr}"
    );
}

#[test]
fn tls_registry_with_cert_dir_and_refused_without() {
    let fixture = Fixture::new(10);
    let registry = Registry::with_tls();
    let source = serve(
        &registry,
        "os/tls:1",
        &fixture.image(Schema::Oci, Platform::linux_amd64()),
    );
    let cert_dir = registry.cert_dir().display().to_string();
    fixture.import_ok(&source, &["--cert-dir", &cert_dir]);

    let stderr = fixture.import_fails(&source, &[], &["certificate"]);
    assert!(
        hint(&stderr).is_some_and(|h| h.contains("--cert-dir")),
        "{stderr}"
    );

    // A CA directory with the wrong CA is no better.
    let wrong = fixture.dir.path().join("wrong-ca");
    fs::create_dir(&wrong).unwrap();
    common::tls::TestCa::generate(&fixture.dir.path().join("other-ca"));
    fs::copy(
        fixture.dir.path().join("other-ca/cert-dir/ca.crt"),
        wrong.join("ca.crt"),
    )
    .unwrap();
    fixture.import_fails(
        &source,
        &["--cert-dir", &wrong.display().to_string()],
        &["certificate"],
    );

    // --tls-verify=false accepts the unknown CA, as skopeo's does.
    fixture.import_ok(&source, &[PLAIN_HTTP]);
}

#[test]
fn plain_http_registry_needs_tls_verify_false() {
    let fixture = Fixture::new(11);
    let registry = Registry::start();
    let source = serve(
        &registry,
        "os/plain:1",
        &fixture.image(Schema::Oci, Platform::linux_amd64()),
    );
    fixture.import_ok(&source, &[PLAIN_HTTP]);
    let stderr = fixture.import_fails(&source, &[], &["os/plain"]);
    assert!(hint(&stderr).is_some(), "no hint: {stderr}");
}

#[test]
fn unreachable_registry_and_unknown_repository() {
    let fixture = Fixture::new(12);
    let mut registry = Registry::start();
    let source = registry.reference("os/nothing:1");
    fixture.import_fails(&source, &[PLAIN_HTTP], &["os/nothing"]);
    registry.stop();
    let stderr = fixture.import_fails(&source, &[PLAIN_HTTP], &["os/nothing"]);
    assert!(
        hint(&stderr).is_some_and(|h| h.contains("reachable")),
        "{stderr}"
    );
}

/// Requests go through `HTTP_PROXY` (tinyproxy logs each one), `NO_PROXY` bypasses it,
/// and a dead proxy fails the import: so the proxy really is in the path. HTTPS goes
/// through `HTTPS_PROXY` with CONNECT.
#[test]
fn http_and_https_proxy_from_the_environment() {
    let fixture = Fixture::new(13);
    let registry = Registry::start();
    let image = fixture.image(Schema::Oci, Platform::linux_amd64());
    let source = serve(&registry, "os/proxied:1", &image);
    let proxy = Proxy::start();

    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let _ = fs::remove_file(fixture.target());
        let mut command = import_command(&source, &fixture.target(), extra);
        for (key, value) in env {
            command.env(key, value);
        }
        tools::run_any_status(&mut command)
    };

    let output = run(&[("HTTP_PROXY", &proxy.url())], &[PLAIN_HTTP]);
    expect_success(&output, "import through the proxy");
    assert!(disk::qemu_img_compare(&fixture.qcow2, &fixture.target()));
    let requests = proxy.requests();
    let layer_url = format!(
        "GET {}/v2/os/proxied/blobs/{}",
        registry.url(),
        image.layers[0].digest()
    );
    assert!(
        requests.iter().any(|r| r.starts_with(&layer_url)),
        "the layer did not come through the proxy: {requests:#?}"
    );

    // A proxy nobody listens on: the import fails (so the variable is honoured) …
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    expect_error(&run(&[("HTTP_PROXY", &dead)], &[PLAIN_HTTP]), &[]);
    assert!(!fixture.target().exists());
    // … unless NO_PROXY exempts the registry.
    let output = run(
        &[("HTTP_PROXY", &dead), ("NO_PROXY", "127.0.0.1")],
        &[PLAIN_HTTP],
    );
    expect_success(&output, "import with NO_PROXY");

    // HTTPS through CONNECT.
    let tls = Registry::with_tls();
    let tls_source = serve(&tls, "os/proxied:1", &image);
    let _ = fs::remove_file(fixture.target());
    let mut command = import_command(
        &tls_source,
        &fixture.target(),
        &["--cert-dir", &tls.cert_dir().display().to_string()],
    );
    command.env("HTTPS_PROXY", proxy.url());
    expect_success(
        &tools::run_any_status(&mut command),
        "import through CONNECT",
    );
    assert!(disk::qemu_img_compare(&fixture.qcow2, &fixture.target()));
    let connect = format!("CONNECT {}", tls.host_port());
    assert!(
        proxy.requests().iter().any(|r| r.starts_with(&connect)),
        "no CONNECT to the TLS registry: {:#?}",
        proxy.requests()
    );
}
