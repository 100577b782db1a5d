//! The daemon keeps an `http://` boot source up to date (auto-update for web files, which
//! CDI's DataImportCron cannot do): Debian's nginx serves the file; a poll is one
//! conditional request (`HEAD` with `If-None-Match`, answered 304 while nothing
//! changed) or a read of the checksum file; a replaced file becomes the new current
//! version, named by the sha256 of its bytes, and `outdated` is 0 once it is imported.

use std::fs;

use sha2::{Digest as _, Sha256};

use crate::common::daemon::{Node, TestDisk, current_digest, version_digests};
use crate::common::nginx::Nginx;

const MIB: u64 = 1 << 20;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The file served for `disk`: its raw bytes, as Debian publishes `.raw` images.
fn bytes_of(disk: &TestDisk) -> Vec<u8> {
    fs::read(&disk.raw).unwrap()
}

#[test]
fn a_replaced_web_file_is_polled_conditionally_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 21);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 22);
    let nginx = Nginx::start();
    nginx.put("web.raw", &bytes_of(&v1));
    nginx.put("sums.raw", &bytes_of(&v1));
    nginx.put(
        "SHA256SUMS",
        format!("{}  sums.raw\n", &sha256(&bytes_of(&v1))[7..]).as_bytes(),
    );

    let mut node = Node::new();
    node.config.source("web", &nginx.url("web.raw"));
    node.config
        .source("sums", &nginx.url("sums.raw"))
        .checksum_url = Some(nginx.url("SHA256SUMS"));
    let daemon = node.start();
    let web = daemon.wait_for_current("web", &sha256(&bytes_of(&v1)));
    daemon.wait_for_current("sums", &sha256(&bytes_of(&v1)));
    assert!(v1.same_as(&node.current_link("web")), "{web}");

    // Nothing changed: the poll is a HEAD answered 304, nothing downloaded again.
    node.poll();
    daemon.wait_for("a conditional HEAD answered 304", || {
        nginx
            .access_log()
            .contains("\"HEAD /web.raw HTTP/1.1\" 304")
            .then_some(())
    });
    assert_eq!(version_digests(&daemon.source_status("web")).len(), 1);

    // Replaced on the server (and listed anew in the checksum file): imported on poll.
    nginx.put("web.raw", &bytes_of(&v2));
    nginx.put("sums.raw", &bytes_of(&v2));
    nginx.put(
        "SHA256SUMS",
        format!("{}  sums.raw\n", &sha256(&bytes_of(&v2))[7..]).as_bytes(),
    );
    node.poll();
    let web = daemon.wait_for_current("web", &sha256(&bytes_of(&v2)));
    daemon.wait_for_current("sums", &sha256(&bytes_of(&v2)));
    assert!(v2.same_as(&node.current_link("web")));
    assert_eq!(
        version_digests(&web),
        [sha256(&bytes_of(&v1)), sha256(&bytes_of(&v2))]
    );
    assert_eq!(current_digest(&web), Some(sha256(&bytes_of(&v2))));
    let metrics = daemon.wait_for("outdated back to 0", || {
        let m = daemon.metrics();
        (m.get("bootsource_source_outdated", &[("source", "web")]) == Some(0.0)).then_some(m)
    });
    assert_eq!(
        metrics.get("bootsource_source_outdated", &[("source", "sums")]),
        Some(0.0)
    );
}
