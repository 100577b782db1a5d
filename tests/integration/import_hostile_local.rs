//! A local attacker: someone who can write the directory of a file target (a shared
//! `/var/lib/vms`, a user's home) while root imports into it.
//!
//! bootsource must never create or truncate a file through a name planted there, and a
//! partial image must never be visible (not after a failure, not even after SIGKILL),
//! since every name it would have used is one an attacker could have planted first.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::bootsource::{
    PLAIN_HTTP, dir_entries, disk_tar, expect_error, expect_success, image, import, layout,
};
use crate::common::daemon::TestDisk;
use crate::common::disk;
use crate::common::oci::{LayerType, Layout};
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;
/// Symlinks planted for the next PIDs: the import's PID falls among them even on a
/// busy machine.
const PLANTED_PIDS: u64 = 3000;

/// Plants `.vm.img.<pid>.partial` → `victim` for the next PIDs (the name bootsource
/// once used for its partial file) and `.vm.img.partial`-like neighbours.
fn plant_symlinks(dir: &Path, victim: &Path) -> usize {
    let last: u64 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in last + 1..=last + PLANTED_PIDS {
        symlink(victim, dir.join(format!(".vm.img.{pid}.partial"))).unwrap();
    }
    usize::try_from(PLANTED_PIDS).unwrap()
}

#[test]
fn planted_symlinks_in_the_target_directory_are_never_followed() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let disk = TestDisk::new(work.path(), "v1", 8 * MIB, 41);
    disk.push(&registry, "os/vm:1");
    let victim = work.path().join("victim");
    fs::write(&victim, b"root's precious file").unwrap();
    let shared = tempfile::tempdir().unwrap();
    let planted = plant_symlinks(shared.path(), &victim);
    let target = shared.path().join("vm.img");

    // A successful import, then one that fails after the target was opened.
    let ok = import(&registry.reference("os/vm:1"), &target, &[PLAIN_HTTP]);
    expect_success(&ok, "import next to planted symlinks");
    assert!(disk.same_as(&target));
    let failed = import(&tampered_layout(work.path()), &target, &[]);
    expect_error(&failed, &["digest mismatch"]);

    assert_eq!(fs::read(&victim).unwrap(), b"root's precious file");
    assert!(
        disk.same_as(&target),
        "a failed import damaged the existing file"
    );
    let entries = dir_entries(shared.path());
    assert_eq!(entries.len(), planted + 1, "leftovers: {entries:?}");
    for entry in &entries {
        let path = shared.path().join(entry);
        if entry != "vm.img" {
            assert_eq!(
                fs::read_link(&path).unwrap(),
                victim,
                "{entry} was replaced"
            );
        }
    }
}

/// An OCI layout whose layer was changed near its end: an import of it opens the
/// target, writes most of the disk, then fails the digest check.
fn tampered_layout(dir: &Path) -> String {
    let raw = dir.join("tampered.raw");
    disk::write_raw_disk(&raw, 4 * MIB, 44);
    let image = image(
        &disk_tar("disk.img", &fs::read(&raw).unwrap()),
        LayerType::OciTar,
    );
    let layout_dir = dir.join("tampered-layout");
    let source = layout(&layout_dir, "1", &image);
    Layout::create(&layout_dir).tamper_blob(image.layers[0].digest(), |bytes| {
        let near_end = bytes.len() - 2000;
        bytes[near_end] ^= 0xff;
    });
    source
}

#[test]
fn a_symlink_at_the_target_name_is_replaced_not_written_through() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let disk = TestDisk::new(work.path(), "v1", 4 * MIB, 42);
    disk.push(&registry, "os/vm:1");
    let victim = work.path().join("victim");
    fs::write(&victim, b"root's precious file").unwrap();
    let shared = tempfile::tempdir().unwrap();
    let target = shared.path().join("vm.img");
    symlink(&victim, &target).unwrap();

    let ok = import(&registry.reference("os/vm:1"), &target, &[PLAIN_HTTP]);
    expect_success(&ok, "import onto a symlink");
    assert_eq!(fs::read(&victim).unwrap(), b"root's precious file");
    assert!(!fs::symlink_metadata(&target).unwrap().is_symlink());
    assert!(disk.same_as(&target));
}

#[test]
fn a_killed_import_leaves_nothing_behind() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let disk = TestDisk::incompressible(work.path(), "big", 16 * MIB, 43);
    disk.push(&registry, "os/big:1");
    let throttle = Throttle::start(&registry);
    throttle.set_rate(2 * MIB);
    let shared = tempfile::tempdir().unwrap();
    let target = shared.path().join("vm.img");

    let mut child = crate::common::bootsource::import_command(
        &throttle.reference("os/big:1"),
        &target,
        &[PLAIN_HTTP],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("bootsource");
    // Killed while it holds its partial image open and has written part of it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(holds_file_in(child.id(), shared.path())
        && throttle.forwarded() > disk.layer_size() / 3)
    {
        assert!(Instant::now() < deadline, "the import never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(dir_entries(shared.path()), Vec::<String>::new());
}

/// Whether process `pid` has a file open in `dir` (named or not: an `O_TMPFILE` shows as
/// `DIR/#INODE (deleted)`).
fn holds_file_in(pid: u32, dir: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let dir = fs::canonicalize(dir).unwrap();
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .any(|link| link.parent() == Some(dir.as_path()))
}
