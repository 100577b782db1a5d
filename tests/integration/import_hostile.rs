//! Integrity and hostile input: tampered and padded blobs, layers cut short, and qcow2
//! images whose header or tables lie.
//!
//! Each hostile qcow2 starts as a valid image written by `qemu-img` and changes one field
//! (crosvm's style: the test says which field and why it is wrong). Every case must end
//! in a clear error — exit status 1, an `error:` line naming the problem, no panic — with
//! the peak memory of the run (GNU `time`) under [`RSS_LIMIT`], within [`TIME_LIMIT`],
//! and with no file left at the target.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::common::bootsource::{
    self as bs, PLAIN_HTTP, assert_same_disk, disk_tar, expect_error, expect_success, image,
    import, import_command, layout, max_rss, serve,
};
use crate::common::disk;
use crate::common::loopdev::LoopDevice;
use crate::common::oci::{Blob, LayerType, Layout, Tar, media_type};
use crate::common::registry::Registry;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
/// Peak resident memory allowed for a run on hostile input: the decoder's documented
/// bound is the 64 MiB spool plus tables of at most a few MiB for these images.
const RSS_LIMIT: u64 = 256 * MIB;
/// Seconds a run on hostile input may take (`timeout`): no loops, no huge writes.
const TIME_LIMIT: &str = "60";

/// qcow2 header fields (big-endian), as `docs/interop/qcow2.txt` places them.
mod field {
    pub const VERSION: usize = 4;
    pub const BACKING_FILE_OFFSET: usize = 8;
    pub const CLUSTER_BITS: usize = 20;
    pub const SIZE: usize = 24;
    pub const CRYPT_METHOD: usize = 32;
    pub const L1_SIZE: usize = 36;
    pub const L1_TABLE_OFFSET: usize = 40;
    pub const INCOMPATIBLE_FEATURES: usize = 72;
    pub const HEADER_LENGTH: usize = 100;
}

/// L2 entry flags and masks.
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;

/// A qemu-img qcow2 image held in memory, to be patched.
struct Qcow2 {
    bytes: Vec<u8>,
}

impl Qcow2 {
    fn read(path: &Path) -> Qcow2 {
        Qcow2 {
            bytes: fs::read(path).unwrap(),
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.bytes[at..at + 4].try_into().unwrap())
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    fn set_u32(mut self, at: usize, value: u32) -> Qcow2 {
        self.bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        self
    }

    fn set_u64(mut self, at: usize, value: u64) -> Qcow2 {
        self.bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
        self
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn cluster_bits(&self) -> u32 {
        self.u32_at(field::CLUSTER_BITS)
    }

    /// Where L1 entry `index` sits in the file.
    fn l1_entry_at(&self, index: usize) -> usize {
        usize::try_from(self.u64_at(field::L1_TABLE_OFFSET)).unwrap() + 8 * index
    }

    /// Where L2 entry `index` of the table L1 entry 0 points to sits.
    fn l2_entry_at(&self, index: usize) -> usize {
        let l2 = self.u64_at(self.l1_entry_at(0)) & OFFSET_MASK;
        assert_ne!(l2, 0, "L1 entry 0 is unallocated");
        usize::try_from(l2).unwrap() + 8 * index
    }

    /// The first L2 entry (of L1 entry 0) that matches `want`.
    fn find_l2_entry(&self, want: impl Fn(u64) -> bool) -> usize {
        let entries = 1usize << (self.cluster_bits() - 3);
        (0..entries)
            .map(|i| self.l2_entry_at(i))
            .find(|&at| want(self.u64_at(at)))
            .expect("no such L2 entry")
    }
}

/// A scratch directory with a 4 MiB source disk.
struct Fixture {
    dir: TempDir,
    raw: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        disk::write_raw_disk(&raw, 4 * MIB, 7);
        Fixture { dir, raw }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The source converted by qemu-img with `options`, read into memory.
    fn qcow2(&self, options: &[&str]) -> Qcow2 {
        let path = self.path("valid.qcow2");
        disk::qcow2(&self.raw, &path, options);
        Qcow2::read(&path)
    }

    /// An OCI layout whose one layer holds `bytes` as `disk/disk.img`.
    fn source(&self, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        layout(
            &dir,
            "1",
            &image(&disk_tar("disk.img", bytes), LayerType::OciTarZstd),
        )
    }
}

/// Runs `bootsource import SOURCE --to TARGET EXTRA…` under `timeout` and GNU `time`;
/// its output, after checking that it stayed within the memory bound.
fn import_bounded(source: &str, target: &Path, extra: &[&str]) -> Output {
    bounded(&import_command(source, target, extra))
}

/// Runs `inner` (a `bootsource` command) under `timeout` and GNU `time`; its output,
/// after checking that it stayed within the memory bound.
pub(crate) fn bounded(inner: &Command) -> Output {
    let mut command = Command::new("timeout");
    command
        .arg(TIME_LIMIT)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let (output, rss) = max_rss(&command);
    println!("peak memory: {} KiB", rss / 1024);
    assert!(
        rss < RSS_LIMIT,
        "peak memory {} MiB on hostile input:\n{}",
        rss / MIB,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Imports `source` (bounded in time and memory); it must fail with `phrases`, leaving
/// nothing at the target. Returns stderr.
pub(crate) fn refused(source: &str, extra: &[&str], phrases: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("imported.raw");
    let stderr = expect_error(&import_bounded(source, &target, extra), phrases);
    assert!(
        bs::dir_entries(out.path()).is_empty(),
        "a refused import left {:?}",
        bs::dir_entries(out.path())
    );
    stderr
}

/// [`refused`] for a qcow2 held in memory.
fn refused_qcow2(fixture: &Fixture, image: &Qcow2, phrases: &[&str]) -> String {
    refused(&fixture.source(&image.bytes), &[], phrases)
}

// ---- blob integrity ----

/// A registry serving other bytes under a layer's digest: the import fails on the
/// digest and the target file does not exist afterwards.
#[test]
fn tampered_layer_from_a_registry_is_a_digest_mismatch() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let registry = Registry::start();
    // An uncompressed layer: the change is in the disk data, which nothing but the
    // digest can notice.
    let image =
        image(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTar).tamper_layer(0, |bytes| {
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
        });
    let source = serve(&registry, "os/tampered:1", &image);
    let stderr = refused(&source, &[PLAIN_HTTP], &["digest mismatch"]);
    assert!(stderr.contains(image.layers[0].digest()), "{stderr}");
}

/// The same through a compressed layer: whichever check trips first, the import fails.
#[test]
fn tampered_gzip_layer_from_a_registry_fails() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let registry = Registry::start();
    let image = image(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTarGzip).tamper_layer(
        0,
        |bytes| {
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
        },
    );
    let source = serve(&registry, "os/tampered:1", &image);
    let stderr = refused(&source, &[PLAIN_HTTP], &[image.layers[0].digest()]);
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("digest mismatch") || lower.contains("gzip"),
        "{stderr}"
    );
}

#[test]
fn tampered_blob_in_an_oci_layout_is_a_digest_mismatch() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let image = image(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTar);
    let dir = fixture.path("layout");
    let source = layout(&dir, "1", &image);
    Layout::create(&dir).tamper_blob(image.layers[0].digest(), |bytes| {
        let at = bytes.len() - 3000;
        bytes[at] ^= 0x80;
    });
    refused(&source, &[], &["digest mismatch", image.layers[0].digest()]);
}

/// A blob shorter than its descriptor says.
#[test]
fn truncated_blob_in_an_oci_layout_is_refused() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let image = image(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTarZstd);
    let dir = fixture.path("layout");
    let source = layout(&dir, "1", &image);
    Layout::create(&dir).tamper_blob(image.layers[0].digest(), |bytes| {
        bytes.truncate(bytes.len() - 100);
    });
    refused(&source, &[], &["size mismatch", image.layers[0].digest()]);
}

/// A tampered layer onto a block device: the import fails (it is not reported done).
#[test]
fn tampered_layer_onto_a_block_device_fails() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let image = image(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTar);
    let dir = fixture.path("layout");
    let source = layout(&dir, "1", &image);
    Layout::create(&dir).tamper_blob(image.layers[0].digest(), |bytes| {
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
    });
    let device = LoopDevice::attach(4 * MIB);
    let output = import(&source, device.path(), &["--json"]);
    expect_error(&output, &["digest mismatch"]);
    assert!(output.stdout.is_empty(), "a report was printed");
}

/// Bytes after the gzip member are part of the blob (its digest is honest) but not of
/// the layer: the import must fail, not ignore them.
#[test]
fn bytes_appended_after_the_gzip_member_are_an_error() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let honest = Blob::layer(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTarGzip);
    let padded = honest.with_appended(b"garbage after the gzip member");
    let image = common::oci::Image::new(
        common::oci::Schema::Oci,
        common::oci::Platform::linux_amd64(),
        vec![padded.clone()],
    );
    let source = layout(&fixture.path("layout"), "1", &image);
    refused(&source, &[], &[padded.digest(), "gzip"]);
}

/// Garbage after the zstd frame, served by a registry.
#[test]
fn registry_blob_with_bytes_after_the_zstd_frame_fails() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let registry = Registry::start();
    let padded = Blob::layer(&disk_tar("disk.img", &qcow2.bytes), LayerType::OciTarZstd)
        .with_appended(b"\x28\xb5\x2f\xfd garbage after the zstd frame");
    let image = common::oci::Image::new(
        common::oci::Schema::Oci,
        common::oci::Platform::linux_amd64(),
        vec![padded.clone()],
    );
    let source = serve(&registry, "os/padded:1", &image);
    let target = fixture.path("imported.raw");
    let stderr = expect_error(&import(&source, &target, &[PLAIN_HTTP]), &[padded.digest()]);
    assert!(!target.exists(), "{stderr}");
}

/// A layer cut inside the disk entry (an honest digest over a broken tar).
#[test]
fn layer_cut_inside_the_disk_entry_is_an_error() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let mut tar = Tar::new()
        .dir("disk/")
        .file("disk/disk.img", &qcow2.bytes)
        .finish_unterminated();
    tar.truncate(tar.len() - 70_000);
    let source = layout(
        &fixture.path("layout"),
        "1",
        &image(&tar, LayerType::OciTarGzip),
    );
    refused(&source, &[], &["disk/disk.img ends after"]);
}

/// The same cut in a raw disk: a short raw disk must not pass as a smaller one.
#[test]
fn raw_disk_cut_short_is_an_error() {
    let fixture = Fixture::new();
    let mut tar = Tar::new()
        .dir("disk/")
        .file("disk/disk.img", &fs::read(&fixture.raw).unwrap())
        .finish_unterminated();
    tar.truncate(tar.len() - 100_000);
    let source = layout(
        &fixture.path("layout"),
        "1",
        &image(&tar, LayerType::OciTar),
    );
    refused(&source, &[], &["disk/disk.img ends after"]);
}

/// A zstd layer whose tar holds a GNU long name of `len` bytes, then `disk` as
/// `disk/disk.img`: compressed as it is written, so the test never holds `len` bytes.
fn layer_with_long_name(len: u64, disk: &[u8]) -> Blob {
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").unwrap();
    header.set_size(len);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_cksum();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.write_all(header.as_bytes()).unwrap();
    let padded = len.next_multiple_of(512);
    io::copy(&mut io::repeat(b'a').take(len), &mut encoder).unwrap();
    io::copy(&mut io::repeat(0).take(padded - len), &mut encoder).unwrap();
    encoder.write_all(&disk_tar("disk.img", disk)).unwrap();
    Blob::new(media_type::OCI_LAYER_ZSTD, encoder.finish().unwrap())
}

/// A GNU long name of 512 MiB before the disk, in 900 KiB of zstd: the tar reader held
/// it whole before handing out the entry it names. Refused within its first 16 MiB.
#[test]
fn tar_long_name_of_half_a_gibibyte_is_refused() {
    let fixture = Fixture::new();
    let layer = layer_with_long_name(512 * MIB, &fs::read(&fixture.raw).unwrap());
    println!("layer of {} bytes", layer.size());
    let image = common::oci::Image::new(
        common::oci::Schema::Oci,
        common::oci::Platform::linux_amd64(),
        vec![layer.clone()],
    );
    let source = layout(&fixture.path("layout"), "1", &image);
    refused(
        &source,
        &[],
        &[layer.digest(), "tar entry headers", "16 MiB"],
    );
}

// ---- hostile qcow2 headers ----

#[test]
fn huge_virtual_size_with_a_small_l1() {
    let fixture = Fixture::new();
    // 2^62 bytes need 2^33 L1 entries at 64 KiB clusters; the table has 1.
    let image = fixture.qcow2(&[]).set_u64(field::SIZE, 1 << 62);
    refused_qcow2(&fixture, &image, &["L1 has", "virtual size needs"]);
}

#[test]
fn huge_l1_table() {
    let fixture = Fixture::new();
    // A virtual size whose L1 table would be 512 MiB, and an L1 size that claims it.
    let image = fixture
        .qcow2(&[])
        .set_u64(field::SIZE, 1 << 55)
        .set_u32(field::L1_SIZE, u32::MAX);
    refused_qcow2(&fixture, &image, &["L1 table", "32 MiB"]);
}

#[test]
fn huge_virtual_size_with_2m_clusters_within_the_l1_limit() {
    let fixture = Fixture::new();
    // 2 MiB clusters: one L1 entry maps 512 GiB, so 2^60 bytes need 2^21 entries
    // (16 MiB of L1, under QEMU's 32 MiB limit) — which the file does not hold.
    let image = fixture
        .qcow2(&["-o", "cluster_size=2M"])
        .set_u64(field::SIZE, 1 << 60)
        .set_u32(field::L1_SIZE, 1 << 21);
    refused_qcow2(&fixture, &image, &["L1 table"]);
}

#[test]
fn l1_table_past_the_end() {
    let fixture = Fixture::new();
    let image = fixture.qcow2(&[]).set_u64(field::L1_TABLE_OFFSET, 1 << 40);
    refused_qcow2(&fixture, &image, &["truncated qcow2 image", "L1 table"]);
}

#[test]
fn l1_table_not_on_a_cluster_boundary() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let l1 = qcow2.u64_at(field::L1_TABLE_OFFSET);
    let image = qcow2.set_u64(field::L1_TABLE_OFFSET, l1 + 8);
    refused_qcow2(&fixture, &image, &["L1 offset", "cluster boundary"]);
}

#[test]
fn l2_table_past_the_end() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let at = qcow2.l1_entry_at(0);
    let image = qcow2.set_u64(at, COPIED | (1 << 40));
    refused_qcow2(&fixture, &image, &["truncated qcow2 image", "L2 table"]);
}

#[test]
fn l2_table_not_cluster_aligned() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let at = qcow2.l1_entry_at(0);
    let l2 = qcow2.u64_at(at);
    let image = qcow2.set_u64(at, l2 + 512);
    refused_qcow2(
        &fixture,
        &image,
        &["L2 table offset", "not cluster aligned"],
    );
}

#[test]
fn data_cluster_past_the_end() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let at = qcow2.find_l2_entry(|e| e & OFFSET_MASK != 0);
    let image = qcow2.set_u64(at, COPIED | (1 << 40));
    refused_qcow2(&fixture, &image, &["truncated qcow2 image", "data cluster"]);
}

/// A standard cluster descriptor reserves bits 1-8 and 56-61 (`qemu-img check`: "l2
/// entry with reserved bits set" for either).
#[test]
fn l2_entry_with_low_reserved_bits() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let at = qcow2.find_l2_entry(|e| e & OFFSET_MASK != 0);
    let word = qcow2.u64_at(at);
    let image = qcow2.set_u64(at, word | 1 << 1);
    refused_qcow2(&fixture, &image, &["reserved bits"]);
}

#[test]
fn l2_entry_with_high_reserved_bits() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let at = qcow2.find_l2_entry(|e| e & OFFSET_MASK != 0);
    let word = qcow2.u64_at(at);
    let image = qcow2.set_u64(at, word | 1 << 56);
    refused_qcow2(&fixture, &image, &["reserved bits"]);
}

/// Extended L2: a subcluster may be allocated or read as zeros, not both.
#[test]
fn subclusters_both_allocated_and_zero() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&["-o", "extended_l2=on,cluster_size=64k"]);
    let table = qcow2.u64_at(qcow2.l1_entry_at(0)) & OFFSET_MASK;
    let table = usize::try_from(table).unwrap();
    let bitmap_at = (0..4096)
        .map(|i| table + 16 * i + 8)
        .find(|&at| qcow2.u64_at(at) & 0xffff_ffff != 0)
        .expect("an allocated subcluster");
    let bitmap = qcow2.u64_at(bitmap_at);
    let image = qcow2.set_u64(bitmap_at, bitmap | (bitmap & 0xffff_ffff) << 32);
    refused_qcow2(&fixture, &image, &["both allocated and zero"]);
}

#[test]
fn compressed_cluster_past_the_end() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&["-c"]);
    let at = qcow2.find_l2_entry(|e| e & COMPRESSED != 0);
    // cluster_bits 16: bits 0..54 hold the offset; keep the sector count.
    let offset_bits = 62 - (qcow2.cluster_bits() - 8);
    let word = qcow2.u64_at(at);
    let sectors = word & !((1 << offset_bits) - 1);
    let beyond = qcow2.len() + 16 * MIB;
    let image = qcow2.set_u64(at, sectors | beyond);
    refused_qcow2(
        &fixture,
        &image,
        &["truncated qcow2 image", "compressed cluster"],
    );
}

/// A compressed descriptor over bytes that are not deflate data (the header).
#[test]
fn compressed_cluster_over_garbage_is_corrupt() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&["-c"]);
    let at = qcow2.find_l2_entry(|e| e & COMPRESSED != 0);
    // Offset 8 of the header, to the end of its sector: not a deflate stream.
    let image = qcow2.set_u64(at, COMPRESSED | 8);
    refused_qcow2(&fixture, &image, &["compressed cluster", "corrupt"]);
}

#[test]
fn backing_file_is_refused() {
    let fixture = Fixture::new();
    let base = fixture.path("base.qcow2");
    disk::qcow2(&fixture.raw, &base, &[]);
    let overlay = fixture.path("overlay.qcow2");
    common::tools::run_command(
        Command::new("qemu-img")
            .args(["create", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&base)
            .arg(&overlay),
    );
    refused_qcow2(&fixture, &Qcow2::read(&overlay), &["backing file"]);
}

#[test]
fn encryption_is_refused() {
    let fixture = Fixture::new();
    let aes = fixture.qcow2(&[]).set_u32(field::CRYPT_METHOD, 1);
    refused_qcow2(&fixture, &aes, &["AES encryption"]);
    let luks = fixture.qcow2(&[]).set_u32(field::CRYPT_METHOD, 2);
    refused_qcow2(&fixture, &luks, &["LUKS encryption"]);
}

#[test]
fn corrupt_bit_is_refused() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let features = qcow2.u64_at(field::INCOMPATIBLE_FEATURES);
    let image = qcow2.set_u64(field::INCOMPATIBLE_FEATURES, features | 1 << 1);
    refused_qcow2(&fixture, &image, &["corrupt"]);
}

#[test]
fn unknown_incompatible_feature_is_refused() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let features = qcow2.u64_at(field::INCOMPATIBLE_FEATURES);
    let image = qcow2.set_u64(field::INCOMPATIBLE_FEATURES, features | 1 << 20);
    refused_qcow2(
        &fixture,
        &image,
        &["unknown incompatible feature", "0x100000"],
    );
}

#[test]
fn external_data_file_is_refused() {
    let fixture = Fixture::new();
    let image = fixture.path("external.qcow2");
    common::tools::run_command(
        Command::new("qemu-img")
            .args(["create", "-f", "qcow2", "-o"])
            .arg(format!(
                "data_file={}",
                fixture.path("external.data").display()
            ))
            .arg(&image)
            .arg("4M"),
    );
    refused_qcow2(&fixture, &Qcow2::read(&image), &["external data file"]);
}

#[test]
fn unsupported_version_and_cluster_bits() {
    let fixture = Fixture::new();
    let v4 = fixture.qcow2(&[]).set_u32(field::VERSION, 4);
    refused_qcow2(&fixture, &v4, &["qcow2 version 4"]);
    let huge_clusters = fixture.qcow2(&[]).set_u32(field::CLUSTER_BITS, 40);
    refused_qcow2(&fixture, &huge_clusters, &["cluster_bits 40"]);
    let tiny_clusters = fixture.qcow2(&[]).set_u32(field::CLUSTER_BITS, 4);
    refused_qcow2(&fixture, &tiny_clusters, &["cluster_bits 4"]);
}

#[test]
fn header_length_larger_than_a_cluster() {
    let fixture = Fixture::new();
    let image = fixture
        .qcow2(&[])
        .set_u32(field::HEADER_LENGTH, 0xffff_fff8);
    refused_qcow2(&fixture, &image, &["header length"]);
}

#[test]
fn backing_file_offset_alone_is_refused() {
    let fixture = Fixture::new();
    let image = fixture
        .qcow2(&[])
        .set_u64(field::BACKING_FILE_OFFSET, 1 << 50);
    refused_qcow2(&fixture, &image, &["backing file"]);
}

/// An image cut short (an honest tar entry): the tables and data past the cut are
/// missing. qemu-img reads zeros there; bootsource must refuse.
#[test]
fn truncated_image_is_refused() {
    let fixture = Fixture::new();
    // (qemu-img options, percent of the file kept)
    for (options, percent) in [(&[][..], 60), (&["-c"][..], 50), (&[][..], 1)] {
        let mut qcow2 = fixture.qcow2(options);
        let cut = qcow2.bytes.len() * percent / 100;
        qcow2.bytes.truncate(cut.max(72));
        refused_qcow2(&fixture, &qcow2, &["truncated qcow2 image"]);
    }
}

#[test]
fn two_l1_entries_sharing_an_l2_table() {
    let fixture = Fixture::new();
    // 1 GiB virtual: two L1 entries, the second made to point at the first's table.
    let big = fixture.path("big.raw");
    disk::write_raw_disk(&big, 4 * MIB, 3);
    fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let path = fixture.path("big.qcow2");
    disk::qcow2(&big, &path, &[]);
    let qcow2 = Qcow2::read(&path);
    let first = qcow2.u64_at(qcow2.l1_entry_at(0));
    let second_at = qcow2.l1_entry_at(1);
    let image = qcow2.set_u64(second_at, first);
    refused_qcow2(&fixture, &image, &["same L2 table"]);
}

/// An L1 entry pointing back at the L1 table's own cluster. Read as an L2 table, that
/// cluster maps guest cluster 0 to itself and nothing else: odd, but qemu reads it, so
/// the import must give what qemu reads — within the time and memory bounds, with no
/// pass loop.
#[test]
fn l1_entry_pointing_at_the_l1_table() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let l1 = qcow2.u64_at(field::L1_TABLE_OFFSET);
    let at = qcow2.l1_entry_at(0);
    let image = qcow2.set_u64(at, COPIED | l1);
    let path = fixture.path("self.qcow2");
    fs::write(&path, &image.bytes).unwrap();
    assert!(!disk::qemu_img_compare(&fixture.raw, &path));
    let target = fixture.path("imported.raw");
    let output = import_bounded(&fixture.source(&image.bytes), &target, &["--json"]);
    let report = bs::ImportReport::parse(&expect_success(&output, "import"));
    assert_same_disk(&path, &target, &report);
}

/// Two guest clusters backed by one host cluster. qemu reads it, but no qemu writer makes
/// it (a host cluster of the active tables has refcount 1), and it is the seed of a
/// write bomb: refused, naming the shared cluster.
#[test]
fn one_data_cluster_mapped_twice_is_refused() {
    let fixture = Fixture::new();
    let qcow2 = fixture.qcow2(&[]);
    let first = qcow2.find_l2_entry(|e| e & OFFSET_MASK != 0);
    let word = qcow2.u64_at(first);
    let unallocated = qcow2.find_l2_entry(|e| e == 0);
    let image = qcow2.set_u64(unallocated, word & !COPIED);
    let host = format!("{:#x}", word & OFFSET_MASK);
    refused_qcow2(
        &fixture,
        &image,
        &["invalid qcow2 image", "another L2 entry", &host],
    );
}

/// A 1 GiB image holding one 64 KiB cluster, written by `qemu-io` (compressed or not),
/// whose first L2 table is then made to map all its 8192 guest clusters to that one
/// cluster: a layer of a few KiB that would write 512 MiB. The host offset it shares.
fn write_bomb(fixture: &Fixture, compressed: bool) -> (Qcow2, u64) {
    let path = fixture.path("bomb.qcow2");
    common::tools::run_command(
        Command::new("qemu-img")
            .args(["create", "-f", "qcow2"])
            .arg(&path)
            .arg("1G"),
    );
    let write = if compressed {
        "write -c -P 0xab 0 64k"
    } else {
        "write -P 0xab 0 64k"
    };
    common::tools::run_command(
        Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", write])
            .arg(&path),
    );
    let mut qcow2 = Qcow2::read(&path);
    let first = qcow2.l2_entry_at(0);
    let word = qcow2.u64_at(first);
    assert_eq!(word & COMPRESSED != 0, compressed, "{word:#x}");
    for index in 1..8192 {
        let at = qcow2.l2_entry_at(index);
        qcow2 = qcow2.set_u64(at, word);
    }
    let offset_bits = 62 - (qcow2.cluster_bits() - 8);
    let host = if compressed {
        word & ((1 << offset_bits) - 1)
    } else {
        word & OFFSET_MASK
    };
    (qcow2, host)
}

/// [`write_bomb`] is refused before it writes more than its one cluster.
fn assert_bomb_refused(compressed: bool) {
    let fixture = Fixture::new();
    let (bomb, host) = write_bomb(&fixture, compressed);
    let layer = Blob::layer(&disk_tar("disk.img", &bomb.bytes), LayerType::OciTarZstd);
    println!("a {}-byte layer", layer.size());
    assert!(layer.size() < 64 << 10, "{} bytes", layer.size());
    let host = format!("{host:#x}");
    refused_qcow2(
        &fixture,
        &bomb,
        &["invalid qcow2 image", "another L2 entry", &host],
    );
}

#[test]
fn every_l2_entry_mapping_one_data_cluster_is_refused() {
    assert_bomb_refused(false);
}

#[test]
fn every_l2_entry_mapping_one_compressed_cluster_is_refused() {
    assert_bomb_refused(true);
}
