//! `bootsource inspect`: the facts of an image and its disk without importing it —
//! digests, platform, layers, the disk's name, format, virtual size and qcow2 header —
//! checked against what the test built and what `qemu-img info` says.

use std::fs;
use std::path::PathBuf;

use crate::common;
use crate::common::bootsource::{
    PLAIN_HTTP, disk_tar, expect_error, expect_success, image, inspect, inspect_json,
    platform_string, serve,
};
use crate::common::disk;
use crate::common::oci::{Artifact as _, Blob, Image, Index, LayerType, Platform, Schema, Tar};
use crate::common::registry::Registry;
use serde_json::Value;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;

struct Fixture {
    dir: TempDir,
    raw: PathBuf,
}

impl Fixture {
    /// An 8 MiB raw disk of mixed data.
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        disk::write_raw_disk(&raw, 8 * MIB, seed);
        Fixture { dir, raw }
    }

    fn qcow2(&self, options: &[&str]) -> Vec<u8> {
        let path = self.dir.path().join("source.qcow2");
        disk::qcow2(&self.raw, &path, options);
        fs::read(path).unwrap()
    }
}

fn layers(json: &Value) -> &Vec<Value> {
    json["layers"].as_array().expect("layers")
}

#[test]
fn qcow2_zstd_extended_l2_facts() {
    let fixture = Fixture::new(1);
    let qcow2 = fixture.qcow2(&[
        "-c",
        "-o",
        "compression_type=zstd,extended_l2=on,cluster_size=128k",
    ]);
    let image = image(&disk_tar("fedora.qcow2", &qcow2), LayerType::OciTarZstd);
    let registry = Registry::start();
    let source = serve(&registry, "os/fedora:41", &image);

    let json = inspect_json(&source, &[PLAIN_HTTP]);
    assert_eq!(json["source"], source);
    assert_eq!(json["digest"], image.digest());
    assert_eq!(json["manifest_digest"], image.digest());
    let layers = layers(&json);
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["digest"], image.layers[0].digest());
    assert_eq!(layers[0]["size"], image.layers[0].size());
    assert_eq!(layers[0]["media_type"], image.layers[0].media_type());
    let disk = &json["disk"];
    assert_eq!(disk["layer"], image.layers[0].digest());
    assert_eq!(disk["name"], "fedora.qcow2");
    assert_eq!(disk["file_size"], qcow2.len() as u64);
    assert_eq!(disk["format"], "qcow2");
    assert_eq!(disk["virtual_size"], 8 * MIB);
    assert_eq!(disk["qcow2"]["version"], 3);
    assert_eq!(disk["qcow2"]["cluster_size"], 128 << 10);
    assert_eq!(disk["qcow2"]["compression"], "zstd");
    assert_eq!(disk["qcow2"]["extended_l2"], true);

    // The text form says the same.
    let text = expect_success(&inspect(&source, &[PLAIN_HTTP]), "inspect");
    for part in [
        image.digest(),
        "disk/fedora.qcow2",
        "qcow2",
        "8388608 bytes",
        "extended L2",
    ] {
        assert!(text.contains(part), "inspect text lacks {part:?}:\n{text}");
    }
}

#[test]
fn qcow2_version_2_deflate_and_raw_facts() {
    let fixture = Fixture::new(2);
    let registry = Registry::start();
    let v2 = fixture.qcow2(&["-o", "compat=0.10,cluster_size=4096"]);
    let source = serve(
        &registry,
        "os/v2:1",
        &image(&disk_tar("disk.img", &v2), LayerType::OciTarGzip),
    );
    let disk = inspect_json(&source, &[PLAIN_HTTP])["disk"].clone();
    assert_eq!(disk["qcow2"]["version"], 2);
    assert_eq!(disk["qcow2"]["cluster_size"], 4096);
    assert_eq!(disk["qcow2"]["compression"], "deflate");
    assert_eq!(disk["qcow2"]["extended_l2"], false);
    assert_eq!(disk["virtual_size"], 8 * MIB);

    let raw = fs::read(&fixture.raw).unwrap();
    let source = serve(
        &registry,
        "os/raw:1",
        &image(&disk_tar("disk.qcow2", &raw), LayerType::OciTar),
    );
    let disk = inspect_json(&source, &[PLAIN_HTTP])["disk"].clone();
    assert_eq!(disk["format"], "raw");
    assert_eq!(disk["virtual_size"], 8 * MIB);
    assert_eq!(disk["file_size"], 8 * MIB);
    assert_eq!(disk["qcow2"], Value::Null);
}

#[test]
fn multi_arch_platform_and_digests() {
    let fixture = Fixture::new(3);
    let tar = disk_tar("disk.img", &fixture.qcow2(&[]));
    let index = Index::new(
        Schema::Docker,
        vec![
            Image::new(
                Schema::Docker,
                Platform::linux_amd64(),
                vec![Blob::layer(&tar, LayerType::DockerTarGzip)],
            ),
            Image::new(
                Schema::Docker,
                Platform::linux_arm64(),
                vec![Blob::layer(&tar, LayerType::DockerTarGzip)],
            ),
        ],
    );
    let registry = Registry::start();
    let source = serve(&registry, "os/multi:1", &index);

    let json = inspect_json(&source, &[PLAIN_HTTP, "--platform", "linux/arm64"]);
    assert_eq!(json["digest"], index.digest());
    assert_eq!(
        json["manifest_digest"],
        index.image(&Platform::linux_arm64()).digest()
    );
    assert_eq!(
        platform_string(&json["platform"]).as_deref(),
        Some("linux/arm64/v8")
    );
    let json = inspect_json(&source, &[PLAIN_HTTP, "--platform", "linux/amd64"]);
    assert_eq!(
        json["manifest_digest"],
        index.image(&Platform::linux_amd64()).digest()
    );
    let stderr = expect_error(
        &inspect(&source, &[PLAIN_HTTP, "--platform", "windows/amd64"]),
        &["windows/amd64", "linux/arm64/v8"],
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

/// Layers are listed bottom first, and the disk's layer is the one that holds it.
#[test]
fn layer_count_and_the_disk_layer() {
    let fixture = Fixture::new(4);
    let disk_layer = Blob::layer(
        &disk_tar("disk.img", &fixture.qcow2(&[])),
        LayerType::OciTarGzip,
    );
    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![
            disk_layer.clone(),
            Blob::layer(
                &Tar::new().file("etc/os-release", b"ID=test\n").finish(),
                LayerType::OciTar,
            ),
            Blob::layer(
                &Tar::new().file("etc/motd", b"hello\n").finish(),
                LayerType::OciTarZstd,
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let source = common::bootsource::layout(dir.path(), "1", &image);
    let json = inspect_json(&source, &[]);
    let listed: Vec<&str> = layers(&json)
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let built: Vec<&str> = image.layers.iter().map(Blob::digest).collect();
    assert_eq!(listed, built);
    assert_eq!(json["disk"]["layer"], disk_layer.digest());
}

/// Inspect takes the registry flags: credentials, CA, and fails as import does.
#[test]
fn registry_flags_and_errors() {
    let fixture = Fixture::new(5);
    let image = image(
        &disk_tar("disk.img", &fixture.qcow2(&["-c"])),
        LayerType::OciTarGzip,
    );
    let registry = Registry::builder().basic_auth("bob", "pw").tls().start();
    let source = serve(&registry, "os/private:1", &image);
    let auth = fixture.dir.path().join("auth.json");
    registry.write_auth_json(&auth);
    let cert_dir = registry.cert_dir().display().to_string();
    let auth = auth.display().to_string();

    let json = inspect_json(&source, &["--cert-dir", &cert_dir, "--auth-file", &auth]);
    assert_eq!(json["digest"], image.digest());
    assert_eq!(json["disk"]["format"], "qcow2");

    expect_error(&inspect(&source, &["--auth-file", &auth]), &["certificate"]);

    let no_disk = common::oci::Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(
            &Tar::new().file("etc/hostname", b"x\n").finish(),
            LayerType::OciTarGzip,
        )],
    );
    let source = serve(&registry, "os/empty:1", &no_disk);
    expect_error(
        &inspect(&source, &["--cert-dir", &cert_dir, "--auth-file", &auth]),
        &["no disk"],
    );
}
