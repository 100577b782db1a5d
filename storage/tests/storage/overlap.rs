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

#[test]
fn one_device_under_two_names_is_refused_in_the_pool() {
    let a = Loop::new(SIZE * 2);
    let b = Loop::new(SIZE * 2);
    let tmp = tempfile::tempdir().unwrap();
    // A device node of its own for `a`, as a udev rule or an admin's mknod makes one.
    let meta = std::fs::metadata(&a.dev).unwrap();
    let (major, minor) = {
        use std::os::unix::fs::MetadataExt;
        (libc::major(meta.rdev()), libc::minor(meta.rdev()))
    };
    let node = tmp.path().join("golden-disk");
    crate::common::run(
        std::process::Command::new("mknod")
            .arg(&node)
            .arg("b")
            .args([major.to_string(), minor.to_string()]),
    );
    let state = tmp.path().join("state");
    let pools = [
        vec![("pool", vec![a.dev.clone(), node.clone()])],
        vec![
            ("pool", vec![a.dev.clone(), b.dev.clone()]),
            ("more", vec![node.clone()]),
        ],
    ];
    for backends in pools {
        let config = backends
            .iter()
            .fold(StoreConfig::new(&state), |c, (name, devices)| {
                c.with_backend(name, BackendConfig::block(devices.clone()))
            });
        let err = Store::open(config).unwrap_err();
        assert!(
            matches!(err, Error::Config { .. }) && err.to_string().contains("overlaps"),
            "{backends:?}: {err}"
        );
    }
    Store::open(
        StoreConfig::new(&state)
            .with_backend("pool", BackendConfig::block(vec![node, b.dev.clone()])),
    )
    .unwrap();
}
