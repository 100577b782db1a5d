//! Hostile local files: an OCI layout (on removable media, or in a directory another
//! user can write) whose files are links, FIFOs or too large to hold in memory.
//!
//! Inside a layout nothing is followed: a link is refused even when it leads to honest
//! bytes. The layout directory the user names may be a link. Every run is bounded in
//! time and memory ([`bounded`]) and must end in a clear error, never a hang (a FIFO
//! with no writer blocks whoever opens it) or a read of `/dev/zero` into memory.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::common::bootsource::{self as bs, disk_tar, expect_success, image, layout};
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
