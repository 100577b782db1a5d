//! Single disk files: `http://` from Debian's nginx (Range, ETag, If-Range) and from a
//! server without HEAD or Range, `file:PATH` and `-` (standard input); compressed by the
//! real `gzip`, `xz`, `zstd` and `bzip2` tools; checksums and checksum files; resuming
//! after a cut and refusing to stitch a file replaced meanwhile; basic auth and extra
//! headers; HTTPS trust, proxies and redirects.
//!
//! Images are made by `qemu-img`; the oracle is `qemu-img compare`.

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;

use sha2::{Digest as _, Sha256, Sha512};
use tempfile::TempDir;

use crate::common::bootsource::{
    assert_same_disk, disk_tar, expect_error, expect_success, import, import_command, import_json,
};
use crate::common::faults::{Fault, FaultProxy, When};
use crate::common::nginx::{BareServer, Nginx};
use crate::common::oci::{self, GnuTarFormat};
use crate::common::proxy::Proxy;
use crate::common::{disk, tools};

const MIB: u64 = 1 << 20;

/// A raw source disk, its qcow2 conversion, and a place for imports.
struct Fixture {
    dir: TempDir,
    raw: PathBuf,
    qcow2: PathBuf,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        let qcow2 = dir.path().join("source.qcow2");
        disk::write_raw_disk(&raw, 24 * MIB, seed);
        disk::qcow2(&raw, &qcow2, &[]);
        Fixture { dir, raw, qcow2 }
    }

    fn target(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn every_compression_around_qcow2_and_raw_over_http() {
    let f = Fixture::new(1);
    let nginx = Nginx::start();
    for (format, source) in [("qcow2", &f.qcow2), ("raw", &f.raw)] {
        for tool in ["gzip", "xz", "zstd", "bzip2"] {
            let name = format!("disk.{format}.{tool}");
            let bytes = tools::compress(tool, source);
            nginx.put(&name, &bytes);
            let target = f.target(&format!("{name}.out"));
            let report = import_json(&nginx.url(&name), &target, &[]);
            assert_same_disk(source, &target, &report);
            assert_eq!(report.format, format, "{name}");
            assert_eq!(
                report.digest,
                format!("sha256:{}", sha256_hex(&bytes)),
                "{name}: the digest is the sha256 of the bytes downloaded"
            );
            fs::remove_file(&target).unwrap();
        }
    }
    let plain = "disk.qcow2";
    nginx.put(plain, &fs::read(&f.qcow2).unwrap());
    let target = f.target("plain.out");
    let report = import_json(&nginx.url(plain), &target, &[]);
    assert_same_disk(&f.qcow2, &target, &report);
}

#[test]
fn a_tar_holding_one_disk_is_read_like_a_layer() {
    let f = Fixture::new(2);
    let tar = f.target("disk.tar");
    fs::write(&tar, disk_tar("debian.qcow2", &fs::read(&f.qcow2).unwrap())).unwrap();
    let nginx = Nginx::start();
    nginx.put("disk.tar.xz", &tools::compress("xz", &tar));
    let target = f.target("out");
    let report = import_json(&nginx.url("disk.tar.xz"), &target, &[]);
    assert_same_disk(&f.qcow2, &target, &report);
    assert!(report.disk.contains("debian.qcow2"), "{}", report.disk);
}

/// `tar --sparse` (old GNU format) of a disk with a large hole: read through the same
/// sparse filter as a layer, its holes are passed over by length and stay holes.
#[test]
fn a_gnu_sparse_tar_keeps_its_holes_over_http_and_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let raw = tree.join("disk.img");
    disk::write_raw_disk(&raw, 8 * MIB, 14);
    let file = fs::File::options().write(true).open(&raw).unwrap();
    file.set_len(512 * MIB).unwrap();
    drop(file);
    let tar = oci::gnu_tar(&tree, &["disk.img"], GnuTarFormat::GnuSparse);
    assert!((tar.len() as u64) < 16 * MIB, "the tar stores the holes");
    let tar_path = dir.path().join("disk.tar");
    fs::write(&tar_path, &tar).unwrap();

    let target = dir.path().join("from-file");
    let report = import_json(&format!("file:{}", tar_path.display()), &target, &[]);
    assert_same_disk(&raw, &target, &report);
    crate::common::bootsource::assert_sparse(&target, 0.05);

    let nginx = Nginx::start();
    nginx.put("disk.tar.gz", &tools::compress("gzip", &tar_path));
    let target = dir.path().join("from-http");
    let report = import_json(&nginx.url("disk.tar.gz"), &target, &[]);
    assert_same_disk(&raw, &target, &report);
    crate::common::bootsource::assert_sparse(&target, 0.05);
}

#[test]
fn local_files_and_standard_input() {
    let f = Fixture::new(3);
    let gz = f.target("disk.raw.gz");
    fs::write(&gz, tools::compress("gzip", &f.raw)).unwrap();
    let target = f.target("from-file");
    let report = import_json(&format!("file:{}", f.qcow2.display()), &target, &[]);
    assert_same_disk(&f.qcow2, &target, &report);

    // The upload case: `curl … | bootsource import - --to …`.
    let target = f.target("from-stdin");
    let mut command = import_command("-", &target, &["--json"]);
    command.stdin(Stdio::from(fs::File::open(&f.qcow2).unwrap()));
    let output = tools::run_any_status(&mut command);
    let report = crate::common::bootsource::ImportReport::parse(&expect_success(&output, "stdin"));
    assert_same_disk(&f.qcow2, &target, &report);

    // A gzipped raw disk on a pipe says its length only at its end: the target file
    // grows as it is written, in one pass.
    let target = f.target("raw-from-stdin");
    let mut command = import_command("-", &target, &["--json"]);
    command.stdin(Stdio::from(fs::File::open(&gz).unwrap()));
    let output = tools::run_any_status(&mut command);
    let report =
        crate::common::bootsource::ImportReport::parse(&expect_success(&output, "gzip stdin"));
    assert_same_disk(&f.raw, &target, &report);
}

#[test]
fn checksums_and_checksum_files_are_verified() {
    let f = Fixture::new(4);
    let nginx = Nginx::start();
    let bytes = tools::compress("xz", &f.qcow2);
    nginx.put("fedora.qcow2.xz", &bytes);
    let url = nginx.url("fedora.qcow2.xz");
    let sha256 = sha256_hex(&bytes);
    let sha512 = hex::encode(Sha512::digest(&bytes));
    let target = f.target("out");

    let good = format!("sha512:{sha512}");
    let report = import_json(&url, &target, &["--checksum", &good]);
    assert_same_disk(&f.qcow2, &target, &report);

    // A mismatch: refused, and the existing target untouched.
    let before = fs::read(&target).unwrap();
    let wrong = format!("sha256:{}", sha256_hex(b"another file"));
    let output = import(&url, &target, &["--checksum", &wrong]);
    expect_error(&output, &["checksum mismatch"]);
    assert!(fs::read(&target).unwrap() == before, "target changed");

    // GNU, BSD and Fedora's armored CHECKSUM lines, each naming the file.
    let other = sha256_hex(b"other");
    let files = [
        (
            "SHA256SUMS",
            format!("{other}  other.qcow2\n{sha256} *fedora.qcow2.xz\n"),
        ),
        (
            "BSD",
            format!("SHA512 (other.img) = {other}\nSHA512 (fedora.qcow2.xz) = {sha512}\n"),
        ),
        (
            "CHECKSUM",
            format!(
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
                 # fedora.qcow2.xz: {} bytes\nSHA256 (fedora.qcow2.xz) = {sha256}\n\
                 -----BEGIN PGP SIGNATURE-----\n\nwsFzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n",
                bytes.len()
            ),
        ),
    ];
    for (name, text) in files {
        nginx.put(name, text.as_bytes());
        let target = f.target(name);
        let report = import_json(&url, &target, &["--checksum-url", &nginx.url(name)]);
        assert_same_disk(&f.qcow2, &target, &report);
        fs::remove_file(&target).unwrap();
    }
    nginx.put("BADSUMS", format!("{other}  fedora.qcow2.xz\n").as_bytes());
    let target = f.target("bad");
    let output = import(&url, &target, &["--checksum-url", &nginx.url("BADSUMS")]);
    expect_error(&output, &["checksum mismatch"]);
    assert!(!target.exists(), "nothing published");
    nginx.put("NOLINE", format!("{other}  other.img\n").as_bytes());
    let output = import(&url, &target, &["--checksum-url", &nginx.url("NOLINE")]);
    expect_error(&output, &["fedora.qcow2.xz"]);
}

#[test]
fn a_cut_download_resumes_with_if_range() {
    let f = Fixture::new(5);
    let nginx = Nginx::start();
    // One pass: every resume is a range of the same download.
    let bytes = tools::compress("gzip", &f.qcow2);
    nginx.put("disk.qcow2.gz", &bytes);
    let proxy = FaultProxy::in_front_of(nginx.addr());
    proxy.add(
        When::get("disk.qcow2.gz").times(2),
        Fault::CutAfter(1 << 20),
    );
    let url = format!("{}/disk.qcow2.gz", proxy.url());
    let target = f.target("out");
    let output = import(&url, &target, &["--json"]);
    let report = crate::common::bootsource::ImportReport::parse(&expect_success(&output, "resume"));
    assert_same_disk(&f.qcow2, &target, &report);
    assert_eq!(proxy.injected(), 2);
    let log = nginx.access_log();
    assert!(
        log.lines().filter(|l| l.contains("\" 206 ")).count() >= 2,
        "the resumes are ranges:\n{log}"
    );
    assert_eq!(
        report.downloaded,
        bytes.len() as u64,
        "no byte fetched twice"
    );
}

#[test]
fn a_file_replaced_mid_download_is_never_stitched() {
    let f = Fixture::new(6);
    let replacement = Fixture::new(7);
    let nginx = Nginx::start();
    nginx.put("disk.qcow2", &fs::read(&f.qcow2).unwrap());
    let proxy = FaultProxy::in_front_of(nginx.addr());
    proxy.add(When::get("disk.qcow2").times(1), Fault::CutAfter(1 << 20));
    // The first resume is refused, so the file can be replaced before the next one.
    proxy.add(When::get("disk.qcow2").times(1), Fault::Status(503));
    let target = f.target("out");
    let child = import_command(&format!("{}/disk.qcow2", proxy.url()), &target, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first resume was refused", || proxy.injected() == 2);
    nginx.put("disk.qcow2", &fs::read(&replacement.qcow2).unwrap());
    let output = child.wait_with_output().unwrap();
    expect_error(&output, &["changed"]);
    assert!(!target.exists(), "nothing published");
}

#[test]
fn basic_auth_with_creds_or_the_auth_file() {
    let f = Fixture::new(8);
    let nginx = Nginx::builder().basic_auth("alice", "s3cret").start();
    nginx.put("disk.qcow2.bz2", &tools::compress("bzip2", &f.qcow2));
    let url = nginx.url("disk.qcow2.bz2");
    let target = f.target("out");
    let output = import(&url, &target, &[]);
    expect_error(&output, &["401"]);
    assert!(!target.exists());
    let output = import(&url, &target, &["--creds", "alice:wrong"]);
    expect_error(&output, &["401"]);
    let report = import_json(&url, &target, &["--creds", "alice:s3cret"]);
    assert_same_disk(&f.qcow2, &target, &report);

    // The auth file's entry for HOST:PORT, as the daemon uses it.
    let auth = f.target("auth.json");
    let credentials = crate::common::auth::Credentials::new("alice", "s3cret");
    crate::common::auth::write_auth_json(&auth, &nginx.addr().to_string(), &credentials);
    let target = f.target("out2");
    let report = import_json(&url, &target, &["--auth-file", auth.to_str().unwrap()]);
    assert_same_disk(&f.qcow2, &target, &report);
}

#[test]
fn extra_headers_are_sent() {
    let f = Fixture::new(9);
    let nginx = Nginx::start();
    nginx.put("private/disk.qcow2", &fs::read(&f.qcow2).unwrap());
    let url = nginx.url("private/disk.qcow2");
    let target = f.target("out");
    // nginx answers 403 under private/ unless `X-Token: abc` is sent.
    expect_error(&import(&url, &target, &[]), &["403"]);
    let report = import_json(&url, &target, &["--header", "X-Token: abc"]);
    assert_same_disk(&f.qcow2, &target, &report);
}

#[test]
fn a_server_without_head_or_range_still_works() {
    let f = Fixture::new(10);
    let root = f.target("www");
    fs::create_dir(&root).unwrap();
    fs::write(
        root.join("disk.qcow2.zst"),
        tools::compress("zstd", &f.qcow2),
    )
    .unwrap();
    let server = BareServer::start(&root);
    let target = f.target("out");
    let output = import(&server.url("disk.qcow2.zst"), &target, &["--json"]);
    let stdout = expect_success(&output, "bare server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HEAD"),
        "one line says HEAD is refused:\n{stderr}"
    );
    assert!(
        stderr.contains("resume"),
        "one line says the download cannot resume:\n{stderr}"
    );
    let report = crate::common::bootsource::ImportReport::parse(&stdout);
    assert_same_disk(&f.qcow2, &target, &report);
}

/// Waits (at most a minute) until `condition` holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// HTTPS with a private CA (`--cert-dir`) or unverified, through `HTTPS_PROXY`
/// (tinyproxy, CONNECT), and redirects followed but bounded.
#[test]
fn https_trust_proxies_and_redirects() {
    let f = Fixture::new(11);
    let nginx = Nginx::builder().tls().start();
    nginx.put("disk.qcow2", &fs::read(&f.qcow2).unwrap());
    let url = nginx.url("disk.qcow2");
    let target = f.target("out");
    expect_error(&import(&url, &target, &[]), &[]);
    assert!(!target.exists());
    let cert_dir = nginx.cert_dir().to_str().unwrap().to_owned();
    let report = import_json(&url, &target, &["--cert-dir", &cert_dir]);
    assert_same_disk(&f.qcow2, &target, &report);
    fs::remove_file(&target).unwrap();

    let proxy = Proxy::start();
    let mut command = import_command(&url, &target, &["--tls-verify=false", "--json"]);
    command.env("HTTPS_PROXY", proxy.url());
    let output = tools::run_any_status(&mut command);
    let report = crate::common::bootsource::ImportReport::parse(&expect_success(&output, "proxy"));
    assert_same_disk(&f.qcow2, &target, &report);
    let connect = format!("CONNECT {}", nginx.addr());
    assert!(
        proxy.requests().iter().any(|r| r.starts_with(&connect)),
        "{:?}",
        proxy.requests()
    );
    fs::remove_file(&target).unwrap();

    let report = import_json(
        &nginx.url("redirect/disk.qcow2"),
        &target,
        &["--cert-dir", &cert_dir],
    );
    assert_same_disk(&f.qcow2, &target, &report);
    fs::remove_file(&target).unwrap();
    let output = import(&nginx.url("loop"), &target, &["--cert-dir", &cert_dir]);
    expect_error(&output, &["redirect"]);
    assert!(!target.exists());
}

/// A qcow2 whose tables come after its data (a resize moves the L1 table to the end)
/// needs a second pass past the spool limit: from a file that is read again, from
/// standard input it is refused with the reason.
#[test]
fn a_qcow2_needing_a_second_pass_is_refused_on_standard_input() {
    let f = Fixture::new(12);
    let resized = f.target("resized.qcow2");
    fs::copy(&f.qcow2, &resized).unwrap();
    tools::run(
        "qemu-img",
        ["resize", "-q", resized.to_str().unwrap(), "+2G"],
    );
    let limit = ["--spool-limit", "1M"];
    let target = f.target("from-file");
    let report = import_json(&format!("file:{}", resized.display()), &target, &limit);
    assert_same_disk(&resized, &target, &report);
    assert!(report.passes >= 2, "{}", report.json);

    let target = f.target("from-stdin");
    let mut command = import_command("-", &target, &limit);
    command.stdin(Stdio::from(fs::File::open(&resized).unwrap()));
    let output = tools::run_any_status(&mut command);
    expect_error(&output, &["standard input cannot be read twice"]);
    assert!(!target.exists(), "nothing left behind");
}

/// CoreOS-style: a big virtual raw disk holding little data, xz-compressed. Its length
/// comes from the xz index (one ranged request for the tail); the zeros are not
/// written, so the target stays sparse. (Time ∝ data is shown in the bench.)
#[test]
fn a_sparse_raw_xz_is_sized_by_its_index_and_written_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("big.raw");
    disk::write_raw_disk(&raw, 8 * MIB, 13);
    let file = fs::File::options().write(true).open(&raw).unwrap();
    file.set_len(512 * MIB).unwrap();
    drop(file);
    let nginx = Nginx::start();
    let mut command = std::process::Command::new("xz");
    command.args(["-T2", "-c"]).arg(&raw);
    nginx.put("big.raw.xz", &tools::run_command(&mut command).stdout);
    let target = dir.path().join("out");
    let report = import_json(&nginx.url("big.raw.xz"), &target, &[]);
    assert_same_disk(&raw, &target, &report);
    crate::common::bootsource::assert_sparse(&target, 0.05);
    assert!(
        nginx.access_log().contains("\" 206 "),
        "the xz index was read with a range:\n{}",
        nginx.access_log()
    );
}

/// The bench's "16 GiB virtual raw.xz holding 1 GiB" at a test's scale: 32 MiB of data
/// in four pieces over 2 GiB, `xz -T2 -0`. Only the data is allocated in the result.
#[test]
fn a_2_gib_raw_xz_holding_32_mib_allocates_only_its_data() {
    use std::os::unix::fs::FileExt as _;
    let dir = tempfile::tempdir().unwrap();
    let piece = dir.path().join("piece.raw");
    let raw = dir.path().join("spread.raw");
    let out = fs::File::create(&raw).unwrap();
    out.set_len(2 << 30).unwrap();
    let mut data = 0;
    for k in 0..4u64 {
        disk::write_raw_disk(&piece, 8 * MIB, 20 + k);
        let bytes = fs::read(&piece).unwrap();
        out.write_all_at(&bytes, k << 29).unwrap();
        data += 4096
            * bytes
                .chunks(4096)
                .filter(|b| b.iter().any(|&x| x != 0))
                .count() as u64;
    }
    drop(out);
    let mut command = std::process::Command::new("xz");
    command.args(["-T2", "-0", "-c"]).arg(&raw);
    let nginx = Nginx::start();
    nginx.put("spread.raw.xz", &tools::run_command(&mut command).stdout);
    let target = dir.path().join("out");
    let report = import_json(&nginx.url("spread.raw.xz"), &target, &[]);
    assert_same_disk(&raw, &target, &report);
    let allocated = disk::allocated_bytes(&target);
    assert!(
        allocated >= data && allocated <= data + MIB,
        "{allocated} bytes allocated for {data} bytes of data"
    );
}
