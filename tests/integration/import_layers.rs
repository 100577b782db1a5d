//! Layers and the disk file inside them: compressions, vendor-built images, layer
//! stacking (whiteouts, opaque markers), tar dialects, and container disks that break the
//! rules (each a clear error naming what is wrong).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::common::bootsource::{
    self as bs, ImportReport, PLAIN_HTTP, assert_same_disk, disk_tar, expect_error, image, import,
    import_json, serve,
};
use crate::common::oci::{
    self, Artifact as _, Blob, GnuTarFormat, Image, LayerType, LongNames, Platform, Schema, Tar,
    media_type,
};
use crate::common::registry::Registry;
use crate::common::{disk, vendor};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;

/// A source disk: a raw file and its qcow2 conversion.
struct Fixture {
    dir: TempDir,
    raw: PathBuf,
    qcow2: PathBuf,
}

impl Fixture {
    /// A 16 MiB raw disk of mixed data and its default qcow2.
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        let qcow2 = dir.path().join("source.qcow2");
        disk::write_raw_disk(&raw, 16 * MIB, seed);
        disk::qcow2(&raw, &qcow2, &[]);
        Fixture { dir, raw, qcow2 }
    }

    fn qcow2_bytes(&self) -> Vec<u8> {
        fs::read(&self.qcow2).unwrap()
    }

    fn raw_bytes(&self) -> Vec<u8> {
        fs::read(&self.raw).unwrap()
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("imported.raw")
    }
}

/// Imports `artifact` pushed to a fresh registry; must succeed.
fn import_ok(fixture: &Fixture, artifact: &dyn oci::Artifact) -> ImportReport {
    let registry = Registry::start();
    let source = serve(&registry, "os/layers:1", artifact);
    import_json(&source, &fixture.target(), &[PLAIN_HTTP])
}

/// Imports `artifact` pushed to a fresh registry; must fail mentioning `phrases`. The
/// target must not exist afterwards.
fn import_fails(artifact: &dyn oci::Artifact, phrases: &[&str]) -> String {
    let registry = Registry::start();
    let source = serve(&registry, "os/layers:1", artifact);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("imported.raw");
    let stderr = expect_error(&import(&source, &target, &[PLAIN_HTTP]), phrases);
    assert!(
        bs::dir_entries(dir.path()).is_empty(),
        "a failed import left files: {:?}",
        bs::dir_entries(dir.path())
    );
    stderr
}

fn oci_image(layers: Vec<Blob>) -> Image {
    Image::new(Schema::Oci, Platform::linux_amd64(), layers)
}

fn assert_qcow2_imported(fixture: &Fixture, report: &ImportReport) {
    assert_eq!(report.format, "qcow2");
    assert_same_disk(&fixture.qcow2, &fixture.target(), report);
    assert!(disk::qemu_img_compare(&fixture.raw, &fixture.target()));
}

#[test]
fn gzip_zstd_and_uncompressed_oci_layers() {
    let fixture = Fixture::new(1);
    let tar = disk_tar("disk.qcow2", &fixture.qcow2_bytes());
    for layer_type in [
        LayerType::OciTarGzip,
        LayerType::OciTarZstd,
        LayerType::OciTar,
    ] {
        let image = image(&tar, layer_type);
        let report = import_ok(&fixture, &image);
        assert_qcow2_imported(&fixture, &report);
        assert_eq!(report.layer, image.layers[0].digest(), "{layer_type:?}");
        assert_eq!(report.disk, "disk.qcow2");
        assert_eq!(report.downloaded, image.layers[0].size(), "{layer_type:?}");
        fs::remove_file(fixture.target()).unwrap();
    }
}

#[test]
fn docker_schema2_rootfs_diff_tar_gzip_layer() {
    let fixture = Fixture::new(2);
    let tar = disk_tar("disk.img", &fixture.qcow2_bytes());
    let image = Image::new(
        Schema::Docker,
        Platform::linux_amd64(),
        vec![Blob::layer(&tar, LayerType::DockerTarGzip)],
    );
    let report = import_ok(&fixture, &image);
    assert_qcow2_imported(&fixture, &report);
    assert_eq!(report.manifest_digest, image.digest());
}

/// What vendors publish: `umoci insert` (whose Debian version writes the layer without
/// the last entry's padding and the end-of-archive blocks), pushed by `skopeo copy`.
/// The disk's size is made odd so the missing padding matters.
#[test]
fn umoci_and_skopeo_built_container_disk() {
    let fixture = Fixture::new(3);
    let odd = fixture.dir.path().join("fedora.qcow2");
    let mut bytes = fixture.qcow2_bytes();
    bytes.extend_from_slice(&[0u8; 333]); // qemu ignores bytes past the last cluster
    fs::write(&odd, &bytes).unwrap();
    let layout = fixture.dir.path().join("layout");
    vendor::umoci_container_disk(&layout, "41", &odd, "fedora.qcow2");
    let registry = Registry::start();
    let oci_source = format!("oci:{}:41", layout.display());
    for (repo_and_tag, options) in [
        ("os/vendor:41", &[][..]),
        ("os/vendor-zstd:41", &["--dest-compress-format", "zstd"][..]),
    ] {
        vendor::skopeo_copy_with(&oci_source, &registry, repo_and_tag, options);
        let report = import_json(
            &registry.reference(repo_and_tag),
            &fixture.target(),
            &[PLAIN_HTTP],
        );
        assert_eq!(report.disk, "fedora.qcow2");
        assert_qcow2_imported(&fixture, &report);
        fs::remove_file(fixture.target()).unwrap();
    }
    // The layout itself is a source too.
    let report = import_json(&oci_source, &fixture.target(), &[]);
    assert_qcow2_imported(&fixture, &report);
}

/// A Rust-built layer cut like umoci's, with a disk whose size is not a multiple of 512.
#[test]
fn layer_without_padding_or_end_of_archive() {
    let fixture = Fixture::new(4);
    let mut bytes = fixture.qcow2_bytes();
    bytes.extend_from_slice(&[0u8; 100]);
    let tar = Tar::new()
        .dir("disk/")
        .file("disk/disk.img", &bytes)
        .finish_unterminated();
    assert_ne!(tar.len() % 512, 0);
    let report = import_ok(&fixture, &image(&tar, LayerType::OciTarGzip));
    assert_qcow2_imported(&fixture, &report);
}

/// Bottom to top: the real disk, a stale `disk/old.img`, a whiteout of it. The scan
/// meets old.img first but the whiteout above hides it; the real disk is below.
#[test]
fn whiteout_hides_a_stale_disk_between_the_real_one_and_the_top() {
    let fixture = Fixture::new(5);
    let stale = Fixture::new(50);
    let real = Blob::layer(
        &disk_tar("real.qcow2", &fixture.qcow2_bytes()),
        LayerType::OciTarGzip,
    );
    let image = oci_image(vec![
        real.clone(),
        Blob::layer(
            &disk_tar("old.img", &stale.raw_bytes()),
            LayerType::OciTarZstd,
        ),
        Blob::layer(
            &Tar::new().dir("disk/").whiteout("disk/old.img").finish(),
            LayerType::OciTarGzip,
        ),
    ]);
    let report = import_ok(&fixture, &image);
    assert_eq!(report.disk, "real.qcow2");
    assert_eq!(report.layer, real.digest());
    assert_qcow2_imported(&fixture, &report);
}

/// Bottom to top: a stale `disk/old.img`, the real disk, a whiteout of old.img.
#[test]
fn whiteout_of_a_lower_disk_with_the_real_one_in_the_middle() {
    let fixture = Fixture::new(6);
    let stale = Fixture::new(60);
    let real = Blob::layer(
        &disk_tar("real.img", &fixture.qcow2_bytes()),
        LayerType::OciTarZstd,
    );
    let image = oci_image(vec![
        Blob::layer(
            &disk_tar("old.img", &stale.raw_bytes()),
            LayerType::OciTarGzip,
        ),
        real.clone(),
        Blob::layer(
            &Tar::new().whiteout("disk/old.img").finish(),
            LayerType::OciTar,
        ),
    ]);
    let report = import_ok(&fixture, &image);
    assert_eq!(
        (report.disk.as_str(), report.layer.as_str()),
        ("real.img", real.digest())
    );
    assert_qcow2_imported(&fixture, &report);
}

/// An opaque marker hides every lower disk/ entry: with the new disk beside it, the new
/// one is imported; alone, there is no disk.
#[test]
fn opaque_marker_hides_lower_disks() {
    let fixture = Fixture::new(7);
    let stale = Blob::layer(
        &disk_tar("old.img", &Fixture::new(70).raw_bytes()),
        LayerType::OciTarGzip,
    );
    let new = Blob::layer(
        &Tar::new()
            .dir("disk/")
            .opaque("disk")
            .file("disk/new.img", &fixture.qcow2_bytes())
            .finish(),
        LayerType::OciTarGzip,
    );
    let report = import_ok(&fixture, &oci_image(vec![stale.clone(), new.clone()]));
    assert_eq!(
        (report.disk.as_str(), report.layer.as_str()),
        ("new.img", new.digest())
    );
    assert_qcow2_imported(&fixture, &report);

    let emptied = Blob::layer(
        &Tar::new().dir("disk/").opaque("disk").finish(),
        LayerType::OciTar,
    );
    import_fails(&oci_image(vec![stale, emptied]), &["no disk"]);
}

/// A whiteout of the whole `disk` directory hides the disk below it.
#[test]
fn whiteout_of_the_disk_directory_leaves_no_disk() {
    let fixture = Fixture::new(8);
    let image = oci_image(vec![
        Blob::layer(
            &disk_tar("disk.img", &fixture.qcow2_bytes()),
            LayerType::OciTarGzip,
        ),
        Blob::layer(&Tar::new().whiteout("disk").finish(), LayerType::OciTar),
    ]);
    import_fails(&image, &["no disk"]);
}

#[test]
fn disk_in_the_bottom_layer_under_unrelated_layers() {
    let fixture = Fixture::new(9);
    let bottom = Blob::layer(
        &disk_tar("disk.img", &fixture.qcow2_bytes()),
        LayerType::OciTarZstd,
    );
    let image = oci_image(vec![
        bottom.clone(),
        Blob::layer(
            &Tar::new()
                .dir("etc/")
                .file("etc/os-release", b"ID=test\n")
                .finish(),
            LayerType::OciTarGzip,
        ),
        Blob::layer(
            &Tar::new()
                .dir("usr/")
                .dir("usr/share/")
                .file("usr/share/disk.img", b"not under disk/")
                .symlink("usr/share/link", "../../disk/disk.img")
                .finish(),
            LayerType::OciTar,
        ),
    ]);
    let report = import_ok(&fixture, &image);
    assert_eq!(report.layer, bottom.digest());
    assert_qcow2_imported(&fixture, &report);
}

/// The format comes from the first bytes, never the name.
#[test]
fn format_is_sniffed_not_taken_from_the_name() {
    let fixture = Fixture::new(10);
    let report = import_ok(
        &fixture,
        &image(
            &disk_tar("disk.img", &fixture.qcow2_bytes()),
            LayerType::OciTarZstd,
        ),
    );
    assert_qcow2_imported(&fixture, &report);
    fs::remove_file(fixture.target()).unwrap();

    let report = import_ok(
        &fixture,
        &image(
            &disk_tar("disk.qcow2", &fixture.raw_bytes()),
            LayerType::OciTarZstd,
        ),
    );
    assert_eq!(report.format, "raw");
    assert_same_disk(&fixture.raw, &fixture.target(), &report);
}

/// Names longer than the 100-byte tar header field, in GNU and PAX form.
#[test]
fn long_disk_names_in_gnu_and_pax_form() {
    let fixture = Fixture::new(11);
    let name = format!("{}.qcow2", "fedora-cloud-base-generic-".repeat(6));
    for long_names in [LongNames::Gnu, LongNames::Pax] {
        let tar = Tar::new()
            .long_names(long_names)
            .dir("disk/")
            .file(&format!("disk/{name}"), &fixture.qcow2_bytes())
            .finish();
        let report = import_ok(&fixture, &image(&tar, LayerType::OciTarGzip));
        assert_eq!(report.disk, name, "{long_names:?}");
        assert_qcow2_imported(&fixture, &report);
        fs::remove_file(fixture.target()).unwrap();
    }
}

fn gnu_tar_of_raw_disk(fixture: &Fixture, format: GnuTarFormat) -> Vec<u8> {
    let tree = fixture.dir.path().join("tree");
    fs::create_dir_all(tree.join("disk")).unwrap();
    // A copy keeps the holes: write_raw_disk makes them, fs::copy may not.
    disk::write_raw_disk(&tree.join("disk/disk.img"), 16 * MIB, 12);
    oci::gnu_tar(&tree, &["disk"], format)
}

#[test]
fn gnu_sparse_entry_is_expanded() {
    let fixture = Fixture::new(12);
    let tar = gnu_tar_of_raw_disk(&fixture, GnuTarFormat::GnuSparse);
    let report = import_ok(&fixture, &image(&tar, LayerType::OciTarGzip));
    assert_eq!(report.format, "raw");
    assert_eq!(report.virtual_size, 16 * MIB);
    assert_same_disk(&fixture.raw, &fixture.target(), &report);
}

#[test]
fn pax_sparse_entry_is_refused() {
    let fixture = Fixture::new(13);
    let tar = gnu_tar_of_raw_disk(&fixture, GnuTarFormat::PosixSparse);
    let stderr = import_fails(
        &image(&tar, LayerType::OciTarGzip),
        &["PAX sparse", "disk/disk.img", "without --sparse"],
    );
    // The message names the file as the user made it, not tar's stand-in entry.
    assert!(!stderr.contains("GNUSparseFile"), "{stderr}");
}

#[test]
fn layer_without_a_disk_is_an_error() {
    let tar = Tar::new()
        .dir("etc/")
        .file("etc/os-release", b"ID=test\n")
        .dir("disk/")
        .finish();
    import_fails(&image(&tar, LayerType::OciTarGzip), &["no disk"]);
}

#[test]
fn two_files_under_disk_are_an_error() {
    let tar = Tar::new()
        .dir("disk/")
        .file("disk/a.img", &[1u8; 4096])
        .file("disk/b.img", &[2u8; 4096])
        .finish();
    import_fails(
        &image(&tar, LayerType::OciTarGzip),
        &["more than one file under disk/", "a.img", "b.img"],
    );
}

#[test]
fn links_and_devices_under_disk_are_errors() {
    let cases: [(&str, Tar, &str); 5] = [
        (
            "symlink",
            Tar::new()
                .dir("disk/")
                .symlink("disk/disk.img", "/etc/shadow"),
            "symbolic link",
        ),
        (
            "hard link",
            Tar::new()
                .file("etc/disk.img", &[1u8; 1024])
                .dir("disk/")
                .hardlink("disk/disk.img", "etc/disk.img"),
            "hard link",
        ),
        (
            "block device",
            Tar::new().dir("disk/").block_device("disk/disk.img", 8, 0),
            "block device",
        ),
        (
            "character device",
            Tar::new().dir("disk/").char_device("disk/disk.img", 1, 3),
            "character device",
        ),
        (
            "fifo",
            Tar::new().dir("disk/").fifo("disk/disk.img"),
            "fifo",
        ),
    ];
    for (what, tar, phrase) in cases {
        let stderr = import_fails(
            &image(&tar.finish(), LayerType::OciTar),
            &["disk/disk.img", phrase],
        );
        assert!(!stderr.contains("no disk"), "{what}: {stderr}");
    }
}

#[test]
fn dot_dot_path_is_an_error() {
    let tar = Tar::new()
        .dir("disk/")
        .file("disk/../../etc/disk.img", &[1u8; 4096])
        .finish();
    import_fails(
        &image(&tar, LayerType::OciTarGzip),
        &["'..'", "disk/../../etc/disk.img"],
    );
}

#[test]
fn unknown_layer_media_type_is_an_error() {
    let fixture = Fixture::new(14);
    let tar = disk_tar("disk.img", &fixture.qcow2_bytes());
    let layer = Blob::new(
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        oci::compress(&tar, oci::Compression::Gzip),
    );
    import_fails(&oci_image(vec![layer]), &["media type", "tar+bzip2"]);
}

/// A layer whose media type says gzip but whose bytes are zstd (the magic decides).
#[test]
fn zstd_bytes_announced_as_gzip_are_sniffed() {
    let fixture = Fixture::new(15);
    let tar = disk_tar("disk.img", &fixture.qcow2_bytes());
    let layer =
        Blob::layer(&tar, LayerType::OciTarZstd).with_media_type(media_type::OCI_LAYER_GZIP);
    let report = import_ok(&fixture, &oci_image(vec![layer]));
    assert_qcow2_imported(&fixture, &report);
}

/// A disk file compressed inside the layer is not a disk: refused by name, with what to
/// publish instead, rather than copied as if it were raw.
#[test]
fn compressed_disk_file_is_an_unsupported_format() {
    let fixture = Fixture::new(16);
    let xz = Command::new("xz")
        .args(["-c", "-1"])
        .arg(&fixture.raw)
        .output()
        .expect("xz (xz-utils)");
    assert!(xz.status.success(), "xz failed");
    let tar = disk_tar("disk.img", &xz.stdout);
    import_fails(
        &image(&tar, LayerType::OciTarGzip),
        &["xz-compressed", "publish the disk file uncompressed"],
    );
}
