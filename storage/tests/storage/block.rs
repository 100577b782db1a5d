//! The block pool: which device is chosen, exhaustion, discard on release, clones of
//! and onto pool devices.

use bootsource_storage::{BackendConfig, CloneMethod, Error, Stage, Store, StoreConfig};

use crate::common::{
    Loop, Mount, SIZE, SIZED, assert_image, data_ranges, digest, import, write_image,
};

#[test]
fn pool_skips_busy_and_small_devices_discards_freed_ones_and_reports_exhaustion() {
    let small = Loop::new(SIZE / 2);
    let mounted = Mount::ext4(32 << 20);
    let a = Loop::new(SIZE * 2);
    let b = Loop::new(SIZE * 2);
    let tmp = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(tmp.path().join("state")).with_backend(
        "pool",
        BackendConfig::block(vec![
            small.dev.clone(),
            mounted.device().to_owned(),
            a.dev.clone(),
            b.dev.clone(),
        ]),
    );
    let store = Store::open(config.clone()).unwrap();

    let v1 = import(&store, "fedora", "pool", 1);
    assert_eq!(v1.path, a.dev);
    assert_image(&v1.path, 1);
    assert_eq!(
        std::fs::read_link(store.current_link("fedora")).unwrap(),
        a.dev
    );
    let v2 = import(&store, "fedora", "pool", 2);
    assert_eq!(v2.path, b.dev);

    let err = store
        .stage("fedora", "pool", &digest(3), SIZED, 1)
        .unwrap_err();
    assert!(matches!(err, Error::PoolExhausted { .. }), "{err}");
    let msg = err.to_string();
    for expected in [
        "too small",
        "mounted or in use",
        "holds fedora-010101010101",
        "holds fedora-020202020202",
    ] {
        assert!(msg.contains(expected), "{expected:?} missing from: {msg}");
    }

    // Releasing v1 discards its device (the loop punches holes in its backing file).
    let report = store.gc("fedora", 1).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(
        data_ranges(&a.backing),
        Vec::<(u64, u64)>::new(),
        "freed device was not discarded"
    );

    // A failed import gives the device back, discarded too.
    let Stage::Staging(staging) = store.stage("fedora", "pool", &digest(3), SIZED, 1).unwrap()
    else {
        panic!("digest 3 is new");
    };
    assert_eq!(staging.path(), a.dev);
    write_image(&*staging.place(), 3);
    store.abort(staging).unwrap();
    assert_eq!(data_ranges(&a.backing), Vec::<(u64, u64)>::new());

    let v3 = import(&store, "fedora", "pool", 3);
    assert_eq!(v3.path, a.dev);

    // Clone out of a block version: a sparse copy, zero runs left as holes.
    let vms = tempfile::tempdir().unwrap();
    let report = store
        .clone_current("fedora", &vms.path().join("vm.img"))
        .unwrap();
    assert_eq!(report.method, CloneMethod::SparseCopy);
    assert_image(&report.target, 3);
    let allocated: u64 = data_ranges(&report.target).iter().map(|(s, e)| e - s).sum();
    assert!(
        allocated < SIZE / 4,
        "{allocated} bytes allocated of {SIZE}"
    );

    // Pool devices are never clone targets.
    let err = store.clone_current("fedora", &b.dev).unwrap_err();
    assert!(matches!(err, Error::TargetOverlaps { .. }), "{err}");
    assert_image(&b.dev, 2);

    // Versions of an old namespace keep their devices.
    let mut lab = config;
    lab.namespace = "lab".into();
    let lab_store = Store::open(lab).unwrap();
    assert_eq!(lab_store.orphans().unwrap().len(), 2);
    assert!(matches!(
        lab_store.stage("fedora", "pool", &digest(1), SIZED, 1),
        Err(Error::PoolExhausted { .. })
    ));
}

/// A pool chooses a device by size: a disk of unknown size is refused before anything
/// is recorded (the importer measures it first for a pool).
#[test]
fn a_pool_refuses_a_disk_of_unknown_size() {
    let a = Loop::new(SIZE * 2);
    let tmp = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(tmp.path().join("state"))
        .with_backend("pool", BackendConfig::block(vec![a.dev.clone()]));
    let store = Store::open(config).unwrap();
    let unknown = bootsource_place::DiskSize::Unknown { limit: SIZE };
    let err = store
        .stage("fedora", "pool", &digest(1), unknown, 1)
        .unwrap_err();
    assert!(matches!(err, Error::SizeNeeded { .. }), "{err}");
    assert!(store.versions("fedora").unwrap().is_empty());
    assert!(store.source_status("fedora").unwrap().importing.is_none());
    let v1 = import(&store, "fedora", "pool", 1);
    assert_eq!(v1.path, a.dev, "the device stayed free");
}
