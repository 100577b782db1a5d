//! Volume identity: a version is found by its full manifest digest, never by the short
//! volume id alone, so two digests that share the id's 48-bit prefix are two versions.

use std::fs;

use bootsource_storage::{BackendConfig, BackendKind, Digest, Stage, Store, StoreConfig};

use crate::common::{SIZED, assert_image, image, write_image};

/// Two digests sharing their first 12 hex digits (48 bits): what a registry that
/// grinds manifests for a prefix can serve.
fn colliding_digests() -> (Digest, Digest) {
    let prefix = "0123456789ab";
    let a = format!("sha256:{prefix}{}", "a".repeat(52))
        .parse()
        .unwrap();
    let b = format!("sha256:{prefix}{}", "b".repeat(52))
        .parse()
        .unwrap();
    (a, b)
}

fn import_digest(store: &Store, digest: &Digest, seed: u8) -> bootsource_storage::Version {
    match store.stage("fedora", "local", digest, SIZED, 1).unwrap() {
        Stage::Staging(staging) => {
            write_image(&*staging.place(), seed);
            store.commit(staging).unwrap()
        }
        Stage::AlreadyPresent(v) => panic!(
            "importing {digest} found {} (digest {}) already present",
            v.volume, v.digest
        ),
    }
}

#[test]
fn a_digest_sharing_the_short_id_is_a_new_version_not_already_present() {
    let tmp = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(tmp.path().join("state")).with_backend(
        "local",
        BackendConfig::files(BackendKind::Dir, tmp.path().join("images")),
    );
    let store = Store::open(config.clone()).unwrap();
    let (crafted, update) = colliding_digests();

    let first = import_digest(&store, &crafted, 1);
    let second = import_digest(&store, &update, 2);
    assert_ne!(first.volume, second.volume);
    assert_eq!(second.digest, update);
    let current = store.current("fedora").unwrap().unwrap();
    assert_eq!(current.digest, update, "the update did not become current");
    assert_image(&current.path, 2);
    assert_image(&first.path, 1);

    // Each digest finds its own version again, also after a restart.
    let store = Store::open(config).unwrap();
    for (digest, seed) in [(&crafted, 1), (&update, 2)] {
        match store.stage("fedora", "local", digest, SIZED, 1).unwrap() {
            Stage::AlreadyPresent(v) => {
                assert_eq!(&v.digest, digest);
                assert_eq!(fs::read(&v.path).unwrap(), image(seed));
            }
            Stage::Staging(s) => panic!("{digest} staged again as {}", s.volume()),
        }
    }
    assert_eq!(store.versions("fedora").unwrap().len(), 2);
}
