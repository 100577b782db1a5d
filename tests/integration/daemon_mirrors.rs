//! Registry mirrors, as containers' `registries.conf` describes them: a `[[registry]]`
//! with `prefix` and `[[registry.mirror]]` entries. The daemon tries the mirrors in
//! order and the origin last, for polls and imports alike — an air-gapped node keeps
//! working while the origin is unreachable, and falls back to the origin when the
//! mirror is.

use crate::common::daemon::{Node, TestDisk};
use crate::common::oci::{Image, Index, Platform, Schema};
use crate::common::push;
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;

#[test]
fn mirrors_are_tried_before_the_origin_which_is_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 11);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 12);

    // The origin is down; only the mirror serves the image.
    let mut origin = Registry::start();
    origin.stop();
    let mut mirror = Registry::start();
    v1.push(&mirror, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&origin.host_port());
    node.config
        .source("fedora", &origin.reference("os/fedora:latest"));
    node.config.extra = format!(
        "\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
        origin.host_port(),
        mirror.host_port()
    );
    let daemon = node.start();
    daemon.wait_for_current("fedora", &v1.digest);
    assert!(v1.same_as(&node.current_link("fedora")));

    // The origin comes back with v2 while the mirror still has v1: the mirror is asked
    // first, so the node stays at v1 …
    origin.restart();
    v2.push(&origin, "os/fedora:latest");
    node.poll();
    daemon.wait_for("a poll answered by the mirror", || {
        let polls = daemon.metrics().get(
            "bootsource_polls_total",
            &[("source", "fedora"), ("result", "up_to_date")],
        );
        polls.filter(|n| *n >= 1.0)
    });
    assert!(
        v1.same_as(&node.current_link("fedora")),
        "the origin was preferred to the mirror"
    );

    // … until the mirror is unreachable: then the origin answers, and v2 is imported.
    mirror.stop();
    node.poll();
    daemon.wait_for_current("fedora", &v2.digest);
    assert!(v2.same_as(&node.current_link("fedora")));
}

/// Every per-host setting follows the host actually contacted: the mirror is reached
/// with its own credentials and its own CA, while the origin (which has others, and
/// is down) is never needed — including for a multi-arch image, whose per-platform
/// manifest must come from the mirror too.
#[test]
fn a_mirror_is_reached_with_its_own_credentials_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut origin = Registry::builder()
        .basic_auth("alice", "origin-pw")
        .tls()
        .start();
    origin.stop();
    let mirror = Registry::builder()
        .basic_auth("bob", "mirror-pw")
        .tls()
        .start();
    let amd64 = TestDisk::new(dir.path(), "amd64", 4 * MIB, 21);
    let arm64 = TestDisk::new(dir.path(), "arm64", 4 * MIB, 22);
    let arm64_image = Image::new(
        Schema::Oci,
        Platform::linux_arm64(),
        arm64.image.layers.clone(),
    );
    let index = Index::new(Schema::Oci, vec![amd64.image.clone(), arm64_image]);
    let index_digest = push::push(&mirror, "os/fedora", "latest", &index);

    // One auth file and one certs.d, each with an entry per host, as on a real node.
    let auth = dir.path().join("auth.json");
    let entry = |r: &Registry| {
        let c = r.credentials().unwrap();
        (r.host_port(), serde_json::json!({ "auth": c.token() }))
    };
    let auths: serde_json::Map<String, serde_json::Value> =
        [entry(&origin), entry(&mirror)].into_iter().collect();
    std::fs::write(&auth, serde_json::json!({ "auths": auths }).to_string()).unwrap();
    let certs_d = dir.path().join("certs.d");
    for r in [&origin, &mirror] {
        let host_dir = certs_d.join(r.host_port());
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::copy(r.cert_dir().join("ca.crt"), host_dir.join("ca.crt")).unwrap();
    }

    let mut node = Node::new();
    node.config
        .set("auth_file", &format!("{:?}", auth.display().to_string()))
        .set("certs_d", &format!("{:?}", certs_d.display().to_string()));
    node.config
        .source("fedora", &origin.reference("os/fedora:latest"));
    node.config.extra = format!(
        "\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\n",
        origin.host_port(),
        mirror.host_port()
    );
    let daemon = node.start();
    let fedora = daemon.wait_for_current("fedora", &index_digest);
    assert!(amd64.same_as(&node.current_link("fedora")), "{fedora}");
}
