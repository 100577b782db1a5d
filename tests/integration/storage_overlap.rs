//! Targets that overlap what the daemon's storage manages, refused by device number and
//! sysfs topology rather than by path: the disk under a block pool's partitions (a clone
//! onto it would wipe the partition table and the golden image), a pool partition (an
//! import onto it would overwrite the current version), and either one through a
//! `/dev/disk/by-id`-style symlink. The golden image and the partition table stay
//! byte-identical; a loop device unrelated to the pool is still written.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::common::bootsource::{self as bs, PLAIN_HTTP, expect_error, expect_success};
use crate::common::daemon::{Node, TestDisk};
use crate::common::loopdev::LoopDevice;
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;

/// A node whose block pool is two partitions of one loop disk, with v1 imported.
struct Pool {
    registry: Registry,
    node: Node,
    disk: LoopDevice,
    v1: TestDisk,
    /// Another disk, for imports that must not land on the pool.
    other: TestDisk,
    /// The pool partition holding the current version.
    golden: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pool {
    fn new(seed: u64) -> Pool {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, seed);
        v1.push(&registry, "os/fedora:latest");
        let other = TestDisk::new(dir.path(), "other", 4 * MIB, seed + 1);
        other.push(&registry, "os/other:1");
        let disk = LoopDevice::attach_partitioned(24 * MIB, &[8, 8]);

        let mut node = Node::new();
        node.config.insecure(&registry.host_port());
        node.config
            .source("fedora", &registry.reference("os/fedora:latest"))
            .storage = Some("pool".into());
        node.config.extra = format!(
            "\n[storage.pool]\nkind = \"block\"\ndevices = [\"{}\", \"{}\"]\n",
            disk.partition(1).display(),
            disk.partition(2).display()
        );
        let daemon = node.start();
        let status = daemon.wait_for_current("fedora", &v1.digest);
        drop(daemon);
        let golden = PathBuf::from(status["current"]["path"].as_str().unwrap());
        let pool = Pool {
            registry,
            node,
            disk,
            v1,
            other,
            golden,
            _dir: dir,
        };
        pool.assert_untouched(&pool.snapshot());
        pool
    }

    /// `bootsource import <the other disk> --to TARGET --config <the node's>`.
    fn import_to(&self, target: &Path) -> std::process::Output {
        let config = self.node.config_path();
        bs::import(
            &self.registry.reference("os/other:1"),
            target,
            &[PLAIN_HTTP, "--config", config.to_str().unwrap()],
        )
    }

    /// The partition table (the GPT at the start and its backup at the end).
    fn snapshot(&self) -> (Vec<u8>, Vec<u8>) {
        let (size, len) = (self.disk.size(), usize::try_from(MIB).unwrap());
        (
            self.disk.read_at(0, len),
            self.disk.read_at(size - MIB, len),
        )
    }

    fn assert_untouched(&self, table: &(Vec<u8>, Vec<u8>)) {
        assert!(self.snapshot() == *table, "the partition table changed");
        let raw = std::fs::read(&self.v1.raw).unwrap();
        let mut on_disk = vec![0u8; raw.len()];
        File::open(&self.golden)
            .unwrap()
            .read_exact_at(&mut on_disk, 0)
            .unwrap();
        assert!(
            on_disk == raw,
            "the golden image on {} changed",
            self.golden.display()
        );
    }
}

fn by_id_link(dir: &Path, name: &str, device: &Path) -> PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(device, &link).unwrap();
    link
}

#[test]
fn clone_onto_the_disk_under_the_pool_is_refused() {
    let pool = Pool::new(1101);
    let table = pool.snapshot();
    let links = tempfile::tempdir().unwrap();
    let disk_link = by_id_link(links.path(), "usb-Test_Disk-0:0", pool.disk.path());

    for target in [pool.disk.path(), disk_link.as_path()] {
        let out = pool.node.clone_to("fedora", target);
        expect_error(&out, &["contains", "manages"]);
        pool.assert_untouched(&table);
    }
    let other_pool_member = if pool.golden == pool.disk.partition(1) {
        pool.disk.partition(2)
    } else {
        pool.disk.partition(1)
    };
    expect_error(
        &pool.node.clone_to("fedora", &other_pool_member),
        &["manages"],
    );
    pool.assert_untouched(&table);

    let unrelated = LoopDevice::attach(8 * MIB);
    unrelated.fill(0xff);
    expect_success(&pool.node.clone_to("fedora", unrelated.path()), "clone");
    let raw = std::fs::read(&pool.v1.raw).unwrap();
    assert!(unrelated.read_at(0, raw.len()) == raw, "the clone differs");
}

#[test]
fn import_onto_a_pool_member_is_refused() {
    let pool = Pool::new(1102);
    let table = pool.snapshot();
    let links = tempfile::tempdir().unwrap();
    let golden_link = by_id_link(links.path(), "usb-Test_Disk-0:0-part1", &pool.golden);

    for (target, relation) in [
        (pool.golden.clone(), "is"),
        (golden_link, "is"),
        (pool.disk.path().to_owned(), "contains"),
    ] {
        expect_error(&pool.import_to(&target), &[relation, "manages"]);
        pool.assert_untouched(&table);
    }

    // A device the config does not manage is written as before.
    let unrelated = LoopDevice::attach(8 * MIB);
    let out = pool.import_to(unrelated.path());
    expect_success(&out, "import");
    let raw = std::fs::read(&pool.other.raw).unwrap();
    assert!(unrelated.read_at(0, raw.len()) == raw, "the import differs");
    pool.assert_untouched(&table);

    // A config named but missing is an error, not "nothing managed".
    let missing = links.path().join("missing.toml");
    let out = bs::import(
        &pool.registry.reference("os/other:1"),
        unrelated.path(),
        &[PLAIN_HTTP, "--config", missing.to_str().unwrap()],
    );
    expect_error(&out, &["missing.toml"]);
}
