//! Storage through the daemon and the CLI, on real file systems: a source whose backend
//! changes is imported afresh onto the new one while the old version stays current, and
//! only then is the old version removed (also when the old backend was dropped from the
//! config); a namespace change imports into the new namespace and reports the old
//! versions as orphaned, moving nothing; `bootsource clone` makes a sparse copy from a
//! `dir` backend and a reflink that shares extents from a `reflink` backend (XFS,
//! reflink=1, on a loop device), and refuses targets inside the state directory, the
//! storage roots or the namespace. A block pool holds one version per device, zeroes
//! what the disk leaves empty, and makes room for a new version when it is full.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::common::bootsource::{expect_error, expect_success};
use crate::common::daemon::{Node, TestDisk, current_digest, source_of, version_digests};
use crate::common::loopdev::LoopDevice;
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;
use crate::common::xfs::{Xfs, shared_extents};
use crate::common::{disk, tools};
use serde_json::Value;

const MIB: u64 = 1 << 20;

fn current_path(source: &Value) -> PathBuf {
    PathBuf::from(source["current"]["path"].as_str().expect("current.path"))
}

fn version_paths(source: &Value) -> Vec<PathBuf> {
    source["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v["path"].as_str().unwrap()))
        .collect()
}

/// The file system type of `path` as `stat -f` names it (`ext2/ext3`, `xfs`, `btrfs`…).
fn fs_type(path: &Path) -> String {
    let out = tools::run_command(Command::new("stat").args(["-f", "-c", "%T"]).arg(path));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn clone_is_a_sparse_copy_on_dir_and_shares_extents_on_reflink() {
    let xfs = Xfs::mount();
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let fedora = TestDisk::new(dir.path(), "fedora", 16 * MIB, 601);
    let cirros = TestDisk::new(dir.path(), "cirros", 16 * MIB, 602);
    fedora.push(&registry, "os/fedora:latest");
    cirros.push(&registry, "os/cirros:latest");

    let golden = xfs.path().join("golden");
    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config.backend("fast", "reflink", &golden);
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .storage = Some("local".into());
    node.config
        .source("cirros", &registry.reference("os/cirros:latest"))
        .storage = Some("fast".into());
    let daemon = node.start();
    let fedora_status = daemon.wait_for_current("fedora", &fedora.digest);
    let cirros_status = daemon.wait_for_current("cirros", &cirros.digest);
    let fedora_golden = current_path(&fedora_status);
    let cirros_golden = current_path(&cirros_status);
    assert!(
        cirros_golden.starts_with(&golden),
        "{}",
        cirros_golden.display()
    );

    // dir: a sparse copy, same content, holes kept, a file of its own.
    let vms = dir.path().join("vms");
    fs::create_dir(&vms).unwrap();
    let vm1 = vms.join("vm1.img");
    let out = expect_success(&node.clone_to("fedora", &vm1), "clone");
    println!("{out}");
    if !["xfs", "btrfs"].contains(&fs_type(&vms).as_str()) {
        assert!(out.contains("sparse copy"), "{out}");
    }
    assert!(fedora.same_as(&vm1), "the clone differs from the disk");
    assert_eq!(disk::qemu_img_info(&vm1)["format"], "raw");
    common::bootsource::assert_sparse(&vm1, 0.6);
    let golden_ino = fs::metadata(&fedora_golden).unwrap().ino();
    assert_ne!(fs::metadata(&vm1).unwrap().ino(), golden_ino);
    OpenOptions::new()
        .write(true)
        .open(&vm1)
        .expect("the clone is writable")
        .write_all_at(b"a VM wrote here", 0)
        .unwrap();
    assert!(
        fedora.same_as(&fedora_golden),
        "writing the clone changed the golden image"
    );

    // reflink: shares every data extent with the version, copies nothing.
    let vms_on_xfs = xfs.path().join("vms");
    fs::create_dir(&vms_on_xfs).unwrap();
    let vm2 = vms_on_xfs.join("vm2.img");
    let out = expect_success(&node.clone_to("cirros", &vm2), "clone");
    println!("{out}");
    assert!(out.contains("shared extents"), "{out}");
    assert!(cirros.same_as(&vm2));
    let (extents, shared, filefrag) = shared_extents(&vm2);
    assert!(
        extents > 0 && shared == extents,
        "not every extent of the clone is shared:\n{filefrag}"
    );
    OpenOptions::new()
        .write(true)
        .open(&vm2)
        .unwrap()
        .write_all_at(b"a VM wrote here", 4096)
        .unwrap();
    assert!(
        cirros.same_as(&cirros_golden),
        "writing the reflink clone changed the golden image"
    );
    assert!(cirros.same_as(&node.current_link("cirros")));

    // Refused: anything bootsource manages, also through a symlink; nothing created.
    let ns_link = vms.join("sneaky");
    std::os::unix::fs::symlink(node.config.state_dir.join("os-images"), &ns_link).unwrap();
    for target in [
        node.config.state_dir.join("os-images/fedora/vm.img"),
        node.config.state_dir.join("vm.img"),
        node.config.storage[0].path.join("os-images/fedora/vm.img"),
        node.config.storage[0].path.join("vm.img"),
        golden.join("os-images/vm.img"),
        ns_link.join("vm.img"),
    ] {
        let stderr = expect_error(&node.clone_to("fedora", &target), &["inside", "manages"]);
        assert!(
            !target.exists(),
            "{} was created: {stderr}",
            target.display()
        );
    }
    expect_error(&node.clone_to("fedora", &vm1), &["exists"]);
    expect_error(&node.clone_to("nosuch", &vms.join("x.img")), &["nosuch"]);
}

#[test]
fn a_backend_change_imports_afresh_before_removing_the_old_version() {
    let registry = Registry::start();
    let throttle = Throttle::start(&registry);
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::incompressible(dir.path(), "v1", 24 * MIB, 701);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    let old_root = node.config.storage[0].path.clone();
    let new_root = node.path().join("storage-b");
    node.config.backend("b", "dir", &new_root);
    node.config.insecure(&throttle.host_port());
    node.config
        .source("fedora", &throttle.reference("os/fedora:latest"))
        .storage = Some("local".into());
    let daemon = node.start();
    let before = daemon.wait_for_current("fedora", &v1.digest);
    let old_path = current_path(&before);
    assert!(old_path.starts_with(&old_root), "{}", old_path.display());

    // Same image, new backend: while the new copy is imported the old one stays current.
    throttle.set_rate(4 * MIB);
    node.config.source_mut("fedora").storage = Some("b".into());
    node.reload();
    daemon.wait_for("the import onto the new backend", || {
        let s = daemon.source_status("fedora");
        (s["importing"]["bytes_done"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    let during = daemon.source_status("fedora");
    assert_eq!(during["storage"], "b");
    assert_eq!(during["current"], before["current"], "{during}");
    assert!(v1.same_as(&old_path));
    assert!(v1.same_as(&node.current_link("fedora")));

    throttle.unlimited();
    let after = daemon.wait_for("the version on the old backend to be removed", || {
        let s = daemon.source_status("fedora");
        let paths = version_paths(&s);
        (paths.len() == 1 && paths[0].starts_with(&new_root)).then_some(s)
    });
    assert_eq!(current_digest(&after), Some(v1.digest.clone()));
    let new_path = current_path(&after);
    assert!(new_path.starts_with(&new_root), "{}", new_path.display());
    assert!(v1.same_as(&new_path));
    assert!(v1.same_as(&node.current_link("fedora")));
    assert!(!old_path.exists(), "{} is still there", old_path.display());
    assert_eq!(version_digests(&after), vec![v1.digest.clone()]);
    assert!(node.staging_leftovers().is_empty());
    // The count goes up last (after status shows the result): wait for it, then it
    // must be 2, imported afresh, not moved.
    let success = [("source", "fedora"), ("result", "success")];
    daemon.wait_for("the second import to be counted", || {
        (daemon.metrics().value("bootsource_imports_total", &success) >= 2.0).then_some(())
    });
    assert_eq!(
        daemon.metrics().value("bootsource_imports_total", &success),
        2.0,
        "imported afresh, not moved"
    );
}

#[test]
fn a_namespace_change_imports_into_the_new_namespace_and_reports_orphans() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 801);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"));
    let daemon = node.start();
    let before = daemon.wait_for_current("fedora", &v1.digest);
    let old_path = current_path(&before);
    let old_link = node.current_link("fedora");
    assert!(
        old_path.to_str().unwrap().contains("/os-images/"),
        "{}",
        old_path.display()
    );
    assert_eq!(daemon.status()["orphaned"], serde_json::json!([]));

    node.config.namespace = Some("golden-images".into());
    node.reload();
    let after = daemon.wait_for_current("fedora", &v1.digest);
    let new_path = current_path(&after);
    assert_ne!(new_path, old_path);
    assert!(
        new_path.to_str().unwrap().contains("/golden-images/"),
        "{}",
        new_path.display()
    );
    assert!(v1.same_as(&new_path));
    assert!(v1.same_as(&node.current_link("fedora")));
    assert_ne!(node.current_link("fedora"), old_link);
    assert_eq!(version_paths(&after), vec![new_path.clone()]);

    // The old version is reported, not moved or deleted.
    let status = daemon.status();
    let orphaned = status["orphaned"].as_array().expect("orphaned array");
    assert_eq!(orphaned.len(), 1, "{status}");
    assert_eq!(orphaned[0]["digest"], v1.digest.as_str());
    assert_eq!(Path::new(orphaned[0]["path"].as_str().unwrap()), old_path);
    assert!(v1.same_as(&old_path), "the orphaned version was touched");
    assert!(
        daemon.log().contains("orphaned"),
        "the daemon does not log the orphan:\n{}",
        daemon.log()
    );

    // And the same with the daemon stopped.
    daemon.kill9();
    let status = node.status();
    assert_eq!(status["orphaned"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(
        current_path(source_of(&status, "fedora")),
        new_path,
        "{status}"
    );
}

#[test]
fn a_backend_dropped_from_the_config_still_has_its_old_versions_removed() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 901);
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"));
    let daemon = node.start();
    let before = daemon.wait_for_current("fedora", &v1.digest);
    let old_path = current_path(&before);

    // Like changing the default storage class: the old backend is gone from the config.
    let new_root = node.path().join("storage-new");
    node.config.storage.clear();
    node.config.backend("new", "dir", &new_root);
    node.reload();
    let after = daemon.wait_for("the version on the dropped backend to be removed", || {
        let s = daemon.source_status("fedora");
        let paths = version_paths(&s);
        (paths.len() == 1 && paths[0].starts_with(&new_root)).then_some(s)
    });
    assert_eq!(current_digest(&after), Some(v1.digest.clone()));
    assert!(v1.same_as(&current_path(&after)));
    assert!(v1.same_as(&node.current_link("fedora")));
    assert!(!old_path.exists(), "{} is still there", old_path.display());
    assert_eq!(daemon.status()["orphaned"], serde_json::json!([]));
}

#[test]
fn a_block_pool_takes_each_version_on_its_own_device_and_frees_the_oldest() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 31);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 32);
    let v3 = TestDisk::new(dir.path(), "v3", 4 * MIB, 33);
    // Two 8 MiB devices full of 0xff: what the disk leaves zero must read as zero.
    let devices: Vec<LoopDevice> = (0..2).map(|_| LoopDevice::attach(8 * MIB)).collect();
    for d in &devices {
        d.fill(0xff);
    }
    v1.push(&registry, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&registry.host_port());
    node.config
        .source("fedora", &registry.reference("os/fedora:latest"))
        .storage = Some("pool".into());
    node.config.source_mut("fedora").imports_to_keep = Some(2);
    let list: Vec<String> = devices
        .iter()
        .map(|d| format!("\"{}\"", d.path().display()))
        .collect();
    node.config.extra = format!(
        "\n[storage.pool]\nkind = \"block\"\ndevices = [{}]\n",
        list.join(", ")
    );
    let daemon = node.start();

    let on_device = |disk: &TestDisk, status: &Value| {
        let path = current_path(status);
        let device = devices
            .iter()
            .find(|d| d.path() == path)
            .unwrap_or_else(|| panic!("{} is not a pool device", path.display()));
        let raw = std::fs::read(&disk.raw).unwrap();
        assert!(
            device.read_at(0, raw.len()) == raw,
            "{} does not hold the disk",
            path.display()
        );
        path
    };
    let first = on_device(&v1, &daemon.wait_for_current("fedora", &v1.digest));

    v2.push(&registry, "os/fedora:latest");
    node.poll();
    let second = on_device(&v2, &daemon.wait_for_current("fedora", &v2.digest));
    assert_ne!(first, second, "two versions on one device");

    // The pool is full with two versions kept: to import v3, the version collection
    // would remove afterwards (v1, never the current v2) goes first, and v3 takes its
    // device.
    v3.push(&registry, "os/fedora:latest");
    node.poll();
    let fedora = daemon.wait_for_current("fedora", &v3.digest);
    assert_eq!(
        on_device(&v3, &fedora),
        first,
        "v3 did not take v1's freed device"
    );
    assert_eq!(
        version_digests(&fedora),
        [v2.digest.clone(), v3.digest.clone()]
    );
    assert!(devices.iter().any(|d| d.path() == second));
    let raw2 = std::fs::read(&v2.raw).unwrap();
    let keeper = devices.iter().find(|d| d.path() == second).unwrap();
    assert!(keeper.read_at(0, raw2.len()) == raw2, "v2 was damaged");
}
