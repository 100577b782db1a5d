//! `Store::refuse_overlap` on real devices: pool devices (also through a symlink), the
//! devices under a root's ext4 and btrfs file systems, paths inside a root; an
//! unrelated device passes.

use bootsource_storage::{BackendConfig, BackendKind, Error, Store, StoreConfig};

use crate::common::{Loop, Mount, SIZE, assert_image, import};

#[test]
fn pool_devices_and_root_file_systems_are_refused_by_device() {
    let ext4 = Mount::ext4(32 << 20);
    let btrfs = Mount::btrfs();
    let pool = Loop::new(SIZE * 2);
    let unrelated = Loop::new(SIZE);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(
        StoreConfig::new(tmp.path().join("state"))
            .with_backend(
                "local",
                BackendConfig::files(BackendKind::Dir, ext4.path.join("images")),
            )
            .with_backend(
                "snap",
                BackendConfig::files(BackendKind::Btrfs, btrfs.path.join("snap")),
            )
            .with_backend("pool", BackendConfig::block(vec![pool.dev.clone()])),
    )
    .unwrap();
    let version = import(&store, "fedora", "pool", 1);

    let link = tmp.path().join("by-id-pool");
    std::os::unix::fs::symlink(&pool.dev, &link).unwrap();
    for (target, what) in [
        (pool.dev.as_path(), "pool device"),
        (link.as_path(), "pool device"),
        (ext4.device(), "the file system of"),
        (btrfs.device(), "the file system of"),
    ] {
        let err = store.refuse_overlap(target).unwrap_err();
        assert!(
            matches!(err, Error::TargetOverlaps { .. }) && err.to_string().contains(what),
            "{}: {err}",
            target.display()
        );
    }
    let err = store.clone_version(&version, &link).unwrap_err();
    assert!(matches!(err, Error::TargetOverlaps { .. }), "{err}");
    assert_image(&pool.dev, 1);

    let inside = ext4.path.join("images/os-images/vm.img");
    assert!(matches!(
        store.refuse_overlap(&inside),
        Err(Error::TargetForbidden { .. })
    ));
    store.refuse_overlap(&unrelated.dev).unwrap();
    store.refuse_overlap(&tmp.path().join("vm.img")).unwrap();
}
