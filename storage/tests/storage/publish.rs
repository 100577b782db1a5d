//! Staging, sealing and publishing on a `dir` backend; what `status` sees.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;

use bootsource_storage::{BackendConfig, BackendKind, Error, Stage, Store, StoreConfig};

use crate::common::{
    SIZE, SIZED, assert_image, catalog_json, digest, import, names_in, seed_of, write_image,
};

fn dir_store(tmp: &tempfile::TempDir) -> StoreConfig {
    StoreConfig::new(tmp.path().join("state")).with_backend(
        "local",
        BackendConfig::files(BackendKind::Dir, tmp.path().join("images")),
    )
}

#[test]
fn publishes_atomically_and_a_known_digest_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let config = dir_store(&tmp);
    let store = Store::open(config.clone()).unwrap();
    assert_eq!(store.current("fedora").unwrap(), None);

    let v1 = import(&store, "fedora", "local", 1);
    assert_eq!(v1.volume.as_str(), "fedora-010101010101");
    assert_eq!(
        v1.path,
        tmp.path()
            .join("images/os-images/fedora/fedora-010101010101")
    );
    assert_image(&v1.path, 1);
    let mode = fs::metadata(&v1.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "sealed versions are read-only");
    let link = store.current_link("fedora");
    assert_eq!(link, tmp.path().join("state/os-images/fedora/current"));
    assert_eq!(fs::read_link(&link).unwrap(), v1.path);

    // Same digest again: nothing to import.
    match store
        .stage("fedora", "local", &digest(1), SIZED, 1)
        .unwrap()
    {
        Stage::AlreadyPresent(v) => assert_eq!(v.volume, v1.volume),
        Stage::Staging(s) => panic!("staged {} again", s.volume()),
    }

    let v2 = import(&store, "fedora", "local", 2);
    assert_eq!(store.current("fedora").unwrap().unwrap().volume, v2.volume);
    assert_eq!(fs::read_link(&link).unwrap(), v2.path);
    assert_image(&v1.path, 1);

    // The tag moved back to digest 1: publish the kept version again.
    let Stage::AlreadyPresent(old) = store
        .stage("fedora", "local", &digest(1), SIZED, 1)
        .unwrap()
    else {
        panic!("digest 1 should be present");
    };
    let again = store.publish(&old).unwrap();
    assert!(again.current);
    assert_eq!(fs::read_link(&link).unwrap(), v1.path);
    assert_eq!(
        names_in(&tmp.path().join("images/os-images/fedora/.staging")),
        Vec::<String>::new()
    );
}

#[test]
fn status_reports_current_and_versions_and_read_only_opens_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = dir_store(&tmp);
    let store = Store::open(config.clone()).unwrap();
    let v1 = import(&store, "fedora", "local", 1);
    let v2 = import(&store, "fedora", "local", 2);

    let ro = Store::open_read_only(config).unwrap();
    let status = ro.sources().unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].current.as_ref(), Some(&v2));
    let volumes: Vec<_> = status[0].versions.iter().map(|v| &v.volume).collect();
    assert_eq!(volumes, [&v1.volume, &v2.volume], "oldest first");

    let before = fs::read(tmp.path().join("state/catalog.json")).unwrap();
    assert!(matches!(
        ro.stage("fedora", "local", &digest(3), SIZED, 1),
        Err(Error::ReadOnly(_))
    ));
    assert!(matches!(ro.gc("fedora", 1), Err(Error::ReadOnly(_))));
    assert_eq!(
        fs::read(tmp.path().join("state/catalog.json")).unwrap(),
        before
    );
}

#[test]
fn a_second_open_leaves_a_live_import_alone_and_abort_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let config = dir_store(&tmp);
    let daemon = Store::open(config.clone()).unwrap();
    let v1 = import(&daemon, "fedora", "local", 1);
    let Stage::Staging(staging) = daemon
        .stage("fedora", "local", &digest(2), SIZED, 1)
        .unwrap()
    else {
        panic!("digest 2 is new");
    };
    write_image(&*staging.place(), 2);

    // `bootsource clone` / `status` opening the store meanwhile must not touch it.
    let other = Store::open(config.clone()).unwrap();
    assert!(staging.path().exists());
    let importing = other.source_status("fedora").unwrap().importing.unwrap();
    assert_eq!(importing.digest, digest(2));
    assert!(matches!(
        other.stage("fedora", "local", &digest(2), SIZED, 1),
        Err(Error::VolumeBusy { .. })
    ));

    daemon.abort(staging).unwrap();
    assert_eq!(daemon.current("fedora").unwrap().unwrap().volume, v1.volume);
    let staging_dir = tmp.path().join("images/os-images/fedora/.staging");
    assert_eq!(names_in(&staging_dir), Vec::<String>::new());
    assert_eq!(
        catalog_json(&tmp.path().join("state"))["volumes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A staging volume dropped without commit or abort (a cancelled task) is removed
    // by the next recovery.
    let Stage::Staging(staging) = daemon
        .stage("fedora", "local", &digest(3), SIZED, 1)
        .unwrap()
    else {
        panic!("digest 3 is new");
    };
    write_image(&*staging.place(), 3);
    drop(staging);
    other.recover().unwrap();
    assert_eq!(names_in(&staging_dir), Vec::<String>::new());
    assert!(other.source_status("fedora").unwrap().importing.is_none());
}

#[test]
fn a_wrongly_sized_image_is_not_published() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(dir_store(&tmp)).unwrap();
    let v1 = import(&store, "fedora", "local", 1);
    let Stage::Staging(staging) = store
        .stage("fedora", "local", &digest(2), SIZED, 1)
        .unwrap()
    else {
        panic!("digest 2 is new");
    };
    write_image(&*staging.place(), 2);
    // Someone cut the staging file short behind the importer's back.
    OpenOptions::new()
        .write(true)
        .open(staging.path())
        .unwrap()
        .set_len(SIZE - 512)
        .unwrap();
    let err = store.commit(staging).unwrap_err();
    assert!(matches!(err, Error::StagingSize { .. }), "{err}");
    assert_eq!(store.current("fedora").unwrap().unwrap().volume, v1.volume);
    assert_eq!(store.versions("fedora").unwrap().len(), 1);
    assert_eq!(
        names_in(&tmp.path().join("images/os-images/fedora")),
        [".staging", "fedora-010101010101"]
    );
}

#[test]
fn concurrent_imports_lose_no_catalog_update() {
    let tmp = tempfile::tempdir().unwrap();
    let config = dir_store(&tmp);
    let threads: Vec<_> = ["fedora", "centos", "ubuntu", "debian"]
        .into_iter()
        .map(|source| {
            // One store per thread, as separate processes would have.
            let store = Store::open(config.clone()).unwrap();
            std::thread::spawn(move || {
                for seed in 1..=3 {
                    import(&store, source, "local", seed);
                }
                store.gc(source, 2).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open(config).unwrap();
    let sources = store.sources().unwrap();
    assert_eq!(sources.len(), 4);
    for s in sources {
        assert_eq!(s.versions.len(), 2, "{}", s.name);
        assert_eq!(seed_of(&s.current.unwrap().digest), 3);
    }
}

/// A disk whose size is known only at its end: the staging file grows as written, and
/// the version takes the length the importer ends it at. Past its limit it is refused,
/// and aborted it leaves nothing.
#[test]
fn a_staging_file_of_unknown_size_grows_and_takes_its_length_at_commit() {
    use bootsource_place::DiskSize;
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(dir_store(&tmp)).unwrap();
    let unknown = DiskSize::Unknown { limit: SIZE * 2 };
    let Stage::Staging(staging) = store
        .stage("fedora", "local", &digest(1), unknown, 1)
        .unwrap()
    else {
        panic!("nothing there yet");
    };
    assert_eq!(staging.place().size(), unknown);
    write_image(&*staging.place(), 1);
    staging.place().end_at(SIZE).unwrap();
    let version = store.commit(staging).unwrap();
    assert_eq!(version.size, SIZE);
    assert_eq!(fs::metadata(&version.path).unwrap().len(), SIZE);
    assert_image(&version.path, 1);
    assert_eq!(store.versions("fedora").unwrap()[0].size, SIZE);

    let Stage::Staging(staging) = store
        .stage("fedora", "local", &digest(2), unknown, 1)
        .unwrap()
    else {
        panic!("digest 2 is new");
    };
    let err = staging.place().write_at(SIZE * 2 - 1, &[1, 1]).unwrap_err();
    assert!(
        matches!(err, bootsource_place::Error::PastEnd { .. }),
        "{err}"
    );
    store.abort(staging).unwrap();
    assert_eq!(
        names_in(&tmp.path().join("images/os-images/fedora/.staging")),
        Vec::<String>::new()
    );
    assert_eq!(store.versions("fedora").unwrap().len(), 1);
}
