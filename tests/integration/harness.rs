//! Tests of the test harness itself (`common/`): the registry process, pushing with
//! every byte preserved, the real-tools path, the disks, tars and layouts. No bootsource
//! binary is involved; when these fail, fix the harness before reading other failures.

use std::fs;
use std::io::Read as _;
use std::process::Command;

use crate::common;
use crate::common::client::RegistryClient;
use crate::common::oci::{
    self, Artifact, Blob, GnuTarFormat, Image, Index, LayerType, Layout, LongNames, Platform,
    Schema, Tar,
};
use crate::common::registry::Registry;
use crate::common::{disk, push, tools, vendor};
use flate2::read::GzDecoder;

/// One tar entry as read back: name, type flag, uid, size, link target.
#[derive(Debug, PartialEq)]
struct Entry {
    name: String,
    kind: u8,
    uid: u64,
    size: u64,
    link: Option<String>,
}

/// Reads entries with the `tar` crate until the end or the first error (returned too).
fn read_entries(tar: &[u8]) -> (Vec<Entry>, Option<String>) {
    let mut archive = tar::Archive::new(tar);
    let mut entries = Vec::new();
    let iter = match archive.entries() {
        Ok(iter) => iter,
        Err(e) => return (entries, Some(e.to_string())),
    };
    for entry in iter {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return (entries, Some(e.to_string())),
        };
        let header = entry.header();
        entries.push(Entry {
            name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            kind: header.entry_type().as_byte(),
            uid: header.uid().unwrap(),
            size: header.size().unwrap(),
            link: entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
        });
    }
    (entries, None)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn small_disk_tar(seed: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    disk::write_raw_disk(&raw, 1 << 20, seed);
    Tar::new()
        .dir("disk/")
        .file("disk/disk.img", &fs::read(&raw).unwrap())
        .finish()
}

/// Fetches the manifest and every blob of `image` back and compares bytes and digests.
fn assert_stored_as_built(client: &RegistryClient, repo: &str, tag: &str, image: &Image) {
    let fetched = client
        .get_manifest(repo, tag)
        .expect(200, "fetching the manifest");
    assert_eq!(fetched.digest(), Some(image.digest()));
    assert_eq!(fetched.content_type(), Some(image.manifest.media_type()));
    assert_eq!(fetched.body, image.manifest.bytes());
    for blob in image.parts() {
        let fetched = client
            .get_blob(repo, blob.digest())
            .expect(200, "fetching a blob");
        assert_eq!(fetched.body, blob.bytes(), "blob {} changed", blob.digest());
        assert_eq!(oci::sha256_digest(&fetched.body), blob.digest());
    }
}

#[test]
fn registry_starts_stops_and_restarts_on_the_same_port() {
    let mut registry = Registry::start();
    let client = registry.client();
    let ping = client.ping().unwrap().expect(200, "ping");
    assert_eq!(
        ping.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(&small_disk_tar(1), LayerType::OciTarGzip)],
    );
    push::push(&registry, "os/restart", "v1", &image);

    let host_port = registry.host_port();
    registry.stop();
    assert!(!registry.is_running());
    assert!(client.ping().is_err(), "a stopped registry still answers");

    registry.restart();
    assert_eq!(registry.host_port(), host_port);
    client.ping().unwrap().expect(200, "ping after restart");
    assert_stored_as_built(&client, "os/restart", "v1", &image);

    let pid = registry.pid().unwrap();
    drop(registry);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "registry {pid} outlived its Drop"
    );
}

#[test]
fn rust_built_images_are_stored_byte_for_byte() {
    let registry = Registry::start();
    let client = registry.client();
    let tar = small_disk_tar(2);
    let layers = vec![
        Blob::layer(
            &Tar::new()
                .dir("etc/")
                .file("etc/os-release", b"ID=test\n")
                .finish(),
            LayerType::OciTar,
        ),
        Blob::layer(&tar, LayerType::OciTarGzip),
        Blob::layer(&tar, LayerType::OciTarZstd),
    ];
    assert_eq!(
        &layers[2].bytes()[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "zstd magic"
    );
    assert_eq!(&layers[1].bytes()[..2], &[0x1f, 0x8b], "gzip magic");
    let oci_image = Image::new(Schema::Oci, Platform::linux_amd64(), layers);
    let digest = push::push(&registry, "os/oci", "1", &oci_image);
    assert_eq!(digest, oci_image.digest());
    assert_stored_as_built(&client, "os/oci", "1", &oci_image);
    let by_digest = client
        .get_manifest("os/oci", &digest)
        .expect(200, "manifest by digest");
    assert_eq!(by_digest.body, oci_image.manifest.bytes());

    let docker_image = Image::new(
        Schema::Docker,
        Platform::linux_amd64(),
        vec![Blob::layer(&tar, LayerType::DockerTarGzip)],
    );
    push::push(&registry, "os/docker", "1", &docker_image);
    assert_stored_as_built(&client, "os/docker", "1", &docker_image);
    let manifest: serde_json::Value =
        serde_json::from_slice(docker_image.manifest.bytes()).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        oci::media_type::DOCKER_LAYER_GZIP
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        oci::media_type::DOCKER_CONFIG
    );
}

#[test]
fn a_multi_arch_tag_resolves_to_the_index_digest() {
    let registry = Registry::start();
    let client = registry.client();
    let tar = small_disk_tar(3);
    for (schema, layer_type, repo) in [
        (Schema::Oci, LayerType::OciTarZstd, "os/multi-oci"),
        (Schema::Docker, LayerType::DockerTarGzip, "os/multi-docker"),
    ] {
        let images = [
            Platform::linux_amd64(),
            Platform::linux_arm64(),
            Platform::new("linux", "s390x"),
        ]
        .into_iter()
        .map(|platform| Image::new(schema, platform, vec![Blob::layer(&tar, layer_type)]))
        .collect();
        let index = Index::new(schema, images);
        push::push(&registry, repo, "latest", &index);

        let head = client
            .head_manifest(repo, "latest")
            .expect(200, "HEAD on the tag");
        assert_eq!(head.digest(), Some(index.digest()));
        assert_eq!(head.content_type(), Some(index.manifest.media_type()));
        let fetched = client
            .get_manifest(repo, "latest")
            .expect(200, "GET the index");
        assert_eq!(fetched.body, index.manifest.bytes());
        let arm = index.image(&Platform::linux_arm64());
        assert_stored_as_built(&client, repo, arm.digest(), arm);
        let listed: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
        assert_eq!(listed["manifests"][1]["platform"]["variant"], "v8");
    }
}

#[test]
fn tampered_and_padded_blobs_are_served_as_built() {
    let registry = Registry::start();
    let client = registry.client();
    let tar = small_disk_tar(4);
    let padded =
        Blob::layer(&tar, LayerType::OciTarGzip).with_appended(b"garbage after the gzip member");
    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![padded.clone(), Blob::layer(&tar, LayerType::OciTarZstd)],
    )
    .tamper_layer(1, |bytes| bytes[100] ^= 0xff);
    push::push(&registry, "os/bad", "1", &image);

    let fetched = client
        .get_blob("os/bad", padded.digest())
        .expect(200, "padded blob");
    assert_eq!(
        oci::sha256_digest(&fetched.body),
        padded.digest(),
        "padding is part of the digest"
    );
    assert!(fetched.body.ends_with(b"garbage after the gzip member"));
    assert_eq!(
        gunzip(&fetched.body),
        tar,
        "the first gzip member is the whole tar"
    );

    let tampered = &image.layers[1];
    let fetched = client
        .get_blob("os/bad", tampered.digest())
        .expect(200, "tampered blob");
    assert_eq!(fetched.digest(), Some(tampered.digest()));
    assert_eq!(fetched.body, tampered.bytes());
    assert_ne!(oci::sha256_digest(&fetched.body), tampered.digest());
    let manifest = client.get_manifest("os/bad", "1").expect(200, "manifest");
    assert_eq!(manifest.digest(), Some(image.digest()));
}

#[test]
fn umoci_and_skopeo_make_a_gzip_layer_with_the_disk() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let qcow2 = dir.path().join("disk.qcow2");
    disk::write_raw_disk(&raw, 2 << 20, 5);
    disk::qcow2(&raw, &qcow2, &[]);
    let layout = dir.path().join("layout");
    vendor::umoci_container_disk(&layout, "41", &qcow2, "fedora.qcow2");
    vendor::skopeo_copy(
        &format!("oci:{}:41", layout.display()),
        &registry,
        "os/vendor:41",
    );

    let client = registry.client();
    let fetched = client
        .get_manifest("os/vendor", "41")
        .expect(200, "manifest");
    assert_eq!(
        fetched.digest(),
        Some(oci::sha256_digest(&fetched.body).as_str())
    );
    let manifest: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
    // umoci leaves out the optional `mediaType` field; the registry knows it from the push.
    assert_eq!(fetched.content_type(), Some(oci::media_type::OCI_MANIFEST));
    assert_eq!(manifest.get("mediaType"), None);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], oci::media_type::OCI_LAYER_GZIP);

    let layer = client
        .get_blob("os/vendor", layers[0]["digest"].as_str().unwrap())
        .expect(200, "layer");
    let tar = gunzip(&layer.body);
    let (entries, _end) = read_entries(&tar);
    let disk_entry = entries
        .iter()
        .find(|e| e.name == "disk/fedora.qcow2")
        .expect("disk/fedora.qcow2 in the layer");
    assert_eq!((disk_entry.kind, disk_entry.uid), (b'0', 107));
    assert_eq!(disk_entry.size, fs::metadata(&qcow2).unwrap().len());
    assert!(
        entries
            .iter()
            .any(|e| e.name.trim_end_matches('/') == "disk" && e.kind == b'5' && e.uid == 107)
    );
}

#[test]
fn basic_auth_registry_refuses_anonymous_and_accepts_the_credentials() {
    let registry = Registry::with_basic_auth("alice", "s3cret pass");
    let refused = registry.anonymous_client().ping().unwrap();
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic ")
    );
    let wrong = RegistryClient::new(
        &registry.url(),
        None,
        Some(common::auth::Credentials::new("alice", "wrong")),
    );
    assert_eq!(wrong.ping().unwrap().status, 401);
    registry
        .client()
        .ping()
        .unwrap()
        .expect(200, "ping with credentials");

    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(&small_disk_tar(6), LayerType::OciTarZstd)],
    );
    push::push(&registry, "os/private", "1", &image);
    assert_eq!(
        registry
            .anonymous_client()
            .get_manifest("os/private", "1")
            .status,
        401
    );
    assert_stored_as_built(&registry.client(), "os/private", "1", &image);

    let dir = tempfile::tempdir().unwrap();
    let auth_json = dir.path().join("auth.json");
    registry.write_auth_json(&auth_json);
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(&auth_json).unwrap()).unwrap();
    assert_eq!(
        written["auths"][registry.host_port()]["auth"],
        "YWxpY2U6czNjcmV0IHBhc3M="
    );
    // skopeo reads the file the way bootsource's --auth-file will.
    let inspect = tools::run_command(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", "--authfile"])
            .arg(&auth_json)
            .arg(registry.reference("os/private:1")),
    );
    assert_eq!(inspect.stdout, image.manifest.bytes());
}

#[test]
fn tls_registry_answers_with_the_generated_ca() {
    let registry = Registry::with_tls();
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    registry
        .client()
        .ping()
        .unwrap()
        .expect(200, "ping over TLS");
    let untrusting = RegistryClient::new(&registry.url(), None, None);
    assert!(
        untrusting.ping().is_err(),
        "the generated CA must not be trusted by default"
    );
    let plain = RegistryClient::new(&format!("http://{}", registry.host_port()), None, None);
    assert_ne!(
        plain.ping().map(|r| r.status).ok(),
        Some(200),
        "plain HTTP on a TLS port"
    );

    let cert_dir: Vec<_> = fs::read_dir(registry.cert_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cert_dir, ["ca.crt"]);
    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(&small_disk_tar(7), LayerType::OciTarGzip)],
    );
    push::push(&registry, "os/tls", "1", &image);
    let inspect = tools::run_command(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--cert-dir"])
            .arg(registry.cert_dir())
            .arg(registry.reference("os/tls:1")),
    );
    assert_eq!(inspect.stdout, image.manifest.bytes());
}

#[test]
fn raw_disks_are_deterministic_sparse_and_survive_qcow2() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let size = 3 * (1 << 20) + 512;
    disk::write_raw_disk(&path("a.raw"), size, 1);
    disk::write_raw_disk(&path("b.raw"), size, 1);
    disk::write_raw_disk(&path("c.raw"), size, 2);
    let a = fs::read(path("a.raw")).unwrap();
    assert_eq!(a.len() as u64, size);
    assert_eq!(a, fs::read(path("b.raw")).unwrap(), "same seed, same bytes");
    assert!(
        a[a.len() - 512..].iter().any(|&b| b != 0),
        "data in the last sector"
    );
    assert!(
        a.chunks(64 << 10).any(|c| c.iter().all(|&b| b == 0)),
        "zero chunks"
    );
    assert!(
        disk::allocated_bytes(&path("a.raw")) < size,
        "zero chunks are holes"
    );
    assert!(disk::qemu_img_compare(&path("a.raw"), &path("b.raw")));
    assert!(
        !disk::qemu_img_compare(&path("a.raw"), &path("c.raw")),
        "another seed, another disk"
    );

    for (name, options) in [
        ("plain.qcow2", &[][..]),
        ("deflate.qcow2", &["-c"][..]),
        (
            "zstd.qcow2",
            &["-c", "-o", "compression_type=zstd,cluster_size=2M"][..],
        ),
        ("v2.qcow2", &["-o", "compat=0.10,cluster_size=4096"][..]),
        (
            "subclusters.qcow2",
            &["-o", "extended_l2=on,cluster_size=128k"][..],
        ),
    ] {
        disk::qcow2(&path("a.raw"), &path(name), options);
        assert!(
            disk::qemu_img_compare(&path("a.raw"), &path(name)),
            "{name} differs from its source"
        );
        assert_eq!(disk::virtual_size(&path(name)), size);
        assert_eq!(disk::qemu_img_info(&path(name))["format"], "qcow2");
    }
    assert!(!disk::qemu_img_compare(&path("c.raw"), &path("zstd.qcow2")));
}

#[test]
fn tar_builder_writes_every_odd_entry() {
    let long = format!("disk/{}.img", "x".repeat(120));
    for long_names in [LongNames::Gnu, LongNames::Pax] {
        let tar = Tar::new()
            .long_names(long_names)
            .dir("disk/")
            .file("disk/disk.img", b"QFI\xfb")
            .file(&long, b"long")
            .symlink("disk/link", "disk.img")
            .hardlink("disk/hard", "disk/disk.img")
            .block_device("disk/sda", 8, 0)
            .char_device("disk/null", 1, 3)
            .fifo("disk/fifo")
            .file("disk/../escape", b"..")
            .file("/disk/absolute", b"/")
            .whiteout("disk/old.img")
            .opaque("disk")
            .owner(0, 0)
            .file("etc/hostname", b"outside disk/\n")
            .finish();
        assert_eq!(tar.len() % 512, 0);
        assert!(tar.ends_with(&[0; 1024]));
        let (entries, error) = read_entries(&tar);
        assert_eq!(error, None);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "disk/",
                "disk/disk.img",
                long.as_str(),
                "disk/link",
                "disk/hard",
                "disk/sda",
                "disk/null",
                "disk/fifo",
                "disk/../escape",
                "/disk/absolute",
                "disk/.wh.old.img",
                "disk/.wh..wh..opq",
                "etc/hostname"
            ]
        );
        let kinds: Vec<u8> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, b"5002143600000".to_vec());
        assert_eq!(entries[3].link.as_deref(), Some("disk.img"));
        assert_eq!(entries[4].link.as_deref(), Some("disk/disk.img"));
        assert_eq!((entries[1].uid, entries[12].uid), (107, 0));

        // GNU tar agrees, devices included.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("layer.tar"), &tar).unwrap();
        let listing = tools::run_command(
            Command::new("tar")
                .args(["-tvf", "layer.tar"])
                .current_dir(dir.path()),
        )
        .stdout;
        let listing = String::from_utf8(listing).unwrap();
        assert!(listing.contains(" 8,0 "), "block device numbers: {listing}");
        assert!(
            listing.contains(&long),
            "{long_names:?} long name: {listing}"
        );
    }

    let unterminated = Tar::new()
        .file("disk/disk.img", b"abc")
        .finish_unterminated();
    assert_eq!(unterminated.len(), 512 + 3);
}

#[test]
fn gnu_tar_writes_sparse_entries() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("disk")).unwrap();
    let raw = dir.path().join("disk/disk.img");
    disk::write_raw_disk(&raw, 1 << 20, 8);
    let gnu = oci::gnu_tar(dir.path(), &["disk"], GnuTarFormat::GnuSparse);
    let (entries, error) = read_entries(&gnu);
    assert_eq!(error, None);
    let sparse = entries.iter().find(|e| e.name == "disk/disk.img").unwrap();
    assert_eq!((sparse.kind, sparse.uid), (b'S', 107));
    assert_eq!(
        gnu,
        oci::gnu_tar(dir.path(), &["disk"], GnuTarFormat::GnuSparse),
        "deterministic"
    );

    let posix = oci::gnu_tar(dir.path(), &["disk"], GnuTarFormat::PosixSparse);
    let text = String::from_utf8_lossy(&posix);
    assert!(text.contains("GNU.sparse.major=1") && text.contains("GNU.sparse.name=disk/disk.img"));
    assert!(text.contains("GNUSparseFile."));
    // Whoever expands the map gets the disk back: GNU tar does.
    let out = tempfile::tempdir().unwrap();
    for (name, tar) in [("gnu.tar", &gnu), ("posix.tar", &posix)] {
        fs::write(out.path().join(name), tar).unwrap();
        let target = out.path().join(name.replace(".tar", ""));
        fs::create_dir(&target).unwrap();
        tools::run_command(
            Command::new("tar")
                .arg("-xf")
                .arg(out.path().join(name))
                .arg("-C")
                .arg(&target),
        );
        assert_eq!(
            fs::read(target.join("disk/disk.img")).unwrap(),
            fs::read(&raw).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn oci_layouts_read_back_with_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(&dir.path().join("layout"));
    let tar = small_disk_tar(9);
    let image = Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(&tar, LayerType::OciTarZstd)],
    );
    let index = Index::new(
        Schema::Oci,
        vec![
            image.clone(),
            Image::new(
                Schema::Oci,
                Platform::linux_arm64(),
                vec![Blob::layer(&tar, LayerType::OciTarGzip)],
            ),
        ],
    );
    layout
        .add(&image, "single")
        .add(&index, "multi")
        .add(&image, "single");
    assert_eq!(
        fs::read(dir.path().join("layout/oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert_eq!(
        layout.index()["manifests"].as_array().unwrap().len(),
        2,
        "re-tagging replaces"
    );

    for (tag, artifact) in [("single", &image as &dyn Artifact), ("multi", &index)] {
        let raw = tools::run("skopeo", ["inspect", "--raw", &layout.reference(tag)]);
        assert_eq!(raw, artifact.manifest().bytes(), "{tag}");
    }
    let copy = dir.path().join("copy");
    tools::run(
        "skopeo",
        [
            "--insecure-policy",
            "copy",
            "--quiet",
            &layout.reference("single"),
            &format!("oci:{}:x", copy.display()),
        ],
    );

    let layer = image.layers[0].digest();
    layout.tamper_blob(layer, |bytes| bytes.push(0));
    let blob = fs::read(layout.blob_path(layer)).unwrap();
    assert_ne!(oci::sha256_digest(&blob), layer);
    let mut refused = Command::new("skopeo");
    refused.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        &layout.reference("single"),
        &format!("oci:{}:y", dir.path().join("copy2").display()),
    ]);
    assert!(
        !tools::run_any_status(&mut refused).status.success(),
        "skopeo copied a tampered layout"
    );
}

#[test]
fn tool_failures_name_the_command_its_stderr_and_the_package() {
    fn panic_text(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("no panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap()
    }
    let failed = panic_text(|| {
        tools::run("qemu-img", ["info", "/nonexistent/disk.img"]);
    });
    assert!(
        failed.contains("`qemu-img info /nonexistent/disk.img` failed"),
        "{failed}"
    );
    assert!(failed.contains("Could not open"), "{failed}");

    let missing = panic_text(|| tools::require("bootsource-no-such-tool", "no-such-package"));
    assert!(
        missing.contains("apt-get install no-such-package"),
        "{missing}"
    );
    let missing = panic_text(|| {
        tools::run("bootsource-no-such-tool", ["--version"]);
    });
    assert!(
        missing.contains("`bootsource-no-such-tool` is not installed"),
        "{missing}"
    );
}
