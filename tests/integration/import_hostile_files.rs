//! Hostile local files: an OCI layout (on removable media, or in a directory another
//! user can write) whose files are links, FIFOs or too large to hold in memory, config
//! and auth files that are not regular files or are oversized, and disk files whose
//! name says a compression their bytes are not in.
//!
//! Inside a layout nothing is followed: a link is refused even when it leads to honest
//! bytes. The paths a user names (the layout directory, `--config`, `--auth-file`) may
//! be links, but must lead to a directory or a regular file. Every run is bounded in
//! time and memory ([`bounded`]) and must end in a clear error, never a hang (a FIFO
//! with no writer blocks whoever opens it) or a read of `/dev/zero` into memory.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use tempfile::TempDir;

use crate::common::bootsource::{
    self as bs, disk_tar, expect_error, expect_success, image, layout,
};
use crate::common::oci::{Artifact as _, Image, LayerType};
use crate::common::{disk, tools};
use crate::import_hostile::{bounded, refused};

const MIB: u64 = 1 << 20;
/// Manifests and indexes above this are refused (containerd's bound, and ours).
const MANIFEST_LIMIT: u64 = 4 * MIB;

/// A valid layout holding one small raw disk tagged `1`; each test spoils one file.
struct LayoutFixture {
    dir: TempDir,
    image: Image,
}

impl LayoutFixture {
    fn new() -> LayoutFixture {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("source.raw");
        disk::write_raw_disk(&raw, MIB, 5);
        let image = image(
            &disk_tar("disk.img", &fs::read(&raw).unwrap()),
            LayerType::OciTarGzip,
        );
        let fixture = LayoutFixture { dir, image };
        layout(&fixture.layout(), "1", &fixture.image);
        fixture
    }

    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn source(&self) -> String {
        format!("oci:{}:1", self.layout().display())
    }

    /// The files an import reads, by the name its error must show.
    fn files(&self) -> Vec<(String, PathBuf)> {
        let blob = |digest: &str| {
            let hex = digest.strip_prefix("sha256:").unwrap().to_owned();
            let path = self.layout().join("blobs/sha256").join(&hex);
            (hex, path)
        };
        vec![
            ("oci-layout".into(), self.layout().join("oci-layout")),
            ("index.json".into(), self.layout().join("index.json")),
            blob(self.image.digest()),
            blob(self.image.layers[0].digest()),
        ]
    }
}

/// Replaces `path` with a symbolic link to `target`.
fn replace_with_link(path: &Path, target: &Path) {
    fs::remove_file(path).unwrap();
    symlink(target, path).unwrap();
}

/// Replaces `path` with a FIFO that nobody writes to.
fn replace_with_fifo(path: &Path) {
    fs::remove_file(path).unwrap();
    make_fifo(path);
}

fn make_fifo(path: &Path) {
    tools::run_command(Command::new("mkfifo").arg(path));
}

/// Runs `with_file` on `/dev/zero` and on a FIFO named `name`: each must be refused,
/// naming the file and what it is.
fn refuses_special_files(name: &str, with_file: impl Fn(&Path) -> Output) {
    expect_error(
        &with_file(Path::new("/dev/zero")),
        &["/dev/zero", "character device"],
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(name);
    make_fifo(&fifo);
    expect_error(&with_file(&fifo), &[name, "FIFO"]);
}

// ---- OCI layouts ----

/// For each file an import reads, a fresh layout where `spoil` changed that file:
/// the import must be refused, naming the file and `what` it is.
fn refuses_each_layout_file(what: &str, spoil: impl Fn(&Path)) {
    for i in 0..LayoutFixture::new().files().len() {
        let fixture = LayoutFixture::new();
        let files = fixture.files();
        let (name, path) = &files[i];
        println!("{name}: {what}");
        spoil(path);
        refused(&fixture.source(), &[], &[name, what]);
    }
}

/// Following `index.json` (or the marker, or a manifest) to `/dev/zero` would read
/// until memory ran out; a layer blob would be cut by its size check, but is refused
/// the same way: a layout holds files, not links.
#[test]
fn layout_files_linked_to_dev_zero_are_refused() {
    refuses_each_layout_file("symbolic link", |path| {
        replace_with_link(path, Path::new("/dev/zero"));
    });
}

/// A link to honest bytes is refused too: the daemon runs as root and must not read
/// wherever a layout's author points it.
#[test]
fn layout_directories_linked_elsewhere_are_refused() {
    let fixture = LayoutFixture::new();
    let elsewhere = fixture.dir.path().join("elsewhere");
    fs::rename(fixture.layout().join("blobs"), &elsewhere).unwrap();
    symlink(&elsewhere, fixture.layout().join("blobs")).unwrap();
    refused(&fixture.source(), &[], &["blobs", "symbolic link"]);
}

/// Opening a FIFO for reading blocks until someone writes to it: the import must not.
#[test]
fn layout_files_that_are_fifos_are_refused() {
    refuses_each_layout_file("FIFO", replace_with_fifo);
}

/// An index just over the manifest limit (valid JSON, padded with spaces), and a
/// manifest that is a sparse 8 GiB file: neither is read into memory.
#[test]
fn oversized_layout_index_and_manifest_are_refused() {
    let fixture = LayoutFixture::new();
    let index = fixture.layout().join("index.json");
    let mut padded = fs::read(&index).unwrap();
    padded.resize(usize::try_from(MANIFEST_LIMIT).unwrap() + 1, b' ');
    fs::write(&index, padded).unwrap();
    refused(&fixture.source(), &[], &["index.json", "larger than"]);

    let fixture = LayoutFixture::new();
    let files = fixture.files();
    let (hex, manifest) = &files[2];
    fs::File::options()
        .write(true)
        .open(manifest)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    refused(&fixture.source(), &[], &[hex, "larger than"]);
}

/// The layout directory itself is a path the user gives: it may be a link.
#[test]
fn layout_directory_named_through_a_link_is_read() {
    let fixture = LayoutFixture::new();
    let link = fixture.dir.path().join("link-to-layout");
    symlink(fixture.layout(), &link).unwrap();
    let target = fixture.dir.path().join("imported.raw");
    let output = bounded(&bs::import_command(
        &format!("oci:{}:1", link.display()),
        &target,
        &["--json"],
    ));
    expect_success(&output, "import");
}

// ---- config and auth files ----

/// Writes what `contents` makes in a scratch directory (a valid file, made larger than
/// any real one of its kind) as `name`; `with_file` on it must refuse it, naming it.
fn refuses_oversized_file(
    name: &str,
    with_file: impl Fn(&Path) -> Output,
    contents: impl FnOnce(&Path) -> Vec<u8>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, contents(dir.path())).unwrap();
    expect_error(&with_file(&path), &[name, "larger than"]);
}

/// `bootsource status --config PATH`, bounded in time and memory.
fn status_with_config(config: &Path) -> Output {
    let mut command = bs::command(["status", "--config"]);
    command.arg(config);
    bounded(&command)
}

/// A config file that is a device or a FIFO: reading `/dev/zero` as text never ends,
/// and a FIFO never opens.
#[test]
fn config_file_that_is_not_a_regular_file_is_refused() {
    refuses_special_files("config.toml", status_with_config);
}

#[test]
fn oversized_config_file_is_refused() {
    refuses_oversized_file("config.toml", status_with_config, |dir| {
        let mut text = format!(
            "state_dir = {:?}\n[[source]]\nname = \"a\"\nimage = \"docker://127.0.0.1:1/a:1\"\n",
            dir.join("state")
        );
        text.push_str(&format!("# {}\n", "x".repeat(2 << 20)));
        text.into_bytes()
    });
}

/// `import docker://… --auth-file PATH` against a port nobody listens on: the auth file
/// is read before any connection, so its error is the one reported.
fn import_with_auth_file(auth_file: &Path) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = bs::import_command(
        "docker://127.0.0.1:1/os/image:1",
        &dir.path().join("imported.raw"),
        &["--tls-verify=false", "--auth-file"],
    );
    command.arg(auth_file);
    bounded(&command)
}

#[test]
fn auth_file_that_is_not_a_regular_file_is_refused() {
    refuses_special_files("auth.json", import_with_auth_file);
}

#[test]
fn oversized_auth_file_is_refused() {
    refuses_oversized_file("auth.json", import_with_auth_file, |_| {
        let padding = "x".repeat(2 << 20);
        serde_json::to_vec(&json!({ "auths": {}, "padding": padding })).unwrap()
    });
}

#[test]
fn a_disk_file_not_in_the_compression_its_name_says_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("source.raw");
    disk::write_raw_disk(&raw, MIB, 6);
    // An uncompressed disk under a compressed name, and garbage that a download cut
    // or corrupted: either would have become a "raw disk" of the file's bytes.
    let plain = dir.path().join("disk.raw.xz");
    fs::copy(&raw, &plain).unwrap();
    let garbage = dir.path().join("disk.img.gz");
    fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    for (file, format) in [(&plain, "xz"), (&garbage, "gzip")] {
        let target = dir.path().join("out.img");
        let source = format!("file:{}", file.display());
        let output = bs::import(&source, &target, &[]);
        expect_error(&output, &["is not in the", format, "format its name says"]);
        assert!(!target.exists(), "{source} left a target behind");
    }
}
