//! Garbage collection order: least recently used first, never the current version,
//! never a version a clone holds.

use bootsource_storage::{BackendConfig, BackendKind, Store, StoreConfig, Version};

use crate::common::{import, names_in};

fn volumes<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Vec<String> {
    versions.into_iter().map(|v| v.volume.to_string()).collect()
}

#[test]
fn removes_least_recently_used_first_never_current_never_held() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    let store = Store::open(
        StoreConfig::new(tmp.path().join("state"))
            .with_backend("local", BackendConfig::files(BackendKind::Dir, &images)),
    )
    .unwrap();
    let vms = tmp.path().join("vms");
    std::fs::create_dir(&vms).unwrap();

    let v1 = import(&store, "fedora", "local", 1);
    let v2 = import(&store, "fedora", "local", 2);
    let v3 = import(&store, "fedora", "local", 3);
    // Cloning v1 makes it more recently used than v2 (v2 was current before v3).
    store.clone_version(&v1, &vms.join("vm1.img")).unwrap();
    let v4 = import(&store, "fedora", "local", 4);

    let report = store.gc("fedora", 3).unwrap();
    assert_eq!(volumes(&report.removed), volumes([&v2]));
    assert!(report.held.is_empty());
    assert!(!v2.path.exists());

    // A clone in progress holds v3: it is skipped, v1 (less recently used) goes.
    let hold = store.hold(&store.versions("fedora").unwrap()[1]).unwrap();
    assert_eq!(hold.version().volume, v3.volume);
    let report = store.gc("fedora", 1).unwrap();
    assert_eq!(volumes(&report.removed), volumes([&v1]));
    assert_eq!(volumes(&report.held), volumes([&v3]));
    assert!(v3.path.exists());

    drop(hold);
    let report = store.gc("fedora", 1).unwrap();
    assert_eq!(volumes(&report.removed), volumes([&v3]));

    // Never the current one, even when asked to keep nothing.
    let report = store.gc("fedora", 0).unwrap();
    assert!(report.removed.is_empty());
    assert_eq!(volumes(&store.versions("fedora").unwrap()), volumes([&v4]));
    assert_eq!(
        names_in(&images.join("os-images/fedora")),
        [".staging", v4.volume.as_str()]
    );
    assert_eq!(
        names_in(&tmp.path().join("state/.locks/os-images/local")),
        [format!("{}.lock", v4.volume)]
    );
}
