//! Clones on each backend: reflinks share extents, sparse copies keep holes, block
//! targets get zero ranges zeroed rather than written; managed paths are refused.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt;

use bootsource_storage::{
    BackendConfig, BackendKind, CloneMethod, Error, Format, Store, StoreConfig,
};

use crate::common::{self, Loop, Mount, SIZE, assert_image, data_ranges, filefrag, import};

fn assert_shares_extents(path: &std::path::Path) {
    let frag = filefrag(path);
    assert!(
        frag.contains("shared"),
        "no shared extents in {}:\n{frag}",
        path.display()
    );
}

#[test]
fn reflink_clones_share_extents() {
    let xfs = Mount::xfs();
    let store = Store::open(StoreConfig::new(xfs.path.join("state")).with_backend(
        "fast",
        BackendConfig::files(BackendKind::Reflink, xfs.path.join("images")),
    ))
    .unwrap();
    let v1 = import(&store, "fedora", "fast", 1);
    let vms = xfs.path.join("vms");
    fs::create_dir(&vms).unwrap();
    let report = store.clone_current("fedora", &vms.join("vm1.img")).unwrap();
    assert_eq!(report.method, CloneMethod::Reflink);
    assert_eq!(report.bytes_written, 0);
    assert_image(&report.target, 1);
    assert_shares_extents(&report.target);
    assert_shares_extents(&v1.path);

    // The clone is a VM disk: writable, and writing it leaves the version alone.
    fs::OpenOptions::new()
        .write(true)
        .open(&report.target)
        .unwrap()
        .write_all_at(b"vm", 0)
        .unwrap();
    assert_image(&v1.path, 1);
}

#[test]
fn btrfs_versions_are_subvolumes_and_clones_share_extents() {
    let btrfs = Mount::btrfs();
    let store = Store::open(
        StoreConfig::new(btrfs.path.join("state"))
            .with_backend(
                "snap",
                BackendConfig::files(BackendKind::Btrfs, btrfs.path.join("snap")),
            )
            .with_backend(
                "vol",
                BackendConfig::files(BackendKind::Btrfs, btrfs.path.join("vol"))
                    .with_format(Format::Volume),
            ),
    )
    .unwrap();
    let snap = import(&store, "fedora", "snap", 1);
    let vol = import(&store, "centos", "vol", 2);
    for v in [&snap, &vol] {
        let subvolume = v.path.parent().unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(subvolume).unwrap()),
            256
        );
    }
    // A snapshot-format version is a read-only snapshot: not even root can add to it.
    let err = fs::write(snap.path.parent().unwrap().join("extra"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");

    let vms = btrfs.path.join("vms");
    fs::create_dir(&vms).unwrap();
    for (source, seed) in [("fedora", 1), ("centos", 2)] {
        let report = store
            .clone_current(source, &vms.join(format!("{source}.img")))
            .unwrap();
        assert_eq!(report.method, CloneMethod::Reflink);
        assert_image(&report.target, seed);
        assert_shares_extents(&report.target);
    }

    // Removal deletes the subvolumes, read-only snapshots included.
    import(&store, "fedora", "snap", 3);
    store.gc("fedora", 1).unwrap();
    assert!(!snap.path.parent().unwrap().exists());
    assert_eq!(
        common::names_in(&btrfs.path.join("snap/os-images/fedora/.staging")),
        Vec::<String>::new()
    );
}

#[test]
fn dir_clones_are_sparse_copies_and_block_targets_are_zeroed_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(tmp.path().join("state")).with_backend(
        "local",
        BackendConfig::files(BackendKind::Dir, tmp.path().join("images")),
    ))
    .unwrap();
    let v1 = import(&store, "fedora", "local", 1);
    let vms = tmp.path().join("vms");
    fs::create_dir(&vms).unwrap();

    // ext4 has no reflinks: a sparse copy with the same holes.
    let report = store.clone_current("fedora", &vms.join("vm1.img")).unwrap();
    assert_eq!(report.method, CloneMethod::SparseCopy);
    assert_image(&report.target, 1);
    assert_eq!(data_ranges(&report.target), data_ranges(&v1.path));
    let data: u64 = common::extents(1).iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(report.bytes_written, data);

    // A block device full of old data: image ranges of zeros must read as zeros, and
    // the backing file shows they were zeroed (unallocated or unwritten), not written.
    let lo = Loop::new(SIZE + (1 << 20));
    fs::write(
        &lo.backing,
        vec![0xff; usize::try_from(SIZE).unwrap() + (1 << 20)],
    )
    .unwrap();
    let report = store.clone_current("fedora", &lo.dev).unwrap();
    assert_eq!(report.method, CloneMethod::SparseCopy);
    assert_image(&lo.dev, 1);
    let mut tail = vec![0u8; 1 << 20];
    fs::File::open(&lo.dev)
        .unwrap()
        .read_exact_at(&mut tail, SIZE)
        .unwrap();
    assert!(
        tail.iter().all(|&b| b == 0xff),
        "bytes past the image are left alone"
    );
    let backing_data = common::written_ranges(&lo.backing);
    for (start, end) in [(64 << 10, 3 << 20), ((3 << 20) + (128 << 10), SIZE - 4096)] {
        assert!(
            backing_data.iter().all(|&(s, e)| e <= start || s >= end),
            "zero range {start}..{end} was written: data ranges {backing_data:?}"
        );
    }

    // Too small a device is refused.
    let small = Loop::new(SIZE / 2);
    assert!(matches!(
        store.clone_current("fedora", &small.dev),
        Err(Error::CloneTargetTooSmall { .. })
    ));
}

#[test]
fn clones_into_managed_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    let state = tmp.path().join("state");
    let store = Store::open(
        StoreConfig::new(&state)
            .with_backend("local", BackendConfig::files(BackendKind::Dir, &images)),
    )
    .unwrap();
    let v1 = import(&store, "fedora", "local", 1);
    let vms = tmp.path().join("vms");
    fs::create_dir(&vms).unwrap();
    std::os::unix::fs::symlink(images.join("os-images"), vms.join("golden")).unwrap();
    for target in [
        images.join("os-images/fedora/vm.img"),
        images.join("os-images/vm.img"),
        images.join("vm.img"),
        state.join("os-images/fedora/vm.img"),
        vms.join("golden/fedora/vm.img"),
    ] {
        let err = store.clone_current("fedora", &target).unwrap_err();
        assert!(
            matches!(err, Error::TargetForbidden { .. }),
            "{}: {err}",
            target.display()
        );
        assert!(!target.exists());
    }
    fs::write(vms.join("taken.img"), b"mine").unwrap();
    assert!(matches!(
        store.clone_current("fedora", &vms.join("taken.img")),
        Err(Error::CloneTargetExists(_))
    ));
    assert_eq!(fs::read(vms.join("taken.img")).unwrap(), b"mine");
    assert!(matches!(
        store.clone_current("centos", &vms.join("c.img")),
        Err(Error::NoCurrentVersion { .. })
    ));
    let err = store
        .clone_current("fedora", &vms.join("no-such-dir/vm.img"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    assert_image(&v1.path, 1);
}
