//! Changing a source's backend, changing the namespace, and backends that cannot do
//! what their kind promises.

use std::fs;

use bootsource_storage::{BackendConfig, BackendKind, Error, Format, Stage, Store, StoreConfig};

use crate::common::{Mount, SIZED, assert_image, digest, import, write_image};

#[test]
fn backend_change_imports_afresh_and_only_then_removes_the_old_versions() {
    let xfs = Mount::xfs();
    let tmp = tempfile::tempdir().unwrap();
    let old_root = tmp.path().join("images");
    let new_root = xfs.path.join("images");
    let store = Store::open(
        StoreConfig::new(tmp.path().join("state"))
            .with_backend("old", BackendConfig::files(BackendKind::Dir, &old_root))
            .with_backend(
                "new",
                BackendConfig::files(BackendKind::Reflink, &new_root).with_format(Format::Volume),
            ),
    )
    .unwrap();
    let v1 = import(&store, "fedora", "old", 1);
    let v2 = import(&store, "fedora", "old", 2);

    // The config now says `storage = "new"`: the same digest is imported afresh there.
    let Stage::Staging(staging) = store.stage("fedora", "new", &digest(2), SIZED, 1).unwrap()
    else {
        panic!("digest 2 is not on the new backend yet");
    };
    write_image(&*staging.place(), 2);
    // Not published yet: nothing on the old backend may go.
    assert!(store.gc("fedora", 3).unwrap().removed.is_empty());
    assert!(v1.path.exists() && v2.path.exists());
    store.abort(staging).unwrap();
    assert_eq!(store.current("fedora").unwrap().unwrap().path, v2.path);

    let Stage::Staging(staging) = store.stage("fedora", "new", &digest(2), SIZED, 1).unwrap()
    else {
        panic!("digest 2 is not on the new backend yet");
    };
    write_image(&*staging.place(), 2);
    let moved = store.commit(staging).unwrap();
    assert_eq!(moved.backend, "new");
    assert!(moved.path.starts_with(&new_root));
    assert_image(&moved.path, 2);

    let report = store.gc("fedora", 3).unwrap();
    let mut removed: Vec<_> = report
        .removed
        .iter()
        .map(|v| (v.backend.as_str(), v.volume.to_string()))
        .collect();
    removed.sort();
    assert!(removed.iter().all(|(b, _)| *b == "old"), "{removed:?}");
    assert!(!v1.path.exists() && !v2.path.exists());
    let versions = store.versions("fedora").unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].path, moved.path);
}

#[test]
fn namespace_change_moves_nothing_and_reports_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    let config = StoreConfig::new(tmp.path().join("state"))
        .with_backend("local", BackendConfig::files(BackendKind::Dir, &images));
    let old = Store::open(config.clone()).unwrap();
    let v1 = import(&old, "fedora", "local", 1);
    let old_link = old.current_link("fedora");
    drop(old);

    let mut lab = config.clone();
    lab.namespace = "lab-images".into();
    let store = Store::open(lab).unwrap();
    assert_eq!(store.current("fedora").unwrap(), None);
    let orphans = store.orphans().unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(
        (orphans[0].namespace.as_str(), &orphans[0].volume),
        ("os-images", &v1.volume)
    );
    assert_image(&v1.path, 1);
    assert_eq!(fs::read_link(&old_link).unwrap(), v1.path);

    // Same digest in the new namespace: a new volume there, the old one untouched.
    let v1_lab = import(&store, "fedora", "local", 1);
    assert!(v1_lab.path.starts_with(images.join("lab-images")));
    import(&store, "fedora", "local", 2);
    store.gc("fedora", 1).unwrap();
    assert_image(&v1.path, 1);
    assert_eq!(store.orphans().unwrap().len(), 1);

    let report = store.remove_orphans().unwrap();
    assert_eq!(report.removed.len(), 1);
    assert!(!v1.path.exists());
    assert!(
        fs::symlink_metadata(&old_link).is_err(),
        "the old namespace's link goes too"
    );
    assert!(store.orphans().unwrap().is_empty());
}

#[test]
fn backends_are_probed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    // The temp dir is ext4: no reflinks, not btrfs.
    let err = Store::open(StoreConfig::new(tmp.path().join("state")).with_backend(
        "fast",
        BackendConfig::files(BackendKind::Reflink, tmp.path().join("r")),
    ))
    .unwrap_err();
    assert!(
        matches!(err, Error::Config { .. }) && err.to_string().contains("reflink=1"),
        "{err}"
    );
    let err = Store::open(StoreConfig::new(tmp.path().join("state")).with_backend(
        "subvols",
        BackendConfig::files(BackendKind::Btrfs, tmp.path().join("b")),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("not on btrfs"), "{err}");
    let err = Store::open(StoreConfig::new(tmp.path().join("state")).with_backend(
        "local",
        BackendConfig::files(BackendKind::Dir, tmp.path().join("d")).with_format(Format::Snapshot),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("format = \"snapshot\""), "{err}");
}
